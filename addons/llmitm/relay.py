"""Upstream calls of intercepted flows: key draw, transparent retry, and delivery to mitmproxy.

mitmproxy cannot re-send a request within one flow, and once a streamed response has started the
client owns those bytes (MITMPROXY.md §6). So llmitm makes pooled upstream calls itself, with its own
HTTP client: it draws a key, sends the request, and on a 429/529/5xx/401/403 or a connection error —
all before the first byte goes back — releases that key to its cooldown and tries the next key, then
the route's fallback providers. The answer it keeps reaches the client one of two ways:

- `fetch` (requests that do not stream): the whole answer becomes `flow.response` in the `request`
  hook. The client waits for the whole body anyway, and mitmproxy makes no upstream call of its own.
- `submit` (streaming requests, and every pass-through: llmitm does not read what those ask for):
  the flow is pointed at the relay, a loopback HTTP server in this process (relay_stream.py), which
  streams the kept answer back chunk by chunk (design C): a retried stream still arrives event by
  event. Buffered retry (design A) would make the client wait for the whole answer; leaving retries
  to the SDK (design B) fails apps that disabled retries.

The pooled key, and the provider's configured `headers` (a gateway token such as `Helicone-Auth`),
exist only here: mitmproxy's flow (and so mitmweb, `-w` files and HAR) never holds them.

Keyless calls go through the same client: a route whose provider has no pool (the app's own
credential, e.g. a local server) and an intercepted request no route serves (a pass-through). Left
to mitmproxy, an upstream it cannot reach is answered with mitmproxy's own HTML 502, which no hook
can replace and no SDK can parse. Here such a call is one attempt (an `Upstream` without a pool:
nothing to draw, no other key to retry on) with the app's headers as they are, bounded like a pooled
one (timeout, idle timeout, `max_response_bytes`), and an unreachable upstream is a 502 with
Retry-After in the protocol's own error shape.

When nothing serves, the app is told whose fault it is: a provider that could not be reached is a 502
with Retry-After (SDKs retry it; a 400 would blame the app); an upstream refusal that waiting will not
fix (a revoked key, OpenAI's `insufficient_quota`) is passed on in the provider's own words; keys that
are only cooling down give llmitm's 429 with Retry-After set to when the first one frees up.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
from aiohttp import web
from yarl import URL

from .plan import upstream_url
from .pool import PoolExhausted, UnknownKey
from .pool.outcome import Outcome, classify
from .protocols.errors import render_error
from .protocols.registry import REGISTRY
from .relay_stream import (  # noqa: F401  (HOP_BY_HOP, in_band_error, UpstreamIdle: the relay's interface too)
    HOP_BY_HOP,
    Answer,
    RelayServer,
    ResponseTooLarge,
    UpstreamIdle,
    end_to_end,
    in_band_error,
    read_capped,
    stream_back,
)

if TYPE_CHECKING:
    from .config import LlmitmConfig
    from .plan import Forward

log = logging.getLogger(__name__)

# 401/402/403 too: they are about the key (the pool disables it until a probe succeeds), so another key may serve.
RETRYABLE = frozenset({401, 402, 403, 408, 409, 429, 500, 502, 503, 504, 520, 522, 524, 529})
T = TypeVar("T")
# Retry-After when no upstream could be reached and the pool names no moment: soon, since a reset
# connection is usually transient, but not at once.
UNREACHABLE_RETRY_AFTER = 1.0
# Upstream refusals that no amount of waiting clears: passed on as the provider wrote them.
NOT_CURED_BY_WAITING = frozenset({Outcome.AUTH_FAILED, Outcome.QUOTA_EXHAUSTED})
# The key label of a keyless attempt (the app's own credential), as observe/ names it.
APP_CREDENTIAL = "app-credential"


@dataclass
class Upstream:
    """One provider that may serve the request: the route's own, then its fallbacks, in order.
    Without a pool the call is keyless: the app's own credential, one attempt."""

    provider: str  # a configured provider's name; a pass-through's host
    protocol: str  # its wire protocol: the shape of llmitm's own error answers
    url: str
    pool: Any  # pool.KeyPool; None: keyless
    timeout: float = 600.0  # the whole attempt
    idle_timeout: float = 120.0  # silence between two chunks of a streamed answer
    headers: dict[str, str] = field(default_factory=dict)  # the provider's configured headers
    sni: str | None = None  # TLS server name when `url` names an IP address (a pass-through in transparent modes)
    verify_tls: bool = True  # False only for keyless calls under mitmproxy's ssl_insecure (exchange.py)


