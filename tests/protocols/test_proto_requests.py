"""Request translation, both directions: every field each protocol can send, including the refusals."""

from __future__ import annotations

import json

import pytest

from llmitm.protocols import Translation, TranslationError

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def c_to_a(body: dict, **kw) -> tuple[dict, Translation]:
    t = Translation("openai-chat", "anthropic", **kw)
    up = t.request(body, upstream_model=None)
    assert up.path == "/v1/messages"
    return json.loads(up.body), t


def a_to_c(body: dict) -> tuple[dict, Translation]:
    t = Translation("anthropic", "openai-chat")
    up = t.request(body, upstream_model=None)
    assert up.path == "/v1/chat/completions"
    return json.loads(up.body), t


def chat(*messages, **extra) -> dict:
    return {"model": "gpt-4o", "messages": list(messages), **extra}


def msgs(*messages, **extra) -> dict:
    return {"model": "claude-x", "max_tokens": 500, "messages": list(messages), **extra}


USER = {"role": "user", "content": "hi"}

# ---------------------------------------------------------------------------------------------
# OpenAI Chat client → Anthropic upstream


def test_c_to_a_system_prompts_joined_and_roles():
    out, t = c_to_a(chat({"role": "system", "content": "be brief"},
                         {"role": "developer", "content": [{"type": "text", "text": "use French"}]},
                         USER, {"role": "assistant", "content": "salut"}, {"role": "user", "content": "again"}))
    assert out["system"] == "be brief\n\nuse French"
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]
    assert out["messages"][1]["content"] == [{"type": "text", "text": "salut"}]
    assert t.warnings == []


def test_c_to_a_mid_conversation_system_is_hoisted_with_warning():
    out, t = c_to_a(chat(USER, {"role": "system", "content": "now in English"}))
    assert out["system"] == "now in English"
    assert any("system message" in w for w in t.warnings)


def test_c_to_a_model_rewrite_and_max_tokens_default():
    t = Translation("openai-chat", "anthropic", max_tokens_default=1234)
    out = json.loads(t.request(chat(USER), upstream_model="claude-sonnet-4-5").body)
    assert out["model"] == "claude-sonnet-4-5" and out["max_tokens"] == 1234
    out = json.loads(t.request(chat(USER, max_completion_tokens=77), upstream_model=None).body)
    assert out["model"] == "gpt-4o" and out["max_tokens"] == 77
    out, _ = c_to_a(chat(USER, max_tokens=55))
    assert out["max_tokens"] == 55


