"""Gemini stop reasons, usage and stream edge cases (hand-written wire, checked with the SDKs)."""

from __future__ import annotations

import json

import pytest
from google.genai import types as gtypes
from proto_helpers import FIXTURES, wire_bytes
from sdk_clients import translating_client
from test_gemini_fixtures_sdk import gemini_client

from llmitm.protocols import Translation, gemini
from llmitm.protocols.canonical import CONTENT_FILTER, END, MAX_TOKENS, Context, Usage

USER_TURN = [{"role": "user", "content": "hi"}]


def g_body(parts, finish="STOP", usage=None, **extra) -> dict:
    cand = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        cand["finishReason"] = finish
    body = {"candidates": [cand], "modelVersion": "gemini-2.5-flash", "responseId": "resp1", **extra}
    if usage:
        body["usageMetadata"] = usage
    return body


@pytest.mark.parametrize("finish,chat,anth", [
    ("STOP", "stop", "end_turn"), ("MAX_TOKENS", "length", "max_tokens"), ("SAFETY", "content_filter", "refusal"),
    ("RECITATION", "content_filter", "refusal"), ("PROHIBITED_CONTENT", "content_filter", "refusal"),
    ("MALFORMED_FUNCTION_CALL", "stop", "end_turn"), ("SOMETHING_NEW", "stop", "end_turn")])
def test_finish_reasons(finish, chat, anth):
    body = json.dumps(g_body([{"text": "x"}], finish)).encode()
    t = Translation("openai-chat", "gemini")
    c = translating_client("openai", t, body, stream=False).chat.completions.create(model="m", messages=USER_TURN)
    assert c.choices[0].finish_reason == chat
    if finish in ("MALFORMED_FUNCTION_CALL", "SOMETHING_NEW"):
        assert any(finish in w for w in t.warnings)
    a = translating_client("anthropic", Translation("anthropic", "gemini"), body, stream=False).messages.create(
        model="m", max_tokens=10, messages=USER_TURN)
    assert a.stop_reason == anth


def test_blocked_prompt_has_no_candidates():
    body = json.dumps({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 7,
                                                                                      "totalTokenCount": 7}}).encode()
    c = translating_client("openai", Translation("openai-chat", "gemini"), body, stream=False).chat.completions.create(
        model="m", messages=USER_TURN)
    assert c.choices[0].finish_reason == "content_filter" and c.choices[0].message.content is None
    assert c.usage.prompt_tokens == 7 and c.usage.completion_tokens == 0
    wire = b"data: " + body + b"\r\n\r\n"
    with translating_client("anthropic", Translation("anthropic", "gemini"), wire, stream=True).messages.stream(
            model="m", max_tokens=10, messages=USER_TURN) as s:
        message = s.get_final_message()
    assert message.stop_reason == "refusal" and message.content == []


def test_usage_counts_thoughts_as_output_and_cache_inside_input():
    u = gemini.parse_usage({"promptTokenCount": 100, "cachedContentTokenCount": 60, "candidatesTokenCount": 9,
                            "thoughtsTokenCount": 30, "toolUsePromptTokenCount": 5, "totalTokenCount": 144})
    assert u == Usage(input_total=105, cached_read=60, cache_write=0, output_total=39, reasoning=30)
    assert gemini.render_usage(u) == {"promptTokenCount": 105, "candidatesTokenCount": 9, "thoughtsTokenCount": 30,
                                      "cachedContentTokenCount": 60, "totalTokenCount": 144}
    body = json.dumps(g_body([{"text": "x"}], usage={"promptTokenCount": 100, "cachedContentTokenCount": 60,
                                                      "candidatesTokenCount": 9, "thoughtsTokenCount": 30})).encode()
    a = translating_client("anthropic", Translation("anthropic", "gemini"), body, stream=False).messages.create(
        model="m", max_tokens=10, messages=USER_TURN)
    assert (a.usage.input_tokens, a.usage.cache_read_input_tokens, a.usage.output_tokens) == (40, 60, 39)


def test_truncated_tool_call_for_a_gemini_client_is_dropped_not_executed():
    # Anthropic's tool call cut by max_tokens: the Gemini client gets MAX_TOKENS and no half call.
    rel = "anthropic-messages/anthropic-sdk-python/stream-tool-use-truncated-max-tokens.sse"
    t = Translation("gemini", "anthropic")
    responses = list(gemini_client(t, wire_bytes(rel)).models.generate_content_stream(model="g", contents="hi"))
    assert responses[-1].candidates[0].finish_reason == "MAX_TOKENS"
    assert not [p for r in responses for p in r.candidates[0].content.parts if p.function_call]
    assert any("cut off" in w for w in t.warnings)


