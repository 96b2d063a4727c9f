"""Local OpenAI-compatible servers (local_model): what the model writes as text — `<think>…</think>`
and Hermes `<tool_call>…</tool_call>` — reaches OpenAI and Anthropic apps as native reasoning and
tool calls, streamed (in pieces of any size) and not, read through the official SDKs.

The server answers are recorded-style: `transformers serve` running SmolLM3 returns both markups raw
in `content` with finish_reason "stop" (PROTOCOLS.md §5, /work/shared/smollm3/SERVING.md)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proto_helpers import anthropic_client, openai_chunks, openai_client, split

from llmitm.config import LocalModelConfig
from llmitm.protocols import Translation
from llmitm.protocols.local_model import ToolCallScanner, parse_calls

USER = [{"role": "user", "content": "What's the weather in Paris?"}]
TOOLS_C = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                             "parameters": {"type": "object",
                                                            "properties": {"city": {"type": "string"}}}}}]
TOOLS_A = [{"name": "get_weather", "description": "Weather in a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
SMOL = LocalModelConfig(tool_call_tags=True, reasoning_switch="smollm3")

# What SmolLM3 writes (think mode, then a tool call), as transformers serve returns it.
THINK_CALL = ("<think>\nThe user wants the weather. I should call get_weather with Paris.\n</think>\n"
              "Let me check the weather.\n"
              '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>')
TWO_CALLS = ('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
             '<tool_call>\n{"name": "get_weather", "arguments": "{\\"city\\": \\"Lyon\\"}"}\n</tool_call>')
THINK_ANSWER = "<think>\nTwo plus two is four.\n</think>\nThe answer is 4."
NO_THINK = "The answer is 4."


def chat_body(content: str, finish: str = "stop", **message) -> bytes:
    return json.dumps({
        "id": "chatcmpl-local", "object": "chat.completion", "created": 1, "model": "HuggingFaceTB/SmolLM3-3B",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content, **message},
                     "finish_reason": finish}],
        "usage": {"prompt_tokens": 115, "completion_tokens": 40, "total_tokens": 155}}).encode()


def chat_stream(pieces: list[str], finish: str = "stop", reasoning: list[str] = ()) -> bytes:
    """A server stream: role chunk, optional reasoning deltas (vLLM `reasoning`), content deltas one
    per piece, finish chunk, usage chunk, [DONE]."""
    def chunk(delta, fin=None, usage=None):
        body = {"id": "chatcmpl-local", "object": "chat.completion.chunk", "created": 1,
                "model": "HuggingFaceTB/SmolLM3-3B",
                "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": fin}]}
        if usage:
            body["usage"] = usage
        return f"data: {json.dumps(body)}\n\n"
    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"reasoning": r}) for r in reasoning]
    out += [chunk({"content": p}) for p in pieces]
    out.append(chunk({}, finish))
    out.append(chunk(None, usage={"prompt_tokens": 115, "completion_tokens": 40, "total_tokens": 155}))
    out.append("data: [DONE]\n\n")
    return "".join(out).encode()


def tokens(text: str, size: int = 3) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


def new_translation(client: str, cfg=SMOL, **body) -> Translation:
    t = Translation(client, "openai-chat", local_model=cfg)
    if client == "anthropic":
        req = {"model": "m", "max_tokens": 512, "messages": USER, "tools": TOOLS_A, **body}
    else:
        req = {"model": "m", "messages": USER, "tools": TOOLS_C, **body}
    t.request(req)
    return t


def run_stream(t: Translation, wire: bytes, sizes=(1, 7, 64, 3, 200)) -> bytes:
    s = t.stream()
    out: list[bytes] = []
    for piece in split(wire, sizes):
        out.extend(s.feed(piece))
    out.extend(s.finish())
    assert all(out)
    return b"".join(out)


def read_openai_stream(data: bytes) -> dict:
    """The openai SDK's chunks folded into one message."""
    chunks = list(openai_client(data, stream=True).chat.completions.create(model="m", messages=USER, stream=True))
    content, reasoning, calls, finish = "", "", {}, None
    for c in chunks:
        for ch in c.choices:
            d = ch.delta
            content += d.content or ""
            reasoning += (d.model_extra or {}).get("reasoning_content") or ""
            for tc in d.tool_calls or ():
                slot = calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
                slot["id"] = tc.id or slot["id"]
                slot["name"] += (tc.function.name or "") if tc.function else ""
                slot["arguments"] += (tc.function.arguments or "") if tc.function else ""
            finish = ch.finish_reason or finish
    return {"content": content, "reasoning": reasoning, "calls": [calls[k] for k in sorted(calls)], "finish": finish}


