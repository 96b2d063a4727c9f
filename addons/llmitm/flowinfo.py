"""What llmitm records on a flow so mitmweb and saved flows show how it was served.

`flow.metadata["llmitm"]` holds the structured record (saved with `-w`, tnetstring-safe values only);
`flow.comment` is the one-line summary mitmweb shows; warnings (fields dropped or approximated in
translation) go to both. Keys appear only masked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # this module stays importable without mitmproxy (plan.py uses FlowRecord)
    from mitmproxy import http


@dataclass
class FlowRecord:
    client: str | None = None  # the configured client (clients.py) that sent the request; None: anonymous
    client_protocol: str | None = None
    route: int | None = None
    provider: str | None = None
    upstream_protocol: str | None = None
    model: str | None = None
    upstream_model: str | None = None
    credential: str = "client"  # "pooled" or "client" (the app's own key went upstream)
    key_id: str | None = None
    key_masked: str | None = None
    translated: bool = False
    attempts: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    usage: dict[str, int] | None = None
    error: str | None = None

    def summary(self, timing: str = "") -> str:
        """The flow list's comment: the story at a glance, one fact per line, no secret (keys masked).
        `timing`: what the flow's timestamps say (time to first byte, total), when it has finished."""
        if self.provider is None:
            passed = "llmitm: no route matched: passed through untouched"
            return passed + (f"\nerror: {self.error}" if self.error else "")
        model = self.upstream_model or self.model or "(model not named)"
        renamed = f" (app asked for {self.model})" if self.model and self.upstream_model not in (None, self.model) else ""
        how = f", translated from {self.client_protocol}" if self.translated else ""
        who = f", client {self.client}" if self.client else ""
        parts = [f"llmitm: route #{self.route} → {self.provider}/{model}{renamed} ({self.upstream_protocol}){how}{who}"]
        if self.credential == "pooled":
            parts.append(f"key {self.key_id} {self.key_masked}" if self.key_id else "no pooled key served")
        else:
            parts.append("app's own credential")
        if len(self.attempts) > 1:
            parts.append(f"{len(self.attempts)} attempts: " + " → ".join(self.attempts))
        if timing:
            parts.append(timing)
        if self.usage:
            parts.append("tokens: {input} in ({cached} cached), {output} out".format(**self.usage))
        parts += [f"warning: {w}" for w in self.warnings]
        if self.error:
            parts.append(f"error: {self.error}")
        return "\n".join(parts)


# Flow-list markers, one per flow, the most urgent first (llmitm's own bug, guard.BUG_MARK, outranks them all).
ERROR_MARK = ":x:"  # the app got an error, or the flow failed
RETRY_MARK = ":repeat:"  # served after another key or provider failed
WARNING_MARK = ":warning:"  # translated with fields dropped or approximated
LLMITM_MARKS = (ERROR_MARK, RETRY_MARK, WARNING_MARK)


def mark_for(record: FlowRecord, status: int | None) -> str:
    """The marker the flow list shows for this flow, or "" for a flow that went as it should."""
    if record.error or (status is not None and status >= 400):
        return ERROR_MARK
    if len(record.attempts) > 1:
        return RETRY_MARK
    return WARNING_MARK if record.warnings else ""


def timing_of(flow: http.HTTPFlow) -> str:
    """Time to first byte (the response headers: mitmproxy records no per-chunk times, so for a stream
    this is the nearest known point to the first token) and total, once the response is complete."""
    req, resp = flow.request, flow.response
    if resp is None or not resp.timestamp_end or not req.timestamp_start or not resp.timestamp_start:
        return ""
    sent = req.timestamp_end or req.timestamp_start
    if resp.timestamp_end < req.timestamp_start:  # a flow assembled by hand (tests, a loaded file)
        return ""
    return (f"TTFT {max(0.0, resp.timestamp_start - sent) * 1000:,.0f} ms (first byte), "
            f"total {(resp.timestamp_end - req.timestamp_start) * 1000:,.0f} ms")


def publish(flow: http.HTTPFlow, record: FlowRecord) -> None:
    # A plain copy: dataclasses.asdict deep-copies recursively, measurable at hundreds of flows a second.
    flow.metadata["llmitm"] = {**vars(record), "attempts": list(record.attempts), "warnings": list(record.warnings),
                               "usage": dict(record.usage) if record.usage else None}
    flow.comment = record.summary(timing_of(flow))
    status = flow.response.status_code if flow.response is not None else None
    mark = mark_for(record, status)
    if mark and (not flow.marked or flow.marked in LLMITM_MARKS):  # never hide someone else's mark
        flow.marked = mark
