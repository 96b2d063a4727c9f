"""Upstream calls of pooled flows: key draw, transparent retry, and delivery to mitmproxy.

mitmproxy cannot re-send a request within one flow, and once a streamed response has started the
client owns those bytes (MITMPROXY.md §6). So llmitm makes pooled upstream calls itself, with its own
HTTP client: it draws a key, sends the request, and on a 429/529/5xx/401/403 or a connection error —
all before the first byte goes back — releases that key to its cooldown and tries the next key, then
the route's fallback providers. The answer it keeps reaches the client one of two ways:

- `fetch` (requests that do not stream): the whole answer becomes `flow.response` in the `request`
  hook. The client waits for the whole body anyway, and mitmproxy makes no upstream call of its own.
- `submit` (streaming requests): the flow is pointed at the relay, a loopback HTTP server in this
  process, which streams the kept answer back chunk by chunk (design C): a retried stream still
  arrives event by event. Buffered retry (design A) would make the client wait for the whole answer;
  leaving retries to the SDK (design B) fails apps that disabled retries.

The pooled key, and the provider's configured `headers` (a gateway token such as `Helicone-Auth`),
exist only here: mitmproxy's flow (and so mitmweb, `-w` files and HAR) never holds them.

When nothing serves, the app is told whose fault it is: a provider that could not be reached is a 502
with Retry-After (SDKs retry it; a 400 would blame the app); an upstream refusal that waiting will not
fix (a revoked key, OpenAI's `insufficient_quota`) is passed on in the provider's own words; keys that
are only cooling down give llmitm's 429 with Retry-After set to when the first one frees up.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
from aiohttp import web

from .plan import upstream_url
from .pool import PoolExhausted, UnknownKey
from .pool.outcome import Outcome, classify
from .protocols.errors import render_error, render_stream_error
from .protocols.registry import REGISTRY

if TYPE_CHECKING:
    from .config import LlmitmConfig
    from .plan import Forward

log = logging.getLogger(__name__)

# 401/402/403 too: they are about the key (the pool disables it until a probe succeeds), so another key may serve.
RETRYABLE = frozenset({401, 402, 403, 408, 409, 429, 500, 502, 503, 504, 520, 522, 524, 529})
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "content-length", "host",
})
T = TypeVar("T")
# Retry-After when no upstream could be reached and the pool names no moment: soon, since a reset
# connection is usually transient, but not at once.
UNREACHABLE_RETRY_AFTER = 1.0
# Upstream refusals that no amount of waiting clears: passed on as the provider wrote them.
NOT_CURED_BY_WAITING = frozenset({Outcome.AUTH_FAILED, Outcome.QUOTA_EXHAUSTED})


@dataclass
class Upstream:
    """One provider that may serve the request: the route's own, then its fallbacks, in order."""

    provider: str
    protocol: str
    url: str
    pool: Any  # pool.KeyPool
    timeout: float = 600.0  # the whole attempt
    idle_timeout: float = 120.0  # silence between two chunks of a streamed answer
    headers: dict[str, str] = field(default_factory=dict)  # the provider's configured headers


def upstreams_for(plan: Forward, config: LlmitmConfig, pools: Any) -> tuple[list[Upstream], list[str]]:
    """The route's provider, then each fallback that has a pool and speaks the same upstream
    protocol; and a warning for each fallback skipped."""
    decision, protocol = plan.decision, plan.upstream_protocol

    def upstream(name: str, url: str) -> Upstream:
        provider = config.providers[name]
        return Upstream(name, protocol, url, pools.get(name), timeout=provider.timeout_seconds,
                        idle_timeout=provider.idle_timeout_seconds, headers=dict(provider.headers))

    out, warnings = [upstream(decision.provider_name, plan.url)], []
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
    key: str  # the key's id, never the key
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


class ResponseTooLarge(Exception):
    """The upstream's answer exceeds `max_response_bytes`."""


