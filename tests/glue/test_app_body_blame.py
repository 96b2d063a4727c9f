"""Whose fault a request llmitm cannot translate is: a value of the wrong type in the app's own JSON
(found by the fuzzer: `"messages": 7`, a number where a list of parts goes) is the app's, a 400 in its
protocol like the real APIs answer, not a 500 blaming llmitm."""

from __future__ import annotations

import pytest

from llmitm.protocols import Translation, TranslationError


@pytest.mark.parametrize("client, body", [
    ("openai-chat", {"model": "m", "messages": [], "tools": 7}),
    ("openai-chat", {"model": "m", "messages": [], "stop": 7.5}),
    ("openai-responses", {"model": "m", "input": "hi", "include": 7}),
    ("anthropic", {"model": "m", "max_tokens": 5, "messages": [], "tools": 7}),
])
def test_a_wrong_type_in_the_apps_body_is_a_400(client, body):
    upstream = "gemini" if client != "gemini" else "anthropic"
    with pytest.raises(TranslationError) as raised:
        Translation(client, upstream).request(body, upstream_model="x")
    wrong = list(body)[-1]  # each case puts the wrong-typed field last
    assert raised.value.status == 400 and wrong in f"{raised.value.message} {raised.value.param}"


@pytest.mark.parametrize("client, body", [
    ("anthropic", {"model": "m", "max_tokens": 5, "messages": [], "temperature": {"x": 1}}),
    ("openai-chat", {"model": "m", "messages": [], "top_p": "0.5"}),
    ("gemini", {"contents": [], "generationConfig": {"temperature": [1]}}),
])
def test_a_sampling_value_that_is_not_a_number_is_a_400(client, body):
    upstream = "anthropic" if client != "anthropic" else "openai-chat"
    with pytest.raises(TranslationError) as raised:
        Translation(client, upstream).request(body, upstream_model="x", client_path="/v1beta/models/x:generateContent")
    message = f"{raised.value.message} {raised.value.param}"
    assert raised.value.status == 400 and ("temperature" in message or "top_p" in message)
