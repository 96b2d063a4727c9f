"""The exchange through the addon's hooks, in-process: pooled whole answers, the key lease returned
with the right verdict, provider headers kept off the flow, the stream tap, the upstream side flow."""

from __future__ import annotations

import json

import pytest
from mitmproxy import http
from mitmproxy.addons import proxyserver
from mitmproxy.addons.view import View
from mitmproxy.test import taddons, tflow, tutils

from llmitm.addon import Llmitm
from llmitm.exchange import header_map, release_aborted
from llmitm.streaming import StreamTap
from tests.glue.conftest import KEYS, config_text
from tests.harness.upstream import Reply

APP_KEY = "sk-app-own-key-123456789"
HELICONE = "sk-helicone-secret-1"


@pytest.fixture
async def addon(tmp_path, upstream):
    path = tmp_path / "llmitm.yaml"
    path.write_text(config_text(upstream.url))
    addon = Llmitm()
    with taddons.context(proxyserver.Proxyserver(), View(), addon) as tctx:
        tctx.configure(addon, llmitm_config=str(path))
        yield addon
        await addon.relay.close()


def app_flow(body: dict) -> http.HTTPFlow:
    request = http.Request.make("POST", "https://api.openai.com/v1/chat/completions", json.dumps(body).encode(),
                                {"content-type": "application/json", "authorization": f"Bearer {APP_KEY}"})
    return tflow.tflow(req=request, live=True)


class RecordingLease:
    """Stands in for pool.Lease to see the verdict a release carries."""

    key_id, masked = "k1", "sk-…0001"

    def __init__(self, knows_aborts: bool):
        self.released = False
        self.calls: list[dict] = []
        if knows_aborts:
            self.release = self._release_with_abort  # type: ignore[method-assign]

    def release(self, status=None, headers=None, body_json=None, error=None, input_tokens=0, output_tokens=0):
        self.released = True
        self.calls.append({"status": status, "error": error})

    def _release_with_abort(self, status=None, headers=None, body_json=None, error=None, input_tokens=0,
                            output_tokens=0, aborted=False):
        self.released = True
        self.calls.append({"status": status, "error": error, "aborted": aborted})