@dataclass
class Answer:
    """A whole upstream answer (or llmitm's own when nothing could serve)."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def end_to_end(headers: Any) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers.items() if k.lower() not in HOP_BY_HOP]


class Relay:
    def __init__(self) -> None:
        self.jobs: dict[str, RelayJob] = {}
        self.port = 0
        self._runner: web.ServerRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._start_lock = asyncio.Lock()

    async def start(self) -> None:
        async with self._start_lock:
            if self._runner is not None:
                return
            # trust_env=False: the proxy often inherits HTTPS_PROXY pointing at itself.
            self._session = aiohttp.ClientSession(
                trust_env=False,
                # Send the app's headers as they are: no aiohttp User-Agent or Accept-Encoding added.
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
                auto_decompress=False,
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
            )
            # The low-level server: one handler, no router or middlewares on this hot path. When the app
            # hangs up, mitmproxy drops our connection and the handler is cancelled: the upstream call
            # ends now, not at its next chunk or idle timeout (blamed on the upstream, as it was).
            server = web.Server(self._handle, access_log=None, handler_cancellation=True)
            # On close a relayed stream still running gets half a second, then is cancelled: aiohttp's
            # default (60 s, twice) kept a stopping proxy alive minutes behind a silent upstream.
            self._runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=0.5)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            log.debug("llmitm relay listening on 127.0.0.1:%d", self.port)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
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
        """Register a streaming job and return the URL mitmproxy should send the flow to."""
        await self.start()
        token = secrets.token_urlsafe(12)
        self.jobs[token] = job
        return f"http://127.0.0.1:{self.port}/llmitm-relay/{token}"

    def forget(self, url: str) -> None:
        self.jobs.pop(url.rsplit("/", 1)[-1], None)

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        job = self.jobs.pop(request.path.rsplit("/", 1)[-1], None)
        if job is None:
            return web.Response(status=404, text="unknown llmitm relay job")
        body = await request.content.read()  # no size cap here: mitmproxy and max_body_bytes bound it
        headers = end_to_end(request.headers)
        outcome = await self._run(job, request.method, headers, body,
                                  lambda t, up: self._stream_back(request, t, up, job.max_response_bytes))
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
                    try:
                        return await deliver(target, outcome)
                    finally:
                        job.tries[-1].end = time.time()
                last = outcome
                if job.pin:
                    break
        return self._give_up(job, last, exhausted)

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
        the connection failed before any response."""
        assert self._session is not None
        configured = {k.lower() for k in target.headers}
        send_headers = [(k, v) for k, v in headers
                        if k.lower() not in REGISTRY.credential_header_names and k.lower() not in configured]
        send_headers += target.headers.items()
        send_headers += REGISTRY.credential_headers(target.protocol, lease.secret, (k for k, _ in send_headers))
        started = time.monotonic()
        label = f"{target.provider}/{lease.key_id}"
        attempt = UpstreamTry(target.provider, lease.key_id, time.time())
        job.tries.append(attempt)
        try:
            upstream = await self._session.request(
                method, target.url, headers=send_headers, data=body,
                timeout=aiohttp.ClientTimeout(total=target.timeout, sock_connect=30),
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            lease.release(status=None, error=f"{type(e).__name__}: {e}")
            attempt.end, attempt.error = time.time(), type(e).__name__
            failure = f"{label}: connection failed ({type(e).__name__}) after {time.monotonic() - started:.2f}s"
            job.attempts.append(failure)
            return failure
        attempt.responded, attempt.status = time.time(), upstream.status
        if upstream.status in RETRYABLE:
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

    async def _stream_back(
        self, request: web.BaseRequest, target: Upstream, upstream: aiohttp.ClientResponse, limit: int
    ) -> web.StreamResponse:
        out = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for k, v in end_to_end(upstream.headers):
            out.headers.add(k, v)
        is_sse = upstream.headers.get("content-type", "").startswith("text/event-stream")
        try:
            await out.prepare(request)
            while True:
                try:
                    async with asyncio.timeout(target.idle_timeout):
                        chunk = await upstream.content.readany()
                except TimeoutError:
                    raise UpstreamIdle(f"no data from upstream for {target.idle_timeout:g} s") from None
                if not chunk:
                    break
                limit -= len(chunk)
                if limit < 0:  # a stream that never ends is capped like a whole answer
                    raise ResponseTooLarge("the streamed answer exceeds max_response_bytes")
                await out.write(chunk)
        except (TimeoutError, UpstreamIdle, ResponseTooLarge, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as e:
            # The upstream broke off (or fell silent) mid-answer: too late to retry, so say so in-band
            # where the protocol has a way to (SSE), and let the client see a clean end, not a hang.
            log.warning("llmitm: upstream %s broke off mid-response: %s", target.provider, e)
            reason = str(e) if isinstance(e, (UpstreamIdle, ResponseTooLarge)) else \
                f"upstream connection lost mid-stream: {type(e).__name__}"
            if is_sse:
                try:
                    await out.write(in_band_error(target.protocol, reason))
                except ConnectionError:
                    pass
        except ConnectionError:
            pass  # the client went away; nothing to deliver
        finally:
            upstream.release()
        try:
            await out.write_eof()
        except ConnectionError:
            pass
        return out

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


class UpstreamIdle(Exception):
    """A streamed answer fell silent for longer than the provider's idle_timeout_seconds."""


def retry_headers(retry_after: float, reason: str) -> list[tuple[str, str]]:
    return [
        ("content-type", "application/json"),
        ("retry-after", str(max(1, int(-(-float(retry_after) // 1))))),
        ("retry-after-ms", str(int(float(retry_after) * 1000))),
        ("x-llmitm-error", reason),
    ]


async def read_capped(upstream: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, refusing (ResponseTooLarge) once it passes `limit` bytes."""
    declared = upstream.content_length
    if declared is not None and declared > limit:
        raise ResponseTooLarge(f"the upstream answer of {declared} bytes exceeds max_response_bytes ({limit})")
    chunks, size = [], 0
    async for chunk in upstream.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise ResponseTooLarge(f"the upstream answer exceeds max_response_bytes ({limit})")
        chunks.append(chunk)
    return b"".join(chunks)


def _json_or_none(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def in_band_error(protocol: str, message: str) -> bytes:
    """An error event in the upstream protocol's own stream format (PROTOCOLS.md §2.11), as its spoke
    renders one at the end of a translated stream."""
    return render_stream_error(protocol, 502, message)
