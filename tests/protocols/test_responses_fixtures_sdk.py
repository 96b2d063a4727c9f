"""The openai-responses spoke against recordings, read by official SDKs.

- every recorded Responses stream/body, translated for an OpenAI Chat and an Anthropic client, is read by
  those SDKs' own accumulators; the expected values come from the openai SDK reading the untranslated
  recording with its own Responses parser;
- every recorded Anthropic and OpenAI Chat stream/body, translated for a Responses client, is read by the
  openai SDK's `client.responses.stream(...)` accumulator and `responses.create` parsing.
"""

from __future__ import annotations

import json
import re

import anthropic
import openai
import pytest
from openai._models import construct_type
from proto_helpers import (
    A_BODIES,
    A_ERRORS,
    A_STREAMS,
    C_BODIES,
    C_STREAMS,
    FIXTURES,
    fixtures,
    http_module,
    merged_anthropic_usage,
    sdk_client,
    upstream_client,
    wire_bytes,
)
from sdk_clients import USER_TURN, anthropic_answer, anthropic_stream_final, chat_answer, chat_stream_snapshot, translating_client
from test_proto_fixtures_sdk import (
    a_text,
    a_thinking,
    a_tools,
    c_reasoning,
    c_tools,
    reference_anthropic,
    reference_openai,
)

from llmitm.protocols import Translation, openai_responses
from llmitm.protocols.translate import SPOKES

R_DIR = "openai-responses"
R_STREAMS = fixtures(R_DIR, stream=True)
R_ERROR_BODIES = [p for p in fixtures(R_DIR, stream=False) if json.loads((FIXTURES / p).read_bytes()).get("error")]
R_BODIES = [p for p in fixtures(R_DIR, stream=False) if p not in R_ERROR_BODIES]


def test_registered_and_inventory():
    assert SPOKES["openai-responses"] is openai_responses
    assert len(R_STREAMS) >= 15 and len(R_BODIES) >= 8 and R_ERROR_BODIES


def reference_responses(wire: bytes, *, stream: bool):
    """The openai SDK's own reading of an untranslated Responses recording."""
    client = upstream_client("responses", wire, stream=stream)
    if not stream:
        return client.responses.create(model="m", input="hi")
    final = None
    try:
        with client.responses.stream(model="m", input="hi") as s:
            for ev in s:
                if ev.type in ("response.completed", "response.incomplete"):
                    final = ev.response
    except (IndexError, RuntimeError):
        # openai<2.6's accumulator assumes output_index has no gaps (the phase recording has one):
        # read the final response object the recording carries instead.
        for line in wire.decode().splitlines():
            payload = json.loads(line[5:]) if line.startswith("data:") else {}
            if payload.get("type") in ("response.completed", "response.incomplete"):
                final = construct_type(type_=openai.types.responses.Response, value=payload["response"])
    return final


def responses_answer(client):
    """A Responses client's whole (non-stream) answer as its SDK parses it."""
    return client.responses.create(model="gpt-5", input="hi", store=False)


def read_responses_stream(client, **kw):
    """A Responses client's streamed answer as its SDK accumulates it: the final response object of
    response.completed / response.incomplete, plus the events."""
    final, events = None, []
    with client.responses.stream(model="gpt-5", input="hi", **kw) as s:
        for ev in s:
            events.append(ev)
            if ev.type in ("response.completed", "response.incomplete"):
                final = ev.response
        if final is not None and final.status == "completed":
            assert s.get_final_response().id == final.id
    return final, events


# -- what a Responses object says, in the other protocols' terms


def r_text(resp) -> str:
    return "".join(c.text for item in resp.output if item.type == "message"
                   for c in item.content if c.type == "output_text")


def r_refusal(resp) -> str:
    return "".join(c.refusal for item in resp.output if item.type == "message"
                   for c in item.content if c.type == "refusal")


def r_reasoning(resp) -> str:
    return "".join("\n\n".join(s.text for s in item.summary) for item in resp.output if item.type == "reasoning")


def r_calls(resp, *, parse: bool = True) -> list:
    return [(i.call_id, i.name, json.loads(i.arguments) if parse else i.arguments)
            for i in resp.output if i.type == "function_call"]


def r_incomplete(resp) -> str | None:
    return resp.incomplete_details.reason if resp.status == "incomplete" else None


R_TO_C_FINISH = {None: "stop", "max_output_tokens": "length", "content_filter": "content_filter"}
R_TO_A_STOP = {None: "end_turn", "max_output_tokens": "max_tokens", "content_filter": "refusal"}


