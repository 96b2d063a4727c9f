"""`llmitm.stats`: counts, tokens, errors and latency per route, provider and key.

Fed one finished flow at a time from what llmitm publishes on it (`flow.metadata["llmitm"]`, see
flowinfo.py): the route, the provider, the pooled key's id and masked form, the usage. Memory is
bounded: totals are counters, latency percentiles come from the most recent samples of each group.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

LATENCY_SAMPLES = 1000  # per group


@dataclass
class Totals:
    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    latencies: deque = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))

    def add(self, usage: dict | None, failed: bool, latency: float | None) -> None:
        self.requests += 1
        self.errors += failed
        if usage:
            self.input_tokens += int(usage.get("input") or 0)
            self.cached_tokens += int(usage.get("cached") or 0)
            self.output_tokens += int(usage.get("output") or 0)
        if latency is not None:
            self.latencies.append(latency)

    def row(self, label: str) -> str:
        return (f"{label:<44} {self.requests:>6} {self.errors:>6} {self.input_tokens:>10} {self.cached_tokens:>10} "
                f"{self.output_tokens:>10} {_ms(percentile(self.latencies, 50)):>8} {_ms(percentile(self.latencies, 95)):>8} "
                f"{_ms(max(self.latencies, default=None)):>8}")


HEADER = (f"{'':<44} {'REQS':>6} {'ERRORS':>6} {'TOKENS IN':>10} {'CACHED':>10} {'OUT':>10} {'P50':>8} {'P95':>8} "
          f"{'MAX':>8}")


def percentile(samples, q: float) -> float | None:
    """Nearest-rank percentile; None without samples."""
    ordered = sorted(samples)
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * q // 100))  # ceil
    return ordered[int(rank) - 1]


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}ms"


class FlowStats:
    def __init__(self) -> None:
        self.groups: dict[str, dict[str, Totals]] = {"route": {}, "provider": {}, "key": {}}

    def add(self, record: dict, status: int | None, error: str | None, latency: float | None) -> None:
        """One finished AI flow. `record` is llmitm's published FlowRecord; never holds a secret
        (keys appear only as id and masked form)."""
        failed = bool(error or record.get("error") or status is None or status >= 400)
        usage = record.get("usage") if isinstance(record.get("usage"), dict) else None
        provider = record.get("provider")
        if provider is None:
            labels = {"route": "(no route: passed through)", "provider": "(none)"}
        else:
            labels = {"route": f"#{record.get('route')} → {provider} ({record.get('upstream_protocol')})", "provider": provider}
        if record.get("credential") == "pooled" and record.get("key_id"):
            labels["key"] = f"{record['key_id']} {record.get('key_masked') or ''}".strip()
        elif provider is not None:
            labels["key"] = f"{provider}: app's own credential"
        for group, label in labels.items():
            totals = self.groups[group].get(label)
            if totals is None:
                totals = self.groups[group][label] = Totals()
            totals.add(usage, failed, latency)

    def lines(self) -> list[str]:
        if not any(self.groups.values()):
            return ["llmitm.stats: no AI flows seen yet"]
        out: list[str] = []
        for group in ("route", "provider", "key"):
            out.append(f"BY {group.upper()}".ljust(44) + HEADER[44:])
            for label, totals in sorted(self.groups[group].items()):
                out.append(totals.row(label))
            out.append("")
        return out[:-1]
