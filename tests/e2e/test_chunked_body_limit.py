"""A chunked request body (no Content-Length to screen up front) larger than max_body_bytes is answered
with a 413 in the app's own protocol, whatever max_response_bytes is: mitmproxy's body_size_limit, whose
refusal is mitmproxy's HTML page, sits above max_body_bytes. Nothing reaches the provider and the proxy
goes on serving."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest

from tests.harness.proxy import ProxyProcess
from tests.harness.upstream import default_script

pytestmark = pytest.mark.e2e

MAX_BODY = 1 << 20  # max_body_bytes, and max_response_bytes too: no room left above it by the response limit
OVER = MAX_BODY + MAX_BODY // 2  # over llmitm's limit, under the outer cap
CHAT = "https://api.openai.com/v1/chat/completions"
MESSAGES = "https://api.anthropic.com/v1/messages"
GEMINI = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent"


def config(upstream_url: str) -> str:
    return f"""
state: memory
max_body_bytes: {MAX_BODY}
max_response_bytes: {MAX_BODY}
providers:
  openai: {{protocol: openai-chat, base_url: "{upstream_url}", keys: ["sk-chunked-000000001"]}}
  claude: {{protocol: anthropic, base_url: "{upstream_url}", keys: ["sk-ant-chunked-00001"]}}
  gemini: {{protocol: gemini, base_url: "{upstream_url}", keys: ["AIza-chunked-0000001"]}}
routes:
  - {{match: {{host: api.openai.com}}, provider: openai}}
  - {{match: {{host: api.anthropic.com}}, provider: claude}}
  - {{match: {{host: generativelanguage.googleapis.com}}, provider: gemini}}
"""


@pytest.fixture(scope="module")
def proxy(upstream, tmp_path_factory):
    with ProxyProcess(tmp_path_factory.mktemp("chunked"), config(upstream.url)) as p:
        yield p


def padded(body: dict, text_field: list, size: int) -> bytes:
    """`body` as JSON, its prompt text (at the path `text_field`) long enough to make `size` bytes."""
    node = body
    for key in text_field[:-1]:
        node = node[key]
    node[text_field[-1]] = "x" * size
    return json.dumps(body).encode()


def pieces(body: bytes, size: int = 65536):
    """A generator body: httpx sends it with Transfer-Encoding: chunked and no Content-Length."""
    for i in range(0, len(body), size):
        yield body[i:i + size]


def still_serving(proxy, upstream) -> None:
    upstream.script = default_script
    r = httpx.post(CHAT, json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
                   proxy=proxy.url, verify=str(proxy.ca), timeout=30)
    assert r.status_code == 200 and r.json()["choices"]


def test_an_openai_app_gets_openais_413_for_a_chunked_body_over_the_limit(proxy, upstream):
    body = padded({"model": "gpt-4o", "messages": [{"role": "user", "content": ""}]}, ["messages", 0, "content"], OVER)
    r = httpx.post(CHAT, content=pieces(body), headers={"content-type": "application/json"},
                   proxy=proxy.url, verify=str(proxy.ca), timeout=60)
    assert r.status_code == 413, r.text[:300]
    error = r.json()["error"]
    assert "max_body_bytes" in error["message"] and error["type"]
    assert upstream.received == []
    still_serving(proxy, upstream)


def test_an_anthropic_app_gets_anthropics_413_for_a_chunked_body_from_curl(proxy, upstream, tmp_path):
    body = padded({"model": "claude-x", "max_tokens": 5, "messages": [{"role": "user", "content": ""}]},
                  ["messages", 0, "content"], OVER)
    (tmp_path / "body.json").write_bytes(body)
    out = subprocess.run(["curl", "-sS", "--proxy", proxy.url, "--cacert", str(proxy.ca), MESSAGES,
                          "-H", "Transfer-Encoding: chunked", "-H", "content-type: application/json",
                          "-H", "anthropic-version: 2023-06-01", "--data-binary", f"@{tmp_path / 'body.json'}",
                          "-w", "\n%{http_code}"], capture_output=True, timeout=60)
    answer, status = out.stdout.rsplit(b"\n", 1)
    assert status == b"413", out
    error = json.loads(answer)
    assert error["type"] == "error" and error["error"]["type"] == "request_too_large"
    assert upstream.received == []
    still_serving(proxy, upstream)


def test_a_gemini_app_gets_geminis_413_for_a_chunked_body_over_the_limit(proxy, upstream):
    body = padded({"contents": [{"role": "user", "parts": [{"text": ""}]}]}, ["contents", 0, "parts", 0, "text"], OVER)
    r = httpx.post(GEMINI, content=pieces(body), headers={"content-type": "application/json"},
                   proxy=proxy.url, verify=str(proxy.ca), timeout=60)
    assert r.status_code == 413, r.text[:300]
    error = r.json()["error"]
    assert error["code"] == 413 and "max_body_bytes" in error["message"] and error["status"]
    assert upstream.received == []
    still_serving(proxy, upstream)


def test_a_chunked_body_within_the_limit_is_forwarded(proxy, upstream):
    body = padded({"model": "gpt-4o", "messages": [{"role": "user", "content": ""}]}, ["messages", 0, "content"],
                  MAX_BODY - 1000)
    r = httpx.post(CHAT, content=pieces(body), headers={"content-type": "application/json"},
                   proxy=proxy.url, verify=str(proxy.ca), timeout=60)
    assert r.status_code == 200
    assert upstream.received[-1].json["messages"][0]["content"] == "x" * (MAX_BODY - 1000)
