"""Legacy OpenAI, Anthropic and Gemini apps on a real `transformers serve` running SmolLM3, through a
real `llmitm run`.

The server runs a tiny SmolLM3 with random weights (tests/harness/smollm3_model.py) and SmolLM3's own
chat template, so its answers are nonsense: the tests hold shapes, stop reasons and usage, and above
all the thinking branch the template really rendered. That branch is read off the server's reported
prompt tokens, compared with a local render of the same template and tokenizer: reasoning on writes
SmolLM3's long default "Thought / Solution" system prompt (about 600 tokens with this tokenizer),
reasoning off the short one (about 130), so the two counts never meet. If llmitm stopped sending the
switch (`chat_template_kwargs.enable_thinking` plus `/think` or `/no_think`), the template would fall
back to thinking on and every "off" test here would fail.

How the real server differs from the stand-in upstream of test_local_model_e2e.py (SERVING.md; each
is met here as it is, not worked around):
- it serves only the model it was started with and answers any other model name with a 400 (served
  here as the relative folder HuggingFaceTB/SmolLM3-3B, so the real model id is valid; routes rewrite
  the app's model to it);
- it answers fields it does not know with a 422, and its errors are FastAPI's {"detail": ...}, not
  OpenAI's error object;
- it ignores `stream_options`, puts usage on the last streamed chunk (the one with finish_reason)
  whatever the request said, and ends a stream without `data: [DONE]`;
- an assistant message with `tool_calls` renders empty (the server drops its text when calls are
  present, and SmolLM3's template renders no calls): llmitm must write them into the text; a tool
  result renders as a user turn; declared `tools` reach the template as they are.
"""

from __future__ import annotations

import pytest

from tests.harness import local_server
from tests.harness.proxy import ProxyProcess

pytestmark = pytest.mark.e2e

PROMPT = "Say hello."
MODEL = local_server.MODEL_ID
THINKING_ON, THINKING_OFF = True, False


@pytest.fixture(scope="session")
def smollm3(tmp_path_factory):
    """The server venv, the tiny model and a running `transformers serve` (created on first use),
    with the prompt token counts it must report (see `expected_prompt_tokens`)."""
    python = local_server.ensure_server_venv()
    home = local_server.ensure_model(python)
    server = local_server.LocalServer(python, home, tmp_path_factory.mktemp("smollm3") / "server.log").launch()
    try:
        counts = expected_prompt_tokens(python, home)  # while the server loads
        server.wait_ready()
        yield server, counts
    finally:
        server.stop()


