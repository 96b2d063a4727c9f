"""Multi-turn tool loops driven by the official SDKs through a Translation, against a scripted
upstream of the other protocol that checks what it receives: tool_use → tool_result → answer."""

from __future__ import annotations

import json

from proto_helpers import http_module, sdk_client, translate_stream

from llmitm.protocols import Translation

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def chat_sse(*chunks: dict) -> bytes:
    base = {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "qwen3"}
    return b"".join(b"data: " + json.dumps({**base, **c}).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def msg_sse(*events: dict) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


class ScriptedUpstream:
    """Answers turn k with replies[k], translating both ways like the addon does; keeps what the
    upstream received."""

    def __init__(self, client: str, upstream: str, replies: list[bytes]):
        self.client, self.upstream, self.replies = client, upstream, replies
        self.received: list[dict] = []

    def sdk_client(self, sdk: str):
        """An official SDK client ("openai" or "anthropic") talking to this upstream through a translation."""
        httpx = http_module(sdk)

        def handler(request):
            t = Translation(self.client, self.upstream)
            up = t.request(json.loads(request.content), upstream_model="upstream-model")
            self.received.append(json.loads(up.body))
            reply = self.replies[len(self.received) - 1]
            out = translate_stream(t, [reply[i:i + 9] for i in range(0, len(reply), 9)])
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=b"".join(out))

        return sdk_client(sdk, handler)


def test_claude_code_like_loop_on_an_openai_compatible_upstream():
    tools = [{"name": "Read", "description": "Read a file",
              "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}]
    usage = {"prompt_tokens": 50, "completion_tokens": 8, "total_tokens": 58, "prompt_tokens_details": {"cached_tokens": 10}}
    upstream = ScriptedUpstream("anthropic", "openai-chat", [
        chat_sse({"choices": [{"index": 0, "delta": {"role": "assistant", "reasoning": "need the file"}}]},
                 {"choices": [{"index": 0, "delta": {"content": "Reading it."}}]},
                 {"choices": [{"index": 0, "delta": {"tool_calls": [
                     {"index": 1, "id": "call_r1", "type": "function", "function": {"name": "Read", "arguments": ""}}]}}]},
                 {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 1, "function": {"arguments": '{"pa'}}]}}]},
                 {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 1, "function": {"arguments": 'th": "a.txt"}'}}]}}]},
                 {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
                 {"choices": [], "usage": usage}),
        chat_sse({"choices": [{"index": 0, "delta": {"content": "It says hi."}}]},
                 {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                 {"choices": [], "usage": usage}),
    ])
    client = upstream.sdk_client("anthropic")
    messages: list = [{"role": "user", "content": [
        {"type": "text", "text": "What does a.txt say?", "cache_control": {"type": "ephemeral"}}]}]
    system = [{"type": "text", "text": "You are a coding agent.", "cache_control": {"type": "ephemeral"}}]
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=32000, system=system, tools=tools,
                                messages=messages, thinking={"type": "enabled", "budget_tokens": 4000}) as s:
        first = s.get_final_message()
    assert [b.type for b in first.content] == ["thinking", "text", "tool_use"]
    assert first.stop_reason == "tool_use" and first.content[2].input == {"path": "a.txt"}
    # 0 at message_start, the real split in message_delta (which the SDK merges): 50 prompt = 40 + 10 cached.
    assert (first.usage.input_tokens, first.usage.cache_read_input_tokens, first.usage.output_tokens) == (40, 10, 8)

    messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": first.content[2].id,
                                               "content": "hi"}, {"type": "text", "text": "Summarize."}]}]
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=32000, system=system, tools=tools,
                                messages=messages, thinking={"type": "enabled", "budget_tokens": 4000}) as s:
        final = s.get_final_message()
    assert final.content[0].text == "It says hi." and final.stop_reason == "end_turn"

    first_req, second_req = upstream.received
    assert first_req["model"] == "upstream-model" and first_req["reasoning_effort"] == "medium"
    assert first_req["messages"][0] == {"role": "system", "content": "You are a coding agent."}
    assert first_req["stream_options"] == {"include_usage": True}
    assert first_req["tools"][0]["function"]["name"] == "Read"
    assert second_req["messages"][2:] == [
        {"role": "assistant", "content": "Reading it.", "tool_calls": [
            {"id": "call_r1", "type": "function", "function": {"name": "Read", "arguments": '{"path": "a.txt"}'}}]},
        {"role": "tool", "tool_call_id": "call_r1", "content": "hi"},
        {"role": "user", "content": "Summarize."}]


def test_openai_sdk_loop_with_image_on_an_anthropic_upstream():
    tools = [{"type": "function", "function": {"name": "zoom", "parameters": {
        "type": "object", "properties": {"factor": {"type": "integer"}}}}}]
    start = {"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x", "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 30, "output_tokens": 1}}}
    upstream = ScriptedUpstream("openai-chat", "anthropic", [
        msg_sse(start,
                {"type": "content_block_start", "index": 0, "content_block": {
                    "type": "tool_use", "id": "toolu_z", "name": "zoom", "input": {}}},
                {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": ""}},
                {"type": "content_block_delta", "index": 0,
                 "delta": {"type": "input_json_delta", "partial_json": '{"factor": 2}'}},
                {"type": "content_block_stop", "index": 0},
                {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 12}},
                {"type": "message_stop"}),
        msg_sse(start,
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "A red pixel."}},
                {"type": "content_block_stop", "index": 0},
                {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 4}},
                {"type": "message_stop"}),
    ])
    client = upstream.sdk_client("openai")
    messages: list = [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}]
    with client.chat.completions.stream(model="gpt-4o", messages=messages, tools=tools,
                                        stream_options={"include_usage": True}) as s:
        for _ in s:
            pass
        first = s.get_final_completion()
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == ("toolu_z", "zoom", {"factor": 2})
    assert (first.usage.prompt_tokens, first.usage.completion_tokens) == (30, 12)

    messages += [first.choices[0].message.model_dump(exclude_none=True, exclude={"parsed"}),
                 {"role": "tool", "tool_call_id": call.id, "content": "zoomed"}]
    final = client.chat.completions.create(model="gpt-4o", messages=messages, tools=tools, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in final if c.choices)
    assert text == "A red pixel."

    first_req, second_req = upstream.received
    assert first_req["messages"][0]["content"][1] == {
        "type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    assert second_req["messages"][1] == {"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_z", "name": "zoom", "input": {"factor": 2}}]}
    assert second_req["messages"][2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_z", "content": "zoomed"}]}
