"""The relay's loopback server: how an answer llmitm fetched itself reaches mitmproxy as a stream.

An addon-made `flow.response` goes out in one piece (MITMPROXY.md §3), so a streamed answer cannot be
handed to mitmproxy from the `request` hook. Instead the flow is pointed at this server, a loopback
HTTP server inside the proxy process (design C, MITMPROXY.md §6): mitmproxy sends the request here,
the relay makes the upstream call (key draw and retries for pooled calls, one attempt for keyless
ones) and this server writes the kept answer back chunk by chunk, so even a retried stream reaches
the app event by event.

Each job gets a one-shot URL (`/llmitm-relay/<token>`): the first request to it takes the job, so a
replayed or guessed URL finds nothing (404). The answer is bounded like a whole one: a stream that
falls silent for the provider's `idle_timeout_seconds`, or grows past `max_response_bytes`, ends with
an in-band error event where the protocol has one (SSE) and a clean end of the body, never a hang.

Kept apart from relay.py (the attempts) because delivery is its own concern; it knows nothing of
keys, pools or mitmproxy.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from .protocols.errors import render_stream_error

log = logging.getLogger(__name__)

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "content-length", "host",
})
RELAY_PATH = "/llmitm-relay/"


@dataclass
class Answer:
    """A whole upstream answer (or llmitm's own when nothing could serve)."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


class ResponseTooLarge(Exception):
    """The upstream's answer exceeds `max_response_bytes`."""


class UpstreamIdle(Exception):
    """A streamed answer fell silent for longer than the provider's idle_timeout_seconds."""


def end_to_end(headers: Any) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers.items() if k.lower() not in HOP_BY_HOP]


def in_band_error(protocol: str, message: str) -> bytes:
    """An error event in the upstream protocol's own stream format (PROTOCOLS.md §2.11), as its spoke
    renders one at the end of a translated stream."""
    return render_stream_error(protocol, 502, message)


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


# How the relay serves one job that arrived here: (job, the request mitmproxy sent) -> the response.
Serve = Callable[[Any, web.BaseRequest], Awaitable[web.StreamResponse]]


class RelayServer:
    """The loopback server and its table of waiting jobs (one-shot URLs)."""

    def __init__(self, serve: Serve) -> None:
        self.serve = serve
        self.jobs: dict[str, Any] = {}
        self.port = 0
        self._runner: web.ServerRunner | None = None

    async def start(self) -> None:
        if self._runner is not None:
            return
        # The low-level server: one handler, no router or middlewares on this hot path. When the app
        # hangs up, mitmproxy drops our connection and the handler is cancelled: the upstream call
        # ends now, not at its next chunk or idle timeout (blamed on the upstream, as it was).
        server = web.Server(self._handle, access_log=None, handler_cancellation=True)
        # On close a relayed stream still running gets half a second, then is cancelled: aiohttp's
        # default (60 s, twice) kept a stopping proxy alive minutes behind a silent upstream.
        runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.debug("llmitm relay listening on 127.0.0.1:%d", self.port)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def submit(self, job: Any) -> str:
        """Register `job`; the URL mitmproxy should send its flow to."""
        token = secrets.token_urlsafe(12)
        self.jobs[token] = job
        return f"http://127.0.0.1:{self.port}{RELAY_PATH}{token}"

    def forget(self, url: str) -> None:
        """Drop the job of a flow that will never reach the server (the app went away, a bug)."""
        self.jobs.pop(url.rsplit("/", 1)[-1], None)

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        job = self.jobs.pop(request.path.rsplit("/", 1)[-1], None)
        if job is None:
            return web.Response(status=404, text="unknown llmitm relay job")
        return await self.serve(job, request)


async def stream_back(request: web.BaseRequest, protocol: str, provider: str, upstream: aiohttp.ClientResponse,
                      idle_timeout: float, limit: int) -> web.StreamResponse:
    """Write the upstream's answer to mitmproxy chunk by chunk, as it arrives (see the module docstring)."""
    out = web.StreamResponse(status=upstream.status, reason=upstream.reason)
    for k, v in end_to_end(upstream.headers):
        out.headers.add(k, v)
    is_sse = upstream.headers.get("content-type", "").startswith("text/event-stream")
    if upstream.content_length is not None and not is_sse:  # framed as the upstream framed it
        out.content_length = upstream.content_length
    try:
        await out.prepare(request)
        while True:
            try:
                async with asyncio.timeout(idle_timeout):
                    chunk = await upstream.content.readany()
            except TimeoutError:
                raise UpstreamIdle(f"no data from upstream for {idle_timeout:g} s") from None
            if not chunk:
                break
            limit -= len(chunk)
            if limit < 0:  # a stream that never ends is capped like a whole answer
                raise ResponseTooLarge("the streamed answer exceeds max_response_bytes")
            await out.write(chunk)
    except (TimeoutError, UpstreamIdle, ResponseTooLarge, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as e:
        # The upstream broke off (or fell silent) mid-answer: too late to retry, so say so in-band
        # where the protocol has a way to (SSE), and let the client see a clean end, not a hang.
        log.warning("llmitm: upstream %s broke off mid-response: %s", provider, e)
        reason = str(e) if isinstance(e, (UpstreamIdle, ResponseTooLarge)) else \
            f"upstream connection lost mid-stream: {type(e).__name__}"
        if is_sse:
            try:
                await out.write(in_band_error(protocol, reason))
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
