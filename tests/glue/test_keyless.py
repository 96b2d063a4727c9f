"""Keyless calls in-process: a route whose provider has no pool, and a pass-through, are made by the
relay's client with the app's own credential, once, bounded like pooled calls; the flow shows the app's
request afterwards, never a pooled key."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from mitmproxy import http
from mitmproxy.addons import proxyserver
from mitmproxy.addons.view import View
from mitmproxy.test import taddons, tflow

from llmitm.addon import Llmitm
from llmitm.config import parse_config
from llmitm.plan import AppRequest, Forward, Planner
from llmitm.relay import APP_CREDENTIAL, Relay, RelayJob, Upstream, upstreams_for
from llmitm.streaming import PassTap
from tests.glue.conftest import config_text, loaded_addon, pools_for
from tests.harness.tls_server import self_signed_https
from tests.harness.upstream import Reply

APP_KEY = "sk-app-own-key-123456789"
NOTHING_LISTENS = 9  # a loopback port with no server (as the glue conftest's default base URL)
CHAT = {"model": "open-x", "messages": [{"role": "user", "content": "hi"}]}
FALLBACK = """
  spare: {protocol: openai-chat, base_url: "http://127.0.0.1:9", keys: ["sk-spare-0001"]}
"""


@pytest.fixture
async def relay():
    relay = Relay()
    yield relay
    await relay.close()


def keyless_job(upstream_url: str, body: dict = CHAT) -> RelayJob:
    # The keyless route names a fallback: mitmproxy never tried it, and neither does the relay.
    text = config_text(upstream_url, extra_provider=FALLBACK).replace("model: served-model}", "model: served-model, fallback: [spare]}")
    config = parse_config(text, "<keyless test>")
    assert config.routes[1].fallback == ["spare"]
    plan = Planner(config).plan(AppRequest("POST", "api.openai.com", "/v1/chat/completions", {}, json.dumps(body).encode()))
    assert isinstance(plan, Forward) and not plan.pooled
    upstreams, warnings = upstreams_for(plan, config, pools_for(config))
    assert [(u.provider, u.pool) for u in upstreams] == [("open", None)] and warnings == []
    return RelayJob(upstreams, max_response_bytes=config.max_response_bytes)


APP_HEADERS = [("content-type", "application/json"), ("Authorization", f"Bearer {APP_KEY}"), ("X-App", "kept")]


async def test_a_keyless_call_sends_the_apps_credential_once_and_keeps_any_answer(relay, upstream):
    refusal = {"error": {"message": "slow down", "type": "requests"}}
    upstream.script = lambda req: Reply.json(429, refusal)
    job = keyless_job(upstream.url)
    answer = await relay.fetch(job, "POST", APP_HEADERS, json.dumps(CHAT).encode())
    assert answer.status == 429 and json.loads(answer.body) == refusal  # about the app's own key: passed on
    (received,) = upstream.received  # one attempt: there is no other key
    assert received.key == APP_KEY and received.headers["x-app"] == "kept" and "accept" not in received.headers
    assert [t.key for t in job.tries] == [APP_CREDENTIAL] and job.lease is None and job.served.provider == "open"


async def test_an_unreachable_keyless_upstream_is_a_502_with_retry_after(relay):
    job = keyless_job("http://127.0.0.1:9")  # nothing listens there
    answer = await relay.fetch(job, "POST", APP_HEADERS, json.dumps(CHAT).encode())
    headers = dict(answer.headers)
    assert answer.status == 502 and int(headers["retry-after"]) >= 1 and headers["x-llmitm-error"] == "upstream-unreachable"
    assert "could not be reached" in json.loads(answer.body)["error"]["message"] and len(job.tries) == 1


async def test_a_keyless_stream_that_falls_silent_ends_with_an_in_stream_error(relay, upstream):
    upstream.script = lambda req: Reply.fixture("openai-chat/openai-python/stream-tool-call-pydantic.sse", delay=3.0)
    job = keyless_job(upstream.url, {**CHAT, "stream": True})
    job.upstreams[0].idle_timeout = 0.3
    url = await relay.submit(job)
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json={**CHAT, "stream": True}, headers={"authorization": f"Bearer {APP_KEY}"}) as resp:
            body = await asyncio.wait_for(resp.read(), 20)
    events = [line for line in body.split(b"\n") if line.startswith(b"data: ")]
    assert resp.status == 200 and len(events) == 2
    assert "no data from upstream" in json.loads(events[-1][6:])["error"]["message"]


@pytest.fixture
async def addon(tmp_path, upstream):
    path = tmp_path / "llmitm.yaml"
    # api.openai.com is routed; llm.example.test only for one model: other models there pass through.
    text = config_text(upstream.url).replace(
        "routes:\n", "routes:\n  - {match: {host: llm.example.test, model: \"routed-*\"}, provider: open}\n")
    path.write_text(text)
    addon = Llmitm()
    with taddons.context(proxyserver.Proxyserver(), View(), addon) as tctx:
        tctx.configure(addon, llmitm_config=str(path))
        yield addon
        await addon.relay.close()


async def mitmproxy_sends(flow: http.HTTPFlow) -> tuple[int, dict[str, str], bytes]:
    """Play mitmproxy's part: send the flow's request where it now points (the relay)."""
    async with aiohttp.ClientSession() as session:
        async with session.request(flow.request.method, flow.request.url, data=flow.request.raw_content,
                                   headers=list(flow.request.headers.items(multi=True))) as resp:
            return resp.status, dict(resp.headers), await resp.read()


def pass_through_flow(port: int) -> http.HTTPFlow:
    body = json.dumps({"model": "other-model", "messages": [], "stream": True}).encode()
    request = http.Request.make("POST", f"http://127.0.0.1:{port}/v1/chat/completions?key=AIza-app-query",
                                body, {"content-type": "application/json", "authorization": f"Bearer {APP_KEY}"})
    request.headers["host"] = "llm.example.test"  # the app's own server, by name
    return tflow.tflow(req=request, live=True)


async def test_a_pass_through_goes_through_the_relay_untouched_and_shows_the_apps_request(addon, upstream):
    upstream.script = lambda req: Reply.fixture("openai-chat/openai-python/stream-tool-call-pydantic.sse")
    flow = pass_through_flow(upstream.port)
    sent = flow.request.raw_content
    await addon.request(flow)
    assert flow.response is None and flow.request.path.startswith("/llmitm-relay/")
    status, headers, body = await mitmproxy_sends(flow)
    (received,) = upstream.received
    assert received.path == "/v1/chat/completions?key=AIza-app-query" and received.key == APP_KEY and received.body == sent
    flow.response = http.Response.make(status, b"", headers)
    addon.responseheaders(flow)
    assert isinstance(flow.response.stream, PassTap) and flow.response.stream(body) == body
    flow.response.stream(b"")
    assert flow.response.raw_content == body  # mitmweb shows what the app got
    assert flow.request.path.startswith("/v1/chat/completions?") and "AIza-app-query" not in flow.request.path
    assert APP_KEY not in flow.request.headers["authorization"] and "passed through untouched" in flow.comment
    assert addon.passing == {}


async def test_a_pass_through_that_cannot_connect_says_so_on_the_flow(addon):
    flow = pass_through_flow(NOTHING_LISTENS)
    await addon.request(flow)
    status, headers, body = await mitmproxy_sends(flow)
    assert status == 502 and headers["x-llmitm-error"] == "upstream-unreachable"
    assert json.loads(body)["error"]["type"] == "server_error"  # the path's protocol: OpenAI's
    flow.response = http.Response.make(status, body, headers)
    addon.responseheaders(flow)
    assert "connection failed" in flow.comment and flow.marked == ":x:" and flow.request.port == NOTHING_LISTENS


async def test_a_pass_through_the_app_abandons_is_restored_and_forgotten(addon, upstream):
    flow = pass_through_flow(upstream.port)
    await addon.request(flow)
    relay_url = flow.request.url
    flow.error = tflow.terr("Client disconnected.")
    addon.error(flow)
    assert flow.request.host == "127.0.0.1" and flow.request.port == upstream.port and addon.passing == {}
    assert addon.relay.server.jobs == {} and "llmitm-relay" not in flow.request.path and relay_url != flow.request.url


async def test_a_keyless_route_that_cannot_connect_says_so_and_names_no_pooled_key(tmp_path):
    request = http.Request.make("POST", "https://api.openai.com/v1/chat/completions", json.dumps(CHAT).encode(),
                                {"content-type": "application/json", "authorization": f"Bearer {APP_KEY}"})
    flow = tflow.tflow(req=request, live=True)
    with loaded_addon(tmp_path) as addon:  # nothing listens at the providers' address
        await addon.request(flow)
        addon.responseheaders(flow)
        addon.response(flow)
        await addon.relay.close()
    assert flow.response.status_code == 502 and flow.response.headers["retry-after"]
    assert "app's own credential" in flow.comment and "error: open/app-credential: connection failed" in flow.comment
    assert flow.metadata["llmitm"]["key_id"] is None and flow.marked == ":x:"
    assert flow.request.host == "127.0.0.1" and APP_KEY not in flow.request.headers["authorization"]


@pytest.fixture
def self_signed_server(tmp_path):
    """An HTTPS server on loopback whose certificate no trust store knows."""
    with self_signed_https(tmp_path, "IP:127.0.0.1", "POST", b"{}", "application/json") as (port, _cert):
        yield f"https://127.0.0.1:{port}"


async def test_a_keyless_call_checks_certificates_unless_mitmproxy_is_told_not_to(relay, self_signed_server):
    def job(verify: bool) -> RelayJob:
        target = Upstream("local", "openai-chat", f"{self_signed_server}/v1/chat/completions", pool=None, verify_tls=verify)
        return RelayJob([target])

    refused = await relay.fetch(job(True), "POST", APP_HEADERS, json.dumps(CHAT).encode())
    assert refused.status == 502 and "connection failed" in json.loads(refused.body)["error"]["message"]
    accepted = await relay.fetch(job(False), "POST", APP_HEADERS, json.dumps(CHAT).encode())
    assert accepted.status == 200 and accepted.body == b"{}"


async def test_mitmproxys_ssl_insecure_governs_keyless_calls_only(addon, upstream):
    from mitmproxy import ctx

    ctx.options.update(ssl_insecure=True)
    await addon.request(pass_through_flow(upstream.port))
    (call,) = addon.passing.values()
    assert call.job.upstreams[0].verify_tls is False
    pooled = tflow.tflow(req=http.Request.make("POST", "https://api.openai.com/v1/chat/completions",
                                               json.dumps({**CHAT, "model": "gpt-4o", "stream": True}).encode()), live=True)
    await addon.request(pooled)
    assert addon.exchanges[pooled.id].job.upstreams[0].verify_tls is True  # it carries llmitm's keys
