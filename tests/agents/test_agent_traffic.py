"""What coding agents' traffic needs of llmitm beyond translation, without the agents themselves:
Codex's WebSocket attempt is refused in-protocol at once, a translated stream the app hangs up on
after its end is recorded as served, and a flow no key served says so."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from mitmproxy import http, io
from mitmproxy.test import tflow

from llmitm.flowinfo import FlowRecord
from tests.glue.conftest import loaded_addon
from tests.harness.proxy import ProxyProcess, claude_for_openai_apps
from tests.harness.upstream import FakeUpstream, Reply

APP_KEY = "sk-app-own-key-123456789"


@pytest.fixture
def addon(tmp_path):
    with loaded_addon(tmp_path) as addon:
        yield addon


async def test_a_websocket_upgrade_to_an_ai_host_gets_426_in_the_apps_protocol(addon):
    # Codex tries wss://api.openai.com/v1/responses first; a 426 makes it fall back to HTTPS at once.
    request = http.Request.make("GET", "https://api.openai.com/v1/responses", b"", {
        "upgrade": "websocket", "connection": "Upgrade", "sec-websocket-version": "13",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "authorization": f"Bearer {APP_KEY}"})
    flow = tflow.tflow(req=request, live=True)
    addon.requestheaders(flow)
    await addon.request(flow)
    assert flow.response is not None and flow.response.status_code == 426
    error = json.loads(flow.response.content)["error"]
    assert "WebSocket" in error["message"] and error["code"] == "websocket_not_supported"
    assert addon.exchanges == {}  # nothing planned, nothing sent upstream
    assert APP_KEY not in flow.request.headers["authorization"]


def test_a_pooled_flow_no_key_served_says_so_in_its_comment():
    record = FlowRecord(client_protocol="openai-chat", route=0, provider="openai", upstream_protocol="openai-chat",
                        model="gpt-4o", upstream_model="gpt-4o", credential="pooled")
    assert "None" not in record.summary() and "no pooled key served" in record.summary()


ANTHROPIC_STREAM = [
    {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                                          "content": [], "stop_reason": None, "usage": {"input_tokens": 11, "output_tokens": 1}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "whole answer"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 3}},
    {"type": "message_stop"},
]


def test_a_translated_stream_the_app_left_after_its_end_is_recorded_as_served(tmp_path):
    # The upstream keeps its body open after message_stop (a trailing ping); the OpenAI app has its
    # `data: [DONE]` by then and hangs up, as Codex and LangChain do.
    events = [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in ANTHROPIC_STREAM] + [b": ping\n\n"]
    flows = tmp_path / "flows"
    with FakeUpstream() as upstream:
        upstream.script = lambda req: Reply(events=events, delay=0.4)
        config = claude_for_openai_apps(upstream.url, ["sk-ant-pooled-1"])
        with ProxyProcess(tmp_path, config, extra=["-w", str(flows)]) as proxy:
            with httpx.Client(proxy=proxy.url, verify=str(proxy.ca), timeout=30) as client:
                body = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
                with client.stream("POST", "https://api.openai.com/v1/chat/completions", json=body,
                                   headers={"authorization": f"Bearer {APP_KEY}"}) as response:
                    lines = []
                    for line in response.iter_lines():
                        lines.append(line)
                        if line == "data: [DONE]":
                            break  # leaves with the upstream's body still open
            time.sleep(1.5)  # the upstream ends its body; mitmproxy finishes the flow
    (flow,) = [f for f in io.FlowReader(flows.open("rb")).stream() if isinstance(f, http.HTTPFlow)]
    assert any("whole answer" in line for line in lines)
    assert flow.error is None, flow.error
    record = flow.metadata["llmitm"]
    assert record["error"] is None and record["usage"] == {"input": 11, "cached": 0, "output": 3}
    assert b"[DONE]" in flow.response.content  # what the app got stays visible in mitmweb