def test_keepalive_for_a_gemini_client_is_a_blank_line_the_sdk_skips():
    t = Translation("gemini", "anthropic")
    t.request({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
              client_path="/v1beta/models/g:streamGenerateContent?alt=sse")
    s = t.stream()
    wire = wire_bytes("anthropic-messages/prism/stream-text-basic.sse")
    half = len(wire) // 2
    out = s.keepalive() + s.feed(wire[:half]) + s.keepalive() + s.feed(wire[half:]) + s.finish()
    assert s.keepalive() == []
    body = b"".join(out)
    assert b"\r\n\r\n\r\n" in body or body.startswith(b"\r\n")
    chunks = [gtypes.GenerateContentResponse.model_validate(json.loads(e.strip()[6:]))
              for e in body.split(b"\r\n\r\n") if e.strip()]
    assert chunks[-1].candidates[0].finish_reason == "STOP"
    # …and google-genai's own stream reader agrees.
    import httpx
    from google import genai
    client = genai.Client(api_key="k", http_options=gtypes.HttpOptions(
        base_url="http://llmitm.test", httpx_client=httpx.Client(transport=httpx.MockTransport(
            lambda r: httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)))))
    got = list(client.models.generate_content_stream(model="g", contents="hi"))
    assert "".join(r.text or "" for r in got) == "".join(c.text or "" for c in chunks) and len(got) == len(chunks)


def test_parse_response_stop_and_ids():
    ctx = Context()
    resp = gemini.parse_response(g_body([{"text": "a"}, {"functionCall": {"name": "f", "args": {"x": 1}},
                                                          "thoughtSignature": "c2ln"},
                                         {"functionCall": {"name": "g"}}], "STOP"), ctx)
    assert resp.stop_reason == END and resp.id == "resp1"
    assert [p.id for p in resp.parts[1:]] == ["gcall_resp1_0__thought__c2ln", "gcall_resp1_1"]
    assert [p.arguments for p in resp.parts[1:]] == ['{"x": 1}', "{}"]
    assert gemini.split_tool_id(resp.parts[1].id) == (None, "c2ln")
    assert gemini.split_tool_id("call_9__thought__abc") == ("call_9", "abc")
    assert gemini.parse_response(g_body([], "MAX_TOKENS"), ctx).stop_reason == MAX_TOKENS
    assert gemini.parse_response(g_body([], "SPII"), ctx).stop_reason == CONTENT_FILTER


def test_error_bodies():
    wire = (FIXTURES / "gemini/vercel-ai/google-429-retry-info.json").read_bytes()
    err = gemini.parse_error(429, wire)
    assert err.status == 429 and err.type == "RESOURCE_EXHAUSTED" and "34.4s" in err.message
    assert gemini.parse_error(None, b'{"error":{"code":503,"message":"m","status":"UNAVAILABLE"}}').status == 503
    assert gemini.parse_error(None, b'{"error":{"message":"m","status":"NOT_FOUND"}}').status == 404
    assert gemini.parse_error(502, b"<html>bad gateway</html>").message == "<html>bad gateway</html>"
    body = json.loads(gemini.render_error(err))["error"]
    assert body["code"] == 429 and body["status"] == "RESOURCE_EXHAUSTED"
    assert body["details"] == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "34.4s"}]
    assert gemini.render_stream_error(err).startswith(b"data: {") and gemini.render_stream_error(err).endswith(b"\r\n\r\n")
    # An error inside a 200 from a Gemini upstream is an error for the client too.
    t = Translation("openai-chat", "gemini")
    t.request({"model": "m", "messages": USER_TURN})
    status, out = t.response(200, b'{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}')
    assert status == 400 and json.loads(out)["error"]["message"] == "bad"


def test_sse_comment_from_a_gemini_compatible_upstream_is_a_keepalive():
    wire = (b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"Hi"}]}}],"responseId":"r"}\r\n\r\n'
            b": keep-alive\r\n\r\n"
            b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"!"}]},"finishReason":"STOP"}]}\r\n\r\n')
    t = Translation("anthropic", "gemini")
    t.request({"model": "m", "max_tokens": 10, "stream": True, "messages": USER_TURN})
    s = t.stream()
    out = b"".join(s.feed(wire) + s.finish())
    assert b"event: ping" in out and out.index(b"event: ping") > out.index(b"message_start")