def read_openai_body(data: bytes) -> dict:
    r = openai_client(data).chat.completions.create(model="m", messages=USER)
    m = r.choices[0].message
    return {"content": m.content or "", "reasoning": (m.model_extra or {}).get("reasoning_content") or "",
            "calls": [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
                      for c in m.tool_calls or ()],
            "finish": r.choices[0].finish_reason}


def read_anthropic_stream(data: bytes):
    with anthropic_client(data, stream=True).messages.stream(model="m", max_tokens=10, messages=USER) as s:
        list(s)
        return s.get_final_message()


def read_anthropic_body(data: bytes):
    return anthropic_client(data).messages.create(model="m", max_tokens=10, messages=USER)


def a_summary(message) -> dict:
    return {"thinking": "".join(b.thinking for b in message.content if b.type == "thinking"),
            "signatures": [b.signature for b in message.content if b.type == "thinking"],
            "text": "".join(b.text for b in message.content if b.type == "text"),
            "calls": [(b.name, b.input) for b in message.content if b.type == "tool_use"],
            "kinds": [b.type for b in message.content], "stop": message.stop_reason}


def no_markup(*texts: str) -> None:
    for text in texts:
        assert "<tool_call>" not in text and "</tool_call>" not in text
        assert "<think>" not in text and "</think>" not in text


# ---------------------------------------------------------------------------------------------
# Non-stream answers


def test_think_and_tool_call_to_anthropic_client():
    t = new_translation("anthropic")
    status, body = t.response(200, chat_body(THINK_CALL))
    got = a_summary(read_anthropic_body(body))
    assert status == 200
    assert got["kinds"] == ["thinking", "text", "tool_use"]
    assert got["thinking"].startswith("The user wants the weather.") and got["signatures"] == [""]
    assert got["text"] == "Let me check the weather."
    assert got["calls"] == [("get_weather", {"city": "Paris"})]
    assert got["stop"] == "tool_use"  # the server said "stop"
    no_markup(got["text"], got["thinking"])


def test_think_and_tool_call_to_openai_client_chat_to_chat():
    t = new_translation("openai-chat")
    status, body = t.response(200, chat_body(THINK_CALL))
    got = read_openai_body(body)
    assert got["finish"] == "tool_calls"
    assert got["content"] == "Let me check the weather."
    assert got["reasoning"].startswith("The user wants the weather.")
    assert [(c["name"], json.loads(c["arguments"])) for c in got["calls"]] == [("get_weather", {"city": "Paris"})]
    assert got["calls"][0]["id"].startswith("call_")
    no_markup(got["content"], got["reasoning"])


def test_two_calls_arguments_as_object_and_as_string():
    t = new_translation("openai-chat")
    got = read_openai_body(t.response(200, chat_body(TWO_CALLS))[1])
    assert [json.loads(c["arguments"]) for c in got["calls"]] == [{"city": "Paris"}, {"city": "Lyon"}]
    assert got["content"] == "" and got["finish"] == "tool_calls"
    assert len({c["id"] for c in got["calls"]}) == 2


def test_plain_answer_without_tags_is_untouched():
    t = new_translation("anthropic")
    got = a_summary(read_anthropic_body(t.response(200, chat_body(NO_THINK))[1]))
    assert got["kinds"] == ["text"] and got["text"] == NO_THINK and got["stop"] == "end_turn"
    assert t.warnings == []


def test_tool_call_inside_reasoning_stays_reasoning():
    content = ('<think>\nMaybe <tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
               "</tool_call> but I know it.\n</think>\nIt is sunny.")
    t = new_translation("anthropic")
    got = a_summary(read_anthropic_body(t.response(200, chat_body(content))[1]))
    assert got["kinds"] == ["thinking", "text"] and got["calls"] == [] and got["stop"] == "end_turn"
    assert "<tool_call>" in got["thinking"] and got["text"] == "It is sunny."


