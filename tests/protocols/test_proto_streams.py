"""Stream and error behaviour the recordings do not cover: mid-stream errors, cut-off streams,
keep-alives, upstream error bodies, compression, reasoning carriers, derived stop reasons."""

from __future__ import annotations

import gzip
import json
import zlib

import anthropic
import brotli
import openai
import pytest
from proto_helpers import anthropic_client, openai_client, split

from llmitm.protocols import Translation, client_content_type

USER = [{"role": "user", "content": "hi"}]
CHAT_REQ = {"model": "gpt-4o", "messages": USER, "stream": True, "stream_options": {"include_usage": True}}
MSG_REQ = {"model": "claude-x", "max_tokens": 100, "messages": USER, "stream": True}


def a_event(payload: dict) -> str:
    return f"event: {payload['type']}\ndata: {json.dumps(payload)}\n\n"


def c_chunk(delta: dict | None = None, finish: str | None = None, usage: dict | None = None, **extra) -> str:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish, **extra}]
    body = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": choices}
    if usage is not None:
        body["usage"] = usage
    return f"data: {json.dumps(body)}\n\n"


A_HEAD = (a_event({"type": "message_start", "message": {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x", "content": [], "stop_reason": None,
    "stop_sequence": None, "usage": {"input_tokens": 10, "cache_read_input_tokens": 5, "output_tokens": 1}}})
    + a_event({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    + a_event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}}))
A_TAIL = (a_event({"type": "content_block_stop", "index": 0})
          + a_event({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                     "usage": {"output_tokens": 7}})
          + a_event({"type": "message_stop"}))


def translate(client: str, upstream: str, body: dict, wire: str | bytes) -> tuple[bytes, Translation]:
    t = Translation(client, upstream)
    t.request(body, upstream_model=None)
    s = t.stream()
    out: list[bytes] = []
    for piece in split(wire.encode() if isinstance(wire, str) else wire):
        out.extend(s.feed(piece))
    out.extend(s.finish())
    assert all(out)
    return b"".join(out), t


def read_openai(data: bytes):
    """Chunks the openai SDK yields for a translated stream (raises what the SDK raises)."""
    return list(openai_client(data, stream=True).chat.completions.create(model="m", messages=USER, stream=True))


def read_anthropic(data: bytes):
    with anthropic_client(data, stream=True).messages.stream(model="m", max_tokens=10, messages=USER) as s:
        events = list(s)
        return events, s.get_final_message()


# ---------------------------------------------------------------------------------------------
# Errors and abrupt ends


def test_anthropic_midstream_error_reaches_openai_client_as_error_without_done():
    wire = A_HEAD + 'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    data, _ = translate("openai-chat", "anthropic", CHAT_REQ, wire)
    assert b"[DONE]" not in data
    last = json.loads(data.strip().split(b"\n\n")[-1][len(b"data: "):])
    assert last == {"error": {"message": "Overloaded", "type": "server_error", "param": None,
                              "code": "overloaded_error"}}
    with pytest.raises(openai.APIError, match="Overloaded"):
        read_openai(data)


def test_openai_midstream_error_reaches_anthropic_client_as_error_event():
    wire = c_chunk({"role": "assistant", "content": "Hel"}) + 'data: {"error":{"message":"boom","type":"server_error"}}\n\n'
    data, _ = translate("anthropic", "openai-chat", MSG_REQ, wire)
    frames = data.strip().split(b"\n\n")
    assert frames[-2].startswith(b"event: content_block_stop")  # open block closed first
    assert frames[-1] == (b'event: error\ndata: {"type": "error", "error": {"type": "api_error", '
                          b'"message": "boom"}}')
    with pytest.raises(anthropic.APIStatusError, match="boom"):
        read_anthropic(data)


def test_cut_anthropic_stream_ends_openai_client_with_error():
    data, _ = translate("openai-chat", "anthropic", CHAT_REQ, A_HEAD)
    assert b"[DONE]" not in data and b'"error"' in data
    with pytest.raises(openai.APIError, match="ended before"):
        read_openai(data)


def test_cut_openai_stream_ends_anthropic_client_with_error():
    data, _ = translate("anthropic", "openai-chat", MSG_REQ, c_chunk({"content": "Hel"}))
    assert b"message_stop" not in data and b"event: error" in data
    with pytest.raises(anthropic.APIStatusError, match="ended before"):
        read_anthropic(data)


