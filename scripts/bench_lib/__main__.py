"""llmitm benchmark driver: see scripts/bench --help.

Starts, on loopback only, the replay upstream, a bare mitmdump (and a streaming one), llmitm and the
LiteLLM proxy, then measures every configuration with the same load generator in alternating rounds.

The parts, in the order a run uses them:
  processes.py    the processes under test (start, wait until ready, stop) and their configurations
  workloads.py    what is measured against which process, and the one-request check that it is real
  measurement.py  timed rounds of cells, the llmitm memory soak, py-spy profiles, the micro-benchmark
  report.py       medians, ratios, targets; the terminal table, text and Markdown reports
and underneath: loadgen.py (the load generator), upstream.py + shapes.py (the replay upstream and its
recorded bodies), procstat.py (CPU/RSS from /proc), profile.py (py-spy summaries), micro.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

from . import procstat, report, shapes
from .measurement import measure, profile, run_micro, soak
from .processes import MITM_QUIET, ROOT, Proc, log, proxies, start_upstream
from .workloads import Workload, upstream_stats, validate, workloads


def parse_args() -> argparse.Namespace:
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
    ap.add_argument("--only", help="comma-separated workload keys: direct,bare,keyswap,keyswap-quiet,reroute,xlate,litellm,"
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
    return args


def run(args: argparse.Namespace, upstream: Proc, procs_: dict[str, Proc], workloads: list[Workload],
        run_dir: Path) -> tuple[dict, dict | None, dict, dict]:
    """Start the proxies the workloads need, validate and measure every workload, soak and profile, and
    stop everything that was started, whatever happens. Returns (memory, soak, profile, upstream stats)."""
    needed = {w.proxy for w in workloads if w.proxy}
    started = []
    try:
        for name, p in procs_.items():
            if name in needed and p.na is None:
                p.start()
                started.append(p)
        for p in started:
            ok = p.wait_ready(120 if p.name == "litellm" else 60)
            log(f"{p.name}: {f'ready on port {p.port}' if ok else 'n/a: ' + str(p.na)}")
        loop = asyncio.new_event_loop()
        for w in workloads:
            loop.run_until_complete(validate(w, upstream.port, procs_))
            log(f"validate {w.key}: {'ok' if w.na is None else 'n/a (' + w.na + ')'}")
        for p in started:
            if p.alive():
                p.rss_start = procstat.memory(p.popen.pid)[0]
        loop.run_until_complete(measure(args, upstream, procs_, workloads))
        soak_res = loop.run_until_complete(soak(args, procs_, workloads))
        prof = loop.run_until_complete(profile(args, procs_, workloads, run_dir))
        mem = {}
        for p in started:
            if p.alive() and p.rss_start is not None:
                rss, hwm = procstat.memory(p.popen.pid)
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
    return mem, soak_res, prof, stats


def main() -> int:
    args = parse_args()
    run_dir = ROOT / ".bench" / time.strftime("run-%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    t_begin = time.time()
    upstream = start_upstream(args, run_dir)
    procs_ = proxies(args, run_dir, upstream.port)
    chosen = workloads(args, run_dir, upstream.port, procs_)
    mem, soak_res, prof, stats = run(args, upstream, procs_, chosen, run_dir)
    micro = run_micro(args, run_dir)
    concs = [int(c) for c in args.concurrency.split(",")]
    ws = {w.key: w for w in chosen}
    result = {
        "machine": report.machine_info(), "versions": report.tool_versions(args),
        "command": os.environ.get("BENCH_CMDLINE") or " ".join(["python -m bench_lib"] + sys.argv[1:]),
        "settings": {"rounds": args.rounds, "duration_s": args.duration, "concurrency": concs,
                     "stream_events": shapes.STREAM_EVENTS, "events_per_write": args.events_per_write,
                     "event_gap_ms": args.event_gap_ms,
                     "soak": args.soak, "llmitm_state": args.llmitm_state or "llmitm default",
                     "mitmdump_flags": MITM_QUIET},
        "workloads": {w.key: {"label": w.label, "proxy": w.proxy, "na": w.na,
                              "summary": report.workload_summary(w, concs), "cells": w.cells} for w in chosen},
        "memory": mem, "soak": soak_res, "profile": prof, "micro": micro, "upstream_stats": stats,
        "wall_seconds": round(time.time() - t_begin, 1),
    }
    result["ratios"] = report.ratios(ws, concs)
    result["targets"] = report.targets_report(ws, micro, soak_res, mem)

    text = report.terminal_report(result, chosen, mem, concs, run_dir)
    print(text)
    (run_dir / "report.txt").write_text(text + "\n")
    if args.markdown:
        Path(args.markdown).write_text(report.markdown(result, chosen, mem, concs))
        log(f"Markdown written to {args.markdown}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))
        log(f"JSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