# A tool call the app made earlier and its result. SmolLM3's template renders only message text (no
# `tool_calls`): llmitm writes the call into the assistant's text in the Hermes format the template
# itself asks the model for, and the server renders a tool result as a user turn.
WEATHER = {"type": "function", "function": {"name": "weather", "description": "Current weather in a city.",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
HISTORY_APP = [{"role": "user", "content": "Weather in Paris?"},
               {"role": "assistant", "content": None, "tool_calls": [
                   {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}]},
               {"role": "tool", "tool_call_id": "call_1", "content": "18 C and sunny"}]
HISTORY_AS_TEMPLATE_SEES_IT = [HISTORY_APP[0],
                               {"role": "assistant",
                                "content": '<tool_call>\n{"name": "weather", "arguments": {"city": "Paris"}}\n</tool_call>'},
                               HISTORY_APP[2]]
USER = [{"role": "user", "content": PROMPT}]
INSTRUCTIONS = "You are terse. Answer in one line."
# name: (messages, tools, enable_thinking) as the template must see them.
RENDERINGS = {
    "plain, thinking": (USER, None, True),
    "plain, no thinking": (USER, None, False),
    "tool history, no thinking": (HISTORY_AS_TEMPLATE_SEES_IT, None, False),
    "tools, no thinking": (USER, [WEATHER], False),
    # The app's own system prompt replaces the template's default one; only the mode line differs.
    "instructions, thinking": ([{"role": "system", "content": INSTRUCTIONS}, *USER], None, True),
    "instructions, no thinking": ([{"role": "system", "content": INSTRUCTIONS}, *USER], None, False),
}


def expected_prompt_tokens(python, home) -> dict[str, int]:
    """What the server must report as prompt tokens for each of RENDERINGS: the template rendered
    locally with the served tokenizer. The `/think` or `/no_think` llmitm appends to the system
    prompt (or sends as the whole system prompt) is cut out by the template, so it does not appear
    here. The template also writes today's date: a run across midnight may see a count differ."""
    cases = [{"messages": m, "tools": t, "enable_thinking": on} for m, t, on in RENDERINGS.values()]
    counts = dict(zip(RENDERINGS, local_server.prompt_token_counts(python, home, cases), strict=True))
    assert counts["plain, thinking"] > counts["plain, no thinking"] + 300, "the two branches must differ clearly"
    # Each test tells its rendering from the others it could be confused with.
    assert len(set(counts.values())) == len(counts), f"two renderings have the same length: {counts}"
    return counts


@pytest.fixture
def prompt_tokens(smollm3) -> dict[bool, int]:
    counts = smollm3[1]
    return {THINKING_ON: counts["plain, thinking"], THINKING_OFF: counts["plain, no thinking"]}


@pytest.fixture
def rendered(smollm3) -> dict[str, int]:
    return smollm3[1]


@pytest.fixture(scope="module")
def proxy(smollm3, tmp_path_factory):
    server, _ = smollm3
    local = f"""{{protocol: openai-chat, base_url: "{server.url}/v1",
              local_model: {{think_tags: true, tool_call_tags: true, reasoning_switch: smollm3, thinking_default: false}}}}"""
    config = f"""
state: memory
providers:
  smollm3: {local}
routes:
  # Without a model rewrite (only for the error tests below): the app's model name reaches the server.
  - {{match: {{host: api.openai.com, model: "unpinned-*"}}, provider: smollm3}}
  - {{match: {{host: api.anthropic.com, model: "unpinned-*"}}, provider: smollm3}}
  - {{match: {{host: api.openai.com}}, provider: smollm3, model: {MODEL}}}
  - {{match: {{host: api.anthropic.com}}, provider: smollm3, model: {MODEL}}}
  - {{match: {{host: generativelanguage.googleapis.com}}, provider: smollm3, model: {MODEL}}}
"""
    with ProxyProcess(tmp_path_factory.mktemp("smollm3-proxy"), config) as p:
        yield p


def openai_client(proxy):
    return proxy.sdk_client("openai", "sk-app-placeholder", timeout=120)


def anthropic_client(proxy):
    return proxy.sdk_client("anthropic", "sk-ant-app-placeholder", timeout=120)


def gemini_client(proxy, client_env):
    from google import genai

    client_env(proxy)
    return genai.Client(api_key="AIza-app-placeholder")


# ---------------------------------------------------------------------------------------------
# OpenAI Chat Completions


def test_openai_chat_reasoning_high_renders_the_thinking_branch(proxy, prompt_tokens):
    reply = openai_client(proxy).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": PROMPT}], max_tokens=8, reasoning_effort="high")
    assert reply.usage.prompt_tokens == prompt_tokens[THINKING_ON]
    assert 0 < reply.usage.completion_tokens <= 8
    assert reply.choices[0].finish_reason in ("length", "stop")
    assert reply.choices[0].message.role == "assistant"


def test_openai_chat_stream_reasoning_none_renders_the_plain_branch(proxy, prompt_tokens):
    chunks = list(openai_client(proxy).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": PROMPT}], max_tokens=8, reasoning_effort="none",
        stream=True, stream_options={"include_usage": True}))
    usage = [c.usage for c in chunks if c.usage]
    assert len(usage) == 1 and usage[0].prompt_tokens == prompt_tokens[THINKING_OFF]
    assert 0 < usage[0].completion_tokens <= 8
    finish = [choice.finish_reason for c in chunks for choice in c.choices if choice.finish_reason]
    assert finish in (["length"], ["stop"])


# ---------------------------------------------------------------------------------------------
# OpenAI Responses


def test_openai_responses_without_reasoning_uses_the_configured_default(proxy, prompt_tokens):
    response = openai_client(proxy).responses.create(model="gpt-4o", input=PROMPT, max_output_tokens=16)
    assert response.usage.input_tokens == prompt_tokens[THINKING_OFF]  # thinking_default: false
    assert 0 < response.usage.output_tokens <= 16
    assert response.status in ("completed", "incomplete")


def test_openai_responses_stream_reasoning_high_renders_the_thinking_branch(proxy, prompt_tokens):
    events = list(openai_client(proxy).responses.create(model="gpt-4o", input=PROMPT, max_output_tokens=16,
                                                        reasoning={"effort": "high"}, stream=True))
    # A cut-off answer ends with response.incomplete (the SDK's stream helper only returns a
    # response.completed one), carrying the whole response as the completed event would.
    assert events[0].type == "response.created" and events[-1].type in ("response.completed", "response.incomplete")
    final = events[-1].response
    assert final.usage.input_tokens == prompt_tokens[THINKING_ON]
    assert 0 < final.usage.output_tokens <= 16


# ---------------------------------------------------------------------------------------------
# Anthropic Messages


def test_anthropic_stream_thinking_enabled_renders_the_thinking_branch(proxy, prompt_tokens):
    # The smallest request the real Anthropic API accepts with thinking: budget 1024 < max_tokens.
    with anthropic_client(proxy).messages.stream(
            model="claude-sonnet-4-5", max_tokens=1025, thinking={"type": "enabled", "budget_tokens": 1024},
            messages=[{"role": "user", "content": PROMPT}]) as stream:
        message = stream.get_final_message()
    assert message.usage.input_tokens == prompt_tokens[THINKING_ON]
    assert 0 < message.usage.output_tokens <= 1025
    assert message.stop_reason in ("max_tokens", "end_turn")
    assert message.role == "assistant" and message.content


def test_anthropic_thinking_disabled_renders_the_plain_branch(proxy, prompt_tokens):
    message = anthropic_client(proxy).messages.create(
        model="claude-sonnet-4-5", max_tokens=8, thinking={"type": "disabled"},
        messages=[{"role": "user", "content": PROMPT}])
    assert message.usage.input_tokens == prompt_tokens[THINKING_OFF]
    assert 0 < message.usage.output_tokens <= 8
    assert message.stop_reason in ("max_tokens", "end_turn")


# ---------------------------------------------------------------------------------------------
# Gemini


def test_gemini_thinking_budget_renders_the_thinking_branch(proxy, prompt_tokens, client_env):
    from google.genai import types

    client = gemini_client(proxy, client_env)  # kept: a dropped genai.Client closes its HTTP client
    reply = client.models.generate_content(
        model="gemini-2.5-flash", contents=PROMPT,
        config=types.GenerateContentConfig(max_output_tokens=8, thinking_config=types.ThinkingConfig(thinking_budget=512)))
    assert reply.usage_metadata.prompt_token_count == prompt_tokens[THINKING_ON]
    assert reply.candidates[0].finish_reason in (types.FinishReason.MAX_TOKENS, types.FinishReason.STOP)


def test_gemini_stream_budget_zero_renders_the_plain_branch(proxy, prompt_tokens, client_env):
    from google.genai import types

    client = gemini_client(proxy, client_env)
    chunks = list(client.models.generate_content_stream(
        model="gemini-2.5-flash", contents=PROMPT,
        config=types.GenerateContentConfig(max_output_tokens=8, thinking_config=types.ThinkingConfig(thinking_budget=0))))
    assert chunks[-1].usage_metadata.prompt_token_count == prompt_tokens[THINKING_OFF]
    assert chunks[-1].candidates[0].finish_reason in (types.FinishReason.MAX_TOKENS, types.FinishReason.STOP)


# ---------------------------------------------------------------------------------------------
# Tools: what SmolLM3's template renders of them


def test_tool_call_history_reaches_the_template_as_hermes_markup(proxy, rendered):
    reply = openai_client(proxy).chat.completions.create(model="gpt-4o", messages=HISTORY_APP, max_tokens=8,
                                                         reasoning_effort="none")
    assert reply.usage.prompt_tokens == rendered["tool history, no thinking"]
    assert reply.choices[0].finish_reason in ("length", "stop")


def test_declared_tools_reach_the_template_streamed(proxy, rendered):
    chunks = list(openai_client(proxy).chat.completions.create(
        model="gpt-4o", messages=USER, tools=[WEATHER], max_tokens=8, reasoning_effort="none",
        stream=True, stream_options={"include_usage": True}))
    usage = [c.usage for c in chunks if c.usage]
    assert len(usage) == 1 and usage[0].prompt_tokens == rendered["tools, no thinking"]


# ---------------------------------------------------------------------------------------------
# The server's own errors (FastAPI's {"detail": ...}, not OpenAI's error object) reach each app in
# its protocol


def test_a_model_name_the_server_is_not_pinned_to_is_the_apps_400(proxy):
    import anthropic
    import openai

    with pytest.raises(openai.BadRequestError) as openai_error:
        openai_client(proxy).chat.completions.create(model="unpinned-gpt", messages=USER, max_tokens=8)
    assert "pinned" in str(openai_error.value)
    with pytest.raises(anthropic.BadRequestError) as anthropic_error:
        anthropic_client(proxy).messages.create(model="unpinned-claude", max_tokens=8, messages=USER)
    assert "pinned" in str(anthropic_error.value)
    assert anthropic_error.value.body["type"] == "error" and anthropic_error.value.body["error"]["type"] == "invalid_request_error"


def test_a_field_the_server_does_not_know_is_the_apps_422(proxy):
    import openai

    # top_k is vLLM's and llama.cpp's extension; an OpenAI app sending it gets the server's refusal.
    with pytest.raises(openai.UnprocessableEntityError) as error:
        openai_client(proxy).chat.completions.create(model="gpt-4o", messages=USER, max_tokens=8, extra_body={"top_k": 5})
    assert "top_k" in str(error.value)


# ---------------------------------------------------------------------------------------------
# An app's own system prompt arrives with the switch after it (the template strips the switch)


def test_responses_instructions_with_reasoning_none(proxy, rendered):
    response = openai_client(proxy).responses.create(model="gpt-4o", instructions=INSTRUCTIONS, input=PROMPT,
                                                     max_output_tokens=16, reasoning={"effort": "none"})
    assert response.usage.input_tokens == rendered["instructions, no thinking"]


def test_gemini_system_instruction_with_a_thinking_budget(proxy, rendered, client_env):
    from google.genai import types

    client = gemini_client(proxy, client_env)
    reply = client.models.generate_content(
        model="gemini-2.5-flash", contents=PROMPT,
        config=types.GenerateContentConfig(system_instruction=INSTRUCTIONS, max_output_tokens=8,
                                           thinking_config=types.ThinkingConfig(thinking_budget=512)))
    assert reply.usage_metadata.prompt_token_count == rendered["instructions, thinking"]
