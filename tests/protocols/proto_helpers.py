"""Shared helpers for the protocol-translation tests: fixture discovery, replaying recordings as
upstream bytes, and official SDK clients whose HTTP layer is an in-process mock."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import anthropic
import anthropic._base_client
import openai
import openai._base_client


def http_module(sdk: str):
    """The newest openai/anthropic SDKs run on the httpx2 fork and reject httpx clients (and vice
    versa): the module the installed SDK itself imports."""
    base = openai._base_client if sdk == "openai" else anthropic._base_client
    return getattr(base, "httpx2", None) or base.httpx


SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
FIXTURES = SHARED / "fixtures"

A_DIR, C_DIR = "anthropic-messages", "openai-chat"


def manifest() -> list[dict]:
    with open(FIXTURES / "MANIFEST.tsv", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def fixtures(protocol_dir: str, *, stream: bool) -> list[str]:
    """Relative paths of every replayable response body of a protocol (exchange logs excluded)."""
    out = []
    for row in manifest():
        if row["protocol"] != protocol_dir:
            continue
        if stream and row["format"] in ("raw-sse", "chunks-jsonl") or not stream and row["format"] == "json":
            out.append(row["path"])
    return sorted(out)


def is_error_body(rel: str) -> bool:
    body = json.loads((FIXTURES / rel).read_bytes())
    return "error" in body and not body.get("choices") and not body.get("content")


def wire_bytes(rel: str) -> bytes:
    """The recording as the upstream would have sent it (chunks-jsonl gets SSE framing back)."""
    raw = (FIXTURES / rel).read_bytes()
    if not rel.endswith(".chunks.jsonl"):
        return raw
    out = []
    for line in raw.decode().splitlines():
        if not line.strip():
            continue
        if rel.startswith(A_DIR):
            out.append(f"event: {json.loads(line)['type']}\ndata: {line}\n\n")
        else:
            out.append(f"data: {line}\n\n")
    if rel.startswith(C_DIR):
        out.append("data: [DONE]\n\n")
    return "".join(out).encode()


def split(data: bytes, sizes: tuple[int, ...] = (1, 7, 64, 3, 200)) -> list[bytes]:
    """Deterministic uneven chunking, down to single bytes."""
    pieces, pos, k = [], 0, 0
    while pos < len(data):
        n = sizes[k % len(sizes)]
        pieces.append(data[pos:pos + n])
        pos += n
        k += 1
    return pieces


def _responder(httpx, body: bytes, status: int, content_type: str, seen: list):
    def handler(request):
        seen.append(json.loads(request.content) if request.content else None)
        return httpx.Response(status, headers={"content-type": content_type}, content=body)
    return handler


def openai_client(body: bytes, *, status: int = 200, stream: bool = False, seen: list | None = None):
    httpx = http_module("openai")
    handler = _responder(httpx, body, status, "text/event-stream" if stream else "application/json",
                         seen if seen is not None else [])
    return openai.OpenAI(api_key="sk-test", base_url="http://upstream.test/v1", max_retries=0,
                         http_client=httpx.Client(transport=httpx.MockTransport(handler)))


def anthropic_client(body: bytes, *, status: int = 200, stream: bool = False, seen: list | None = None):
    httpx = http_module("anthropic")
    handler = _responder(httpx, body, status, "text/event-stream" if stream else "application/json",
                         seen if seen is not None else [])
    return anthropic.Anthropic(api_key="sk-ant-test", base_url="http://upstream.test", max_retries=0,
                               http_client=httpx.Client(transport=httpx.MockTransport(handler)))


def merged_anthropic_usage(wire: bytes) -> dict:
    """Anthropic stream usage as the protocol defines it: message_start's, overridden by the
    cumulative fields of message_delta (computed here without the code under test)."""
    usage: dict = {}
    for line in wire.decode().splitlines():
        if not line.startswith("data:"):
            continue
        payload = json.loads(line[5:])
        if payload.get("type") == "message_start":
            usage.update(payload["message"].get("usage") or {})
        elif payload.get("type") == "message_delta":
            usage.update({k: v for k, v in (payload.get("usage") or {}).items() if v is not None})
    return usage


def openai_chunks(wire: bytes) -> list[dict]:
    return [json.loads(line[5:]) for line in wire.decode().splitlines()
            if line.startswith("data:") and line[5:].strip() != "[DONE]"]
