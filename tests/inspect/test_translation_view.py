"""The "llmitm: translation" view and the flow list on a flow translated through llmitm's own hooks:
the four bodies kept on the flow (no header, no key), the requests and responses compared field by
field through the canonical model, warnings with the field each names, the flow list's marks."""

from __future__ import annotations

import json

import pytest
from mitmproxy import http, io
from mitmproxy.addons import proxyserver
from mitmproxy.addons.view import View
from mitmproxy.test import taddons, tflow, tutils

from llmitm.addon import Llmitm
from llmitm.inspect import compare, view
from llmitm.protocols import Translation
from tests.glue.conftest import config_text
from tests.harness import fixtures
from tests.inspect.inspect_helpers import flow_for, render

APP_KEY = "sk-app-own-key-123456789"
APP_REQUEST = {
    "model": "xlate-1", "max_completion_tokens": 300, "temperature": 0.2, "seed": 7,
    "messages": [{"role": "system", "content": "You are terse."},
                 {"role": "user", "content": "Weather in SF?"}],
    "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
}
UPSTREAM_ANSWER = json.dumps({
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
    "content": [{"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "SF"}}],
    "stop_reason": "tool_use", "usage": {"input_tokens": 30, "output_tokens": 12}}).encode()


@pytest.fixture
async def translated_flow(tmp_path, upstream):
    """A chat-completions request routed to an Anthropic upstream with the app's own key, answered by
    a recorded-shape Anthropic message, run through the addon's hooks with mitmweb's view loaded."""
    path = tmp_path / "llmitm.yaml"
    path.write_text(config_text(upstream.url))
    addon = Llmitm()
    with taddons.context(proxyserver.Proxyserver(), View(), addon) as tctx:
        tctx.configure(addon, llmitm_config=str(path))
        registered = view.register()
        request = http.Request.make("POST", "https://api.openai.com/v1/chat/completions", json.dumps(APP_REQUEST).encode(),
                                    {"content-type": "application/json", "authorization": f"Bearer {APP_KEY}"})
        flow = tflow.tflow(req=request, live=True)
        await addon.request(flow)
        flow.response = tutils.tresp(content=UPSTREAM_ANSWER, headers=http.Headers(content_type="application/json"))
        addon.responseheaders(flow)
        addon.response(flow)
        yield flow
        view.unregister(registered)
        await addon.relay.close()


async def test_the_four_bodies_are_kept_on_the_flow_without_any_header_or_key(translated_flow):
    record = translated_flow.metadata["llmitm_bodies"]
    assert json.loads(record["app_request"])["model"] == "xlate-1"
    assert json.loads(record["upstream_request"])["model"] == "claude-x"
    assert record["upstream_response"] == UPSTREAM_ANSWER and json.loads(record["app_response"])["choices"]
    assert (record["client_path"], record["upstream_path"]) == ("/v1/chat/completions", "/v1/messages")
    buffer = __import__("io").BytesIO()
    io.FlowWriter(buffer).add(translated_flow)  # mitmproxy's own save format keeps the record
    (loaded,) = io.FlowReader(__import__("io").BytesIO(buffer.getvalue())).stream()
    assert loaded.metadata["llmitm_bodies"]["upstream_response"] == UPSTREAM_ANSWER
    state = translated_flow.get_state()
    assert APP_KEY not in str(state["metadata"]) and "authorization" not in str(state["metadata"]).lower()


async def test_the_request_comparison_names_each_fields_fate_and_wire_name(translated_flow):
    name, text = render(translated_flow, translated_flow.request, "llmitm: translation")
    assert name == "llmitm: translation"
    assert "app speaks OpenAI Chat Completions, upstream Anthropic Messages (translated)" in text
    assert "max_tokens (as max_completion_tokens → max_tokens): renamed" in text
    assert "model: changed" in text and "xlate-1" in text and "claude-x" in text
    assert "seed: dropped" in text and "because: seed dropped (Anthropic has no seed)" in text
    assert "translation warnings (1)" in text and "    seed: seed dropped" in text
    assert "system (as messages[role=system] → system): renamed" in text
    assert "side by side" in text and "what the app sent" in text and "what went upstream" in text


async def test_the_response_comparison_follows_the_answer_from_upstream_to_app(translated_flow):
    _, text = render(translated_flow, translated_flow.response, "llmitm: translation")
    assert "response fields, upstream → app" in text
    assert "stop_reason: kept" in text
    assert 'tool call get_weather({"city":"SF"})' in text
    assert "what the upstream answered, 200" in text and "what the app received, 200" in text


async def test_the_transcript_view_stays_the_default(translated_flow):
    name, _ = render(translated_flow, translated_flow.request, "auto")
    assert "translation" not in name


async def test_the_flow_list_marks_the_warning_and_tells_route_model_and_tokens(translated_flow):
    assert translated_flow.marked == ":warning:"
    first, credential, *rest = translated_flow.comment.splitlines()
    assert first == "llmitm: route #2 → openclaude/claude-x (app asked for xlate-1) (anthropic), translated from openai-chat"
    assert credential == "app's own credential" and "tokens: 30 in (0 cached), 12 out" in rest


RECORDED_THINKING_TURN = "anthropic-messages/prism/thinking-text-tool-use.json"


def next_turn_with_signed_thinking() -> dict:
    """An Anthropic app's next request after a recorded answer (thinking with its signature, text, a
    tool call): the answer sent back as history, with the tool's result."""
    answer = json.loads(fixtures.body(RECORDED_THINKING_TURN))
    call = next(b for b in answer["content"] if b["type"] == "tool_use")
    return {"model": answer["model"], "max_tokens": 2048, "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": [{"role": "user", "content": "When do the Tigers play today, and do I need a coat?"},
                         {"role": "assistant", "content": answer["content"]},
                         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": "7pm"}]}]}


def recorded_record(app_body: dict, upstream: str, upstream_model: str) -> tuple[dict, list[str]]:
    """The bodies llmitm keeps for a request routed from an Anthropic app to `upstream`."""
    if upstream == "anthropic":
        sent, warnings, path = json.dumps({**app_body, "model": upstream_model}).encode(), [], "/v1/messages"
    else:
        translation = Translation("anthropic", upstream)
        out = translation.request(app_body, upstream_model=upstream_model)
        sent, warnings, path = out.body, translation.warnings, out.path
    return {"client_protocol": "anthropic", "upstream_protocol": upstream, "client_path": "/v1/messages",
            "upstream_path": path, "translated": upstream != "anthropic", "app_request": json.dumps(app_body).encode(),
            "upstream_request": sent, "truncated": []}, warnings


def flow_with(record: dict, warnings: list[str]) -> http.HTTPFlow:
    flow = flow_for("/v1/messages", record["app_request"])
    flow.metadata["llmitm_bodies"] = record
    flow.metadata["llmitm"] = {"translated": record["translated"], "client_protocol": "anthropic", "warnings": warnings}
    return flow


def test_a_signature_sent_back_to_the_provider_that_issued_it_is_passed_unchanged(llmitm_view):
    record, warnings = recorded_record(next_turn_with_signed_thinking(), "anthropic", "claude-3-7-sonnet-20250219")
    flow = flow_with(record, warnings)
    _, text = render(flow, flow.request, "llmitm: translation")
    assert "reasoning signatures in the app's history" in text
    assert "message 1: reasoning signature (" in text and "passed back unchanged to anthropic (claude-3-7-sonnet" in text
    assert "messages: kept" in text


def test_a_signature_is_removed_with_its_reason_when_the_route_changes_provider(llmitm_view):
    record, warnings = recorded_record(next_turn_with_signed_thinking(), "openai-chat", "gpt-5")
    flow = flow_with(record, warnings)
    _, text = render(flow, flow.request, "llmitm: translation")
    assert "app speaks Anthropic Messages, upstream OpenAI Chat Completions (translated)" in text
    removed = next(line for line in text.splitlines() if "message 1: reasoning signature" in line)
    assert "removed: " in removed
    assert "reasoning (as thinking → reasoning_effort): approximated" in text and "EFFORT_BUDGET" in text
    assert "messages[].reasoning: reasoning from earlier turns not sent upstream" in text
    assert "messages: changed" in text  # the thinking block is not sent upstream


@pytest.mark.parametrize(("warning", "field"), [
    ("seed dropped (Anthropic has no seed)", "seed"),
    ("request field 'prompt_cache_key' dropped (no equivalent upstream)", "prompt_cache_key"),
    ("text.verbosity 'low' dropped (no equivalent upstream)", "text.verbosity"),
    ("generationConfig field 'mediaResolution' dropped (no equivalent upstream)", "mediaResolution"),
    ("thoughtSignature dropped (provider-bound; the upstream is not Gemini)", "thoughtSignature"),
    ("reasoning from earlier turns not sent upstream", "messages[].reasoning"),
    ("grounding/citation metadata dropped (no equivalent for the client)", "groundingMetadata"),
])
def test_each_translation_warning_names_the_field_it_is_about(warning, field):
    assert compare.warning_field(warning) == field
