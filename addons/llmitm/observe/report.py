"""`llmitm usage`: the ledger's totals as a table, JSON or CSV."""

from __future__ import annotations

import calendar
import csv
import io
import json
import time
from typing import Any

from .ledger import DIMENSIONS, TOTALS, open_ledger


class ReportError(ValueError):
    """A report that cannot be made as asked (the message says why)."""


def parse_since(text: str, now: float) -> float:
    """`24h`, `7d`, `30m` (ago) or a date `2026-12-01` (UTC) → unix time."""
    units = {"m": 60, "h": 3600, "d": 86400}
    if text[:-1].isdigit() and text[-1:] in units:
        return now - int(text[:-1]) * units[text[-1]]
    try:
        return calendar.timegm(time.strptime(text, "%Y-%m-%d"))
    except ValueError:
        raise ReportError(f"--since {text!r}: use 24h, 7d, 30m or YYYY-MM-DD") from None


def usage(config: Any, *, since: str, by: str, fmt: str) -> str:
    from ..provider_pools import state_url_for

    dims = tuple(d for d in by.split(",") if d)
    unknown = [d for d in dims if d not in DIMENSIONS]
    if unknown:
        raise ReportError(f"--by {','.join(unknown)}: choose from {', '.join(DIMENSIONS)}")
    start = parse_since(since, time.time())
    store = open_ledger(state_url_for(config))
    if store is None:
        raise ReportError("state: memory keeps no usage ledger")
    try:
        rows = store.totals(start, dims)
    finally:
        store.close()
    return render(rows, [*dims, *TOTALS], fmt, len(dims))


def render(rows: list[dict[str, Any]], columns: list[str], fmt: str, left_aligned: int) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=1)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue().rstrip("\n")
    shown = [[f"{r[c]:.6f}" if c == "cost" else str(r[c]) for c in columns] for r in rows]
    widths = [max(len(c), *(len(line[i]) for line in shown)) for i, c in enumerate(columns)]
    lines = []
    for line in [columns, *shown]:
        cells = [v.ljust(w) if i < left_aligned else v.rjust(w) for i, (v, w) in enumerate(zip(line, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