def test_reasoning_field_is_preferred_and_tool_markup_in_content_still_parsed():
    """vLLM with --reasoning-parser but no tool parser: reasoning in `reasoning`, call in content."""
    content = 'Checking.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    t = new_translation("openai-chat")
    got = read_openai_body(t.response(200, chat_body(content, reasoning="I should call the tool."))[1])
    assert got["reasoning"] == "I should call the tool." and got["content"] == "Checking."
    assert got["calls"][0]["name"] == "get_weather" and got["finish"] == "tool_calls"


def test_native_tool_calls_from_a_server_with_a_parser_pass_through():
    native = [{"id": "call_x", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Nice"}'}}]
    t = new_translation("anthropic")
    got = a_summary(read_anthropic_body(t.response(200, chat_body(None, "tool_calls", tool_calls=native))[1]))
    assert got["calls"] == [("get_weather", {"city": "Nice"})] and got["stop"] == "tool_use"


def test_unterminated_think_at_length_is_reasoning_only():
    t = new_translation("anthropic")
    got = a_summary(read_anthropic_body(t.response(200, chat_body("<think>\nLet me think about this", "length"))[1]))
    assert got["kinds"] == ["thinking"] and got["thinking"] == "Let me think about this"
    assert got["stop"] == "max_tokens"


def test_call_cut_off_at_length_is_repaired_and_stays_max_tokens():
    content = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Par'
    t = new_translation("openai-chat")
    got = read_openai_body(t.response(200, chat_body(content, "length"))[1])
    assert got["finish"] == "length"
    assert [(c["name"], json.loads(c["arguments"])) for c in got["calls"]] == [("get_weather", {"city": "Par"})]
    assert any("unterminated <tool_call>" in w for w in t.warnings)


def test_invalid_call_is_kept_as_text_with_a_warning():
    content = "Here: <tool_call>not a call at all</tool_call> done"
    t = new_translation("anthropic")
    got = a_summary(read_anthropic_body(t.response(200, chat_body(content))[1]))
    assert got["text"] == content  # verbatim
    assert got["calls"] == [] and got["stop"] == "end_turn"
    assert any("not a valid call" in w for w in t.warnings)


def test_tool_call_tags_off_leaves_markup_as_text():
    cfg = LocalModelConfig(tool_call_tags=False, reasoning_switch="smollm3")
    t = new_translation("openai-chat", cfg)
    got = read_openai_body(t.response(200, chat_body(THINK_CALL))[1])
    assert got["calls"] == [] and "<tool_call>" in got["content"] and got["finish"] == "stop"
    assert got["reasoning"].startswith("The user wants")  # think tags still split


def test_think_tags_off_leaves_think_as_text():
    cfg = LocalModelConfig(think_tags=False, tool_call_tags=True)
    t = new_translation("openai-chat", cfg)
    got = read_openai_body(t.response(200, chat_body(THINK_ANSWER))[1])
    assert got["reasoning"] == "" and got["content"] == THINK_ANSWER
    s = run_stream(new_translation("openai-chat", cfg), chat_stream(tokens(THINK_ANSWER)))
    assert read_openai_stream(s)["content"] == THINK_ANSWER


def test_server_ignored_stream_true_json_rendered_as_stream():
    t = new_translation("anthropic", stream=True)
    status, sse = t.response(200, chat_body(THINK_CALL), as_stream=True)
    got = a_summary(read_anthropic_stream(sse))
    assert got["kinds"] == ["thinking", "text", "tool_use"] and got["stop"] == "tool_use"


@pytest.mark.parametrize(("body", "expected"), [
    ('{"name": "f", "arguments": {"a": 1}}', [("f", {"a": 1})]),
    ('{"name": "f", "arguments": "{\\"a\\": 1}"}', [("f", {"a": 1})]),
    ('{"name": "f"}', [("f", {})]),
    ('{"name": "f", "arguments": null}', [("f", {})]),
    ('{"name": "f", "parameters": {"a": 1}}', [("f", {"a": 1})]),
    ('{"name": "f", "arguments": {"a": 1},}', [("f", {"a": 1})]),  # trailing comma
    ('{"name": "f", "arguments": {"a": 1}}}', [("f", {"a": 1})]),  # trailing garbage
    ("{'name': 'f', 'arguments': {'a': True}}", [("f", {"a": True})]),  # Python literal
    ('```json\n{"name": "f", "arguments": {"a": [1, 2]}}\n```', [("f", {"a": [1, 2]})]),
    ('{"name": "f", "arguments": {"q": "x\\"y"', [("f", {"q": 'x"y'})]),  # cut off
    ('[{"name": "f", "arguments": {}}, {"name": "g", "arguments": {"b": 2}}]', [("f", {}), ("g", {"b": 2})]),
    ('{"type": "function", "function": {"name": "f", "arguments": "{}"}}', [("f", {})]),
    ("not json", None), ('{"arguments": {}}', None), ('{"name": "f", "arguments": [1]}', None),
    ('{"name": "f", "arguments": "not json"}', None), ("", None), ('"just a string"', None),
])
def test_parse_calls_light_repair(body, expected):
    got = parse_calls(body)
    assert (None if got is None else [(n, json.loads(a)) for n, a in got]) == expected


# ---------------------------------------------------------------------------------------------
# Streams


@pytest.mark.parametrize("sizes", [(1,), (2, 5), (1, 7, 64, 3, 200), (10_000,)])
@pytest.mark.parametrize("piece", [1, 2, 3, 5, 11, 1000])
def test_stream_think_and_call_to_anthropic_any_chunking(sizes, piece):
    t = new_translation("anthropic", stream=True)
    data = run_stream(t, chat_stream(tokens(THINK_CALL, piece)), sizes)
    got = a_summary(read_anthropic_stream(data))
    assert got["kinds"] == ["thinking", "text", "tool_use"]
    assert got["text"] == "Let me check the weather."
    assert got["calls"] == [("get_weather", {"city": "Paris"})] and got["stop"] == "tool_use"
    assert got["signatures"] == [""]
    assert t.usage.input_total == 115
    no_markup(got["text"], got["thinking"])


@pytest.mark.parametrize("piece", [1, 4, 1000])
def test_stream_two_calls_to_openai_client(piece):
    t = new_translation("openai-chat", stream=True)
    got = read_openai_stream(run_stream(t, chat_stream(tokens(TWO_CALLS, piece))))
    assert [(c["name"], json.loads(c["arguments"])) for c in got["calls"]] == [
        ("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Lyon"})]
    assert got["content"] == "" and got["finish"] == "tool_calls"
    assert [c["id"] is not None for c in got["calls"]] == [True, True]


def test_stream_openai_chunks_are_well_formed():
    t = new_translation("openai-chat", stream=True, stream_options={"include_usage": True})
    chunks = openai_chunks(run_stream(t, chat_stream(tokens(THINK_CALL, 2))))
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert all("<tool_call>" not in (d.get("content") or "") for d in deltas)
    starts = [tc for d in deltas for tc in d.get("tool_calls") or () if "id" in tc]
    assert len(starts) == 1 and starts[0]["index"] == 0 and starts[0]["function"]["name"] == "get_weather"
    assert chunks[-1]["usage"]["prompt_tokens"] == 115


@pytest.mark.parametrize("piece", [1, 3, 1000])
def test_stream_reasoning_field_and_markup_in_content(piece):
    content = 'Checking.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    t = new_translation("anthropic", stream=True)
    data = run_stream(t, chat_stream(tokens(content, piece), reasoning=["I should ", "call it."]))
    got = a_summary(read_anthropic_stream(data))
    assert got["kinds"] == ["thinking", "text", "tool_use"] and got["thinking"] == "I should call it."
    assert got["text"] == "Checking." and got["stop"] == "tool_use"


@pytest.mark.parametrize("piece", [1, 5])
def test_stream_unterminated_think_at_length(piece):
    t = new_translation("openai-chat", stream=True)
    got = read_openai_stream(run_stream(t, chat_stream(tokens("<think>\nStill thinking </thi", piece), "length")))
    assert got["reasoning"] == "Still thinking </thi" and got["content"] == "" and got["finish"] == "length"


@pytest.mark.parametrize("piece", [1, 2, 1000])
def test_stream_tool_call_in_reasoning_stays_reasoning(piece):
    content = ('<think>\n<tool_call>\n{"name": "get_weather", "arguments": {}}\n</tool_call>\n</think>\n'
               "Sunny.")
    t = new_translation("anthropic", stream=True)
    got = a_summary(read_anthropic_stream(run_stream(t, chat_stream(tokens(content, piece)))))
    assert got["kinds"] == ["thinking", "text"] and got["calls"] == [] and got["stop"] == "end_turn"
    assert got["text"] == "Sunny."


def test_stream_plain_text_with_angle_brackets_is_not_held_forever():
    text = "a < b and <tool but not a tag; x <tool_cal"
    t = new_translation("openai-chat", stream=True)
    got = read_openai_stream(run_stream(t, chat_stream(tokens(text, 1))))
    assert got["content"] == text and got["calls"] == []


def test_scanner_holds_back_only_a_partial_tag_and_trailing_whitespace():
    sc = ToolCallScanner(Translation("openai-chat", "openai-chat").ctx)
    assert sc.feed("Hello <tool") == [("text", "Hello")]
    assert sc.feed("box> ok") == [("text", " <toolbox> ok")]
    assert sc.feed("\n\n") == []
    assert sc.feed("<tool_call>") == []
    items = sc.feed('{"name": "f", "arguments": {}}</tool_call>\n\nafter')
    assert [k for k, _ in items] == ["call", "text"] and items[1] == ("text", "after")
    assert (items[0][1].name, items[0][1].arguments) == ("f", "{}")
    assert sc.feed(" end  ") == [("text", " end")]
    assert sc.flush() == [("text", "  ")]


# ---------------------------------------------------------------------------------------------
# Property: any split of the model's text into deltas and of the wire into byte chunks gives the
# same answer as the non-stream response.

SEGMENTS = st.lists(st.sampled_from([
    "Hello", " world", "\n", "  ", "a<b", "<tool", "_call>", "<think>", "</think>", "x" * 20,
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
    '<tool_call>{"name": "f", "arguments": {"a": 1}}</tool_call>', "<tool_call>broken</tool_call>",
    "é✓", "</tool_call>",
]), min_size=1, max_size=8)


def _norm_calls(calls):
    return [(c["name"], json.loads(c["arguments"])) for c in calls]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(segments=SEGMENTS, think=st.booleans(), cuts=st.lists(st.integers(1, 9), min_size=1, max_size=5),
       wire_sizes=st.lists(st.integers(1, 50), min_size=1, max_size=4))
def test_property_stream_equals_non_stream(segments, think, cuts, wire_sizes):
    text = ("<think>\nhmm\n</think>\n" if think else "") + "".join(segments)
    pieces, pos, k = [], 0, 0
    while pos < len(text):
        pieces.append(text[pos:pos + cuts[k % len(cuts)]])
        pos += cuts[k % len(cuts)]
        k += 1
    whole = read_openai_body(new_translation("openai-chat").response(200, chat_body(text))[1])
    streamed = read_openai_stream(run_stream(new_translation("openai-chat", stream=True),
                                             chat_stream(pieces), tuple(wire_sizes)))
    assert streamed["content"] == whole["content"]
    assert streamed["reasoning"] == whole["reasoning"]
    assert _norm_calls(streamed["calls"]) == _norm_calls(whole["calls"])
    assert streamed["finish"] == whole["finish"] == ("tool_calls" if whole["calls"] else "stop")
    if not {"<tool", "_call>", "</tool_call>", "<tool_call>broken</tool_call>"} & set(segments):
        assert "tool_call>" not in streamed["content"]  # only well-formed calls: no markup shown


def _scan(pieces: list[str]) -> list[tuple[str, object]]:
    sc = ToolCallScanner(Translation("openai-chat", "openai-chat").ctx)
    items = [i for p in pieces for i in sc.feed(p)] + sc.flush()
    merged: list = []
    for kind, value in items:
        if kind == "text" and merged and merged[-1][0] == "text":
            merged[-1] = ("text", merged[-1][1] + value)
        else:
            merged.append((kind, value if kind == "text" else (value.name, value.arguments)))
    return merged


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet='<>/_toolcaé \n{}":,nmef1', max_size=60)
       | st.lists(st.sampled_from(["<tool_call>", "</tool_call>", '{"name": "f"}', " ", "\n", "x", "<tool_"]),
                  max_size=10).map("".join),
       cuts=st.lists(st.integers(1, 7), min_size=1, max_size=4))