def upstreams_for(plan: Forward, config: LlmitmConfig, pools: Any) -> tuple[list[Upstream], list[str]]:
    """The route's provider, then each fallback that has a pool and speaks the same upstream
    protocol; and a warning for each fallback skipped. A provider without a pool is called keyless,
    and alone: mitmproxy never tried a keyless route's fallbacks either."""
    decision, protocol = plan.decision, plan.upstream_protocol

    def upstream(name: str, url: str) -> Upstream:
        provider = config.providers[name]
        return Upstream(name, protocol, url, pools.get(name) if provider.pooled else None,
                        timeout=provider.timeout_seconds, idle_timeout=provider.idle_timeout_seconds,
                        headers=dict(provider.headers))

    out = [upstream(decision.provider_name, plan.url)]
    warnings: list[str] = []
    if out[0].pool is None:
        return out, warnings
    for name in decision.route.fallback:
        fallback = config.providers[name]
        if not fallback.pooled or protocol not in fallback.protocol:
            warnings.append(f"fallback {name} skipped: it needs a pool and must speak {protocol}")
            continue
        out.append(upstream(name, upstream_url(fallback.base_url, plan.upstream_path)))
    return out, warnings


@dataclass
class UpstreamTry:
    """One upstream attempt as data, for the usage ledger, metrics and traces (observe/). Wall-clock
    seconds, so they compare with mitmproxy's timestamps."""

    provider: str
    key: str  # the key's id, never the key (APP_CREDENTIAL for a keyless call)
    start: float
    responded: float | None = None  # when the status line arrived; None: no answer (see `error`)
    end: float | None = None  # when its body was read (the kept answer's: when delivery finished)
    status: int | None = None
    error: str | None = None  # why no answer came (the exception's type)


@dataclass
class RelayJob:
    upstreams: list[Upstream]
    pin: str | None = None
    max_response_bytes: int = 64 * 1024 * 1024  # a whole answer larger than this is refused (502)
    # Filled in by the relay:
    served: Upstream | None = None
    lease: Any = None  # the lease of the attempt whose answer was kept; released by the addon
    attempts: list[str] = field(default_factory=list)
    tries: list[UpstreamTry] = field(default_factory=list)  # the same attempts, as data


