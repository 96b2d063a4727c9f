"""What Gemini CLI and google-genai send, and what breaks when the upstream is not Gemini
(PROTOCOLS.md §6): thinking kept across a tool loop by a client that drops thought parts, its model
router's upper-case `responseJsonSchema`, URL-safe base64 `inlineData`, and Google Search grounding."""

from __future__ import annotations

import base64
import json

import pytest
from proto_helpers import FIXTURES

from llmitm.protocols import Translation, TranslationError

STREAM = "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
PLAIN = "/v1beta/models/gemini-2.5-pro:generateContent"
SIGNED_TOOL_TURN = FIXTURES / "anthropic-messages/prism/thinking-text-tool-use.json"
THINKING = {"thinkingConfig": {"includeThoughts": True, "thinkingBudget": 2000}, "maxOutputTokens": 9000}
SEARCH_TOOL = {"functionDeclarations": [{"name": "search", "parametersJsonSchema": {
    "type": "object", "properties": {"query": {"type": "string"}}}}]}


def _first_turn(stream: bool) -> list[dict]:
    """The model parts Gemini CLI receives for a recorded Anthropic turn: thinking, text, a tool call."""
    t = Translation("gemini", "anthropic")
    t.request({"contents": [{"role": "user", "parts": [{"text": "search"}]}], "tools": [SEARCH_TOOL],
               "generationConfig": THINKING}, client_path=STREAM if stream else PLAIN)
    status, body = t.response(200, SIGNED_TOOL_TURN.read_bytes(), as_stream=stream)
    assert status == 200
    if not stream:
        return json.loads(body)["candidates"][0]["content"]["parts"]
    return [p for line in body.decode().split("\r\n") if line.startswith("data: ")
            for p in json.loads(line[6:])["candidates"][0]["content"]["parts"]]


@pytest.mark.parametrize("stream", [False, True])
def test_signed_thinking_survives_a_client_that_drops_thought_parts(stream):
    parts = _first_turn(stream)
    calls = [p for p in parts if "functionCall" in p]
    assert len(calls) == 1 and calls[0].get("thoughtSignature")  # where Gemini clients keep it
    kept = [p for p in parts if not p.get("thought") and (p.get("text") or "functionCall" in p)]  # Gemini CLI
    call = calls[0]["functionCall"]
    second = {"contents": [
        {"role": "user", "parts": [{"text": "search"}]}, {"role": "model", "parts": kept},
        {"role": "user", "parts": [{"functionResponse": {"id": call["id"], "name": call["name"],
                                                         "response": {"result": "sunny"}}}]}],
        "tools": [SEARCH_TOOL], "generationConfig": THINKING}
    up = json.loads(Translation("gemini", "anthropic").request(second, upstream_model="claude-3-7-sonnet-20250219",
                                                                client_path=STREAM).body)
    recorded = json.loads(SIGNED_TOOL_TURN.read_text())["content"]
    assert up["thinking"] == {"type": "enabled", "budget_tokens": 2000}  # not turned off for want of a signature
    assert up["messages"][1]["content"] == recorded  # thinking (signed, first), text, tool_use: as recorded


def test_thought_parts_sent_back_with_the_signed_call_are_not_doubled():
    parts = _first_turn(stream=False)
    second = {"contents": [{"role": "user", "parts": [{"text": "search"}]}, {"role": "model", "parts": parts},
                           {"role": "user", "parts": [{"text": "go on"}]}], "generationConfig": THINKING}
    up = json.loads(Translation("gemini", "anthropic").request(second, client_path=STREAM).body)
    assert up["messages"][1]["content"] == json.loads(SIGNED_TOOL_TURN.read_text())["content"]


ROUTER_SCHEMA = {  # Gemini CLI's model router: JSON Schema keywords with Gemini's type names
    "type": "OBJECT",
    "properties": {"reasoning": {"type": "STRING"}, "model_choice": {"type": "STRING", "enum": ["flash", "pro"]}},
    "required": ["reasoning", "model_choice"]}


def _router_request(schema: dict, key: str = "responseJsonSchema") -> dict:
    return {"contents": [{"role": "user", "parts": [{"text": "route"}]}],
            "generationConfig": {"responseMimeType": "application/json", key: schema}}


