"""Translation end to end: an OpenAI-Chat app on an Anthropic upstream and an Anthropic app (Claude Code's
SDK) on an OpenAI-compatible upstream, through a real mitmdump, with recorded upstream traffic."""

from __future__ import annotations

import base64
import json
import time

import pytest

from tests.harness.proxy import module_proxy
from tests.harness.upstream import Reply

PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082")).decode()
TOOLS_OPENAI = [{"type": "function", "function": {"name": "weather", "description": "Weather for a city",
                                                  "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
                {"type": "function", "function": {"name": "search", "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}}]
TOOLS_ANTHROPIC = [{"name": "GetWeatherArgs", "description": "weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]


def config(upstream_url: str) -> str:
    return f"""
state: memory
providers:
  claude:
    protocol: anthropic
    base_url: {upstream_url}
    keys: ["sk-ant-pool-translate-1"]
    max_tokens_default: 2048
  gpt:
    protocol: openai-chat
    base_url: {upstream_url}
    keys: ["sk-pool-translate-2"]
routes:
  - match: {{host: api.openai.com}}
    provider: claude
    model_map: {{"gpt-4o*": claude-sonnet-4-5}}
  - match: {{host: api.anthropic.com}}
    provider: gpt
    model: gpt-4o
  - match: {{host: generativelanguage.googleapis.com}}
    provider: claude
    model: claude-sonnet-4-5
"""


proxy = module_proxy("translate", config)


def openai_client(proxy):
    return proxy.sdk_client("openai", "sk-app")


def anthropic_client(proxy):
    return proxy.sdk_client("anthropic", "sk-app")


def test_openai_app_on_anthropic_non_stream_with_tools_and_image(proxy, upstream):
    upstream.script = lambda req: Reply.fixture("anthropic-messages/prism/tool-use-parallel-2.json")
    reply = openai_client(proxy).chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": [{"type": "text", "text": "What is this, and the weather?"},
                                               {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}],
        tools=TOOLS_OPENAI, tool_choice="required", stop="END",
    )
    (req,) = upstream.received
    assert req.path == "/v1/messages" and req.key == "sk-ant-pool-translate-1"
    sent = req.json
    assert sent["model"] == "claude-sonnet-4-5" and sent["max_tokens"] == 2048
    assert sent["system"] in ("Be brief.", [{"type": "text", "text": "Be brief."}])
    assert sent["stop_sequences"] == ["END"]
    assert sent["tool_choice"]["type"] == "any"
    assert sent["tools"][0]["input_schema"]["required"] == ["city"]
    image = sent["messages"][0]["content"][1]
    assert image["type"] == "image" and image["source"] == {"type": "base64", "media_type": "image/png", "data": PNG}
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = {c.function.name: json.loads(c.function.arguments) for c in choice.message.tool_calls}
    assert calls == {"weather": {"city": "New York"}, "search": {"query": "current top news"}}
    assert choice.message.tool_calls[0].id == "toolu_01TZFvQ9JmBsRNEJkRjvp2Qe"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (458, 72)


def test_openai_app_on_anthropic_stream_with_tools(proxy, upstream):
    upstream.script = lambda req: Reply.fixture("anthropic-messages/prism/stream-text-then-tool-use.sse", delay=0.05)
    with openai_client(proxy).chat.completions.stream(
        model="gpt-4o", messages=[{"role": "user", "content": "news?"}], tools=TOOLS_OPENAI,
        stream_options={"include_usage": True},
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content.startswith("I")
    call = choice.message.tool_calls[0]
    assert call.function.name == "search" and isinstance(json.loads(call.function.arguments), dict)
    assert final.usage.prompt_tokens == 465 and final.usage.completion_tokens > 0
    assert upstream.received[0].json["stream"] is True


def test_anthropic_app_on_openai_compatible_upstream_with_thinking_and_tools(proxy, upstream):
    upstream.script = lambda req: Reply.fixture("openai-chat/vercel-ai/deepseek-tool-call.chunks.jsonl")
    client = anthropic_client(proxy)
    with client.messages.stream(
        model="claude-sonnet-4-5", max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 2048},
        tools=[{"name": "weather", "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}}],
        messages=[{"role": "user", "content": "Weather in Berlin?"}],
    ) as stream:
        message = stream.get_final_message()
    kinds = [b.type for b in message.content]
    assert kinds[0] == "thinking" and "tool_use" in kinds
    tool = next(b for b in message.content if b.type == "tool_use")
    assert isinstance(tool.input, dict) and tool.input
    assert message.stop_reason == "tool_use"
    assert message.usage.output_tokens > 0
    sent = upstream.received[0].json
    assert sent["model"] == "gpt-4o" and sent["stream"] is True
    assert sent["tools"][0]["function"]["name"] == "weather"
    assert sent.get("reasoning_effort") in ("low", "medium", "high", "minimal")


def test_claude_code_like_tool_loop_streams(proxy, upstream):
    replies = iter([Reply.fixture("openai-chat/openai-python/stream-tool-call-pydantic.sse", delay=0.2),
                    Reply.fixture("openai-chat/prism/stream-text-followup.sse")])
    upstream.script = lambda req: next(replies)
    client = anthropic_client(proxy)
    history = [{"role": "user", "content": "What's the weather in Edinburgh?"}]
    first_event_at = None
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=1024, tools=TOOLS_ANTHROPIC, messages=history) as stream:
        for _ in stream:
            first_event_at = first_event_at or time.monotonic()
        turn = stream.get_final_message()
    assert upstream.last_event_sent_at - first_event_at > 0.5, "events were not buffered"
    assert turn.stop_reason == "tool_use"
    tool = next(b for b in turn.content if b.type == "tool_use")
    assert tool.name == "GetWeatherArgs" and tool.input["city"] == "Edinburgh"
    history += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in turn.content]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool.id, "content": "12°C, rain"}]}]
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=1024, tools=TOOLS_ANTHROPIC, messages=history) as stream:
        answer = stream.get_final_message()
    assert answer.stop_reason == "end_turn" and answer.content[0].text
    second = upstream.received[1].json["messages"]
    assistant = next(m for m in second if m["role"] == "assistant")
    assert assistant["tool_calls"][0]["id"] == tool.id
    tool_msg = next(m for m in second if m["role"] == "tool")
    assert tool_msg["tool_call_id"] == tool.id and "12°C" in json.dumps(tool_msg["content"], ensure_ascii=False)