# ---------------------------------------------------------------------------------------------
# Responses upstream → OpenAI Chat / Anthropic clients


def _r_stream_is_error(rel: str) -> bool:
    return "error" in rel


def _check_r_usage_chat(expected, usage):
    assert usage.prompt_tokens == expected.usage.input_tokens
    assert usage.completion_tokens == expected.usage.output_tokens
    assert usage.prompt_tokens_details.cached_tokens == expected.usage.input_tokens_details.cached_tokens
    assert usage.completion_tokens_details.reasoning_tokens == expected.usage.output_tokens_details.reasoning_tokens


def _check_r_to_c(expected, choice, usage):
    message = choice.message
    assert (message.content or "") == r_text(expected)
    assert c_reasoning(message) == r_reasoning(expected)
    assert c_tools(message) == r_calls(expected)
    want = R_TO_C_FINISH[r_incomplete(expected)]
    if want == "stop" and r_calls(expected):
        want = "tool_calls"
    assert choice.finish_reason == want
    _check_r_usage_chat(expected, usage)


def _check_r_to_a(expected, message, usage):
    assert a_text(message) == r_text(expected) + r_refusal(expected)
    assert a_thinking(message) == r_reasoning(expected)
    assert a_tools(message) == r_calls(expected)
    want = R_TO_A_STOP[r_incomplete(expected)]
    if want == "end_turn" and r_calls(expected):
        want = "tool_use"
    assert message.stop_reason == want
    cached = expected.usage.input_tokens_details.cached_tokens
    assert usage.input_tokens == expected.usage.input_tokens - cached
    assert usage.cache_read_input_tokens == cached
    assert usage.output_tokens == expected.usage.output_tokens


@pytest.mark.parametrize("rel", [r for r in R_STREAMS if not _r_stream_is_error(r)])
def test_responses_stream_read_by_openai_chat_sdk(rel):
    wire = wire_bytes(rel)
    expected = reference_responses(wire, stream=True)
    assert expected is not None
    t = Translation("openai-chat", "openai-responses")
    seen: list = []
    completion = chat_stream_snapshot(translating_client("openai", t, wire, stream=True, seen=seen))
    assert seen[0][0] == "/v1/responses" and seen[0][1]["stream"] is True
    _check_r_to_c(expected, completion.choices[0], completion.usage)
    assert t.usage.output_total == expected.usage.output_tokens


@pytest.mark.parametrize("rel", [r for r in R_STREAMS if not _r_stream_is_error(r)])
def test_responses_stream_read_by_anthropic_sdk(rel):
    wire = wire_bytes(rel)
    expected = reference_responses(wire, stream=True)
    t = Translation("anthropic", "openai-responses")
    message, delta_usage = anthropic_stream_final(translating_client("anthropic", t, wire, stream=True))
    _check_r_to_a(expected, message, delta_usage)
    assert t.usage.reasoning == expected.usage.output_tokens_details.reasoning_tokens  # metering keeps it


@pytest.mark.parametrize("rel", R_BODIES)
def test_responses_body_read_by_openai_chat_sdk(rel):
    wire = (FIXTURES / rel).read_bytes()
    expected = reference_responses(wire, stream=False)
    t = Translation("openai-chat", "openai-responses")
    completion = chat_answer(translating_client("openai", t, wire, stream=False))
    _check_r_to_c(expected, completion.choices[0], completion.usage)


@pytest.mark.parametrize("rel", R_BODIES)
def test_responses_body_read_by_anthropic_sdk(rel):
    wire = (FIXTURES / rel).read_bytes()
    expected = reference_responses(wire, stream=False)
    t = Translation("anthropic", "openai-responses")
    message = anthropic_answer(translating_client("anthropic", t, wire, stream=False))
    _check_r_to_a(expected, message, message.usage)


