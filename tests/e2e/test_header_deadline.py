"""A client must send each request's headers within header_timeout_seconds, from connecting and again
whenever it has no request open; one that trickles them (slowloris) is disconnected, in plain HTTP and
inside a TLS tunnel. Requests that take long to answer, HTTP/2 streams still open, keep-alive pauses
shorter than the limit and tunnels llmitm does not intercept are left alone."""

from __future__ import annotations

import dataclasses
import http.client
import json
import socket
import ssl
import subprocess
import threading
import time

import httpx
import pytest

from tests.harness.proxy import ProxyProcess
from tests.harness.upstream import default_script

pytestmark = pytest.mark.e2e

HEADER_TIMEOUT = 2  # seconds
TRICKLE_LIMIT = 20  # seconds a trickling client is given before the test gives up on the proxy
HEAD = b"POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\n"
CHAT = "https://api.openai.com/v1/chat/completions"
CHAT_BODY = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})


def config(upstream_url: str) -> str:
    return f"""
state: memory
header_timeout_seconds: {HEADER_TIMEOUT}
allow_local_destinations: true
providers:
  openai: {{protocol: openai-chat, base_url: "{upstream_url}", keys: ["sk-deadline-00000001"]}}
routes:
  - {{match: {{host: api.openai.com}}, provider: openai}}
"""


@pytest.fixture(scope="module")
def proxy(upstream, tmp_path_factory):
    with ProxyProcess(tmp_path_factory.mktemp("deadline"), config(upstream.url)) as p:
        yield p


def trickle(sock, data: bytes, every: float = 0.5) -> float | None:
    """Send `data` a byte every `every` seconds (the whole head repeated, never its blank line) until
    the peer closes; the seconds it took, or None if it kept reading for TRICKLE_LIMIT."""
    start = time.monotonic()
    sock.settimeout(every)
    i = 0
    while time.monotonic() - start < TRICKLE_LIMIT:
        try:
            sock.sendall(data[i % len(data):i % len(data) + 1])
            if sock.recv(4096) == b"":
                return time.monotonic() - start
        except (TimeoutError, ssl.SSLWantReadError):
            pass
        except (ConnectionError, ssl.SSLError, OSError):
            return time.monotonic() - start
        i += 1
    return None


def connect_tunnel(proxy, host: str = "api.openai.com", port: int = 443) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    sock.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        assert chunk, f"the proxy closed the CONNECT: {answer!r}"
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer
    return sock


def tls_context(proxy) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(proxy.ca))
    context.set_alpn_protocols(["http/1.1"])  # as HTTP clients do: the tunnel is HTTP from its first byte
    return context


def chat(proxy, client: httpx.Client | None = None) -> httpx.Response:
    send = client.post if client else lambda url, **kw: httpx.post(url, proxy=proxy.url, verify=str(proxy.ca), **kw)
    return send(CHAT, content=CHAT_BODY, headers={"content-type": "application/json"}, timeout=30)


def test_a_client_trickling_its_request_headers_is_disconnected(proxy, upstream):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        took = trickle(sock, HEAD)
    assert took is not None, f"still connected after {TRICKLE_LIMIT} s"
    assert took >= HEADER_TIMEOUT * 0.9  # the deadline closed it, not a refusal of the first bytes
    assert "no complete request headers within 2 s" in proxy.log()
    assert upstream.received == []
    assert chat(proxy).status_code == 200  # the proxy serves everyone else as before


def test_a_client_trickling_headers_inside_a_tls_tunnel_is_disconnected(proxy, upstream):
    raw = connect_tunnel(proxy)
    with tls_context(proxy).wrap_socket(raw, server_hostname="api.openai.com") as sock:
        took = trickle(sock, HEAD)
    assert took is not None, f"still connected after {TRICKLE_LIMIT} s"
    assert upstream.received == []
    assert chat(proxy).status_code == 200


def keep_alive_connection(proxy) -> http.client.HTTPSConnection:
    conn = http.client.HTTPSConnection("127.0.0.1", proxy.port, context=tls_context(proxy), timeout=30)
    conn.set_tunnel("api.openai.com", 443)
    return conn


def post_on(conn: http.client.HTTPSConnection) -> int:
    conn.request("POST", "/v1/chat/completions", body=CHAT_BODY, headers={"content-type": "application/json"})
    response = conn.getresponse()
    response.read()
    return response.status


def test_a_keep_alive_connection_pausing_less_than_the_limit_stays_open(proxy):
    conn = keep_alive_connection(proxy)
    try:
        assert post_on(conn) == 200
        first_socket = conn.sock
        time.sleep(HEADER_TIMEOUT / 2)
        assert post_on(conn) == 200
        assert conn.sock is first_socket  # the same connection served both
    finally:
        conn.close()


def test_a_keep_alive_connection_idle_past_the_limit_is_closed(proxy):
    conn = keep_alive_connection(proxy)
    try:
        assert post_on(conn) == 200
        time.sleep(HEADER_TIMEOUT + 2)
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError, ssl.SSLError)):
            post_on(conn)  # http.client does not reconnect on its own: the proxy closed it
    finally:
        conn.close()


def test_a_request_answered_after_longer_than_the_limit_is_not_cut_off(proxy, upstream):
    upstream.script = lambda req: dataclasses.replace(default_script(req), hold=HEADER_TIMEOUT + 1.5)
    r = chat(proxy)
    assert r.status_code == 200 and r.json()["choices"]


def test_an_http2_connection_keeps_a_slow_stream_while_a_fast_one_finishes(proxy, upstream):
    def script(req):
        slow = req.json["messages"][0]["content"] == "slow"
        return dataclasses.replace(default_script(req), hold=HEADER_TIMEOUT + 2 if slow else 0)

    upstream.script = script
    transfers = []
    for content in ("slow", "fast"):
        body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": content}]})
        transfers += ["--next", "--http2", "--proxy", proxy.url, "--cacert", str(proxy.ca), CHAT, "-d", body,
                      "-H", "content-type: application/json", "-o", "/dev/null",
                      "-w", f"{content} %{{http_code}} %{{http_version}} %{{num_connects}}\\n"]
    # One curl, two transfers multiplexed on one HTTP/2 connection (-Z): the fast one is answered
    # while the slow one is still open, and the slow one outlives the header timeout.
    out = subprocess.run(["curl", "-sS", "-Z", *transfers[1:]], capture_output=True, text=True, timeout=60)
    results = {line.split()[0]: line.split()[1:] for line in out.stdout.splitlines()}
    assert results["fast"][:2] == ["200", "2"], out
    assert results["slow"][:2] == ["200", "2"], out
    assert sorted(r[2] for r in results.values()) == ["0", "1"], out  # one connection for both


def test_a_tunnel_to_a_host_llmitm_does_not_intercept_is_not_timed(proxy):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        echo = threading.Thread(target=_echo_once, args=(server,), daemon=True)
        echo.start()
        with connect_tunnel(proxy, "127.0.0.1", server.getsockname()[1]) as sock:
            time.sleep(HEADER_TIMEOUT + 1.5)  # silent, as a TLS session to another host may be
            sock.sendall(b"ping")
            assert sock.recv(4) == b"ping"
        echo.join(10)


def _echo_once(server: socket.socket) -> None:
    server.settimeout(20)
    conn, _ = server.accept()
    with conn:
        conn.settimeout(20)
        conn.sendall(conn.recv(4))
