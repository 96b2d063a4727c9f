"""Fixed-size response bodies for the replay upstream, built from real recordings in shared/fixtures.

Shapes are copied from real provider recordings (openai-python `stream-text-weather.sse`, prism's Anthropic
`stream-text-basic.sse`, vercel-ai's `anthropic-text.json`, openai-python `text-weather.json`); the built-in
copies below are byte-for-byte the events from those files, so the benchmark also runs without shared/.
Streams are padded with content deltas to exactly STREAM_EVENTS SSE events.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

STREAM_EVENTS = 200

# Real events (openai-python tests, gpt-4o-2024-08-06, stream-text-weather.sse).
_OA_ID = '"id":"chatcmpl-ABfw031mOJeYCSHe4yI2ZjOA6kMJL","object":"chat.completion.chunk","created":1727346168,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_5050236cbd"'  # noqa: E501 - recorded bytes, kept on one line
_OA_ROLE = '{' + _OA_ID + ',"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]}'  # noqa: E501 - recorded bytes, kept on one line
_OA_DELTA = '{' + _OA_ID + ',"choices":[{"index":0,"delta":{"content":"%s"},"logprobs":null,"finish_reason":null}]}'
_OA_FINISH = '{' + _OA_ID + ',"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}'
_OA_USAGE = '{' + _OA_ID + ',"choices":[],"usage":{"prompt_tokens":14,"completion_tokens":196,"total_tokens":210}}'
_OA_JSON = {"id": "chatcmpl-ABfvaueLEMLNYbT8YzpJxsmiQ6HSY", "object": "chat.completion", "created": 1727346142, "model": "gpt-4o-2024-08-06", "choices": [{"index": 0, "message": {"role": "assistant", "content": "I'm unable to provide real-time weather updates. To get the current weather in San Francisco, I recommend checking a reliable weather website or app like the Weather Channel or a local news station.", "refusal": None}, "logprobs": None, "finish_reason": "stop"}], "usage": {"prompt_tokens": 14, "completion_tokens": 37, "total_tokens": 51, "completion_tokens_details": {"reasoning_tokens": 0}}, "system_fingerprint": "fp_b40fb1c6fb"}  # noqa: E501 - recorded bytes, kept on one line

# Real events (prism tests, claude-3-7-sonnet-20250219, stream-text-basic.sse).
_AN_START = '{"type":"message_start","message":{"id":"msg_014HN4fQn2vqETrzGmNdZ9Eg","type":"message","role":"assistant","model":"claude-3-7-sonnet-20250219","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":11,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":3}}}'  # noqa: E501 - recorded bytes, kept on one line
_AN_BLOCK = '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}'
_AN_PING = '{"type": "ping"}'
_AN_DELTA = '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"%s"}}'
_AN_BSTOP = '{"type":"content_block_stop","index":0}'
_AN_MDELTA = '{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":193}}'
_AN_MSTOP = '{"type":"message_stop"}'
_AN_JSON = {"model": "claude-sonnet-4-5-20250929", "id": "msg_01VdEjxAP5ahtHKrrRdNBteQ", "type": "message", "role": "assistant", "content": [{"type": "text", "text": "Hello! I'm doing well, thanks for asking. How are you doing today? Is there anything I can help you with?"}], "stop_reason": "end_turn", "stop_sequence": None, "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}, "output_tokens": 29, "service_tier": "standard", "inference_geo": "not_available"}}  # noqa: E501 - recorded bytes, kept on one line

# Deltas cycle through real token texts from the recordings.
_WORDS = ["I'm", " unable", " to", " provide", " real", "-time", " weather", " updates", ".", " To", " get",
          " the", " current", " weather", " in", " San", " Francisco", ",", " I", " recommend", " checking",
          " a", " reliable", " weather", " website", " or", " app", " like"]


def _fixture_dir() -> Path | None:
    for cand in (os.environ.get("LLMITM_FIXTURES"), "/work/shared/fixtures",
                 str(Path(__file__).resolve().parents[3] / "shared" / "fixtures")):
        if cand and Path(cand).is_dir():
            return Path(cand)
    return None


def openai_stream_events(n: int = STREAM_EVENTS) -> list[bytes]:
    """n SSE events (the last is `data: [DONE]`), OpenAI Chat Completions shape."""
    body = [_OA_ROLE] + [_OA_DELTA % _WORDS[i % len(_WORDS)] for i in range(n - 4)] + [_OA_FINISH, _OA_USAGE]
    return [f"data: {e}\n\n".encode() for e in body] + [b"data: [DONE]\n\n"]


def anthropic_stream_events(n: int = STREAM_EVENTS) -> list[bytes]:
    """n SSE events, Anthropic Messages shape (message_start ... message_stop)."""
    events = [("message_start", _AN_START), ("content_block_start", _AN_BLOCK), ("ping", _AN_PING)]
    events += [("content_block_delta", _AN_DELTA % _WORDS[i % len(_WORDS)]) for i in range(n - 6)]
    events += [("content_block_stop", _AN_BSTOP), ("message_delta", _AN_MDELTA), ("message_stop", _AN_MSTOP)]
    return [f"event: {t}\ndata: {d}\n\n".encode() for t, d in events]


def openai_json() -> bytes:
    d = _fixture_dir()
    p = d / "openai-chat/openai-python/text-weather.json" if d else None
    return p.read_bytes().strip() if p and p.is_file() else json.dumps(_OA_JSON).encode()


def anthropic_json() -> bytes:
    d = _fixture_dir()
    p = d / "anthropic-messages/vercel-ai/anthropic-text.json" if d else None
    return p.read_bytes().strip() if p and p.is_file() else json.dumps(_AN_JSON).encode()


# Client request bodies (what an SDK sends), fixed size.
def openai_request(model: str, stream: bool) -> bytes:
    body = {"model": model, "messages": [{"role": "system", "content": "You are a helpful assistant."},
                                         {"role": "user", "content": "What's the weather like in San Francisco?"}],
            "max_tokens": 256}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return json.dumps(body, separators=(",", ":")).encode()


def anthropic_request(model: str, stream: bool) -> bytes:
    body = {"model": model, "max_tokens": 256, "system": "You are a helpful assistant.",
            "messages": [{"role": "user", "content": "What's the weather like in San Francisco?"}]}
    if stream:
        body["stream"] = True
    return json.dumps(body, separators=(",", ":")).encode()
