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

The pooled key exists only here: mitmproxy's flow (and so mitmweb and saved flows) never holds it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from .protocols.errors import render_error, render_stream_error
from .protocols.registry import REGISTRY

log = logging.getLogger(__name__)

# 401/402/403 too: they are about the key (the pool disables it until a probe succeeds), so another key may serve.
RETRYABLE = frozenset({401, 402, 403, 408, 409, 429, 500, 502, 503, 504, 520, 522, 524, 529})
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "content-length", "host",
})
T = TypeVar("T")


@dataclass
class Candidate:
    """One provider that may serve the request: the route's own, then its fallbacks, in order."""

    provider: str
    protocol: str
    url: str
    pool: Any  # pool.KeyPool
    timeout: float = 600.0


@dataclass
class RelayJob:
    candidates: list[Candidate]
    pin: str | None = None
    # Filled in by the relay:
    served: Candidate | None = None
    lease: Any = None  # the lease of the attempt whose answer was kept; released by the addon
    attempts: list[str] = field(default_factory=list)


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
            # The low-level server: one handler, no router or middlewares on this hot path.
            server = web.Server(self._handle, access_log=None)
            self._runner = web.ServerRunner(server, handle_signals=False)
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

        async def read_whole(candidate: Candidate, upstream: aiohttp.ClientResponse) -> Answer:
            try:
                data = await upstream.read()
            finally:
                upstream.release()
            return Answer(upstream.status, end_to_end(upstream.headers), data)

        try:
            return await self._run(job, method, headers, body, read_whole)
        except (TimeoutError, aiohttp.ClientError) as e:
            # The kept answer broke off while being read: too late to retry (the key is leased).
            message = f"llmitm: upstream connection lost while reading the answer: {type(e).__name__}"
            protocol = job.candidates[0].protocol
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
        outcome = await self._run(job, request.method, headers, body, lambda c, up: self._stream_back(request, c, up))
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
        deliver: Callable[[Candidate, aiohttp.ClientResponse], Awaitable[T]],
    ) -> T | Answer:
        last: Answer | None = None
        exhausted: Exception | None = None
        for n, candidate in enumerate(job.candidates):
            tried: set[str] = set()
            budget = 2 * max(1, len(candidate.pool.key_ids))  # attempts on this provider
            while budget > 0:
                try:
                    lease = await candidate.pool.acquire(pin=job.pin if n == 0 else None, exclude=tried)
                except Exception as e:  # PoolExhausted (or an unknown pinned key)
                    exhausted = e
                    if not tried or getattr(e, "retry_after", None) is None:
                        break  # nothing left on this provider: the next one
                    # Every key was tried once: go round again, now waiting (up to max_wait) for
                    # the first one to leave its cooldown.
                    tried.clear()
                    continue
                budget -= 1
                exhausted = None
                tried.add(lease.key_id)
                outcome = await self._attempt(job, candidate, lease, method, headers, body)
                if isinstance(outcome, aiohttp.ClientResponse):
                    return await deliver(candidate, outcome)
                if outcome is not None:
                    last = outcome
                if job.pin:
                    break
        return self._give_up(job, last, exhausted)

    async def _attempt(
        self,
        job: RelayJob,
        candidate: Candidate,
        lease: Any,
        method: str,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> aiohttp.ClientResponse | Answer | None:
        """One upstream call: the response to keep, or the failed answer to remember (None when
        the connection failed)."""
        assert self._session is not None
        send_headers = [(k, v) for k, v in headers if k.lower() not in REGISTRY.credential_header_names]
        send_headers += REGISTRY.credential_headers(candidate.protocol, lease.secret, (k for k, _ in send_headers))
        started = time.monotonic()
        label = f"{candidate.provider}/{lease.key_id}"
        try:
            upstream = await self._session.request(
                method, candidate.url, headers=send_headers, data=body,
                timeout=aiohttp.ClientTimeout(total=candidate.timeout, sock_connect=30),
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            lease.release(status=None, error=f"{type(e).__name__}: {e}")
            job.attempts.append(f"{label}: connection failed ({type(e).__name__}) after {time.monotonic() - started:.2f}s")
            return None
        if upstream.status in RETRYABLE:
            try:
                data = await upstream.read()
            except (TimeoutError, aiohttp.ClientError):
                data = b""
            finally:
                upstream.release()
            lease.release(status=upstream.status, headers=dict(upstream.headers), body_json=_json_or_none(data))
            job.attempts.append(f"{label}: {upstream.status}, retried")
            return Answer(upstream.status, end_to_end(upstream.headers), data)
        job.served, job.lease = candidate, lease
        job.attempts.append(f"{label}: {upstream.status} in {time.monotonic() - started:.2f}s")
        return upstream

    async def _stream_back(
        self, request: web.BaseRequest, candidate: Candidate, upstream: aiohttp.ClientResponse
    ) -> web.StreamResponse:
        out = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for k, v in end_to_end(upstream.headers):
            out.headers.add(k, v)
        is_sse = upstream.headers.get("content-type", "").startswith("text/event-stream")
        try:
            await out.prepare(request)
            async for chunk in upstream.content.iter_any():
                await out.write(chunk)
        except (TimeoutError, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as e:
            # The upstream broke off mid-answer: too late to retry, so say so in-band where the
            # protocol has a way to (SSE), and let the client see a clean end rather than a hang.
            log.warning("llmitm: upstream %s broke off mid-response: %s", candidate.provider, e)
            if is_sse:
                try:
                    await out.write(in_band_error(candidate.protocol, f"upstream connection lost mid-stream: {type(e).__name__}"))
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
    def _give_up(job: RelayJob, last: Answer | None, exhausted: Exception | None) -> Answer:
        """Nothing could serve: the earliest moment a key frees up, as a 429 with Retry-After; or the
        last upstream answer when retries ran out."""
        protocol = job.candidates[0].protocol
        retry_after = getattr(exhausted, "retry_after", None)
        if retry_after is not None:
            headers = [
                ("content-type", "application/json"),
                ("retry-after", str(max(1, int(-(-float(retry_after) // 1))))),
                ("retry-after-ms", str(int(float(retry_after) * 1000))),
                ("x-llmitm-error", "pool-exhausted"),
            ]
            tried = "; ".join(job.attempts) or "no attempt"
            message = f"llmitm: no key can serve this request now ({exhausted}); attempts: {tried}"
            return Answer(429, headers, render_error(protocol, 429, message))
        if last is not None:
            return last
        message = f"llmitm: {exhausted}" if exhausted else "llmitm: no upstream attempt was possible"
        return Answer(400, [("content-type", "application/json")], render_error(protocol, 400, message))

    # -- probes -------------------------------------------------------------------------------

    async def probe(self, url: str, protocol: str, secret: str) -> int | None:
        """One cheap authenticated GET (a model list) to see whether a disabled key works again."""
        await self.start()
        assert self._session is not None
        try:
            async with self._session.get(url, headers=REGISTRY.credential_headers(protocol, secret),
                                         timeout=aiohttp.ClientTimeout(total=15)) as resp:
                await resp.read()
                return resp.status
        except (TimeoutError, aiohttp.ClientError, OSError):
            return None


def _json_or_none(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def in_band_error(protocol: str, message: str) -> bytes:
    """An error event in the upstream protocol's own stream format (PROTOCOLS.md §2.11), as its spoke
    renders one at the end of a translated stream."""
    return render_stream_error(protocol, 502, message)
