"""The relay: an in-process loopback HTTP server that owns the upstream calls of pooled flows.

Why a relay (MITMPROXY.md §6, design C): mitmproxy cannot re-send a request within one flow, and once
a streamed response has started the client owns those bytes. To retry on another key transparently
*and* keep streaming incremental, a pooled flow is pointed at this relay; the relay draws a key, sends
the request upstream, and on a 429/529/5xx or a connection error — all before the first byte goes
back — releases that key to its cooldown and tries the next key, then the route's fallback providers.
The first answer it keeps is streamed back chunk by chunk. Buffered retry (design A) would make a
streaming client wait for the whole retried answer; leaving retries to the SDK (design B) fails apps
that disabled retries. The cost is one loopback hop per pooled request, measured by scripts/bench.

The pooled key exists only here: mitmproxy's flow (and so mitmweb and saved flows) never holds it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from . import credentials
from .protocols.errors import render_error

log = logging.getLogger(__name__)

# 401/402/403 too: they are about the key (the pool disables it until a probe succeeds), so another key may serve.
RETRYABLE = frozenset({401, 402, 403, 408, 409, 429, 500, 502, 503, 504, 520, 522, 524, 529})
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "content-length", "host",
})


@dataclass
class Candidate:
    """One provider that may serve the request: the route's own, then its fallbacks, in order."""

    provider: str
    protocol: str
    url: str
    pool: Any  # pool.KeyPool
    body: bytes | None = None  # None: the body mitmproxy forwards (the main provider's)
    timeout: float = 600.0


@dataclass
class RelayJob:
    candidates: list[Candidate]
    pin: str | None = None
    # Filled in by the relay:
    served: Candidate | None = None
    lease: Any = None  # the lease of the attempt whose answer was kept; released by the addon
    attempts: list[str] = field(default_factory=list)


