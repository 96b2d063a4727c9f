"""Property tests: chunk-boundary independence of the SSE decoder and of whole translations, and
render∘parse round trips of the canonical model for each protocol."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from property_helpers import (
    TRANSLATED_STREAMS,
    block_plan,
    cut,
    decode,
    merge_deltas,
    nat,
    parse_stream,
    render_stream,
    request_round_trip,
    response_round_trip,
    schema,
    text,
    tool_call,
    tool_id,
    translate,
    word,
)
from proto_helpers import manifest, wire_bytes

from llmitm.protocols import anthropic, model_rules, openai_chat
from llmitm.protocols.canonical import (
    CONTENT_FILTER,
    CONTEXT_WINDOW,
    END,
    MAX_TOKENS,
    PAUSE,
    REASONING,
    REFUSAL,
    STOP_SEQUENCE,
    TEXT,
    TOOL_CALL,
    TOOL_USE,
    BlockStart,
    BlockStop,
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
    SignatureDelta,
    StreamEnd,
    StreamFinish,
    StreamStart,
    Text,
    Tool,
    ToolChoice,
    ToolResult,
    Usage,
    UsageUpdate,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ALL_STREAMS = sorted(r["path"] for r in manifest() if r["format"] in ("raw-sse", "chunks-jsonl"))
WIRES = {rel: wire_bytes(rel) for rel in ALL_STREAMS}


# ---------------------------------------------------------------------------------------------
# SSE decoding is indifferent to chunk boundaries


@pytest.mark.parametrize("rel", ALL_STREAMS)
def test_sse_one_byte_chunks_and_crlf_give_the_same_events(rel):
    wire = WIRES[rel]
    whole = decode([wire])
    assert whole and all(e.data is None or e.data.strip() for e in whole)
    assert decode([wire[i:i + 1] for i in range(len(wire))]) == whole
    crlf = re.sub(rb"\r?\n", b"\r\n", wire)
    assert decode([crlf[i:i + 1] for i in range(len(crlf))]) == whole


@SETTINGS
@given(rel=st.sampled_from(ALL_STREAMS), points=st.lists(st.integers(min_value=0), max_size=40))
def test_sse_any_chunking_gives_the_same_events(rel, points):
    wire = WIRES[rel]
    assert decode(cut(wire, points)) == decode([wire])


@SETTINGS
@given(events=st.lists(st.tuples(st.none() | st.sampled_from(["message_start", "x"]),
                                 st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n{["), max_size=8),
                                          min_size=1, max_size=3)), min_size=1, max_size=6),
       newline=st.sampled_from([b"\n", b"\r\n", b"\r"]), points=st.lists(st.integers(min_value=0), max_size=20))
def test_sse_multiline_data_and_event_names(events, newline, points):
    # (Lines opening with { or [ are left out: a complete JSON line followed by another data line is
    # read as single-newline framing, see test_sse_single_newline_framing_is_split_into_events.)
    wire = b""
    for name, lines in events:
        if name:
            wire += b"event: " + name.encode() + newline
        for line in lines:
            wire += b"data: " + line.encode() + newline
        wire += b": comment" + newline + newline
    decoded = [e for e in decode(cut(wire, points)) if e.comment is None]
    assert [(e.event, e.data) for e in decoded] == [(name, "\n".join(lines)) for name, lines in events]


def test_sse_single_newline_framing_is_split_into_events():
    wire = b'data: {"a": 1}\ndata: {"a": 2}\n\ndata: [DONE]\n'
    assert [e.data for e in decode([wire])] == ['{"a": 1}', '{"a": 2}', "[DONE]"]


# ---------------------------------------------------------------------------------------------
# Whole translations are indifferent to chunk boundaries


@pytest.mark.parametrize("spoke", TRANSLATED_STREAMS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), points=st.lists(st.integers(min_value=0), max_size=60))
def test_translation_any_chunking_gives_the_same_output(spoke, data, points):
    rel, client, upstream = data.draw(st.sampled_from(TRANSLATED_STREAMS[spoke]), label="case")
    wire = WIRES[rel]
    assert translate(client, upstream, cut(wire, points)) == translate(client, upstream, [wire])


# ---------------------------------------------------------------------------------------------
# render∘parse round trips

@st.composite
def anthropic_responses(draw):
    parts = draw(st.lists(st.one_of(
        st.builds(Text, text), tool_call,
        st.builds(Reasoning, text=text, signature=st.none() | text),
        st.builds(Reasoning, text=st.just(""), signature=st.none(), redacted=text)), max_size=5))
    stop = draw(st.sampled_from([END, MAX_TOKENS, STOP_SEQUENCE, TOOL_USE, CONTENT_FILTER, PAUSE, CONTEXT_WINDOW]))
    fresh, read, write, out = draw(nat), draw(nat), draw(nat), draw(nat)
    return Response(id=draw(word), model=draw(word), parts=parts, stop_reason=stop,
                    stop_sequence=draw(text) if stop == STOP_SEQUENCE else None,
                    usage=Usage(fresh + read + write, read, write, out))  # Anthropic always reports usage


@st.composite
def openai_responses(draw):
    parts: list = []
    if draw(st.booleans()):
        parts.append(Reasoning(draw(text)))
    if draw(st.booleans()):
        parts.append(Text(draw(text)))
    if draw(st.booleans()):
        parts.append(Refusal(draw(text)))
    parts.extend(draw(st.lists(tool_call, max_size=3)))
    total, cached = draw(nat), draw(nat)
    usage = Usage(total + cached, cached, draw(nat), draw(nat), draw(nat))
    return Response(id=draw(word), model=draw(word), parts=parts,
                    stop_reason=draw(st.sampled_from([END, MAX_TOKENS, TOOL_USE, CONTENT_FILTER])),
                    usage=draw(st.none() | st.just(usage)), created=draw(nat))


@SETTINGS
@given(resp=anthropic_responses())
def test_anthropic_response_round_trip(resp):
    assert response_round_trip(anthropic, resp)[0] == resp


@SETTINGS
@given(resp=openai_responses())
def test_openai_response_round_trip(resp):
    assert response_round_trip(openai_chat, resp)[0] == resp


image = st.one_of(
    st.builds(Image, media_type=st.sampled_from(["image/png", "image/jpeg"]), data=st.from_regex(r"[A-Za-z0-9+/]{4,20}", fullmatch=True)),
    st.builds(Image, url=st.from_regex(r"https://example\.com/[a-z]{1,8}\.png", fullmatch=True)))


@st.composite
def tools_and_choice(draw, req: Request):
    req.tools = draw(st.lists(st.builds(Tool, name=word, description=st.none() | text, parameters=schema),
                              max_size=3, unique_by=lambda t: t.name))
    if req.tools:
        req.tool_choice = draw(st.none() | st.builds(ToolChoice, st.sampled_from(["auto", "required", "none"]))
                               | st.builds(ToolChoice, st.just("tool"), st.sampled_from([t.name for t in req.tools])))
    return req


@st.composite
def anthropic_requests(draw):
    """Canonical requests in the form an Anthropic body parses to (alternating turns, tool results
    first in their user turn, signed reasoning only)."""
    req = Request(model=draw(word), max_tokens=draw(st.integers(1, 64000)), stream=draw(st.booleans()),
                  include_usage=True)
    if draw(st.booleans()):
        req.system = [Text(draw(text))]
    for k in range(draw(st.integers(1, 5))):
        if k % 2 == 0:
            parts = draw(st.lists(st.builds(ToolResult, tool_id, st.lists(st.builds(Text, text), max_size=1),
                                            st.booleans()), max_size=2))
            parts += draw(st.lists(st.one_of(st.builds(Text, text), image), min_size=0 if parts else 1, max_size=3))
            req.messages.append(Message("user", parts))
        else:
            parts = draw(st.lists(st.builds(Reasoning, text=text, signature=text), max_size=1))
            parts += draw(st.lists(st.one_of(st.builds(Text, text), tool_call), min_size=1, max_size=3))
            req.messages.append(Message("assistant", parts))
    req.temperature = draw(st.none() | st.floats(0, 1))
    req.top_p = draw(st.none() | st.floats(0, 1))
    req.top_k = draw(st.none() | st.integers(1, 500))
    req.stop = draw(st.lists(text, max_size=3))
    draw(tools_and_choice(req))
    if req.tools and (req.tool_choice is None or req.tool_choice.mode != "none"):
        req.parallel_tool_calls = draw(st.sampled_from([None, False]))
        if req.parallel_tool_calls is False and req.tool_choice is None:
            req.tool_choice = ToolChoice("auto")  # Anthropic carries the flag on an explicit tool_choice
    req.user = draw(st.none() | word)
    if draw(st.booleans()):
        req.response_format = ResponseFormat("json_schema", draw(schema), strict=True)
    return req


@st.composite
def openai_requests(draw):
    """Canonical requests in the form a Chat Completions body parses to (one tool result per user
    message, unsigned reasoning not carried)."""
    stream = draw(st.booleans())
    # A model the target-model rules leave alone (an `o1` drops top_p on purpose: model_rules.py).
    model = draw(word.filter(lambda m: not model_rules.rules_for("openai-chat", m)))
    req = Request(model=model, stream=stream, include_usage=stream)
    if draw(st.booleans()):
        req.system = [Text(draw(text))]
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["user", "assistant", "tool"]))
        if kind == "user":
            req.messages.append(Message("user", draw(st.lists(st.one_of(st.builds(Text, text), image),
                                                              min_size=1, max_size=3).filter(
                lambda ps: not (len(ps) > 1 and all(isinstance(p, Text) for p in ps))))))
        elif kind == "tool":
            req.messages.append(Message("user", [ToolResult(draw(tool_id), [Text(draw(text))])]))
        else:
            parts = draw(st.lists(st.builds(Text, text), max_size=1)) + draw(st.lists(tool_call, max_size=2))
            if parts:
                req.messages.append(Message("assistant", parts))
    req.max_tokens = draw(st.none() | st.integers(1, 64000))
    req.temperature = draw(st.none() | st.floats(0, 2))
    req.top_p = draw(st.none() | st.floats(0, 1))
    req.stop = draw(st.lists(text, max_size=4))
    draw(tools_and_choice(req))
    for t in req.tools:
        t.strict = draw(st.none() | st.booleans())
    if req.tools:
        req.parallel_tool_calls = draw(st.none() | st.booleans())
    if draw(st.booleans()):
        req.reasoning = ReasoningConfig(True, effort=draw(st.sampled_from(["low", "medium", "high"])))
    req.response_format = draw(st.none() | st.just(ResponseFormat("json_object"))
                               | st.builds(ResponseFormat, st.just("json_schema"), schema, word,
                                           st.none() | st.booleans(), st.none() | text))
    req.user = draw(st.none() | word)
    req.n = draw(st.none() | st.integers(1, 4))
    req.seed = draw(st.none() | st.integers(0, 2**31))
    req.presence_penalty = draw(st.none() | st.floats(-2, 2))
    req.frequency_penalty = draw(st.none() | st.floats(-2, 2))
    req.logprobs = draw(st.none() | st.booleans())
    req.top_logprobs = draw(st.none() | st.integers(0, 20))
    req.logit_bias = draw(st.none() | st.dictionaries(st.from_regex(r"[0-9]{1,5}", fullmatch=True),
                                                      st.integers(-100, 100), max_size=2))
    return req


@SETTINGS
@given(req=anthropic_requests())
def test_anthropic_request_round_trip(req):
    back, warnings = request_round_trip(anthropic, req)
    assert back == req
    assert warnings == []


@SETTINGS
@given(req=openai_requests())
def test_openai_request_round_trip(req):
    back, warnings = request_round_trip(openai_chat, req)
    assert back == req
    assert warnings == []


# ---------------------------------------------------------------------------------------------
# Stream events: parse(render(events)) == events, per protocol, for event sequences in the form
# that protocol's parser produces (sequential blocks, the upstream's own event order).


def _replay(spoke, events: list, request: Request) -> list:
    return merge_deltas(parse_stream(spoke, render_stream(spoke, events, request)))


def _events(plan, start: StreamStart, tail: list, keepalive: bool) -> list:
    events: list = [start]
    for i, (kind, pieces, call_id, name, signature) in enumerate(plan):
        if kind == TOOL_CALL:
            events.append(BlockStart(i, TOOL_CALL, id=call_id, name=name))
        else:
            events.append(BlockStart(i, kind))
        events.extend(Delta(i, p) for p in pieces)
        if keepalive and i == 0:  # after a delta: OpenAI Chat blocks open implicitly with their first delta
            events.append(KeepAlive())
        if signature:
            events.append(SignatureDelta(i, signature))
        events.append(BlockStop(i))
    return merge_deltas(events + tail)


@SETTINGS
@given(plan=block_plan([TEXT, REASONING, TOOL_CALL], signed=True), data=st.data())
def test_anthropic_stream_round_trip(plan, data):
    fresh, read, write = data.draw(nat), data.draw(nat), data.draw(nat)
    usage = Usage(fresh + read + write, read, write, data.draw(nat))
    stop = data.draw(st.sampled_from([END, MAX_TOKENS, STOP_SEQUENCE, TOOL_USE, CONTENT_FILTER, PAUSE]))
    finish = StreamFinish(stop, data.draw(text) if stop == STOP_SEQUENCE else None)
    start = StreamStart(data.draw(word), data.draw(word), Usage(usage.input_total, read, write, 1))
    events = _events(plan, start, [UsageUpdate(usage), finish, StreamEnd()], data.draw(st.booleans()))
    assert _replay(anthropic, events, Request(model="m", include_usage=True)) == events


@SETTINGS
@given(plan=block_plan([TEXT, REASONING, REFUSAL, TOOL_CALL], signed=False), data=st.data())
def test_openai_stream_round_trip(plan, data):
    total, cached = data.draw(nat), data.draw(nat)
    usage = Usage(total + cached, cached, 0, data.draw(nat), data.draw(nat))
    stop = data.draw(st.sampled_from([END, MAX_TOKENS, TOOL_USE, CONTENT_FILTER]))
    events = _events(plan, StreamStart(data.draw(word), data.draw(word)),
                     [StreamFinish(stop), UsageUpdate(usage), StreamEnd()], data.draw(st.booleans()))
    assert _replay(openai_chat, events, Request(model="m", include_usage=True)) == events


def test_sse_byte_order_mark_is_ignored_even_when_split():
    wire = b"\xef\xbb\xbfdata: {}\n\n"
    assert decode([wire]) == decode([b"data: {}\n\n"]) == decode([wire[i:i + 1] for i in range(len(wire))])
    assert [e.data for e in decode([b"\xef", b"\xbb"])] == []  # a stream of only a partial BOM: nothing
