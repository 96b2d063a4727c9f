"""What a benchmark run measures: one `Workload` per configuration (direct, bare mitmdump, llmitm key
swap / reroute / translation, LiteLLM; non-stream and 200-event stream), each a load-generator
`Target` plus the proof that the proxy really did its job.

`validate` sends one request per workload before anything is measured; the replay upstream's
counters (GET /__stats) must show the request arrived on the expected path with one of the pooled
keys and the client must get the expected marker back, or the workload is n/a with the reason:
a proxy that forwards nothing, or forwards the app's own key, is not measured as fast.
"""

from __future__ import annotations

import argparse
import http.client
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import loadgen, shapes
from .loadgen import Target
from .processes import ANTHROPIC_HOST, LITELLM_MASTER, LOOPBACK, OPENAI_HOST, Proc

BENCH_KEYS = {"sk-bench-1", "sk-bench-2", "sk-ant-bench-1"}
CLIENT_OA = {"Authorization": "Bearer sk-client-not-a-real-key"}
CLIENT_AN = {"x-api-key": "sk-ant-client-not-a-real-key", "anthropic-version": "2023-06-01"}


@dataclass
class Workload:
    """One measured configuration: the request it sends, through which proxy, the proof it was served
    as claimed, and its measured cells per concurrency (filled in by measurement.py)."""

    key: str
    label: str
    proxy: str | None  # Proc name whose CPU/RSS is measured; None for direct
    target: Target
    expect_hit: str  # upstream counter that must grow (routing really happened)
    expect_body: bytes  # marker the client must receive (translation really happened)
    expect_keys: set[str] | None = None  # upstream must only see these keys (key swap really happened)
    na: str | None = None
    cells: dict[int, list[dict]] = field(default_factory=dict)


def upstream_stats(port: int) -> dict:
    c = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    try:
        c.request("GET", "/__stats")
        return json.loads(c.getresponse().read())
    finally:
        c.close()


