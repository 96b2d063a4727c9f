"""Non-stream responses both ways."""

from __future__ import annotations

import json
import time

from ..canonical import Context, Reasoning, Refusal, Request, Response, Text, ToolCall
from ..policy import as_dict, new_id
from .items import (
    call_item_id,
    call_status,
    custom_input,
    envelope,
    message_item,
    parse_reasoning_item,
    reasoning_item,
    response_id,
    status_for,
    stop_reason_from,
    text_part,
)
from .tools import client_tool_name
from .usage_errors import parse_usage, render_usage


def _parse_output(items, ctx: Context) -> list:
    parts: list = []
    for item in items or []:
        item = as_dict(item)
        kind = item.get("type")
        if kind == "message":
            for c in item.get("content") or []:
                c = as_dict(c)
                if c.get("type") == "output_text":
                    if c.get("annotations"):
                        ctx.warn("annotations (citations) dropped (no equivalent for the client)")
                    parts.append(Text(c.get("text") or ""))
                elif c.get("type") == "refusal":
                    parts.append(Refusal(c.get("refusal") or ""))
                else:
                    ctx.warn(f"message content type {c.get('type')!r} dropped (no equivalent for the client)")
        elif kind == "reasoning":
            reasoning = parse_reasoning_item(item)
            if reasoning.text or reasoning.signature or reasoning.redacted is not None:
                parts.append(reasoning)
        elif kind == "function_call":
            args = item.get("arguments")
            parts.append(ToolCall(str(item.get("call_id") or item.get("id") or new_id("call_")),
                                  str(item.get("name") or ""),
                                  args if isinstance(args, str) else json.dumps(args if args is not None else {})))
        else:
            ctx.warn(f"output item type {kind!r} dropped (no equivalent for the client)")
    return parts


def parse_response(body: dict, ctx: Context) -> Response:
    if not isinstance(body.get("output"), list):
        raise TypeError("no output array")
    usage = body.get("usage")
    return Response(
        id=str(body.get("id") or ""), model=str(body.get("model") or ""), parts=_parse_output(body["output"], ctx),
        stop_reason=stop_reason_from(body, ctx), usage=parse_usage(usage) if isinstance(usage, dict) else None,
        created=body.get("created_at") if isinstance(body.get("created_at"), int) else None,
    )


def render_response(resp: Response, ctx: Context, request: Request | None = None) -> dict:
    rid = response_id(resp.id)
    suffix = rid.removeprefix("resp_")
    output: list[dict] = []
    message: dict | None = None
    for k, p in enumerate(resp.parts):
        if isinstance(p, (Text, Refusal)):
            if message is None:
                message = message_item(f"msg_{k}_{suffix}", [])
                output.append(message)
            content = message["content"]
            if isinstance(p, Text):
                if content and content[-1]["type"] == "output_text":
                    content[-1]["text"] += p.text  # consecutive text blocks: one output_text
                else:
                    content.append(text_part(p.text))
            else:
                content.append({"type": "refusal", "refusal": p.text})
            continue
        message = None
        if isinstance(p, Reasoning):
            output.append(reasoning_item(f"rs_{k}_{suffix}", p.text, p.signature, p.redacted))
        elif isinstance(p, ToolCall) and p.name in ctx.freeform_tools:
            name, namespace = client_tool_name(p.name, ctx)
            item = {"id": call_item_id(p.id, "ctc_"), "type": "custom_tool_call",
                    "status": call_status(p.arguments, resp.stop_reason), "call_id": p.id, "name": name,
                    "input": custom_input(p.arguments)}
            if namespace:
                item["namespace"] = namespace
            output.append(item)
        elif isinstance(p, ToolCall):
            args = p.arguments or "{}"
            name, namespace = client_tool_name(p.name, ctx)
            item = {"id": call_item_id(p.id), "type": "function_call", "status": call_status(args, resp.stop_reason),
                    "arguments": args, "call_id": p.id, "name": name}
            if namespace:
                item["namespace"] = namespace
            output.append(item)
    status, incomplete = status_for(resp.stop_reason, ctx)
    out = envelope(rid, resp.model, int(time.time()) if resp.created is None else resp.created,
                    request)
    out.update(status=status, incomplete_details=incomplete, output=output, usage=render_usage(resp.usage))
    return out

