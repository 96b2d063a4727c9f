"""The foundation end to end: real SDKs and curl → real llmitm (mitmdump) → loopback upstream replaying
recorded provider traffic. The SDKs call the real hostnames; the config routes them to loopback."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import time

import pytest

from tests.harness.tls_server import self_signed_https
from tests.harness.upstream import Reply

from .conftest import start_proxy

POOL_OPENAI = ["sk-pool-openai-1111", "sk-pool-openai-2222", "sk-pool-openai-3333"]
POOL_ANTHROPIC = ["sk-ant-pool-aaaa1111", "sk-ant-pool-bbbb2222"]
POOL_GEMINI = ["AIza-pool-gemini-0001"]
PLACEHOLDER = "sk-app-placeholder-0000"
ALL_POOLED = POOL_OPENAI + POOL_ANTHROPIC + POOL_GEMINI


def config_for(upstream_url: str) -> str:
    # allow_local_destinations: the tunneling test's unconfigured host is a loopback TLS server.
    return f"""
state: memory
allow_local_destinations: true
providers:
  openai:
    protocol: openai-chat
    base_url: {upstream_url}
    keys: {json.dumps(POOL_OPENAI)}
    strategy: round-robin
  anthropic:
    protocol: anthropic
    base_url: {upstream_url}
    keys: {json.dumps(POOL_ANTHROPIC)}
  gemini:
    protocol: gemini
    base_url: {upstream_url}
    keys: {json.dumps(POOL_GEMINI)}
  inspect:
    protocol: openai-chat
    base_url: {upstream_url}/v1
routes:
  - match: {{host: api.openai.com, model: "inspect-*"}}
    provider: inspect
  - match: {{host: api.openai.com}}
    provider: openai
  - match: {{host: api.anthropic.com}}
    provider: anthropic
  - match: {{host: generativelanguage.googleapis.com}}
    provider: gemini
    model: gemini-2.5-flash
  - match: {{host: models.example.test}}
    provider: openai
    model_map: {{"alias-small": gpt-4o-mini}}
