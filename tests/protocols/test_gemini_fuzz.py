"""Gemini requests with wrong types anywhere: the parser answers a 400 (`TranslationError`) naming the
field, never a TypeError, AttributeError or KeyError (which the addon would turn into a 502 at best).

The inputs are real request shapes with one or more fields swapped for random JSON (wrong scalar types,
arrays for objects, nested junk), plus random objects built from the protocol's own field names."""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proto_helpers import json_names, json_paths

from llmitm.protocols import Translation, TranslationError, gemini
from llmitm.protocols.canonical import Context

FUZZ_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PATH = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="

# Requests as Gemini clients send them, in both spellings (google-genai mixes lowerCamel and snake_case).
GEMINI_REQUESTS = [
    {"contents": [
        {"role": "user", "parts": [{"text": "hi"}, {"inlineData": {"mimeType": "image/png", "data": PNG}},
                                   {"fileData": {"mimeType": "application/pdf", "fileUri": "https://x.test/a.pdf"}}]},
        {"role": "model", "parts": [{"text": "thinking", "thought": True, "thoughtSignature": "c2ln"},
                                    {"functionCall": {"id": "c1", "name": "get", "args": {"q": "x"}},
                                     "thoughtSignature": "c2ln"}]},
        {"role": "user", "parts": [{"functionResponse": {"id": "c1", "name": "get", "response": {"result": "ok"},
                                                         "parts": [{"inlineData": {"mimeType": "image/png",
                                                                                   "data": PNG}}]}}]}],
     "systemInstruction": {"parts": [{"text": "be brief"}]},
     "tools": [{"functionDeclarations": [{"name": "get", "description": "d",
                                          "parameters": {"type": "OBJECT", "properties": {"q": {"type": "STRING"}},
                                                         "required": ["q"]}}]},
               {"googleSearch": {}}],
     "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get"]}},
     "generationConfig": {"temperature": 0.5, "topP": 0.9, "topK": 40, "maxOutputTokens": 100,
                          "stopSequences": ["x"], "candidateCount": 1, "presencePenalty": 0.1, "seed": 3,
                          "responseMimeType": "application/json",
                          "responseJsonSchema": {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}},
                          "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 1024}},
     "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}]},
    {"contents": [{"role": "user", "parts": [{"text": "hi"}]},
                  {"role": "model", "parts": [{"function_call": {"name": "get", "args": {}}}]},
                  {"role": "user", "parts": [{"function_response": {"name": "get", "response": {"error": "no"}}}]}],
     "system_instruction": "sys",
     "tools": [{"function_declarations": [{"name": "get", "parameters_json_schema": {"type": "object"}}]}],
     "tool_config": {"function_calling_config": {"mode": "AUTO"}},
     "generation_config": {"response_mime_type": "application/json",
                           "response_schema": {"type": "OBJECT", "nullable": True, "properties": {}},
                           "thinking_config": {"thinking_level": "LOW"}}},
]


def junk_json(names: list[str]):
    scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False, width=16) | st.text(max_size=4)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.sampled_from(names) | st.text(max_size=3), inner, max_size=4), max_leaves=8)


def malformed_requests(samples: list[dict]):
    """A sample request with some fields replaced by junk, or a random object of the protocol's field names."""
    names = sorted(set().union(*(json_names(s) for s in samples)))
    junk = junk_json(names)

    @st.composite
    def mutated(draw):
        body = copy.deepcopy(draw(st.sampled_from(samples)))
        for _ in range(draw(st.integers(1, 4))):
            where = json_paths(body)[1:]  # (not the whole body)
            if not where:
                break
            path = draw(st.sampled_from(where))
            parent = body
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]] = draw(junk)
        return body

    return mutated() | st.dictionaries(st.sampled_from(names), junk, max_size=6)


def test_the_samples_themselves_translate():
    for body in GEMINI_REQUESTS:
        gemini.parse_request(copy.deepcopy(body), Context(client_path=PATH))


@FUZZ_SETTINGS
@given(malformed_requests(GEMINI_REQUESTS))
def test_malformed_requests_are_refused_with_a_400(body):
    try:
        gemini.parse_request(body, Context(client_path=PATH))
    except TranslationError as e:
        assert e.status in (400, 404)


@pytest.mark.parametrize("upstream", ["anthropic", "openai-chat", "openai-responses"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=malformed_requests(GEMINI_REQUESTS))
def test_malformed_requests_never_crash_a_translation(upstream, body):
    try:
        Translation("gemini", upstream).request(body, upstream_model="m", client_path=PATH)
    except TranslationError as e:
        assert e.status in (400, 404)