def test_openai_stream_without_done_but_finished_completes_normally():
    wire = c_chunk({"content": "Hi"}) + c_chunk({}, "stop")
    data, _ = translate("anthropic", "openai-chat", MSG_REQ, wire)
    _, message = read_anthropic(data)
    assert message.stop_reason == "end_turn" and message.content[0].text == "Hi"


def test_openai_done_without_finish_reason_after_tool_call_is_tool_use():
    wire = (c_chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                     "function": {"name": "now", "arguments": ""}}]}) + "data: [DONE]\n\n")
    data, _ = translate("anthropic", "openai-chat", MSG_REQ, wire)
    _, message = read_anthropic(data)
    assert message.stop_reason == "tool_use" and message.content[0].input == {}


# ---------------------------------------------------------------------------------------------
# Keep-alives, usage placement, terminators


def test_ping_becomes_comment_for_openai_client_and_done_terminates():
    wire = A_HEAD + 'event: ping\ndata: {"type": "ping"}\n\n' + A_TAIL
    data, t = translate("openai-chat", "anthropic", CHAT_REQ, wire)
    assert b"\n: keep-alive\n\n" in b"\n" + data
    assert data.endswith(b"data: [DONE]\n\n")
    chunks = read_openai(data)
    assert chunks[-1].usage.prompt_tokens == 15 and chunks[-1].usage.completion_tokens == 7
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens == 5
    assert t.usage.input_total == 15 and t.usage.cached_read == 5


def test_openai_comments_become_pings_only_after_message_start():
    wire = ": OPENROUTER PROCESSING\n\n" + c_chunk({"content": "Hi"}) + ": still here\n\n" + c_chunk({}, "stop") \
        + "data: [DONE]\n\n"
    data, _ = translate("anthropic", "openai-chat", MSG_REQ, wire)
    assert data.startswith(b"event: message_start")
    assert data.count(b"event: ping") == 1
    read_anthropic(data)


def test_anthropic_client_gets_zero_input_at_start_and_real_usage_in_message_delta():
    usage = {"prompt_tokens": 120, "completion_tokens": 9, "total_tokens": 129,
             "prompt_tokens_details": {"cached_tokens": 100}}
    wire = c_chunk({"content": "Hi"}) + c_chunk({}, "stop") + c_chunk(None, usage=usage) + "data: [DONE]\n\n"
    data, t = translate("anthropic", "openai-chat", MSG_REQ, wire)
    events, _ = read_anthropic(data)
    start = next(e for e in events if e.type == "message_start")
    delta = next(e for e in events if e.type == "message_delta")
    assert start.message.usage.input_tokens == 0
    assert (delta.usage.input_tokens, delta.usage.cache_read_input_tokens, delta.usage.output_tokens) == (20, 100, 9)
    assert t.usage.input_total == 120 and t.usage.cached_read == 100 and t.usage.output_total == 9


def test_usage_chunk_only_when_client_asked():
    body = dict(CHAT_REQ)
    del body["stream_options"]
    data, t = translate("openai-chat", "anthropic", body, A_HEAD + A_TAIL)
    assert b'"usage"' not in data and t.usage.output_total == 7


# ---------------------------------------------------------------------------------------------
# Reasoning carriers


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_openai_compatible_reasoning_fields_become_thinking(field):
    wire = (c_chunk({"role": "assistant", field: "Let me"}) + c_chunk({field: " think."})
            + c_chunk({"content": "42"}) + c_chunk({}, "stop") + "data: [DONE]\n\n")
    data, _ = translate("anthropic", "openai-chat", MSG_REQ, wire)
    _, message = read_anthropic(data)
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "Let me think." and message.content[0].signature == ""
    assert message.content[1].text == "42"


@pytest.mark.parametrize("pieces", [
    ["<think>\nplan it\n</think>\n\nAnswer"],
    ["<th", "ink>", "\npla", "n it\n</th", "ink>\n", "\nAns", "wer"],
    ["  <think>\n", "plan it\n<", "/think>", "\n\nAnswer"],
])
def test_think_tags_in_content_become_thinking(pieces):
    wire = "".join(c_chunk({"content": p}) for p in pieces) + c_chunk({}, "stop") + "data: [DONE]\n\n"
    data, _ = translate("anthropic", "openai-chat", MSG_REQ, wire)
    _, message = read_anthropic(data)
    assert [(b.type, getattr(b, "thinking", None) or b.text) for b in message.content] == [
        ("thinking", "plan it\n"), ("text", "\nAnswer")]


