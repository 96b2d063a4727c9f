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

from llmitm.protocols import Translation


def http_module(sdk: str):
    """The newest openai/anthropic SDKs run on the httpx2 fork and reject httpx clients (and vice
    versa): the module the installed SDK itself imports ("responses" is the openai SDK's)."""
    base = anthropic._base_client if sdk == "anthropic" else openai._base_client
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


# The Anthropic and OpenAI Chat recordings every spoke's SDK tests replay: streams, successful bodies,
# error bodies.
A_STREAMS = fixtures(A_DIR, stream=True)
C_STREAMS = fixtures(C_DIR, stream=True)
A_BODIES = [p for p in fixtures(A_DIR, stream=False) if not is_error_body(p)]
C_BODIES = [p for p in fixtures(C_DIR, stream=False) if not is_error_body(p)]
A_ERRORS = [p for p in fixtures(A_DIR, stream=False) if is_error_body(p)]


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


def json_names(value, *, strings: bool = False, into: set[str] | None = None) -> set[str]:
    """Every key in a JSON document; with `strings`, every string value shorter than 30 characters too
    (the vocabulary the fuzz tests build their junk from)."""
    into = set() if into is None else into
    if isinstance(value, dict):
        for key, inner in value.items():
            into.add(key)
            json_names(inner, strings=strings, into=into)
    elif isinstance(value, list):
        for inner in value:
            json_names(inner, strings=strings, into=into)
    elif strings and isinstance(value, str) and len(value) < 30:
        into.add(value)
    return into


def json_paths(value, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON document a value sits (dict keys and list indexes), the whole document `()`
    first."""
    out = [prefix]
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, inner in items:
        out.extend(json_paths(inner, prefix + (key,)))
    return out


def split(data: bytes, sizes: tuple[int, ...] = (1, 7, 64, 3, 200)) -> list[bytes]:
    """Deterministic uneven chunking, down to single bytes."""
    pieces, pos, k = [], 0, 0
    while pos < len(data):
        n = sizes[k % len(sizes)]
        pieces.append(data[pos:pos + n])
        pos += n
        k += 1
    return pieces


def translate_stream(t: Translation, pieces) -> list[bytes]:
    """What `t`'s stream translator writes for the upstream bytes fed in these pieces, then finished."""
    translator = t.stream()
    out: list[bytes] = []
    for piece in pieces:
        out.extend(translator.feed(piece))
    out.extend(translator.finish())
    return out


def sdk_client(sdk: str, handler, *, host: str = "llmitm.test"):
    """An official SDK client whose HTTP layer is `handler`, in process: "anthropic", or "openai" /
    "responses" (both the openai SDK)."""
    httpx = http_module(sdk)
    http = httpx.Client(transport=httpx.MockTransport(handler))
    if sdk == "anthropic":
        return anthropic.Anthropic(api_key="sk-ant-test", base_url=f"http://{host}", max_retries=0, http_client=http)
    return openai.OpenAI(api_key="sk-test", base_url=f"http://{host}/v1", max_retries=0, http_client=http)


def upstream_client(sdk: str, body: bytes, *, status: int = 200, stream: bool = False, seen: list | None = None):
    """An SDK client answered with `body` untouched, as the upstream sent it (requests land in `seen`)."""
    httpx = http_module(sdk)
    seen = seen if seen is not None else []

    def handler(request):
        seen.append(json.loads(request.content) if request.content else None)
        return httpx.Response(status, headers={"content-type": "text/event-stream" if stream else "application/json"},
                              content=body)
    return sdk_client(sdk, handler, host="upstream.test")


def openai_client(body: bytes, **answer):
    return upstream_client("openai", body, **answer)


def anthropic_client(body: bytes, **answer):
    return upstream_client("anthropic", body, **answer)


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
