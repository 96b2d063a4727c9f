"""Multi-turn tool loops through the openai-responses spoke, driven by the official SDKs against a
scripted upstream of the other protocol that checks what it receives."""

from __future__ import annotations

import json

import openai
from proto_helpers import http_module, sdk_client
from test_proto_tool_loops import ScriptedUpstream, chat_sse, msg_sse

from llmitm.protocols import Translation

TOOLS = [{"type": "function", "name": "shell", "description": "Run a command", "strict": False,
          "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}]


def r_sse(*events: dict) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps({**e, 'sequence_number': k})}\n\n".encode()
                    for k, e in enumerate(events))


def anthropic_turn(msg_id: str, usage: dict, *block_events: dict, stop_reason: str, output_tokens: int) -> bytes:
    """An Anthropic streamed answer around the events of its content blocks."""
    return msg_sse({"type": "message_start", "message": {"id": msg_id, "type": "message", "role": "assistant",
                                                         "model": "claude", "content": [], "stop_reason": None,
                                                         "usage": usage}},
                   *block_events,
                   {"type": "message_delta", "delta": {"stop_reason": stop_reason},
                    "usage": {"output_tokens": output_tokens}},
                   {"type": "message_stop"})


def anthropic_text_turn(msg_id: str, usage: dict, text: str, *, output_tokens: int) -> bytes:
    """An Anthropic streamed answer of one text block that ends the turn."""
    return anthropic_turn(msg_id, usage,
                          {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                          {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
                          {"type": "content_block_stop", "index": 0},
                          stop_reason="end_turn", output_tokens=output_tokens)


def test_codex_like_stateless_loop_on_anthropic_with_thinking():
    """store: false, the whole history resent each turn (output items appended, then
    function_call_output): Anthropic receives its signed thinking back, tool ids intact."""
    usage = {"input_tokens": 40, "cache_read_input_tokens": 12, "cache_creation_input_tokens": 0, "output_tokens": 9}
    turn1 = anthropic_turn("msg_1", usage,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "",
                                                                       "signature": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "list files"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "SIG1"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_01",
                                                                       "name": "shell", "input": {}}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"cmd": '}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '"ls"}'}},
        {"type": "content_block_stop", "index": 1},
        stop_reason="tool_use", output_tokens=30)
    turn2 = anthropic_text_turn("msg_2", usage, "Two files.", output_tokens=4)
    upstream = ScriptedUpstream("openai-responses", "anthropic", [turn1, turn2])
    client = upstream.sdk_client("openai")
    history: list = [{"role": "user", "content": "what is here?"}]
    kw = dict(model="gpt-5-codex", instructions="You are Codex.", tools=TOOLS, store=False,
              include=["reasoning.encrypted_content"], reasoning={"effort": "medium", "summary": "auto"},
              max_output_tokens=8000)
    with client.responses.stream(input=history, **kw) as s:
        deltas = [e.delta for e in s if e.type == "response.function_call_arguments.delta"]
        first = s.get_final_response()
    assert "".join(deltas) == '{"cmd": "ls"}'
    call = next(i for i in first.output if i.type == "function_call")
    assert (call.call_id, call.name, json.loads(call.arguments)) == ("toolu_01", "shell", {"cmd": "ls"})
    assert first.usage.input_tokens == 52 and first.usage.input_tokens_details.cached_tokens == 12
    assert first.usage.output_tokens == 30
    history += [item.model_dump(exclude_none=True) for item in first.output]
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": "a.txt\nb.txt"})
    with client.responses.stream(input=history, **kw) as s:
        second = s.get_final_response()
    assert second.output_text == "Two files." and second.status == "completed"
    sent = upstream.received[1]
    assert sent["system"] == "You are Codex." and sent["thinking"]["type"] == "enabled"
    assert sent["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "list files", "signature": "SIG1"},
        {"type": "tool_use", "id": "toolu_01", "name": "shell", "input": {"cmd": "ls"}}]
    assert sent["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "toolu_01",
                                               "content": "a.txt\nb.txt"}]


