"""Profile a proxy under load with py-spy (sampling, no code changes) and summarize where time goes."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)$")


def _frame_key(frame: str) -> str:
    # "handle (mitmproxy/proxy/server.py:123)" -> "handle (mitmproxy/proxy/server.py)"
    frame = _LINE.sub(")", frame.strip())
    frame = re.sub(r"\(/.*?/(site-packages|lib/python3\.\d+|addons)/", "(", frame)
    return frame


# Leaf frames where a thread waits (py-spy cannot always tell a blocked C call from work).
_IDLE = ("_worker (concurrent/futures/thread.py)", "select (selectors.py)", "wait (threading.py)",
         "_wait_for_tstate_lock (threading.py)", "get (queue.py)")


# Attribution of a sample: the nearest frame (leaf upward) that belongs to one of these; stdlib and C
# helpers (asyncio writes, ssl, json) count for whoever called them.
_CATEGORIES = (
    ("llmitm translation", ("(llmitm/protocols/",)),
    ("llmitm key pool/state", ("(llmitm/pool/", "(llmitm/provider_pools.py")),
    ("llmitm relay hop (aiohttp server+client)", ("(llmitm/relay.py", "(aiohttp/", "(multidict/", "(yarl/")),
    ("llmitm hooks/other", ("(llmitm/",)),
    ("mitmproxy", ("(mitmproxy/", "(h11/", "(h2/", "(OpenSSL/", "(wsproto/")),
)


def _category(frames: list[str]) -> str:
    for f in reversed(frames):
        if "(llmitm/cli.py" in f:
            continue
        for name, prefixes in _CATEGORIES:
            if any(p in f for p in prefixes):
                return name
    return "event loop/other"


def summarize(collapsed: Path, top: int = 15) -> dict:
    """Shares are of non-idle samples (all threads)."""
    self_t: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    by_pkg: Counter[str] = Counter()
    llmitm_incl: Counter[str] = Counter()
    cats: Counter[str] = Counter()
    total = idle = in_llmitm = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        count = int(n)
        frames = [_frame_key(f) for f in stack.split(";") if f]
        if not frames:
            continue
        if frames[-1].startswith(_IDLE):
            idle += count
            continue
        total += count
        cats[_category(frames)] += count
        mine = {f for f in frames if "(llmitm/" in f and "(llmitm/cli.py)" not in f}  # cli.py: entry frames
        if mine:
            in_llmitm += count
        for f in mine:
            llmitm_incl[f] += count
        self_t[frames[-1]] += count
        for f in set(frames):
            incl[f] += count
        leaf = frames[-1]
        m = re.search(r"\(([^/)]+)", leaf)
        by_pkg[m.group(1).removesuffix(".py") if m else "?"] += count
    pct = lambda c: round(100 * c / total, 1) if total else 0.0  # noqa: E731
    return {
        "samples": total,
        "idle_samples": idle,
        "llmitm_inclusive_share": pct(in_llmitm),
        "by_category": [(c, pct(n)) for c, n in cats.most_common()],
        "llmitm_top": [(f, pct(c)) for f, c in llmitm_incl.most_common(top)],
        "self_top": [(f, pct(c)) for f, c in self_t.most_common(top)],
        "inclusive_top": [(f, pct(c)) for f, c in incl.most_common(top * 3)
                          if not f.startswith(("<module>", "run (", "_run_once", "run_forever", "run_until_complete",
                                               "_run (asyncio", "main (", "mitmdump (", "run (mitmproxy/tools"))][:top],
        "self_by_package": [(p, pct(c)) for p, c in by_pkg.most_common(12)],
    }


def start(py_spy: str, pid: int, seconds: float, out: Path) -> subprocess.Popen:
    return subprocess.Popen([py_spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "250",
                             "--nonblocking", "--format", "raw", "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def per_request_inclusive(collapsed: Path, requests: int, hz: int = 250) -> tuple[Counter[str], float]:
    """Inclusive busy time per request (ms) of each function, from a py-spy raw profile."""
    incl: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        frames = [_frame_key(f) for f in stack.split(";") if f]
        if not frames or frames[-1].startswith(_IDLE):
            continue
        total += int(n)
        for f in set(frames):
            incl[f] += int(n)
    scale = 1000 / hz / max(1, requests)
    return Counter({f: c * scale for f, c in incl.items()}), total * scale


def main() -> None:
    """python -m bench_lib.profile RESULT.json BASE OTHER [N]: the functions whose busy time per request
    grew most from workload BASE to OTHER (both profiled in the same run with --profile)."""
    import json
    import sys

    data = json.loads(Path(sys.argv[1]).read_text())
    base, other = data["profile"][sys.argv[2]], data["profile"][sys.argv[3]]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 25
    a, ta = per_request_inclusive(Path(base["file"]), base["requests"])
    b, tb = per_request_inclusive(Path(other["file"]), other["requests"])
    print(f"busy ms/request under the profiler: {sys.argv[2]} {ta:.2f}, {sys.argv[3]} {tb:.2f}")
    ma, mb = max(a.values(), default=0), max(b.values(), default=0)
    roots = {f for f in set(a) | set(b) if b[f] >= 0.8 * mb or a[f] >= 0.8 * ma}  # loop/entry frames
    for f in sorted((set(a) | set(b)) - roots, key=lambda f: a[f] - b[f])[:n]:
        print(f"  {b[f] - a[f]:+7.3f} ms  ({a[f]:6.3f} -> {b[f]:6.3f})  {f}")


if __name__ == "__main__":
    main()
