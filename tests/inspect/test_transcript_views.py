"""The llmitm contentview turns recorded bodies of all four protocols, streamed or whole, into a
transcript, and mitmproxy picks it on its own for AI flows (on mitmproxy 11 and 12 alike)."""

from __future__ import annotations

import pytest

from tests.inspect.inspect_helpers import PATHS, fixture_response, flow_for, render, request_in

GEMINI_STREAM = "/v1beta/models/gemini-3-pro-preview:streamGenerateContent?alt=sse"
GEMINI_WHOLE = "/v1beta/models/gemini-3-pro-preview:generateContent"


@pytest.mark.parametrize("protocol", ["anthropic", "openai-chat", "openai-responses", "gemini"])
def test_request_transcript_shows_every_part_of_the_conversation(llmitm_view, protocol):
    path, body = request_in(protocol)
    flow = flow_for(path, body)
    name, text = render(flow, flow.request, "auto")
    assert "llmitm" in name.lower()  # chosen over JSON without being asked
    assert "model: claude-haiku-4-5" in text
    assert "max_tokens 1024" in text
    assert "You are a weather assistant." in text
    assert 'get_weather(location: string*, units: "c"|"f"*)' in text
    assert "[image image/png, 100 bytes]" in text
    assert "→ tool call get_weather" in text
    assert '  "location": "San Francisco, CA",' in text  # arguments pretty-printed
    assert "← tool result for" in text and "Sunny" in text
    assert text.index("[0] user") < text.index("[1] assistant") < text.index("[2] user")


@pytest.mark.parametrize(("path", "fixture", "expected"), [
    (PATHS["anthropic"], "anthropic-messages/prism/stream-thinking-signature.sse",
     ["streamed: 47 events", "reasoning, signature present", "Deep Thought", "stop reason: end",
      "output 452", "content_block_delta ×39", "message_start → content_block_start → ping → content_block_delta ×24"]),
    (PATHS["anthropic"], "anthropic-messages/prism/thinking-signature.json",
     ["reasoning, signature present", "stop reason: end"]),
    (PATHS["anthropic"], "anthropic-messages/anthropic-sdk-python/stream-tool-use-truncated-max-tokens.sse",
     ["→ tool call make_file", "(not valid JSON: cut off?)", "stop reason: max_tokens"]),
    (PATHS["anthropic"], "anthropic-messages/anthropic-sdk-python/stream-refusal-stop-details.sse",
     ["stop reason: content_filter"]),
    (PATHS["openai-chat"], "openai-chat/openai-python/stream-tool-call-pydantic.sse",
     ["streamed: 18 events", '"city": "Edinburgh"', "stop reason: tool_use", "input 76", "output 24 (reasoning 0)",
      "chat.completion.chunk ×17, [DONE] ×1"]),
    (PATHS["openai-chat"], "openai-chat/openai-python/refusal.json", ["refusal:", "can't assist with that", "stop reason: end"]),
    (PATHS["openai-chat"], "openai-chat/vercel-ai/deepseek-reasoning.json", ["reasoning, signature absent"]),
    (PATHS["openai-responses"], "openai-responses/prism/stream-reasoning-then-function-call.sse",
     ['"query": "Detroit Tigers', "stop reason: tool_use", "reasoning 512)", "response.function_call_arguments.delta ×"]),
    (PATHS["openai-responses"], "openai-responses/prism/reasoning-then-text.json",
     ["reasoning, signature absent", "I should introduce myself", "output 112 (reasoning 64)"]),
    (GEMINI_STREAM, "gemini/prism/stream-thought-then-function-call.sse",
     ["→ tool call weather", "thought signature present", '"city": "San Francisco"', "reasoning 95)", "chunk ×4",
      "Gemini streams have no end marker"]),
    (GEMINI_WHOLE, "gemini/prism/function-calls-parallel-2.json", ["stop reason: tool_use"]),
    (PATHS["anthropic"], "anthropic-messages/anthropic-sdk-python/error-429-rate-limit.json", []),
])
def test_response_transcript_assembles_streams_and_reads_whole_bodies(llmitm_view, path, fixture, expected):
    body, content_type = fixture_response(fixture)
    status = 429 if "429" in fixture else 200
    flow = flow_for(path, b"{}", body, content_type, status)
    name, text = render(flow, flow.response, "auto")
    assert "llmitm" in name.lower()
    for fragment in expected:
        assert fragment in text, f"{fragment!r} missing from:\n{text}"
    if status == 429:
        assert "error 429 (rate_limit_error" in text


def test_stream_shows_time_to_first_byte_from_the_flow_timestamps(llmitm_view):
    body, content_type = fixture_response("anthropic-messages/prism/stream-text-basic.sse")
    flow = flow_for(PATHS["anthropic"], b"{}", body, content_type)
    flow.request.timestamp_start, flow.request.timestamp_end = 100.0, 100.01
    flow.response.timestamp_start, flow.response.timestamp_end = 100.26, 101.5
    _, text = render(flow, flow.response)
    assert "time to first byte (response headers): 250 ms" in text
    assert "total: 1,500 ms" in text


def test_a_refused_field_is_named_and_the_rest_still_shown(llmitm_view):
    body = b'{"model": "gpt-5", "previous_response_id": "resp_1", "input": "hello there", "store": false}'
    flow = flow_for(PATHS["openai-responses"], body)
    _, text = render(flow, flow.request)
    assert "hello there" in text
    assert "previous_response_id: not shown" in text


def test_other_endpoints_are_left_to_mitmproxys_own_views(llmitm_view):
    flow = flow_for("/v1/models", b'{"data": []}', b'{"data": []}')
    name, _ = render(flow, flow.response, "auto")
    assert "llmitm" not in name.lower()


def test_any_one_body_renders_without_a_flow():
    """What a side-by-side of a flow's four bodies builds on: the renderer needs protocol, body and path
    (for a request) or status and content type (for a response), no flow."""
    from llmitm.inspect.view import render_body

    path, body = request_in("gemini")
    text = render_body("gemini", body, path=path, side="upstream request").text()
    assert "Gemini generateContent request (upstream request)" in text
    assert "→ tool call get_weather" in text
    stream, content_type = fixture_response("anthropic-messages/prism/stream-text-then-tool-use.sse")
    text = render_body("anthropic", stream, status=200, content_type=content_type, side="upstream response").text()
    assert "Anthropic Messages response (upstream response)" in text and "→ tool call search" in text


def test_a_stream_cut_off_midway_says_so(llmitm_view):
    from tests.harness import fixtures

    events = fixtures.sse_events("anthropic-messages/prism/stream-text-then-tool-use.sse")
    flow = flow_for(PATHS["anthropic"], b"{}", b"".join(events[: len(events) // 2]), "text/event-stream")
    _, text = render(flow, flow.response)
    assert "no end marker: cut off?" in text
    assert "stop reason: (not said)" in text