def test_responses_client_on_a_chat_upstream_parallel_calls():
    usage = {"prompt_tokens": 20, "completion_tokens": 6, "total_tokens": 26}
    turn1 = chat_sse(
        {"choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [
            {"index": 0, "id": "call_a", "type": "function", "function": {"name": "shell", "arguments": '{"cmd"'}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ': "pwd"}'}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 1, "id": "call_b", "type": "function", "function": {"name": "shell", "arguments": '{"cmd": "id"}'}}]}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": usage})
    turn2 = chat_sse({"choices": [{"index": 0, "delta": {"role": "assistant", "content": "done"}}]},
                     {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}, {"choices": [], "usage": usage})
    upstream = ScriptedUpstream("openai-responses", "openai-chat", [turn1, turn2])
    client = upstream.sdk_client("openai")
    history: list = [{"role": "user", "content": "who and where am I?"}]
    with client.responses.stream(model="gpt-5", input=history, tools=TOOLS, store=False) as s:
        first = s.get_final_response()
    calls = [i for i in first.output if i.type == "function_call"]
    assert [(c.call_id, json.loads(c.arguments)) for c in calls] == [("call_a", {"cmd": "pwd"}), ("call_b", {"cmd": "id"})]
    history += [i.model_dump(exclude_none=True) for i in first.output]
    history += [{"type": "function_call_output", "call_id": c.call_id, "output": f"out-{c.call_id}"} for c in calls]
    with client.responses.stream(model="gpt-5", input=history, tools=TOOLS, store=False) as s:
        assert s.get_final_response().output_text == "done"
    sent = upstream.received[1]["messages"]
    assert sent[1]["tool_calls"] == [
        {"id": "call_a", "type": "function", "function": {"name": "shell", "arguments": '{"cmd": "pwd"}'}},
        {"id": "call_b", "type": "function", "function": {"name": "shell", "arguments": '{"cmd": "id"}'}}]
    assert sent[2:] == [{"role": "tool", "tool_call_id": "call_a", "content": "out-call_a"},
                        {"role": "tool", "tool_call_id": "call_b", "content": "out-call_b"}]


def test_claude_code_like_loop_on_a_responses_upstream():
    """An Anthropic client on a Responses upstream: reasoning summary → thinking, function_call →
    tool_use, its tool_result → function_call_output with the same call id."""
    resp = {"id": "resp_1", "object": "response", "created_at": 1, "model": "gpt-5", "status": "in_progress",
            "output": [], "usage": None, "error": None}
    usage = {"input_tokens": 30, "input_tokens_details": {"cached_tokens": 10}, "output_tokens": 12,
             "output_tokens_details": {"reasoning_tokens": 5}, "total_tokens": 42}
    call = {"id": "fc_1", "type": "function_call", "status": "completed", "call_id": "call_Q",
            "name": "shell", "arguments": '{"cmd":"ls"}'}
    turn1 = r_sse(
        {"type": "response.created", "response": resp},
        {"type": "response.output_item.added", "output_index": 0, "item": {"id": "rs_1", "type": "reasoning",
                                                                            "summary": []}},
        {"type": "response.reasoning_summary_part.added", "output_index": 0, "item_id": "rs_1", "summary_index": 0,
         "part": {"type": "summary_text", "text": ""}},
        {"type": "response.reasoning_summary_text.delta", "output_index": 0, "item_id": "rs_1", "summary_index": 0,
         "delta": "Listing."},
        {"type": "response.output_item.done", "output_index": 0, "item": {"id": "rs_1", "type": "reasoning",
                                                                           "summary": [{"type": "summary_text",
                                                                                        "text": "Listing."}]}},
        {"type": "response.output_item.added", "output_index": 1, "item": {**call, "arguments": "",
                                                                            "status": "in_progress"}},
        {"type": "response.function_call_arguments.delta", "output_index": 1, "item_id": "fc_1", "delta": '{"cmd":'},
        {"type": "response.function_call_arguments.delta", "output_index": 1, "item_id": "fc_1", "delta": '"ls"}'},
        {"type": "response.function_call_arguments.done", "output_index": 1, "item_id": "fc_1",
         "arguments": '{"cmd":"ls"}'},
        {"type": "response.output_item.done", "output_index": 1, "item": call},
        {"type": "response.completed", "response": {**resp, "status": "completed", "usage": usage}})
    msg = {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
           "content": [{"type": "output_text", "text": "Empty dir.", "annotations": []}]}
    turn2 = r_sse({"type": "response.created", "response": resp},
                  {"type": "response.output_item.done", "output_index": 0, "item": msg},
                  {"type": "response.completed", "response": {**resp, "status": "completed", "output": [msg],
                                                              "usage": usage}})
    upstream = ScriptedUpstream("anthropic", "openai-responses", [turn1, turn2])
    client = upstream.sdk_client("anthropic")
    tools = [{"name": "shell", "input_schema": TOOLS[0]["parameters"]}]
    messages: list = [{"role": "user", "content": "ls please"}]
    kw = dict(model="claude-x", max_tokens=4000, tools=tools, thinking={"type": "enabled", "budget_tokens": 2000})
    with client.messages.stream(messages=messages, **kw) as s:
        first = s.get_final_message()
    assert [b.type for b in first.content] == ["thinking", "tool_use"] and first.stop_reason == "tool_use"
    assert first.content[0].thinking == "Listing." and first.content[1].input == {"cmd": "ls"}
    assert first.usage.input_tokens == 20 and first.usage.cache_read_input_tokens == 10
    assert upstream.received[0]["reasoning"] == {"effort": "low", "summary": "auto"}  # budget 2000
    assert upstream.received[0]["store"] is False and upstream.received[0]["stream"] is True
    messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_Q", "content": "(none)"}]}]
    with client.messages.stream(messages=messages, **kw) as s:
        second = s.get_final_message()
    assert second.content[0].text == "Empty dir." and second.stop_reason == "end_turn"
    assert upstream.received[1]["input"][1:] == [
        {"type": "function_call", "call_id": "call_Q", "name": "shell", "arguments": '{"cmd": "ls"}'},
        {"type": "function_call_output", "call_id": "call_Q", "output": "(none)"}]