def test_unterminated_think_block_at_length_is_reasoning_only():
    wire = c_chunk({"content": "<think>\nstill going"}) + c_chunk({}, "length") + "data: [DONE]\n\n"
    data, _ = translate("anthropic", "openai-chat", MSG_REQ, wire)
    _, message = read_anthropic(data)
    assert [(b.type, b.thinking) for b in message.content] == [("thinking", "still going")]
    assert message.stop_reason == "max_tokens"


def test_text_that_merely_mentions_think_is_plain():
    wire = c_chunk({"content": "I <think> so"}) + c_chunk({}, "stop") + "data: [DONE]\n\n"
    data, _ = translate("anthropic", "openai-chat", MSG_REQ, wire)
    _, message = read_anthropic(data)
    assert [b.text for b in message.content] == ["I <think> so"]


def test_anthropic_thinking_and_signature_reach_openai_client_as_reasoning_content():
    wire = (A_HEAD.split("event: content_block_start")[0]
            + a_event({"type": "content_block_start", "index": 0,
                       "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
            + a_event({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hm"}})
            + a_event({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "s"}})
            + a_event({"type": "content_block_stop", "index": 0})
            + a_event({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}})
            + a_event({"type": "message_stop"}))
    data, _ = translate("openai-chat", "anthropic", CHAT_REQ, wire)
    chunks = read_openai(data)
    assert "".join((c.choices[0].delta.model_extra or {}).get("reasoning_content", "") for c in chunks
                   if c.choices) == "hm"


# ---------------------------------------------------------------------------------------------
# Stop reasons derived from what was emitted


def test_tool_calls_with_finish_stop_are_tool_use():  # Ollama, Gemini-via-OpenAI
    wire = (c_chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "now", "arguments": "{}"}}]})
            + c_chunk({}, "stop") + "data: [DONE]\n\n")
    data, _ = translate("anthropic", "openai-chat", MSG_REQ, wire)
    assert read_anthropic(data)[1].stop_reason == "tool_use"


def test_truncated_tool_call_is_max_tokens_not_tool_use():
    wire = (c_chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "write", "arguments": '{"te'}}]})
            + c_chunk({}, "length") + "data: [DONE]\n\n")
    data, _ = translate("anthropic", "openai-chat", MSG_REQ, wire)
    assert b'"stop_reason":"max_tokens"' in data


