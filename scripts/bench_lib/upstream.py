"""A fast replay upstream on loopback: OpenAI Chat Completions and Anthropic Messages, stream and non-stream.

    python -m bench_lib.upstream --port 0 --port-file F [--events-per-write 1]

POST /v1/chat/completions -> OpenAI shape, POST /v1/messages -> Anthropic shape; `"stream": true` in the
JSON body selects a 200-event SSE stream (chunked, first event written with the headers, the rest one
write per `--events-per-write` events, yielding to the loop between writes (or pausing `--event-gap-ms`)
so events leave as separate segments, as a real provider's do; under load a busy reader still coalesces
them). GET /__stats returns per-path, per-key and per-mode counters so the harness can check that a
proxy really routed (and key-swapped / translated) what it claims.
Plain asyncio.Protocol, no framework: the upstream must cost little next to the proxy under test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
from collections import Counter

from . import shapes

_COMMON = (b"Connection: keep-alive\r\n"
           b"Date: Thu, 26 Nov 2026 04:00:00 GMT\r\n"
           b"x-request-id: req_bench0123456789abcdef\r\n")
_OA_HDRS = (b"openai-organization: bench-org\r\nopenai-processing-ms: 123\r\nopenai-version: 2020-10-01\r\n"
            b"x-ratelimit-limit-requests: 10000\r\nx-ratelimit-limit-tokens: 30000000\r\n"
            b"x-ratelimit-remaining-requests: 9999\r\nx-ratelimit-remaining-tokens: 29999950\r\n"
            b"x-ratelimit-reset-requests: 6ms\r\nx-ratelimit-reset-tokens: 0s\r\n")
_AN_HDRS = (b"anthropic-organization-id: 00000000-0000-0000-0000-000000000000\r\n"
            b"anthropic-ratelimit-requests-limit: 4000\r\nanthropic-ratelimit-requests-remaining: 3999\r\n"
            b"anthropic-ratelimit-requests-reset: 2026-11-26T04:00:01Z\r\n"
            b"anthropic-ratelimit-tokens-limit: 400000\r\nanthropic-ratelimit-tokens-remaining: 399000\r\n"
            b"anthropic-ratelimit-tokens-reset: 2026-11-26T04:00:01Z\r\n")


def _json_response(body: bytes, extra: bytes) -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
            + _COMMON + extra + b"\r\n" + body)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class Replies:
    def __init__(self, events_per_write: int) -> None:
        self.oa_json = _json_response(shapes.openai_json(), _OA_HDRS)
        self.an_json = _json_response(shapes.anthropic_json(), _AN_HDRS)
        sse_head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
                    b"Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n" + _COMMON)
        k = max(1, events_per_write)

        def build(events: list[bytes], extra: bytes) -> list[bytes]:
            first = sse_head + extra + b"\r\n" + _chunk(events[0])
            rest = [_chunk(b"".join(events[i:i + k])) for i in range(1, len(events), k)]
            rest[-1] += b"0\r\n\r\n"
            return [first] + rest

        self.oa_stream = build(shapes.openai_stream_events(), _OA_HDRS)
        self.an_stream = build(shapes.anthropic_stream_events(), _AN_HDRS)
        self.not_found = (b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 58\r\n"
                          + _COMMON + b"\r\n" + b'{"error":{"type":"not_found","message":"bench: no route"}}')


class Stats:
    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.keys: Counter[str] = Counter()

    def as_json(self) -> bytes:
        return json.dumps({"hits": dict(self.hits), "keys": dict(self.keys)}).encode()


class UpstreamProtocol(asyncio.Protocol):
    def __init__(self, replies: Replies, stats: Stats, gap_s: float = 0.0) -> None:
        self.replies, self.stats, self.gap_s = replies, stats, gap_s
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False  # a stream is being written; further requests wait in buf
        self.can_write = asyncio.Event()
        self.can_write.set()

    def connection_made(self, transport):  # type: ignore[override]
        self.transport = transport

    def connection_lost(self, exc):  # type: ignore[override]
        self.transport = None
        self.can_write.set()

    def pause_writing(self):  # type: ignore[override]
        self.can_write.clear()

    def resume_writing(self):  # type: ignore[override]
        self.can_write.set()

    def data_received(self, data: bytes) -> None:  # type: ignore[override]
        self.buf += data
        if not self.busy:
            self._process()

    def _process(self) -> None:
        while self.transport is not None and not self.busy:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
            method, path, _ = (head[0].split(" ", 2) + ["", ""])[:3]
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "chunked" in headers.get("transfer-encoding", "").lower():
                body_end = self.buf.find(b"\r\n0\r\n\r\n", end + 4)
                if body_end < 0 and not self.buf.endswith(b"0\r\n\r\n"):
                    return
                raw = bytes(self.buf[end + 4:body_end + 7 if body_end >= 0 else len(self.buf)])
                total = end + 4 + len(raw)
                body = _dechunk(raw)
            else:
                n = int(headers.get("content-length", "0") or 0)
                total = end + 4 + n
                if len(self.buf) < total:
                    return
                body = bytes(self.buf[end + 4:total])
            del self.buf[:total]
            self._handle(method, path.split("?", 1)[0], headers, body)

    def _handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        assert self.transport is not None
        if method == "GET" and path == "/__stats":
            b = self.stats.as_json()
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                                 b"Connection: keep-alive\r\n\r\n%s" % (len(b), b))
            return
        stream = False
        if b'"stream"' in body:
            try:
                stream = json.loads(body).get("stream") is True
            except ValueError:
                pass
        key = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ").strip()
        if len(self.stats.keys) < 32 or key in self.stats.keys:
            self.stats.keys[key] += 1
        if path.endswith("/chat/completions"):
            kind, json_reply, stream_reply = "openai", self.replies.oa_json, self.replies.oa_stream
        elif path.endswith("/v1/messages"):
            kind, json_reply, stream_reply = "anthropic", self.replies.an_json, self.replies.an_stream
        else:
            self.stats.hits[f"404 {method} {path[:60]}"] += 1
            self.transport.write(self.replies.not_found)
            return
        self.stats.hits[f"{kind}-{'stream' if stream else 'json'}"] += 1
        if not stream:
            self.transport.write(json_reply)
            return
        self.busy = True
        self.transport.pause_reading()
        asyncio.get_running_loop().create_task(self._stream(stream_reply))

    async def _stream(self, parts: list[bytes]) -> None:
        try:
            for part in parts:
                if self.transport is None:
                    return
                if not self.can_write.is_set():
                    await self.can_write.wait()
                    if self.transport is None:
                        return
                self.transport.write(part)
                await asyncio.sleep(self.gap_s)
        finally:
            self.busy = False
            if self.transport is not None:
                self.transport.resume_reading()
                self._process()


def _dechunk(raw: bytes) -> bytes:
    out, i = bytearray(), 0
    while True:
        j = raw.find(b"\r\n", i)
        if j < 0:
            return bytes(out)
        size = int(raw[i:j].split(b";")[0] or b"0", 16)
        if size == 0:
            return bytes(out)
        out += raw[j + 2:j + 2 + size]
        i = j + 2 + size + 2


async def serve(host: str, port: int, port_file: str | None, events_per_write: int, gap_s: float = 0.0) -> None:
    replies, stats = Replies(events_per_write), Stats()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: UpstreamProtocol(replies, stats, gap_s), host, port, backlog=1024)
    real_port = server.sockets[0].getsockname()[1]
    if port_file:
        tmp = port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(real_port))
        os.replace(tmp, port_file)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--events-per-write", type=int, default=1)
    ap.add_argument("--event-gap-ms", type=float, default=0.0, help="pause between writes (token pacing)")
    a = ap.parse_args()
    if a.host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("the bench upstream only listens on loopback")
    asyncio.run(serve(a.host, a.port, a.port_file, a.events_per_write, a.event_gap_ms / 1000))


if __name__ == "__main__":
    main()
