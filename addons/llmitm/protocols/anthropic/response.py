"""Anthropic non-stream responses, stop reasons and usage (PROTOCOLS.md §1.3, §2.5, §2.8)."""

from __future__ import annotations

import json

from ..canonical import (
    CONTENT_FILTER,
    CONTEXT_WINDOW,
    END,
    MAX_TOKENS,
    PAUSE,
    STOP_SEQUENCE,
    TOOL_USE,
    Context,
    Reasoning,
    Refusal,
    Response,
    Text,
    ToolCall,
    Usage,
)
from ..policy import as_dict

STOP_OUT = {
    END: "end_turn", MAX_TOKENS: "max_tokens", STOP_SEQUENCE: "stop_sequence", TOOL_USE: "tool_use",
    CONTENT_FILTER: "refusal", PAUSE: "pause_turn", CONTEXT_WINDOW: "model_context_window_exceeded",
}
STOP_IN = {v: k for k, v in STOP_OUT.items()}


def parse_usage(u: dict) -> Usage:
    read = u.get("cache_read_input_tokens") or 0
    write = u.get("cache_creation_input_tokens") or 0
    return Usage(
        input_total=(u.get("input_tokens") or 0) + read + write,
        cached_read=read,
        cache_write=write,
        output_total=u.get("output_tokens") or 0,
    )


def render_usage(u: Usage | None) -> dict:
    u = u or Usage()
    return {
        # Anthropic's input_tokens excludes cache reads and writes (PROTOCOLS.md §2.8).
        "input_tokens": max(0, u.input_total - u.cached_read - u.cache_write),
        "cache_creation_input_tokens": u.cache_write,
        "cache_read_input_tokens": u.cached_read,
        "output_tokens": u.output_total,
    }



def parse_response(body: dict, ctx: Context) -> Response:
    if not isinstance(body.get("content"), list):
        raise TypeError("no content array")
    parts: list = []
    for block in body["content"]:
        block = as_dict(block)
        kind = block.get("type")
        if kind == "text":
            parts.append(Text(block.get("text") or ""))
        elif kind == "thinking":
            parts.append(Reasoning(block.get("thinking") or "", block.get("signature") or None))
        elif kind == "redacted_thinking":
            parts.append(Reasoning("", None, block.get("data") or ""))
        elif kind == "tool_use":
            parts.append(ToolCall(str(block.get("id") or ""), str(block.get("name") or ""),
                                  json.dumps(block.get("input") if block.get("input") is not None else {})))
        else:
            ctx.warn(f"response block type {kind!r} dropped (no equivalent for the client)")
    reason = body.get("stop_reason")
    stop = STOP_IN.get(str(reason))
    if stop is None and reason is not None:
        ctx.warn(f"unknown stop_reason {reason!r} reported as end of turn")
        stop = END
    usage = body.get("usage")
    return Response(
        id=str(body.get("id") or ""), model=str(body.get("model") or ""), parts=parts, stop_reason=stop,
        stop_sequence=body.get("stop_sequence"), usage=parse_usage(usage) if isinstance(usage, dict) else None,
    )


def render_response(resp: Response, ctx: Context) -> dict:
    content: list[dict] = []
    for p in resp.parts:
        if isinstance(p, (Text, Refusal)):
            if p.text:  # an empty text block next to tool calls confuses clients (PROTOCOLS.md §3)
                content.append({"type": "text", "text": p.text})
        elif isinstance(p, Reasoning):
            if p.redacted is not None:
                content.append({"type": "redacted_thinking", "data": p.redacted})
            else:  # foreign reasoning is shown unsigned (PROTOCOLS.md §2.7)
                content.append({"type": "thinking", "thinking": p.text, "signature": p.signature or ""})
        elif isinstance(p, ToolCall):
            try:
                value = json.loads(p.arguments) if p.arguments.strip() else {}
            except ValueError:
                if resp.stop_reason == MAX_TOKENS:
                    ctx.warn("tool call cut off by the output limit dropped from the response")
                    continue
                ctx.warn("tool call with invalid JSON arguments returned with input {}")
                value = {}
            content.append({"type": "tool_use", "id": p.id, "name": p.name,
                            "input": value if isinstance(value, dict) else {"value": value}})
    return {
        "id": resp.id, "type": "message", "role": "assistant", "model": resp.model, "content": content,
        "stop_reason": STOP_OUT.get(resp.stop_reason or END, "end_turn"),
        "stop_sequence": resp.stop_sequence if resp.stop_reason == STOP_SEQUENCE else None,
        "usage": render_usage(resp.usage),
    }