def test_parallel_tool_calls_interleaved_by_index():
    wire = (c_chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": ""}}]})
            + c_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"x":'}}]})
            + c_chunk({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g", "arguments": '{"y": 2}'}}]})
            + c_chunk({"tool_calls": [{"index": 0, "function": {"arguments": " 1}"}}]})
            + c_chunk({}, "tool_calls") + "data: [DONE]\n\n")
    data, _ = translate("anthropic", "openai-chat", MSG_REQ, wire)
    _, message = read_anthropic(data)
    assert [(b.id, b.name, b.input) for b in message.content] == [("a", "f", {"x": 1}), ("b", "g", {"y": 2})]


def test_vllm_stop_string_becomes_stop_sequence():
    wire = c_chunk({"content": "a"}) + c_chunk({}, "stop", stop_reason="###") + "data: [DONE]\n\n"
    data, _ = translate("anthropic", "openai-chat", MSG_REQ, wire)
    message = read_anthropic(data)[1]
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "###")


def test_anthropic_stop_sequence_and_refusal_for_openai_client():
    for reason, finish in (("stop_sequence", "stop"), ("refusal", "content_filter"), ("max_tokens", "length"),
                           ("pause_turn", "stop")):
        wire = A_HEAD + A_TAIL.replace('"end_turn"', f'"{reason}"')
        data, _ = translate("openai-chat", "anthropic", CHAT_REQ, wire)
        chunks = read_openai(data)
        assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [finish]


# ---------------------------------------------------------------------------------------------
# Upstream error bodies and compression


def test_openai_429_becomes_anthropic_rate_limit_error():
    t = Translation("anthropic", "openai-chat")
    t.request(dict(MSG_REQ, stream=False), upstream_model=None)
    status, body = t.response(429, json.dumps({"error": {
        "message": "You exceeded your current quota", "type": "insufficient_quota", "param": None,
        "code": "insufficient_quota"}}).encode())
    with pytest.raises(anthropic.RateLimitError) as info:
        anthropic_client(body, status=status).messages.create(model="m", max_tokens=5, messages=USER)
    assert info.value.body == {"type": "error", "error": {"type": "rate_limit_error",
                                                          "message": "You exceeded your current quota"}}


@pytest.mark.parametrize("status, upstream_body, a_type", [
    (500, b"<html>Internal Server Error</html>", "api_error"),
    (503, b'{"detail": "model is loading"}', "overloaded_error"),
    (401, b'{"error": "bad key"}', "authentication_error"),
    (404, b'{"error": {"message": "model not found", "type": "invalid_request_error", "code": "model_not_found"}}',
     "not_found_error"),
])
def test_openai_error_bodies_become_anthropic_errors(status, upstream_body, a_type):
    t = Translation("anthropic", "openai-chat")
    code, body = t.response(status, upstream_body)
    assert code == status and json.loads(body)["error"]["type"] == a_type


def test_anthropic_529_becomes_openai_server_error_with_original_type_as_code():
    t = Translation("openai-chat", "anthropic")
    code, body = t.response(529, b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}')
    assert code == 529
    assert json.loads(body) == {"error": {"message": "Overloaded", "type": "server_error", "param": None,
                                          "code": "overloaded_error"}}
    with pytest.raises(openai.InternalServerError):
        openai_client(body, status=code).chat.completions.create(model="m", messages=USER)


def test_error_inside_200_is_an_error():
    t = Translation("anthropic", "openai-chat")
    code, body = t.response(200, b'{"error": {"message": "context too long", "type": "invalid_request_error"}}')
    assert code == 400 and json.loads(body)["error"] == {"type": "invalid_request_error", "message": "context too long"}


def test_gzip_bodies_are_decoded():
    t = Translation("anthropic", "openai-chat")
    t.request(dict(MSG_REQ, stream=False), upstream_model=None)
    body = {"id": "c", "object": "chat.completion", "created": 1, "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hey"}, "finish_reason": "stop"}]}
    _, out = t.response(200, gzip.compress(json.dumps(body).encode()))
    assert json.loads(out)["content"] == [{"type": "text", "text": "hey"}]
    data, _ = translate("anthropic", "openai-chat", MSG_REQ,
                        gzip.compress((c_chunk({"content": "yo"}) + c_chunk({}, "stop") + "data: [DONE]\n\n").encode()))
    assert read_anthropic(data)[1].content[0].text == "yo"


def test_non_stream_reasoning_field_and_think_tags():
    t = Translation("anthropic", "openai-chat")
    for message, thinking, text in (
        ({"role": "assistant", "content": "42", "reasoning": "why"}, "why", "42"),
        ({"role": "assistant", "content": "<think>\nwhy\n</think>\n42"}, "why\n", "42"),
    ):
        body = {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}
        _, out = t.response(200, json.dumps(body).encode())
        assert json.loads(out)["content"] == [{"type": "thinking", "thinking": thinking, "signature": ""},
                                              {"type": "text", "text": text}]


def test_content_types():
    assert client_content_type(True) == "text/event-stream"
    assert client_content_type(False) == "application/json"


def test_missing_tool_ids_are_unique_across_responses():
    ids = set()
    for _ in range(2):
        wire = (c_chunk({"tool_calls": [{"index": 0, "function": {"name": "now", "arguments": "{}"}}]})
                + c_chunk({}, "tool_calls") + "data: [DONE]\n\n")
        data, _ = translate("anthropic", "openai-chat", MSG_REQ, wire)
        ids.add(read_anthropic(data)[1].content[0].id)
    assert len(ids) == 2 and all(i.startswith("call_") for i in ids)


def test_done_after_anthropic_stream_is_ignored_and_empty_data_skipped():
    data, _ = translate("openai-chat", "anthropic", CHAT_REQ, A_HEAD + "data: \n\n" + A_TAIL + "data: [DONE]\n\n")
    assert data.endswith(b"data: [DONE]\n\n") and data.count(b"[DONE]") == 1
    assert [c.choices[0].finish_reason for c in read_openai(data) if c.choices][-1] == "stop"


