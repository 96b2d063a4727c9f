"""`llmitm.export`: captured flows → fixture folders a regression test replays (`llmitm replay`).

One folder per flow, named after the flow's id:

    exchange.json          the route (protocols, host, paths, models), statuses, content types, and
                           the file holding each body
    app_request.json       what the app sent, byte for byte (content-encoding undone)
    upstream_response.*    the upstream's answer as it came, stream framing included (`.sse` for a stream)
    app_response.*         what the app received
    upstream_request.json  what llmitm sent upstream (for reading; a replay does not need it)

Read from what llmitm keeps on the flow (`flow.metadata["llmitm_bodies"]`, sideflows.py), never from
its headers: no credential, pooled key or configured header can reach a fixture. Query strings are
dropped (a Gemini app may put its key there); only each body's content type is kept of the headers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .translation import bodies_of

FIXTURE_FORMAT = 1
EXCHANGE_FILE = "exchange.json"
BODY_NAMES = ("app_request", "upstream_request", "upstream_response", "app_response")
ROUTE_FIELDS = ("route", "provider", "model", "upstream_model", "client_protocol", "upstream_protocol", "translated")
SECRET_LOOKING = re.compile(r"(sk-[A-Za-z0-9_-]{8,}|AIza[0-9A-Za-z_-]{20,})")


class NotExportable(ValueError):
    """A flow llmitm kept no bodies for: not forwarded by llmitm, or captured without a view."""


def _suffix(name: str, content_type: str) -> str:
    if name.endswith("request"):
        return ".json"
    return ".sse" if content_type.startswith("text/event-stream") else ".json"


def fixture_of(flow: Any) -> tuple[dict, dict[str, bytes]]:
    """(exchange.json's content, file name → bytes) for one flow."""
    record = bodies_of(flow)
    if record is None:
        raise NotExportable(f"flow {flow.id[:8]}: llmitm kept no bodies for it (only flows llmitm forwarded while "
                            "mitmweb or the console ran)")
    info = flow.metadata.get("llmitm") if isinstance(flow.metadata.get("llmitm"), dict) else {}
    content_types = {"app_request": "application/json", "upstream_request": "application/json",
                     "upstream_response": record.get("upstream_content_type") or "",
                     "app_response": record.get("app_content_type") or ""}
    files: dict[str, bytes] = {}
    bodies: dict[str, dict] = {}
    for name in BODY_NAMES:
        body = record.get(name)
        if body is None:
            continue
        filename = name + _suffix(name, content_types[name])
        files[filename] = bytes(body)
        bodies[name] = {"file": filename, "content_type": content_types[name]}
    for name, status in (("upstream_response", "upstream_status"), ("app_response", "app_status")):
        if name in bodies:
            bodies[name]["status"] = int(record.get(status) or 0)
    exchange = {
        "format": FIXTURE_FORMAT,
        "flow": flow.id,
        "route": {k: info.get(k) for k in ROUTE_FIELDS} | {"app_host": record.get("app_host")},
        "app_path": record.get("client_path"),
        "upstream_path": record.get("upstream_path"),
        "bodies": bodies,
        "truncated": list(record.get("truncated") or []),
    }
    return exchange, files


def export_flows(flows: list[Any], folder: Path) -> list[str]:
    """Write one fixture folder per flow under `folder`; lines saying what was written or skipped."""
    lines = []
    for flow in flows:
        try:
            exchange, files = fixture_of(flow)
        except NotExportable as e:
            lines.append(f"skipped: {e}")
            continue
        if exchange["truncated"]:
            lines.append(f"skipped: flow {flow.id[:8]}: {', '.join(exchange['truncated'])} cut at the size llmitm keeps")
            continue
        target = folder / flow.id[:8]
        target.mkdir(parents=True, exist_ok=True)
        for filename, body in files.items():
            (target / filename).write_bytes(body)
        (target / EXCHANGE_FILE).write_text(json.dumps(exchange, indent=2, ensure_ascii=False) + "\n")
        suspicious = [f for f, b in files.items() if SECRET_LOOKING.search(b.decode("utf-8", "replace"))]
        warning = f" (check before committing: {', '.join(suspicious)} hold a string shaped like a key)" if suspicious else ""
        lines.append(f"wrote {target}{warning}")
    return lines or ["llmitm.export: no flows selected"]