def test_router_schema_with_gemini_type_names_becomes_strict_json_schema():
    expected = {"type": "object", "additionalProperties": False, "required": ["reasoning", "model_choice"],
                "properties": {"reasoning": {"type": "string"},
                               "model_choice": {"type": "string", "enum": ["flash", "pro"]}}}
    chat = json.loads(Translation("gemini", "openai-chat").request(_router_request(ROUTER_SCHEMA),
                                                                   client_path=PLAIN).body)
    assert chat["response_format"]["json_schema"]["schema"] == expected
    assert chat["response_format"]["json_schema"]["strict"] is True  # every property required, objects closed
    responses = json.loads(Translation("gemini", "openai-responses").request(_router_request(ROUTER_SCHEMA),
                                                                             client_path=PLAIN).body)
    assert responses["text"]["format"]["schema"] == expected and responses["text"]["format"]["strict"] is True
    anthropic = json.loads(Translation("gemini", "anthropic").request(_router_request(ROUTER_SCHEMA),
                                                                      client_path=PLAIN).body)
    assert anthropic["output_config"]["format"]["schema"] == expected


@pytest.mark.parametrize("key", ["responseJsonSchema", "responseSchema"])
def test_schema_with_optional_properties_goes_as_not_strict(key):
    schema = {"type": "OBJECT", "properties": {"a": {"type": "STRING"}, "b": {"type": "ARRAY", "items": {
        "type": "OBJECT", "properties": {"c": {"type": "INTEGER"}}}}}, "required": ["a"]}
    chat = json.loads(Translation("gemini", "openai-chat").request(_router_request(schema, key), client_path=PLAIN).body)
    js = chat["response_format"]["json_schema"]
    assert js["strict"] is False
    assert js["schema"]["additionalProperties"] is False and js["schema"]["properties"]["b"]["type"] == "array"
    assert js["schema"]["properties"]["b"]["items"] == {"type": "object", "properties": {"c": {"type": "integer"}},
                                                        "additionalProperties": False}


# Bytes whose base64 has '+' and '/' in the standard alphabet ('-' and '_' in the URL-safe one).
BYTES = bytes(range(248, 256)) + b"\xfb\xff\xfe"
URL_SAFE = base64.urlsafe_b64encode(BYTES).decode().rstrip("=")  # google-genai's encoding, unpadded here
STANDARD = base64.b64encode(BYTES).decode()


def _media_request(mime: str) -> dict:
    return {"contents": [
        {"role": "user", "parts": [{"inlineData": {"mimeType": mime, "data": URL_SAFE}}]},
        {"role": "model", "parts": [{"functionCall": {"id": "c1", "name": "shot", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"id": "c1", "name": "shot", "response": {"result": "ok"},
                                                         "parts": [{"inlineData": {"mimeType": mime,
                                                                                   "data": URL_SAFE}}]}}]}]}


def test_url_safe_inline_data_reaches_other_upstreams_in_the_standard_alphabet():
    assert "-" in URL_SAFE and "_" in URL_SAFE
    chat = Translation("gemini", "openai-chat").request(_media_request("image/png"), client_path=PLAIN).body.decode()
    assert chat.count(f"data:image/png;base64,{STANDARD}") == 2 and URL_SAFE not in chat
    responses = json.loads(Translation("gemini", "openai-responses").request(_media_request("image/png"),
                                                                             client_path=PLAIN).body)
    assert responses["input"][0]["content"][0]["image_url"] == f"data:image/png;base64,{STANDARD}"
    anthropic = Translation("gemini", "anthropic").request(_media_request("application/pdf"),
                                                           client_path=PLAIN).body.decode()
    assert anthropic.count(json.dumps(STANDARD)) == 2 and URL_SAFE not in anthropic


SEARCH_REQUEST = {"contents": [{"role": "user", "parts": [{"text": "news?"}]}],
                  "tools": [{"googleSearch": {}}, SEARCH_TOOL]}


def test_google_search_grounding_becomes_the_upstreams_web_search():
    anthropic = json.loads(Translation("gemini", "anthropic").request(SEARCH_REQUEST, client_path=PLAIN).body)
    assert {"type": "web_search_20250305", "name": "web_search"} in anthropic["tools"]
    assert [t["name"] for t in anthropic["tools"]] == ["web_search", "search"]
    responses = json.loads(Translation("gemini", "openai-responses").request(SEARCH_REQUEST, client_path=PLAIN).body)
    assert {"type": "web_search"} in responses["tools"]


def test_google_search_without_an_equivalent_is_dropped_with_a_warning_or_refused():
    t = Translation("gemini", "openai-chat")
    chat = json.loads(t.request(SEARCH_REQUEST, client_path=PLAIN).body)
    assert [tool["function"]["name"] for tool in chat["tools"]] == ["search"]
    assert any("web_search" in w and "dropped" in w for w in t.warnings)
    with pytest.raises(TranslationError) as e:
        Translation("gemini", "openai-chat", unsupported_tools="refuse").request(SEARCH_REQUEST, client_path=PLAIN)
    assert e.value.status == 400 and e.value.param == "tools[0].googleSearch"
