"""Gemini spoke properties: whole translations are indifferent to how the upstream bytes are split,
and render∘parse round trips of responses, requests and stream events in the form Gemini carries."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from property_helpers import (
    GEMINI_STREAM_PATH,
    arguments,
    block_plan,
    merge_deltas,
    nat,
    parse_stream,
    render_stream,
    response_round_trip,
    schema,
    text,
    tool_id,
    translate,
    word,
)
from proto_helpers import A_DIR, C_DIR, fixtures, wire_bytes

from llmitm.protocols import Translation, gemini
from llmitm.protocols.canonical import (
    CONTENT_FILTER,
    END,
    MAX_TOKENS,
    REASONING,
    TEXT,
    TOOL_CALL,
    BlockStart,
    BlockStop,
    Context,
    Delta,
    Image,
    Message,
    Reasoning,
    ReasoningConfig,
    Request,
    Response,
    ResponseFormat,
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

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
G_STREAMS = fixtures("gemini", stream=True)
WIRES = {rel: wire_bytes(rel) for rel in G_STREAMS}


@pytest.mark.parametrize("rel", G_STREAMS)
def test_gemini_streams_one_byte_at_a_time(rel):
    wire = WIRES[rel]
    whole = translate("anthropic", "gemini", [wire])
    assert translate("anthropic", "gemini", [wire[i:i + 1] for i in range(len(wire))]) == whole
    crlf = re.sub(rb"\r?\n", b"\r\n", wire)
    assert translate("anthropic", "gemini", [crlf]) == whole


# ---------------------------------------------------------------------------------------------
# render∘parse round trips


@st.composite
def usages(draw):
    out = draw(nat)
    return Usage(draw(nat), draw(nat), 0, out, draw(st.none() | st.integers(1, max(1, out))) if out else None)


@st.composite
def gemini_responses(draw):
    """Canonical responses in the form a Gemini body parses to (no neighbouring text runs of one kind)."""
    parts: list = []
    for kind in draw(st.lists(st.sampled_from(["text", "thought", "call"]), max_size=5)):
        if kind == "call":
            parts.append(draw(st.builds(ToolCall, id=tool_id, name=word, arguments=arguments)))
        elif parts and type(parts[-1]) is (Text if kind == "text" else Reasoning):
            continue
        else:
            parts.append(Text(draw(text)) if kind == "text" else Reasoning(draw(text)))
    return Response(id=draw(word), model=draw(word), parts=parts,
                    stop_reason=draw(st.sampled_from([END, MAX_TOKENS, CONTENT_FILTER])),
                    usage=draw(st.none() | usages()))


@SETTINGS
@given(resp=gemini_responses())
def test_gemini_response_round_trip(resp):
    back, warnings = response_round_trip(gemini, resp)
    assert back == resp
    assert warnings == []


result_text = text.filter(lambda s: not s.strip().startswith("{"))
image = st.one_of(
    st.builds(Image, media_type=st.sampled_from(["image/png", "image/jpeg"]),
              data=st.from_regex(r"(?:[A-Za-z0-9+/]{4}){1,5}", fullmatch=True)),  # standard base64
    st.builds(Image, url=st.from_regex(r"https://example\.com/[a-z]{1,8}\.png", fullmatch=True)))


@st.composite
def gemini_requests(draw):
    """Canonical requests in the form a Gemini body parses to: alternating turns, function responses
    first in their user turn answering the calls before them, no reasoning in history."""
    req = Request(model=draw(word), stream=draw(st.booleans()), include_usage=True)
    if draw(st.booleans()):
        req.system = [Text(draw(text))]
    calls: list[ToolCall] = []
    for k in range(draw(st.integers(1, 5))):
        if k % 2 == 0:
            parts: list = [ToolResult(c.id, [Text(draw(result_text))], draw(st.booleans())) for c in calls]
            rest = draw(st.lists(st.one_of(st.builds(Text, text), image), min_size=0 if parts else 1, max_size=3))
            for p in rest:
                if not (parts and type(parts[-1]) is Text and type(p) is Text):
                    parts.append(p)
            req.messages.append(Message("user", parts))
        else:
            ids = draw(st.lists(tool_id, max_size=2, unique=True))
            calls = [ToolCall(i, draw(word), draw(arguments)) for i in ids]
            parts = draw(st.lists(st.builds(Text, text), min_size=0 if calls else 1, max_size=1)) + calls
            req.messages.append(Message("assistant", parts))
    req.max_tokens = draw(st.none() | st.integers(1, 64000))
    req.temperature = draw(st.none() | st.floats(0, 2))
    req.top_p = draw(st.none() | st.floats(0, 1))
    req.top_k = draw(st.none() | st.integers(1, 500))
    req.stop = draw(st.lists(text, max_size=5))
    req.seed = draw(st.none() | st.integers(0, 2**31))
    req.presence_penalty = draw(st.none() | st.floats(-2, 2))
    req.frequency_penalty = draw(st.none() | st.floats(-2, 2))
    req.tools = draw(st.lists(st.builds(Tool, name=word, description=st.none() | text, parameters=schema),
                              max_size=3, unique_by=lambda t: t.name))
    if req.tools:
        modes = ["auto", "required", "none"] + (["tool"] if len(req.tools) == 1 else [])
        mode = draw(st.none() | st.sampled_from(modes))
        req.tool_choice = None if mode is None else ToolChoice(mode, req.tools[0].name if mode == "tool" else None)
    req.reasoning = draw(st.none() | st.just(ReasoningConfig(False)) | st.just(ReasoningConfig(True))
                         | st.builds(ReasoningConfig, st.just(True), budget_tokens=st.integers(1, 32000)))
    # A response schema arrives back as every JSON Schema upstream takes it: objects closed, strict only
    # when every object requires all its properties (gemini.standard_json_schema).
    closed = schema.map(lambda s: gemini.standard_json_schema(s, close_objects=True))
    req.response_format = draw(st.none() | st.just(ResponseFormat("json_object"))
                               | closed.map(lambda c: ResponseFormat("json_schema", c[0], "response", c[1])))
    return req


@SETTINGS
@given(req=gemini_requests())
def test_gemini_request_round_trip(req):
    ctx = Context()
    body = json.loads(json.dumps(gemini.render_request(req, ctx)))
    back = Context(client_path=gemini.request_path(req))
    assert gemini.parse_request(body, back) == req
    assert ctx.warnings == [] and back.warnings == []


def _replay(events: list, request: Request) -> list:
    wire = render_stream(gemini, events, request, Context(client_path=GEMINI_STREAM_PATH))
    assert re.fullmatch(rb"(data: [^\r\n]+\r\n\r\n)+", wire)  # no comments: only data events
    return merge_deltas(parse_stream(gemini, wire))


@SETTINGS
@given(plan=block_plan([TEXT, REASONING, TOOL_CALL], signed=False), data=st.data())
def test_gemini_stream_round_trip(plan, data):
    usage = data.draw(usages())
    stop = data.draw(st.sampled_from([END, MAX_TOKENS, CONTENT_FILTER]))
    events: list = [StreamStart(data.draw(word), data.draw(word))]
    for i, (kind, pieces, call_id, name, _) in enumerate(plan):
        if kind == TOOL_CALL:
            events += [BlockStart(i, TOOL_CALL, id=call_id, name=name), Delta(i, data.draw(arguments))]
        else:
            events += [BlockStart(i, kind)] + [Delta(i, p) for p in pieces]
        events.append(BlockStop(i))
    events += [UsageUpdate(usage), StreamFinish(stop)]
    from llmitm.protocols.canonical import StreamEnd
    assert _replay(events + [StreamEnd()], Request(model="m")) == merge_deltas(events)


def test_array_stream_without_alt_sse():
    t = Translation("gemini", "openai-chat")
    t.request({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
              client_path="/v1beta/models/gemini-2.5-flash:streamGenerateContent")
    s = t.stream()
    wire = wire_bytes(fixtures(C_DIR, stream=True)[0])
    body = b"".join(s.feed(wire) + s.finish())
    chunks = json.loads(body)
    assert isinstance(chunks, list) and chunks[-1]["candidates"][0]["finishReason"] == "STOP"


def test_stream_without_finish_reason_ends_in_an_error_event():
    wire = wire_bytes("gemini/prism/stream-text-followup.sse")
    events = wire.split(b"\r\n\r\n")
    truncated = b"\r\n\r\n".join(events[:2]) + b"\r\n\r\n"
    for client in ("openai-chat", "anthropic"):
        out = translate(client, "gemini", [truncated])
        assert b"ended before the response was complete" in out
    t = Translation("gemini", "anthropic")
    t.request({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}, client_path=GEMINI_STREAM_PATH)
    s = t.stream()
    out = b"".join(s.feed(wire_bytes(fixtures(A_DIR, stream=True)[0])[:400]) + s.finish())
    last = out.strip().split(b"\r\n\r\n")[-1]
    assert json.loads(last[6:])["error"]["code"] == 502


def test_in_stream_gemini_error_reaches_the_client():
    wire = (b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"Hi"}]}}],"responseId":"r"}\r\n\r\n'
            b'data: {"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}\r\n\r\n')
    out = translate("anthropic", "gemini", [wire])
    assert b"event: error" in out and b"overloaded_error" in out and b"The model is overloaded." in out
    out = translate("openai-chat", "gemini", [wire])
    assert b'"code": "UNAVAILABLE"' in out and b"[DONE]" not in out


# ---------------------------------------------------------------------------------------------
# Streamed function-call arguments (partialArgs) are written as JSON text as they arrive


def _leaves(value, path, draw):
    """partialArgs events for `value` in document order; strings cut into pieces."""
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from _leaves(v, [*path, k], draw)
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            yield from _leaves(v, [*path, i], draw)
    elif isinstance(value, str):
        cuts = sorted(set(draw(st.lists(st.integers(0, len(value)), max_size=3))))
        pieces = [value[a:b] for a, b in zip([0, *cuts], [*cuts, len(value)], strict=True)]
        if draw(st.booleans()):
            pieces.append("")  # Gemini closes a string with an empty piece
        for k, piece in enumerate(pieces):
            yield path, piece, True, k < len(pieces) - 1
    else:
        yield path, value, False, False


args_value = st.recursive(st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False, allow_infinity=False)
                          | st.text(max_size=6),
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                          max_leaves=12)


@settings(max_examples=60, deadline=None)
@given(args=st.dictionaries(st.text(max_size=4), args_value, max_size=4), data=st.data())
def test_args_writer_streams_any_object(args, data):
    w = gemini.ArgsWriter()
    text = ""
    for path, value, is_string, more in _leaves(args, [], data.draw):
        piece = w.value(path, value, is_string=is_string, more=more)
        text += piece
        assert not w.broken
    text += w.close()
    assert json.loads(text) == args


def test_args_writer_out_of_order_paths_still_give_valid_json():
    w = gemini.ArgsWriter()
    text = w.value(["a", "b"], 1, is_string=False, more=False) + w.value(["c"], "x", is_string=True, more=True)
    text += w.value(["a", "d"], 2, is_string=False, more=False)  # back into a closed object
    assert w.broken and json.loads(text + w.close()) == {"a": {"b": 1}, "c": "x"}
    w = gemini.ArgsWriter()
    text = w.value(["xs", 2], "z", is_string=True, more=False) + w.close()
    assert json.loads(text) == {"xs": [None, None, "z"]}


def test_partial_args_reach_the_client_piece_by_piece():
    rel = "gemini/vercel-ai/google-partial-args-nested.chunks.jsonl"
    t = Translation("anthropic", "gemini")
    t.request({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], "stream": True})
    s = t.stream()
    out = b"".join(s.feed(WIRES[rel]) + s.finish())
    deltas = [json.loads(line[5:])["delta"]["partial_json"] for line in out.decode().splitlines()
              if line.startswith("data:") and '"input_json_delta"' in line]
    assert len(deltas) > 40 and json.loads("".join(deltas))["recipe"]["name"] == "Lasagna"