def test_property_scanner_chunking_is_invisible_and_text_without_calls_is_kept_verbatim(text, cuts):
    pieces, pos, k = [], 0, 0
    while pos < len(text):
        pieces.append(text[pos:pos + cuts[k % len(cuts)]])
        pos += cuts[k % len(cuts)]
        k += 1
    whole = _scan([text])
    assert _scan(pieces) == whole
    if all(kind == "text" for kind, _ in whole):
        assert "".join(v for _, v in whole) == text


# ---------------------------------------------------------------------------------------------
# Context overflow errors (PROTOCOLS.md §5.5)

VLLM_PROMPT = {"object": "error", "type": "BadRequestError", "code": 400, "param": None, "message":
               "This model's maximum context length is 4096 tokens. However, your request has 5000 input tokens. "
               "Please reduce the length of the input messages."}
VLLM_MAX_TOKENS = {"object": "error", "type": "BadRequestError", "code": 400, "param": None, "message":
                   "'max_tokens' or 'max_completion_tokens' is too large: 4000. This model's maximum context length "
                   "is 4096 tokens and your request has 200 input tokens (4000 > 4096 - 200)."}
LLAMA_CPP = {"error": {"code": 400, "message": "the request exceeds the available context size, try increasing it",
                       "type": "exceed_context_size_error", "n_prompt_tokens": 70000, "n_ctx": 65536}}


