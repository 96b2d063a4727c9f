"""The planner's vocabulary, as plain data: what the app sent (`AppRequest`), the four plans
(`Refuse`, `LocalAnswer`, `PassThrough`, `Forward`), and reading the app's JSON body strictly (UTF-8
only, no duplicate keys, bounded nesting). plan.py decides; this module only describes. No mitmproxy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from . import clients, endpoints
from .flowinfo import FlowRecord
from .protocols import Translation
from .protocols.errors import render_error
from .protocols.sidecall import SideTranslation
from .routing import RouteDecision

DEFAULT_PROTOCOL = endpoints.FALLBACK_PROTOCOL  # for errors on a path whose protocol is unknown


def upstream_url(base_url: str, path: str) -> str:
    """base_url + the app's path; a base_url ending in /v1 (as SDK base URLs do) is not doubled."""
    parts = urlsplit(base_url)
    prefix = parts.path.rstrip("/")
    for version in ("/v1", "/v1beta", "/v1alpha"):
        if prefix.endswith(version) and (path == version or path.startswith(version + "/")):
            prefix = prefix[: -len(version)]
            break
    return f"{parts.scheme}://{parts.netloc}{prefix}{path}"


def protocol_of(method: str, path: str) -> str:
    """The app's protocol as far as the endpoint tells it (for error bodies); OpenAI's otherwise."""
    endpoint = endpoints.classify(method, path)
    return endpoint.protocol if endpoint else DEFAULT_PROTOCOL


def without_query_key(path: str) -> str:
    """`path` without a `?key=` query parameter (Gemini's credential carrier): the app's key never
    becomes part of an upstream URL; llmitm sends credentials in headers (credentials.py)."""
    return clients.query_credential(path)[0]


@dataclass(frozen=True)
class AppRequest:
    """What the app sent, as the planner needs it. `headers`: names lower-cased; `body`: decoded
    (content-encoding undone) bytes."""

    method: str
    host: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    proxy_user: str | None = None  # mitmproxy's proxyauth user (flow.metadata["proxyauth"]), if any
    local_listener: bool = True  # the app reached a loopback address of the proxy (its own machine)


@dataclass(frozen=True)
class Refuse:
    """Answer here with an error in the app's protocol; nothing goes upstream."""

    protocol: str
    status: int
    message: str
    param: str | None = None
    code: str | None = None
    retry_after: float | None = None  # seconds, sent as Retry-After (a client over its rate)

    def body(self) -> bytes:
        return render_error(self.protocol, self.status, self.message, param=self.param, code=self.code)


@dataclass(frozen=True)
class LocalAnswer:
    """Answer here with a JSON success body llmitm computed itself."""

    status: int
    body: bytes
    record: FlowRecord


@dataclass(frozen=True)
class PassThrough:
    """No route serves this intercepted request: it goes where the app sent it, untouched (by the
    relay's client, so that an unreachable host is an error in the app's protocol)."""

    record: FlowRecord


@dataclass
class Forward:
    """Send the request to the route's provider.

    The addon applies, in this order: delete `drop_headers`, set `set_headers`, point the request at
    `url`, and replace the body with `body` unless it is None (the app's bytes go out unchanged)."""

    record: FlowRecord
    decision: RouteDecision
    client_protocol: str | None  # None: an endpoint llmitm does not know (forwarded as it is)
    upstream_protocol: str
    upstream_path: str  # `url`'s path relative to the provider's base_url (fallbacks use it too)
    url: str
    body: bytes | None = None
    drop_headers: tuple[str, ...] = ()
    set_headers: dict[str, str] = field(default_factory=dict)
    # Set when the app's and the upstream's protocols differ (a SideTranslation for counting and embeddings).
    translation: Translation | SideTranslation | None = None
    streams: bool = False  # the app asked for a streamed answer
    client: clients.ClientSpec | None = None  # who asked (its tokens count toward its tpm afterwards)
    forward_app_credential: bool = True  # False: the app's credential is its llmitm client key

    @property
    def pooled(self) -> bool:
        """The relay makes the call with a pooled key (else keyless, with the app's own key)."""
        return self.decision.provider.pooled


Plan = Refuse | LocalAnswer | PassThrough | Forward


class BadJson(ValueError):
    """The app's body is not a JSON object llmitm can read unambiguously."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        # Parsers disagree on which copy wins (Python's json takes the last; the in-place model
        # rewrite edits the first), so an ambiguous body is refused instead of guessed at.
        raise BadJson(f"duplicate key {twice!r}")
    return out


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The app's body as a dict. UTF-8 only (RFC 8259 §8.1; `json.loads` would also guess UTF-16/32,
    which the byte-exact model rewrite cannot edit), no duplicate keys, bounded nesting."""
    try:
        text = (body or b"{}").decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadJson(f"the body is not UTF-8: {e.reason} at byte {e.start}") from None
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise BadJson("JSON nested too deeply") from None
    except BadJson:
        raise
    except ValueError as e:
        raise BadJson(str(e)) from None
    if not isinstance(value, dict):
        raise BadJson("the body must be a JSON object")
    return value
