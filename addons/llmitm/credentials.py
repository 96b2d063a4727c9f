"""Taking, writing and masking API keys on a mitmproxy request. Where each protocol carries a key
is its wire facts (`CARRIERS` in protocols/<name>/wire.py), read through `protocols.REGISTRY`,
which also says which headers carry a key to an upstream (mitmproxy-free, for the relay).

The app's own credential may sit in any carrier (`Authorization: Bearer`, `x-api-key`,
`x-goog-api-key`, `?key=`): the Anthropic SDK 2.x sends Bearer, older ones x-api-key. When a pooled
key is used, every carrier is cleared before the pooled key is written in the upstream's carrier,
so the app's key is never forwarded (LiteLLM #32202 forwarded the proxy's own key by header copy).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from mitmproxy import http

from .clients import QUERY_CARRIERS, query_credential
from .config import mask_secret
from .protocols.registry import REGISTRY

_HEADERS = [c for c in REGISTRY.carriers if not c.in_query]
_QUERY_PARAMS = QUERY_CARRIERS


def _strip_prefix(value: str) -> tuple[str, str]:
    """(prefix, key) of a carrier's value; the prefix ("Bearer ") is recognised in any case."""
    for carrier in _HEADERS:
        if carrier.prefix and value.lower().startswith(carrier.prefix.lower()):
            return value[: len(carrier.prefix)], value[len(carrier.prefix):]
    return "", value


def take_client_credential(request: http.Request) -> str | None:
    """Remove the app's credential from every carrier and return it (Bearer prefix stripped)."""
    found: str | None = None
    for carrier in _HEADERS:
        value = request.headers.pop(carrier.name, None)
        if value and found is None:
            found = _strip_prefix(value)[1]
    path, in_query = query_credential(request.path)
    if path != request.path:
        request.path = path
    return found or in_query


def put_credential(request: http.Request, protocol: str, secret: str) -> None:
    """Write `secret` where an upstream speaking `protocol` expects it."""
    for name, value in REGISTRY.credential_headers(protocol, secret, list(request.headers)):  # not keys(): O(n²)
        request.headers[name] = value


def redact(request: http.Request) -> None:
    """Mask every credential left on a request that has already been sent (mitmweb, saved flows)."""
    for carrier in _HEADERS:
        value = request.headers.get(carrier.name)
        if value:
            prefix, secret = _strip_prefix(value)
            request.headers[carrier.name] = prefix + mask_secret(secret)
    path, sep, query = request.path.partition("?")
    if sep and any(f"{name}=" in query for name in _QUERY_PARAMS):
        pairs = [(k, mask_secret(v) if k in _QUERY_PARAMS else v) for k, v in parse_qsl(query, keep_blank_values=True)]
        request.path = path + "?" + urlencode(pairs)