@pytest.mark.parametrize(("body", "message"), [
    ({"error": VLLM_PROMPT}, "prompt is too long: 5000 tokens > 4096 maximum"),
    (VLLM_PROMPT, "prompt is too long: 5000 tokens > 4096 maximum"),  # vLLM's top-level error shape
    ({"error": VLLM_MAX_TOKENS}, "input length and `max_tokens` exceed context limit: 200 + 4000 > 4096, "
                                 "decrease input length or `max_tokens` and try again"),
    (LLAMA_CPP, "prompt is too long: 70000 tokens > 65536 maximum"),
    ({"error": {"message": "Input exceeds the context window", "type": "invalid_request_error"}}, "prompt is too long"),
])
def test_context_overflow_in_the_words_apps_act_on(body, message):
    t = new_translation("anthropic")
    status, out = t.response(400, json.dumps(body).encode())
    err = json.loads(out)
    assert status == 400 and err["type"] == "error" and err["error"]["type"] == "invalid_request_error"
    assert err["error"]["message"].startswith(message)
    t = new_translation("openai-chat")
    status, out = t.response(400, json.dumps(body).encode())
    err = json.loads(out)["error"]
    assert status == 400 and err["code"] == "context_length_exceeded" and err["message"].startswith(message)


def test_other_errors_pass_unchanged():
    t = new_translation("anthropic")
    status, out = t.response(400, json.dumps({"error": {"message": "bad temperature", "type": "BadRequestError"}}).encode())
    assert status == 400 and json.loads(out)["error"]["message"] == "bad temperature"
    status, out = t.response(500, b'{"error": {"message": "context length bug in server"}}')
    assert status == 500 and json.loads(out)["error"]["message"] == "context length bug in server"


