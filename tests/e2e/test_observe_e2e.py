"""Usage ledger, Prometheus metrics, OpenTelemetry traces and the overhead header, end to end: real
SDKs and curl through a real llmitm, the fake upstream replaying recorded answers."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.harness.fixtures import REPO, body, sse_events
from tests.harness.proxy import ProxyProcess
from tests.harness.upstream import DEFAULT_FIXTURES, Reply, default_script

OPENAI_KEYS = [{"key": "sk-observe-a-0000001", "id": "oa"}, {"key": "sk-observe-b-0000002", "id": "ob"}]
ANTHROPIC_STREAM = DEFAULT_FIXTURES[("anthropic", True)]
PRICES = json.loads((REPO / "addons" / "llmitm" / "observe" / "prices.json").read_text())["models"]
METRICS_AT = re.compile(r"metrics on http://127\.0\.0\.1:(\d+)/metrics")


def config(upstream_url: str, state: str, observe: str = "{metrics_port: 0}") -> str:
    return f"""
state: {state}
observe: {observe}
providers:
  openai:
    protocol: [openai-chat, openai-responses]
    base_url: {upstream_url}
    keys: {json.dumps(OPENAI_KEYS)}
    strategy: round-robin
    cooldown: {{default_seconds: 30}}
  claude:
    protocol: anthropic
    base_url: {upstream_url}
    keys: [{{key: sk-ant-observe-0000003, id: ca}}]
  gemini:
    protocol: gemini
    base_url: {upstream_url}
    keys: [{{key: AIza-observe-0000004, id: ga}}]
routes:
  - {{match: {{host: api.openai.com, model: "claude-*"}}, provider: claude}}
  - {{match: {{host: api.openai.com}}, provider: openai}}
  - {{match: {{host: api.anthropic.com}}, provider: claude}}
  - {{match: {{host: generativelanguage.googleapis.com}}, provider: gemini}}
