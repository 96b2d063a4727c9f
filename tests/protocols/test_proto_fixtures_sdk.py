"""Every recorded Anthropic and OpenAI Chat response, translated to the other protocol and read by
the other official SDK's own accumulator. The expected values come from the recording's own SDK
reading the untranslated bytes, so neither side of the comparison is computed by the code under test."""

from __future__ import annotations

import json

import openai
import pytest
from proto_helpers import (
    A_BODIES,
    A_ERRORS,
    A_STREAMS,
    C_BODIES,
    C_STREAMS,
    FIXTURES,
    anthropic_client,
    merged_anthropic_usage,
    openai_chunks,
    openai_client,
    wire_bytes,
)
from sdk_clients import (
    USER_TURN,
    anthropic_answer,
    anthropic_stream_final,
    chat_answer,
    chat_stream_snapshot,
    streaming_client_over_json,
    translating_client,
)

from llmitm.protocols import Translation

A_TO_C_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "tool_calls", "max_tokens": "length",
                 "refusal": "content_filter", "pause_turn": "stop"}
C_TO_A_STOP = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens", "content_filter": "refusal"}



def test_fixture_inventory():
    # Guards against a moved ../shared silently turning the parametrized tests into zero tests.
    assert len(A_STREAMS) >= 25 and len(C_STREAMS) >= 20 and len(A_BODIES) >= 8 and len(C_BODIES) >= 10


def reference_openai(wire: bytes, *, stream: bool):
    client = openai_client(wire, stream=stream)
    if not stream:
        return client.chat.completions.create(model="m", messages=USER_TURN)
    try:
        with client.chat.completions.stream(model="m", messages=USER_TURN) as s:
            for _ in s:
                pass
            return s.current_completion_snapshot
    except IndexError:
        # The SDK's accumulator assumes tool indexes start at 0; Anthropic's OpenAI-compatible
        # surface starts at 1 (PROTOCOLS.md §1.1). Accumulate by index here instead.
        return accumulate_chat_chunks(openai_chunks(wire))


