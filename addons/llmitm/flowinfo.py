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

    def summary(self) -> str:
        if self.provider is None:
            return "llmitm: no route matched: passed through untouched"
        where = f"route #{self.route} → {self.provider} ({self.upstream_protocol})"
        model = f", model {self.model} → {self.upstream_model}" if self.upstream_model != self.model else ""
        if self.credential == "pooled":
            cred = f", key {self.key_id} {self.key_masked}"
        else:
            cred = ", app's own credential"
        how = f", translated from {self.client_protocol}" if self.translated else ""
        who = f", client {self.client}" if self.client else ""
        parts = [f"llmitm: {where}{model}{cred}{how}{who}"]
        if self.usage:
            parts.append("usage: {input} in ({cached} cached), {output} out".format(**self.usage))
        if len(self.attempts) > 1:
            parts.append("attempts: " + "; ".join(self.attempts))
        parts += [f"warning: {w}" for w in self.warnings]
        if self.error:
            parts.append(f"error: {self.error}")
        return "\n".join(parts)


def publish(flow: http.HTTPFlow, record: FlowRecord) -> None:
    # A plain copy: dataclasses.asdict deep-copies recursively, measurable at hundreds of flows a second.
    flow.metadata["llmitm"] = {**vars(record), "attempts": list(record.attempts), "warnings": list(record.warnings),
                               "usage": dict(record.usage) if record.usage else None}
    flow.comment = record.summary()
    if record.warnings:
        flow.marked = ":warning:"