def test_responses_client_http_error_from_anthropic_keeps_status_and_retry_semantics():
    httpx = http_module("openai")
    body = json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}).encode()

    def handler(request):
        t = Translation("openai-responses", "anthropic")
        t.request(json.loads(request.content))
        status, out = t.response(529, body)
        return httpx.Response(status, headers={"content-type": "application/json"}, content=out)

    client = sdk_client("responses", handler)
    try:
        client.responses.create(model="gpt-5", input="hi", store=False)
    except openai.InternalServerError as e:
        assert e.status_code == 529 and e.body["message"] == "Overloaded" and e.body["code"] == "overloaded_error"
    else:
        raise AssertionError("expected an error")


def test_codex_apply_patch_custom_tool_on_anthropic():
    """A custom (free-text) tool: Anthropic gets a function with one string argument; the client gets a
    custom_tool_call whose input is that string, streamed and whole, and sends it back as history."""
    usage = {"input_tokens": 10, "output_tokens": 5}
    patch = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch"
    args = json.dumps({"input": patch})
    turn1 = anthropic_turn("msg_1", usage,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_P",
                                                                       "name": "apply_patch", "input": {}}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": args[:9]}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": args[9:]}},
        {"type": "content_block_stop", "index": 0},
        stop_reason="tool_use", output_tokens=20)
    turn2 = anthropic_text_turn("msg_2", usage, "Added.", output_tokens=2)
    upstream = ScriptedUpstream("openai-responses", "anthropic", [turn1, turn2])
    client = upstream.sdk_client("openai")
    tools = [{"type": "custom", "name": "apply_patch", "description": "Edit files",
              "format": {"type": "grammar", "syntax": "lark", "definition": "start: begin_patch hunk+ end_patch"}}]
    history: list = [{"role": "user", "content": "add a.txt"}]
    with client.responses.stream(model="gpt-5-codex", input=history, tools=tools, store=False) as s:
        events = list(s)
        first = s.get_final_response()
    call = first.output[0]
    assert (call.type, call.call_id, call.name, call.input) == ("custom_tool_call", "toolu_P", "apply_patch", patch)
    assert [e.input for e in events if e.type == "response.custom_tool_call_input.done"] == [patch]
    assert "response.function_call_arguments.delta" not in [e.type for e in events]
    history += [i.model_dump(exclude_none=True) for i in first.output]
    history.append({"type": "custom_tool_call_output", "call_id": call.call_id, "output": "Done!"})
    with client.responses.stream(model="gpt-5-codex", input=history, tools=tools, store=False) as s:
        assert s.get_final_response().output_text == "Added."
    sent = upstream.received[1]["messages"]
    assert sent[1]["content"] == [{"type": "tool_use", "id": "toolu_P", "name": "apply_patch",
                                   "input": {"input": patch}}]
    assert sent[2]["content"] == [{"type": "tool_result", "tool_use_id": "toolu_P", "content": "Done!"}]


def test_custom_tool_call_in_a_non_stream_body():
    body = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "stop_reason": "tool_use",
            "content": [{"type": "tool_use", "id": "toolu_Q", "name": "apply_patch", "input": {"input": "PATCH"}}],
            "usage": {"input_tokens": 3, "output_tokens": 4}}
    t = Translation("openai-responses", "anthropic")
    t.request({"model": "gpt-5", "input": "x", "store": False,
               "tools": [{"type": "custom", "name": "apply_patch", "format": {"type": "text"}}]})
    status, out = t.response(200, json.dumps(body).encode())
    assert json.loads(out)["output"] == [{"id": "ctc_Q", "type": "custom_tool_call", "status": "completed",
                                          "call_id": "toolu_Q", "name": "apply_patch", "input": "PATCH"}]