def accumulate_chat_chunks(chunks: list[dict]):
    message = {"content": None, "refusal": None, "tool_calls": {}, "reasoning_content": None}
    finish, usage = None, None
    for chunk in chunks:
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            for key in ("content", "refusal", "reasoning_content"):
                if delta.get(key):
                    message[key] = (message[key] or "") + delta[key]
            for tc in delta.get("tool_calls") or []:
                slot = message["tool_calls"].setdefault(tc["index"], {"id": None, "name": "", "arguments": ""})
                slot["id"] = tc.get("id") or slot["id"]
                fn = tc.get("function") or {}
                slot["name"] += fn.get("name") or ""
                slot["arguments"] += fn.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    calls = [{"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
             for _, c in sorted(message["tool_calls"].items())]
    return openai.types.chat.ChatCompletion.model_validate({
        "id": "x", "object": "chat.completion", "created": 0, "model": "m", "usage": usage,
        "choices": [{"index": 0, "finish_reason": finish, "message": {
            "role": "assistant", "content": message["content"], "refusal": message["refusal"],
            "tool_calls": calls or None, "reasoning_content": message["reasoning_content"]}}]})


def reference_anthropic(wire: bytes, *, stream: bool):
    client = anthropic_client(wire, stream=stream)
    if not stream:
        return client.messages.create(model="m", max_tokens=100, messages=USER_TURN)
    with client.messages.stream(model="m", max_tokens=100, messages=USER_TURN) as s:
        return s.get_final_message()


def a_text(message) -> str:
    return "".join(b.text for b in message.content if b.type == "text")


def a_thinking(message) -> str:
    return "".join(b.thinking for b in message.content if b.type == "thinking")


def a_tools(message) -> list:
    return [(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"]


def c_tools(message, *, parse: bool = True) -> list:
    return [(tc.id, tc.function.name, json.loads(tc.function.arguments) if parse else tc.function.arguments)
            for tc in message.tool_calls or []]


def c_reasoning(message) -> str:
    extra = message.model_extra or {}
    return extra.get("reasoning_content") or extra.get("reasoning") or ""


# ---------------------------------------------------------------------------------------------
# Anthropic upstream → OpenAI Chat client


def _check_a_to_c(expected, choice, usage, wire_usage: dict):
    message = choice.message
    assert (message.content or "") == a_text(expected)
    assert c_reasoning(message) == a_thinking(expected)
    if expected.stop_reason == "max_tokens":
        # A cut-off tool call is reported as `length`, never as a finished tool call.
        assert [t[:2] for t in c_tools(message, parse=False)] == [t[:2] for t in a_tools(expected)]
    else:
        assert c_tools(message) == a_tools(expected)
    assert choice.finish_reason == A_TO_C_FINISH[expected.stop_reason]
    read = wire_usage.get("cache_read_input_tokens") or 0
    write = wire_usage.get("cache_creation_input_tokens") or 0
    assert usage.prompt_tokens == wire_usage["input_tokens"] + read + write
    assert usage.completion_tokens == wire_usage["output_tokens"]
    assert usage.prompt_tokens_details.cached_tokens == read


@pytest.mark.parametrize("rel", A_STREAMS)
def test_anthropic_stream_read_by_openai_sdk(rel):
    wire = wire_bytes(rel)
    expected = reference_anthropic(wire, stream=True)
    t = Translation("openai-chat", "anthropic")
    completion = chat_stream_snapshot(translating_client("openai", t, wire, stream=True))
    _check_a_to_c(expected, completion.choices[0], completion.usage, merged_anthropic_usage(wire))
    assert t.usage is not None and t.usage.output_total == completion.usage.completion_tokens


@pytest.mark.parametrize("rel", A_STREAMS[:6])
def test_anthropic_stream_without_include_usage_has_no_usage_chunk(rel):
    wire = wire_bytes(rel)
    t = Translation("openai-chat", "anthropic")
    client = translating_client("openai", t, wire, stream=True)
    chunks = [c for c in client.chat.completions.create(model="gpt-4o", messages=USER_TURN, stream=True)]
    assert chunks and all(c.usage is None for c in chunks)
    assert t.usage is not None  # metering still sees it


@pytest.mark.parametrize("rel", A_BODIES)
def test_anthropic_body_read_by_openai_sdk(rel):
    wire = (FIXTURES / rel).read_bytes()
    expected = reference_anthropic(wire, stream=False)
    t = Translation("openai-chat", "anthropic")
    completion = chat_answer(translating_client("openai", t, wire, stream=False))
    _check_a_to_c(expected, completion.choices[0], completion.usage, json.loads(wire)["usage"])


@pytest.mark.parametrize("rel", A_ERRORS)
def test_anthropic_error_read_by_openai_sdk(rel):
    wire = (FIXTURES / rel).read_bytes()
    status = {"error-400-invalid-request.json": 400}.get(rel.rsplit("/", 1)[1], 429)
    t = Translation("openai-chat", "anthropic")
    client = translating_client("openai", t, wire, stream=False, status=status)
    with pytest.raises(openai.APIStatusError) as info:
        chat_answer(client)
    assert info.value.status_code == status
    assert info.value.body["message"] == json.loads(wire)["error"]["message"]
    assert info.value.body["type"] == {400: "invalid_request_error", 429: "rate_limit_error"}[status]


# ---------------------------------------------------------------------------------------------
# OpenAI Chat upstream → Anthropic client


def _check_c_to_a(expected, message, delta_usage, final_usage):
    choice = expected.choices[0]
    em = choice.message
    assert a_text(message) == (em.content or "") + (em.refusal or "")
    assert a_thinking(message) == c_reasoning(em)
    if choice.finish_reason == "length":
        assert [t[:2] for t in a_tools(message)] == [t[:2] for t in c_tools(em, parse=False)]
    else:
        assert a_tools(message) == c_tools(em)
    want = C_TO_A_STOP[choice.finish_reason]
    if want == "end_turn" and em.tool_calls:
        want = "tool_use"  # derived from what was emitted
    assert message.stop_reason == want
    if expected.usage is not None:
        cached = (expected.usage.prompt_tokens_details.cached_tokens
                  if expected.usage.prompt_tokens_details else 0) or 0
        for usage in (delta_usage, final_usage):
            if usage is None:
                continue
            assert usage.input_tokens == expected.usage.prompt_tokens - cached
            assert usage.output_tokens == expected.usage.completion_tokens
            assert (usage.cache_read_input_tokens or 0) == cached


@pytest.mark.parametrize("rel", C_STREAMS)
def test_openai_stream_read_by_anthropic_sdk(rel):
    wire = wire_bytes(rel)
    expected = reference_openai(wire, stream=True)
    t = Translation("anthropic", "openai-chat")
    seen: list = []
    message, delta_usage = anthropic_stream_final(translating_client("anthropic", t, wire, stream=True, seen=seen))
    assert seen[0][1]["stream_options"] == {"include_usage": True}
    has_usage = any(c.get("usage") for c in openai_chunks(wire))
    assert (delta_usage is not None) and (expected.usage is not None) == has_usage
    _check_c_to_a(expected, message, delta_usage if has_usage else None, None)
    details = expected.usage.completion_tokens_details if expected.usage else None
    if details and details.reasoning_tokens is not None:  # carried for metering (Anthropic has no field)
        assert t.usage.reasoning == details.reasoning_tokens


@pytest.mark.parametrize("rel", C_BODIES)
def test_openai_body_read_by_anthropic_sdk(rel):
    wire = (FIXTURES / rel).read_bytes()
    expected = reference_openai(wire, stream=False)
    t = Translation("anthropic", "openai-chat")
    message = anthropic_answer(translating_client("anthropic", t, wire, stream=False))
    _check_c_to_a(expected, message, None, message.usage if expected.usage else None)


# ---------------------------------------------------------------------------------------------
# A JSON answer to a streaming client (upstream ignored `stream: true`) becomes a complete stream


@pytest.mark.parametrize("rel", A_BODIES)
def test_anthropic_body_as_stream_read_by_openai_sdk(rel):
    wire = (FIXTURES / rel).read_bytes()
    expected = reference_anthropic(wire, stream=False)
    completion = chat_stream_snapshot(streaming_client_over_json("openai", Translation("openai-chat", "anthropic"),
                                                                 wire))
    _check_a_to_c(expected, completion.choices[0], completion.usage, json.loads(wire)["usage"])


@pytest.mark.parametrize("rel", C_BODIES)
def test_openai_body_as_stream_read_by_anthropic_sdk(rel):
    wire = (FIXTURES / rel).read_bytes()
    expected = reference_openai(wire, stream=False)
    message, delta_usage = anthropic_stream_final(
        streaming_client_over_json("anthropic", Translation("anthropic", "openai-chat"), wire))
    _check_c_to_a(expected, message, delta_usage if expected.usage else None, None)


def test_signed_thinking_survives_an_openai_client_tool_loop():
    """C client, Anthropic upstream, thinking on: the assistant message as the openai SDK returns
    it, sent back verbatim, carries Anthropic's signed thinking so thinking can stay enabled."""
    wire = (FIXTURES / "anthropic-messages/prism/thinking-text-tool-use.json").read_bytes()
    original = json.loads(wire)
    t = Translation("openai-chat", "anthropic")
    tools = [{"type": "function", "function": {"name": b["name"], "parameters": {"type": "object"}}}
             for b in original["content"] if b["type"] == "tool_use"]
    first = translating_client("openai", t, wire, stream=False).chat.completions.create(
        model="gpt-4o", messages=USER_TURN, tools=tools, reasoning_effort="low", max_completion_tokens=8000)
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    history = [*USER_TURN, message.model_dump(exclude_none=True)]
    history += [{"role": "tool", "tool_call_id": tc.id, "content": "done"} for tc in message.tool_calls]
    t2 = Translation("openai-chat", "anthropic")
    upstream = json.loads(t2.request({"model": "gpt-4o", "messages": history, "tools": tools,
                                      "reasoning_effort": "low", "max_completion_tokens": 8000},
                                     upstream_model=None).body)
    assert upstream["thinking"]["type"] == "enabled"
    sent = upstream["messages"][1]["content"]
    assert sent[0] == next(b for b in original["content"] if b["type"] == "thinking")
    assert [b["id"] for b in sent if b["type"] == "tool_use"] == [
        b["id"] for b in original["content"] if b["type"] == "tool_use"]
    assert [b["type"] for b in upstream["messages"][2]["content"]] == ["tool_result"] * len(message.tool_calls)