def test_c_to_a_images_and_multipart():
    out, t = c_to_a(chat({"role": "user", "content": [
        {"type": "text", "text": "compare"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}},
    ]}))
    assert out["messages"][0]["content"] == [
        {"type": "text", "text": "compare"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]
    assert any("detail" in w for w in t.warnings)


@pytest.mark.parametrize("part, param", [
    ({"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AAAA"}}, "messages[0].content[0]"),
    ({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}, "messages[0].content[0]"),
    ({"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}, "messages[0].content[0]"),
])
def test_c_to_a_unsupported_parts_are_400(part, param):
    with pytest.raises(TranslationError) as info:
        c_to_a(chat({"role": "user", "content": [part]}))
    assert info.value.status == 400 and info.value.param == param


def test_c_to_a_stop_temperature_top_p():
    out, t = c_to_a(chat(USER, stop="END", temperature=0.5, top_p=0.9))
    assert out["stop_sequences"] == ["END"] and out["temperature"] == 0.5 and out["top_p"] == 0.9
    out, t = c_to_a(chat(USER, stop=["a", " ", "b"], temperature=1.7))
    assert out["stop_sequences"] == ["a", "b"] and out["temperature"] == 1
    assert any("temperature" in w for w in t.warnings) and any("stop" in w for w in t.warnings)


TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
         {"type": "function", "function": {"name": "now"}}]


@pytest.mark.parametrize("choice, expected", [
    ("auto", {"type": "auto"}),
    ("required", {"type": "any"}),
    ("none", {"type": "none"}),
    ({"type": "function", "function": {"name": "now"}}, {"type": "tool", "name": "now"}),
])
def test_c_to_a_tools_and_tool_choice(choice, expected):
    out, _ = c_to_a(chat(USER, tools=TOOLS, tool_choice=choice))
    assert out["tools"] == [
        {"name": "get_weather", "description": "Weather",
         "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert out["tool_choice"] == expected


def test_c_to_a_parallel_tool_calls_false():
    out, _ = c_to_a(chat(USER, tools=TOOLS, parallel_tool_calls=False))
    assert out["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    out, _ = c_to_a(chat(USER, tools=TOOLS, tool_choice="required", parallel_tool_calls=False))
    assert out["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


def test_c_to_a_allowed_tools_filters_the_list():
    out, _ = c_to_a(chat(USER, tools=TOOLS, tool_choice={"type": "allowed_tools", "allowed_tools": {
        "mode": "required", "tools": [{"type": "function", "function": {"name": "now"}}]}}))
    assert [t["name"] for t in out["tools"]] == ["now"] and out["tool_choice"] == {"type": "any"}


def test_c_to_a_tool_history_ids_stable_and_results_first():
    out, _ = c_to_a(chat(
        USER,
        {"role": "assistant", "content": "checking", "tool_calls": [
            {"id": "call_A1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            {"id": "call_B2", "type": "function", "function": {"name": "now", "arguments": ""}}]},
        {"role": "tool", "tool_call_id": "call_A1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_B2", "content": [{"type": "text", "text": "noon"}]},
        {"role": "user", "content": "and tomorrow?"},
        tools=TOOLS))
    assistant, results = out["messages"][1], out["messages"][2]
    assert assistant == {"role": "assistant", "content": [
        {"type": "text", "text": "checking"},
        {"type": "tool_use", "id": "call_A1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_B2", "name": "now", "input": {}}]}
    assert results == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "call_A1", "content": "sunny"},
        {"type": "tool_result", "tool_use_id": "call_B2", "content": "noon"},
        {"type": "text", "text": "and tomorrow?"}]}
    assert len(out["messages"]) == 3


def test_c_to_a_tool_ids_sanitized_consistently():
    out, _ = c_to_a(chat(
        USER,
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "functions.now:0", "type": "function", "function": {"name": "now", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "functions.now:0", "content": "noon"}, tools=TOOLS))
    assert out["messages"][1]["content"][0]["id"] == "functions_now_0"
    assert out["messages"][2]["content"][0]["tool_use_id"] == "functions_now_0"


@pytest.mark.parametrize("field, value", [
    ("n", 2), ("logit_bias", {"50256": -100}), ("logprobs", True), ("top_logprobs", 3),
    ("audio", {"voice": "alloy", "format": "wav"}), ("modalities", ["text", "audio"]),
    ("web_search_options", {}),
])
def test_c_to_a_inexpressible_fields_are_400_naming_the_field(field, value):
    t = Translation("openai-chat", "anthropic")
    with pytest.raises(TranslationError) as info:
        t.request(chat(USER, **{field: value}), upstream_model=None)
    assert info.value.status == 400 and info.value.param == field and field in info.value.message
    status, body = t.error_response(info.value)
    assert status == 400
    assert json.loads(body)["error"] == {"message": info.value.message, "type": "invalid_request_error",
                                         "param": field, "code": None}


@pytest.mark.parametrize("field, value", [
    ("seed", 7), ("presence_penalty", 0.5), ("store", True), ("metadata", {"a": "b"}), ("service_tier", "auto"),
    ("prediction", {"type": "content", "content": "x"}),
])
def test_c_to_a_harmless_fields_are_dropped_with_a_warning(field, value):
    out, t = c_to_a(chat(USER, **{field: value}))
    assert field not in out and any(field in w for w in t.warnings)


def test_c_to_a_harmless_defaults_are_not_warnings():
    out, t = c_to_a(chat(USER, n=1, logprobs=False, modalities=["text"]))
    assert t.warnings == [] and "n" not in out


def test_c_to_a_user_and_response_format():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    out, _ = c_to_a(chat(USER, user="u-1", response_format={"type": "json_schema", "json_schema": {
        "name": "A", "schema": schema, "strict": True}}))
    assert out["metadata"] == {"user_id": "u-1"}
    assert out["output_config"] == {"format": {"type": "json_schema", "schema": schema}}


def test_c_to_a_stream_flags():
    out, _ = c_to_a(chat(USER, stream=True, stream_options={"include_usage": True}))
    assert out["stream"] is True and "stream_options" not in out


@pytest.mark.parametrize("effort, budget", [("low", 1024), ("medium", 2048), ("high", 4096)])
def test_c_to_a_reasoning_effort_to_thinking_budget(effort, budget):
    out, t = c_to_a(chat(USER, reasoning_effort=effort, max_completion_tokens=10000, temperature=0.3))
    assert out["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert out["max_tokens"] == 10000 and "temperature" not in out
    assert any("temperature" in w for w in t.warnings)


def test_c_to_a_reasoning_budget_fits_under_max_tokens():
    out, _ = c_to_a(chat(USER, reasoning_effort="high"), max_tokens_default=4096)
    assert out["thinking"]["budget_tokens"] < out["max_tokens"]
    out, _ = c_to_a(chat(USER, reasoning_effort="high", max_completion_tokens=3000))
    assert out["max_tokens"] == 3000 and out["thinking"]["budget_tokens"] == 1500
    out, t = c_to_a(chat(USER, reasoning_effort="high", max_completion_tokens=900))
    assert "thinking" not in out and any("thinking disabled" in w for w in t.warnings)


def test_c_to_a_reasoning_none_means_no_thinking():
    out, t = c_to_a(chat(USER, reasoning_effort="none"))
    assert "thinking" not in out and t.warnings == []


def test_c_to_a_forced_tool_disables_thinking():
    out, t = c_to_a(chat(USER, reasoning_effort="low", tools=TOOLS, tool_choice="required"))
    assert "thinking" not in out and any("tool_choice" in w for w in t.warnings)


def test_c_to_a_unsigned_reasoning_never_reaches_anthropic():
    history = [USER, {"role": "assistant", "content": "hello", "reasoning_content": "they greeted me"},
               {"role": "user", "content": "more"}]
    out, t = c_to_a(chat(*history))
    assert all(b["type"] != "thinking" for m in out["messages"] for b in m["content"])
    assert any("unsigned reasoning" in w for w in t.warnings)


def test_c_to_a_signed_thinking_blocks_are_kept_and_keep_thinking_on():
    history = [USER, {"role": "assistant", "content": None,
                      "thinking_blocks": [{"type": "thinking", "thinking": "plan", "signature": "sig=="}],
                      "tool_calls": [{"id": "call_1", "type": "function",
                                      "function": {"name": "now", "arguments": "{}"}}]},
               {"role": "tool", "tool_call_id": "call_1", "content": "noon"}]
    out, _ = c_to_a(chat(*history, tools=TOOLS, reasoning_effort="low", max_completion_tokens=5000))
    assert out["messages"][1]["content"][0] == {"type": "thinking", "thinking": "plan", "signature": "sig=="}
    assert out["thinking"]["type"] == "enabled"


def test_c_to_a_tool_loop_without_signed_thinking_turns_thinking_off():
    history = [USER, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "now", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "noon"}]
    out, t = c_to_a(chat(*history, tools=TOOLS, reasoning_effort="low", max_completion_tokens=5000))
    assert "thinking" not in out and any("signed thinking" in w for w in t.warnings)


@pytest.mark.parametrize("body, param", [
    ({"model": "x"}, "messages"),
    ({"model": "x", "messages": [{"role": "function", "content": "x", "name": "f"}]}, "messages[0].role"),
    ({"model": "x", "messages": [USER], "tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools[0]"),
])
def test_c_to_a_malformed_requests(body, param):
    with pytest.raises(TranslationError) as info:
        c_to_a(body)
    assert info.value.param == param


# ---------------------------------------------------------------------------------------------
# Anthropic client → OpenAI Chat upstream


def test_a_to_c_system_roles_and_model():
    t = Translation("anthropic", "openai-chat")
    out = json.loads(t.request(msgs(USER, {"role": "assistant", "content": [{"type": "text", "text": "yo"}]},
                                    system=[{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}},
                                            {"type": "text", "text": "French"}]),
                               upstream_model="qwen3").body)
    assert out["model"] == "qwen3"
    assert out["messages"] == [{"role": "system", "content": "be brief\n\nFrench"}, {"role": "user", "content": "hi"},
                               {"role": "assistant", "content": "yo"}]
    assert out["max_completion_tokens"] == 500
    assert any("cache_control" in w for w in t.warnings)


def test_a_to_c_images():
    out, _ = a_to_c(msgs({"role": "user", "content": [
        {"type": "text", "text": "what?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]}))
    assert out["messages"][0]["content"] == [
        {"type": "text", "text": "what?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]


def test_a_to_c_stop_sequences_always_a_list_and_sampling():
    out, t = a_to_c(msgs(USER, stop_sequences=["###"], temperature=0.2, top_p=0.8, top_k=40))
    assert out["stop"] == ["###"] and out["temperature"] == 0.2 and out["top_p"] == 0.8
    assert "top_k" not in out and any("top_k" in w for w in t.warnings)


@pytest.mark.parametrize("choice, expected, parallel", [
    ({"type": "auto"}, "auto", None),
    ({"type": "any"}, "required", None),
    ({"type": "none"}, "none", None),
    ({"type": "tool", "name": "now"}, {"type": "function", "function": {"name": "now"}}, None),
    ({"type": "auto", "disable_parallel_tool_use": True}, "auto", False),
])
def test_a_to_c_tools_and_tool_choice(choice, expected, parallel):
    tools = [{"name": "now", "description": "time", "input_schema": {"type": "object", "properties": {}}}]
    out, _ = a_to_c(msgs(USER, tools=tools, tool_choice=choice))
    assert out["tools"] == [{"type": "function", "function": {
        "name": "now", "description": "time", "parameters": {"type": "object", "properties": {}}}}]
    assert out["tool_choice"] == expected
    assert out.get("parallel_tool_calls") == parallel


def test_a_to_c_tool_history():
    out, t = a_to_c(msgs(
        USER,
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}},
            {"type": "tool_use", "id": "toolu_2", "name": "now", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "-3C"}]},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "boom", "is_error": True},
            {"type": "text", "text": "thanks"}]}))
    assert out["messages"][1] == {"role": "assistant", "content": "Let me look.", "tool_calls": [
        {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}},
        {"id": "toolu_2", "type": "function", "function": {"name": "now", "arguments": "{}"}}]}
    assert out["messages"][2:] == [{"role": "tool", "tool_call_id": "toolu_1", "content": "-3C"},
                                   {"role": "tool", "tool_call_id": "toolu_2", "content": "boom"},
                                   {"role": "user", "content": "thanks"}]
    assert any("is_error" in w for w in t.warnings) and any("reasoning" in w for w in t.warnings)


@pytest.mark.parametrize("budget, effort", [(1024, "low"), (4000, "medium"), (16000, "high")])
def test_a_to_c_thinking_budget_to_effort(budget, effort):
    out, _ = a_to_c(msgs(USER, max_tokens=20000, thinking={"type": "enabled", "budget_tokens": budget}))
    assert out["reasoning_effort"] == effort


def test_a_to_c_thinking_disabled_and_adaptive():
    out, _ = a_to_c(msgs(USER, thinking={"type": "disabled"}))
    assert "reasoning_effort" not in out
    out, _ = a_to_c(msgs(USER, thinking={"type": "adaptive"}, output_config={"effort": "low"}))
    assert out["reasoning_effort"] == "low"


def test_a_to_c_stream_always_asks_for_usage():
    out, _ = a_to_c(msgs(USER, stream=True))
    assert out["stream"] is True and out["stream_options"] == {"include_usage": True}


def test_a_to_c_metadata_and_output_format():
    schema = {"type": "object"}
    out, _ = a_to_c(msgs(USER, metadata={"user_id": "abc"},
                         output_config={"format": {"type": "json_schema", "schema": schema}}))
    assert out["user"] == "abc"
    assert out["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "response", "schema": schema, "strict": True}}


@pytest.mark.parametrize("body, param", [
    (msgs(USER, tools=[{"type": "web_search_20250305", "name": "web_search"}]), "tools[0]"),
    (msgs(USER, container="c_1"), "container"),
    ({"model": "x", "max_tokens": 5}, "messages"),
    (msgs({"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}),
     "messages[0].content[0]"),
])
def test_a_to_c_inexpressible_requests_are_400(body, param):
    t = Translation("anthropic", "openai-chat")
    with pytest.raises(TranslationError) as info:
        t.request(body, upstream_model=None)
    assert info.value.param == param
    status, err = t.error_response(info.value)
    assert status == 400
    assert json.loads(err) == {"type": "error", "error": {"type": "invalid_request_error",
                                                          "message": info.value.message}}


def test_a_to_c_pdf_document_becomes_file_part():
    out, _ = a_to_c(msgs({"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"},
         "title": "a.pdf"}]}))
    assert out["messages"][0]["content"] == [{"type": "file", "file": {
        "file_data": "data:application/pdf;base64,JVBER", "filename": "a.pdf"}}]


def test_a_to_c_unknown_fields_warn():
    out, t = a_to_c(msgs(USER, service_tier="auto", some_new_field=1))
    assert "service_tier" not in out and any("service_tier" in w for w in t.warnings)
    assert any("some_new_field" in w for w in t.warnings)


def test_a_to_c_long_user_id_is_hashed_with_warning():
    long_id = "user_" + "a" * 64 + "_account__session_1234"
    out, t = a_to_c(msgs(USER, metadata={"user_id": long_id}))
    assert len(out["user"]) == 64 and out["user"] != long_id[:64]
    assert any("user id" in w for w in t.warnings)


def _exchange_requests():
    from proto_helpers import FIXTURES

    out = []
    for path in sorted((FIXTURES / "anthropic-messages").rglob("*.exchange.json")):
        for k, pair in enumerate(json.loads(path.read_bytes())):
            out.append(pytest.param(pair["request"]["body"], id=f"{path.name}[{k}]"))
    return out


@pytest.mark.parametrize("body", _exchange_requests())
def test_recorded_anthropic_sdk_requests_translate_to_consistent_chat_requests(body):
    if "container" in body:  # continues a server-side code-execution container: refused, naming it
        with pytest.raises(TranslationError, match="container"):
            a_to_c(body)
        return
    out, t = a_to_c(body)
    if any(b.get("type") == "server_tool_use" for m in body["messages"] if isinstance(m["content"], list)
           for b in m["content"]):
        assert any("server_tool_use" in w for w in t.warnings)
    called: set[str] = set()
    for m in out["messages"]:
        assert m["role"] in ("system", "user", "assistant", "tool")
        called.update(tc["id"] for tc in m.get("tool_calls") or [])
        if m["role"] == "tool":  # every result answers a call made earlier (one recording is a deliberate 400)
            assert m["tool_call_id"] in called or body["messages"][0]["content"].startswith("What's the weather in SF in")
    assert out["max_completion_tokens"] == body["max_tokens"]
    fmt = (body.get("output_config") or {}).get("format")
    if fmt:
        assert out["response_format"]["json_schema"]["schema"] == fmt["schema"]
    assert [f["function"]["name"] for f in out.get("tools", [])] == [x["name"] for x in body.get("tools", [])]


def test_c_to_a_file_parts():
    import base64

    pdf, txt = "JVBERi0xLjQK", base64.b64encode(b"plain words").decode()
    out, _ = c_to_a(chat({"role": "user", "content": [
        {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{pdf}", "filename": "a.pdf"}},
        {"type": "file", "file": {"file_data": f"data:text/plain;base64,{txt}", "filename": "b.txt"}}]}))
    assert out["messages"][0]["content"] == [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": pdf}, "title": "a.pdf"},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain words"},
         "title": "b.txt"}]
    with pytest.raises(TranslationError) as info:
        c_to_a(chat({"role": "user", "content": [
            {"type": "file", "file": {"file_data": "data:application/zip;base64,UEsDBA==", "filename": "c.zip"}}]}))
    assert info.value.param == "messages[0].content[0]"
    with pytest.raises(TranslationError):
        c_to_a(chat({"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc"}}]}))
