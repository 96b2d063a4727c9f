"""Official SDK clients whose HTTP layer is a translation, and the SDKs' own readings of a streamed
answer, shared by the fixture tests of every spoke (test_*_fixtures_sdk.py, test_gemini_*).

A client here sends its request through a `Translation`; the recorded upstream answer comes back through
the same translation, a stream fed in uneven pieces down to single bytes. What the test then compares
is what the SDK's own accumulator made of it."""

from __future__ import annotations

import json

from proto_helpers import http_module, sdk_client, split, translate_stream

from llmitm.protocols import Translation

USER_TURN = [{"role": "user", "content": "hi"}]


def translated_answer(httpx, t: Translation, upstream_wire: bytes, *, stream: bool, status: int = 200,
                      chunker=split):
    """The recorded upstream answer as `t` translates it back, as an HTTP response of `httpx` (the module
    the SDK runs on): a successful stream fed through the stream translator in `chunker`'s pieces, a body
    or an error translated whole."""
    if stream and 200 <= status < 300:
        out = translate_stream(t, chunker(upstream_wire))
        assert all(out), "a translator must never yield b''"
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=b"".join(out))
    code, body = t.response(status, upstream_wire)
    return httpx.Response(code, headers={"content-type": "application/json"}, content=body)


def translating_client(sdk: str, t: Translation, upstream_wire: bytes, *, stream: bool, status: int = 200,
                       seen: list | None = None, raw: list | None = None):
    """An SDK client ("openai", "anthropic" or "responses", the latter the openai SDK's Responses API)
    whose HTTP layer runs the request through `t` and answers with the recording translated back.
    `seen` collects (upstream path, upstream body) of every request; `raw` the bytes each answer carried."""
    httpx = http_module(sdk)

    def handler(request):
        up = t.request(json.loads(request.content), upstream_model="upstream-model")
        if seen is not None:
            seen.append((up.path, json.loads(up.body)))
        answer = translated_answer(httpx, t, upstream_wire, stream=stream, status=status)
        if raw is not None:
            raw.append(answer.content)
        return answer

    return sdk_client(sdk, handler)


def streaming_client_over_json(sdk: str, t: Translation, body: bytes):
    """An SDK client that asks for a stream and whose upstream answered with a whole JSON body (it
    ignored `stream: true`): the translation makes a complete stream of it."""
    httpx = http_module(sdk)

    def handler(request):
        t.request(json.loads(request.content), upstream_model=None)
        code, out = t.response(200, body, as_stream=True)
        return httpx.Response(code, headers={"content-type": "text/event-stream"}, content=out)

    return sdk_client(sdk, handler)


def chat_answer(client):
    """The openai SDK's reading of a whole (non-stream) chat answer."""
    return client.chat.completions.create(model="gpt-4o", messages=USER_TURN)


def anthropic_answer(client):
    """The anthropic SDK's reading of a whole (non-stream) answer."""
    return client.messages.create(model="claude-x", max_tokens=1000, messages=USER_TURN)


def chat_stream_snapshot(client):
    """The openai SDK's accumulated completion of a streamed chat answer (with usage asked for).
    The snapshot, because get_final_completion() refuses length/content_filter endings."""
    with client.chat.completions.stream(model="gpt-4o", messages=USER_TURN,
                                        stream_options={"include_usage": True}) as s:
        for _ in s:
            pass
        return s.current_completion_snapshot


def anthropic_stream_final(client):
    """The anthropic SDK's final message of a streamed answer, and the usage its message_delta carried."""
    delta_usage = None
    with client.messages.stream(model="claude-x", max_tokens=1000, messages=USER_TURN) as s:
        for event in s:
            if event.type == "message_delta":
                delta_usage = event.usage
        return s.get_final_message(), delta_usage