"""


@pytest.fixture(scope="module")
def proxy(upstream, tmp_path_factory):
    p = start_proxy(tmp_path_factory, config_for(upstream.url), "foundation", extra=["-w", "flows.mitm", "--set", "flow_detail=3"])
    yield p
    p.stop()


def test_openai_sdk_gets_pooled_key_and_parses_reply(proxy, upstream, client_env):
    import openai

    client_env(proxy)
    client = openai.OpenAI(api_key=PLACEHOLDER, max_retries=0)
    seen = []
    for _ in range(3):
        reply = client.chat.completions.create(model="gpt-4.1-nano", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content and reply.usage.prompt_tokens > 0
    for req in upstream.received:
        assert req.key in POOL_OPENAI and PLACEHOLDER not in json.dumps(req.headers)
        seen.append(req.key)
    assert sorted(seen) == sorted(POOL_OPENAI), "three requests over a 3-key pool use all three keys"


def test_anthropic_sdk_same_protocol_passthrough_is_byte_exact(proxy, upstream, client_env):
    import anthropic

    client_env(proxy)
    client = anthropic.Anthropic(api_key=PLACEHOLDER, max_retries=0)
    upstream.script = lambda req: Reply.fixture(
        "anthropic-messages/vercel-ai/anthropic-text.json",
        headers={"anthropic-ratelimit-requests-remaining": "99", "request-id": "req_test"},
    )
    raw = client.messages.with_raw_response.create(
        model="claude-sonnet-4-5",
        max_tokens=50,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"},
    )
    msg = raw.parse()
    assert msg.content[0].text and msg.stop_reason == "end_turn"
    assert raw.headers["anthropic-ratelimit-requests-remaining"] == "99"
    (req,) = upstream.received
    assert req.key in POOL_ANTHROPIC
    assert PLACEHOLDER not in json.dumps(req.headers)
    assert req.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert req.headers["anthropic-version"]
    assert json.loads(req.body) == {"model": "claude-sonnet-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}


def test_google_genai_sdk_key_swap_and_model_rewrite(proxy, upstream, client_env):
    from google import genai

    client_env(proxy)
    client = genai.Client(api_key=PLACEHOLDER)
    reply = client.models.generate_content(model="gemini-pro-latest", contents="hi")
    assert reply.text
    (req,) = upstream.received
    assert req.key == POOL_GEMINI[0]
    assert "/models/gemini-2.5-flash:generateContent" in req.path and "key=" not in req.path


def curl(proxy, *args: str, **kw) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", **proxy.client_env()}
    return subprocess.run(["curl", "-sS", "--max-time", "20", *args], env=env, capture_output=True, **kw)


def test_curl_query_key_and_body_passthrough(proxy, upstream):
    body = b'{"contents":[{"parts":[{"text":"hi"}]}]}'
    out = curl(proxy, "-X", "POST", "-H", "content-type: application/json", "--data-binary", "@-",
               f"https://generativelanguage.googleapis.com/v1beta/models/gemini-x:generateContent?key={PLACEHOLDER}", input=body)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["candidates"]
    (req,) = upstream.received
    assert req.key == POOL_GEMINI[0] and PLACEHOLDER not in req.path and req.body == body


def test_model_rewrite_keeps_every_other_byte(proxy, upstream):
    body = b'{"model": "alias-small",\n  "messages": [{"role":"user","content":"hi"}], "x_unknown": [1.50, true]}'
    out = curl(proxy, "-H", f"authorization: Bearer {PLACEHOLDER}", "-H", "openai-organization: org-test",
               "--data-binary", "@-", "https://models.example.test/v1/chat/completions", input=body)
    assert out.returncode == 0, out.stderr
    (req,) = upstream.received
    assert req.body == body.replace(b'"alias-small"', b'"gpt-4o-mini"')
    assert req.headers["openai-organization"] == "org-test"


def test_unknown_model_and_malformed_json_get_errors_in_the_clients_protocol(proxy, upstream):
    out = curl(proxy, "-w", "\n%{http_code}", "--data-binary", '{"model": "nope", "messages": []}',
               "https://models.example.test/v1/chat/completions")
    body, status = out.stdout.rsplit(b"\n", 1)
    assert status == b"404" and "model_map" in json.loads(body)["error"]["message"]
    out = curl(proxy, "-w", "\n%{http_code}", "--data-binary", '{"model": "claude", "messages": [',
               "https://api.anthropic.com/v1/messages")
    body, status = out.stdout.rsplit(b"\n", 1)
    err = json.loads(body)
    assert status == b"400" and err["type"] == "error" and err["error"]["type"] == "invalid_request_error"
    assert upstream.received == []
    # ... and the proxy keeps serving.
    out = curl(proxy, "--data-binary", '{"model": "gpt-4o", "messages": []}', "https://api.openai.com/v1/chat/completions")
    assert json.loads(out.stdout)["choices"]


def test_provider_without_keys_forwards_the_apps_credential(proxy, upstream):
    out = curl(proxy, "-H", f"authorization: Bearer {PLACEHOLDER}", "--data-binary", '{"model": "inspect-me", "messages": []}',
               "https://api.openai.com/v1/chat/completions")
    assert json.loads(out.stdout)["choices"]
    (req,) = upstream.received
    assert req.key == PLACEHOLDER and req.path == "/v1/chat/completions"


def test_stream_arrives_incrementally(proxy, upstream, client_env):
    import openai

    upstream.script = lambda req: Reply.fixture("openai-chat/openai-python/stream-tool-call-pydantic.sse", delay=0.3)
    client_env(proxy)
    client = openai.OpenAI(api_key=PLACEHOLDER, max_retries=0)
    stream = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True)
    first_at = None
    chunks = []
    for chunk in stream:
        if first_at is None:
            first_at = time.monotonic()
        chunks.append(chunk)
    assert first_at is not None and upstream.last_event_sent_at - first_at > 1.0, "first event arrived long before the last was sent"
    args = "".join(c.choices[0].delta.tool_calls[0].function.arguments for c in chunks if c.choices and c.choices[0].delta.tool_calls)
    assert json.loads(args)["city"] == "Edinburgh"


@pytest.fixture
def tls_server(tmp_path):
    with self_signed_https(tmp_path, "DNS:localhost", "GET", b"hello") as served:
        yield served


def peer_cert_through_proxy(proxy_port: int, host: str, port: int) -> bytes:
    sock = socket.create_connection(("127.0.0.1", proxy_port), timeout=10)
    sock.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    assert b" 200 " in sock.recv(4096)
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with ctx.wrap_socket(sock, server_hostname=host) as tls:
        return tls.getpeercert(binary_form=True)


def test_unconfigured_host_is_tunneled(proxy, tls_server):
    port, cert = tls_server
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    assert peer_cert_through_proxy(proxy.port, "localhost", port) == der
    out = curl(proxy, "--cacert", str(cert), f"https://localhost:{port}/")
    assert out.stdout == b"hello", out.stderr
    # An AI host is intercepted: its certificate comes from llmitm's CA.
    assert peer_cert_through_proxy(proxy.port, "api.openai.com", 443) != der


def test_local_destinations_are_refused_by_default(tmp_path_factory, upstream, tls_server):
    port, _cert = tls_server
    proxy = start_proxy(tmp_path_factory, "state: memory\n", "no-local")
    try:
        via_proxy = ("-x", proxy.url, "--noproxy", "")  # NO_PROXY names localhost: go through llmitm anyway
        out = curl(proxy, *via_proxy, "-k", "-i", f"https://localhost:{port}/")
        assert b"hello" not in out.stdout and b"403" in out.stdout
        out = curl(proxy, *via_proxy, "-i", f"http://127.1:{port}/")
        assert b"HTTP/1.1 403" in out.stdout and b"x-llmitm-refused: local-destination" in out.stdout.lower()
    finally:
        proxy.stop()


def test_no_pooled_key_in_flow_file_or_log(proxy, upstream):
    for url, body in (("https://api.openai.com/v1/chat/completions", '{"model":"gpt-4o","messages":[]}'),
                      ("https://api.anthropic.com/v1/messages", '{"model":"c","max_tokens":5,"messages":[]}')):
        assert curl(proxy, "-H", f"x-api-key: {PLACEHOLDER}", "--data-binary", body, url).returncode == 0
    proxy.stop()
    log = proxy.log()
    flows = (proxy.workdir / "flows.mitm").read_bytes()
    assert b"api.openai.com" in flows or b"127.0.0.1" in flows
    for secret in ALL_POOLED:
        assert secret not in log and secret.encode() not in flows
    proxy.start()
