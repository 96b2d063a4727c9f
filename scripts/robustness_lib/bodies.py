"""What the fuzzer sends: per endpoint, request bodies built from the protocol's own field names with
values of every JSON type at every level (so each parser meets wrong types where it expects right
ones), plus raw-byte cases no JSON generator makes: deep nesting, UTF-16, duplicate or escaped keys."""

from __future__ import annotations

import json
from dataclasses import dataclass

from hypothesis import strategies as st

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=30))
# Field names each protocol's parsers look at: random values under real names reach deep code.
FIELDS = {
    "openai-chat": ["model", "messages", "role", "content", "type", "text", "image_url", "url", "tool_calls", "function",
                    "name", "arguments", "tools", "parameters", "tool_choice", "stream", "stream_options", "max_tokens",
                    "max_completion_tokens", "temperature", "top_p", "stop", "response_format", "json_schema",
                    "reasoning_effort", "tool_call_id", "n", "logit_bias", "seed", "input_audio", "file"],
    "openai-responses": ["model", "input", "instructions", "role", "content", "type", "text", "input_text", "input_image",
                         "image_url", "function_call", "function_call_output", "call_id", "output", "arguments", "name",
                         "tools", "parameters", "reasoning", "effort", "summary", "stream", "max_output_tokens", "store",
                         "previous_response_id", "text", "format", "namespace", "encrypted_content", "include"],
    "anthropic": ["model", "messages", "role", "content", "type", "text", "image", "source", "media_type", "data",
                  "tool_use", "tool_result", "tool_use_id", "id", "name", "input", "tools", "input_schema", "tool_choice",
                  "system", "max_tokens", "stream", "thinking", "budget_tokens", "signature", "temperature", "top_p",
                  "top_k", "stop_sequences", "metadata", "cache_control", "document"],
    "gemini": ["contents", "role", "parts", "text", "inlineData", "mimeType", "data", "functionCall", "functionResponse",
               "name", "args", "response", "thought", "thoughtSignature", "systemInstruction", "tools",
               "functionDeclarations", "parameters", "generationConfig", "temperature", "topP", "maxOutputTokens",
               "thinkingConfig", "thinkingBudget", "responseSchema", "responseJsonSchema", "responseMimeType",
               "toolConfig", "safetySettings", "fileData"],
}


def json_tree(protocol: str) -> st.SearchStrategy:
    names = st.sampled_from(FIELDS[protocol])
    return st.recursive(
        SCALARS,
        lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(names, children, max_size=6)),
        max_leaves=40,
    )


def body(protocol: str, stream: bool) -> st.SearchStrategy[bytes]:
    """A top-level object with the protocol's usual keys, each holding anything."""
    tree = json_tree(protocol)
    required = {"model": st.one_of(st.just("gpt-4o"), st.just("same-model"), tree)} if protocol != "gemini" else {}
    objects = st.fixed_dictionaries(required, optional={name: tree for name in FIELDS[protocol] if name not in required})
    if stream:
        objects = objects.map(lambda d: {**d, "stream": True})
    return st.one_of(objects.map(lambda d: json.dumps(d).encode()), st.sampled_from(RAW_CASES))


RAW_CASES = [
    b"[" * 100_000 + b"]" * 100_000,  # RecursionError in a recursive parser
    b'{"model": "gpt-4o", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    '{"model": "gpt-4o", "messages": []}'.encode("utf-16"),
    b'{"mod\\u0065l": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}',
    b'{"model": "same-model", "model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}',
    b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "messages": 7}',
    b"\xff\xfe\x00garbage",
    b"",
    b"null",
    b"[]",
    b'"a string"',
    b'{"model": 1e999}',
    b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "\\ud800"}]}',
]


@dataclass(frozen=True)
class Endpoint:
    label: str
    protocol: str
    url: str
    stream: bool = False


ENDPOINTS = [
    Endpoint("chat", "openai-chat", "https://api.openai.com/v1/chat/completions"),
    Endpoint("chat-stream", "openai-chat", "https://api.openai.com/v1/chat/completions", stream=True),
    Endpoint("responses", "openai-responses", "https://api.openai.com/v1/responses"),
    Endpoint("responses-stream", "openai-responses", "https://api.openai.com/v1/responses", stream=True),
    Endpoint("messages", "anthropic", "https://api.anthropic.com/v1/messages"),
    Endpoint("messages-stream", "anthropic", "https://api.anthropic.com/v1/messages", stream=True),
    Endpoint("count-tokens", "anthropic", "https://api.anthropic.com/v1/messages/count_tokens"),
    Endpoint("gemini", "gemini", "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"),
    Endpoint("gemini-stream", "gemini",
             "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
             stream=True),
]
