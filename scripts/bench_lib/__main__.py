"""llmitm benchmark driver: see scripts/bench --help.

Starts, on loopback only, the replay upstream, a bare mitmdump (and a streaming one), llmitm and the
LiteLLM proxy, then measures every configuration with the same load generator in alternating rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import loadgen, procs, shapes
from . import profile as profiling
from .loadgen import Target

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
OPENAI_HOST, ANTHROPIC_HOST = "api.openai.com", "api.anthropic.com"
BENCH_KEYS = {"sk-bench-1", "sk-bench-2", "sk-ant-bench-1"}
CLIENT_OA = {"Authorization": "Bearer sk-client-not-a-real-key"}
LITELLM_MASTER = "sk-bench-" + __import__("secrets").token_hex(24)  # LiteLLM refuses to start without one
CLIENT_AN = {"x-api-key": "sk-ant-client-not-a-real-key", "anthropic-version": "2023-06-01"}
MITM_QUIET = ["--set", "flow_detail=0", "--set", "termlog_verbosity=warn"]


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}  # never chain to a real proxy
    env["NO_PROXY"] = env["no_proxy"] = "*"
    env.update(extra)
    return env


# -- processes ------------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    cmd: list[str]
    port: int
    env: dict[str, str]
    logfile: Path
    ready_file: Path | None = None
    popen: subprocess.Popen | None = None
    na: str | None = None  # reason this proxy cannot be measured
    rss_start: float | None = None
    requests_since_start: int = 0

    def start(self) -> None:
        self.logfile.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.logfile, "wb")
        self.popen = subprocess.Popen(self.cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                      cwd=str(ROOT), start_new_session=True)

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not self.alive():
                self.na = f"exited with {self.popen.returncode if self.popen else '?'}: {self.tail()}"
                return False
            if self.ready_file is None or self.ready_file.exists():
                try:
                    with socket.create_connection((LOOPBACK, self.port), timeout=0.5):
                        return True
                except OSError:
                    pass
            time.sleep(0.1)
        self.na = f"not listening on {LOOPBACK}:{self.port} after {timeout:.0f}s: {self.tail()}"
        return False

    def tail(self, n: int = 400) -> str:
        try:
            text = self.logfile.read_text(errors="replace").strip()
        except OSError:
            return ""
        return " | ".join(text[-n:].splitlines()[-4:])

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)  # its own session: only what we started
            self.popen.wait(5)


# -- workloads ------------------------------------------------------------------------------------


@dataclass
class Workload:
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


def llmitm_config(up: int, state: str | None) -> str:
    base = f"http://{LOOPBACK}:{up}"
    cfg = {
        "providers": {
            "up-openai": {"protocol": "openai-chat", "base_url": base, "keys": ["sk-bench-1", "sk-bench-2"]},
            "up-anthropic": {"protocol": "anthropic", "base_url": base, "keys": ["sk-ant-bench-1"]},
            # no keys: the app's own credential is forwarded (mitmproxy makes the upstream call, no key pool)
            "up-openai-nopool": {"protocol": "openai-chat", "base_url": base},
        },
        "routes": [
            # diagnostic: routing/rewriting only, without the key pool and its relay.
            {"match": {"host": OPENAI_HOST, "model": "nopool-*"}, "provider": "up-openai-nopool"},
            # openai-chat client -> anthropic upstream (translated non-stream): picked by model name.
            {"match": {"host": OPENAI_HOST, "model": "claude-*"}, "provider": "up-anthropic"},
            # same-protocol key swap.
            {"match": {"host": OPENAI_HOST}, "provider": "up-openai"},
            # anthropic client -> openai-chat upstream (translated stream).
            {"match": {"host": ANTHROPIC_HOST, "path": "/v1/messages"}, "provider": "up-openai"},
        ],
    }
    if state:
        cfg["state"] = state
    return json.dumps(cfg, indent=2)  # JSON is YAML


def litellm_config(up: int) -> str:
    base = f"http://{LOOPBACK}:{up}"
    cfg = {
        "model_list": [
            {"model_name": "bench-claude",
             "litellm_params": {"model": "anthropic/claude-3-7-sonnet-20250219", "api_base": base,
                                "api_key": "sk-ant-bench-1"}},
            {"model_name": "bench-gpt",
             "litellm_params": {"model": "openai/gpt-4o", "api_base": base + "/v1", "api_key": "sk-bench-1"}},
        ],
        "litellm_settings": {"drop_params": True, "telemetry": False, "set_verbose": False,
                             "json_logs": False, "request_timeout": 30,
                             # anthropic client -> openai-chat upstream, as llmitm does (default: Responses API)
                             "use_chat_completions_url_for_anthropic_messages": True},
        "general_settings": {"disable_spend_logs": True, "disable_error_logs": True},
    }
    return json.dumps(cfg, indent=2)


def find_tool(name: str, python: str) -> str | None:
    cand = Path(python).parent / name
    if cand.exists():
        return str(cand)
    return shutil.which(name)


def build(args: argparse.Namespace, run_dir: Path) -> tuple[Proc, dict[str, Proc], list[Workload]]:
    py = args.python
    up_port_file = run_dir / "upstream.port"
    upstream = Proc("upstream", [py, "-m", "bench_lib.upstream", "--port", "0", "--port-file", str(up_port_file),
                                  "--events-per-write", str(args.events_per_write),
                                  "--event-gap-ms", str(args.event_gap_ms)],
                    0, child_env(PYTHONPATH=str(ROOT / "scripts")), run_dir / "upstream.log")
    upstream.start()
    for _ in range(100):
        if up_port_file.exists():
            break
        time.sleep(0.05)
    upstream.port = int(up_port_file.read_text())
    up = upstream.port
    log(f"replay upstream on {LOOPBACK}:{up}")

    procs_: dict[str, Proc] = {}
    mitmdump = find_tool("mitmdump", py)
    for name, extra in (("bare", []), ("bare-stream", ["-s", str(Path(__file__).with_name("sse_stream_addon.py"))])):
        port, conf = free_port(), run_dir / f"conf-{name}"
        cmd = [mitmdump or "mitmdump", "--listen-host", LOOPBACK, "-p", str(port), "--set", f"confdir={conf}",
               "--set", "connection_strategy=lazy",
               "--map-remote", rf"|https://api\.openai\.com|http://{LOOPBACK}:{up}",
               "--map-remote", rf"|https://api\.anthropic\.com|http://{LOOPBACK}:{up}",
               *MITM_QUIET, *extra]
        procs_[name] = Proc(name, cmd, port, child_env(), run_dir / f"{name}.log",
                            ready_file=conf / "mitmproxy-ca-cert.pem")
        if not mitmdump:
            procs_[name].na = "mitmdump not found (pass --python of a venv with mitmproxy)"

    # llmitm: always the working tree's code (PYTHONPATH=addons), through its CLI when it exists.
    port, conf = free_port(), run_dir / "conf-llmitm"
    cfg = run_dir / "llmitm.yaml"
    cfg.write_text(llmitm_config(up, args.llmitm_state))
    addons = ROOT / "addons"
    if (addons / "llmitm" / "cli.py").exists():
        cmd = [py, "-c", "import sys; from llmitm.cli import main; sys.exit(main())", "run", "-c", str(cfg),
               "--listen-host", LOOPBACK, "--listen-port", str(port), "--confdir", str(conf), "--", *MITM_QUIET]
    else:
        cmd = [mitmdump or "mitmdump", "-s", str(addons / "llmitm_addon.py"), "--set", f"llmitm_config={cfg}",
               "--set", f"confdir={conf}", "--set", "connection_strategy=lazy", "--listen-host", LOOPBACK,
               "-p", str(port), *MITM_QUIET]
    procs_["llmitm"] = Proc("llmitm", cmd, port, child_env(PYTHONPATH=str(addons)), run_dir / "llmitm.log",
                            ready_file=conf / "mitmproxy-ca-cert.pem")
    if not (addons / "llmitm_addon.py").exists():
        procs_["llmitm"].na = "addons/llmitm_addon.py does not exist yet"

    port = free_port()
    lcfg = run_dir / "litellm.yaml"
    lcfg.write_text(litellm_config(up))
    litellm = args.litellm
    procs_["litellm"] = Proc("litellm", [litellm or "litellm", "--config", str(lcfg), "--host", LOOPBACK,
                                         "--port", str(port), "--num_workers", "1"],
                             port, child_env(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR",
                                             LITELLM_TELEMETRY="False", DISABLE_SCHEMA_UPDATE="True",
                                             LITELLM_MASTER_KEY=LITELLM_MASTER,
                                             LITELLM_MODE="PRODUCTION"),
                             run_dir / "litellm.log")
    if not litellm:
        procs_["litellm"].na = "LiteLLM not installed (run without --no-litellm, or pass --litellm PATH)"
    elif args.no_litellm:
        procs_["litellm"].na = "skipped (--no-litellm)"

    def ca(name: str) -> str:
        return str(run_dir / f"conf-{name}" / "mitmproxy-ca-cert.pem")

    def via(name: str, host: str, path: str, body: bytes, stream: bool, headers: dict) -> Target:
        return Target(name, "connect", (LOOPBACK, procs_[name].port), host, path, body, stream, headers, ca(name))

    oa, an = shapes.openai_request, shapes.anthropic_request
    CC, MSG = "/v1/chat/completions", "/v1/messages"
    lport = procs_["litellm"].port
    W = Workload
    workloads = [
        # -- non-stream: an OpenAI Chat client --
        W("direct", "direct (no proxy)", None,
          Target("direct", "plain", (LOOPBACK, up), OPENAI_HOST, CC, oa("gpt-4o", False), False, CLIENT_OA),
          "openai-json", b'"choices"'),
        W("bare", "bare mitmdump", "bare", via("bare", OPENAI_HOST, CC, oa("gpt-4o", False), False, CLIENT_OA),
          "openai-json", b'"choices"'),
        W("keyswap", "llmitm key swap", "llmitm",
          via("llmitm", OPENAI_HOST, CC, oa("gpt-4o", False), False, CLIENT_OA),
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
        workloads = [w for w in workloads if w.key in keep]
    return upstream, procs_, workloads


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


# -- measuring ------------------------------------------------------------------------------------


async def measure(args: argparse.Namespace, upstream: Proc, procs_: dict[str, Proc], workloads: list[Workload]):
    live = [w for w in workloads if w.na is None]
    concs = [int(c) for c in args.concurrency.split(",")]
    # Re-measuring noisy cells may add at most 25% to the planned time.
    retry_budget = 0.25 * args.rounds * len(live) * len(concs) * args.duration
    for r in range(args.rounds):
        order = live[r % len(live):] + live[:r % len(live)] if live else []
        if r % 2:
            order.reverse()
        log(f"round {r + 1}/{args.rounds}: {', '.join(w.key for w in order)}")
        for w in order:
            for c in concs:
                best = None
                for attempt in range(1 + args.retries):
                    cell = await measure_cell(args, upstream, procs_, w, c, r)
                    cell["attempt"] = attempt + 1
                    if best is None or cell["other_load_cores"] < best["other_load_cores"]:
                        best = cell
                    if cell["other_load_cores"] <= args.max_other_load or retry_budget < args.duration:
                        break
                    retry_budget -= args.duration
                    log(f"  {w.key} c={c}: other processes used {cell['other_load_cores']:.2f} cores; "
                        f"{'retrying' if attempt < args.retries else 'keeping the quietest attempt'}")
                cell = best
                w.cells.setdefault(c, []).append(cell)
                if cell["errors"]:
                    log(f"  {w.key} c={c}: {cell['errors']} errors, first: {cell['first_error']}")


async def measure_cell(args: argparse.Namespace, upstream: Proc, procs_: dict[str, Proc], w: Workload, c: int,
                       r: int) -> dict:
    pid = procs_[w.proxy].popen.pid if w.proxy else None
    cpu0 = procs.cpu_seconds(pid) if pid else 0.0
    ucpu0 = procs.cpu_seconds(upstream.popen.pid)
    self0 = sum(os.times()[:2])
    m0 = procs.machine_cpu()
    res = await loadgen.run_cell(w.target, c, args.duration, args.max_requests)
    m1 = procs.machine_cpu()
    self1 = sum(os.times()[:2])
    cpu = (procs.cpu_seconds(pid) - cpu0) if pid else None
    ucpu = procs.cpu_seconds(upstream.popen.pid) - ucpu0
    n = res.ok + res.errors
    if w.proxy:
        procs_[w.proxy].requests_since_start += n + c  # + the warm-up request per worker
    busy_s = (m1[0] - m0[0]) / procs.TICK
    # CPU used by processes that are not part of this benchmark (other work on a shared machine).
    other = max(0.0, busy_s - (cpu or 0.0) - ucpu - (self1 - self0)) / max(res.elapsed, 1e-3)
    return {
        "round": r + 1, "concurrency": c, "ok": res.ok, "errors": res.errors,
        "first_error": res.first_error, "elapsed_s": round(res.elapsed, 3),
        "rps": res.rps,
        "p50_ms": _ms(loadgen.pct(res.latencies, 50)), "p99_ms": _ms(loadgen.pct(res.latencies, 99)),
        "ttfe_p50_ms": _ms(loadgen.pct(res.ttfes, 50)), "ttfe_p99_ms": _ms(loadgen.pct(res.ttfes, 99)),
        "events_per_reply": statistics.median(res.events) if res.events else None,
        "proxy_cpu_s_per_1k": (cpu / res.ok * 1000) if cpu is not None and res.ok else None,
        "upstream_cpu_s_per_1k": (ucpu / res.ok * 1000) if res.ok else None,
        "loadgen_cpu_s_per_1k": ((self1 - self0) / res.ok * 1000) if res.ok else None,
        "machine_busy": (m1[0] - m0[0]) / max(1, m1[1] - m0[1]),
        "other_load_cores": round(other, 3),
    }


def _ms(v: float | None) -> float | None:
    return None if v is None else v * 1000


async def soak(args: argparse.Namespace, procs_: dict[str, Proc], workloads: list[Workload]) -> dict | None:
    """RSS growth of llmitm over many requests (target: <= 50 MB per 100,000).

    Rotates over every llmitm workload in slices of a few seconds (8 connections), sampling RSS after
    each slice, until `--soak` requests or `--soak-seconds`. Reports the growth over the whole soak and
    the slope of the second half (after allocator/cache warm-up), per 100,000 requests."""
    p = procs_["llmitm"]
    ws = [w for w in workloads if w.proxy == "llmitm" and w.na is None]
    if not args.soak or not ws or not p.alive():
        return None
    rss0, _ = procs.memory(p.popen.pid)
    samples = [(0, rss0)]
    t0 = time.time()
    done = errors = 0
    i = 0
    while done < args.soak and time.time() - t0 < args.soak_seconds:
        w = ws[i % len(ws)]
        i += 1
        slice_s = min(3.0, max(0.5, args.soak_seconds - (time.time() - t0)))
        res = await loadgen.run_cell(w.target, 8, slice_s, args.soak - done)
        done += res.ok + res.errors + 8
        errors += res.errors
        samples.append((done, procs.memory(p.popen.pid)[0]))
    p.requests_since_start += done
    rss1, hwm = procs.memory(p.popen.pid)
    half = samples[len(samples) // 2:]
    slope = None
    if len(half) >= 3 and half[-1][0] > half[0][0]:
        xs, ys = [x for x, _ in half], [y for _, y in half]
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        den = sum((x - mx) ** 2 for x in xs)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else None
    log(f"  soak: {done} requests ({errors} errors) in {time.time() - t0:.0f}s, RSS {rss0:.1f} -> {rss1:.1f} MB")
    return {"requests": done, "errors": errors, "seconds": round(time.time() - t0, 1), "workloads": [w.key for w in ws],
            "rss_before_mb": round(rss0, 1), "rss_after_mb": round(rss1, 1), "growth_mb": round(rss1 - rss0, 1),
            "growth_mb_per_100k": round((rss1 - rss0) * 100_000 / done, 1) if done else None,
            "second_half_slope_mb_per_100k": None if slope is None else round(slope * 100_000, 1),
            "peak_mb": round(hwm, 1), "samples": [(n, round(m, 1)) for n, m in samples]}


async def profile(args: argparse.Namespace, procs_: dict[str, Proc], workloads: list[Workload], run_dir: Path) -> dict:
    """py-spy record of the proxy while one workload runs at concurrency 8 (a separate phase: sampling
    slows the proxy, so nothing measured above is affected)."""
    out: dict = {}
    if not args.profile:
        return out
    if not args.py_spy:
        return {"skipped": "py-spy not found (scripts/bench --profile installs it into .bench/tools)"}
    ws = {w.key: w for w in workloads}
    for key in args.profile.split(","):
        w = ws.get(key)
        if w is None or w.na or not w.proxy or not procs_[w.proxy].alive():
            out[key] = {"skipped": "workload not available"}
            continue
        dest = run_dir / f"profile-{key}.collapsed"
        spy = profiling.start(args.py_spy, procs_[w.proxy].popen.pid, args.profile_seconds, dest)
        await asyncio.sleep(0.5)
        res = await loadgen.run_cell(w.target, 8, args.profile_seconds - 1, 10**6)
        _, err = await asyncio.get_running_loop().run_in_executor(None, spy.communicate)
        if not dest.exists():
            out[key] = {"skipped": f"py-spy failed: {err.decode(errors='replace')[-300:]}"}
            continue
        summary = profiling.summarize(dest)
        summary["requests"] = res.ok
        summary["file"] = str(dest)
        out[key] = summary
        log(f"profiled {key}: {summary['samples']} samples -> {dest}")
    return out


def summarize(cells: list[dict], key: str) -> dict | None:
    vals = [c[key] for c in cells if c.get(key) is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def med(ws: dict[str, Workload], key: str, c: int, metric: str) -> float | None:
    w = ws.get(key)
    if not w or w.na or c not in w.cells:
        return None
    s = summarize(w.cells[c], metric)
    return s["median"] if s else None


def targets_report(ws: dict[str, Workload], micro: dict | None, soak_res: dict | None, rss: dict) -> list[dict]:
    out = []

    def add(name: str, value: float | None, limit: float, better: str, unit: str = "×", note: str = "") -> None:
        if value is None:
            out.append({"target": name, "value": None, "limit": limit, "met": None, "note": note or "n/a"})
            return
        met = value <= limit if better == "le" else value >= limit
        out.append({"target": name, "value": round(value, 3), "limit": limit, "unit": unit, "met": met,
                    "note": note})

    add("key swap p50 / bare mitmdump (c=1)", ratio(med(ws, "keyswap", 1, "p50_ms"), med(ws, "bare", 1, "p50_ms")), 1.10, "le")
    add("key swap rps / bare mitmdump (c=8)", ratio(med(ws, "keyswap", 8, "rps"), med(ws, "bare", 8, "rps")), 0.90, "ge")
    add("translated non-stream p50 / bare mitmdump (c=1)", ratio(med(ws, "xlate", 1, "p50_ms"), med(ws, "bare", 1, "p50_ms")), 1.25, "le")
    a, b = med(ws, "xlate-s", 1, "ttfe_p50_ms"), med(ws, "bare-s", 1, "ttfe_p50_ms")
    add("translated stream: added time to first event vs bare mitmdump stream (c=1)", None if a is None or b is None else a - b, 1.0, "le", "ms")
    ev = None
    slowest = ""
    if micro and micro.get("pairs"):
        main = ("anthropic upstream -> openai-chat client", "openai-chat upstream -> anthropic client")
        rates = [p["events_per_s"] for p in micro["pairs"] if p.get("events_per_s") and p["pair"].startswith(main)]
        ev = min(rates) if rates else None
        others = [p for p in micro["pairs"] if p.get("events_per_s")]
        if others:
            low = min(others, key=lambda p: p["events_per_s"])
            slowest = (f"slowest of all {len(others)} pairs: {low['pair']} {low['events_per_s']:,.0f} ev/s "
                       f"({low.get('events_per_stream')}-event recording)")
    add("translation micro-bench, openai-chat <-> anthropic streams (events/s per core)", ev, 20000, "ge", "ev/s",
        slowest if ev is not None else (micro or {}).get("skipped", "not run"))
    for mine, theirs, what in (("xlate", "litellm", "non-stream"), ("xlate-s", "litellm-s", "stream")):
        r = ratio(med(ws, mine, 8, "rps"), med(ws, theirs, 8, "rps"))
        p99m, p99t = med(ws, mine, 8, "p99_ms"), med(ws, theirs, 8, "p99_ms")
        note = "" if p99m is None or p99t is None else f"p99 {p99m:.1f} ms vs LiteLLM {p99t:.1f} ms ({'ok' if p99m <= p99t else 'worse'})"
        add(f"llmitm / LiteLLM rps, {what} (c=8)", r, 5.0, "ge", "×", note)
    g = None
    if soak_res:
        g = soak_res["growth_mb"] if soak_res["requests"] >= 100_000 else soak_res["second_half_slope_mb_per_100k"]
    add("llmitm RSS growth per 100,000 requests (soak; 2nd-half slope if fewer)", g, 50, "le", "MB",
        f"{soak_res['requests']} requests, {soak_res['rss_before_mb']} -> {soak_res['rss_after_mb']} MB "
        f"(whole-soak {soak_res['growth_mb_per_100k']} MB/100k)" if soak_res else "no soak (--soak 0)")
    return out


def _num(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}"


def fmt(v: float | None, spec: str = ".1f") -> str:
    return "—" if v is None else format(v, spec)


def table(workloads: list[Workload], procs_mem: dict, concs: list[int]) -> str:
    hdr = ["configuration", "c", "req/s (min–max)", "p50 ms", "p99 ms", "TTFE p50 ms", "ev/s", "CPU s/1k req", "peak RSS MB", "RSS growth MB", "other load"]
    rows = []
    for w in workloads:
        if w.na:
            why = " ".join(w.na.split())
            rows.append([w.label, "", f"n/a ({why[:110]}{'…' if len(why) > 110 else ''})"] + [""] * 8)
            continue
        for c in concs:
            cells = w.cells.get(c, [])
            rps = summarize(cells, "rps")
            p50 = summarize(cells, "p50_ms")
            p99 = summarize(cells, "p99_ms")
            tt = summarize(cells, "ttfe_p50_ms")
            cpu = summarize(cells, "proxy_cpu_s_per_1k")
            evs = summarize(cells, "events_per_reply")
            mem = procs_mem.get(w.proxy or "", {})
            rows.append([
                w.label, str(c),
                f"{rps['median']:.0f} ({rps['min']:.0f}–{rps['max']:.0f})" if rps else "—",
                f"{p50['median']:.2f} ({p50['min']:.2f}–{p50['max']:.2f})" if p50 else "—",
                fmt(p99 and p99["median"], ".2f"),
                f"{tt['median']:.2f} ({tt['min']:.2f}–{tt['max']:.2f})" if tt else "—",
                f"{rps['median'] * evs['median']:.0f}" if rps and evs else "—",
                fmt(cpu and cpu["median"], ".2f"),
                fmt(mem.get("peak_mb")), fmt(mem.get("growth_mb")),
                fmt((summarize(cells, "other_load_cores") or {}).get("median"), ".2f"),
            ])
    widths = [max(len(r[i]) for r in rows + [hdr]) for i in range(len(hdr))]
    lines = ["| " + " | ".join(h.ljust(widths[i]) for i, h in enumerate(hdr)) + " |",
             "|" + "|".join("-" * (wd + 2) for wd in widths) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(r[i].ljust(widths[i]) for i in range(len(hdr))) + " |")
    return "\n".join(lines)


def markdown(result: dict, workloads: list[Workload], mem: dict, concs: list[int]) -> str:
    m, v, st = result["machine"], result["versions"], result["settings"]
    lines = [
        "# llmitm benchmark results", "",
        f"Generated by `{result['command']}` (`--markdown`) on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"wall time {result['wall_seconds']:.0f} s.", "",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['mem_gb']} GB, Linux {m['kernel']}. Load generator, replay "
        "upstream and proxy share these cores (pessimistic for every configuration alike).",
        f"- Versions: Python {v.get('python')}, mitmproxy {v.get('mitmproxy')}, LiteLLM {v.get('litellm', 'n/a')}, "
        f"llmitm at {v.get('llmitm_commit')}{' + uncommitted changes' if v.get('llmitm_tree_dirty') else ''}.",
        f"- Settings: {st['rounds']} rounds alternating configurations, {st['duration_s']} s per cell, concurrency "
        f"{', '.join(map(str, st['concurrency']))}; streams of {st['stream_events']} events; llmitm state: "
        f"{st['llmitm_state']}; mitmdump flags `{' '.join(st['mitmdump_flags'])}` for bare mitmdump and llmitm alike.",
        "- Cells show the median of the rounds and (min–max). \"other load\" is CPU (in cores) used meanwhile by "
        "processes outside the benchmark: on a shared machine it is why absolute figures vary; compare ratios, "
        "and CPU s/1k req (the proxy tree's own CPU time per 1,000 requests) is the least contention-sensitive column.",
        "- Peak RSS / RSS growth are per proxy process over the whole run (growth = end minus after warm-up; "
        "llmitm serves several rows, and its growth includes the soak). TTFE = time from writing the request to "
        "the first complete SSE event; ev/s = streamed events delivered per second.",
        "- Clients reach mitmdump and llmitm as an HTTPS proxy (CONNECT + TLS with the proxy's CA, as an SDK with "
        "HTTPS_PROXY does); LiteLLM is a base-URL gateway, so its clients speak plain HTTP to it (no TLS: an "
        "advantage for LiteLLM). The bare-mitmdump stream row loads a 3-line addon that sets "
        "`flow.response.stream` for SSE (without it mitmdump buffers whole responses).",
        "", table(workloads, mem, concs), "", "## Ratios (medians)", "",
    ]
    for name, per in result["ratios"].items():
        lines.append(f"- {name}: " + "; ".join(f"{c}: " + ", ".join(f"{k} {fmt(x, '.2f')}" for k, x in d.items())
                                                 for c, d in per.items()))
    lines += ["", "## Targets (issue 5)", "", "| target | value | limit | status | note |", "|---|---|---|---|---|"]
    for t in result["targets"]:
        state = "n/a" if t["met"] is None else ("met" if t["met"] else "**missed**")
        val = "—" if t["value"] is None else f"{_num(t['value'])} {t.get('unit', '')}"
        lines.append(f"| {t['target']} | {val} | {t['limit']} | {state} | {t['note']} |")
    micro = result.get("micro") or {}
    lines += ["", "## Translation micro-benchmark (no network, one core)", ""]
    if micro.get("pairs"):
        for p in micro["pairs"]:
            lines.append(f"- {p['pair']}: {fmt(p.get('events_per_s'), ',.0f')} events/s "
                         f"({p.get('events_per_stream', '?')}-event stream) {p.get('note', '')}")
        for p in micro.get("exchanges", []):
            lines.append(f"- {p['pair']}, non-stream request+response: {fmt(p.get('exchanges_per_s'), ',.0f')} "
                         f"exchanges/s {p.get('note', '')}")
    else:
        lines.append(f"n/a ({micro.get('skipped', 'not run')})")
    if result.get("soak"):
        s = result["soak"]
        lines += ["", "## Soak (llmitm RSS)", "",
                  f"{s['requests']} requests over {', '.join(s['workloads'])} in {s['seconds']} s: RSS "
                  f"{s['rss_before_mb']} → {s['rss_after_mb']} MB (peak {s['peak_mb']} MB); second-half slope "
                  f"{s['second_half_slope_mb_per_100k']} MB per 100,000 requests."]
    prof = result.get("profile") or {}
    if any(isinstance(p, dict) and p.get("by_category") for p in prof.values()):
        lines += ["", "## Profile (py-spy of the proxy at concurrency 8, after the measurements)", ""]
        for key, p in prof.items():
            if isinstance(p, dict) and p.get("by_category"):
                lines.append(f"- **{key}** ({p['samples']} samples): "
                             + ", ".join(f"{c} {x}%" for c, x in p["by_category"]))
                lines.append("  - top self: " + "; ".join(f"`{f}` {x}%" for f, x in p["self_top"][:6]))
    lines += ["", f"Full data: the `--json` output of the same run.", ""]
    return "\n".join(lines)


def run_micro(args: argparse.Namespace, run_dir: Path) -> dict:
    out = run_dir / "micro.json"
    env = child_env(PYTHONPATH=f"{ROOT / 'addons'}:{ROOT / 'scripts'}")
    cmd = [args.python, "-m", "bench_lib.micro", "--json", str(out), "--seconds", str(args.micro_seconds)]
    try:
        subprocess.run(cmd, env=env, cwd=str(ROOT), timeout=300, check=False)
        return json.loads(out.read_text())
    except Exception as e:  # noqa: BLE001
        return {"skipped": f"micro-benchmark failed: {type(e).__name__}: {e}"}


def machine_info() -> dict:
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
            "mem_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}


def tool_versions(args: argparse.Namespace) -> dict:
    v = {"python": sys.version.split()[0]}
    try:
        v["mitmproxy"] = subprocess.run([args.python, "-c", "import mitmproxy.version as m; print(m.VERSION)"],
                                        capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception:  # noqa: BLE001
        pass
    if args.litellm:
        lpy = Path(args.litellm).parent / "python"
        try:
            v["litellm"] = subprocess.run([str(lpy), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
                                          capture_output=True, text=True, timeout=60).stdout.strip()
        except Exception:  # noqa: BLE001
            pass
    try:
        v["llmitm_commit"] = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                            capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "addons"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        v["llmitm_tree_dirty"] = bool(dirty)
    except Exception:  # noqa: BLE001
        pass
    return v


def main() -> int:
    ap = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    ap.add_argument("--python", default=sys.executable, help="python of the venv with mitmproxy (and llmitm's deps)")
    ap.add_argument("--litellm", default=None, help="litellm executable (scripts/bench installs a pinned one)")
    ap.add_argument("--no-litellm", action="store_true")
    ap.add_argument("--quick", action="store_true", help="~1-2 minutes: 2 rounds of 1.5 s per cell, no soak")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--duration", type=float, default=None, help="seconds per measured cell")
    ap.add_argument("--max-requests", type=int, default=50_000, help="cap per cell")
    ap.add_argument("--concurrency", default="1,8")
    ap.add_argument("--max-other-load", type=float, default=0.25,
                    help="re-measure a cell when other processes used more than this many cores meanwhile")
    ap.add_argument("--retries", type=int, default=1, help="re-measurements per noisy cell")
    ap.add_argument("--soak", type=int, default=None, help="requests through llmitm for the RSS-growth check")
    ap.add_argument("--soak-seconds", type=float, default=None, help="time bound of the soak (default 150)")
    ap.add_argument("--micro-seconds", type=float, default=None)
    ap.add_argument("--events-per-write", type=int, default=1, help="SSE events per upstream write")
    ap.add_argument("--event-gap-ms", type=float, default=0.0,
                    help="upstream pause between stream writes (0: none, throughput-bound; e.g. 20 for token pacing)")
    ap.add_argument("--markdown", help="write a Markdown report (machine, command, table, targets, profile) here")
    ap.add_argument("--llmitm-state", default=None, help="llmitm `state:` (default: llmitm's own default)")
    ap.add_argument("--profile", default="", help="workloads to py-spy after measuring, e.g. keyswap,xlate-s")
    ap.add_argument("--profile-seconds", type=float, default=12)
    ap.add_argument("--py-spy", default=None)
    ap.add_argument("--only", help="comma-separated workload keys: direct,bare,keyswap,reroute,xlate,litellm,"
                                   "direct-s,bare-s,keyswap-s,xlate-s,litellm-s")
    ap.add_argument("--json", help="write the full results here")
    args = ap.parse_args()
    quick = args.quick
    args.rounds = args.rounds or (2 if quick else 5)
    args.duration = args.duration or (1.5 if quick else 3.0)
    args.soak = (0 if quick else 100_000) if args.soak is None else args.soak
    args.soak_seconds = args.soak_seconds or 150
    args.micro_seconds = args.micro_seconds or (1.0 if quick else 3.0)
    if args.no_litellm:
        args.litellm = args.litellm or None

    run_dir = ROOT / ".bench" / time.strftime("run-%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    t_begin = time.time()
    upstream, procs_, workloads = build(args, run_dir)
    needed = {w.proxy for w in workloads if w.proxy}
    started = []
    try:
        for name, p in procs_.items():
            if name in needed and p.na is None:
                p.start()
                started.append(p)
        for p in started:
            ok = p.wait_ready(120 if p.name == "litellm" else 60)
            log(f"{p.name}: {'ready on port %d' % p.port if ok else 'n/a: ' + str(p.na)}")
        loop = asyncio.new_event_loop()
        for w in workloads:
            loop.run_until_complete(validate(w, upstream.port, procs_))
            log(f"validate {w.key}: {'ok' if w.na is None else 'n/a (' + w.na + ')'}")
        for p in started:
            if p.alive():
                p.rss_start = procs.memory(p.popen.pid)[0]
        loop.run_until_complete(measure(args, upstream, procs_, workloads))
        soak_res = loop.run_until_complete(soak(args, procs_, workloads))
        prof = loop.run_until_complete(profile(args, procs_, workloads, run_dir))
        mem = {}
        for p in started:
            if p.alive() and p.rss_start is not None:
                rss, hwm = procs.memory(p.popen.pid)
                mem[p.name] = {"peak_mb": round(hwm, 1), "rss_start_mb": round(p.rss_start, 1),
                               "rss_end_mb": round(rss, 1), "growth_mb": round(rss - p.rss_start, 1),
                               "requests": p.requests_since_start}
            elif p.popen is not None and not p.alive():
                mem[p.name] = {"died": p.tail()}
        stats = upstream_stats(upstream.port)
    finally:
        for p in started:
            p.stop()
        upstream.stop()
    micro = run_micro(args, run_dir)
    concs = [int(c) for c in args.concurrency.split(",")]
    ws = {w.key: w for w in workloads}
    result = {
        "machine": machine_info(), "versions": tool_versions(args),
        "command": os.environ.get("BENCH_CMDLINE") or " ".join(["python -m bench_lib"] + sys.argv[1:]),
        "settings": {"rounds": args.rounds, "duration_s": args.duration, "concurrency": concs,
                     "stream_events": shapes.STREAM_EVENTS, "events_per_write": args.events_per_write,
                     "event_gap_ms": args.event_gap_ms,
                     "soak": args.soak, "llmitm_state": args.llmitm_state or "llmitm default",
                     "mitmdump_flags": MITM_QUIET},
        "workloads": {w.key: {"label": w.label, "proxy": w.proxy, "na": w.na,
                              "summary": {str(c): {k: summarize(w.cells.get(c, []), k) for k in
                                                   ("rps", "p50_ms", "p99_ms", "ttfe_p50_ms", "ttfe_p99_ms",
                                                    "proxy_cpu_s_per_1k", "upstream_cpu_s_per_1k", "loadgen_cpu_s_per_1k",
                                                    "machine_busy", "other_load_cores",
                                                    "events_per_reply")}
                                          for c in concs if w.cells.get(c)},
                              "cells": w.cells} for w in workloads},
        "memory": mem, "soak": soak_res, "profile": prof, "micro": micro, "upstream_stats": stats,
        "wall_seconds": round(time.time() - t_begin, 1),
    }
    result["ratios"] = {
        "keyswap_vs_bare": {f"c{c}": {"rps": ratio(med(ws, "keyswap", c, "rps"), med(ws, "bare", c, "rps")),
                                      "p50": ratio(med(ws, "keyswap", c, "p50_ms"), med(ws, "bare", c, "p50_ms")),
                                      "cpu_per_req": ratio(med(ws, "keyswap", c, "proxy_cpu_s_per_1k"), med(ws, "bare", c, "proxy_cpu_s_per_1k"))} for c in concs},
        "xlate_vs_bare": {f"c{c}": {"rps": ratio(med(ws, "xlate", c, "rps"), med(ws, "bare", c, "rps")),
                                    "p50": ratio(med(ws, "xlate", c, "p50_ms"), med(ws, "bare", c, "p50_ms")),
                                    "cpu_per_req": ratio(med(ws, "xlate", c, "proxy_cpu_s_per_1k"), med(ws, "bare", c, "proxy_cpu_s_per_1k"))} for c in concs},
        "xlate_stream_vs_bare_stream": {f"c{c}": {"rps": ratio(med(ws, "xlate-s", c, "rps"), med(ws, "bare-s", c, "rps")),
                                                  "cpu_per_req": ratio(med(ws, "xlate-s", c, "proxy_cpu_s_per_1k"), med(ws, "bare-s", c, "proxy_cpu_s_per_1k")),
                                                  "ttfe_added_ms": (lambda a, b: None if a is None or b is None else a - b)(
                                                      med(ws, "xlate-s", c, "ttfe_p50_ms"), med(ws, "bare-s", c, "ttfe_p50_ms"))} for c in concs},
        "xlate_vs_litellm": {f"c{c}": {"rps": ratio(med(ws, "xlate", c, "rps"), med(ws, "litellm", c, "rps")),
                                       "cpu_per_req": ratio(med(ws, "xlate", c, "proxy_cpu_s_per_1k"), med(ws, "litellm", c, "proxy_cpu_s_per_1k")),
                                       "p99": ratio(med(ws, "xlate", c, "p99_ms"), med(ws, "litellm", c, "p99_ms"))} for c in concs},
        "xlate_stream_vs_litellm": {f"c{c}": {"rps": ratio(med(ws, "xlate-s", c, "rps"), med(ws, "litellm-s", c, "rps")),
                                              "cpu_per_req": ratio(med(ws, "xlate-s", c, "proxy_cpu_s_per_1k"), med(ws, "litellm-s", c, "proxy_cpu_s_per_1k")),
                                              "p99": ratio(med(ws, "xlate-s", c, "p99_ms"), med(ws, "litellm-s", c, "p99_ms"))} for c in concs},
        "bare_vs_litellm": {f"c{c}": {"nonstream_rps": ratio(med(ws, "bare", c, "rps"), med(ws, "litellm", c, "rps")),
                                      "stream_rps": ratio(med(ws, "bare-s", c, "rps"), med(ws, "litellm-s", c, "rps"))} for c in concs},
    }
    result["targets"] = targets_report(ws, micro, soak_res, mem)

    out = [f"machine: {result['machine']['cpu']}, {result['machine']['cores']} cores; "
           f"versions: {json.dumps(result['versions'])}",
           f"settings: {json.dumps(result['settings'])}", "",
           table(workloads, mem, concs), "",
           "ratios (medians of rounds):"]
    for name, per in result["ratios"].items():
        out.append(f"  {name}: " + "; ".join(f"{c}: " + ", ".join(f"{k} {fmt(v, '.2f')}" for k, v in d.items())
                                              for c, d in per.items()))
    if soak_res:
        out.append("soak: " + json.dumps({k: v for k, v in soak_res.items() if k != "samples"}))
    out.append("micro-benchmark (translation only, no network, one core):")
    if micro.get("pairs"):
        for p in micro["pairs"]:
            out.append(f"  {p['pair']}: {fmt(p.get('events_per_s'), ',.0f')} events/s"
                       + (f" ({p['events_per_stream']}-event stream)" if p.get("events_per_stream") else "")
                       + (f" ({p['note']})" if p.get("note") else ""))
        for p in micro.get("exchanges", []):
            out.append(f"  {p['pair']} (non-stream request+response): {fmt(p.get('exchanges_per_s'), ',.0f')} exchanges/s"
                       + (f", {p['us_per_exchange']} µs each" if p.get("us_per_exchange") else "")
                       + (f" ({p['note']})" if p.get("note") else ""))
    else:
        out.append(f"  n/a ({micro.get('skipped', 'not run')})")
    if isinstance(prof.get("skipped"), str):
        out.append(f"profile: {prof['skipped']}")
    for key, pr in prof.items():
        if isinstance(pr, dict) and pr.get("self_top"):
            out.append(f"profile of {key} (py-spy, {pr['samples']} busy samples, c=8; % of busy samples; "
                       f"{pr['llmitm_inclusive_share']}% inside llmitm code incl. callees):")
            out.append("  by component (nearest owner of each sample): "
                       + ", ".join(f"{c} {v}%" for c, v in pr.get("by_category", [])))
            out.append("  self time by package: " + ", ".join(f"{p} {v}%" for p, v in pr["self_by_package"]))
            out.append("  top self: " + "; ".join(f"{f} {v}%" for f, v in pr["self_top"][:10]))
            out.append("  top inclusive: " + "; ".join(f"{f} {v}%" for f, v in pr["inclusive_top"][:12]))
            if pr.get("llmitm_top"):
                out.append("  llmitm inclusive: " + "; ".join(f"{f} {v}%" for f, v in pr["llmitm_top"][:12]))
        elif isinstance(pr, dict):
            out.append(f"profile of {key}: {pr.get('skipped')}")
    out.append("targets:")
    for t in result["targets"]:
        state = "n/a" if t["met"] is None else ("MET" if t["met"] else "MISSED")
        val = "—" if t["value"] is None else f"{_num(t['value'])} {t.get('unit', '')}"
        out.append(f"  [{state:6}] {t['target']}: {val} (limit {t['limit']}) {t['note']}")
    out.append(f"wall time {result['wall_seconds']} s; logs in {run_dir}")
    text = "\n".join(out)
    print(text)
    (run_dir / "report.txt").write_text(text + "\n")
    if args.markdown:
        Path(args.markdown).write_text(markdown(result, workloads, mem, concs))
        log(f"Markdown written to {args.markdown}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))
        log(f"JSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
