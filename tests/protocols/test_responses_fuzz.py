"""OpenAI Responses requests with wrong types anywhere: the parser answers a 400 (`TranslationError`)
naming the field, never a TypeError, AttributeError or KeyError. Inputs as in test_gemini_fuzz: real
request shapes with fields swapped for random JSON, and random objects of the protocol's field names."""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from test_gemini_fuzz import FUZZ_SETTINGS, PNG, malformed_requests

from llmitm.protocols import Translation, TranslationError, openai_responses
from llmitm.protocols.canonical import Context

RESPONSES_REQUESTS = [
    {"model": "gpt-5", "instructions": "be brief", "store": False, "stream": True, "max_output_tokens": 100,
     "temperature": 0.5, "top_p": 0.9, "parallel_tool_calls": True, "user": "u", "truncation": "auto",
     "include": ["reasoning.encrypted_content"], "reasoning": {"effort": "high", "summary": "auto"},
     "text": {"format": {"type": "json_schema", "name": "r", "schema": {"type": "object"}, "strict": True},
              "verbosity": "low"},
     "tools": [{"type": "function", "name": "get", "description": "d", "strict": False,
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}},
               {"type": "custom", "name": "patch", "format": {"type": "grammar", "syntax": "lark", "definition": "x"}},
               {"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": "f", "parameters": {}}]},
               {"type": "web_search"}],
     "tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "get"}]},
     "input": [
         {"role": "developer", "content": "sys"},
         {"role": "user", "content": [{"type": "input_text", "text": "hi"},
                                      {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
                                      {"type": "input_file", "file_data": f"data:application/pdf;base64,{PNG}",
                                       "filename": "a.pdf"}]},
         {"type": "reasoning", "summary": [{"type": "summary_text", "text": "t"}],
          "encrypted_content": "llmitm.signature:c2ln"},
         {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
         {"type": "function_call", "call_id": "c1", "name": "get", "arguments": "{}"},
         {"type": "function_call", "call_id": "c2", "name": "f", "namespace": "ns", "arguments": "{}"},
         {"type": "custom_tool_call", "call_id": "c3", "name": "patch", "input": "x"},
         {"type": "function_call_output", "call_id": "c1", "output": "done"},
         {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "x"}]},
         {"type": "custom_tool_call_output", "call_id": "c3", "output": "ok"}]},
    {"model": "gpt-5", "input": "hi", "store": False, "tool_choice": {"type": "function", "name": "get"},
     "text": {"format": {"type": "json_object"}}, "instructions": [{"role": "system", "content": "s"}]},
]


def test_the_samples_themselves_translate():
    for body in RESPONSES_REQUESTS:
        openai_responses.parse_request(copy.deepcopy(body), Context())


@FUZZ_SETTINGS
@given(malformed_requests(RESPONSES_REQUESTS))
def test_malformed_requests_are_refused_with_a_400(body):
    try:
        openai_responses.parse_request(body, Context())
    except TranslationError as e:
        assert e.status == 400


@pytest.mark.parametrize("upstream", ["anthropic", "openai-chat", "gemini"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=malformed_requests(RESPONSES_REQUESTS))
def test_malformed_requests_never_crash_a_translation(upstream, body):
    try:
        Translation("openai-responses", upstream).request(body, upstream_model="m")
    except TranslationError as e:
        assert e.status == 400
