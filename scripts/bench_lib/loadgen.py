"""One load generator for every configuration: asyncio, HTTP/1.1 keep-alive, one connection per worker.

Modes: `plain` (HTTP straight to an address: the upstream itself, or LiteLLM's base URL) and `connect`
(HTTPS_PROXY semantics: CONNECT host:443 to the proxy, TLS with the proxy's CA and SNI = the real host,
ALPN http/1.1 as httpx/the SDKs send). Stdlib only, so its own cost per request stays small and equal
for every configuration. Every run is bounded in time (deadline) and count (max_requests).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field


@dataclass
class Target:
    name: str
    mode: str  # "plain" | "connect"
    addr: tuple[str, int]  # TCP peer: upstream, LiteLLM or the proxy
    host: str  # Host header (and CONNECT target / SNI for mode=connect)
    path: str
    body: bytes
    stream: bool
    headers: dict[str, str] = field(default_factory=dict)
    cafile: str | None = None

    def request_bytes(self) -> bytes:
        lines = [f"POST {self.path} HTTP/1.1", f"Host: {self.host}", "Content-Type: application/json",
                 "Accept: application/json" if not self.stream else "Accept: text/event-stream",
                 "User-Agent: llmitm-bench/1", f"Content-Length: {len(self.body)}"]
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


class RequestFailed(Exception):
    pass


@dataclass
class Reply:
    status: int
    body: bytes
    latency: float
    ttfe: float | None  # first complete SSE event (first blank line) after the request was written
    events: int


class Conn:
    def __init__(self, target: Target) -> None:
        self.t = target
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.req = target.request_bytes()

    async def open(self) -> None:
        t = self.t
        reader, writer = await asyncio.open_connection(*t.addr, limit=1 << 20)
        if t.mode == "connect":
            writer.write(f"CONNECT {t.host}:443 HTTP/1.1\r\nHost: {t.host}:443\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            if head[9:12] != b"200":
                writer.close()
                raise RequestFailed(f"CONNECT answered {head[:40]!r}")
            ctx = ssl.create_default_context(cafile=t.cafile)
            ctx.set_alpn_protocols(["http/1.1"])
            await writer.start_tls(ctx, server_hostname=t.host)
        self.reader, self.writer = reader, writer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self) -> Reply:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        r = self.reader
        t0 = time.perf_counter()
        self.writer.write(self.req)
        head = await r.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        clen = -1
        chunked = close = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                clen = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                close = True
        body = bytearray()
        ttfe = None
        if chunked:
            while True:
                line = await r.readuntil(b"\r\n")
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while await r.readuntil(b"\r\n") != b"\r\n":
                        pass
                    break
                data = await r.readexactly(size + 2)
                body += data[:-2]
                if ttfe is None and b"\n\n" in body:
                    ttfe = time.perf_counter() - t0
        elif clen >= 0:
            while len(body) < clen:
                data = await r.read(clen - len(body))
                if not data:
                    raise RequestFailed("connection closed mid-body")
                body += data
                if ttfe is None and b"\n\n" in body:
                    ttfe = time.perf_counter() - t0
        else:
            close = True
            while data := await r.read(65536):
                body += data
                if ttfe is None and b"\n\n" in body:
                    ttfe = time.perf_counter() - t0
        latency = time.perf_counter() - t0
        if close:
            self.close()
        events = body.count(b"\n\n") if self.t.stream else 0
        return Reply(status, bytes(body), latency, ttfe if self.t.stream else None, events)


@dataclass
class CellResult:
    target: str
    concurrency: int
    ok: int = 0
    errors: int = 0
    bad_status: dict[int, int] = field(default_factory=dict)
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    ttfes: list[float] = field(default_factory=list)
    events: list[int] = field(default_factory=list)
    first_error: str | None = None

    @property
    def rps(self) -> float:
        return self.ok / self.elapsed if self.elapsed > 0 else 0.0


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))
    return s[k]


async def run_cell(target: Target, concurrency: int, duration: float, max_requests: int,
                   timeout: float = 30.0) -> CellResult:
    """Each worker opens its connection and makes one unmeasured request; then all are timed together
    for `duration` seconds or until `max_requests` have completed, whichever comes first."""
    res = CellResult(target.name, concurrency)
    conns = [Conn(target) for _ in range(concurrency)]

    async def warm(c: Conn) -> None:
        try:
            await asyncio.wait_for(c.request(), timeout)
        except Exception as e:  # noqa: BLE001 - recorded; the measured loop reconnects
            res.first_error = res.first_error or f"warm-up: {type(e).__name__}: {e}"
            c.close()

    await asyncio.gather(*(warm(c) for c in conns))
    started = 0
    t_start = time.perf_counter()
    deadline = t_start + duration

    async def worker(c: Conn) -> None:
        nonlocal started
        while time.perf_counter() < deadline and started < max_requests:
            started += 1
            try:
                rep = await asyncio.wait_for(c.request(), timeout)
            except Exception as e:  # noqa: BLE001
                res.errors += 1
                res.first_error = res.first_error or f"{type(e).__name__}: {e}"
                c.close()
                await asyncio.sleep(0.01)
                continue
            if rep.status != 200:
                res.bad_status[rep.status] = res.bad_status.get(rep.status, 0) + 1
                res.errors += 1
                if res.first_error is None:
                    res.first_error = f"HTTP {rep.status}: {rep.body[:300]!r}"
                continue
            res.ok += 1
            res.latencies.append(rep.latency)
            if rep.ttfe is not None:
                res.ttfes.append(rep.ttfe)
            if target.stream:
                res.events.append(rep.events)

    await asyncio.gather(*(worker(c) for c in conns))
    res.elapsed = time.perf_counter() - t_start
    for c in conns:
        c.close()
    return res


async def one_request(target: Target, timeout: float = 30.0) -> Reply:
    c = Conn(target)
    try:
        return await asyncio.wait_for(c.request(), timeout)
    finally:
        c.close()
