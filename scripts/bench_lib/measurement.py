"""Measuring: alternating rounds of timed cells, the llmitm memory soak, py-spy profiles, and the
translation micro-benchmark (micro.py, in a subprocess).

A cell is one workload at one concurrency for `--duration` seconds: throughput, latency and
time-to-first-event percentiles from the load generator, and CPU seconds per 1,000 requests of the
proxy's process tree and of the upstream (procstat.py). On a shared machine the CPU used meanwhile by
processes outside the benchmark is recorded too ("other load"), and a noisy cell is measured again
within a bounded budget, keeping the quietest attempt.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

from . import loadgen, procstat
from . import profile as profiling
from .processes import ROOT, Proc, child_env, log
from .workloads import Workload


async def measure(args: argparse.Namespace, upstream: Proc, procs_: dict[str, Proc], workloads: list[Workload]):
    """Every valid workload at every concurrency, `--rounds` times. Each round starts one workload later
    and every other round runs backwards, so slow drift on the machine falls on all configurations alike."""
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
    """One workload at concurrency `c` for `--duration` seconds: the load generator's figures plus the CPU
    of the proxy tree, the upstream, this process and the rest of the machine over the same interval."""
    pid = procs_[w.proxy].popen.pid if w.proxy else None
    cpu0 = procstat.cpu_seconds(pid) if pid else 0.0
    ucpu0 = procstat.cpu_seconds(upstream.popen.pid)
    self0 = sum(os.times()[:2])
    m0 = procstat.machine_cpu()
    res = await loadgen.run_cell(w.target, c, args.duration, args.max_requests)
    m1 = procstat.machine_cpu()
    self1 = sum(os.times()[:2])
    cpu = (procstat.cpu_seconds(pid) - cpu0) if pid else None
    ucpu = procstat.cpu_seconds(upstream.popen.pid) - ucpu0
    n = res.ok + res.errors
    if w.proxy:
        procs_[w.proxy].requests_since_start += n + c  # + the warm-up request per worker
    busy_s = (m1[0] - m0[0]) / procstat.TICK
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
    rss0, _ = procstat.memory(p.popen.pid)
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
        samples.append((done, procstat.memory(p.popen.pid)[0]))
    p.requests_since_start += done
    rss1, hwm = procstat.memory(p.popen.pid)
    half = samples[len(samples) // 2:]
    slope = None
    if len(half) >= 3 and half[-1][0] > half[0][0]:
        xs, ys = [x for x, _ in half], [y for _, y in half]
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        den = sum((x - mx) ** 2 for x in xs)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else None
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


def run_micro(args: argparse.Namespace, run_dir: Path) -> dict:
    """The translation micro-benchmark (micro.py) in a subprocess, or {"skipped": why}."""
    out = run_dir / "micro.json"
    env = child_env(PYTHONPATH=f"{ROOT / 'addons'}:{ROOT / 'scripts'}")
    cmd = [args.python, "-m", "bench_lib.micro", "--json", str(out), "--seconds", str(args.micro_seconds)]
    try:
        subprocess.run(cmd, env=env, cwd=str(ROOT), timeout=300, check=False)
        return json.loads(out.read_text())
    except Exception as e:  # noqa: BLE001
        return {"skipped": f"micro-benchmark failed: {type(e).__name__}: {e}"}
