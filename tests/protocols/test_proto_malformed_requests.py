"""Malformed client requests: whatever JSON an app sends, parsing it and rendering it toward any
upstream either succeeds or raises `TranslationError` (a 400 in the app's protocol naming the field),
never TypeError/AttributeError/KeyError (which the addon could only answer as a 502).

Bodies are a complete, valid request of each protocol with some of its values (at any depth) replaced
by structurally random JSON whose objects reuse the protocol's own field names and type tags, so the
junk reaches the code that reads nested content parts, tool calls and configs."""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proto_helpers import json_names, json_paths

from llmitm.protocols import Translation, TranslationError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
UPSTREAMS = ("openai-chat", "anthropic", "gemini", "openai-responses")
LOCAL_MODEL = SimpleNamespace(think_tags=True, tool_call_tags=True, reasoning_switch="smollm3",
                              thinking_default=False)
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

OPENAI_CHAT_BODY = {
    "model": "gpt-4.1", "stream": True, "stream_options": {"include_usage": True},
    "max_completion_tokens": 2000, "temperature": 0.5, "top_p": 0.9, "stop": ["END"], "n": 1, "seed": 7,
    "reasoning_effort": "low", "user": "u1", "parallel_tool_calls": False,
    "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"},
                                                               "strict": True}},
    "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "developer", "content": [{"type": "text", "text": "really"}]},
        {"role": "user", "name": "ann", "content": [
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}}]},
        {"role": "assistant", "content": "calling", "reasoning_content": "hmm", "refusal": None,
         "tool_calls": [{"id": "call_1", "type": "function",
                         "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}],
         "thinking_blocks": [{"type": "thinking", "thinking": "t", "signature": "sig"},
                             {"type": "redacted_thinking", "data": "r"}]},
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "sunny"}]},
        {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}},
        {"role": "user", "content": "thanks"}],
    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "weather",
                                                "parameters": {"type": "object", "properties": {}},
                                                "strict": True}}],
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
}

ANTHROPIC_BODY = {
    "model": "claude-sonnet-4-5", "max_tokens": 3000, "stream": True, "temperature": 0.5, "top_p": 0.9,
    "top_k": 5, "stop_sequences": ["END"], "metadata": {"user_id": "u1"},
    "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "output_config": {"effort": "low", "format": {"type": "json_schema", "schema": {"type": "object"}}},
    "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "look"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc"},
             "title": "d"},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                            "data": "JVBERi0="}}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "redacted_thinking", "data": "r"},
            {"type": "text", "text": "calling"},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": False,
             "content": [{"type": "text", "text": "sunny"}]},
            {"type": "text", "text": "thanks"}]}],
    "tools": [{"name": "get_weather", "description": "weather", "input_schema": {"type": "object"},
               "cache_control": {"type": "ephemeral"}}],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
}


def _junk(vocabulary: set[str]) -> st.SearchStrategy:
    words = st.sampled_from(sorted(vocabulary))
    scalars = (st.none() | st.booleans() | st.integers(-(2 ** 63), 2 ** 63) | st.floats(allow_nan=False)
               | st.text(max_size=6) | words)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(words | st.text(max_size=4), inner, max_size=4), max_leaves=10)


def _same_type(value, words: st.SearchStrategy) -> st.SearchStrategy:
    """Odd values of the type the field already has: these pass type checks and reach the renderers."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.integers(-(2 ** 63), 2 ** 63) | st.sampled_from([0, 1, 1023, 1024, 100_000])
    if isinstance(value, float):
        return st.floats(allow_nan=False) | st.sampled_from([0.0, 0.95, 1.0, 2.0])
    if isinstance(value, str):
        return st.text(max_size=8) | words | st.sampled_from(["", " ", "\n"])
    if isinstance(value, list):
        return st.lists(st.sampled_from(value), max_size=4) if value else st.just([])
    return st.dictionaries(words, st.none() | words, max_size=2) | st.just({})


@st.composite
def malformed(draw, template: dict):
    """`template` with 1-4 of its values (at any depth, or the whole body) replaced by junk, or by an
    odd value of the same type."""
    body = copy.deepcopy(template)
    vocabulary = json_names(template, strings=True)
    junk = _junk(vocabulary)
    words = st.sampled_from(sorted(vocabulary))
    paths = json_paths(template)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(paths))
        if not path:
            return draw(junk)
        parent = body
        try:
            for step in path[:-1]:
                parent = parent[step]
            original = parent[path[-1]]
            parent[path[-1]] = draw(_same_type(original, words) if draw(st.booleans()) else junk)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier replacement removed this path
    return body


def _translate_everywhere(client: str, body, upstreams=UPSTREAMS, **kw) -> None:
    for upstream in upstreams:
        t = Translation(client, upstream, **kw)
        try:
            up = t.request(copy.deepcopy(body), upstream_model="claude-sonnet-4-5", client_path=None)
        except TranslationError as e:
            status, error_body = t.error_response(e)
            assert 400 <= status < 500 and json.loads(error_body)
        else:
            json.loads(up.body)


@pytest.mark.parametrize("client, template", [("openai-chat", OPENAI_CHAT_BODY), ("anthropic", ANTHROPIC_BODY)])
def test_the_valid_templates_translate(client, template):
    for upstream in ("openai-chat", "anthropic", "gemini"):  # OpenAI Responses refuses stop sequences
        Translation(client, upstream).request(copy.deepcopy(template), upstream_model="m")


@FUZZ
@given(body=malformed(OPENAI_CHAT_BODY))
def test_malformed_openai_chat_request_is_a_translation_error_or_translates(body):
    _translate_everywhere("openai-chat", body)


@FUZZ
@given(body=malformed(ANTHROPIC_BODY))
def test_malformed_anthropic_request_is_a_translation_error_or_translates(body):
    _translate_everywhere("anthropic", body)


@FUZZ
@given(body=malformed(OPENAI_CHAT_BODY))
def test_malformed_request_toward_a_local_model_is_a_translation_error_or_translates(body):
    _translate_everywhere("openai-chat", body, ("openai-chat",), local_model=LOCAL_MODEL)


@FUZZ
@given(body=malformed(ANTHROPIC_BODY))
def test_malformed_anthropic_request_toward_a_local_model_is_a_translation_error_or_translates(body):
    _translate_everywhere("anthropic", body, ("openai-chat",), local_model=LOCAL_MODEL)
