"""Recorded provider traffic from ../shared/fixtures, as wire bytes ready to replay."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = (REPO / ".." / "shared").resolve()
FIXTURES = SHARED / "fixtures"


def path(rel: str) -> Path:
    p = FIXTURES / rel
    if not p.exists():
        raise FileNotFoundError(f"fixture {rel} not found under {FIXTURES} (CI lays shared/ beside the repo)")
    return p


def sse_events(rel: str) -> list[bytes]:
    """A recorded stream split into its events, each with its blank-line terminator.

    `.sse` files are raw bodies; `.chunks.jsonl` files hold one data payload per line and are framed
    here as the provider would (event: lines for Anthropic and Responses, [DONE] for OpenAI Chat).
    """
    p = path(rel)
    if p.name.endswith(".chunks.jsonl"):
        events = []
        for line in p.read_text().splitlines():
            if not line.strip():
                continue
            payload = json.loads(line)
            typed = rel.startswith(("anthropic-messages/", "openai-responses/")) and "type" in payload
            head = f"event: {payload['type']}\n" if typed else ""
            events.append(f"{head}data: {line}\n\n".encode())
        if rel.startswith("openai-chat/"):
            events.append(b"data: [DONE]\n\n")
        return events
    raw = p.read_bytes().replace(b"\r\n", b"\n")
    return [e + b"\n\n" for e in raw.split(b"\n\n") if e.strip()]


def body(rel: str) -> bytes:
    return path(rel).read_bytes()