class Relay:
    """llmitm's own HTTP client for upstream calls, and the loopback server (relay_stream.py) that
    streams their answers back to mitmproxy."""

    def __init__(self) -> None:
        self.server = RelayServer(self._serve)
        self._session: aiohttp.ClientSession | None = None
        self._start_lock = asyncio.Lock()

    @property
    def port(self) -> int:
        """The loopback server's port (0 until started): netguard keeps apps away from it."""
        return self.server.port

    async def start(self) -> None:
        async with self._start_lock:
            if self._session is not None:
                return
            # trust_env=False: the proxy often inherits HTTPS_PROXY pointing at itself.
            self._session = aiohttp.ClientSession(
                trust_env=False,
                # Send the app's headers as they are: no aiohttp Accept, User-Agent or Accept-Encoding added.
                skip_auto_headers=("Accept", "User-Agent", "Accept-Encoding", "Content-Type"),
                auto_decompress=False,
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
            )
            await self.server.start()

    async def close(self) -> None:
        await self.server.close()
        if self._session is not None:
            await self._session.close()

    # -- the two ways an answer reaches mitmproxy ---------------------------------------------

    async def fetch(self, job: RelayJob, method: str, headers: list[tuple[str, str]], body: bytes) -> Answer:
        """Call upstream (retrying as needed) and return the kept answer whole."""
        await self.start()

        async def read_whole(target: Upstream, upstream: aiohttp.ClientResponse) -> Answer:
            try:
                data = await read_capped(upstream, job.max_response_bytes)
            finally:
                upstream.release()
            return Answer(upstream.status, end_to_end(upstream.headers), data)

        protocol = job.upstreams[0].protocol
        try:
            return await self._run(job, method, headers, body, read_whole)
        except ResponseTooLarge as e:
            # The key served; the answer is just more than llmitm will hold: free it unjudged.
            if job.lease is not None and not job.lease.released:
                job.lease.release(status=None, error=None)
            return Answer(502, [("content-type", "application/json")], render_error(protocol, 502, f"llmitm: {e}"))
        except (TimeoutError, aiohttp.ClientError) as e:
            # The kept answer broke off while being read: too late to retry (the key is leased).
            message = f"llmitm: upstream connection lost while reading the answer: {type(e).__name__}"
            return Answer(502, [("content-type", "application/json")], render_error(protocol, 502, message))

    async def submit(self, job: RelayJob) -> str:
        """Register a job whose answer streams back through the loopback server; the URL mitmproxy
        should send the flow to."""
        await self.start()
        return self.server.submit(job)

    def forget(self, url: str) -> None:
        self.server.forget(url)

    async def _serve(self, job: RelayJob, request: web.BaseRequest) -> web.StreamResponse:
        """The loopback server's handler: make `job`'s call with the request mitmproxy sent."""
        body = await request.content.read()  # no size cap here: mitmproxy and max_body_bytes bound it
        headers = end_to_end(request.headers)

        def deliver(target: Upstream, upstream: aiohttp.ClientResponse) -> Awaitable[web.StreamResponse]:
            return stream_back(request, target.protocol, target.provider, upstream, target.idle_timeout,
                               job.max_response_bytes)

        outcome = await self._run(job, request.method, headers, body, deliver)
        if isinstance(outcome, Answer):
            return web.Response(status=outcome.status, body=outcome.body, headers=outcome.headers)
        return outcome

    # -- attempts -----------------------------------------------------------------------------

    async def _run(
        self,
        job: RelayJob,
        method: str,
        headers: list[tuple[str, str]],
        body: bytes,
        deliver: Callable[[Upstream, aiohttp.ClientResponse], Awaitable[T]],
    ) -> T | Answer:
        last: Answer | str | None = None  # the last failed attempt: an upstream answer, or why no answer came
        exhausted: PoolExhausted | UnknownKey | None = None
        for n, target in enumerate(job.upstreams):
            if target.pool is None:  # keyless: nothing to draw and no other key to try
                outcome = await self._attempt(job, target, None, method, headers, body)
                if isinstance(outcome, aiohttp.ClientResponse):
                    return await self._keep(job, target, outcome, deliver)
                last = outcome
                continue
            tried: set[str] = set()
            budget = 2 * max(1, len(target.pool.key_ids))  # attempts on this provider
            while budget > 0:
                try:
                    lease = await target.pool.acquire(pin=job.pin if n == 0 else None, exclude=tried)
                except UnknownKey as e:  # the app pinned a key this provider does not have
                    exhausted = e
                    break
                except PoolExhausted as e:
                    exhausted = e
                    if not tried:
                        break  # nothing left on this provider: the next one
                    # Every key was tried once: go round again, now waiting (up to max_wait) for
                    # the first one to leave its cooldown.
                    tried.clear()
                    continue
                budget -= 1
                exhausted = None
                tried.add(lease.key_id)
                try:
                    outcome = await self._attempt(job, target, lease, method, headers, body)
                except asyncio.CancelledError:  # the app left, or llmitm stops: free the key unjudged
                    if not lease.released:
                        lease.release(status=None, error=None)
                    raise
                if isinstance(outcome, aiohttp.ClientResponse):
                    return await self._keep(job, target, outcome, deliver)
                last = outcome
                if job.pin:
                    break
        return self._give_up(job, last, exhausted)

    @staticmethod
    async def _keep(job: RelayJob, target: Upstream, answer: aiohttp.ClientResponse,
                    deliver: Callable[[Upstream, aiohttp.ClientResponse], Awaitable[T]]) -> T:
        """Deliver the answer the loop keeps; its try ends when the delivery does (a stream's last byte)."""
        try:
            return await deliver(target, answer)
        finally:
            job.tries[-1].end = time.time()

    async def _attempt(
        self,
        job: RelayJob,
        target: Upstream,
        lease: Any,
        method: str,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> aiohttp.ClientResponse | Answer | str:
        """One upstream call: the response to keep, the failed answer to remember, or (a str) why
        the connection failed before any response. Without a lease (keyless) the app's headers go as
        they are, credential included, and any answer is kept: it is about the app's own key."""
        assert self._session is not None
        configured = {k.lower() for k in target.headers}
        credential_headers = REGISTRY.credential_header_names if lease is not None else frozenset()
        send_headers = [(k, v) for k, v in headers if k.lower() not in credential_headers and k.lower() not in configured]
        send_headers += target.headers.items()
        if lease is not None:
            send_headers += REGISTRY.credential_headers(target.protocol, lease.secret, (k for k, _ in send_headers))
        started = time.monotonic()
        key = lease.key_id if lease is not None else APP_CREDENTIAL
        label = f"{target.provider}/{key}"
        attempt = UpstreamTry(target.provider, key, time.time())
        job.tries.append(attempt)
        try:
            upstream = await self._session.request(
                # encoded=True: the URL goes out exactly as written (the app's own path and query);
                # no body, no data: aiohttp would add `content-length: 0` to a GET.
                method, URL(target.url, encoded=True), headers=send_headers, data=body or None, server_hostname=target.sni,
                ssl=target.verify_tls,
                timeout=aiohttp.ClientTimeout(total=target.timeout, sock_connect=30),
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            if lease is not None:
                lease.release(status=None, error=f"{type(e).__name__}: {e}")
            attempt.end, attempt.error = time.time(), type(e).__name__
            failure = f"{label}: connection failed ({type(e).__name__}) after {time.monotonic() - started:.2f}s"
            job.attempts.append(failure)
            return failure
        attempt.responded, attempt.status = time.time(), upstream.status
        if lease is not None and upstream.status in RETRYABLE:
            try:
                data = await read_capped(upstream, job.max_response_bytes)
            except (TimeoutError, aiohttp.ClientError, ResponseTooLarge):
                data = b""
            finally:
                upstream.release()
            lease.release(status=upstream.status, headers=dict(upstream.headers), body_json=_json_or_none(data))
            attempt.end = time.time()
            job.attempts.append(f"{label}: {upstream.status}, retried")
            return Answer(upstream.status, end_to_end(upstream.headers), data)
        job.served, job.lease = target, lease
        job.attempts.append(f"{label}: {upstream.status} in {time.monotonic() - started:.2f}s")
        return upstream

    @staticmethod
    def _give_up(job: RelayJob, last: Answer | str | None, exhausted: PoolExhausted | UnknownKey | None) -> Answer:
        """Nothing could serve; say whose fault that is (see the module docstring)."""
        protocol = job.upstreams[0].protocol
        tried = "; ".join(job.attempts) or "no attempt"
        if isinstance(last, Answer) and classify(last.status, _json_or_none(last.body)) in NOT_CURED_BY_WAITING:
            return last
        if isinstance(last, str):  # the last attempt got no response at all
            wait = exhausted.retry_after if isinstance(exhausted, PoolExhausted) else UNREACHABLE_RETRY_AFTER
            message = f"llmitm: the upstream could not be reached; attempts: {tried}"
            return Answer(502, retry_headers(wait, "upstream-unreachable"), render_error(protocol, 502, message))
        if isinstance(exhausted, PoolExhausted):
            message = f"llmitm: no key can serve this request now ({exhausted}); attempts: {tried}"
            return Answer(429, retry_headers(exhausted.retry_after, "pool-exhausted"), render_error(protocol, 429, message))
        if last is not None:
            return last
        message = f"llmitm: {exhausted}" if exhausted else "llmitm: no upstream attempt was possible"
        return Answer(400, [("content-type", "application/json")], render_error(protocol, 400, message))

    # -- probes -------------------------------------------------------------------------------

    async def probe(self, url: str, protocol: str, secret: str, headers: dict[str, str] | None = None) -> int | None:
        """One cheap authenticated GET (a model list) to see whether a disabled key works again."""
        await self.start()
        assert self._session is not None
        send = [*(headers or {}).items(), *REGISTRY.credential_headers(protocol, secret)]
        try:
            async with self._session.get(url, headers=send, timeout=aiohttp.ClientTimeout(total=15)) as resp:
                await resp.read()
                return resp.status
        except (TimeoutError, aiohttp.ClientError, OSError):
            return None


def retry_headers(retry_after: float, reason: str) -> list[tuple[str, str]]:
    return [
        ("content-type", "application/json"),
        ("retry-after", str(max(1, int(-(-float(retry_after) // 1))))),
        ("retry-after-ms", str(int(float(retry_after) * 1000))),
        ("x-llmitm-error", reason),
    ]


def _json_or_none(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None