@pytest.mark.parametrize("rel", [r for r in R_STREAMS if _r_stream_is_error(r)])
def test_responses_stream_error_reaches_chat_and_anthropic_clients(rel):
    wire = wire_bytes(rel)
    error = next(json.loads(line[5:]) for line in wire.decode().splitlines()
                 if line.startswith("data:") and json.loads(line[5:])["type"] == "error")["error"]
    t = Translation("openai-chat", "openai-responses")
    client = translating_client("openai", t, wire, stream=True)
    with pytest.raises(openai.APIError) as info:
        for _ in client.chat.completions.create(model="gpt-4o", messages=USER_TURN, stream=True):
            pass
    assert info.value.message == error["message"]
    assert info.value.body["code"] == error["code"]
    t = Translation("anthropic", "openai-responses")
    client = translating_client("anthropic", t, wire, stream=True)
    with pytest.raises(anthropic.APIStatusError) as ainfo, \
            client.messages.stream(model="claude-x", max_tokens=100, messages=USER_TURN) as s:
        for _ in s:
            pass
    assert ainfo.value.body["error"]["type"] == "rate_limit_error"  # both recordings are 429-class errors
    assert ainfo.value.body["error"]["message"] == error["message"]


@pytest.mark.parametrize("rel", R_ERROR_BODIES)
def test_responses_error_body_reaches_chat_and_anthropic_clients(rel):
    wire = (FIXTURES / rel).read_bytes()
    message = json.loads(wire)["error"]["message"]
    client = translating_client("openai", Translation("openai-chat", "openai-responses"), wire, stream=False,
                                status=429)
    with pytest.raises(openai.RateLimitError) as info:
        chat_answer(client)
    assert info.value.body["message"] == message and info.value.body["code"] == "insufficient_quota"
    client = translating_client("anthropic", Translation("anthropic", "openai-responses"), wire, stream=False,
                                status=429)
    with pytest.raises(anthropic.RateLimitError) as ainfo:
        client.messages.create(model="claude-x", max_tokens=100, messages=USER_TURN)
    assert ainfo.value.body["error"]["message"] == message


# ---------------------------------------------------------------------------------------------
# Anthropic / OpenAI Chat upstream → Responses client (the openai SDK's Responses accumulator)

A_TO_R_INCOMPLETE = {"max_tokens": "max_output_tokens", "model_context_window_exceeded": "max_output_tokens",
                     "refusal": "content_filter"}
C_TO_R_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def _check_sse_framing(raw: bytes):
    """Every event has an `event:` line equal to its payload's `type`, and sequence numbers count up."""
    seqs = []
    for block in raw.decode().split("\n\n"):
        lines = [x for x in block.split("\n") if x and not x.startswith(":")]
        if not lines:
            continue
        assert lines[0].startswith("event: ") and lines[1].startswith("data: "), block
        payload = json.loads(lines[1][6:])
        assert payload["type"] == lines[0][7:]
        seqs.append(payload["sequence_number"])
    assert seqs == list(range(len(seqs)))


def _check_a_to_r(expected, resp, wire_usage: dict | None):
    assert r_text(resp) == a_text(expected)
    assert r_reasoning(resp) == a_thinking(expected)
    if expected.stop_reason == "max_tokens":
        assert [c[:2] for c in r_calls(resp, parse=False)] == [t[:2] for t in a_tools(expected)]
    else:
        assert r_calls(resp) == a_tools(expected)
    assert r_incomplete(resp) == A_TO_R_INCOMPLETE.get(expected.stop_reason)
    assert resp.status == ("incomplete" if expected.stop_reason in A_TO_R_INCOMPLETE else "completed")
    # Signed thinking rides in encrypted_content, to come back in the next request's input.
    sigs = [b.signature for b in expected.content if b.type == "thinking" and b.signature]
    assert [i.encrypted_content for i in resp.output if i.type == "reasoning" and i.encrypted_content and
            i.encrypted_content.startswith(openai_responses.SIGNATURE_PREFIX)] == [
        openai_responses.SIGNATURE_PREFIX + s for s in sigs]
    if wire_usage is not None:
        read = wire_usage.get("cache_read_input_tokens") or 0
        write = wire_usage.get("cache_creation_input_tokens") or 0
        assert resp.usage.input_tokens == wire_usage["input_tokens"] + read + write
        assert resp.usage.input_tokens_details.cached_tokens == read
        assert resp.usage.output_tokens == wire_usage["output_tokens"]


def _anthropic_stream_error(wire: bytes) -> dict | None:
    for line in wire.decode().splitlines():
        if line.startswith("data:") and '"error"' in line:
            payload = json.loads(line[5:])
            if payload.get("type") == "error":
                return payload["error"]
    return None


