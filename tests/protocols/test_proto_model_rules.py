"""Target-model parameter rules: a request is rendered without the parameter combinations its target
model refuses (dropped or clamped with a warning naming the field and the rule), and left alone for
models that accept them."""

from __future__ import annotations

import json

import pytest

from llmitm.protocols import Translation, model_rules

# What Gemini CLI sends (its default generation config).
GEMINI_CLI_BODY = {
    "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
    "generationConfig": {"temperature": 1, "topP": 0.95, "maxOutputTokens": 2000},
}
GEMINI_PATH = "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"


def gemini_to_anthropic(model: str, body: dict = GEMINI_CLI_BODY) -> tuple[dict, Translation]:
    t = Translation("gemini", "anthropic")
    up = t.request(json.loads(json.dumps(body)), upstream_model=model, client_path=GEMINI_PATH)
    return json.loads(up.body), t


@pytest.mark.parametrize("model", [
    "claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001", "claude-opus-4-1-20250805",
    "claude-opus-4-5", "claude-sonnet-4-6", "anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5@20250929",
    "anthropic/claude-sonnet-4.5", "claude-opus-5"])
def test_gemini_cli_temperature_and_top_p_are_not_both_sent_to_claude_4_5(model):
    out, t = gemini_to_anthropic(model)
    assert out["temperature"] == 1 and "top_p" not in out
    assert any(w.startswith("top_p dropped") and "cannot both be specified" in w for w in t.warnings)


@pytest.mark.parametrize("model", ["claude-sonnet-4-20250514", "claude-opus-4-20250514", "claude-3-7-sonnet-latest",
                                   "claude-3-5-haiku-20241022", "some-anthropic-compatible-model"])
def test_models_that_accept_temperature_with_top_p_get_both(model):
    out, t = gemini_to_anthropic(model)
    assert out["temperature"] == 1 and out["top_p"] == 0.95
    assert not any("top_p" in w for w in t.warnings)


def test_with_thinking_temperature_goes_and_top_p_stays_so_there_is_no_conflict():
    body = {**GEMINI_CLI_BODY, "generationConfig": {**GEMINI_CLI_BODY["generationConfig"], "topK": 40,
                                                     "thinkingConfig": {"thinkingBudget": 1024}}}
    out, t = gemini_to_anthropic("claude-sonnet-4-5", body)
    assert out["thinking"]["type"] == "enabled"
    assert "temperature" not in out and "top_k" not in out and out["top_p"] == 0.95
    assert any(w.startswith("top_k dropped (Anthropic with thinking on") for w in t.warnings)
    assert not any("cannot both" in w for w in t.warnings)


def test_with_thinking_a_low_top_p_is_raised_and_a_non_default_temperature_dropped():
    t = Translation("openai-chat", "anthropic")
    up = t.request({"model": "claude-sonnet-4-20250514", "reasoning_effort": "low", "max_completion_tokens": 4000,
                    "temperature": 0.3, "top_p": 0.5, "messages": [{"role": "user", "content": "hi"}]})
    out = json.loads(up.body)
    assert out["thinking"]["type"] == "enabled" and "temperature" not in out and out["top_p"] == 0.95
    assert "temperature 0.3 dropped (Anthropic with thinking on: temperature must stay default)" in t.warnings
    assert any(w.startswith("top_p 0.5 raised to 0.95") for w in t.warnings)


@pytest.mark.parametrize("model", ["o1", "o3-mini", "o4-mini-2025-04-16", "gpt-5", "gpt-5-mini", "gpt-5.1",
                                   "gpt-5-codex", "openai/gpt-5"])
def test_openai_reasoning_models_get_no_sampling_parameters(model):
    t = Translation("anthropic", "openai-chat")
    up = t.request({"model": model, "max_tokens": 300, "temperature": 0.2, "top_p": 0.9,
                    "messages": [{"role": "user", "content": "hi"}]})
    out = json.loads(up.body)
    assert "temperature" not in out and "top_p" not in out and out["max_completion_tokens"] == 300
    assert "max_tokens" not in out
    assert any(w.startswith("temperature 0.2 dropped (OpenAI reasoning models") for w in t.warnings)


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4.1-mini", "gpt-5-chat-latest", "deepseek-chat", "qwen3"])
def test_other_openai_chat_models_keep_their_sampling_parameters(model):
    t = Translation("anthropic", "openai-chat")
    up = t.request({"model": model, "max_tokens": 300, "temperature": 0.2, "top_p": 0.9,
                    "messages": [{"role": "user", "content": "hi"}]})
    out = json.loads(up.body)
    assert out["temperature"] == 0.2 and out["top_p"] == 0.9


def test_default_values_are_dropped_without_a_warning():
    t = Translation("anthropic", "openai-chat")
    out = json.loads(t.request({"model": "o3", "max_tokens": 10, "temperature": 1,
                                "messages": [{"role": "user", "content": "hi"}]}).body)
    assert "temperature" not in out and not any("temperature" in w for w in t.warnings)


# A real model name for each glob of the table: a row whose glob matches nothing real is a typo.
ROW_EXAMPLES = {
    "*": "claude-3-7-sonnet-latest", "*claude-sonnet-4-[5-9]*": "claude-sonnet-4-5-20250929",
    "*claude-sonnet-4.[5-9]*": "anthropic/claude-sonnet-4.5", "*claude-haiku-4-[5-9]*": "claude-haiku-4-5",
    "*claude-haiku-4.[5-9]*": "anthropic/claude-haiku-4.5", "*claude-opus-4-1*": "claude-opus-4-1-20250805",
    "*claude-opus-4.1*": "anthropic/claude-opus-4.1", "*claude-opus-4-[5-9]*": "claude-opus-4-5",
    "*claude-opus-4.[5-9]*": "anthropic/claude-opus-4.5", "*claude-sonnet-[5-9]*": "claude-sonnet-5",
    "*claude-haiku-[5-9]*": "claude-haiku-5", "*claude-opus-[5-9]*": "claude-opus-5",
    "o1*": "o1-2024-12-17", "o3*": "o3-mini", "o4*": "o4-mini", "gpt-5": "gpt-5", "gpt-5-[!c]*": "gpt-5-nano",
    "gpt-5-codex*": "gpt-5-codex", "gpt-5.*": "gpt-5.1-codex-max",
}


def test_every_rule_row_matches_a_real_model_name():
    assert {glob for _, glob, _ in model_rules.RULES} == set(ROW_EXAMPLES)
    for protocol, glob, rule in model_rules.RULES:
        assert rule in model_rules.rules_for(protocol, ROW_EXAMPLES[glob]), glob
