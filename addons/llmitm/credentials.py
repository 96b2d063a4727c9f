"""Where each protocol carries the API key, and how llmitm swaps and redacts it.

The app's own credential may sit in any carrier (`Authorization: Bearer`, `x-api-key`,
`x-goog-api-key`, `?key=`): the Anthropic SDK 2.x sends Bearer, older ones x-api-key. When a pooled
key is used, every carrier is cleared before the pooled key is written in the upstream's carrier,
so the app's key is never forwarded (LiteLLM #32202 forwarded the proxy's own key by header copy).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from mitmproxy import http

from .config import mask_secret

AUTH_HEADERS = ("authorization", "x-api-key", "x-goog-api-key")
ANTHROPIC_VERSION = "2023-06-01"


def take_client_credential(request: http.Request) -> str | None:
    """Remove the app's credential from every carrier and return it (Bearer prefix stripped)."""
    found: str | None = None
    for name in AUTH_HEADERS:
        value = request.headers.pop(name, None)
        if value and found is None:
            found = value[7:] if value.lower().startswith("bearer ") else value
    path, sep, query = request.path.partition("?")
    if sep:
        pairs = parse_qsl(query, keep_blank_values=True)
        kept = [(k, v) for k, v in pairs if k != "key"]
        if len(kept) != len(pairs):
            found = found or next(v for k, v in pairs if k == "key")
            request.path = path + ("?" + urlencode(kept) if kept else "")
    return found


def credential_headers(protocol: str, secret: str, has_version: bool = True) -> list[tuple[str, str]]:
    """The headers that carry `secret` to an upstream speaking `protocol`."""
    if protocol == "anthropic":
        out = [("x-api-key", secret)]
        return out if has_version else out + [("anthropic-version", ANTHROPIC_VERSION)]
    if protocol == "gemini":
        return [("x-goog-api-key", secret)]
    return [("authorization", f"Bearer {secret}")]


def put_credential(request: http.Request, protocol: str, secret: str) -> None:
    """Write `secret` where an upstream speaking `protocol` expects it."""
    for name, value in credential_headers(protocol, secret, "anthropic-version" in request.headers):
        request.headers[name] = value


def redact(request: http.Request) -> None:
    """Mask every credential left on a request that has already been sent (mitmweb, saved flows)."""
    for name in AUTH_HEADERS:
        value = request.headers.get(name)
        if value:
            bearer = value.lower().startswith("bearer ")
            secret = value[7:] if bearer else value
            request.headers[name] = ("Bearer " if bearer else "") + mask_secret(secret)
    path, sep, query = request.path.partition("?")
    if sep and "key=" in query:
        pairs = [(k, mask_secret(v) if k == "key" else v) for k, v in parse_qsl(query, keep_blank_values=True)]
        request.path = path + "?" + urlencode(pairs)
