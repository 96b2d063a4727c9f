"""openai-responses streams and bodies: the parser's leniency (text and arguments only in `.done`
events, errors in both shapes), the renderer's framing and endings, chunk-boundary independence and
render∘parse round trips (hypothesis, bounded)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from property_helpers import (
    TRANSLATED_STREAMS,
    nat,
    parse_stream,
    render_stream,
    request_round_trip,
    response_round_trip,
    schema,
    translate,
    word,
)
from proto_helpers import fixtures, translate_stream, wire_bytes

from llmitm.protocols import Translation, openai_responses
from llmitm.protocols.canonical import (
    CONTENT_FILTER,
    END,
    MAX_TOKENS,
    REASONING,
    REFUSAL,
    TEXT,
    TOOL_CALL,
    TOOL_USE,
    ApiError,
    BlockStart,
    BlockStop,
    Context,
    Delta,
    Image,
    KeepAlive,
    Message,
    Reasoning,
    ReasoningConfig,
    Refusal,
    Request,
    Response,
    ResponseFormat,
    StreamEnd,
    StreamError,
    StreamFinish,
    StreamStart,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
    Usage,
    UsageUpdate,
)

R_DIR = "openai-responses"
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
USER_TURN = [{"role": "user", "content": "hi"}]


def sse(*payloads: dict, event_lines: bool = True) -> bytes:
    out = b""
    for p in payloads:
        if event_lines:
            out += b"event: " + p["type"].encode() + b"\n"
        out += b"data: " + json.dumps(p).encode() + b"\n\n"
    return out


def run(client: str, wire: bytes, pieces: list[bytes] | None = None) -> tuple[bytes, Translation]:
    t = Translation(client, "openai-responses")
    body = {"model": "m", "messages": USER_TURN, "stream": True, "max_tokens": 100}
    if client == "openai-chat":
        body["stream_options"] = {"include_usage": True}
    t.request(body)
    out = translate_stream(t, pieces if pieces is not None else [wire])
    assert all(out)
    return b"".join(out), t


def data_payloads(raw: bytes) -> list[dict]:
    return [json.loads(line[5:]) for line in raw.decode().splitlines()
            if line.startswith("data:") and line[5:].strip() != "[DONE]"]


def anthropic_message(raw: bytes) -> dict:
    """Anthropic stream → text, thinking, tool inputs, stop reason, usage (accumulated by hand)."""
    msg = {"text": "", "thinking": "", "tools": [], "stop": None, "usage": None, "error": None}
    args: dict[int, str] = {}
    for p in data_payloads(raw):
        if p["type"] == "content_block_start" and p["content_block"]["type"] == "tool_use":
            msg["tools"].append([p["content_block"]["id"], p["content_block"]["name"], p["index"]])
            args[p["index"]] = ""
        elif p["type"] == "content_block_delta":
            d = p["delta"]
            if d["type"] == "text_delta":
                msg["text"] += d["text"]
            elif d["type"] == "thinking_delta":
                msg["thinking"] += d["thinking"]
            elif d["type"] == "input_json_delta":
                args[p["index"]] += d["partial_json"]
        elif p["type"] == "message_delta":
            msg["stop"], msg["usage"] = p["delta"]["stop_reason"], p["usage"]
        elif p["type"] == "error":
            msg["error"] = p["error"]
    msg["tools"] = [(i, n, json.loads(args[k])) for i, n, k in msg["tools"]]
    return msg


RESP = {"id": "resp_1", "object": "response", "created_at": 1, "status": "in_progress", "model": "gpt-5",
        "output": [], "usage": None, "error": None}
USAGE = {"input_tokens": 20, "input_tokens_details": {"cached_tokens": 5}, "output_tokens": 7,
         "output_tokens_details": {"reasoning_tokens": 3}, "total_tokens": 27}


def created() -> list[dict]:
    return [{"type": "response.created", "sequence_number": 0, "response": RESP},
            {"type": "response.in_progress", "sequence_number": 1, "response": RESP}]


def completed(output: list, status: str = "completed", reason: str | None = None) -> dict:
    kind = "response.completed" if status == "completed" else "response.incomplete"
    return {"type": kind, "sequence_number": 99, "response": {
        **RESP, "status": status, "output": output, "usage": USAGE,
        "incomplete_details": {"reason": reason} if reason else None}}


CALL = {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "get_weather",
        "arguments": '{"city":"Paris"}', "status": "completed"}


# ---------------------------------------------------------------------------------------------
# Parser leniency


def test_arguments_only_in_function_call_arguments_done():
    # BerriAI/litellm#25321: the Responses adapter ignored `.done` and sent tool_use with input {}.
    wire = sse(*created(),
               {"type": "response.output_item.added", "output_index": 0, "item": {**CALL, "arguments": "",
                                                                                  "status": "in_progress"}},
               {"type": "response.function_call_arguments.done", "output_index": 0, "item_id": "fc_1",
                "arguments": CALL["arguments"]},
               {"type": "response.output_item.done", "output_index": 0, "item": CALL},
               completed([CALL]))
    msg = anthropic_message(run("anthropic", wire)[0])
    assert msg["tools"] == [("call_1", "get_weather", {"city": "Paris"})] and msg["stop"] == "tool_use"
    chat = data_payloads(run("openai-chat", wire)[0])
    args = "".join(tc["function"].get("arguments") or "" for c in chat for ch in c["choices"]
                   for tc in ch["delta"].get("tool_calls") or [])
    assert args == CALL["arguments"]


def test_partial_deltas_completed_from_done_events():
    wire = sse(*created(),
               {"type": "response.output_item.added", "output_index": 0, "item": {**CALL, "arguments": ""}},
               {"type": "response.function_call_arguments.delta", "output_index": 0, "delta": '{"city"'},
               {"type": "response.function_call_arguments.done", "output_index": 0, "arguments": CALL["arguments"]},
               {"type": "response.output_item.done", "output_index": 0, "item": CALL},
               completed([CALL]))
    assert anthropic_message(run("anthropic", wire)[0])["tools"] == [("call_1", "get_weather", {"city": "Paris"})]


def test_text_only_in_done_events_and_item_done():
    msg_item = {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
                "content": [{"type": "output_text", "text": "Hello there", "annotations": []}]}
    wire = sse(*created(),
               {"type": "response.output_item.added", "output_index": 0, "item": {**msg_item, "content": []}},
               {"type": "response.content_part.added", "output_index": 0, "content_index": 0,
                "part": {"type": "output_text", "text": ""}},
               {"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "delta": "Hello"},
               {"type": "response.output_text.done", "output_index": 0, "content_index": 0, "text": "Hello there"},
               {"type": "response.output_item.done", "output_index": 0, "item": msg_item},
               completed([msg_item]))
    assert anthropic_message(run("anthropic", wire)[0])["text"] == "Hello there"
    only_item = sse(*created(), {"type": "response.output_item.done", "output_index": 0, "item": msg_item},
                    completed([msg_item]))
    assert anthropic_message(run("anthropic", only_item)[0])["text"] == "Hello there"


def test_everything_only_in_the_final_response():
    reasoning = {"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "hmm"}]}
    msg_item = {"id": "msg_1", "type": "message", "role": "assistant",
                "content": [{"type": "output_text", "text": "Hi"}]}
    wire = sse(*created(), completed([reasoning, msg_item, CALL]), event_lines=False)
    msg = anthropic_message(run("anthropic", wire)[0])
    assert (msg["thinking"], msg["text"], msg["stop"]) == ("hmm", "Hi", "tool_use")
    assert msg["usage"] == {"input_tokens": 15, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 5,
                            "output_tokens": 7}


def test_reasoning_summary_parts_and_reasoning_text():
    wire = sse(*created(),
               {"type": "response.output_item.added", "output_index": 0, "item": {"id": "rs", "type": "reasoning",
                                                                                  "summary": []}},
               {"type": "response.reasoning_summary_text.delta", "output_index": 0, "summary_index": 0, "delta": "a"},
               {"type": "response.reasoning_summary_text.done", "output_index": 0, "summary_index": 0, "text": "ab"},
               {"type": "response.reasoning_summary_text.delta", "output_index": 0, "summary_index": 1, "delta": "c"},
               {"type": "response.output_item.done", "output_index": 0, "item": {"id": "rs", "type": "reasoning"}},
               {"type": "response.output_item.added", "output_index": 1, "item": {"id": "rs2", "type": "reasoning"}},
               {"type": "response.reasoning_text.delta", "output_index": 1, "content_index": 0, "delta": "raw"},
               {"type": "response.reasoning_text.done", "output_index": 1, "content_index": 0, "text": "raw!"},
               {"type": "response.output_item.done", "output_index": 1, "item": {"id": "rs2", "type": "reasoning"}},
               completed([]))
    raw, _ = run("anthropic", wire)
    blocks = [p["content_block"]["type"] for p in data_payloads(raw) if p["type"] == "content_block_start"]
    assert blocks == ["thinking", "thinking"]
    assert anthropic_message(raw)["thinking"] == "ab\n\ncraw!"


@pytest.mark.parametrize("reason, chat_finish, anthropic_stop", [
    ("max_output_tokens", "length", "max_tokens"),
    ("content_filter", "content_filter", "refusal"),
])
def test_incomplete_is_not_completed(reason, chat_finish, anthropic_stop):
    msg_item = {"id": "msg_1", "type": "message", "role": "assistant",
                "content": [{"type": "output_text", "text": "Hi"}]}
    wire = sse(*created(), completed([msg_item], "incomplete", reason))
    assert anthropic_message(run("anthropic", wire)[0])["stop"] == anthropic_stop
    finishes = [ch["finish_reason"] for c in data_payloads(run("openai-chat", wire)[0]) for ch in c["choices"]
                if ch["finish_reason"]]
    assert finishes == [chat_finish]


@pytest.mark.parametrize("error_event", [
    {"type": "error", "sequence_number": 2, "error": {"type": "tokens", "code": "rate_limit_exceeded",
                                                      "message": "slow down", "param": None}},
    {"type": "error", "sequence_number": 2, "code": "rate_limit_exceeded", "message": "slow down", "param": None},
])
def test_error_event_both_shapes(error_event):
    failed = {"type": "response.failed", "sequence_number": 3, "response": {
        **RESP, "status": "failed", "error": {"code": "rate_limit_exceeded", "message": "slow down"}}}
    wire = sse(*created(), error_event, failed)
    raw, _ = run("anthropic", wire)
    assert anthropic_message(raw)["error"] == {"type": "rate_limit_error", "message": "slow down"}
    raw, _ = run("openai-chat", wire)
    assert data_payloads(raw)[-1]["error"]["code"] == "rate_limit_exceeded"
    assert b"[DONE]" not in raw


def test_response_failed_alone_is_an_error():
    wire = sse(*created(), {"type": "response.failed", "response": {
        **RESP, "status": "failed", "error": {"code": "server_error", "message": "boom"}}})
    assert anthropic_message(run("anthropic", wire)[0])["error"] == {"type": "api_error", "message": "boom"}


def test_truncated_stream_ends_in_an_error_and_done_is_ignored():
    wire = sse(*created(), {"type": "response.output_text.delta", "output_index": 0, "content_index": 0,
                            "delta": "Hel"}) + b"data: [DONE]\n\n"
    raw, _ = run("anthropic", wire)
    msg = anthropic_message(raw)
    assert msg["text"] == "Hel" and msg["error"]["type"] == "api_error"


def test_hosted_tool_items_are_dropped_with_a_warning():
    rel = next(r for r in fixtures(R_DIR, stream=True) if "web-search" in r and r.endswith(".sse"))
    _, t = run("anthropic", wire_bytes(rel))
    assert any("web_search_call" in w for w in t.warnings)


def test_parser_reads_usage_from_the_final_event_alone():
    # The passthrough meter feeds only events that mention usage.
    parser = openai_responses.StreamParser(Context())
    events = parser.feed(None, json.dumps(completed([])))
    assert UsageUpdate(Usage(20, 5, 0, 7, 3)) in events and isinstance(events[-1], StreamEnd)
    assert openai_responses.parse_usage(USAGE) == Usage(20, 5, 0, 7, 3)


def test_parse_error_shapes():
    err = openai_responses.parse_error(429, json.dumps({"error": {"message": "m", "type": "insufficient_quota",
                                                                  "code": "insufficient_quota"}}).encode())
    assert (err.status, err.message, err.code) == (429, "m", "insufficient_quota")
    failed = {**RESP, "status": "failed", "error": {"code": "server_error", "message": "boom"}}
    t = Translation("anthropic", "openai-responses")
    t.request({"model": "m", "max_tokens": 10, "messages": USER_TURN})
    status, body = t.response(200, json.dumps(failed).encode())
    assert status == 500 and json.loads(body)["error"]["message"] == "boom"
    status, body = t.response(200, json.dumps({**RESP, "status": "completed", "output": []}).encode())
    assert status == 200 and json.loads(body)["content"] == []


# ---------------------------------------------------------------------------------------------
# Renderer


def render(events: list, request: Request | None = None) -> bytes:
    return render_stream(openai_responses, events, request or Request(model="m"))


def test_render_error_code_is_always_a_string():
    payloads = data_payloads(render([StreamError(ApiError(502, "upstream broke off"))]))
    assert [p["type"] for p in payloads] == ["response.created", "response.in_progress", "error", "response.failed"]
    assert payloads[2]["code"] == "server_error" and payloads[3]["response"]["error"]["code"] == "server_error"
    unknown = data_payloads(render([StreamStart("m", "x"), StreamFinish(END), StreamEnd()]))[-1]
    assert unknown["response"]["usage"]["input_tokens"] == 0


def test_render_error_has_both_shapes_then_response_failed():
    raw = render([StreamStart("msg_1", "claude"), BlockStart(0, TEXT), Delta(0, "Hi"),
                  StreamError(ApiError(529, "Overloaded", "overloaded_error"))])
    payloads = data_payloads(raw)
    err, failed = payloads[-2], payloads[-1]
    assert err["type"] == "error" and err["message"] == "Overloaded" and err["code"] == "overloaded_error"
    assert err["error"] == {"message": "Overloaded", "type": "server_error", "param": None,
                            "code": "overloaded_error"}
    assert failed["type"] == "response.failed" and failed["response"]["status"] == "failed"
    assert failed["response"]["error"] == {"code": "overloaded_error", "message": "Overloaded"}
    assert [p["sequence_number"] for p in payloads] == list(range(len(payloads)))
    assert openai_responses.render_stream_error(ApiError(500, "x")).startswith(b"event: error\ndata: ")


def test_render_max_tokens_is_incomplete_and_cut_tool_call_marked():
    # CLIProxyAPI#5439: max_tokens shown as response.completed.
    raw = render([StreamStart("msg_1", "claude"), BlockStart(0, TOOL_CALL, id="toolu_1", name="f"),
                  Delta(0, '{"a": '), BlockStop(0), StreamFinish(MAX_TOKENS), UsageUpdate(Usage(10, 0, 0, 5)),
                  StreamEnd()])
    final = data_payloads(raw)[-1]
    assert final["type"] == "response.incomplete"
    assert final["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["response"]["output"][0]["status"] == "incomplete"
    assert final["response"]["usage"]["output_tokens"] == 5


def test_render_tool_without_arguments_gets_empty_object_and_keepalive_is_a_comment():
    raw = render([KeepAlive(), StreamStart("msg_1", "claude"), BlockStart(0, TOOL_CALL, id="call_9", name="now"),
                  BlockStop(0), KeepAlive(), StreamFinish(END), StreamEnd()])
    assert raw.startswith(b": keep-alive\n\n")
    payloads = data_payloads(raw)
    done = next(p for p in payloads if p["type"] == "response.function_call_arguments.done")
    assert done["arguments"] == "{}"
    assert payloads[-1]["response"]["output"] == [
        {"id": "fc_9", "type": "function_call", "status": "completed", "arguments": "{}", "call_id": "call_9",
         "name": "now"}]


def test_render_consecutive_text_blocks_are_one_output_text_and_refusal_a_part():
    raw = render([StreamStart("msg_1", "claude"), BlockStart(0, TEXT), Delta(0, "a"), BlockStop(0),
                  BlockStart(1, TEXT), Delta(1, "b"), BlockStop(1), BlockStart(2, REFUSAL), Delta(2, "no"),
                  BlockStop(2), StreamFinish(END), StreamEnd()])
    output = data_payloads(raw)[-1]["response"]["output"]
    assert len(output) == 1 and output[0]["content"] == [
        {"type": "output_text", "text": "ab", "annotations": [], "logprobs": []},
        {"type": "refusal", "refusal": "no"}]


def test_non_stream_render_echoes_request():
    t = Translation("openai-responses", "anthropic")
    t.request({"model": "gpt-5", "input": "hi", "store": False, "instructions": "sys", "max_output_tokens": 50})
    body = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": [
        {"type": "text", "text": "Hi"}], "stop_reason": "end_turn", "usage": {"input_tokens": 3, "output_tokens": 1}}
    status, out = t.response(200, json.dumps(body).encode())
    out = json.loads(out)
    assert status == 200 and out["status"] == "completed" and out["id"] == "resp_msg_1"
    assert out["output"][0]["content"][0]["text"] == "Hi" and out["usage"]["total_tokens"] == 4


# ---------------------------------------------------------------------------------------------
# Chunk-boundary independence

WIRES = {rel: wire_bytes(rel) for rel, _, _ in TRANSLATED_STREAMS["openai-responses"]}


@pytest.mark.parametrize("case", [c for c in TRANSLATED_STREAMS["openai-responses"] if c[1] != "openai-responses"][:34:3])
def test_responses_translation_one_byte_chunks(case):
    rel, client, upstream = case
    wire = WIRES[rel]
    assert translate(client, upstream, [wire[i:i + 1] for i in range(len(wire))]) == \
        translate(client, upstream, [wire])


# ---------------------------------------------------------------------------------------------
# render∘parse round trips

tool_id = st.from_regex(r"call_[A-Za-z0-9]{1,12}", fullmatch=True)
text = st.text(min_size=1, max_size=30).filter(lambda s: s.strip())
arguments = st.dictionaries(word, st.integers() | st.text(max_size=8), max_size=3).map(json.dumps)
tool_call = st.builds(ToolCall, id=tool_id, name=word, arguments=arguments)


@st.composite
def responses(draw):
    """Canonical responses in the form a Responses body parses to (no two text parts in a row, no
    empty reasoning, a stop reason a status can say)."""
    parts: list = []
    for _ in range(draw(st.integers(0, 5))):
        part = draw(st.one_of(st.builds(Text, text), st.builds(Refusal, text), tool_call,
                              st.builds(Reasoning, text=text, signature=st.none() | word),
                              st.builds(Reasoning, text=st.just(""), signature=st.none(), redacted=word)))
        if isinstance(part, Text) and parts and isinstance(parts[-1], Text):
            continue
        parts.append(part)
    usage = Usage(draw(nat), draw(nat), draw(nat), draw(nat), draw(nat))
    return Response(id="resp_" + draw(word), model=draw(word), parts=parts,
                    stop_reason=draw(st.sampled_from([END, MAX_TOKENS, CONTENT_FILTER])),
                    usage=usage, created=draw(nat))  # usage is always rendered (zeros when unknown)


@SETTINGS
@given(resp=responses())
def test_response_round_trip(resp):
    assert response_round_trip(openai_responses, resp)[0] == resp


image = st.one_of(
    st.builds(Image, media_type=st.sampled_from(["image/png", "image/jpeg"]),
              data=st.from_regex(r"[A-Za-z0-9+/]{4,20}", fullmatch=True)),
    st.builds(Image, url=st.from_regex(r"https://example\.com/[a-z]{1,8}\.png", fullmatch=True),
              detail=st.none() | st.sampled_from(["low", "high"])))


@st.composite
def requests(draw):
    """Canonical requests in the form a Responses body parses to (alternating sides, tool results first
    in their user turn, one text per assistant run, no reasoning carried)."""
    stream = draw(st.booleans())
    req = Request(model=draw(word), stream=stream, include_usage=True)
    if draw(st.booleans()):
        req.system = [Text(draw(text))]
    for k in range(draw(st.integers(1, 5))):
        if k % 2 == 0:
            parts = draw(st.lists(st.builds(ToolResult, tool_id, st.builds(Text, text).map(lambda x: [x])),
                                  max_size=2))
            parts += draw(st.lists(st.one_of(st.builds(Text, text), image), min_size=0 if parts else 1, max_size=3))
            req.messages.append(Message("user", parts))
        else:
            parts = draw(st.lists(st.builds(Text, text), max_size=1)) + draw(st.lists(tool_call, min_size=1,
                                                                                     max_size=2))
            req.messages.append(Message("assistant", parts))
    req.max_tokens = draw(st.none() | st.integers(16, 64000))
    req.temperature = draw(st.none() | st.floats(0, 2))
    req.top_p = draw(st.none() | st.floats(0, 1))
    req.tools = draw(st.lists(st.builds(Tool, name=word, description=st.none() | text, parameters=schema,
                                        strict=st.booleans()), max_size=3, unique_by=lambda t: t.name))
    if req.tools:
        req.tool_choice = draw(st.none() | st.builds(ToolChoice, st.sampled_from(["auto", "required", "none"]))
                               | st.builds(ToolChoice, st.just("tool"), st.sampled_from([t.name for t in req.tools])))
        req.parallel_tool_calls = draw(st.none() | st.booleans())
    if draw(st.booleans()):
        req.reasoning = ReasoningConfig(True, effort=draw(st.sampled_from(["minimal", "low", "medium", "high"])))
    req.response_format = draw(st.none() | st.just(ResponseFormat("json_object"))
                               | st.builds(ResponseFormat, st.just("json_schema"), schema, word,
                                           st.none() | st.booleans(), st.none() | text))
    req.user = draw(st.none() | word)
    return req


@SETTINGS
@given(req=requests())
def test_request_round_trip(req):
    back, warnings = request_round_trip(openai_responses, req)
    assert back == req
    assert warnings == []


def _summary(events: list) -> tuple:
    """What a stream says, independent of how blocks interleave: each block's kind, id, name and text;
    the stop reason; the last usage."""
    blocks: dict = {}
    stop, usage = None, None
    for ev in events:
        if isinstance(ev, BlockStart):
            blocks[ev.index] = [ev.kind, ev.id, ev.name, ""]
        elif isinstance(ev, Delta):
            blocks[ev.index][3] += ev.text
        elif isinstance(ev, StreamFinish):
            stop = ev.stop_reason
        elif isinstance(ev, UsageUpdate):
            usage = ev.usage
    return [tuple(b) for _, b in sorted(blocks.items())], stop, usage


@st.composite
def block_plan(draw):
    plan = []
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from([TEXT, REASONING, REFUSAL, TOOL_CALL]))
        if plan and kind == plan[-1][0] == TEXT:
            continue  # consecutive text blocks are one output_text
        plan.append((kind, draw(st.lists(text, min_size=1, max_size=3)), draw(tool_id), draw(word)))
    return plan


@SETTINGS
@given(plan=block_plan(), data=st.data())
def test_stream_round_trip(plan, data):
    events: list = [StreamStart("resp_" + data.draw(word), data.draw(word))]
    for i, (kind, pieces, call_id, name) in enumerate(plan):
        events.append(BlockStart(i, kind, id=call_id, name=name) if kind == TOOL_CALL else BlockStart(i, kind))
        events.extend(Delta(i, p) for p in pieces)
        events.append(BlockStop(i))
    usage = Usage(data.draw(nat), data.draw(nat), data.draw(nat), data.draw(nat), data.draw(nat))
    stop = data.draw(st.sampled_from([END, MAX_TOKENS, CONTENT_FILTER]))
    events += [StreamFinish(stop), UsageUpdate(usage), StreamEnd()]
    parsed = parse_stream(openai_responses, render(events))
    assert parsed[0] == events[0] and isinstance(parsed[-1], StreamEnd)
    assert _summary(parsed) == _summary(events)
    starts = [ev.index for ev in parsed if isinstance(ev, BlockStart)]
    stops = [ev.index for ev in parsed if isinstance(ev, BlockStop)]
    assert sorted(starts) == sorted(stops) == list(range(len(plan)))
    # A tool turn is derived by the hub; the wire says "completed".
    assert TOOL_USE not in [ev.stop_reason for ev in parsed if isinstance(ev, StreamFinish)]


# ---------------------------------------------------------------------------------------------
# Passthrough metering (same protocol both sides) reads Responses usage through this spoke


@pytest.mark.parametrize("rel", [r for r in fixtures(R_DIR, stream=True) if "error" not in r])
def test_passthrough_meter_reads_responses_stream_usage(rel):
    from llmitm.metering import UsageMeter

    wire = wire_bytes(rel)
    final = next(p for p in data_payloads(wire) if p["type"] == "response.completed")["response"]["usage"]
    meter = UsageMeter("openai-responses")
    for piece in [wire[i:i + 97] for i in range(0, len(wire), 97)]:
        meter.feed(piece)
    assert meter.tokens == (final["input_tokens"], final["output_tokens"])


def test_passthrough_meter_reads_responses_body_usage():
    from llmitm.metering import UsageMeter

    rel = next(r for r in fixtures(R_DIR, stream=False) if "reasoning" in r)
    body = wire_bytes(rel)
    meter = UsageMeter("openai-responses")
    meter.read_body(body)
    usage = json.loads(body)["usage"]
    assert meter.tokens == (usage["input_tokens"], usage["output_tokens"])
    assert meter.usage.reasoning == usage["output_tokens_details"]["reasoning_tokens"]


def test_error_event_with_null_code_takes_its_status_from_the_type():
    # vercel/ai openai-error-null-code: {"type":"error","error":{"type":"server_error","code":null,…}}
    wire = sse(*created(), {"type": "error", "sequence_number": 2, "error": {
        "type": "server_error", "code": None, "message": "Sorry, something went wrong.", "param": None}})
    assert anthropic_message(run("anthropic", wire)[0])["error"] == {
        "type": "api_error", "message": "Sorry, something went wrong."}
    assert data_payloads(run("openai-chat", wire)[0])[-1]["error"]["code"] == "server_error"
