"""The proxy's own doors stay shut: no client reaches llmitm's ports, or by default any local service,
through the proxy.

Why this is decided on *addresses*, at connection time: on mitmproxy 11.0.2 (the Python 3.11 install)
mitmweb has no authentication and lacks the CVE-2025-23217 fix, and a host-string comparison in the
`request` hook was bypassed by `127.1`, `2130706433`, `LOCALHOST`, `0.0.0.0` and by a plain
`CONNECT 127.0.0.1:8081` tunnel (not an AI host, so tunneled raw and never seen by `request`): 14 of 22
spellings read every prompt from `/flows`, and `PUT /options {"scripts": [...]}` ran code inside the
proxy. The same path reaches a loopback-only Redis state store and llmitm's own relay port.

So every destination a *client* chooses (a CONNECT target, an absolute-form `http://` request) is
resolved the way the operating system resolves it (`getaddrinfo` accepts every one of those spellings)
and refused when any resulting address is local — loopback, unspecified, link-local, or one of this
host's own interface addresses — unless the config allows local destinations; the proxy's own ports
(listeners, web UI, relay, metrics) are refused even then. `server_connect` repeats the check on the
address mitmproxy is about to dial (a name that resolves differently the second time), trusting only
the destinations llmitm itself chose (configured providers, the relay).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable, Iterable
from typing import NamedTuple

from mitmproxy import ctx, http

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
REFUSED_HEADER = "x-llmitm-refused"
_ZERO_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # "this network": 0.0.0.0 and friends reach the host


class Verdict(NamedTuple):
    allowed: bool
    reason: str = ""


def is_local(address: IPAddress) -> bool:
    """Loopback, unspecified, link-local, or an address of one of this host's interfaces."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback or address.is_unspecified or address.is_link_local:
        return True
    if isinstance(address, ipaddress.IPv4Address) and address in _ZERO_NETWORK:
        return True
    return _is_own_interface(address)


def _is_own_interface(address: IPAddress) -> bool:
    """Binding succeeds only for an address this host owns: cheaper and more complete than listing interfaces."""
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((str(address), 0))
        return True
    except OSError:
        return False


def judge(addresses: Iterable[IPAddress], port: int, *, own_ports: set[int], allow_local: bool) -> Verdict:
    """Whether a client may have the proxy connect to `port` at any of `addresses` (pure)."""
    local = [a for a in addresses if is_local(a)]
    if not local:
        return Verdict(True)
    if port in own_ports:
        return Verdict(False, f"{local[0]} port {port} is one of llmitm's own ports")
    if not allow_local:
        return Verdict(False, f"{local[0]} is a local address (set allow_local_destinations: true to permit)")
    return Verdict(True)


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the OS would dial for `host` (IP literals in any spelling included); [] if none."""
    host = host.strip("[]")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    out: list[IPAddress] = []
    for *_, sockaddr in infos:
        try:
            out.append(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]))
        except ValueError:
            continue
    return out


class NetGuard:
    """mitmproxy addon: refuse client-chosen destinations that lead back into this host.

    `intercepts(host)`: a host llmitm terminates and routes itself (its requests never go where the
    client said); `llmitm_targets()`: the (host, port) pairs llmitm itself sends traffic to (configured
    providers, its relay), trusted when mitmproxy dials them; `extra_own_ports()`: ports only llmitm
    knows (relay, metrics); `allow_local()`: the config's `allow_local_destinations`.
    """

    def __init__(
        self,
        intercepts: Callable[[str], bool],
        llmitm_targets: Callable[[], set[tuple[str, int]]],
        extra_own_ports: Callable[[], Iterable[int]],
        allow_local: Callable[[], bool],
    ) -> None:
        self.intercepts = intercepts
        self.llmitm_targets = llmitm_targets
        self.extra_own_ports = extra_own_ports
        self.allow_local = allow_local

    def own_ports(self) -> set[int]:
        ports = {p for p in self.extra_own_ports() if p}
        if "web_port" in ctx.options:
            ports.add(ctx.options.web_port)
        server = ctx.master.addons.get("proxyserver") if ctx.master else None
        for instance in getattr(server, "servers", []) or []:
            for _host, port, *_ in getattr(instance, "listen_addrs", []) or []:
                ports.add(port)
        if ctx.options.listen_port:
            ports.add(ctx.options.listen_port)
        return ports

    async def check(self, host: str, port: int) -> Verdict:
        addresses = await resolve(host, port)
        return judge(addresses, port, own_ports=self.own_ports(), allow_local=self.allow_local())

    async def http_connect(self, flow: http.HTTPFlow) -> None:
        await self._guard_client_destination(flow)

    async def requestheaders(self, flow: http.HTTPFlow) -> None:
        # Requests inside a TLS tunnel go where the CONNECT said (checked there); a plain-HTTP request
        # in absolute form names its own destination.
        if flow.response is None and flow.request.scheme == "http":
            await self._guard_client_destination(flow)

    async def server_connect(self, data) -> None:
        address = data.server.address
        if address is None or data.server.error:
            return
        host, port = str(address[0]), int(address[1])
        if (host, port) in self.llmitm_targets() or self.intercepts(host):
            return
        verdict = await self.check(host, port)
        if not verdict.allowed:
            log.warning("llmitm: refused a connection to %s:%d: %s", host, port, verdict.reason)
            data.server.error = f"llmitm refused this destination: {verdict.reason}"

    async def _guard_client_destination(self, flow: http.HTTPFlow) -> None:
        host, port = flow.request.host, flow.request.port
        if self.intercepts(host):  # routed by llmitm: never dialled where the client said
            return
        verdict = await self.check(host, port)
        if verdict.allowed:
            return
        log.warning("llmitm: refused a client's request for %s:%d: %s", host, port, verdict.reason)
        flow.response = http.Response.make(
            403,
            f"llmitm: this proxy does not connect to {verdict.reason}\n".encode(),
            {"content-type": "text/plain", REFUSED_HEADER: "local-destination"},
        )
        flow.metadata["llmitm.refused"] = verdict.reason