@pytest.mark.parametrize("rel", A_STREAMS)
def test_anthropic_stream_read_by_responses_sdk(rel):
    wire = wire_bytes(rel)
    t = Translation("openai-responses", "anthropic")
    raw: list = []
    seen: list = []
    client = translating_client("responses", t, wire, stream=True, raw=raw, seen=seen)
    assert seen == []
    error = _anthropic_stream_error(wire)
    if error is not None:
        with pytest.raises(openai.APIError) as info:
            read_responses_stream(client, store=False)
        assert info.value.message == error["message"]
        _check_sse_framing(raw[0])
        return
    expected = reference_anthropic(wire, stream=True)
    resp, events = read_responses_stream(client, store=False)
    assert seen[0][0] == "/v1/messages" and seen[0][1]["stream"] is True
    _check_sse_framing(raw[0])
    _check_a_to_r(expected, resp, merged_anthropic_usage(wire))
    assert [e.type for e in events[:2]] == ["response.created", "response.in_progress"]


@pytest.mark.parametrize("rel", A_BODIES)
def test_anthropic_body_read_by_responses_sdk(rel):
    wire = (FIXTURES / rel).read_bytes()
    expected = reference_anthropic(wire, stream=False)
    t = Translation("openai-responses", "anthropic")
    resp = responses_answer(translating_client("responses", t, wire, stream=False))
    _check_a_to_r(expected, resp, json.loads(wire)["usage"])
    assert resp.output_text == a_text(expected)


@pytest.mark.parametrize("rel", A_BODIES)
def test_anthropic_body_as_stream_read_by_responses_sdk(rel):
    wire = (FIXTURES / rel).read_bytes()
    expected = reference_anthropic(wire, stream=False)
    t = Translation("openai-responses", "anthropic")
    httpx = http_module("openai")

    def handler(request):
        t.request(json.loads(request.content))
        code, out = t.response(200, wire, as_stream=True)
        _check_sse_framing(out)
        return httpx.Response(code, headers={"content-type": "text/event-stream"}, content=out)

    resp, _ = read_responses_stream(sdk_client("responses", handler), store=False)
    _check_a_to_r(expected, resp, json.loads(wire)["usage"])


@pytest.mark.parametrize("rel", A_ERRORS)
def test_anthropic_error_read_by_responses_sdk(rel):
    wire = (FIXTURES / rel).read_bytes()
    status = {"error-400-invalid-request.json": 400}.get(rel.rsplit("/", 1)[1], 429)
    client = translating_client("responses", Translation("openai-responses", "anthropic"), wire, stream=False,
                                status=status)
    with pytest.raises(openai.APIStatusError) as info:
        responses_answer(client)
    assert info.value.status_code == status
    assert info.value.body["message"] == json.loads(wire)["error"]["message"]
    assert info.value.body["type"] == {400: "invalid_request_error", 429: "rate_limit_error"}[status]


def _check_c_to_r(expected, resp):
    choice = expected.choices[0]
    em = choice.message
    assert r_text(resp) == (em.content or "")
    assert r_refusal(resp) == (em.refusal or "")
    assert r_reasoning(resp) == c_reasoning(em)
    if choice.finish_reason == "length":
        assert [c[:2] for c in r_calls(resp, parse=False)] == [t[:2] for t in c_tools(em, parse=False)]
    else:
        assert r_calls(resp) == c_tools(em)
    assert r_incomplete(resp) == C_TO_R_INCOMPLETE.get(choice.finish_reason)
    if expected.usage is not None:
        u = expected.usage
        assert resp.usage.input_tokens == u.prompt_tokens
        assert resp.usage.output_tokens == u.completion_tokens
        assert resp.usage.input_tokens_details.cached_tokens == (
            (u.prompt_tokens_details.cached_tokens if u.prompt_tokens_details else 0) or 0)
        details = u.completion_tokens_details
        assert resp.usage.output_tokens_details.reasoning_tokens == (
            (details.reasoning_tokens if details else 0) or 0)
    else:  # unknown usage is reported as zeros (strict clients require the object)
        assert (resp.usage.input_tokens, resp.usage.output_tokens) == (0, 0)


@pytest.mark.parametrize("rel", C_STREAMS)
def test_openai_chat_stream_read_by_responses_sdk(rel):
    wire = wire_bytes(rel)
    expected = reference_openai(wire, stream=True)
    t = Translation("openai-responses", "openai-chat")
    raw: list = []
    seen: list = []
    resp, _ = read_responses_stream(translating_client("responses", t, wire, stream=True, raw=raw, seen=seen),
                                    store=False)
    assert seen[0][0] == "/v1/chat/completions" and seen[0][1]["stream_options"] == {"include_usage": True}
    _check_sse_framing(raw[0])
    _check_c_to_r(expected, resp)


