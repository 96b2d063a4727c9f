"""Every body through llmitm is bounded, whatever the app or the provider sends: a chunked request
(no Content-Length to screen), a small compressed request that inflates a thousandfold, a stack of
encodings, a pooled stream that never ends. Each is refused or ended in the app's protocol (or, past
mitmproxy's own body_size_limit, by mitmproxy), nothing oversized reaches the provider, and the
proxy's memory stays flat."""

from __future__ import annotations

import gzip
import json
import zlib

import httpx
import pytest

from tests.harness.proxy import module_proxy
from tests.harness.upstream import Reply, default_script

pytestmark = pytest.mark.e2e

MAX_BODY = 1 << 20  # llmitm's max_body_bytes
MAX_RESPONSE = 4 << 20  # max_response_bytes, and so mitmproxy's body_size_limit (the larger one)
MESSAGES = "https://api.anthropic.com/v1/messages"
CHAT = "https://api.openai.com/v1/chat/completions"


def config(upstream_url: str) -> str:
    return f"""
state: memory
max_body_bytes: {MAX_BODY}
max_response_bytes: {MAX_RESPONSE}
providers:
  openai: {{protocol: openai-chat, base_url: "{upstream_url}", keys: ["sk-bounded-0000000001"]}}
  claude: {{protocol: anthropic, base_url: "{upstream_url}", keys: ["sk-ant-bounded-000001"]}}
  unpooled: {{protocol: openai-chat, base_url: "{upstream_url}"}}
routes:
  - {{match: {{host: api.openai.com, model: "own-*"}}, provider: unpooled}}
  - {{match: {{host: api.openai.com, model: "claude-*"}}, provider: claude}}
  - {{match: {{host: api.openai.com}}, provider: openai}}
  - {{match: {{host: api.anthropic.com}}, provider: claude}}
"""


proxy = module_proxy("bounded", config)


def peak_rss_mb(proxy) -> float:
    """The proxy process's peak resident memory so far (VmHWM), in MB."""
    for line in open(f"/proc/{proxy.proc.pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def send(proxy, url: str, content, headers: dict[str, str] | None = None, timeout: float = 60) -> httpx.Response:
    return httpx.post(url, content=content, headers={"content-type": "application/json", **(headers or {})},
                      proxy=proxy.url, verify=str(proxy.ca), timeout=timeout)


def chunked(body: bytes, piece: int = 65536):
    """A generator body: httpx sends it with Transfer-Encoding: chunked and no Content-Length."""
    for i in range(0, len(body), piece):
        yield body[i:i + piece]


def messages_body(size: int) -> bytes:
    return json.dumps({"model": "claude-x", "max_tokens": 5,
                       "messages": [{"role": "user", "content": "x" * size}]}).encode()


def still_serving(proxy, upstream) -> None:
    upstream.script = default_script
    r = send(proxy, CHAT, json.dumps({"model": "gpt-4o", "messages": []}).encode())
    assert r.status_code == 200 and r.json()["choices"]


def test_a_chunked_body_over_max_body_bytes_is_a_413_in_the_apps_protocol(proxy, upstream):
    r = send(proxy, MESSAGES, chunked(messages_body(2 * MAX_BODY)))
    assert r.status_code == 413 and r.json()["error"]["type"] == "request_too_large"
    assert upstream.received == []
    still_serving(proxy, upstream)


def test_a_chunked_body_over_mitmproxys_limit_is_cut_off_unread(proxy, upstream):
    before = peak_rss_mb(proxy)
    try:  # mitmproxy stops reading at body_size_limit and answers 413 itself (11.x); 12.x may not
        r = send(proxy, MESSAGES, chunked(messages_body(8 * MAX_RESPONSE)), timeout=10)  # read the rest
        assert r.status_code == 413
    except (httpx.WriteError, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError):
        pass
    assert upstream.received == []
    assert peak_rss_mb(proxy) - before < 3 * 8 * MAX_RESPONSE / 2**20
    still_serving(proxy, upstream)


def gzip_bomb(inflated: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    zeros = b"\0" * (1 << 20)
    parts = [compressor.compress(zeros) for _ in range(inflated >> 20)]
    return b"".join(parts) + compressor.flush()


def test_a_small_gzip_body_that_inflates_past_the_limit_is_refused_without_inflating_it(proxy, upstream):
    bomb = gzip_bomb(300 << 20)  # ~300 KB on the wire, 300 MB decoded
    assert len(bomb) < MAX_BODY
    before = peak_rss_mb(proxy)
    r = send(proxy, CHAT, chunked(bomb), {"content-encoding": "gzip"})
    assert r.status_code == 413 and "max_body_bytes" in r.json()["error"]["message"]
    assert upstream.received == []
    assert peak_rss_mb(proxy) - before < 100  # decoding it whole would add 300 MB
    still_serving(proxy, upstream)


def test_a_gzip_body_within_the_limit_is_read_and_forwarded_as_sent(proxy, upstream):
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}).encode()
    send(proxy, CHAT, gzip.compress(body), {"content-encoding": "gzip"})
    sent = upstream.received[-1]
    assert sent.headers["content-encoding"] == "gzip" and gzip.decompress(sent.body) == body


@pytest.mark.parametrize("encoding", ["gzip, gzip", "br"])
def test_stacked_or_unboundable_encodings_are_refused(proxy, upstream, encoding):
    body = gzip.compress(gzip.compress(messages_body(10)))
    r = send(proxy, MESSAGES, body, {"content-encoding": encoding})
    assert r.status_code == 415 and r.json()["type"] == "error"
    assert upstream.received == []


def test_a_pooled_stream_past_max_response_bytes_ends_with_the_protocols_error_event(proxy, upstream):
    event = b"data: " + json.dumps({"id": "c", "object": "chat.completion.chunk", "model": "gpt-4o", "choices": [
        {"index": 0, "delta": {"content": "y" * 60_000}, "finish_reason": None}]}).encode() + b"\n\n"
    upstream.script = lambda req: Reply(events=[event] * (2 * MAX_RESPONSE // len(event)),
                                        headers={"content-type": "text/event-stream"})
    with httpx.stream("POST", CHAT, json={"model": "gpt-4o", "messages": [], "stream": True},
                      proxy=proxy.url, verify=str(proxy.ca), timeout=60) as r:
        body = b"".join(r.iter_bytes())
    # Cut at the chunk that crossed the limit (how much one read returns varies by line and load).
    assert MAX_RESPONSE // 2 <= len(body) < MAX_RESPONSE + len(event) + 1000
    last = [e for e in body.split(b"\n\n") if e.strip()][-1]
    assert b'"error"' in last and b"max_response_bytes" in last
    still_serving(proxy, upstream)


def test_a_wrongly_typed_field_in_a_translated_body_is_the_apps_400(proxy, upstream):
    r = send(proxy, CHAT, json.dumps({"model": "claude-x", "messages": [], "tools": 7}).encode())
    assert r.status_code == 400 and "tools" in r.json()["error"]["message"]  # the 400 names the field
    assert upstream.received == []


def test_a_whole_answer_past_the_limit_on_a_route_without_a_pool_is_cut_off(proxy, upstream):
    huge = json.dumps({"id": "c", "object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "z" * (MAX_RESPONSE + 1000)}}]}).encode()
    upstream.script = lambda req: Reply(body=huge, headers={"content-type": "application/json"})
    r = send(proxy, CHAT, json.dumps({"model": "own-model", "messages": []}).encode())
    assert r.status_code == 502 and len(r.content) < 10_000  # mitmproxy stops buffering at body_size_limit
    still_serving(proxy, upstream)
