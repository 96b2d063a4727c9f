"""local_model is upstream-side: Gemini and OpenAI Responses apps get the same native reasoning and
tool calls out of a local model's `<think>`/`<tool_call>` text, and switch its reasoning their way."""

from __future__ import annotations

import json

import pytest
from proto_helpers import split
from test_local_model_response import THINK_CALL, chat_body, chat_stream, tokens

from llmitm.config import LocalModelConfig
from llmitm.protocols import Translation

SMOL = LocalModelConfig(tool_call_tags=True, reasoning_switch="smollm3")
G_PATH = "/v1beta/models/smollm3:generateContent"
G_STREAM_PATH = "/v1beta/models/smollm3:streamGenerateContent?alt=sse"
G_TOOLS = [{"functionDeclarations": [{"name": "get_weather", "description": "Weather",
                                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]}]
R_TOOLS = [{"type": "function", "name": "get_weather", "description": "Weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]


def g_req(**gc) -> dict:
    body = {"contents": [{"role": "user", "parts": [{"text": "Weather in Paris?"}]}], "tools": G_TOOLS}
    if gc:
        body["generationConfig"] = gc
    return body


@pytest.mark.parametrize(("config", "on"), [
    ({}, False), ({"thinkingConfig": {"thinkingBudget": 0}}, False),
    ({"thinkingConfig": {"thinkingBudget": 1024}}, True), ({"thinkingConfig": {"thinkingBudget": -1}}, True),
])
def test_gemini_client_reasoning_switch(config, on):
    t = Translation("gemini", "openai-chat", local_model=SMOL)
    out = json.loads(t.request(g_req(**config), client_path=G_PATH).body)
    assert out["chat_template_kwargs"]["enable_thinking"] is on
    assert out["messages"][0] == {"role": "system", "content": "/think" if on else "/no_think"}
    assert "reasoning_effort" not in out


@pytest.mark.parametrize(("effort", "on"), [(None, False), ("none", False), ("minimal", False), ("low", True),
                                            ("high", True)])
def test_responses_client_reasoning_switch(effort, on):
    body = {"model": "m", "input": "Weather in Paris?", "tools": R_TOOLS}
    if effort:
        body["reasoning"] = {"effort": effort}
    t = Translation("openai-responses", "openai-chat", local_model=SMOL)
    out = json.loads(t.request(body).body)
    assert out["chat_template_kwargs"]["enable_thinking"] is on
    assert out["messages"][0]["content"].endswith("/think" if on else "/no_think")


def _gemini_parts(payloads: list[dict]) -> list[dict]:
    return [p for c in payloads for cand in c.get("candidates") or () for p in (cand.get("content") or {}).get("parts") or ()]


def test_gemini_client_gets_thought_and_function_call():
    t = Translation("gemini", "openai-chat", local_model=SMOL)
    t.request(g_req(thinkingConfig={"thinkingBudget": 1024, "includeThoughts": True}), client_path=G_PATH)
    status, body = t.response(200, chat_body(THINK_CALL))
    parts = _gemini_parts([json.loads(body)])
    assert status == 200
    assert any(p.get("thought") and "weather" in p.get("text", "") for p in parts)
    assert [p["functionCall"] for p in parts if "functionCall" in p][0]["args"] == {"city": "Paris"}
    assert all("<tool_call>" not in p.get("text", "") for p in parts)


def test_gemini_client_stream_gets_function_call():
    t = Translation("gemini", "openai-chat", local_model=SMOL)
    t.request(g_req(thinkingConfig={"thinkingBudget": 1024, "includeThoughts": True}), client_path=G_STREAM_PATH)
    s = t.stream()
    out: list[bytes] = []
    for piece in split(chat_stream(tokens(THINK_CALL, 2))):
        out.extend(s.feed(piece))
    out.extend(s.finish())
    payloads = [json.loads(line[5:]) for line in b"".join(out).decode().splitlines() if line.startswith("data:")]
    parts = _gemini_parts(payloads)
    calls = [p["functionCall"] for p in parts if "functionCall" in p]
    assert len(calls) == 1 and calls[0]["name"] == "get_weather" and calls[0]["args"] == {"city": "Paris"}
    assert "".join(p.get("text", "") for p in parts if not p.get("thought")) == "Let me check the weather."


def test_responses_client_gets_reasoning_and_function_call_item():
    t = Translation("openai-responses", "openai-chat", local_model=SMOL)
    t.request({"model": "m", "input": "Weather in Paris?", "tools": R_TOOLS, "reasoning": {"effort": "low"}})
    status, body = t.response(200, chat_body(THINK_CALL))
    items = json.loads(body)["output"]
    kinds = [i["type"] for i in items]
    assert status == 200 and "reasoning" in kinds and "function_call" in kinds
    call = next(i for i in items if i["type"] == "function_call")
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"city": "Paris"}
    text = "".join(c.get("text", "") for i in items if i["type"] == "message" for c in i["content"])
    assert text == "Let me check the weather."