def test_keepalive_is_protocol_native_and_stops_after_the_end():
    t = Translation("anthropic", "openai-chat")
    t.request(MSG_REQ, upstream_model=None)
    s = t.stream()
    assert s.keepalive() == []  # nothing may precede message_start
    assert s.feed(c_chunk({"content": "a"}).encode())[0].startswith(b"event: message_start")
    assert s.keepalive() == [b'event: ping\ndata: {"type": "ping"}\n\n']
    s.feed((c_chunk({}, "stop") + "data: [DONE]\n\n").encode())
    assert s.keepalive() == [] and s.finish() == []
    t = Translation("openai-chat", "anthropic")
    t.request(CHAT_REQ, upstream_model=None)
    assert t.stream().keepalive() == [b": keep-alive\n\n"]


@pytest.mark.parametrize("encoding", ["br", "gzip", "deflate"])
def test_declared_content_encodings_are_decoded(encoding):
    compress = {"br": brotli.compress, "gzip": gzip.compress, "deflate": zlib.compress}[encoding]
    wire = (c_chunk({"content": "yo"}) + c_chunk({}, "stop") + "data: [DONE]\n\n").encode()
    t = Translation("anthropic", "openai-chat")
    t.request(MSG_REQ, upstream_model=None)
    s = t.stream(content_encoding=encoding)
    out = [b for piece in [compress(wire)[i:i + 5] for i in range(0, len(compress(wire)), 5)] for b in s.feed(piece)]
    out += s.finish()
    assert read_anthropic(b"".join(out))[1].content[0].text == "yo"
    body = {"id": "c", "object": "chat.completion", "created": 1, "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hey"}, "finish_reason": "stop"}]}
    _, out_body = t.response(200, compress(json.dumps(body).encode()), content_encoding=encoding)
    assert json.loads(out_body)["content"] == [{"type": "text", "text": "hey"}]


def test_corrupt_compressed_stream_ends_with_an_error():
    t = Translation("anthropic", "openai-chat")
    t.request(MSG_REQ, upstream_model=None)
    s = t.stream(content_encoding="gzip")
    out = s.feed(b"definitely not gzip") + s.finish()
    assert b"event: error" in b"".join(out)
    status, body = t.response(200, b"garbage", content_encoding="br")
    assert status == 502 and json.loads(body)["error"]["type"] == "api_error"


def test_tool_calls_reusing_index_zero_stay_separate():
    wire = (c_chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": '{"x": 1}'}}]})
            + c_chunk({"tool_calls": [{"index": 0, "id": "b", "function": {"name": "g", "arguments": '{"y": 2}'}}]})
            + c_chunk({}, "tool_calls") + "data: [DONE]\n\n")
    data, _ = translate("anthropic", "openai-chat", MSG_REQ, wire)
    _, message = read_anthropic(data)
    assert [(b.id, b.name, b.input) for b in message.content] == [("a", "f", {"x": 1}), ("b", "g", {"y": 2})]


@pytest.mark.parametrize("client, upstream, body", [
    ("anthropic", "openai-chat", b'{"choices": [{"message": "not an object"}]}'),
    ("anthropic", "openai-chat", b'[1, 2]'),
    ("openai-chat", "anthropic", b'{"type": "message", "content": "x"}'),
    ("openai-chat", "anthropic", b"<html>"),
])
def test_malformed_upstream_bodies_are_a_502_in_the_client_protocol(client, upstream, body):
    t = Translation(client, upstream)
    status, out = t.response(200, body)
    assert status == 502 and json.loads(out)["error"]["type"] in ("api_error", "server_error")


@pytest.mark.parametrize("client, upstream, wire", [
    ("anthropic", "openai-chat", "data: {not json}\n\n"),
    ("openai-chat", "anthropic", A_HEAD + 'event: content_block_delta\ndata: {"type": "content_block_delta"}\n\n'),
])
def test_malformed_stream_events_end_the_stream_with_an_error(client, upstream, wire):
    data, _ = translate(client, upstream, MSG_REQ if client == "anthropic" else CHAT_REQ, wire)
    assert b"malformed upstream stream event" in data
    assert b"[DONE]" not in data and b"message_stop" not in data
