"""Bad input and bad upstreams: a clear error in the client's protocol, and the proxy keeps serving.
Also key pinning and config hot reload."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.harness.proxy import ProxyProcess, module_proxy
from tests.harness.upstream import Reply, default_script

KEYS = ["sk-robust-a-00000001", "sk-robust-b-00000002"]


def config(upstream_url: str, model: str = "claude-sonnet-4-5", keys=KEYS) -> str:
    return f"""
state: memory
max_body_bytes: 4096
providers:
  openai: {{protocol: openai-chat, base_url: "{upstream_url}", keys: {json.dumps(keys)}, strategy: round-robin}}
  claude: {{protocol: anthropic, base_url: "{upstream_url}", keys: ["sk-ant-robust-1"]}}
routes:
  - {{match: {{host: api.openai.com, model: "claude-*"}}, provider: claude, model: {model}}}
  - {{match: {{host: api.openai.com}}, provider: openai}}
  - {{match: {{host: api.anthropic.com}}, provider: openai, model: gpt-4o}}
"""


proxy = module_proxy("robust", config)


def post(proxy, url: str, body, headers=None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(url, content=content, headers={"content-type": "application/json", **(headers or {})},
                      proxy=proxy.url, verify=str(proxy.ca), timeout=30)


def still_serving(proxy, upstream) -> None:
    upstream.script = default_script
    r = post(proxy, "https://api.openai.com/v1/chat/completions", {"model": "gpt-4o", "messages": []})
    assert r.status_code == 200 and r.json()["choices"]


def test_oversized_body_is_a_413_in_the_clients_protocol(proxy, upstream):
    big = {"model": "claude-x", "max_tokens": 5, "messages": [{"role": "user", "content": "x" * 10_000}]}
    r = post(proxy, "https://api.anthropic.com/v1/messages", big)
    assert r.status_code == 413 and r.json()["error"]["type"] == "request_too_large"
    assert upstream.received == []
    still_serving(proxy, upstream)


def test_disconnect_mid_stream_ends_with_an_in_band_error(proxy, upstream):
    upstream.script = lambda req: Reply.fixture("openai-chat/openai-python/stream-tool-call-pydantic.sse", abort_after=4)
    with httpx.stream("POST", "https://api.openai.com/v1/chat/completions", json={"model": "gpt-4o", "messages": [], "stream": True},
                      proxy=proxy.url, verify=str(proxy.ca), timeout=30) as r:
        body = b"".join(r.iter_bytes())
    events = [e for e in body.split(b"\n\n") if e.strip()]
    assert len(events) == 5 and b'"error"' in events[-1]
    still_serving(proxy, upstream)


def test_disconnect_mid_translated_stream_is_an_anthropic_error_event(proxy, upstream):
    upstream.script = lambda req: Reply.fixture("openai-chat/openai-python/stream-tool-call-pydantic.sse", abort_after=3)
    with httpx.stream("POST", "https://api.anthropic.com/v1/messages",
                      json={"model": "claude", "max_tokens": 50, "messages": [{"role": "user", "content": "x"}], "stream": True},
                      proxy=proxy.url, verify=str(proxy.ca), timeout=30) as r:
        body = b"".join(r.iter_bytes())
    assert b"event: message_start" in body and b"event: error" in body
    assert b"message_stop" not in body


def test_upstream_garbage_is_a_502_in_the_clients_protocol(proxy, upstream):
    upstream.script = lambda req: Reply(body=b"<html>bad gateway</html>", headers={"content-type": "text/html"})
    r = post(proxy, "https://api.openai.com/v1/chat/completions", {"model": "claude-x", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 502 and "error" in r.json()
    still_serving(proxy, upstream)


def test_gzip_from_upstream_is_translated_anyway(proxy, upstream):
    upstream.script = lambda req: Reply.fixture("anthropic-messages/vercel-ai/anthropic-text.json", gzip=True)
    r = post(proxy, "https://api.openai.com/v1/chat/completions", {"model": "claude-x", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]
    upstream.script = lambda req: Reply.fixture("anthropic-messages/prism/stream-text-basic.sse", gzip=True)
    r = post(proxy, "https://api.openai.com/v1/chat/completions",
             {"model": "claude-x", "messages": [{"role": "user", "content": "x"}], "stream": True})
    assert r.status_code == 200 and r.content.rstrip().endswith(b"data: [DONE]")
    assert upstream.received[-1].headers.get("accept-encoding") == "identity"


def test_pinned_key_header(proxy, upstream):
    for _ in range(3):
        r = post(proxy, "https://api.openai.com/v1/chat/completions", {"model": "gpt-4o", "messages": []}, {"x-llmitm-key": "openai#2"})
        assert r.status_code == 200
    assert [q.key for q in upstream.received] == [KEYS[1]] * 3
    assert all("x-llmitm-key" not in q.headers for q in upstream.received)
    r = post(proxy, "https://api.openai.com/v1/chat/completions", {"model": "gpt-4o", "messages": []}, {"x-llmitm-key": "nope"})
    assert r.status_code == 400 and "nope" in r.json()["error"]["message"]


def test_hot_reload(tmp_path, upstream):
    with ProxyProcess(tmp_path, config(upstream.url)) as proxy:
        upstream.script = lambda req: Reply.fixture("anthropic-messages/vercel-ai/anthropic-text.json", hold=1.5)
        import threading

        slow = {}
        t = threading.Thread(target=lambda: slow.setdefault("r", post(proxy, "https://api.openai.com/v1/chat/completions",
                                                                          {"model": "claude-x", "messages": [{"role": "user", "content": "x"}]})))
        t.start()
        time.sleep(0.3)  # the slow request is in flight while the config changes under it
        proxy.config_path.write_text(config(upstream.url, model="claude-haiku-4-5", keys=["sk-robust-new-0000003"]))
        t.join()
        assert slow["r"].status_code == 200
        upstream.script = lambda req: Reply.fixture("anthropic-messages/vercel-ai/anthropic-text.json")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            upstream.received.clear()
            post(proxy, "https://api.openai.com/v1/chat/completions", {"model": "claude-x", "messages": [{"role": "user", "content": "x"}]})
            if upstream.received[0].json["model"] == "claude-haiku-4-5":
                break
            time.sleep(0.3)
        else:
            pytest.fail("the edited route never took effect")
        upstream.script = lambda req: Reply.fixture("openai-chat/vercel-ai/openai-text.json")
        upstream.received.clear()
        post(proxy, "https://api.openai.com/v1/chat/completions", {"model": "gpt-4o", "messages": []})
        assert upstream.received[0].key == "sk-robust-new-0000003"
        # A broken edit is refused with a logged error naming the field; the old config stays.
        proxy.config_path.write_text(config(upstream.url).replace("protocol: anthropic,", "protocol: anthropicc,"))
        time.sleep(1.5)
        assert "providers.claude.protocol" in proxy.log()
        upstream.received.clear()
        post(proxy, "https://api.openai.com/v1/chat/completions", {"model": "gpt-4o", "messages": []})
        assert upstream.received[0].key == "sk-robust-new-0000003"