def test_upstream_error_arrives_in_the_clients_protocol(proxy, upstream):
    import openai

    upstream.script = lambda req: Reply.fixture("anthropic-messages/anthropic-sdk-python/error-400-invalid-request.json", status=400)
    with pytest.raises(openai.BadRequestError) as info:
        openai_client(proxy).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 400 and info.value.body["type"] == "invalid_request_error"


def test_unexpressible_feature_is_a_clear_400_and_nothing_goes_upstream(proxy, upstream):
    import openai

    with pytest.raises(openai.BadRequestError) as info:
        openai_client(proxy).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}], n=2)
    assert "n" in (info.value.body.get("param") or "") or "'n'" in info.value.message
    assert upstream.received == []


def test_count_tokens_on_an_openai_upstream_is_estimated_not_refused(proxy, upstream):
    client = anthropic_client(proxy)
    count = client.messages.count_tokens(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "x" * 400}])
    assert 90 <= count.input_tokens <= 130
    assert upstream.received == []


def test_responses_app_on_anthropic_upstream_streams(proxy, upstream):
    upstream.script = lambda req: Reply.fixture("anthropic-messages/prism/stream-text-then-tool-use.sse")
    client = openai_client(proxy)
    tools = [{"type": "function", "name": "search", "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}]
    with client.responses.stream(model="gpt-4o", input="news?", tools=tools) as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    calls = [item for item in final.output if item.type == "function_call"]
    assert calls and calls[0].name == "search" and isinstance(json.loads(calls[0].arguments), dict)
    assert final.usage.input_tokens == 465
    sent = upstream.received[0].json
    assert upstream.received[0].path == "/v1/messages" and sent["tools"][0]["name"] == "search"


def test_responses_stateful_field_is_refused(proxy, upstream):
    import openai

    with pytest.raises(openai.BadRequestError) as info:
        openai_client(proxy).responses.create(model="gpt-4o", input="x", previous_response_id="resp_123")
    assert "previous_response_id" in str(info.value)
    assert upstream.received == []


def test_gemini_app_on_anthropic_upstream(proxy, upstream, client_env):
    from google import genai
    from google.genai import types

    client_env(proxy)
    upstream.script = lambda req: Reply.fixture("anthropic-messages/prism/tool-use-parallel-2.json")
    client = genai.Client(api_key="AIza-app-placeholder")
    weather = types.FunctionDeclaration(name="weather", parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}}})
    search = types.FunctionDeclaration(name="search", parameters_json_schema={"type": "object", "properties": {"query": {"type": "string"}}})
    reply = client.models.generate_content(
        model="gemini-2.5-flash", contents="weather and news?",
        config=types.GenerateContentConfig(tools=[types.Tool(function_declarations=[weather, search])],
                                           automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True)))
    calls = {c.name: c.args for c in reply.function_calls}
    assert calls == {"weather": {"city": "New York"}, "search": {"query": "current top news"}}
    assert reply.usage_metadata.prompt_token_count == 458
    (req,) = upstream.received
    assert req.path == "/v1/messages" and req.key == "sk-ant-pool-translate-1" and req.json["model"] == "claude-sonnet-4-5"

    upstream.script = lambda req: Reply.fixture("anthropic-messages/prism/stream-text-basic.sse", delay=0.02)
    text = "".join(chunk.text or "" for chunk in client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"))
    assert len(text) > 20
