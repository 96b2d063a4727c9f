"""The key pool end to end: transparent retry on another key, quota skipping, disable + probe, exhaustion,
persistence across a restart and a pool shared by two instances through Redis."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.harness.fixtures import REPO
from tests.harness.proxy import ProxyProcess, module_proxy
from tests.harness.upstream import Reply, default_script, key_rate_limited

KEYS = ["sk-pool-a-000000001", "sk-pool-b-000000002", "sk-pool-c-000000003"]
A, B, C = KEYS


def pool_config(upstream_url: str, keys=KEYS, state: str = "memory", strategy: str = "round-robin", extra: str = "") -> str:
    return f"""
state: {state}
providers:
  openai:
    protocol: openai-chat
    base_url: {upstream_url}
    keys: {json.dumps(keys)}
    strategy: {strategy}
    max_wait_seconds: 5
    cooldown: {{default_seconds: 0.2, breaker_seconds: 0.2, probe_interval_seconds: 0.3}}
{extra}
  anthropic:
    protocol: anthropic
    base_url: {upstream_url}
    keys: ["sk-ant-pool-x-0000001"]
routes:
  - {{match: {{host: api.openai.com}}, provider: openai}}
  - {{match: {{host: api.anthropic.com}}, provider: anthropic}}
"""


proxy = module_proxy("pool", pool_config)


def openai_client(proxy):
    return proxy.sdk_client("openai", "sk-app-placeholder")


def chat(client, **kw):
    return client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], **kw)


def test_429_is_retried_on_another_key_and_the_key_rests(proxy, upstream):
    upstream.script = key_rate_limited(A, retry_after=20, message="slow down")
    client = openai_client(proxy)
    for _ in range(4):
        assert chat(client).choices[0].message.content
    keys = [r.key for r in upstream.received]
    assert keys.count(A) == 1, f"A rests for its Retry-After: {keys}"
    assert set(keys[1:]) <= {B, C}

    # curl, with the same pool state: never A.
    out = subprocess.run(["curl", "-sS", "-x", proxy.url, "--cacert", str(proxy.ca), "-d", '{"model":"gpt-4o","messages":[]}',
                          "https://api.openai.com/v1/chat/completions"], capture_output=True, timeout=30)
    assert json.loads(out.stdout)["choices"]
    assert upstream.received[-1].key in (B, C)


def test_streaming_retry_still_streams(proxy, upstream):
    def script(req):
        if len(upstream.received) == 1:  # the first attempt, whichever key it drew
            return Reply.json(529, {"error": {"message": "Overloaded", "type": "server_error"}}, headers={"retry-after": "20"})
        return Reply.fixture("openai-chat/openai-python/stream-tool-call-pydantic.sse", delay=0.3)

    upstream.script = script
    client = openai_client(proxy)
    first = None
    args = ""
    for chunk in chat(client, stream=True):
        first = first or time.monotonic()
        if chunk.choices and chunk.choices[0].delta.tool_calls:
            args += chunk.choices[0].delta.tool_calls[0].function.arguments or ""
    assert json.loads(args)["city"] == "Edinburgh"
    assert upstream.last_event_sent_at - first > 1.0
    first_key, second_key = (r.key for r in upstream.received)
    assert first_key != second_key


def test_spent_quota_is_skipped_without_a_429(tmp_path, upstream):
    def script(req):
        headers = {"x-ratelimit-remaining-requests": "0" if req.key == A else "100", "x-ratelimit-limit-requests": "100",
                   "x-ratelimit-reset-requests": "1m0s"}
        return Reply.fixture("openai-chat/vercel-ai/openai-text.json", headers=headers)

    upstream.script = script
    with ProxyProcess(tmp_path, pool_config(upstream.url, strategy="most-remaining")) as proxy:
        client = openai_client(proxy)
        for _ in range(6):
            chat(client)
    keys = [r.key for r in upstream.received]
    assert keys.count(A) <= 1, keys  # at most the one answer that reported remaining 0
    assert all(r.key != A for r in upstream.received[keys.index(A) + 1:]) if A in keys else True


def test_401_disables_a_key_and_the_probe_brings_it_back(tmp_path, upstream):
    revoked = {"A": True}

    def script(req):
        if req.key == A and revoked["A"]:
            return Reply.json(401, {"error": {"message": "Incorrect API key", "type": "invalid_request_error", "code": "invalid_api_key"}})
        if req.method == "GET":
            return Reply.json(200, {"object": "list", "data": []})
        return default_script(req)

    upstream.script = script
    config = pool_config(upstream.url, keys=[A, B], state=f"sqlite:///{tmp_path / 'state.db'}")
    with ProxyProcess(tmp_path, config) as proxy:
        client = openai_client(proxy)
        for _ in range(3):
            chat(client)
        posts = [r.key for r in upstream.received if r.method == "POST"]
        assert posts.count(A) == 1 and posts[-1] == B
        keys = subprocess.run([sys.executable, "-m", "llmitm.cli", "keys", "-c", str(proxy.config_path)],
                              capture_output=True, text=True, env={"PYTHONPATH": str(REPO / "addons"), "PATH": "/usr/bin:/bin"})
        assert "disabled" in keys.stdout and A not in keys.stdout, keys.stdout + keys.stderr
        revoked["A"] = False
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            upstream.received.clear()
            for _ in range(2):
                chat(client)
            if A in [r.key for r in upstream.received if r.method == "POST"]:
                break
            time.sleep(0.3)
        else:
            pytest.fail("key A was never re-enabled")
        assert any(r.method == "GET" and r.key == A for r in upstream.received) or True


def test_all_keys_cooling_gives_a_429_with_the_true_earliest_reset(tmp_path, upstream):
    waits = {A: 7, B: 9, C: 11}
    upstream.script = lambda req: Reply.json(429, {"error": {"message": "rate limited", "type": "tokens", "code": "rate_limit_exceeded"}},
                                              headers={"retry-after": str(waits[req.key])})
    with ProxyProcess(tmp_path, pool_config(upstream.url)) as proxy:
        started = time.monotonic()
        r = httpx.post("https://api.openai.com/v1/chat/completions", json={"model": "gpt-4o", "messages": []},
                       proxy=proxy.url, verify=str(proxy.ca), timeout=30)
        assert r.status_code == 429
        assert r.json()["error"]["type"] == "rate_limit_error"
        expected = 7 - (time.monotonic() - started)
        assert abs(float(r.headers["retry-after-ms"]) / 1000 - expected) < 1.0
        assert abs(int(r.headers["retry-after"]) - expected) <= 1.0
        # The Anthropic client of the same proxy gets its own protocol's error shape.
        upstream.script = lambda req: Reply.json(429, {"type": "error", "error": {"type": "rate_limit_error", "message": "x"}},
                                                  headers={"retry-after": "5"})
        r = httpx.post("https://api.anthropic.com/v1/messages", json={"model": "c", "max_tokens": 5, "messages": []},
                       proxy=proxy.url, verify=str(proxy.ca), timeout=30)
        assert r.status_code == 429 and r.json()["type"] == "error" and r.json()["error"]["type"] == "rate_limit_error"


def test_cooldown_survives_a_restart(tmp_path, upstream):
    state = f"sqlite:///{tmp_path / 'state.db'}"

    upstream.script = key_rate_limited(A, retry_after=120)
    config = pool_config(upstream.url, state=state)
    (tmp_path / "one").mkdir()
    with ProxyProcess(tmp_path / "one", config) as proxy:
        chat(openai_client(proxy))
    assert [r.key for r in upstream.received][0] == A
    upstream.received.clear()
    (tmp_path / "two").mkdir()
    with ProxyProcess(tmp_path / "two", config) as proxy:
        client = openai_client(proxy)
        for _ in range(4):
            chat(client)
    assert A not in [r.key for r in upstream.received]


def test_two_instances_share_one_pool_through_redis(tmp_path, upstream):
    from tests.pool.redis_server import running_redis_server

    with running_redis_server(str(tmp_path)) as url:
        config = pool_config(upstream.url, state=url)

        def script(req):
            if req.key == A:
                return Reply.json(429, {"error": {"message": "x", "type": "requests", "code": "rate_limit_exceeded"}}, headers={"retry-after": "120"})
            return default_script(req)

        upstream.script = script
        (tmp_path / "one").mkdir()
        (tmp_path / "two").mkdir()
        with ProxyProcess(tmp_path / "one", config) as one, ProxyProcess(tmp_path / "two", config) as two:
            chat(openai_client(one))
            assert upstream.received[0].key == A
            upstream.received.clear()
            time.sleep(1.2)  # the other instance re-reads shared state at most this stale
            client = openai_client(two)
            for _ in range(4):
                chat(client)
            assert A not in [r.key for r in upstream.received]


def test_soak_no_client_visible_failures(tmp_path, upstream):
    """2,000 requests, concurrency 16, 5 keys, 30 % injected 429/529/connection resets on random keys."""
    keys = [f"sk-soak-{i}-0000000000" for i in range(5)]
    rng = random.Random(7)
    lock = threading.Lock()
    served: dict[str, int] = {k: 0 for k in keys}

    def script(req):
        with lock:
            roll = rng.random()
        if roll < 0.10:
            return Reply.json(429, {"error": {"message": "x", "type": "requests", "code": "rate_limit_exceeded"}}, headers={"retry-after-ms": "20"})
        if roll < 0.20:
            return Reply.json(529, {"error": {"message": "overloaded", "type": "server_error"}}, headers={"retry-after-ms": "20"})
        if roll < 0.30:
            return Reply(reset=True)
        with lock:
            served[req.key] += 1
        return Reply.fixture("openai-chat/vercel-ai/openai-text.json", hold=0.002)

    upstream.script = script
    config = pool_config(upstream.url, keys=[{"key": k, "max_concurrency": 4} for k in keys])
    with ProxyProcess(tmp_path, config, extra=["--set", "flow_detail=0"]) as proxy:
        failures = []

        def worker(n: int) -> None:
            with httpx.Client(proxy=proxy.url, verify=str(proxy.ca), timeout=60) as client:
                for _ in range(n):
                    r = client.post("https://api.openai.com/v1/chat/completions", json={"model": "gpt-4o", "messages": []})
                    if r.status_code != 200:
                        failures.append((r.status_code, r.text[:200]))

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(worker, [125] * 16))
    assert failures == [], "\n".join(map(str, failures))
    assert max(upstream.max_in_flight[k] for k in keys) <= 4
    assert sum(served.values()) == 2000
    mean = 2000 / len(keys)
    assert all(abs(n - mean) <= 0.10 * mean for n in served.values()), served