def test_long_held_call_sends_keepalives(monkeypatch):
    from llmitm.protocols.local_model import stream
    clock = [1000.0]
    monkeypatch.setattr(stream.time, "monotonic", lambda: clock[0])
    t = new_translation("anthropic", stream=True)
    s = t.stream()
    body = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "' + "P" * 50 + '"}}\n</tool_call>'
    wire = chat_stream(tokens(body, 10))
    events = wire.split(b"\n\n")
    out = [s.feed(e + b"\n\n") for e in events[:3]]  # role, "<tool_call", first body piece
    clock[0] += 11
    out.append(s.feed(events[3] + b"\n\n"))
    out.append(s.feed(events[4] + b"\n\n"))  # no second ping within the interval
    out.extend(s.feed(e + b"\n\n") for e in events[5:] if e)
    out.append(s.finish())
    data = b"".join(b"".join(x) for x in out)
    assert data.count(b"event: ping") == 1
    got = a_summary(read_anthropic_stream(data))
    assert got["calls"] == [("get_weather", {"city": "P" * 50})] and got["stop"] == "tool_use"


def test_call_longer_than_the_cap_is_kept_as_text(monkeypatch):
    from llmitm.protocols.local_model import tool_calls
    monkeypatch.setattr(tool_calls, "MAX_CALL_CHARS", 100)
    body = '<tool_call>\n{"name": "f", "arguments": {"x": "' + "y" * 200 + '"}}\n</tool_call>'
    t = new_translation("openai-chat", stream=True)
    got = read_openai_stream(run_stream(t, chat_stream(tokens(body, 7))))
    assert got["content"] == body and got["calls"] == []
    assert any("too long" in w for w in t.warnings)
