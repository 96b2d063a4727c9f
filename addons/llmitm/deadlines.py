"""A deadline for every request's headers: a client that trickles them (slowloris) is cut off.

mitmproxy has no header-read timeout on either line: its only timer (`TCP_TIMEOUT`, 600 s, hard-coded
in 11.0.2; the `tcp_timeout` option in 12.x) closes a connection after that long *without any byte*,
so a client sending one header byte every few seconds holds its connection, and the memory and file
descriptor behind it, forever.

So from the moment a client connects, and again whenever it has no request open (after each answer on
a keep-alive connection, and after the CONNECT that opens a TLS tunnel llmitm terminates), it has
`header_timeout_seconds` to deliver a complete request head (mitmproxy's `requestheaders` hook, or
`http_connect` for a CONNECT). Otherwise llmitm closes the connection and logs one line. While a
request is open (its body being read, its answer being made or streamed, however long) the clock is
stopped; on HTTP/2 it runs again only once every stream is answered. A keep-alive connection therefore
also closes after that long idle, as web servers do (nginx's `keepalive_timeout`).

What is not watched: a CONNECT tunnel to a host llmitm does not intercept (its bytes pass through
untouched; llmitm reads no headers there), a WebSocket once upgraded, and listeners whose clients need
not speak HTTP first (transparent, SOCKS5, WireGuard, local capture, reverse to a TCP/TLS/UDP target).

Closing is what mitmproxy's own idle watchdog does (`ConnectionHandler.on_timeout` in `proxy/server.py`,
the same in 11.0.2 and 12.x): cancel the task that reads the client; its cleanup closes the socket and
every server connection of that client. The handler is found in the `proxyserver` addon's
`connections`, keyed by the client connection's id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from mitmproxy import connection, ctx, http
from mitmproxy.proxy import mode_specs

log = logging.getLogger(__name__)

HTTP_SCHEMES = frozenset({"http", "https"})


def speaks_http_first(client: connection.Client) -> bool:
    """Whether `client`'s listener expects an HTTP request as the first thing on the connection."""
    mode = client.proxy_mode
    if client.transport_protocol != "tcp":
        return False
    if isinstance(mode, (mode_specs.RegularMode, mode_specs.UpstreamMode)):
        return True
    return isinstance(mode, mode_specs.ReverseMode) and mode.scheme in HTTP_SCHEMES


class Watch:
    """One client connection's clock: running while no request is open, stopped while any is."""

    def __init__(self, client_id: str, peer: str) -> None:
        self.client_id = client_id
        self.peer = peer
        self.open_requests: set[str] = set()  # flow ids; more than one only on HTTP/2
        self.timer: asyncio.TimerHandle | None = None
        self.seconds = 0.0  # the running deadline's length (the config may be reloaded meanwhile)

    def start(self, seconds: float, expire: Callable[[Watch], None]) -> None:
        self.stop()
        self.seconds = seconds
        self.timer = asyncio.get_running_loop().call_later(seconds, expire, self)

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class HeaderDeadlines:
    """mitmproxy addon: close a client connection that takes longer than `timeout()` seconds to send a
    request's headers (see the module docstring). `intercepts(host)`: whether llmitm terminates TLS
    for `host` (else a CONNECT tunnel to it is passed through and not watched). At most one timer per
    open client connection, cancelled when it closes."""

    def __init__(self, timeout: Callable[[], float], intercepts: Callable[[str], bool]) -> None:
        self.timeout = timeout
        self.intercepts = intercepts
        self.watches: dict[str, Watch] = {}

    # -- connection ---------------------------------------------------------------------------

    def client_connected(self, client: connection.Client) -> None:
        if speaks_http_first(client):
            watch = self.watches[client.id] = Watch(client.id, _address(client.peername))
            watch.start(self.timeout(), self.expire)

    def client_disconnected(self, client: connection.Client) -> None:
        self._forget(client.id)

    # -- requests -----------------------------------------------------------------------------

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        self._opened(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        self._answered(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._answered(flow)

    def http_connect(self, flow: http.HTTPFlow) -> None:
        self._opened(flow)

    def http_connected(self, flow: http.HTTPFlow) -> None:
        if self.intercepts(flow.request.host):
            self._answered(flow)  # the tunnel's first request (TLS handshake included) is now due
        else:
            self._forget(flow.client_conn.id)  # tunneled untouched: no headers of llmitm's to read

    def http_connect_error(self, flow: http.HTTPFlow) -> None:
        self._answered(flow)

    def websocket_start(self, flow: http.HTTPFlow) -> None:
        self._forget(flow.client_conn.id)  # frames from here on, never another request head

    # -- the clock ----------------------------------------------------------------------------

    def _opened(self, flow: http.HTTPFlow) -> None:
        watch = self.watches.get(flow.client_conn.id)
        if watch is not None:
            watch.open_requests.add(flow.id)
            watch.stop()

    def _answered(self, flow: http.HTTPFlow) -> None:
        watch = self.watches.get(flow.client_conn.id)
        if watch is not None and flow.id in watch.open_requests:
            watch.open_requests.discard(flow.id)
            if not watch.open_requests:
                watch.start(self.timeout(), self.expire)

    def _forget(self, client_id: str) -> None:
        watch = self.watches.pop(client_id, None)
        if watch is not None:
            watch.stop()

    def expire(self, watch: Watch) -> None:
        """The deadline passed with no request head: close the client's connection."""
        if self.watches.get(watch.client_id) is not watch:
            return
        self._forget(watch.client_id)
        log.warning("llmitm: closed the connection from %s: no complete request headers within %g s "
                    "(header_timeout_seconds)", watch.peer, watch.seconds)
        if not close_client(watch.client_id):
            log.error("llmitm: could not close the connection from %s (mitmproxy's connection table "
                      "changed?)", watch.peer)


def close_client(client_id: str) -> bool:
    """Close the client connection `client_id` as mitmproxy's idle watchdog does; False if not found."""
    proxyserver = ctx.master.addons.get("proxyserver") if ctx.master else None
    handler = getattr(proxyserver, "connections", {}).get(client_id)
    transports = getattr(handler, "transports", None)
    io = transports.get(handler.client) if transports is not None else None
    task = getattr(io, "handler", None)
    if task is None:
        return False
    task.cancel("llmitm: header timeout")
    return True


def _address(peername: object) -> str:
    if isinstance(peername, tuple) and len(peername) >= 2:
        return f"{peername[0]}:{peername[1]}"
    return "an unknown address"
