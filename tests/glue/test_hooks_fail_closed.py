"""Every hook fails closed: an exception while handling an AI flow is answered in the app's protocol
as llmitm's bug, the flow is marked, and the request never leaves unrouted or with the app's key."""

from __future__ import annotations

import json

import pytest
from mitmproxy import http
from mitmproxy.test import tflow, tutils

from llmitm import exchange as exchange_module
from llmitm.addon import Llmitm
from llmitm.guard import ReplaceBody, guarded_hooks
from llmitm.protocols import Translation
from tests.glue.conftest import loaded_addon

APP_KEY = "sk-app-own-key-123456789"
CHAT_URL = "https://api.openai.com/v1/chat/completions"


@pytest.fixture
def addon(tmp_path):
    with loaded_addon(tmp_path) as addon:
        yield addon


def app_flow(body: bytes | dict, url: str = CHAT_URL) -> http.HTTPFlow:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = http.Request.make("POST", url, raw, {"content-type": "application/json", "authorization": f"Bearer {APP_KEY}"})
    return tflow.tflow(req=request, live=True)


def assert_answered_as_llmitm_bug(flow: http.HTTPFlow, hook: str) -> dict:
    assert flow.response is not None and flow.response.status_code == 500
    error = json.loads(flow.response.content)["error"]
    assert "a bug in llmitm" in error["message"] and hook in error["message"]
    assert flow.metadata["llmitm_bug"].startswith(hook) and flow.marked
    assert APP_KEY not in flow.request.headers.get("authorization", "")
    return error


def test_every_flow_hook_runs_behind_the_guard():
    assert set(guarded_hooks(Llmitm())) == {"requestheaders", "request", "responseheaders", "response", "error"}


def test_requestheaders_bug_answers_before_the_body_is_read(addon, monkeypatch):
    monkeypatch.setattr(addon.planner, "screen_length", lambda *a: 1 / 0)
    flow = app_flow({"model": "gpt-4o", "messages": []})
    addon.requestheaders(flow)
    assert_answered_as_llmitm_bug(flow, "requestheaders")


async def test_request_bug_never_lets_the_request_leave_with_the_apps_key(addon, monkeypatch, caplog):
    monkeypatch.setattr(addon.planner, "plan", lambda req: {}["boom"])
    flow = app_flow({"model": "gpt-4o", "messages": []})
    await addon.request(flow)
    error = assert_answered_as_llmitm_bug(flow, "request")
    assert error["type"] == "server_error" and flow.request.host == "api.openai.com"
    assert sum("bug in the request hook" in r.message for r in caplog.records) == 1  # one traceback


async def test_request_bug_after_the_rewrite_started_is_answered_in_the_anthropic_protocol(addon, monkeypatch):
    monkeypatch.setattr(exchange_module.credentials, "take_client_credential", lambda request: 1 / 0)
    flow = app_flow({"model": "claude-x", "max_tokens": 5, "messages": []}, "https://api.openai.com/v1/chat/completions")
    flow.request.path = "/v1/chat/completions"
    await addon.request(flow)
    assert_answered_as_llmitm_bug(flow, "request")
    assert addon.exchanges == {}


async def test_an_inconsistent_hot_reload_state_is_a_500_not_a_passthrough(addon):
    addon.pools.pools.pop("openai")  # a route whose provider has no pool any more
    flow = app_flow({"model": "gpt-4o", "messages": []})
    await addon.request(flow)
    assert_answered_as_llmitm_bug(flow, "request")


@pytest.mark.parametrize("body, status, says", [
    (b'{"model": "gpt-4o", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400, "nested too deeply"),
    (json.dumps({"model": "open-a", "messages": []}).encode("utf-16"), 400, "not UTF-8"),
    (b'{"model": "open-a", "messages": [], "model": "claude-x"}', 400, "duplicate key"),
])
async def test_inputs_that_used_to_fail_open_are_answered_in_protocol(addon, body, status, says):
    flow = app_flow(body)
    await addon.request(flow)
    assert flow.response is not None and flow.response.status_code == status
    assert says in json.loads(flow.response.content)["error"]["message"]


async def test_an_escaped_model_key_is_routed_and_rewritten(addon):
    flow = app_flow(b'{"mod\\u0065l": "open-a", "messages": []}')
    await addon.request(flow)  # nothing listens at the provider's address: llmitm's 502, not mitmproxy's
    assert flow.request.host == "127.0.0.1" and flow.response.status_code == 502
    assert json.loads(flow.request.content)["model"] == "served-model"


async def translated_flow(addon) -> http.HTTPFlow:
    """A streamed flow routed to a key-less Anthropic provider: pointed at the relay, its answer still
    to come (the tests play mitmproxy's part and set one)."""
    flow = app_flow({"model": "xlate-1", "messages": [{"role": "user", "content": "hi"}], "stream": True})
    await addon.request(flow)
    assert flow.response is None and flow.request.path.startswith("/llmitm-relay/")
    return flow


async def test_responseheaders_bug_swaps_the_upstream_body_for_an_error(addon, monkeypatch):
    flow = await translated_flow(addon)
    flow.response = tutils.tresp(status_code=200, content=b'{"type": "message"}')
    monkeypatch.setattr(exchange_module.Exchange, "relayed", lambda self, flow: 1 / 0)
    addon.responseheaders(flow)
    assert flow.response.status_code == 500 and isinstance(flow.response.stream, ReplaceBody)
    assert "content-length" not in flow.response.headers
    assert flow.response.stream(b"upstream bytes") == []
    body = flow.response.stream(b"")
    assert "a bug in llmitm" in json.loads(body)["error"]["message"]
    addon.response(flow)  # the later hook leaves the answered flow alone
    assert flow.metadata["llmitm_bug"].startswith("responseheaders")


async def test_a_translation_bug_in_response_is_a_500_that_says_so(addon, monkeypatch):
    flow = await translated_flow(addon)
    flow.response = tutils.tresp(status_code=200, content=b'{"type": "message"}')
    addon.responseheaders(flow)
    monkeypatch.setattr(Translation, "response", lambda *a, **kw: {}["choices"])
    addon.response(flow)
    error = assert_answered_as_llmitm_bug(flow, "response")
    assert error["type"] == "server_error"  # the app's (OpenAI) protocol, not the upstream's


async def test_error_hook_bug_is_contained_and_frees_the_flow(addon, monkeypatch):
    flow = await translated_flow(addon)
    monkeypatch.setattr(exchange_module.Exchange, "finish", lambda self, flow: 1 / 0)
    flow.error = tflow.terr()
    addon.error(flow)
    assert flow.metadata["llmitm_bug"].startswith("error") and addon.exchanges == {}