def workloads(args: argparse.Namespace, run_dir: Path, up: int, procs_: dict[str, Proc]) -> list[Workload]:
    """Every configuration to measure (or only those named by --only), against the upstream on port `up`."""

    def ca(name: str) -> str:
        return str(run_dir / f"conf-{name}" / "mitmproxy-ca-cert.pem")

    def via(name: str, host: str, path: str, body: bytes, stream: bool, headers: dict) -> Target:
        return Target(name, "connect", (LOOPBACK, procs_[name].port), host, path, body, stream, headers, ca(name))

    oa, an = shapes.openai_request, shapes.anthropic_request
    CC, MSG = "/v1/chat/completions", "/v1/messages"
    lport = procs_["litellm"].port
    W = Workload
    every = [
        # -- non-stream: an OpenAI Chat client --
        W("direct", "direct (no proxy)", None,
          Target("direct", "plain", (LOOPBACK, up), OPENAI_HOST, CC, oa("gpt-4o", False), False, CLIENT_OA),
          "openai-json", b'"choices"'),
        W("bare", "bare mitmdump", "bare", via("bare", OPENAI_HOST, CC, oa("gpt-4o", False), False, CLIENT_OA),
          "openai-json", b'"choices"'),
        W("keyswap", "llmitm key swap", "llmitm",
          via("llmitm", OPENAI_HOST, CC, oa("gpt-4o", False), False, CLIENT_OA),
          "openai-json", b'"choices"', BENCH_KEYS),
        W("keyswap-quiet", "llmitm key swap, ledger/metrics off", "llmitm-quiet",
          via("llmitm-quiet", OPENAI_HOST, CC, oa("gpt-4o", False), False, CLIENT_OA),
          "openai-json", b'"choices"', BENCH_KEYS),
        W("reroute", "llmitm reroute, no key pool", "llmitm",
          via("llmitm", OPENAI_HOST, CC, oa("nopool-gpt-4o", False), False, CLIENT_OA),
          "openai-json", b'"choices"', {CLIENT_OA["Authorization"].removeprefix("Bearer ")}),
        W("xlate", "llmitm translated (oa->an)", "llmitm",
          via("llmitm", OPENAI_HOST, CC, oa("claude-3-7-sonnet-20250219", False), False, CLIENT_OA),
          "anthropic-json", b'"choices"', BENCH_KEYS),
        W("litellm", "LiteLLM (oa->an)", "litellm",
          Target("litellm", "plain", (LOOPBACK, lport), f"{LOOPBACK}:{lport}", CC, oa("bench-claude", False),
                 False, {"Authorization": f"Bearer {LITELLM_MASTER}"}),
          "anthropic-json", b'"choices"', BENCH_KEYS),
        # -- stream, 200 events per response --
        W("direct-s", "direct stream (an)", None,
          Target("direct-s", "plain", (LOOPBACK, up), ANTHROPIC_HOST, MSG, an("claude-3-7-sonnet-20250219", True),
                 True, CLIENT_AN),
          "anthropic-stream", b"message_stop"),
        W("bare-s", "bare mitmdump stream (an)", "bare-stream",
          via("bare-stream", ANTHROPIC_HOST, MSG, an("claude-3-7-sonnet-20250219", True), True, CLIENT_AN),
          "anthropic-stream", b"message_stop"),
        W("keyswap-s", "llmitm key swap stream (oa)", "llmitm",
          via("llmitm", OPENAI_HOST, CC, oa("gpt-4o", True), True, CLIENT_OA),
          "openai-stream", b"[DONE]", BENCH_KEYS),
        W("xlate-s", "llmitm translated stream (an->oa)", "llmitm",
          via("llmitm", ANTHROPIC_HOST, MSG, an("claude-3-7-sonnet-20250219", True), True, CLIENT_AN),
          "openai-stream", b"message_stop", BENCH_KEYS),
        W("litellm-s", "LiteLLM stream (an->oa)", "litellm",
          Target("litellm-s", "plain", (LOOPBACK, lport), f"{LOOPBACK}:{lport}", MSG, an("bench-gpt", True),
                 True, {"x-api-key": LITELLM_MASTER, "Authorization": f"Bearer {LITELLM_MASTER}",
                        "anthropic-version": "2023-06-01"}),
          "openai-stream", b"message_stop", BENCH_KEYS),
    ]
    if args.only:
        keep = set(args.only.split(","))
        every = [w for w in every if w.key in keep]
    return every


async def validate(w: Workload, up_port: int, procs_: dict[str, Proc]) -> None:
    """One request; the configuration is n/a unless the proxy really routed, swapped and translated."""
    if w.proxy and procs_[w.proxy].na:
        w.na = procs_[w.proxy].na
        return
    if w.proxy and not procs_[w.proxy].alive():
        w.na = f"{w.proxy} exited: {procs_[w.proxy].tail()}"
        return
    before = upstream_stats(up_port)
    try:
        rep = await loadgen.one_request(w.target, timeout=30)
    except Exception as e:  # noqa: BLE001
        time.sleep(0.3)
        dead = w.proxy and not procs_[w.proxy].alive()
        w.na = (f"{w.proxy} exited: {procs_[w.proxy].tail()}" if dead else f"request failed: {type(e).__name__}: {e}")[:400]
        return
    after = upstream_stats(up_port)
    if rep.status != 200:
        w.na = f"HTTP {rep.status}: {rep.body[:200].decode(errors='replace')}"
        return
    hits = {k: after["hits"].get(k, 0) - before["hits"].get(k, 0) for k in after["hits"]}
    if hits.get(w.expect_hit, 0) < 1:
        w.na = f"upstream did not see a {w.expect_hit} request (saw {hits})"
        return
    if w.expect_body not in rep.body:
        w.na = f"reply lacks {w.expect_body.decode()}: {rep.body[:160].decode(errors='replace')}"
        return
    if w.expect_keys is not None:
        keys = {k for k in after["keys"] if after["keys"][k] != before["keys"].get(k, 0)}
        if not keys <= w.expect_keys:
            w.na = f"upstream saw unexpected credentials (key not swapped): {sorted(keys)}"
            return
    if w.target.stream and rep.ttfe is None:
        w.na = "no SSE event boundary in the reply"
