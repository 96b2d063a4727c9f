"""The relay against the loopback fake provider: retries on another key before the first byte, and
when nothing serves, an answer that says whose fault it is."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from llmitm.plan import AppRequest, Forward, Planner
from llmitm.relay import Relay, RelayJob, upstreams_for
from tests.glue.conftest import KEYS, make_config, pools_for
from tests.harness.upstream import Reply

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
HELICONE = "Bearer sk-helicone-secret-1"


@pytest.fixture
async def relay():
    relay = Relay()
    yield relay
    await relay.close()


def job_for(upstream, body: dict = CHAT, **config_kw) -> RelayJob:
    config = make_config(upstream.url, **config_kw)
    plan = Planner(config).plan(AppRequest("POST", "api.openai.com", "/v1/chat/completions", {}, json.dumps(body).encode()))
    assert isinstance(plan, Forward) and plan.pooled
    upstreams, _ = upstreams_for(plan, config, pools_for(config))
    return RelayJob(upstreams, max_response_bytes=config.max_response_bytes)


async def fetch(relay: Relay, job: RelayJob, body: dict = CHAT):
    return await relay.fetch(job, "POST", [("content-type", "application/json")], json.dumps(body).encode())


async def test_a_429_on_one_key_is_retried_on_the_next(relay, upstream):
    upstream.script = lambda req: (Reply.json(429, {"error": {"message": "slow down", "type": "requests"}})
                                   if req.key == KEYS[0] else Reply.fixture("openai-chat/vercel-ai/openai-text.json"))
    job = job_for(upstream)
    answer = await fetch(relay, job)
    assert answer.status == 200 and json.loads(answer.body)["choices"]
    assert [r.key for r in upstream.received] == KEYS
    assert "429, retried" in job.attempts[0] and job.served.provider == "openai"


async def test_when_every_key_cools_down_the_app_gets_429_with_retry_after(relay, upstream):
    upstream.script = lambda req: Reply.json(429, {"error": {"message": "slow down", "type": "requests"}},
                                             headers={"retry-after": "120"})
    answer = await fetch(relay, job_for(upstream))
    headers = dict(answer.headers)
    assert answer.status == 429 and 100 <= int(headers["retry-after"]) <= 300
    assert headers["x-llmitm-error"] == "pool-exhausted" and "no key can serve" in json.loads(answer.body)["error"]["message"]


async def test_connection_resets_on_every_attempt_are_a_502_with_retry_after(relay, upstream):
    upstream.script = lambda req: Reply(reset=True)
    answer = await fetch(relay, job_for(upstream))
    headers = dict(answer.headers)
    assert answer.status == 502, answer.body  # not a 400: the app did nothing wrong, and SDKs retry a 502
    assert int(headers["retry-after"]) >= 1 and headers["x-llmitm-error"] == "upstream-unreachable"
    assert json.loads(answer.body)["error"]["type"] == "server_error"


async def test_a_billing_refusal_reaches_the_app_in_the_providers_words(relay, upstream):
    quota = {"error": {"message": "You exceeded your current quota, please check your plan and billing details.",
                       "type": "insufficient_quota", "code": "insufficient_quota"}}
    upstream.script = lambda req: Reply.json(429, quota)
    answer = await fetch(relay, job_for(upstream))
    assert answer.status == 429 and json.loads(answer.body) == quota  # not "retry after 300 s"


async def test_provider_headers_are_added_by_the_relay(relay, upstream):
    await fetch(relay, job_for(upstream))
    (received,) = upstream.received
    assert received.headers["helicone-auth"] == HELICONE and received.key == KEYS[0]


async def test_a_whole_answer_over_max_response_bytes_is_refused(relay, upstream):
    upstream.script = lambda req: Reply(body=b'{"choices": "' + b"x" * 5000 + b'"}')
    job = job_for(upstream, max_response=2048)
    answer = await fetch(relay, job)
    assert answer.status == 502 and "max_response_bytes" in json.loads(answer.body)["error"]["message"]
    assert job.lease.released  # freed here, unjudged: the key served


async def stream_through(relay: Relay, job: RelayJob) -> tuple[int, bytes]:
    url = await relay.submit(job)
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json={**CHAT, "stream": True}) as resp:
            return resp.status, await resp.read()


async def test_a_stream_that_falls_silent_ends_with_an_in_stream_error(relay, upstream):
    upstream.script = lambda req: Reply.fixture("openai-chat/openai-python/stream-tool-call-pydantic.sse", delay=3.0)
    job = job_for(upstream, body={**CHAT, "stream": True}, idle=0.3)
    status, body = await asyncio.wait_for(stream_through(relay, job), 20)
    events = [line for line in body.split(b"\n") if line.startswith(b"data: ")]
    assert status == 200 and len(events) == 2  # the first event, then the error
    assert "no data from upstream for 0.3 s" in json.loads(events[-1][6:])["error"]["message"]


async def test_a_streamed_retry_arrives_from_the_next_key(relay, upstream):
    upstream.script = lambda req: (Reply(status=529, body=b'{"error": {"message": "overloaded"}}') if req.key == KEYS[0]
                                   else Reply.fixture("openai-chat/openai-python/stream-tool-call-pydantic.sse"))
    job = job_for(upstream, body={**CHAT, "stream": True})
    status, body = await stream_through(relay, job)
    assert status == 200 and body.rstrip().endswith(b"data: [DONE]")
    assert [r.key for r in upstream.received] == KEYS


async def test_probes_carry_the_provider_headers(relay, upstream):
    status = await relay.probe(f"{upstream.url}/v1/models", "openai-chat", KEYS[0], {"Helicone-Auth": HELICONE})
    (received,) = upstream.received
    assert status is not None and received.headers["helicone-auth"] == HELICONE and received.path == "/v1/models"
