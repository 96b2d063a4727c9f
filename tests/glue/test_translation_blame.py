"""Whose fault a failed translation is: the provider's (a 502 quoting what it sent) only where its
data is being read; anything else is llmitm's own bug, which propagates to the guard (a 500)."""

from __future__ import annotations

import json

import pytest

from llmitm.protocols import MalformedUpstream, Translation

CHAT_REQ = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
ANTHROPIC_ANSWER = (b'{"id": "m1", "type": "message", "role": "assistant", "model": "claude-x", "content": '
                    b'[{"type": "text", "text": "hello"}], "stop_reason": "end_turn", "usage": {"input_tokens": 3, "output_tokens": 1}}')


def translation(stream: bool = False) -> Translation:
    t = Translation("openai-chat", "anthropic")
    t.request({**CHAT_REQ, "stream": stream}, upstream_model="claude-x")
    return t


def test_a_provider_body_that_is_not_json_is_a_502_quoting_it():
    status, body = translation().response(200, b"<html>upstream gateway page</html>")
    error = json.loads(body)["error"]
    assert status == 502 and "not JSON" in error["message"] and "<html>upstream gateway page</html>" in error["message"]


def test_a_provider_answer_of_the_wrong_shape_is_a_502_quoting_it():
    status, body = translation().response(200, b'{"content": "not a list of blocks", "type": "message"}')
    assert status == 502 and "not a list of blocks" in json.loads(body)["error"]["message"]


def test_a_bug_while_rendering_for_the_app_is_not_blamed_on_the_provider(monkeypatch):
    t = translation()
    monkeypatch.setattr(t.client, "render_response", lambda resp, ctx: {}["choices"])
    with pytest.raises(KeyError):
        t.response(200, ANTHROPIC_ANSWER)


def test_a_malformed_stream_event_ends_the_stream_with_a_502_quoting_it():
    s = translation(stream=True).stream()
    out = b"".join(s.feed(b"event: message_start\ndata: {not json at all}\n\n"))
    assert b"malformed upstream stream event" in out and b"{not json at all}" in out


def test_malformed_upstream_names_what_the_provider_sent_within_bounds():
    e = MalformedUpstream("a body that is not JSON", b"x" * 1000)
    assert e.status == 502 and str(e).count("x") < 300 and e.sample.endswith("…")
