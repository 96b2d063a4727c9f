"""Reporting a benchmark run: medians of the rounds, ratios between configurations, the targets of
issue 5 (met / missed / n/a), and the same result as a terminal table, a text report and Markdown.

Everything here is a pure function of the measured cells (measurement.py) and the run's facts
(machine, tool versions); nothing is measured here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .processes import ROOT
from .workloads import Workload


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


# The per-workload summary in the JSON result: median, min, max and n of each of these over the rounds.
SUMMARY_METRICS = ("rps", "p50_ms", "p99_ms", "ttfe_p50_ms", "ttfe_p99_ms", "proxy_cpu_s_per_1k", "upstream_cpu_s_per_1k",
                   "loadgen_cpu_s_per_1k", "machine_busy", "other_load_cores", "events_per_reply")


def workload_summary(w: Workload, concs: list[int]) -> dict:
    return {str(c): {k: summarize(w.cells.get(c, []), k) for k in SUMMARY_METRICS} for c in concs if w.cells.get(c)}


# The ratios printed and saved for every concurrency: (name, workload, baseline, figures). A figure
# is the workload's median over the baseline's, except ttfe_added_ms: the difference in milliseconds
# of the median time to first event.
COMPARISONS = (
    ("keyswap_vs_bare", "keyswap", "bare", ("rps", "p50", "cpu_per_req")),
    ("observing_cost", "keyswap", "keyswap-quiet", ("rps", "p50", "cpu_per_req")),
    ("xlate_vs_bare", "xlate", "bare", ("rps", "p50", "cpu_per_req")),
    ("xlate_stream_vs_bare_stream", "xlate-s", "bare-s", ("rps", "cpu_per_req", "ttfe_added_ms")),
    ("xlate_vs_litellm", "xlate", "litellm", ("rps", "cpu_per_req", "p99")),
    ("xlate_stream_vs_litellm", "xlate-s", "litellm-s", ("rps", "cpu_per_req", "p99")),
)
_FIGURE_METRIC = {"rps": "rps", "p50": "p50_ms", "p99": "p99_ms", "cpu_per_req": "proxy_cpu_s_per_1k"}


def _figure(ws: dict[str, Workload], mine: str, base: str, c: int, figure: str) -> float | None:
    if figure == "ttfe_added_ms":
        a, b = med(ws, mine, c, "ttfe_p50_ms"), med(ws, base, c, "ttfe_p50_ms")
        return None if a is None or b is None else a - b
    metric = _FIGURE_METRIC[figure]
    return ratio(med(ws, mine, c, metric), med(ws, base, c, metric))


def ratios(ws: dict[str, Workload], concs: list[int]) -> dict:
    out = {name: {f"c{c}": {f: _figure(ws, mine, base, c, f) for f in figures} for c in concs}
           for name, mine, base, figures in COMPARISONS}
    # bare mitmdump against LiteLLM: what the gateway architecture alone costs, without llmitm's work.
    out["bare_vs_litellm"] = {f"c{c}": {"nonstream_rps": ratio(med(ws, "bare", c, "rps"), med(ws, "litellm", c, "rps")),
                                        "stream_rps": ratio(med(ws, "bare-s", c, "rps"), med(ws, "litellm-s", c, "rps"))}
                              for c in concs}
    return out


def targets_report(ws: dict[str, Workload], micro: dict | None, soak_res: dict | None, rss: dict) -> list[dict]:
    out = []

    def add(name: str, value: float | None, limit: float, better: str, unit: str = "×", note: str = "") -> None:
        if value is None:
            out.append({"target": name, "value": None, "limit": limit, "met": None, "note": note or "n/a"})
            return
        met = value <= limit if better == "le" else value >= limit
        out.append({"target": name, "value": round(value, 3), "limit": limit, "unit": unit, "met": met,
                    "note": note})

    add("key swap p50 / bare mitmdump (c=1)", _figure(ws, "keyswap", "bare", 1, "p50"), 1.10, "le")
    add("key swap rps / bare mitmdump (c=8)", _figure(ws, "keyswap", "bare", 8, "rps"), 0.90, "ge")
    add("translated non-stream p50 / bare mitmdump (c=1)", _figure(ws, "xlate", "bare", 1, "p50"), 1.25, "le")
    add("translated stream: added time to first event vs bare mitmdump stream (c=1)",
        _figure(ws, "xlate-s", "bare-s", 1, "ttfe_added_ms"), 1.0, "le", "ms")
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
        note = ("" if p99m is None or p99t is None
                else f"p99 {p99m:.1f} ms vs LiteLLM {p99t:.1f} ms ({'ok' if p99m <= p99t else 'worse'})")
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
    hdr = ["configuration", "c", "req/s (min–max)", "p50 ms", "p99 ms", "TTFE p50 ms", "ev/s", "CPU s/1k req",
           "peak RSS MB", "RSS growth MB", "other load"]
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
    lines += ["", "Full data: the `--json` output of the same run.", ""]
    return "\n".join(lines)


def terminal_report(result: dict, workloads: list[Workload], mem: dict, concs: list[int], run_dir: Path) -> str:
    """The terminal report: machine, settings, table, ratios, soak, micro-benchmark, profiles, targets."""
    soak_res, micro, prof = result["soak"], result["micro"], result["profile"]
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
    return text


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
