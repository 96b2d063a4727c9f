"""Smoke test of the benchmark harness (scripts/bench): replay upstream + load generator on loopback,
the micro-benchmark and the profile summary. Measures nothing; checks the pieces work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.harness.process import stop_process

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from bench_lib import loadgen, shapes  # noqa: E402
from bench_lib.profile import summarize  # noqa: E402


@pytest.fixture
def upstream(tmp_path):
    port_file = tmp_path / "port"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "scripts")}
    proc = subprocess.Popen([sys.executable, "-m", "bench_lib.upstream", "--port", "0", "--port-file", str(port_file)],
                            env=env)
    try:
        for _ in range(100):
            if port_file.exists():
                break
            time.sleep(0.05)
        yield int(port_file.read_text())
    finally:
        stop_process(proc, grace=10)


async def test_replay_upstream_and_load_generator(upstream):
    oa = loadgen.Target("oa", "plain", ("127.0.0.1", upstream), "api.openai.com", "/v1/chat/completions",
                        shapes.openai_request("gpt-4o", False), False, {"Authorization": "Bearer sk-x"})
    res = await loadgen.run_cell(oa, 2, 0.3, 200)
    assert res.ok > 0 and res.errors == 0, res.first_error
    assert res.ok <= 200

    an = loadgen.Target("an", "plain", ("127.0.0.1", upstream), "api.anthropic.com", "/v1/messages",
                        shapes.anthropic_request("claude-x", True), True, {"x-api-key": "sk-ant-x"})
    rep = await loadgen.one_request(an)
    assert rep.status == 200 and rep.events == shapes.STREAM_EVENTS
    assert rep.body.startswith(b"event: message_start") and rep.body.endswith(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
    assert rep.ttfe is not None and rep.ttfe <= rep.latency

    oas = loadgen.Target("oas", "plain", ("127.0.0.1", upstream), "api.openai.com", "/v1/chat/completions",
                         shapes.openai_request("gpt-4o", True), True, {})
    rep = await loadgen.one_request(oas)
    assert rep.events == shapes.STREAM_EVENTS and rep.body.endswith(b"data: [DONE]\n\n")


def test_stream_shapes_are_valid_json():
    for events in (shapes.openai_stream_events(), shapes.anthropic_stream_events()):
        assert len(events) == shapes.STREAM_EVENTS
        for ev in events:
            data = ev.split(b"data: ", 1)[1].strip()
            if data != b"[DONE]":
                json.loads(data)


def test_micro_benchmark_runs_or_skips(tmp_path):
    out = tmp_path / "micro.json"
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'addons'}:{ROOT / 'scripts'}"}
    subprocess.run([sys.executable, "-m", "bench_lib.micro", "--seconds", "0.05", "--json", str(out)],
                   env=env, check=True, timeout=120)
    res = json.loads(out.read_text())
    assert "skipped" in res or all(p.get("events_per_s") or p.get("note") for p in res["pairs"])


def test_profile_summary(tmp_path):
    f = tmp_path / "p.collapsed"
    f.write_text("main (llmitm/cli.py:1);handle (llmitm/relay.py:10);write (asyncio/selector_events.py:5) 3\n"
                 "main (llmitm/cli.py:1);_worker (concurrent/futures/thread.py:9) 5\n"
                 "main (llmitm/cli.py:1);event (mitmproxy/proxy/layer.py:2) 1\n")
    s = summarize(f)
    assert s["samples"] == 4 and s["idle_samples"] == 5
    assert s["llmitm_inclusive_share"] == 75.0
    assert s["self_top"][0] == ("write (asyncio/selector_events.py)", 75.0)