"""


def openai_client(proxy):
    return proxy.sdk_client("openai", "sk-app-observe")


def anthropic_client(proxy):
    return proxy.sdk_client("anthropic", "sk-app-observe")


def gemini_by_curl(proxy, model: str = "gemini-2.5-flash") -> dict:
    out = subprocess.run(
        ["curl", "-sS", "-x", proxy.url, "--cacert", str(proxy.ca), "-H", "x-goog-api-key: app-gemini-key",
         "-H", "content-type: application/json", "-d", '{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}',
         f"https://generativelanguage.googleapis.com/v1beta/models/{model}:generateContent"],
        capture_output=True, timeout=30, check=True)
    return json.loads(out.stdout)


def usage_of(rel: str) -> tuple[int, int]:
    """(input, output) tokens a recorded answer reports, read from the fixture as its provider wrote it
    (canonical meaning: input includes cached tokens, output includes reasoning)."""
    if rel.endswith(".sse"):
        payloads = [json.loads(e.split(b"data:", 1)[1]) for e in sse_events(rel) if b'"usage' in e]
    else:
        payloads = [json.loads(body(rel))]
    inp = out = 0
    for p in payloads:
        u = p.get("usage") or p.get("message", {}).get("usage") or p.get("usageMetadata") or {}
        inp = u.get("prompt_tokens", u.get("promptTokenCount", inp))
        if "input_tokens" in u:
            inp = u["input_tokens"] + u.get("cache_read_input_tokens", 0) + u.get("cache_creation_input_tokens", 0)
        out = u.get("completion_tokens", u.get("output_tokens", out))
        if "candidatesTokenCount" in u:
            out = u["candidatesTokenCount"] + u.get("thoughtsTokenCount", 0)
    return inp, out


def metrics_url(proxy) -> str:
    deadline = time.monotonic() + 10
    while not (m := METRICS_AT.search(proxy.log())):
        assert time.monotonic() < deadline, proxy.log()
        time.sleep(0.05)
    return f"http://127.0.0.1:{m.group(1)}/metrics"


def scrape(proxy) -> dict[str, Counter]:
    """Every sample of the endpoint, by sample name, as Counter({labels tuple: value})."""
    text = httpx.get(metrics_url(proxy), timeout=10).text
    samples: dict[str, Counter] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.value:
                samples.setdefault(s.name, Counter())[tuple(sorted(s.labels.items()))] += s.value
    return samples


def ledger_rows(path: Path, expected: int) -> list[dict]:
    deadline = time.monotonic() + 10
    while True:
        rows = []
        if path.exists():
            db = sqlite3.connect(path)
            db.row_factory = sqlite3.Row
            rows = [dict(r) for r in db.execute("SELECT * FROM ledger ORDER BY at")]
            db.close()
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def summed(counter: Counter, *keep: str) -> Counter:
    out: Counter = Counter()
    for labels, value in counter.items():
        named = dict(labels)
        out[tuple(named[k] for k in keep)] += value
    return out


@pytest.fixture(scope="module")
def proxy(upstream, tmp_path_factory):
    folder = tmp_path_factory.mktemp("observe")
    with ProxyProcess(folder, config(upstream.url, f"sqlite:///{folder}/state.db")) as p:
        yield p


def test_a_mixed_run_is_counted_exactly_in_the_metrics_and_the_ledger(proxy, upstream):
    retried = []

    def script(req):
        if b'"gpt-4o-mini"' in req.body and not retried:  # the first try of the retried request
            retried.append(req.key)
            return Reply.json(429, {"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}},
                              headers={"retry-after": "30"})
        if req.path == "/v1/messages" and b'"abandon me"' in req.body:
            return Reply.fixture(ANTHROPIC_STREAM, delay=0.4)
        return default_script(req)

    upstream.script = script
    oai, claude = openai_client(proxy), anthropic_client(proxy)
    hi = [{"role": "user", "content": "hi"}]
    oai.chat.completions.create(model="gpt-4o", messages=hi)  # passthrough
    for _ in oai.chat.completions.create(model="gpt-4o", messages=hi, stream=True, stream_options={"include_usage": True}):
        pass
    oai.responses.create(model="gpt-4o", input="hi")
    claude.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=hi)
    with claude.messages.stream(model="claude-sonnet-4-5", max_tokens=64, messages=hi) as stream:
        stream.until_done()
    assert gemini_by_curl(proxy)["candidates"]
    oai.chat.completions.create(model="claude-sonnet-4-5", messages=hi)  # translated to Anthropic
    oai.chat.completions.create(model="gpt-4o-mini", messages=hi)  # a 429, retried on the other key
    abandoned = claude.messages.create(model="claude-sonnet-4-5", max_tokens=64, stream=True,
                                       messages=[{"role": "user", "content": "abandon me"}])
    assert next(iter(abandoned)).type == "message_start"
    abandoned.close()  # the app goes away mid-stream

    chat, chat_stream = DEFAULT_FIXTURES[("openai-chat", False)], DEFAULT_FIXTURES[("openai-chat", True)]
    msg, resp, gem = (DEFAULT_FIXTURES[(p, False)] for p in ("anthropic", "openai-responses", "gemini"))
    start_only = json.loads(sse_events(ANTHROPIC_STREAM)[0].split(b"data:", 1)[1])["message"]["usage"]
    abandoned_usage = (start_only["input_tokens"], start_only["output_tokens"])  # all the app stayed for
    # (route, provider, upstream model, answer the tokens came from) per request that reached upstream
    served = [("#1", "openai", "gpt-4o", usage_of(chat)), ("#1", "openai", "gpt-4o", usage_of(chat_stream)),
              ("#1", "openai", "gpt-4o", usage_of(resp)), ("#2", "claude", "claude-sonnet-4-5", usage_of(msg)),
              ("#2", "claude", "claude-sonnet-4-5", usage_of(ANTHROPIC_STREAM)),
              ("#3", "gemini", "gemini-2.5-flash", usage_of(gem)), ("#0", "claude", "claude-sonnet-4-5", usage_of(msg)),
              ("#1", "openai", "gpt-4o-mini", usage_of(chat)), ("#2", "claude", "claude-sonnet-4-5", abandoned_usage)]

    # The ledger: a row per upstream attempt (the retried request has two), the answers' tokens.
    rows = ledger_rows(Path(proxy.workdir) / "state-ledger.db", len(served) + 1)
    assert len(rows) == len(served) + 1, rows
    answered = [r for r in rows if r["status"] == 200]
    assert sorted((r["route"], r["provider"], r["model"], (r["input"], r["output"])) for r in answered) == sorted(served)
    (refused,) = [r for r in rows if r["status"] == 429]
    assert (refused["model"], refused["input"], refused["output"], refused["attempt"]) == ("gpt-4o-mini", 0, 0, 1)
    assert refused["key"] == {k["key"]: k["id"] for k in OPENAI_KEYS}[retried[0]]
    (retry,) = [r for r in answered if r["model"] == "gpt-4o-mini"]
    assert retry["attempt"] == 2 and retry["key"] != refused["key"]
    assert {r["client"] for r in rows if r["provider"] != "gemini"} == {hashlib.sha256(b"sk-app-observe").hexdigest()[:16]}
    # Cost: the table's price times the tokens, for a priced model.
    gpt4o = PRICES["gpt-4o"]
    for r in (r for r in answered if r["model"] == "gpt-4o"):
        assert r["cost"] == pytest.approx(r["input"] * gpt4o["input_cost_per_token"] + r["output"] * gpt4o["output_cost_per_token"])
    assert all(r["ttft_ms"] is None for r in answered if r["model"] == "gemini-2.5-flash")

    # The metrics: exactly the requests made, the retry, the abandoned stream, the tokens.
    samples = scrape(proxy)
    requests = summed(samples["llmitm_requests_total"], "route", "provider", "model", "status")
    assert requests == Counter((route, provider, model, "200") for route, provider, model, _ in served)
    assert summed(samples["llmitm_upstream_attempts_total"], "provider", "outcome") == Counter(
        {("openai", "200"): 4, ("openai", "429"): 1, ("claude", "200"): 4, ("gemini", "200"): 1})
    assert samples["llmitm_retries_total"] == Counter({(("provider", "openai"), ("reason", "429")): 1})
    assert samples["llmitm_request_errors_total"] == Counter({(("kind", "client_abort"),): 1})
    tokens = summed(samples["llmitm_tokens_total"], "provider", "model", "type")
    expected_tokens: Counter = Counter()
    for _, provider, model, (inp, out) in served:
        expected_tokens[(provider, model, "input")] += inp
        expected_tokens[(provider, model, "output")] += out
    reasoning = json.loads(body(gem))["usageMetadata"]["thoughtsTokenCount"]
    expected_tokens[("gemini", "gemini-2.5-flash", "reasoning")] = reasoning
    assert tokens == +expected_tokens
    spend = summed(samples["llmitm_spend_usd_total"], "model")
    assert spend[("gpt-4o",)] == pytest.approx(sum(r["cost"] for r in answered if r["model"] == "gpt-4o"))
    assert sum(samples["llmitm_request_duration_seconds_count"].values()) == len(served)
    assert sum(samples["llmitm_time_to_first_token_seconds_count"].values()) == 3  # the three streams
    key_state = summed(samples["llmitm_key_state"], "key", "state")
    assert key_state[(refused["key"], "cooling")] == 1 and key_state[("ga", "ready")] == 1


def test_answers_carry_the_overhead_header(proxy, upstream):
    raw = openai_client(proxy).chat.completions.with_raw_response.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert float(raw.headers["x-llmitm-overhead-ms"]) >= 0
    with anthropic_client(proxy).messages.with_streaming_response.create(
            model="claude-sonnet-4-5", max_tokens=64, stream=True, messages=[{"role": "user", "content": "hi"}]) as streamed:
        assert float(streamed.headers["x-llmitm-overhead-ms"]) >= 0
        streamed.read()


def test_the_overhead_header_can_be_turned_off(tmp_path, upstream):
    observe = "{overhead_header: false}"
    with ProxyProcess(tmp_path, config(upstream.url, "memory", observe)) as proxy:
        raw = openai_client(proxy).chat.completions.with_raw_response.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert raw.parse().choices and "x-llmitm-overhead-ms" not in raw.headers


def test_two_instances_on_one_redis_report_the_sum_of_what_each_served(tmp_path, upstream):
    from tests.pool.redis_server import running_redis_server

    with running_redis_server(str(tmp_path)) as url:
        text = config(upstream.url, url, "{ledger: true}")
        served = {"first": 3, "second": 2}
        for name, count in served.items():
            (tmp_path / name).mkdir()
            with ProxyProcess(tmp_path / name, text) as proxy:
                client = openai_client(proxy)
                for _ in range(count):
                    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
                gemini_by_curl(proxy)
            # stopped: the ledger's queue is written on shutdown
        (tmp_path / "llmitm.yaml").write_text(text)
        out = subprocess.run([sys.executable, "-m", "llmitm.cli", "usage", "-c", str(tmp_path / "llmitm.yaml"), "--by", "provider",
                              "--json"], capture_output=True, text=True, timeout=60, check=True,
                             env={"PYTHONPATH": str(REPO / "addons"), "PATH": "/usr/bin:/bin"})
    totals = {row["provider"]: row for row in json.loads(out.stdout)}
    chat_in, chat_out = usage_of(DEFAULT_FIXTURES[("openai-chat", False)])
    n = sum(served.values())
    assert (totals["openai"]["requests"], totals["openai"]["input"], totals["openai"]["output"]) == (n, n * chat_in, n * chat_out)
    assert totals["gemini"]["requests"] == len(served)
    gpt4o = PRICES["gpt-4o"]
    expected_cost = n * (chat_in * gpt4o["input_cost_per_token"] + chat_out * gpt4o["output_cost_per_token"])
    assert totals["openai"]["cost"] == pytest.approx(expected_cost, abs=1e-6)


def test_spans_reach_an_otlp_receiver_with_the_genai_attributes(tmp_path, upstream):
    from tests.observe.test_traces import Receiver, attrs

    receiver = Receiver()
    first = []

    def script(req):
        if not first:
            first.append(req)
            return Reply.json(529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        return default_script(req)

    upstream.script = script
    text = config(upstream.url, "memory", f"{{otlp_endpoint: '{receiver.url}'}}").replace(
        "keys: [{key: sk-ant-observe-0000003, id: ca}]", "keys: [{key: sk-ant-observe-0000003, id: ca}, {key: sk-ant-observe-0000005, id: cb}]")
    with ProxyProcess(tmp_path, text) as proxy:
        openai_client(proxy).chat.completions.create(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}])
    # stopped: the batch of spans is exported on shutdown
    (request,) = [s for s in receiver.spans if s.name.startswith("chat")]
    a = attrs(request)
    msg_in, msg_out = usage_of(DEFAULT_FIXTURES[("anthropic", False)])
    assert (a["gen_ai.provider.name"], a["gen_ai.operation.name"], a["gen_ai.request.model"]) == ("anthropic", "chat", "claude-sonnet-4-5")
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (msg_in, msg_out)
    assert a["llmitm.translated_from"] == "openai-chat" and a["llmitm.attempts"] == 2
    assert a["gen_ai.response.finish_reasons"] == ["end"]  # llmitm's canonical stop reason of the recorded answer
    children = [s for s in receiver.spans if s.parent_span_id == request.span_id]
    assert sorted(attrs(c)["http.response.status_code"] for c in children) == [200, 529]
    assert {attrs(c)["llmitm.key_id"] for c in children} == {"ca", "cb"}


def test_apps_cannot_reach_the_metrics_port_through_the_proxy(tmp_path, upstream):
    from llmitm.netguard import REFUSED_HEADER

    text = config(upstream.url, "memory") + "allow_local_destinations: true\n"  # only the own-port rule may refuse
    with ProxyProcess(tmp_path, text) as proxy:
        url = metrics_url(proxy)
        assert "llmitm_requests_total" in httpx.get(url, timeout=10).text  # directly: yes
        through = httpx.get(url, proxy=proxy.url, timeout=10)
        assert through.status_code == 403 and through.headers[REFUSED_HEADER] == "local-destination"
