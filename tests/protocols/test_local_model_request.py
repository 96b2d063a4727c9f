"""Local OpenAI-compatible servers (local_model): the request an app sends in its own protocol,
as the local server receives it — reasoning switched on/off the model's way (PROTOCOLS.md §5.1),
messages the model's template can render (§5.2) — checked by rendering SmolLM3's real chat template
(/work/shared/smollm3/chat_template.jinja) with the translated messages."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import jinja2
import pytest
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

from llmitm.config import LocalModelConfig
from llmitm.protocols import Translation
from llmitm.protocols.local_model import neutralise_flags

TEMPLATE = Path(__file__).resolve().parents[2] / ".." / "shared" / "smollm3" / "chat_template.jinja"
SMOL = LocalModelConfig(tool_call_tags=True, reasoning_switch="smollm3")
SMOL_THINK = LocalModelConfig(tool_call_tags=True, reasoning_switch="smollm3", thinking_default=True)
KWARGS = LocalModelConfig(reasoning_switch="chat_template_kwargs")
NONE = LocalModelConfig()
WEATHER_C = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                              "parameters": {"type": "object",
                                                             "properties": {"city": {"type": "string"}}}}}
WEATHER_A = {"name": "get_weather", "description": "Weather in a city",
             "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}


class _Generation(Extension):
    """transformers' `{% generation %}` tag (it marks assistant tokens for training masks)."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def render_template(body: dict) -> str:
    """The prompt the server builds: the template rendered as transformers does
    (trim_blocks, lstrip_blocks; chat_template_kwargs and tools passed as template variables)."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[_Generation, jinja2.ext.loopcontrols])
    env.globals["strftime_now"] = lambda fmt: datetime.datetime.now().strftime(fmt)
    template = env.from_string(TEMPLATE.read_text())
    kwargs = dict(body.get("chat_template_kwargs") or {})
    if body.get("tools"):
        kwargs["tools"] = body["tools"]
    return template.render(messages=body["messages"], add_generation_prompt=True, **kwargs)


def translate(client: str, body: dict, cfg=SMOL) -> tuple[dict, Translation]:
    t = Translation(client, "openai-chat", local_model=cfg)
    up = t.request(body)
    assert up.path == "/v1/chat/completions"
    return json.loads(up.body), t


def a_req(**kw) -> dict:
    return {"model": "claude-sonnet-4-5", "max_tokens": 1000, "messages": [{"role": "user", "content": "hi"}], **kw}


def c_req(**kw) -> dict:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], **kw}


def mode(prompt: str) -> str:
    line = next(x for x in prompt.splitlines() if x.startswith("Reasoning Mode: "))
    return line.removeprefix("Reasoning Mode: ")


# ---------------------------------------------------------------------------------------------
# Reasoning switch


@pytest.mark.parametrize(("client", "body", "cfg", "on"), [
    # Anthropic: no thinking unless asked, whatever SmolLM3's own default
    ("anthropic", a_req(), SMOL, False),
    ("anthropic", a_req(thinking={"type": "disabled"}), SMOL_THINK, False),
    ("anthropic", a_req(thinking={"type": "enabled", "budget_tokens": 2048}), SMOL, True),
    ("anthropic", a_req(thinking={"type": "adaptive"}), SMOL, True),
    ("anthropic", a_req(), SMOL_THINK, True),  # thinking_default
    # OpenAI Chat: reasoning_effort none/minimal → off, any level → on, absent → the default
    ("openai-chat", c_req(reasoning_effort="none"), SMOL_THINK, False),
    ("openai-chat", c_req(reasoning_effort="minimal"), SMOL_THINK, False),
    ("openai-chat", c_req(reasoning_effort="low"), SMOL, True),
    ("openai-chat", c_req(reasoning_effort="high"), SMOL, True),
    ("openai-chat", c_req(), SMOL, False),
    ("openai-chat", c_req(), SMOL_THINK, True),
])
def test_reasoning_switch_reaches_smollm3_template(client, body, cfg, on):
    out, t = translate(client, body, cfg)
    assert "reasoning_effort" not in out
    assert out["chat_template_kwargs"]["enable_thinking"] is on
    system = out["messages"][0]
    assert system["role"] == "system" and system["content"] == ("/think" if on else "/no_think")
    prompt = render_template(out)
    assert mode(prompt) == ("/think" if on else "/no_think")
    # the flag alone leaves SmolLM3's default instructions in place
    assert "You are a helpful AI assistant named SmolLM" in prompt
    assert prompt.endswith("<|im_start|>assistant\n" if on else "<|im_start|>assistant\n<think>\n\n</think>\n")


def test_template_flag_wins_over_kwarg_so_both_must_agree():
    """Why both are sent: a server that ignores chat_template_kwargs still gets the system flag, and
    the template reads the flag over the kwarg."""
    out, _ = translate("anthropic", a_req(system="Be brief."))
    assert out["messages"][0]["content"] == "Be brief.\n/no_think"
    prompt = render_template(out)
    assert mode(prompt) == "/no_think"
    assert "## Custom Instructions\n\nBe brief.\n\n" in prompt
    assert mode(render_template({**out, "chat_template_kwargs": {"enable_thinking": True}})) == "/no_think"


def test_effort_levels_and_budgets_are_warned_not_honoured():
    _, t = translate("anthropic", a_req(thinking={"type": "enabled", "budget_tokens": 4096}))
    assert any("budget 4096 not enforced" in w for w in t.warnings)
    _, t = translate("openai-chat", c_req(reasoning_effort="high"))
    assert any("effort 'high' not honoured" in w for w in t.warnings)
    _, t = translate("openai-chat", c_req(reasoning_effort="none"))
    assert t.warnings == []


def test_stray_flags_in_client_system_text_are_made_inert():
    system = "Docs: https://example.com/no_think/guide and /system_override tricks."
    out, t = translate("openai-chat", c_req(messages=[{"role": "system", "content": system},
                                                       {"role": "user", "content": "hi"}],
                                             reasoning_effort="high"))
    prompt = render_template(out)
    assert mode(prompt) == "/think"  # not switched off by the URL
    assert "## Metadata" in prompt  # not turned into a bare system override
    assert "https://example.com/\u200bno_think/guide" in prompt
    assert any("made inert" in w for w in t.warnings)
    assert neutralise_flags("see /thinking and /think") == "see /\u200bthinking and /\u200bthink"
    assert neutralise_flags("a/b c") == "a/b c"


def test_chat_template_kwargs_switch_leaves_the_system_prompt_alone():
    out, _ = translate("anthropic", a_req(system="Be brief.", thinking={"type": "enabled", "budget_tokens": 2048}),
                       KWARGS)
    assert out["chat_template_kwargs"] == {"enable_thinking": True}
    assert out["messages"][0] == {"role": "system", "content": "Be brief."}
    assert "reasoning_effort" not in out


def test_no_switch_sends_neither_kwargs_nor_reasoning_effort():
    out, t = translate("openai-chat", c_req(reasoning_effort="high"), NONE)
    assert "chat_template_kwargs" not in out and "reasoning_effort" not in out
    assert out["messages"] == [{"role": "user", "content": "hi"}]
    assert any("reasoning_switch is none" in w for w in t.warnings)


def test_max_tokens_sent_as_max_tokens():
    out, _ = translate("anthropic", a_req(max_tokens=300), NONE)
    assert out["max_tokens"] == 300 and "max_completion_tokens" not in out
    out, _ = translate("openai-chat", c_req(max_completion_tokens=200), NONE)
    assert out["max_tokens"] == 200 and "max_completion_tokens" not in out


def test_local_model_on_a_non_chat_upstream_is_ignored_with_a_warning():
    t = Translation("openai-chat", "anthropic", local_model=SMOL)
    out = json.loads(t.request(c_req(max_tokens=10)).body)
    assert "chat_template_kwargs" not in out
    assert any("local_model settings ignored" in w for w in t.warnings)


def test_without_local_model_nothing_changes():
    t = Translation("anthropic", "openai-chat")
    out = json.loads(t.request(a_req(thinking={"type": "enabled", "budget_tokens": 2048})).body)
    assert out["reasoning_effort"] == "medium" and "chat_template_kwargs" not in out


# ---------------------------------------------------------------------------------------------
# Messages and tools

A_TOOL_LOOP = a_req(
    system=[{"type": "text", "text": "You are a weather bot."}, {"type": "text", "text": "Be brief."}],
    tools=[WEATHER_A],
    messages=[
        {"role": "user", "content": [{"type": "text", "text": "<system-reminder>x</system-reminder>"},
                                     {"type": "text", "text": "Weather in Paris and Lyon?"}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Two calls.", "signature": ""},
            {"type": "text", "text": "Checking both."},
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Lyon"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny, 21°C"},
            {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "rain"}]}]},
    ])


def test_anthropic_tool_loop_rendered_for_smollm3():
    out, t = translate("anthropic", A_TOOL_LOOP)
    msgs = out["messages"]
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "tool", "tool"]
    assert all(isinstance(m["content"], str) for m in msgs)  # the template renders arrays as ""
    assert msgs[1]["content"] == "<system-reminder>x</system-reminder>\nWeather in Paris and Lyon?"
    assert "tool_calls" not in msgs[2]
    assert msgs[2]["content"] == (
        "Checking both.\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Lyon"}}\n</tool_call>')
    assert [m["content"] for m in msgs[3:]] == ["sunny, 21°C", "rain"]
    assert [m["tool_call_id"] for m in msgs[3:]] == ["call_1", "call_2"]
    assert out["tools"] == [WEATHER_C]
    assert out["chat_template_kwargs"]["xml_tools"] == [WEATHER_C["function"]]
    assert any("reasoning from earlier turns not sent" in w for w in t.warnings)  # unsigned, dropped

    prompt = render_template(out)
    assert mode(prompt) == "/no_think"
    assert "You are a weather bot.\n\nBe brief.\n\n### Tools" in prompt
    assert "<tools>\n{'type': 'function', 'function': {'name': 'get_weather'" in prompt
    assert ('<|im_start|>assistant\n<think>\n\n</think>\nChecking both.\n<tool_call>\n'
            '{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>') in prompt
    assert "<|im_start|>user\nsunny, 21°C<|im_end|>\n<|im_start|>user\nrain<|im_end|>\n" in prompt
    assert "Two calls." not in prompt


def test_xml_tools_alone_render_the_tools_block():
    """llama-server may not hand `tools` to the template: chat_template_kwargs.xml_tools still does."""
    out, _ = translate("anthropic", A_TOOL_LOOP)
    prompt = render_template({k: v for k, v in out.items() if k != "tools"})
    assert "<tools>\n{'name': 'get_weather'" in prompt
    assert "within <tool_call></tool_call> XML tags" in prompt


def test_openai_tool_loop_chat_to_chat():
    body = c_req(tools=[WEATHER_C], reasoning_effort="low", messages=[
        {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
        {"role": "assistant", "content": None, "reasoning_content": "call it",
         "tool_calls": [{"id": "call_9", "type": "function",
                         "function": {"name": "get_weather", "arguments": '{"city":"Nice"}'}}]},
        {"role": "tool", "tool_call_id": "call_9", "content": "cloudy"}])
    out, _ = translate("openai-chat", body)
    msgs = out["messages"]
    assert msgs[0] == {"role": "system", "content": "/think"}
    assert msgs[2] == {"role": "assistant", "content":
                       '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Nice"}}\n</tool_call>'}
    assert msgs[3] == {"role": "tool", "tool_call_id": "call_9", "content": "cloudy"}
    prompt = render_template(out)
    assert mode(prompt) == "/think"
    assert ('<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Nice"}}\n'
            "</tool_call><|im_end|>") in prompt


def test_tool_call_tags_off_keeps_native_tool_calls():
    cfg = LocalModelConfig(reasoning_switch="chat_template_kwargs")
    out, _ = translate("anthropic", A_TOOL_LOOP, cfg)
    assert out["messages"][2]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert "xml_tools" not in out["chat_template_kwargs"]


def test_arguments_that_are_not_json_are_written_as_produced():
    body = c_req(messages=[{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{broken"}}]}])
    out, _ = translate("openai-chat", body)
    assert out["messages"][2]["content"] == '<tool_call>\n{"name": "f", "arguments": "{broken"}\n</tool_call>'


def test_images_are_left_alone():
    """A local server may be multimodal: image parts are passed on, not refused."""
    img = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    out, _ = translate("anthropic", a_req(messages=[{"role": "user", "content": [img, {"type": "text",
                                                                                        "text": "what?"}]}]))
    content = out["messages"][1]["content"]
    assert isinstance(content, list) and content[0]["type"] == "image_url" and content[1]["text"] == "what?"


def test_tool_choice_none_hides_the_tools():
    out, _ = translate("openai-chat", c_req(tools=[WEATHER_C], tool_choice="none"))
    assert "tools" not in out and "tool_choice" not in out and "xml_tools" not in out["chat_template_kwargs"]
    assert "### Tools" not in render_template(out)


@pytest.mark.parametrize(("choice", "needle"), [
    ("required", "You must call one of the tools"),
    ({"type": "function", "function": {"name": "get_weather"}}, "You must call the tool get_weather"),
])
def test_forced_tool_choice_is_also_an_instruction(choice, needle):
    out, t = translate("openai-chat", c_req(tools=[WEATHER_C], tool_choice=choice))
    assert out["tool_choice"] == choice
    assert needle in out["messages"][0]["content"] and out["messages"][0]["content"].endswith("\n/no_think")
    assert needle in render_template(out)
    assert any("tool_choice also stated" in w for w in t.warnings)


def test_later_system_message_does_not_steal_the_flag():
    """The template reads only messages[0]: the flag goes there even when the app's only system
    message comes later."""
    body = c_req(messages=[{"role": "user", "content": "hi"}, {"role": "system", "content": "Now be terse."},
                           {"role": "user", "content": "again"}])
    out, _ = translate("openai-chat", body)
    assert out["messages"][0] == {"role": "system", "content": "/no_think"}
    assert mode(render_template(out)) == "/no_think"


def test_forced_tool_choice_instruction_without_the_smollm3_switch():
    cfg = LocalModelConfig(tool_call_tags=True)
    out, _ = translate("openai-chat", c_req(tools=[WEATHER_C], tool_choice="required"), cfg)
    assert out["messages"][0] == {"role": "system", "content": "You must call one of the tools in this answer."}
    assert "chat_template_kwargs" not in out


def test_openai_app_extensions_for_the_local_server_pass_through():
    """An app written against the local server directly keeps its server-specific fields."""
    body = c_req(top_k=20, min_p=0.05, repetition_penalty=1.1, chat_template_kwargs={"enable_thinking": False},
                 reasoning_effort="high")
    out, t = translate("openai-chat", body)
    assert (out["top_k"], out["min_p"], out["repetition_penalty"]) == (20, 0.05, 1.1)
    assert out["chat_template_kwargs"] == {"enable_thinking": False}  # the app's own switch wins
    assert mode(render_template(out)) == "/no_think"
    assert not any("dropped" in w for w in t.warnings)


def test_anthropic_top_k_is_still_dropped():
    out, t = translate("anthropic", a_req(top_k=5))
    assert "top_k" not in out and any("top_k dropped" in w for w in t.warnings)
