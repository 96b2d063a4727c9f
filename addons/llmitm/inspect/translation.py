"""The "llmitm: translation" view: one flow's app side and upstream side together.

llmitm stores a forwarded flow's four bodies on the flow (`flow.metadata["llmitm_bodies"]`, see
sideflows.publish_bodies): what the app sent, what went upstream, what the upstream answered, what the
app received. On the request tab this view compares the two requests field by field (compare.py) and
shows both transcripts side by side; on the response tab, the upstream's answer and the app's.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

from mitmproxy import http

from . import adapter, compare
from .transcript import Transcript, render_request, render_response

VIEW_NAME = "llmitm: translation"
BODIES_KEY = "llmitm_bodies"  # sideflows.BODIES_KEY (not imported: sideflows needs a running master)
PRIORITY = 0.5  # listed in the View menu on every flow that has the bodies; never chosen over "llmitm"
COLUMN = 66  # characters per side: two columns fit mitmweb's detail pane in a 2300 px window
PROSE = COLUMN - 12  # model and user text wrapped inside a column (its indentation beside it)


def bodies_of(flow: Any) -> dict | None:
    record = flow.metadata.get(BODIES_KEY) if isinstance(flow, http.HTTPFlow) else None
    return record if isinstance(record, dict) and record.get("app_request") is not None else None


def render_priority(data: bytes, flow, http_message) -> float:
    return PRIORITY if bodies_of(flow) is not None and http_message is not None else -1


def render_flow(data: bytes, flow: http.HTTPFlow, message: http.Message) -> Transcript:
    """Raises ValueError for a flow llmitm kept no bodies of (not forwarded by llmitm, or no view ran)."""
    record = bodies_of(flow)
    if record is None:
        raise ValueError("llmitm kept no bodies for this flow (only flows it forwarded while mitmweb ran)")
    info = flow.metadata.get("llmitm") if isinstance(flow.metadata.get("llmitm"), dict) else {}
    warnings = [str(w) for w in info.get("warnings") or []]
    if isinstance(message, http.Request):
        return render_requests(record, warnings)
    return render_responses(record)


def _title(record: dict, what: str) -> str:
    app = adapter.PROTOCOL_TITLES.get(record["client_protocol"], record["client_protocol"] or "unknown protocol")
    up = adapter.PROTOCOL_TITLES.get(record["upstream_protocol"], record["upstream_protocol"])
    how = "translated" if record.get("translated") else "same protocol, passed on"
    return f"{what}: app speaks {app}, upstream {up} ({how})"


def render_requests(record: dict, warnings: list[str]) -> Transcript:
    out = Transcript()
    out.line(_title(record, "requests"), "header")
    app = _parse_request(record["client_protocol"], record.get("app_request"), record["client_path"])
    upstream = _parse_request(record["upstream_protocol"], record.get("upstream_request"), record["upstream_path"])
    if app.request is not None and upstream.request is not None:
        out.heading("request fields, app → upstream (compared through the canonical model)")
        rows = compare.compare_requests(app, upstream, warnings, _json(record.get("app_request")),
                                        _json(record.get("upstream_request")))
        compare.render_rows(rows, out, "app", "upstream")
        fates = compare.signature_fates(app.request, upstream.request, record["upstream_protocol"], warnings)
        if fates:
            out.heading("reasoning signatures in the app's history")
            for fate in fates:
                out.line(fate, "error" if " removed: " in fate else "text", 1)
    else:
        out.line("the requests cannot be compared: " + (app.error or upstream.error or "unreadable"), "error")
    _warnings(warnings, out)
    _truncated(record, out)
    left, right = Transcript(PROSE), Transcript(PROSE)
    render_request(app, left, "what the app sent")
    render_request(upstream, right, "what went upstream")
    side_by_side(left, right, out)
    return out


def render_responses(record: dict) -> Transcript:
    out = Transcript()
    out.line(_title(record, "responses"), "header")
    upstream = adapter.parse_response(record["upstream_protocol"], record.get("upstream_status") or None,
                                      record.get("upstream_response") or b"", _content_type(record, "upstream"))
    app = adapter.parse_response(record["client_protocol"], record.get("app_status") or None,
                                 record.get("app_response") or b"", _content_type(record, "app"))
    out.heading("response fields, upstream → app (compared through the canonical model)")
    if record.get("upstream_response") is None:
        out.line("the upstream's raw answer was not kept", "error", 1)
    compare.render_rows(compare.compare_responses(upstream, app, record["client_protocol"]), out, "upstream", "app")
    _truncated(record, out)
    left, right = Transcript(PROSE), Transcript(PROSE)
    render_response(upstream, left, side=f"what the upstream answered, {record.get('upstream_status')}")
    render_response(app, right, side=f"what the app received, {record.get('app_status')}")
    side_by_side(left, right, out)
    return out


def _parse_request(protocol: str, body: bytes | None, path: str) -> adapter.ParsedRequest:
    if not protocol or body is None:
        return adapter.ParsedRequest(protocol or "unknown", error="no body kept")
    return adapter.parse_request(protocol, body, path)


def _json(body: bytes | None) -> dict | None:
    try:
        payload = json.loads(body or b"")
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _content_type(record: dict, side: str) -> str | None:
    return (record.get(f"{side}_content_type") or "").split(";")[0].strip().lower() or None


def _warnings(warnings: list[str], out: Transcript) -> None:
    if not warnings:
        return
    out.heading(f"translation warnings ({len(warnings)})")
    for warning in warnings:
        about = compare.warning_field(warning)
        out.lines.append([("key", f"    {about or '(whole request)'}: "), ("text", warning)])


def _truncated(record: dict, out: Transcript) -> None:
    for name in record.get("truncated") or []:
        out.line(f"{name.replace('_', ' ')}: cut at the size llmitm keeps; its end is not shown", "error")


def side_by_side(left: Transcript, right: Transcript, out: Transcript) -> None:
    """Two transcripts in two columns, each line wrapped to the column."""
    out.heading("side by side")
    a, b = _column(left), _column(right)
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else ("text", "")
        y = b[i] if i < len(b) else ("text", "")
        out.lines.append([(x[0], x[1].ljust(COLUMN)), ("text", " │ "), y])


def _column(t: Transcript) -> list[tuple[str, str]]:
    rows = []
    for line in t.lines:
        text = "".join(s for _, s in line)
        style = line[0][0] if len(line) == 1 else "text"
        for piece in textwrap.wrap(text, COLUMN, subsequent_indent="  ", drop_whitespace=False,
                                   replace_whitespace=False) or [""]:
            rows.append((style, piece))
    return rows
