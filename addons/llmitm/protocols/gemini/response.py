"""Non-stream responses both ways."""

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
)
from ..policy import as_dict, new_id
from .fields import camel_keys, get_field
from .parts import merge_adjacent
from .signatures import encode_foreign_signature, make_tool_id
from .usage_errors import parse_usage, render_usage

FILTERED_FINISH_REASONS = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "LANGUAGE", "IMAGE_SAFETY",
             "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "IMAGE_OTHER", "MODEL_ARMOR"}
FINISH_OUT = {
    END: "STOP", STOP_SEQUENCE: "STOP", TOOL_USE: "STOP", PAUSE: "STOP", MAX_TOKENS: "MAX_TOKENS",
    CONTEXT_WINDOW: "MAX_TOKENS", CONTENT_FILTER: "SAFETY",
}


def stop_reason_from_finish(reason, ctx: Context) -> str | None:
    if reason is None:
        return None
    reason = str(reason)
    if reason == "STOP":
        return END
    if reason == "MAX_TOKENS":
        return MAX_TOKENS
    if reason in FILTERED_FINISH_REASONS:
        return CONTENT_FILTER
    ctx.warn(f"finishReason {reason!r} reported as end of turn")
    return END


def first_candidate(body: dict, ctx: Context) -> dict:
    candidates = body.get("candidates")
    if not isinstance(candidates, list) or not candidates:
        return {}
    if len(candidates) > 1:
        ctx.warn("only the first of several candidates was translated")
    return as_dict(candidates[0])


def warn_dropped_part(part: dict, ctx: Context) -> None:
    if get_field(part, "executableCode") is not None or get_field(part, "codeExecutionResult") is not None:
        ctx.warn("code execution parts dropped (no equivalent for the client)")
    elif get_field(part, "inlineData") is not None or get_field(part, "fileData") is not None:
        ctx.warn("media output dropped (no equivalent for the client)")
    elif part:
        ctx.warn(f"response part with fields {sorted(camel_keys(part))} dropped")


def parse_response(body: dict, ctx: Context) -> Response:
    if not isinstance(body.get("candidates"), list) and not isinstance(get_field(body, "promptFeedback"), dict):
        raise TypeError("no candidates")
    rid = str(get_field(body, "responseId") or "") or new_id("gemini-")
    candidate = first_candidate(body, ctx)
    parts: list = []
    n = 0
    warned = False
    for part in as_dict(candidate.get("content")).get("parts") or []:
        part = as_dict(part)
        fc = get_field(part, "functionCall")
        signature = get_field(part, "thoughtSignature")
        if isinstance(fc, dict):
            cid = make_tool_id(fc.get("id") or None, rid, n, signature)
            n += 1
            args = fc.get("args")
            parts.append(ToolCall(cid, str(fc.get("name") or ""), json.dumps(args if args is not None else {})))
            continue
        if isinstance(part.get("text"), str):
            if part.get("thought") is True:
                parts.append(Reasoning(part["text"]))
            elif part["text"]:
                parts.append(Text(part["text"]))
            if signature and not warned:
                warned = True
                ctx.warn("thoughtSignature on a text part dropped (only function-call signatures are carried)")
            continue
        warn_dropped_part(part, ctx)
    if get_field(candidate, "groundingMetadata") or get_field(candidate, "citationMetadata"):
        ctx.warn("grounding/citation metadata dropped (no equivalent for the client)")
    stop = stop_reason_from_finish(get_field(candidate, "finishReason"), ctx)
    if not candidate and get_field(as_dict(get_field(body, "promptFeedback")), "blockReason"):
        stop = CONTENT_FILTER  # the prompt itself was blocked: no candidates at all
    usage = get_field(body, "usageMetadata")
    return Response(id=rid, model=str(get_field(body, "modelVersion") or ""), parts=merge_adjacent(parts),
                    stop_reason=stop or END, usage=parse_usage(usage) if isinstance(usage, dict) else None)


def reasoning_part(text: str, signature: str | None = None, redacted: str | None = None) -> dict:
    part: dict = {"text": text, "thought": True}
    if redacted is not None:
        part["thoughtSignature"] = encode_foreign_signature({"r": redacted})
    elif signature:
        part["thoughtSignature"] = encode_foreign_signature({"s": signature})
    return part


def function_call_part(call_id: str, name: str, args: dict) -> dict:
    return {"functionCall": {"id": call_id, "name": name, "args": args}}


def reasoning_on_call(blocks: list[Reasoning]) -> str:
    """The thoughtSignature of a functionCall part that carries the signed reasoning before the call.
    Gemini clients keep a signature on the part it came with, and many (Gemini CLI) never send thought
    parts back (PROTOCOLS.md §6): on its own thought part, Anthropic's signature would be lost after the
    first tool call, and with it thinking in the tool loop. contents.py restores the blocks."""
    return encode_foreign_signature({"reasoning": [
        {"redacted": r.redacted} if r.redacted is not None else {"text": r.text, "signature": r.signature}
        for r in blocks]})


def render_response(resp: Response, ctx: Context) -> dict:
    parts: list[dict] = []
    last_call = max((k for k, p in enumerate(resp.parts) if isinstance(p, ToolCall)), default=-1)
    carried: list[Reasoning] = []  # signed reasoning waiting for the call that will carry its signature
    for k, p in enumerate(resp.parts):
        if isinstance(p, (Text, Refusal)):
            if p.text:
                parts.append({"text": p.text})
        elif isinstance(p, Reasoning):
            parts.append(reasoning_part(p.text, p.signature, p.redacted))  # for clients that send thoughts back
            if k < last_call and (p.signature or p.redacted is not None):
                carried.append(p)
        elif isinstance(p, ToolCall):
            try:
                value = json.loads(p.arguments) if p.arguments.strip() else {}
            except ValueError:
                if resp.stop_reason == MAX_TOKENS:
                    ctx.warn("tool call cut off by the output limit dropped from the response")
                    continue
                ctx.warn("tool call with invalid JSON arguments returned with args {}")
                value = {}
            part = function_call_part(p.id, p.name, value if isinstance(value, dict) else {"value": value})
            if carried:
                part["thoughtSignature"] = reasoning_on_call(carried)
                carried = []
            parts.append(part)
    if resp.stop_reason == PAUSE:
        ctx.warn("Anthropic pause_turn reported as finishReason STOP")
    out: dict = {
        "candidates": [{"content": {"role": "model", "parts": parts or [{"text": ""}]},
                        "finishReason": FINISH_OUT.get(resp.stop_reason or END, "STOP"), "index": 0}],
        "modelVersion": resp.model, "responseId": resp.id,
    }
    if resp.usage is not None:
        out["usageMetadata"] = render_usage(resp.usage)
    return out
