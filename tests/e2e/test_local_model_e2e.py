"""A legacy OpenAI or Anthropic app on a local OpenAI-compatible server running SmolLM3, through a
real mitmdump. `transformers serve` returns SmolLM3's <think> and <tool_call> markup raw in
`content` (../shared/smollm3/SERVING.md); the stand-in upstream replays a recorded OpenAI chat
completion with its content replaced by such text."""

from __future__ import annotations

import json

import pytest

from tests.harness import fixtures
from tests.harness.proxy import ProxyProcess
from tests.harness.upstream import Reply

SMOLLM3_TEXT = ('<think>\nThe user wants the weather in Paris. I should call the tool.\n</think>\n'
                '<tool_call>\n{"name": "weather", "arguments": {"city": "Paris"}}\n</tool_call>')


def smollm3_reply(req) -> Reply:
    recorded = json.loads(fixtures.body("openai-chat/vercel-ai/openai-text.json"))
    recorded["model"] = "HuggingFaceTB/SmolLM3-3B"
    recorded["choices"][0]["message"]["content"] = SMOLLM3_TEXT
    return Reply.json(200, recorded)


@pytest.fixture(scope="module")
def proxy(upstream, tmp_path_factory):
    config = f"""
state: memory
providers:
  local:
    protocol: openai-chat
    base_url: {upstream.url}/v1
    local_model: {{think_tags: true, tool_call_tags: true, reasoning_switch: smollm3, thinking_default: false}}
routes:
  - {{match: {{host: api.openai.com}}, provider: local, model: HuggingFaceTB/SmolLM3-3B}}
  - {{match: {{host: api.anthropic.com}}, provider: local, model: HuggingFaceTB/SmolLM3-3B}}
"""
    with ProxyProcess(tmp_path_factory.mktemp("local"), config) as p:
        yield p


TOOL = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


def test_openai_app_gets_native_reasoning_and_tool_calls(proxy, upstream):
    upstream.script = smollm3_reply
    client = proxy.sdk_client("openai", "sk-none")
    reply = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Weather in Paris?"}],
                                           tools=[TOOL], reasoning_effort="low")
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert json.loads(choice.message.tool_calls[0].function.arguments) == {"city": "Paris"}
    assert "<tool_call>" not in (choice.message.content or "") and "<think>" not in (choice.message.content or "")
    assert "Paris" in (choice.message.model_extra or {}).get("reasoning_content", "")
    sent = upstream.received[0].json
    assert sent["model"] == "HuggingFaceTB/SmolLM3-3B"
    assert sent["chat_template_kwargs"]["enable_thinking"] is True
    assert sent["messages"][0]["role"] == "system" and sent["messages"][0]["content"].endswith("/think")
    assert "reasoning_effort" not in sent


def test_anthropic_app_thinking_off_by_default(proxy, upstream):
    upstream.script = smollm3_reply
    client = proxy.sdk_client("anthropic", "sk-none")
    message = client.messages.create(model="claude-sonnet-4-5", max_tokens=512, messages=[{"role": "user", "content": "Weather?"}],
                                     tools=[{"name": "weather", "input_schema": TOOL["function"]["parameters"]}])
    kinds = [b.type for b in message.content]
    assert kinds[0] == "thinking" and "tool_use" in kinds and message.stop_reason == "tool_use"
    sent = upstream.received[0].json
    assert sent["chat_template_kwargs"]["enable_thinking"] is False
    assert sent["messages"][0]["content"].endswith("/no_think")
