"""Client identities: who is calling, what they may use, and how fast (sans-I/O, no mitmproxy).

llmitm holds a team's provider keys, so whoever reaches its port spends them. An app already sends a
credential in its protocol's carrier (`Authorization: Bearer`, `x-api-key`, `x-goog-api-key`,
`?key=`) and that value is never forwarded when a pool serves: it is the natural client identity. A
client may also be told apart by mitmproxy's own proxy credentials (`proxyauth`; the user name is in
`flow.metadata["proxyauth"]`). The config names each client with the key it sends — written as
`${VAR}`, or only as its SHA-256 so the file holds no usable secret — and what it may do:

- `models` / `providers`: globs of the models it may ask for and the providers its routes may reach;
- `pins`: the key ids it may choose with `x-llmitm-key` (none unless listed; `"*"` for all);
- `rpm` / `tpm`: requests and tokens per rolling minute; over it, a 429 with Retry-After.

Answers: no or an unknown credential → 401; a model, provider or pin it may not use → 403; over its
rate → 429 — each rendered by the caller in the app's own protocol.
"""

from __future__ import annotations

import collections
import fnmatch
import functools
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

from .protocols.registry import REGISTRY

WINDOW_SECONDS = 60.0
PIN_HEADER = "x-llmitm-key"  # a request header choosing the pooled key by id (admitted per client)


def app_credential(headers: Mapping[str, str], path: str) -> str | None:
    """The credential the app sent, from the first carrier any protocol defines (REGISTRY.carriers:
    a header such as `Authorization: Bearer …`, or a query parameter such as Gemini's `?key=`), the
    carrier's prefix removed. `headers` has lower-case names."""
    for carrier in REGISTRY.carriers:
        if carrier.in_query:
            continue
        value = headers.get(carrier.name)
        if value:
            if carrier.prefix and value.lower().startswith(carrier.prefix.lower()):
                return value[len(carrier.prefix):].strip() or None
            if not carrier.prefix:
                return value.strip() or None
    return query_credential(path)[1]


QUERY_CARRIERS = frozenset(c.name for c in REGISTRY.carriers if c.in_query)  # Gemini's `key`


def query_credential(path: str) -> tuple[str, str | None]:
    """`path` without any query parameter that carries a credential (REGISTRY.carriers: Gemini's
    `?key=`), and the first such credential (None if none): the one reading of query carriers for the
    planner, the client identities and the credential swap."""
    bare, sep, query = path.partition("?")
    if not sep or not any(f"{name}=" in query for name in QUERY_CARRIERS):
        return path, None
    pairs = parse_qsl(query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if k not in QUERY_CARRIERS]
    found = next((v for k, v in pairs if k in QUERY_CARRIERS and v), None)
    return bare + ("?" + urlencode(kept) if kept else ""), found


@functools.lru_cache(maxsize=1024)
def fingerprint(secret: str) -> str:
    """The SHA-256 (hex) under which a client key is stored and compared. Cached: every request's
    credential is fingerprinted, and an app sends the same few keys (the cache lives in this process
    only, beside the flows that hold the same credentials)."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class ClientSpec:
    name: str
    key_sha256: str | None = None  # the credential the app sends, hashed
    proxy_user: str | None = None  # or mitmproxy's proxyauth user name
    models: tuple[str, ...] = ("*",)
    providers: tuple[str, ...] = ("*",)
    pins: tuple[str, ...] = ()
    rpm: int | None = None
    tpm: int | None = None


@dataclass(frozen=True)
class Refusal:
    """Why a request is not admitted: the status to answer with (401/403/429) and what to say."""

    status: int
    message: str
    retry_after: float | None = None


@dataclass
class _Usage:
    """What one client did in the last WINDOW_SECONDS: request times and (time, tokens) pairs."""

    requests: collections.deque[float] = field(default_factory=collections.deque)
    tokens: collections.deque[tuple[float, int]] = field(default_factory=collections.deque)

    def prune(self, now: float) -> None:
        horizon = now - WINDOW_SECONDS
        while self.requests and self.requests[0] <= horizon:
            self.requests.popleft()
        while self.tokens and self.tokens[0][0] <= horizon:
            self.tokens.popleft()


class ClientRegistry:
    """The configured clients; `required` when any is configured (then anonymous calls get a 401)."""

    def __init__(self, specs: list[ClientSpec]) -> None:
        self.specs = list(specs)
        self._usage: dict[str, _Usage] = {spec.name: _Usage() for spec in specs}

    @property
    def required(self) -> bool:
        return bool(self.specs)

    def inherit_usage(self, previous: ClientRegistry) -> None:
        """Keep the rate windows of clients that survive a config reload (a reload is no rate reset)."""
        for name in self._usage:
            if name in previous._usage:
                self._usage[name] = previous._usage[name]

    def identify(self, credential: str | None, proxy_user: str | None = None) -> ClientSpec | None:
        """The client that sent `credential` (or authenticated to the proxy as `proxy_user`)."""
        digest = fingerprint(credential) if credential else None
        for spec in self.specs:
            if digest is not None and spec.key_sha256 and hmac.compare_digest(spec.key_sha256, digest):
                return spec
            if proxy_user is not None and spec.proxy_user is not None and hmac.compare_digest(spec.proxy_user, proxy_user):
                return spec
        return None

    def admit(self, client: ClientSpec | None, *, model: str | None, provider: str | None, pin: str | None,
              now: float) -> Refusal | None:
        """None when the request may go on (and counts toward the client's rate); else the refusal."""
        if client is None:
            if not self.required:
                return None
            return Refusal(401, "llmitm: this proxy needs a client key: send the key your llmitm operator gave you "
                                "as this API's key (or authenticate to the proxy)")
        if model is not None and not _any_match(model, client.models):
            return Refusal(403, f"llmitm: client {client.name!r} may not use model {model[:200]!r}")
        if provider is not None and not _any_match(provider, client.providers):
            return Refusal(403, f"llmitm: client {client.name!r} may not use provider {provider!r}")
        if pin is not None and not _any_match(pin, client.pins):
            return Refusal(403, f"llmitm: client {client.name!r} may not choose a key (x-llmitm-key)")
        usage = self._usage.setdefault(client.name, _Usage())
        usage.prune(now)
        if client.rpm is not None and len(usage.requests) >= client.rpm:
            wait = usage.requests[0] + WINDOW_SECONDS - now
            return Refusal(429, f"llmitm: client {client.name!r} is over its {client.rpm} requests per minute", wait)
        if client.tpm is not None:
            spent = sum(n for _, n in usage.tokens)
            if spent >= client.tpm:
                wait = usage.tokens[0][0] + WINDOW_SECONDS - now
                return Refusal(429, f"llmitm: client {client.name!r} is over its {client.tpm} tokens per minute", wait)
        usage.requests.append(now)
        return None

    def record_tokens(self, client: ClientSpec | None, tokens: int, now: float) -> None:
        """Count an answer's tokens toward the client's tokens-per-minute."""
        if client is not None and tokens > 0:
            self._usage.setdefault(client.name, _Usage()).tokens.append((now, tokens))


def _any_match(value: str, globs: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(value, g) for g in globs)
