"""What a person debugging a protocol mismatch sees in mitmweb: the app's side and the upstream's side
of a translated flow, which key served (masked), and no pooled key anywhere."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.harness.proxy import claude_for_openai_apps, running_mitmweb
from tests.harness.upstream import Reply

POOLED = "sk-ant-pool-web-secret-77"
PASSWORD = "llmitm-test-web-password"


@pytest.fixture
def web(tmp_path, upstream):
    with running_mitmweb(tmp_path, claude_for_openai_apps(upstream.url, [POOLED]), PASSWORD) as web:
        yield web


def api(base: str, path: str) -> httpx.Response:
    return httpx.get(base + path, headers={"authorization": f"Bearer {PASSWORD}"}, timeout=10, trust_env=False)


def test_translated_flow_shows_both_sides_and_no_key(web, upstream):
    proxy, base = web
    upstream.script = lambda req: Reply.fixture("anthropic-messages/prism/stream-text-basic.sse")
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": True, "logit_bias": {"1": 2}}
    r = httpx.post("https://api.openai.com/v1/chat/completions", json=body, headers={"authorization": "Bearer sk-app-own-key-123"},
                   proxy=proxy.url, verify=str(proxy.ca), timeout=30)
    assert r.status_code in (200, 400)
    body.pop("logit_bias")
    r = httpx.post("https://api.openai.com/v1/chat/completions", json=body, headers={"authorization": "Bearer sk-app-own-key-123"},
                   proxy=proxy.url, verify=str(proxy.ca), timeout=30)
    assert r.status_code == 200 and b"data: [DONE]" in r.content
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        flows = api(base, "/flows").json()
        if len(flows) >= 3:
            break
        time.sleep(0.2)
    main = next(f for f in flows if f["request"]["path"] == "/v1/chat/completions" and f["response"] and f["response"]["status_code"] == 200)
    side = next(f for f in flows if f["request"]["path"] == "/v1/messages")
    assert main["request"]["host"] == "api.openai.com"
    assert "claude" in main["comment"] and "key claude#1" in main["comment"] and "translated from openai-chat" in main["comment"]
    assert side["response"]["status_code"] == 200
    sent = api(base, f"/flows/{main['id']}/request/content.data").content
    assert json.loads(sent)["model"] == "gpt-4o"  # what the app sent
    upstream_req = api(base, f"/flows/{side['id']}/request/content.data").content
    assert json.loads(upstream_req)["model"] == "claude-sonnet-4-5"  # what went upstream
    raw = api(base, f"/flows/{side['id']}/response/content.data").content
    assert b"event: message_start" in raw  # the upstream's own answer, before translation
    got = api(base, f"/flows/{main['id']}/response/content.data").content
    assert b"chat.completion.chunk" in got  # what the app received
    everything = json.dumps(flows) + (sent + upstream_req + raw + got).decode()
    assert POOLED not in everything and "sk-app-own-key-123" not in everything
    assert POOLED not in proxy.log()
