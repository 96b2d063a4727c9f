"""openai-responses request translation, both directions: every request field the spoke handles, and
the 400s for what needs OpenAI's server-side state or cannot be expressed."""

from __future__ import annotations

import json

import pytest

from llmitm.protocols import Translation, TranslationError

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
PDF = "JVBERi0xLjQK"


def r_to(upstream: str, body: dict, **kw) -> tuple[dict, Translation]:
    t = Translation("openai-responses", upstream, **kw)
    up = t.request(body, upstream_model=None)
    assert up.path == {"anthropic": "/v1/messages", "openai-chat": "/v1/chat/completions"}[upstream]
    return json.loads(up.body), t


def to_r(client: str, body: dict) -> tuple[dict, Translation]:
    t = Translation(client, "openai-responses")
    up = t.request(body, upstream_model=None)
    assert up.path == "/v1/responses" and up.headers["content-type"] == "application/json"
    return json.loads(up.body), t


def resp(input, **extra) -> dict:
    return {"model": "gpt-5", "input": input, "store": False, **extra}


# ---------------------------------------------------------------------------------------------
# Responses client → Anthropic / OpenAI Chat upstream


def test_input_string_and_instructions():
    out, t = r_to("anthropic", resp("hello", instructions="be brief", max_output_tokens=300))
    assert out["system"] == "be brief" and out["max_tokens"] == 300
    assert out["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hello"}]}]
    assert t.warnings == []
    out, t = r_to("openai-chat", resp("hello", instructions="be brief", max_output_tokens=300))
    assert out["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]
    assert out["max_completion_tokens"] == 300 and t.warnings == []


def test_message_items_roles_and_system_items():
    items = [
        {"role": "developer", "content": "use French"},
        {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "no emoji"}]},
        {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "salut",
                                                              "annotations": []}]},
        {"role": "user", "content": "again"},
        {"role": "system", "content": "late rule"},
    ]
    out, t = r_to("openai-chat", resp(items, instructions="first"))
    assert out["messages"] == [
        {"role": "system", "content": "first\n\nuse French\n\nno emoji"},
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "salut"},
        {"role": "user", "content": "again"}, {"role": "system", "content": "late rule"}]
    out, t = r_to("anthropic", resp(items, instructions="first"))
    assert out["system"] == "first\n\nuse French\n\nno emoji\n\nlate rule"
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]
    assert any("system message" in w for w in t.warnings)


def test_images_and_files():
    content = [
        {"type": "input_text", "text": "compare"},
        {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "auto"},
        {"type": "input_image", "image_url": "https://example.com/cat.jpg", "detail": "high"},
        {"type": "input_file", "file_data": f"data:application/pdf;base64,{PDF}", "filename": "a.pdf"},
    ]
    out, t = r_to("anthropic", resp([{"role": "user", "content": content}]))
    assert out["messages"][0]["content"] == [
        {"type": "text", "text": "compare"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
         "title": "a.pdf"},
    ]
    assert any("detail" in w for w in t.warnings)
    out, _ = r_to("openai-chat", resp([{"role": "user", "content": content}]))
    assert out["messages"][0]["content"][2] == {"type": "image_url", "image_url": {
        "url": "https://example.com/cat.jpg", "detail": "high"}}
    assert out["messages"][0]["content"][3] == {"type": "file", "file": {
        "file_data": f"data:application/pdf;base64,{PDF}", "filename": "a.pdf"}}


@pytest.mark.parametrize("part, param", [
    ({"type": "input_image", "file_id": "file-1", "detail": "auto"}, "input[0].content[0]"),
    ({"type": "input_image", "image_url": "ftp://x/y.png", "detail": "auto"}, "input[0].content[0]"),
    ({"type": "input_file", "file_id": "file-1"}, "input[0].content[0]"),
    ({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}, "input[0].content[0]"),
])
def test_unsupported_parts_are_400(part, param):
    with pytest.raises(TranslationError) as info:
        r_to("anthropic", resp([{"role": "user", "content": [part]}]))
    assert info.value.status == 400 and info.value.param == param


