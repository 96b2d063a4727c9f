"""Gemini request translation: what the google-genai SDK really sends, parsed and rendered for
OpenAI Chat and Anthropic upstreams; Chat/Anthropic requests rendered for a Gemini upstream; the
fields that are refused (400) or dropped with a warning."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from google import genai
from google.genai import types as gtypes

from llmitm.protocols import Translation, TranslationError, gemini
from llmitm.protocols.canonical import Context

STREAM_PATH = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
PATH = "/v1beta/models/gemini-2.5-flash:generateContent"
WEATHER = gtypes.FunctionDeclaration(
    name="get_weather", description="Weather for a city",
    parameters=gtypes.Schema(type="OBJECT", properties={"city": gtypes.Schema(type="STRING", description="City"),
                                                         "days": gtypes.Schema(type="INTEGER", nullable=True)},
                             required=["city"]))


def sdk_request(stream: bool = False, **kw) -> tuple[str, dict]:
    """(path, body) exactly as google-genai sends them."""
    seen: list = []

    def handler(request: httpx.Request):
        seen.append((request.url.raw_path.decode(), json.loads(request.content)))
        body = {"candidates": [{"content": {"role": "model", "parts": [{"text": "ok"}]}, "finishReason": "STOP"}]}
        if stream:
            return httpx.Response(200, headers={"content-type": "text/event-stream"},
                                  content=b"data: " + json.dumps(body).encode() + b"\r\n\r\n")
        return httpx.Response(200, json=body)

    client = genai.Client(api_key="k", http_options=gtypes.HttpOptions(
        base_url="http://llmitm.test", httpx_client=httpx.Client(transport=httpx.MockTransport(handler))))
    if stream:
        list(client.models.generate_content_stream(model="gemini-2.5-flash", **kw))
    else:
        client.models.generate_content(model="gemini-2.5-flash", **kw)
    return seen[0]


def up(client_body: dict, upstream: str, path: str = PATH, **kw):
    t = Translation("gemini", upstream, **kw)
    out = t.request(client_body, upstream_model="up-model", client_path=path)
    return out, json.loads(out.body), t


HISTORY = [
    gtypes.Content(role="user", parts=[gtypes.Part.from_text(text="Weather in Paris and Rome?"),
                                       gtypes.Part.from_bytes(data=b"\x89PNG....", mime_type="image/png")]),
    gtypes.Content(role="model", parts=[
        gtypes.Part(function_call=gtypes.FunctionCall(name="get_weather", args={"city": "Paris"})),
        gtypes.Part(function_call=gtypes.FunctionCall(name="get_weather", args={"city": "Rome"}))]),
    gtypes.Content(role="user", parts=[
        gtypes.Part.from_function_response(name="get_weather", response={"result": "sunny"}),
        gtypes.Part.from_function_response(name="get_weather", response={"temp": 21, "sky": "rain"})]),
]
CONFIG = gtypes.GenerateContentConfig(
    system_instruction="Be brief.", temperature=0.4, top_p=0.9, top_k=40, max_output_tokens=8000,
    stop_sequences=["END"], tools=[gtypes.Tool(function_declarations=[WEATHER])],
    tool_config=gtypes.ToolConfig(function_calling_config=gtypes.FunctionCallingConfig(mode="AUTO")),
    thinking_config=gtypes.ThinkingConfig(thinking_budget=3000, include_thoughts=True))


def test_sdk_request_to_anthropic():
    path, body = sdk_request(stream=True, contents=HISTORY, config=CONFIG)
    assert ":streamGenerateContent" in path and "alt=sse" in path
    out, a, t = up(body, "anthropic", path, max_tokens_default=1000)
    assert out.path == "/v1/messages" and out.stream and a["stream"] is True and a["model"] == "up-model"
    assert a["system"] == "Be brief."
    # The history's tool turn came from another model (no Anthropic-signed thinking): Anthropic would
    # reject thinking, so the anthropic spoke turns it off and says so.
    assert "thinking" not in a and a["max_tokens"] == 8000 and a["temperature"] == 0.4 and a["top_k"] == 40
    assert any("thinking disabled" in w for w in t.warnings)
    assert a["stop_sequences"] == ["END"]
    user, model, results = a["messages"]
    assert user["content"][0] == {"type": "text", "text": "Weather in Paris and Rome?"}
    assert user["content"][1]["source"] == {"type": "base64", "media_type": "image/png",
                                            "data": base64.b64encode(b"\x89PNG....").decode()}
    calls = [b for b in model["content"] if b["type"] == "tool_use"]
    assert [(c["name"], c["input"]) for c in calls] == [("get_weather", {"city": "Paris"}),
                                                         ("get_weather", {"city": "Rome"})]
    # Gemini gave no ids: synthesized ones pair each functionResponse with its call, in order.
    assert [r["tool_use_id"] for r in results["content"]] == [c["id"] for c in calls]
    assert [r["content"] for r in results["content"]] == ["sunny", json.dumps({"temp": 21, "sky": "rain"})]
    tool = a["tools"][0]
    assert tool["name"] == "get_weather" and tool["description"] == "Weather for a city"
    assert tool["input_schema"] == {"type": "object", "required": ["city"], "properties": {
        "city": {"type": "string", "description": "City"}, "days": {"type": ["integer", "null"]}}}
    assert a["tool_choice"] == {"type": "auto"}


def test_sdk_request_to_openai_chat():
    path, body = sdk_request(contents=HISTORY, config=CONFIG)
    out, c, t = up(body, "openai-chat", path)
    assert out.path == "/v1/chat/completions" and not out.stream and "stream" not in c
    assert c["messages"][0] == {"role": "system", "content": "Be brief."}
    assert c["max_completion_tokens"] == 8000 and c["temperature"] == 0.4 and c["top_p"] == 0.9
    assert c["stop"] == ["END"] and c["reasoning_effort"] == "medium"
    assert "top_k dropped (OpenAI Chat has no top_k)" in t.warnings
    roles = [m["role"] for m in c["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "tool"]
    ids = [tc["id"] for tc in c["messages"][2]["tool_calls"]]
    assert [m["tool_call_id"] for m in c["messages"][3:]] == ids
    assert c["messages"][1]["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")


def test_sdk_json_schema_and_forced_tool():
    config = gtypes.GenerateContentConfig(
        response_mime_type="application/json",
        response_schema=gtypes.Schema(type="OBJECT", properties={"n": gtypes.Schema(type="NUMBER")}),
        tools=[gtypes.Tool(function_declarations=[WEATHER])],
        tool_config=gtypes.ToolConfig(function_calling_config=gtypes.FunctionCallingConfig(
            mode="ANY", allowed_function_names=["get_weather"])))
    _, body = sdk_request(contents="hi", config=config)
    _, c, _ = up(body, "openai-chat")
    assert c["response_format"]["type"] == "json_schema"
    # Objects closed (OpenAI strict mode and Anthropic structured outputs need it); not strict, as "n" is optional.
    closed = {"type": "object", "properties": {"n": {"type": "number"}}, "additionalProperties": False}
    assert c["response_format"]["json_schema"]["schema"] == closed
    assert c["response_format"]["json_schema"]["strict"] is False
    assert c["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    _, a, _ = up(body, "anthropic")
    assert a["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert a["output_config"]["format"]["schema"] == closed


@pytest.mark.parametrize("mode,chat,anth", [("NONE", "none", {"type": "none"}), ("ANY", "required", {"type": "any"}),
                                            ("AUTO", "auto", {"type": "auto"})])
def test_function_calling_modes(mode, chat, anth):
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            "tools": [{"functionDeclarations": [{"name": "f", "parametersJsonSchema": {"type": "object"}}]}],
            "toolConfig": {"functionCallingConfig": {"mode": mode}}}
    assert up(body, "openai-chat")[1]["tool_choice"] == chat
    assert up(body, "anthropic")[1]["tool_choice"] == anth


def test_allowed_function_names_filter_the_tools():
    body = {"contents": [{"parts": [{"text": "hi"}]}],
            "tools": [{"functionDeclarations": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["a", "c"]}}}
    c = up(body, "openai-chat")[1]
    assert [t["function"]["name"] for t in c["tools"]] == ["a", "c"] and c["tool_choice"] == "required"


@pytest.mark.parametrize("tc,effort,budget", [({"thinkingLevel": "HIGH"}, "high", 4096),
                                              ({"thinking_budget": 9000}, "high", 9000),
                                              ({"thinkingBudget": -1}, "medium", 2048),
                                              ({"includeThoughts": True}, "medium", 2048)])
def test_thinking_config(tc, effort, budget):
    body = {"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"maxOutputTokens": 20000,
                                                                           "thinkingConfig": tc}}
    assert up(body, "openai-chat")[1]["reasoning_effort"] == effort
    assert up(body, "anthropic")[1]["thinking"] == {"type": "enabled", "budget_tokens": budget}


def test_thinking_budget_zero_turns_thinking_off():
    body = {"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}}
    assert "reasoning_effort" not in up(body, "openai-chat")[1]
    assert "thinking" not in up(body, "anthropic")[1]


def test_model_and_stream_come_from_the_path():
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    t = Translation("gemini", "openai-chat")
    out = t.request(body, client_path="/v1/models/gemini-3-pro-preview:streamGenerateContent?alt=sse")
    c = json.loads(out.body)
    assert c["model"] == "gemini-3-pro-preview" and c["stream"] is True and out.stream
    assert c["stream_options"] == {"include_usage": True}
    t = Translation("gemini", "anthropic")
    out = t.request(body, client_path="/v1beta/projects/p/locations/l/publishers/google/models/gemini-2.0:generateContent")
    assert json.loads(out.body)["model"] == "gemini-2.0" and not out.stream


def _refused(body: dict, param: str | None, path: str = PATH, status: int = 400):
    for upstream in ("openai-chat", "anthropic"):
        t = Translation("gemini", upstream)
        with pytest.raises(TranslationError) as info:
            t.request(body, client_path=path)
        assert info.value.status == status and info.value.param == param
        code, err = t.error_response(info.value)
        err = json.loads(err)["error"]
        assert err["code"] == status and err["status"] == {400: "INVALID_ARGUMENT", 404: "NOT_FOUND"}[status]


HI = [{"role": "user", "parts": [{"text": "hi"}]}]


@pytest.mark.parametrize("body,param", [
    ({"contents": HI, "generationConfig": {"candidateCount": 2}}, "generationConfig.candidateCount"),
    ({"contents": HI, "generationConfig": {"responseLogprobs": True, "logprobs": 3}}, "generationConfig.responseLogprobs"),
    ({"contents": HI, "generationConfig": {"responseModalities": ["TEXT", "IMAGE"]}}, "generationConfig.responseModalities"),
    ({"contents": HI, "generationConfig": {"responseMimeType": "text/x.enum"}}, "generationConfig.responseMimeType"),
    ({"contents": HI, "generationConfig": {"thinkingConfig": {"thinkingBudget": 100, "thinkingLevel": "LOW"}}},
     "generationConfig.thinkingConfig"),
    ({"contents": HI, "tools": [{"urlContext": {}}]}, "tools[0].urlContext"),
    ({"contents": HI, "tools": [{"code_execution": {}}]}, "tools[0].codeExecution"),
    ({"contents": HI, "cachedContent": "cachedContents/abc"}, "cachedContent"),
    ({"contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "audio/wav", "data": "AAAA"}}]}]},
     "contents[0].parts[0]"),
    ({"contents": [{"role": "user", "parts": [{"fileData": {"mimeType": "application/pdf",
                                                            "fileUri": "gs://bucket/a.pdf"}}]}]}, "contents[0].parts[0]"),
    ({"contents": [{"role": "user", "parts": [{"fileData": {"fileUri": "https://generativelanguage.googleapis.com/v1beta/files/x"}}]}]},
     "contents[0].parts[0]"),
    ({"contents": [*HI, {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]}]},
     "contents[1].parts[0]"),
    ({"contents": [{"role": "system", "parts": [{"text": "x"}]}]}, "contents[0].role"),
    ({"contents": "hi"}, "contents"),
])
def test_refused_with_400(body, param):
    _refused(body, param)


def test_other_methods_are_not_translated():
    _refused({"contents": HI}, None, path="/v1beta/models/gemini-2.5-flash:countTokens", status=404)


def test_dropped_with_warnings():
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}, {"executableCode": {"code": "1"}}]}],
            "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
            "labels": {"a": "b"}, "somethingNew": 1,
            "tools": [{"functionDeclarations": [{"name": "f", "behavior": "NON_BLOCKING"}]}],
            "toolConfig": {"functionCallingConfig": {"mode": "VALIDATED", "streamFunctionCallArguments": True}},
            "generationConfig": {"mediaResolution": "MEDIA_RESOLUTION_LOW", "responseMimeType": "application/json"}}
    _, c, t = up(body, "openai-chat")
    assert c["response_format"] == {"type": "json_object"} and c["tool_choice"] == "auto"
    text = "\n".join(t.warnings)
    for needle in ("code execution", "safetySettings", "'labels'", "'somethingNew'", "'behavior'", "VALIDATED",
                   "streamFunctionCallArguments", "'mediaResolution'"):
        assert needle in text, needle


def test_function_response_with_ids_and_errors():
    body = {"contents": [
        {"role": "user", "parts": [{"text": "go"}]},
        {"role": "model", "parts": [{"functionCall": {"id": "fc-1", "name": "f", "args": {}}},
                                    {"functionCall": {"id": "fc-2", "name": "f", "args": {"x": 1}}}]},
        {"role": "user", "parts": [{"functionResponse": {"id": "fc-2", "name": "f", "response": {"error": "boom"}}},
                                   {"functionResponse": {"id": "fc-1", "name": "f", "response": {"output": "ok"}}}]}]}
    _, a, _ = up(body, "anthropic")
    results = a["messages"][2]["content"]
    assert results == [{"type": "tool_result", "tool_use_id": "fc-2", "content": "boom", "is_error": True},
                       {"type": "tool_result", "tool_use_id": "fc-1", "content": "ok"}]


# ---------------------------------------------------------------------------------------------
# Chat / Anthropic clients → Gemini upstream


def to_gemini(client: str, body: dict, model: str = "gemini-2.5-flash"):
    t = Translation(client, "gemini")
    out = t.request(body, upstream_model=model)
    return out, json.loads(out.body), t


def test_openai_request_to_gemini():
    body = {"model": "gpt-4o", "stream": True, "max_completion_tokens": 300, "temperature": 1.5, "top_p": 0.5,
            "seed": 7, "presence_penalty": 0.1, "stop": ["a", "b"], "reasoning_effort": "high",
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
            "messages": [
                {"role": "system", "content": "sys"},
                {"role": "user", "content": [{"type": "text", "text": "look"},
                                             {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}}]},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"q": 1}'}},
                    {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": ""}}]},
                {"role": "tool", "tool_call_id": "call_2", "content": '{"v": 2}'},
                {"role": "tool", "tool_call_id": "call_1", "content": "plain"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {
                "type": "object", "properties": {"q": {"type": "integer", "exclusiveMinimum": 0}},
                "additionalProperties": False}}},
                      {"type": "function", "function": {"name": "g"}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}}}
    out, g, t = to_gemini("openai-chat", body)
    assert out.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse" and out.stream
    assert out.headers == {"content-type": "application/json"}
    assert g["systemInstruction"] == {"parts": [{"text": "sys"}]}
    user, model, results = g["contents"]
    assert user == {"role": "user", "parts": [{"text": "look"}, {"inlineData": {"mimeType": "image/jpeg", "data": "QUJD"}}]}
    assert model["role"] == "model"
    assert model["parts"][0] == {"functionCall": {"name": "f", "args": {"q": 1}, "id": "call_1"}}  # 2.5: no check
    assert model["parts"][1] == {"functionCall": {"name": "g", "args": {}, "id": "call_2"}}
    assert results["parts"] == [
        {"functionResponse": {"name": "g", "response": {"v": 2}, "id": "call_2"}},
        {"functionResponse": {"name": "f", "response": {"result": "plain"}, "id": "call_1"}}]
    decl = g["tools"][0]["functionDeclarations"][0]
    assert decl["parametersJsonSchema"]["properties"]["q"] == {"type": "integer", "exclusiveMinimum": 0}
    assert g["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}}
    gc = g["generationConfig"]
    assert gc == {"maxOutputTokens": 300, "temperature": 1.5, "topP": 0.5, "seed": 7, "presencePenalty": 0.1,
                  "stopSequences": ["a", "b"], "responseMimeType": "application/json",
                  "responseJsonSchema": {"type": "object"},
                  "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 4096}}
    # The body is a valid google-genai request (the SDK's own types accept every field).
    gtypes.GenerateContentConfig.model_validate(gc)
    [gtypes.Content.model_validate(c) for c in g["contents"]]


def test_anthropic_request_to_gemini():
    body = {"model": "claude", "max_tokens": 2000, "system": [{"type": "text", "text": "S"}],
            "thinking": {"type": "enabled", "budget_tokens": 1500}, "top_k": 5,
            "messages": [{"role": "user", "content": "q"},
                         {"role": "assistant", "content": [
                             {"type": "thinking", "thinking": "hmm", "signature": "anthropic-sig"},
                             {"type": "text", "text": "calling"},
                             {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": [1]}}]},
                         {"role": "user", "content": [
                             {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True,
                              "content": [{"type": "text", "text": "bad"},
                                          {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                       "data": "UE5H"}}]},
                             {"type": "text", "text": "again"}]}],
            "tools": [{"name": "f", "input_schema": {"type": "object"}}], "tool_choice": {"type": "auto"}}
    out, g, t = to_gemini("anthropic", body)
    assert out.path.endswith(":generateContent") and not out.stream
    assert g["generationConfig"] == {"maxOutputTokens": 2000, "topK": 5,
                                     "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 1500}}
    model = g["contents"][1]
    assert model["parts"][0] == {"text": "calling"}  # Anthropic's signed thinking is not sent to Gemini
    assert model["parts"][1]["functionCall"] == {"name": "f", "args": {"a": [1]}, "id": "toolu_1"}
    assert g["contents"][2]["parts"] == [
        {"functionResponse": {"name": "f", "response": {"error": "bad"}, "id": "toolu_1"}},
        {"text": "again"}, {"inlineData": {"mimeType": "image/png", "data": "UE5H"}}]
    assert any("images in tool results moved" in w for w in t.warnings)
    assert any("reasoning from earlier turns" in w for w in t.warnings)
    assert g["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}


@pytest.mark.parametrize("body,param", [
    ({"n": 2}, "n"), ({"logprobs": True}, "logprobs"), ({"logit_bias": {"1": 2}}, "logit_bias"),
    ({"stop": ["1", "2", "3", "4", "5", "6"]}, "stop")])
def test_openai_fields_gemini_refuses(body, param):
    t = Translation("openai-chat", "gemini")
    with pytest.raises(TranslationError) as info:
        t.request({"model": "m", "messages": [{"role": "user", "content": "hi"}], **body})
    assert info.value.param == param


def test_orphan_tool_result_toward_gemini_is_refused():
    t = Translation("openai-chat", "gemini")
    with pytest.raises(TranslationError) as info:
        t.request({"model": "m", "messages": [{"role": "user", "content": "hi"},
                                               {"role": "tool", "tool_call_id": "nope", "content": "x"}]})
    assert "function name" in info.value.message


def test_thinking_off_is_not_sent_to_models_that_always_think():
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "none"}
    assert to_gemini("openai-chat", body)[1].get("generationConfig") == {"thinkingConfig": {"thinkingBudget": 0}}
    _, g, t = to_gemini("openai-chat", dict(body), model="gemini-3-pro-preview")
    assert "generationConfig" not in g and any("cannot be turned off" in w for w in t.warnings)


def test_openapi_schema_conversion():
    schema = {"type": "OBJECT", "propertyOrdering": ["a"], "properties": {
        "a": {"type": "ARRAY", "items": {"type": "STRING", "enum": ["x"]}, "minItems": "1", "nullable": True},
        "b": {"anyOf": [{"type": "INTEGER"}], "nullable": True}}, "required": ["a"]}
    assert gemini.openapi_to_json_schema(schema) == {"type": "object", "required": ["a"], "properties": {
        "a": {"type": ["array", "null"], "items": {"type": "string", "enum": ["x"]}, "minItems": 1},
        "b": {"anyOf": [{"type": "integer"}, {"type": "null"}]}}}


def test_request_path():
    ctx = Context()
    req = gemini.parse_request({"contents": HI}, Context(client_path="/v1beta/models/models-x:generateContent"))
    assert req.model == "models-x"
    req.model, req.stream = "models/gemini-2.5-pro", True
    assert gemini.request_path(req) == "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    req.stream = False
    assert gemini.request_path(req) == "/v1beta/models/gemini-2.5-pro:generateContent"
    assert ctx.warnings == []


def test_thinking_level_minimal_is_low_and_user_text_parts_stay_apart():
    body = {"contents": [{"role": "user", "parts": [{"text": "Summarise:"}, {"text": "a long text"}]}],
            "generationConfig": {"thinkingConfig": {"thinkingLevel": "MINIMAL"}}}
    _, c, _ = up(body, "openai-chat")
    assert c["reasoning_effort"] == "low"
    assert c["messages"][0]["content"] == [{"type": "text", "text": "Summarise:"}, {"type": "text", "text": "a long text"}]


def test_foreign_signed_and_redacted_thinking_round_trip_through_a_gemini_client():
    from llmitm.protocols.canonical import Reasoning, Response, Text
    resp = Response(id="msg_1", model="claude", parts=[Reasoning("plan", "sig-A"), Reasoning("", None, "REDACTED"),
                                                       Text("answer")])
    shown = gemini.render_response(resp, Context())["candidates"][0]["content"]
    parts = shown["parts"]
    assert parts[0]["thought"] is True and parts[0]["text"] == "plan" and parts[1]["text"] == ""
    gtypes.Content.model_validate(shown)  # the signatures are valid base64 for google-genai's bytes field
    body = {"contents": [{"role": "user", "parts": [{"text": "q"}]}, shown, {"role": "user", "parts": [{"text": "more"}]}]}
    _, a, t = up(body, "anthropic")
    assert a["messages"][1]["content"] == [{"type": "thinking", "thinking": "plan", "signature": "sig-A"},
                                           {"type": "redacted_thinking", "data": "REDACTED"},
                                           {"type": "text", "text": "answer"}]
    assert not any("thoughtSignature" in w for w in t.warnings)


def test_signature_placeholder_only_in_the_current_turn_of_models_that_check():
    call = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
        {"id": "call_b", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}
    history = [{"role": "user", "content": "one"}, call,
               {"role": "tool", "tool_call_id": "call_a", "content": "x"},
               {"role": "tool", "tool_call_id": "call_b", "content": "x"},
               {"role": "assistant", "content": "done"}, {"role": "user", "content": "two"},
               {**call, "tool_calls": [{**tc, "id": tc["id"] + "2"} for tc in call["tool_calls"]]},
               {"role": "tool", "tool_call_id": "call_a2", "content": "y"},
               {"role": "tool", "tool_call_id": "call_b2", "content": "y"}]
    body = {"model": "m", "messages": history}
    g = to_gemini("openai-chat", body, model="gemini-3-flash-preview")[1]
    signed = [[p.get("thoughtSignature") for p in c["parts"] if "functionCall" in p]
              for c in g["contents"] if c["role"] == "model" and any("functionCall" in p for p in c["parts"])]
    assert signed == [[None, None], [gemini.DUMMY_SIGNATURE, None]]
    g = to_gemini("openai-chat", body, model="gemini-2.0-flash")[1]
    assert not any("thoughtSignature" in p for c in g["contents"] for p in c["parts"])