class Relay:
    def __init__(self) -> None:
        self.jobs: dict[str, RelayJob] = {}
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._start_lock = asyncio.Lock()

    async def start(self) -> None:
        async with self._start_lock:
            if self._runner is not None:
                return
            # trust_env=False: the proxy often inherits HTTPS_PROXY pointing at itself.
            self._session = aiohttp.ClientSession(
                trust_env=False,
                auto_decompress=False,
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
            )
            app = web.Application(client_max_size=1 << 30)
            app.router.add_route("*", "/llmitm-relay/{token}", self._handle)
            self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
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

    async def submit(self, job: RelayJob) -> str:
        """Register a job and return the URL mitmproxy should send the flow to."""
        await self.start()
        token = secrets.token_urlsafe(12)
        self.jobs[token] = job
        return f"http://127.0.0.1:{self.port}/llmitm-relay/{token}"

    async def probe(self, url: str, protocol: str, secret: str) -> int | None:
        """One cheap authenticated GET (a model list) to see whether a disabled key works again."""
        await self.start()
        assert self._session is not None
        try:
            async with self._session.get(url, headers=credentials.credential_headers(protocol, secret, False),
                                         timeout=aiohttp.ClientTimeout(total=15)) as resp:
                await resp.read()
                return resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            return None

    def forget(self, url: str) -> None:
        self.jobs.pop(url.rsplit("/", 1)[-1], None)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        job = self.jobs.pop(request.match_info["token"], None)
        if job is None:
            return web.Response(status=404, text="unknown llmitm relay job")
        body = await request.read()
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP]
        last: tuple[int, dict[str, str], bytes] | None = None
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
                outcome = await self._attempt(request, job, candidate, lease, headers, body)
                if isinstance(outcome, web.StreamResponse):
                    return outcome
                if outcome is not None:
                    last = outcome
                if job.pin:
                    break
        return self._give_up(job, last, exhausted)

    async def _attempt(
        self,
        request: web.Request,
        job: RelayJob,
        candidate: Candidate,
        lease: Any,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> web.StreamResponse | tuple[int, dict[str, str], bytes] | None:
        """One upstream call. Returns the streamed answer, or the failed status to remember."""
        assert self._session is not None
        send_headers = [(k, v) for k, v in headers if k.lower() not in credentials.AUTH_HEADERS]
        has_version = any(k.lower() == "anthropic-version" for k, _ in send_headers)
        send_headers += credentials.credential_headers(candidate.protocol, lease.secret, has_version)
        started = time.monotonic()
        label = f"{candidate.provider}/{lease.key_id}"
        try:
            upstream = await self._session.request(
                request.method,
                candidate.url,
                headers=send_headers,
                data=candidate.body if candidate.body is not None else body,
                timeout=aiohttp.ClientTimeout(total=candidate.timeout, sock_connect=30),
            )
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            lease.release(status=None, error=f"{type(e).__name__}: {e}")
            job.attempts.append(f"{label}: connection failed ({type(e).__name__}) after {time.monotonic() - started:.2f}s")
            return None
        if upstream.status in RETRYABLE:
            try:
                data = await upstream.read()
            except (aiohttp.ClientError, asyncio.TimeoutError):
                data = b""
            finally:
                upstream.release()
            lease.release(status=upstream.status, headers=dict(upstream.headers), body_json=_json_or_none(data))
            job.attempts.append(f"{label}: {upstream.status}, retried")
            return upstream.status, dict(upstream.headers), data
        job.served, job.lease = candidate, lease
        job.attempts.append(f"{label}: {upstream.status} in {time.monotonic() - started:.2f}s")
        return await self._stream_back(request, candidate, upstream)

    async def _stream_back(self, request: web.Request, candidate: Candidate, upstream: aiohttp.ClientResponse) -> web.StreamResponse:
        out = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for k, v in upstream.headers.items():
            if k.lower() not in HOP_BY_HOP:
                out.headers.add(k, v)
        is_sse = upstream.headers.get("content-type", "").startswith("text/event-stream")
        try:
            await out.prepare(request)
            async for chunk in upstream.content.iter_any():
                await out.write(chunk)
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, asyncio.TimeoutError) as e:
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
    def _give_up(job: RelayJob, last: tuple[int, dict[str, str], bytes] | None, exhausted: Exception | None) -> web.Response:
        """Nothing could serve: the earliest moment a key frees up, as a 429 with Retry-After."""
        protocol = job.candidates[0].protocol
        retry_after = getattr(exhausted, "retry_after", None)
        if retry_after is not None:
            headers = {
                "content-type": "application/json",
                "retry-after": str(max(1, int(-(-float(retry_after) // 1)))),
                "retry-after-ms": str(int(float(retry_after) * 1000)),
                "x-llmitm-error": "pool-exhausted",
            }
            tried = "; ".join(job.attempts) or "no attempt"
            message = f"llmitm: no key can serve this request now ({exhausted}); attempts: {tried}"
            return web.Response(status=429, body=render_error(protocol, 429, message), headers=headers)
        if last is not None:
            status, headers, data = last
            keep = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP and k.lower() != "content-encoding"}
            return web.Response(status=status, body=data, headers=keep)
        message = f"llmitm: {exhausted}" if exhausted else "llmitm: no upstream attempt was possible"
        return web.Response(status=400, body=render_error(protocol, 400, message), headers={"content-type": "application/json"})


def _json_or_none(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def in_band_error(protocol: str, message: str) -> bytes:
    """An error event in the upstream protocol's own stream format (PROTOCOLS.md §2.11)."""
    if protocol == "anthropic":
        payload = {"type": "error", "error": {"type": "api_error", "message": message}}
        return b"event: error\ndata: " + json.dumps(payload).encode() + b"\n\n"
    if protocol == "openai-responses":
        payload = {"type": "error", "code": "server_error", "message": message, "param": None}
        return b"event: error\ndata: " + json.dumps(payload).encode() + b"\n\n"
    return b"data: " + render_error(protocol, 502, message) + b"\n\n"