def test_tool_loop_items():
    items = [
        {"role": "user", "content": "weather in Paris and the time?"},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "two tools"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "checking"}]},
        {"type": "function_call", "id": "fc_1", "call_id": "call_A1", "name": "get_weather",
         "arguments": '{"city":"Paris"}'},
        {"type": "function_call", "id": "fc_2", "call_id": "call_B2", "name": "now", "arguments": ""},
        {"type": "function_call_output", "call_id": "call_A1", "output": "sunny"},
        {"type": "function_call_output", "call_id": "call_B2",
         "output": [{"type": "input_text", "text": "12:00"}]},
        {"role": "user", "content": "thanks"},
    ]
    out, t = r_to("anthropic", resp(items))
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]
    assert out["messages"][1]["content"] == [
        {"type": "text", "text": "checking"},
        {"type": "tool_use", "id": "call_A1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_B2", "name": "now", "input": {}}]
    assert out["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_A1", "content": "sunny"},
        {"type": "tool_result", "tool_use_id": "call_B2", "content": "12:00"},
        {"type": "text", "text": "thanks"}]
    assert any("unsigned reasoning" in w for w in t.warnings)  # OpenAI's reasoning cannot go to Anthropic
    out, _ = r_to("openai-chat", resp(items))
    assert out["messages"][1] == {"role": "assistant", "content": "checking", "tool_calls": [
        {"id": "call_A1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
        {"id": "call_B2", "type": "function", "function": {"name": "now", "arguments": "{}"}}]}
    assert out["messages"][2:] == [{"role": "tool", "tool_call_id": "call_A1", "content": "sunny"},
                                   {"role": "tool", "tool_call_id": "call_B2", "content": "12:00"},
                                   {"role": "user", "content": "thanks"}]


def test_signed_reasoning_item_comes_back_as_anthropic_thinking():
    items = [
        {"role": "user", "content": "hi"},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "think"}],
         "encrypted_content": "llmitm.signature:SIG=="},
        {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": "llmitm.redacted:DATA"},
        {"type": "function_call", "call_id": "toolu_1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "toolu_1", "output": "ok"},
    ]
    out, t = r_to("anthropic", resp(items, reasoning={"effort": "low"}, tools=[{"type": "function", "name": "f"}],
                                    max_output_tokens=4000))
    assert out["messages"][1]["content"][:2] == [{"type": "thinking", "thinking": "think", "signature": "SIG=="},
                                                 {"type": "redacted_thinking", "data": "DATA"}]
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert t.warnings == []


def test_openai_encrypted_reasoning_is_not_sent_to_anthropic():
    items = [{"role": "user", "content": "hi"},
             {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA-openai"},
             {"role": "assistant", "content": "hello"}]
    out, t = r_to("anthropic", resp(items))
    assert out["messages"][1]["content"] == [{"type": "text", "text": "hello"}]
    assert any("encrypted reasoning" in w for w in t.warnings)


TOOLS = [{"type": "function", "name": "get_weather", "description": "Weather", "strict": True,
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
         {"type": "function", "name": "now"}]


@pytest.mark.parametrize("choice, anthropic_choice, chat_choice", [
    ("auto", {"type": "auto"}, "auto"),
    ("required", {"type": "any"}, "required"),
    ("none", {"type": "none"}, "none"),
    ({"type": "function", "name": "now"}, {"type": "tool", "name": "now"},
     {"type": "function", "function": {"name": "now"}}),
])
def test_flat_tools_and_tool_choice(choice, anthropic_choice, chat_choice):
    out, t = r_to("anthropic", resp("hi", tools=TOOLS, tool_choice=choice))
    assert out["tools"] == [
        {"name": "get_weather", "description": "Weather",
         "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
        {"name": "now", "input_schema": {"type": "object", "properties": {}}}]
    assert out["tool_choice"] == anthropic_choice
    assert any("strict" in w for w in t.warnings)
    out, _ = r_to("openai-chat", resp("hi", tools=TOOLS, tool_choice=choice, parallel_tool_calls=False))
    assert out["tools"][0] == {"type": "function", "function": {
        "name": "get_weather", "description": "Weather", "strict": True,
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
    assert out["tool_choice"] == chat_choice and out["parallel_tool_calls"] is False


def test_allowed_tools_filters_the_list():
    out, _ = r_to("anthropic", resp("hi", tools=TOOLS, tool_choice={
        "type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "now"}]}))
    assert [t["name"] for t in out["tools"]] == ["now"] and out["tool_choice"] == {"type": "any"}


@pytest.mark.parametrize("tool", [{"type": "file_search", "vector_store_ids": ["vs_1"]}, {"type": "local_shell"}])
def test_hosted_tools_without_an_equivalent_are_dropped_with_a_warning_or_refused(tool):
    out, t = r_to("anthropic", resp("hi", tools=[tool, *TOOLS]))
    assert [x["name"] for x in out["tools"]] == [x["name"] for x in TOOLS]
    assert any(w.startswith("tools[0]: hosted") and "dropped" in w for w in t.warnings)
    with pytest.raises(TranslationError) as info:
        r_to("anthropic", resp("hi", tools=[tool]), unsupported_tools="refuse")
    assert info.value.param == "tools[0]"


@pytest.mark.parametrize("tools, choice, param", [
    (TOOLS, {"type": "web_search_preview"}, "tool_choice"),
    (TOOLS, {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "web_search"}]}, "tool_choice"),
])
def test_hosted_tool_choice_is_400(tools, choice, param):
    body = resp("hi", tools=tools)
    body["tool_choice"] = choice
    with pytest.raises(TranslationError) as info:
        r_to("anthropic", body)
    assert info.value.param == param


def test_json_schema_and_json_object_formats():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    fmt = {"format": {"type": "json_schema", "name": "thing", "schema": schema, "strict": True}}
    out, _ = r_to("anthropic", resp("hi", text=fmt))
    assert out["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    out, _ = r_to("openai-chat", resp("hi", text=fmt))
    assert out["response_format"] == {"type": "json_schema", "json_schema": {"name": "thing", "schema": schema,
                                                                             "strict": True}}
    out, _ = r_to("openai-chat", resp("hi", text={"format": {"type": "json_object"}}))
    assert out["response_format"] == {"type": "json_object"}
    out, t = r_to("anthropic", resp("hi", text={"format": {"type": "json_object"}}))
    assert "output_config" not in out and any("json_object" in w for w in t.warnings)
    out, t = r_to("openai-chat", resp("hi", text={"format": {"type": "text"}, "verbosity": "low"}))
    assert "response_format" not in out and any("verbosity" in w for w in t.warnings)


@pytest.mark.parametrize("reasoning, budget, chat_effort", [
    ({"effort": "low", "summary": "auto"}, 1024, "low"),
    ({"effort": "medium"}, 2048, "medium"),
    ({"effort": "high", "summary": "detailed"}, 4096, "high"),
    ({"summary": "auto"}, 2048, "medium"),  # a summary asked for: reasoning at the default effort
])
def test_reasoning_effort_and_summary(reasoning, budget, chat_effort):
    out, _ = r_to("anthropic", resp("hi", reasoning=reasoning, max_output_tokens=16000))
    assert out["thinking"] == {"type": "enabled", "budget_tokens": budget}
    out, _ = r_to("openai-chat", resp("hi", reasoning=reasoning))
    assert out["reasoning_effort"] == chat_effort


def test_reasoning_effort_none_turns_thinking_off():
    out, _ = r_to("anthropic", resp("hi", reasoning={"effort": "none"}))
    assert "thinking" not in out


def test_sampling_user_and_stream():
    out, t = r_to("anthropic", resp("hi", temperature=0.4, top_p=0.9, user="u-1", stream=True))
    assert out["temperature"] == 0.4 and out["top_p"] == 0.9 and out["stream"] is True
    assert out["metadata"] == {"user_id": "u-1"}
    out, _ = r_to("openai-chat", resp("hi", safety_identifier="u-2", stream=True))
    assert out["user"] == "u-2" and out["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("field, value", [
    ("previous_response_id", "resp_123"),
    ("conversation", "conv_123"),
    ("conversation", {"id": "conv_123"}),
    ("background", True),
    ("store", True),
    ("prompt", {"id": "pmpt_1"}),
])
def test_stateful_fields_are_400_naming_the_field(field, value):
    body = resp("hi", **{field: value})
    for upstream in ("anthropic", "openai-chat"):
        t = Translation("openai-responses", upstream)
        with pytest.raises(TranslationError) as info:
            t.request(body)
        assert info.value.status == 400 and info.value.param == field and field in info.value.message
        status, err = t.error_response(info.value)
        assert status == 400 and json.loads(err)["error"]["param"] == field
        assert json.loads(err)["error"]["type"] == "invalid_request_error"


def test_store_false_is_quiet_and_absent_store_warns():
    _, t = r_to("anthropic", resp("hi"))
    assert t.warnings == []
    _, t = r_to("anthropic", {"model": "gpt-5", "input": "hi"})
    assert any("store" in w for w in t.warnings)
    _, t = r_to("anthropic", resp("hi", background=False, previous_response_id=None))
    assert t.warnings == []


def test_item_reference_and_unknown_items_are_400():
    with pytest.raises(TranslationError) as info:
        r_to("anthropic", resp([{"type": "item_reference", "id": "msg_1"}]))
    assert info.value.param == "input[0]"
    with pytest.raises(TranslationError) as info:
        r_to("anthropic", resp([{"role": "user", "content": "hi"}, {"type": "web_search_call", "id": "ws"}]))
    assert info.value.param == "input[1]"


def test_logprobs_are_400_and_unknown_fields_warn():
    with pytest.raises(TranslationError) as info:
        r_to("openai-chat", resp("hi", top_logprobs=3))
    assert info.value.param == "top_logprobs"
    with pytest.raises(TranslationError):
        r_to("openai-chat", resp("hi", include=["message.output_text.logprobs"]))
    _, t = r_to("anthropic", resp("hi", include=["reasoning.encrypted_content"], metadata={"a": "b"},
                                  service_tier="flex", truncation="auto", prompt_cache_key="k"))
    assert {w.split("'")[1] for w in t.warnings if w.startswith("request field")} == {
        "metadata", "service_tier", "prompt_cache_key"}
    assert any("truncation" in w for w in t.warnings)


def test_missing_input_is_400():
    with pytest.raises(TranslationError) as info:
        r_to("anthropic", {"model": "gpt-5", "store": False})
    assert info.value.param == "input"


# ---------------------------------------------------------------------------------------------
# OpenAI Chat / Anthropic client → Responses upstream


def test_chat_to_responses_conversation():
    body = {"model": "gpt-4o", "max_completion_tokens": 500, "temperature": 0.3, "user": "u", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "look"},
                                     {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]},
        {"role": "assistant", "content": "calling", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "done"},
        {"role": "developer", "content": "late"}]}
    out, t = to_r("openai-chat", body)
    assert out["instructions"] == "be brief" and out["max_output_tokens"] == 500 and out["store"] is False
    assert out["temperature"] == 0.3 and out["user"] == "u"
    assert out["input"] == [
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "look"},
            {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "auto"}]},
        {"type": "message", "role": "assistant", "content": "calling"},
        {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": '{"x":1}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "done"},
        {"type": "message", "role": "system", "content": "late"}]
    assert t.warnings == []


def test_anthropic_to_responses_tools_thinking_and_format():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    body = {"model": "claude-x", "max_tokens": 8000, "stream": True, "system": "sys",
            "thinking": {"type": "enabled", "budget_tokens": 10000},
            "tools": [{"name": "f", "description": "d", "input_schema": schema}],
            "tool_choice": {"type": "tool", "name": "f", "disable_parallel_tool_use": True},
            "output_config": {"format": {"type": "json_schema", "schema": schema}},
            "messages": [{"role": "user", "content": "hi"},
                         {"role": "assistant", "content": [
                             {"type": "thinking", "thinking": "hmm", "signature": "S"},
                             {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": "b"}}]},
                         {"role": "user", "content": [
                             {"type": "tool_result", "tool_use_id": "toolu_1", "content": "r", "is_error": True}]}]}
    out, t = to_r("anthropic", body)
    assert out["instructions"] == "sys" and out["max_output_tokens"] == 8000 and out["stream"] is True
    assert out["tools"] == [{"type": "function", "name": "f", "parameters": schema, "description": "d",
                             "strict": False}]
    assert out["tool_choice"] == {"type": "function", "name": "f"} and out["parallel_tool_calls"] is False
    assert out["reasoning"] == {"effort": "high", "summary": "auto"}
    assert out["text"] == {"format": {"type": "json_schema", "name": "response", "schema": schema, "strict": True}}
    assert out["input"] == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        {"type": "function_call", "call_id": "toolu_1", "name": "f", "arguments": '{"a": "b"}'},
        {"type": "function_call_output", "call_id": "toolu_1", "output": "r"}]
    assert any("is_error" in w for w in t.warnings) and any("reasoning" in w for w in t.warnings)
    assert "stream_options" not in out


def test_to_responses_refusals_and_clamps():
    with pytest.raises(TranslationError) as info:
        to_r("openai-chat", {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stop": ["END"]})
    assert info.value.param == "stop"
    with pytest.raises(TranslationError) as info:
        to_r("openai-chat", {"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 2})
    assert info.value.param == "n"
    with pytest.raises(TranslationError) as info:
        to_r("openai-chat", {"model": "m", "messages": [{"role": "user", "content": "hi"}], "logprobs": True})
    assert info.value.param == "logprobs"
    out, t = to_r("openai-chat", {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5,
                                  "seed": 1, "response_format": {"type": "json_object"}})
    assert out["max_output_tokens"] == 16 and out["text"] == {"format": {"type": "json_object"}}
    assert any("seed" in w for w in t.warnings) and any("max_output_tokens" in w for w in t.warnings)
    out, t = to_r("anthropic", {"model": "m", "max_tokens": 100, "top_k": 5,
                                "messages": [{"role": "user", "content": "hi"}]})
    assert "top_k" not in out and any("top_k" in w for w in t.warnings)


def test_custom_tools_become_functions_with_one_string_argument():
    apply_patch = {"type": "custom", "name": "apply_patch", "description": "Edit files",
                   "format": {"type": "grammar", "syntax": "lark", "definition": "start: begin_patch"}}
    items = [{"role": "user", "content": "fix it"},
             {"type": "custom_tool_call", "call_id": "call_P", "name": "apply_patch", "input": "*** Begin Patch"},
             {"type": "custom_tool_call_output", "call_id": "call_P", "output": "Done!"}]
    out, t = r_to("anthropic", resp(items, tools=[apply_patch], tool_choice={"type": "custom", "name": "apply_patch"}))
    tool = out["tools"][0]
    assert tool["name"] == "apply_patch" and tool["description"] == "Edit files"
    assert tool["input_schema"]["required"] == ["input"] and "start: begin_patch" in \
        tool["input_schema"]["properties"]["input"]["description"]
    assert out["tool_choice"] == {"type": "tool", "name": "apply_patch"}
    assert out["messages"][1]["content"] == [{"type": "tool_use", "id": "call_P", "name": "apply_patch",
                                              "input": {"input": "*** Begin Patch"}}]
    assert out["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "call_P", "content": "Done!"}]
    assert any("grammar is not enforced" in w for w in t.warnings)
    assert t.ctx.freeform_tools == {"apply_patch"}
    out, t = r_to("openai-chat", resp("hi", tools=[{"type": "custom", "name": "note", "format": {"type": "text"}}]))
    assert out["tools"][0]["function"]["parameters"]["properties"]["input"]["type"] == "string"
    assert t.warnings == []