@pytest.mark.parametrize("rel", C_BODIES)
def test_openai_chat_body_read_by_responses_sdk(rel):
    wire = (FIXTURES / rel).read_bytes()
    expected = reference_openai(wire, stream=False)
    t = Translation("openai-responses", "openai-chat")
    resp = responses_answer(translating_client("responses", t, wire, stream=False))
    _check_c_to_r(expected, resp)


def test_responses_stream_of_signed_thinking_comes_back_signed():
    """Responses client, Anthropic upstream, thinking on, a tool loop: the output items as the SDK
    returns them, sent back as input, carry Anthropic's signed thinking so thinking stays on."""
    wire = (FIXTURES / "anthropic-messages/prism/thinking-text-tool-use.json").read_bytes()
    original = json.loads(wire)
    tools = [{"type": "function", "name": b["name"], "parameters": {"type": "object"}}
             for b in original["content"] if b["type"] == "tool_use"]
    t = Translation("openai-responses", "anthropic")
    first = translating_client("responses", t, wire, stream=False).responses.create(
        model="gpt-5", input="hi", tools=tools, reasoning={"effort": "low"}, max_output_tokens=8000, store=False)
    calls = [i for i in first.output if i.type == "function_call"]
    assert calls
    history = [{"role": "user", "content": "hi"}, *[i.model_dump(exclude_none=True) for i in first.output]]
    history += [{"type": "function_call_output", "call_id": c.call_id, "output": "done"} for c in calls]
    t2 = Translation("openai-responses", "anthropic")
    upstream = json.loads(t2.request({"model": "gpt-5", "input": history, "tools": tools, "store": False,
                                      "reasoning": {"effort": "low"}, "max_output_tokens": 8000}).body)
    assert upstream["thinking"]["type"] == "enabled"
    sent = upstream["messages"][1]["content"]
    assert sent[0] == next(b for b in original["content"] if b["type"] == "thinking")
    assert [b["id"] for b in sent if b["type"] == "tool_use"] == [
        b["id"] for b in original["content"] if b["type"] == "tool_use"]
    assert [b["type"] for b in upstream["messages"][2]["content"]] == ["tool_result"] * len(calls)
    assert not any("reasoning" in w for w in t2.warnings)


def test_ids_are_stable_across_lifecycle_events():
    wire = wire_bytes(A_STREAMS[0])
    raw: list = []
    read_responses_stream(translating_client("responses", Translation("openai-responses", "anthropic"), wire,
                                             stream=True, raw=raw), store=False)
    ids = set(re.findall(rb'"response":\{"id":"([^"]+)"', raw[0]))
    assert len(ids) == 1


def test_structured_output_parsed_by_the_sdk():
    """`client.responses.parse(text_format=Model)` on an Anthropic upstream: the schema goes out as
    output_config.format, the JSON text comes back parsed by the SDK."""
    import pydantic

    class Weather(pydantic.BaseModel):
        city: str
        temp: int

    body = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "stop_reason": "end_turn",
            "content": [{"type": "text", "text": '{"city": "Paris", "temp": 21}'}],
            "usage": {"input_tokens": 30, "output_tokens": 9}}
    seen: list = []
    client = translating_client("responses", Translation("openai-responses", "anthropic"),
                                json.dumps(body).encode(), stream=False, seen=seen)
    parsed = client.responses.parse(model="gpt-5", input="weather?", text_format=Weather, store=False)
    assert parsed.output_parsed == Weather(city="Paris", temp=21)
    fmt = seen[0][1]["output_config"]["format"]
    assert fmt["type"] == "json_schema" and set(fmt["schema"]["properties"]) == {"city", "temp"}


@pytest.mark.parametrize("rel", [r for r in C_STREAMS if "tool" in r][:3])
def test_raw_event_iteration_with_create_stream_true(rel):
    """The SDK's raw event stream (`responses.create(stream=True)`) validates every event type."""
    wire = wire_bytes(rel)
    client = translating_client("responses", Translation("openai-responses", "openai-chat"), wire, stream=True)
    events = list(client.responses.create(model="gpt-5", input="hi", stream=True, store=False))
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"] and types[-1] == "response.completed"
    assert "response.function_call_arguments.done" in types
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert all(e.__class__.__name__ != "BaseModel" for e in events)
