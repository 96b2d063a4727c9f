"""Codex 0.17x declares its tools in an `additional_tools` input item, as namespaces holding a free-text
(custom) `exec` tool; they translate like top-level tools and its calls come back under its own names."""

from __future__ import annotations

import json

import pytest

from llmitm.protocols import Translation

BODY = {
    "model": "gpt-5.1-codex",
    "input": [
        {"type": "additional_tools", "tools": [
            {"type": "namespace", "name": "code_mode", "tools": [
                {"type": "custom", "name": "exec", "description": "Run JavaScript that calls tools.exec_command"}]}]},
        {"role": "user", "content": [{"type": "input_text", "text": "read token.txt"}]},
    ],
    "tools": [{"type": "function", "name": "update_plan", "parameters": {"type": "object", "properties": {}}}],
}
ANTHROPIC_CALL = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                  "content": [{"type": "tool_use", "id": "toolu_1", "name": "code_mode__exec",
                               "input": {"input": "await tools.exec_command({cmd: 'cat token.txt'})"}}],
                  "stop_reason": "tool_use", "usage": {"input_tokens": 10, "output_tokens": 5}}


@pytest.mark.parametrize("upstream", ["anthropic", "openai-chat", "gemini"])
def test_tools_in_an_additional_tools_item_reach_every_upstream(upstream):
    up = json.loads(Translation("openai-responses", upstream).request(BODY, upstream_model="m").body)
    text = json.dumps(up)
    assert "code_mode__exec" in text and "update_plan" in text


def test_a_call_of_a_namespaced_custom_tool_comes_back_as_codex_declared_it():
    t = Translation("openai-responses", "anthropic")
    t.request(BODY, upstream_model="claude-sonnet-4-5")
    status, body = t.response(200, json.dumps(ANTHROPIC_CALL).encode())
    (call,) = [o for o in json.loads(body)["output"] if o["type"] == "custom_tool_call"]
    assert status == 200 and (call["name"], call["namespace"]) == ("exec", "code_mode")
    assert call["input"] == "await tools.exec_command({cmd: 'cat token.txt'})"


def test_the_call_in_history_goes_back_upstream_under_its_flat_name():
    history = {**BODY, "input": BODY["input"] + [
        {"type": "custom_tool_call", "call_id": "toolu_1", "namespace": "code_mode", "name": "exec", "input": "x"},
        {"type": "custom_tool_call_output", "call_id": "toolu_1", "output": "TOKEN-123"}]}
    up = json.loads(Translation("openai-responses", "anthropic").request(history, upstream_model="m").body)
    uses = [c for m in up["messages"] for c in (m["content"] if isinstance(m["content"], list) else []) if c.get("type") == "tool_use"]
    assert [u["name"] for u in uses] == ["code_mode__exec"]