async def test_a_pooled_whole_answer_never_puts_the_key_or_provider_headers_on_the_flow(addon, upstream):
    flow = app_flow({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    await addon.request(flow)
    assert flow.response is not None and flow.response.status_code == 200
    (received,) = upstream.received
    assert received.key == KEYS[0] and received.headers["helicone-auth"] == f"Bearer {HELICONE}"
    assert APP_KEY not in json.dumps(dict(received.headers))
    shown = str(flow.get_state())
    assert KEYS[0] not in shown and HELICONE not in shown and APP_KEY not in shown
    addon.responseheaders(flow)
    addon.response(flow)
    assert flow.metadata["llmitm"]["key_id"] and "route #3" in flow.comment


@pytest.mark.parametrize("knows_aborts", [True, False])
async def test_a_client_that_goes_away_frees_the_key_without_blaming_it(addon, knows_aborts):
    flow = app_flow({"model": "gpt-4o", "messages": [], "stream": True})
    await addon.request(flow)  # streamed: pointed at the relay, no lease yet
    exchange = addon.exchanges[flow.id]
    lease = RecordingLease(knows_aborts)
    exchange.job.lease = lease
    flow.response = tutils.tresp(content=b"data: {}\n\n")
    flow.error = tflow.terr("Client disconnected.")
    addon.error(flow)
    (call,) = lease.calls
    assert call["status"] is None and call["error"] is None  # not "Client disconnected." against the key
    assert call.get("aborted", True) is True


def test_release_aborted_prefers_the_pools_own_word():
    lease = RecordingLease(knows_aborts=True)
    release_aborted(lease)
    assert lease.calls == [{"status": None, "error": None, "aborted": True}]


async def test_a_keyless_providers_headers_go_upstream_but_never_onto_the_flow(addon, upstream):
    flow = app_flow({"model": "open-x", "messages": []})
    addon.config.providers["open"].headers["x-gateway-token"] = "gw-secret-token-123"
    await addon.request(flow)
    (received,) = upstream.received
    assert received.headers["x-gateway-token"] == "gw-secret-token-123" and received.key == APP_KEY
    assert "x-gateway-token" not in flow.request.headers
    addon.responseheaders(flow)
    addon.response(flow)
    assert APP_KEY not in flow.request.headers["authorization"] and "app's own credential" in flow.comment


async def test_the_stream_tap_passes_chunks_and_keeps_what_the_app_got(addon):
    flow = app_flow({"model": "open-x", "messages": [], "stream": True})
    await addon.request(flow)
    flow.response = tutils.tresp(content=b"", headers=http.Headers(content_type="text/event-stream"))
    addon.responseheaders(flow)
    tap = flow.response.stream
    assert isinstance(tap, StreamTap)
    assert tap(b'data: {"choices": []}\n\n') == b'data: {"choices": []}\n\n'
    assert tap(b"") == []
    assert flow.response.data.content == b'data: {"choices": []}\n\n'


async def test_a_bug_inside_the_stream_tap_ends_the_stream_with_an_in_protocol_error(addon, monkeypatch):
    flow = app_flow({"model": "xlate-1", "messages": [{"role": "user", "content": "hi"}], "stream": True})
    await addon.request(flow)
    flow.response = tutils.tresp(content=b"", headers=http.Headers(content_type="text/event-stream"))
    addon.responseheaders(flow)
    tap = flow.response.stream
    monkeypatch.setattr(tap.translator, "feed", lambda data: {}["index"])
    (out,) = tap(b"event: message_start\ndata: {}\n\n")
    assert "a bug in llmitm" in json.loads(out[len(b"data: "):])["error"]["message"]
    assert tap(b"more") == [] and flow.metadata["llmitm_bug"] == "stream: KeyError"


async def test_a_translated_flow_shows_the_apps_request_and_an_upstream_side_flow(addon):
    view = addon_view()
    flow = app_flow({"model": "xlate-1", "messages": [{"role": "user", "content": "hi"}]})
    await addon.request(flow)
    upstream_answer = b'{"id": "m1", "type": "message", "role": "assistant", "model": "claude-x", ' \
                      b'"content": [{"type": "text", "text": "hello"}], "stop_reason": "end_turn", ' \
                      b'"usage": {"input_tokens": 3, "output_tokens": 1}}'
    flow.response = tutils.tresp(content=upstream_answer, headers=http.Headers(content_type="application/json"))
    exchange = addon.exchanges[flow.id]
    addon.responseheaders(flow)
    addon.response(flow)
    assert flow.request.path == "/v1/chat/completions" and json.loads(flow.response.content)["choices"]
    bodies = exchange.bodies  # the four bodies a later mitmweb view shows
    assert json.loads(bodies.app_request)["model"] == "xlate-1" and json.loads(bodies.upstream_request)["model"] == "claude-x"
    assert bodies.upstream_response == upstream_answer and json.loads(bodies.app_response)["choices"]
    (side,) = [f for f in view._store.values() if f.metadata.get("llmitm_side_of") == flow.id]
    assert side.request.path == "/v1/messages" and side.response.content == upstream_answer


def addon_view() -> View:
    from mitmproxy import ctx

    return ctx.master.addons.get("view")


async def test_a_429_on_one_key_is_retried_on_the_next_through_the_hooks(addon, upstream):
    upstream.script = lambda req: (Reply.json(429, {"error": {"message": "slow down", "type": "requests"}})
                                   if req.key == KEYS[0] else Reply.fixture("openai-chat/vercel-ai/openai-text.json"))
    flow = app_flow({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    await addon.request(flow)
    addon.responseheaders(flow)
    addon.response(flow)
    assert flow.response.status_code == 200 and [r.key for r in upstream.received] == KEYS
    assert "429, retried" in flow.comment and flow.request.host == "127.0.0.1" and "llmitm-relay" not in flow.request.path


async def test_nothing_free_on_a_translated_route_is_a_429_with_retry_after_in_the_apps_protocol(addon, upstream):
    upstream.script = lambda req: Reply.json(429, {"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}},
                                             headers={"retry-after": "60"})
    flow = app_flow({"model": "claude-x", "messages": [{"role": "user", "content": "hi"}]})
    await addon.request(flow)
    addon.responseheaders(flow)
    addon.response(flow)
    assert flow.response.status_code == 429 and int(flow.response.headers["retry-after"]) >= 30
    body = json.loads(flow.response.content)
    assert "type" not in body and body["error"]["type"] == "rate_limit_error"  # OpenAI's shape (the app's), not Anthropic's


def test_header_map_reads_headers_as_mitmproxy_folds_them():
    headers = http.Headers([(b"X-RateLimit-Remaining-Requests", b"59"), (b"Set-Cookie", b"a=1"),
                            (b"set-cookie", b"b=2"), (b"Retry-After", b"\xff7")])
    folded = header_map(headers)
    assert folded == {name.lower(): headers[name] for name in headers}
    assert folded["set-cookie"] == "a=1, b=2" and list(folded) == ["x-ratelimit-remaining-requests", "set-cookie", "retry-after"]
