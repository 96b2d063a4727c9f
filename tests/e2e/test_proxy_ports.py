"""No client reaches llmitm's own ports (web UI, relay, listener) through the proxy, whatever it calls
loopback: decimal, short, octal and hex IPv4 forms, IPv6 and IPv4-mapped IPv6, case and trailing-dot
variants of localhost, the unspecified address, by absolute-form request and by CONNECT."""

from __future__ import annotations

import os
import socket
import time

import httpx
import pytest

from tests.harness.net import free_port, mitmweb_options
from tests.harness.proxy import ProxyProcess
from tests.harness.upstream import Reply

pytestmark = pytest.mark.e2e

LOOPBACK_SPELLINGS = [
    "127.0.0.1", "127.1", "127.0.1", "127.0.0.2", "127.255.255.254", "2130706433", "0x7f000001", "0x7f.0.0.1",
    "0177.0.0.1", "017700000001", "localhost", "LOCALHOST", "LocalHost", "localhost.", "0.0.0.0", "0", "0.0.0.1",
    "[::1]", "[0:0:0:0:0:0:0:1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::]",
]
POOLED = "sk-pooled-netguard-0123456789"


def listening_ports(pid: int) -> set[int]:
    """TCP ports a process listens on, read from /proc (its socket inodes matched against net/tcp*)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{table}") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def read_head(sock: socket.socket) -> bytes:
    data = b""
    deadline = time.monotonic() + 10
    while b"\r\n\r\n" not in data and time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data


def reaches(proxy_port: int, method: str, authority: str) -> bytes | None:
    """What the target answered when it was reached through the proxy, or None when it was not:
    llmitm refused (403 + marker), mitmproxy rejected the authority (400) or could not connect (502)."""
    with socket.create_connection(("127.0.0.1", proxy_port), timeout=10) as sock:
        if method == "CONNECT":
            sock.sendall(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
            answer = read_head(sock)
            if b" 200 " in answer.split(b"\r\n", 1)[0]:
                # Tunnel accepted (lazy connection): only talking through it shows where it leads.
                sock.sendall(f"GET /flows HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
                answer = read_head(sock)
                return answer or None
        else:
            sock.sendall(f"GET http://{authority}/flows HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
            answer = read_head(sock)
    status_line = answer.split(b"\r\n", 1)[0]
    if b" 403 " in status_line and b"x-llmitm-refused: local-destination" in answer.lower():
        return None
    if b" 400 " in status_line or b" 502 " in status_line:
        return None
    return answer


@pytest.fixture(scope="module")
def web_proxy(tmp_path_factory, upstream):
    web_port = free_port()
    # Local destinations allowed, so only the own-ports rule can refuse: the strictest case.
    config = f"""
state: memory
allow_local_destinations: true
providers:
  claude: {{protocol: anthropic, base_url: "{upstream.url}", keys: ["{POOLED}"]}}
routes:
  - {{match: {{host: api.anthropic.com}}, provider: claude}}
"""
    extra = mitmweb_options(web_port, "netguard-test")
    proxy = ProxyProcess(tmp_path_factory.mktemp("netguard"), config, extra=extra, mode="web").start()
    # One streamed pooled request starts llmitm's relay, so its port exists to be attacked.
    upstream.script = lambda req: Reply.fixture("anthropic-messages/prism/stream-text-basic.sse")
    body = {"model": "claude-sonnet-4-5", "max_tokens": 16, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post("https://api.anthropic.com/v1/messages", json=body, headers={"x-api-key": "placeholder"},
                   proxy=proxy.url, verify=str(proxy.ca), timeout=30)
    assert r.status_code == 200, r.text
    yield proxy, web_port
    proxy.stop()


def test_every_loopback_spelling_of_every_own_port_is_refused(web_proxy):
    proxy, web_port = web_proxy
    assert proxy.proc is not None
    ports = listening_ports(proxy.proc.pid)
    relay_ports = ports - {proxy.port, web_port}
    assert proxy.port in ports and web_port in ports and relay_ports, ports
    reached = []
    for port in [web_port, proxy.port, *relay_ports]:
        for host in LOOPBACK_SPELLINGS:
            for method in ("GET", "CONNECT"):
                answer = reaches(proxy.port, method, f"{host}:{port}")
                if answer is not None:
                    first_line = answer.split(b"\r\n", 1)[0]
                    reached.append(f"{method} {host}:{port}: {first_line!r}")
    assert reached == [], "\n".join(reached)


def test_guard_keeps_serving_after_refusals(web_proxy, upstream):
    proxy, _ = web_proxy
    upstream.script = lambda req: Reply.fixture("anthropic-messages/prism/stream-text-basic.sse")
    body = {"model": "claude-sonnet-4-5", "max_tokens": 16, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post("https://api.anthropic.com/v1/messages", json=body, headers={"x-api-key": "placeholder"},
                   proxy=proxy.url, verify=str(proxy.ca), timeout=30)
    assert r.status_code == 200 and b"message_stop" in r.content
