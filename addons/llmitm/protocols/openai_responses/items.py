"""Output items and the response object, shared by the non-stream and stream halves: reasoning items that
carry foreign signatures, message and call items, the status and the envelope echoing the request."""

from __future__ import annotations

import json

from ..canonical import CONTENT_FILTER, CONTEXT_WINDOW, END, MAX_TOKENS, PAUSE, Context, Reasoning, Request
from ..policy import as_dict, new_id
from .tools import render_tools

# Prefixes of reasoning items' `encrypted_content` that carry a foreign reasoning signature (Anthropic's)
# or Anthropic's redacted thinking, so that they are recognised when the client sends the item back.
SIGNATURE_PREFIX = "llmitm.signature:"
REDACTED_PREFIX = "llmitm.redacted:"
INCOMPLETE_REASONS = {"max_output_tokens": MAX_TOKENS, "content_filter": CONTENT_FILTER}


def _list(value) -> list:
    return value if isinstance(value, list) else []


def parse_reasoning_item(item: dict) -> Reasoning:
    texts = [p["text"] for p in _list(item.get("content")) if isinstance(p, dict) and isinstance(p.get("text"), str)]
    if not any(texts):
        texts = [p["text"] for p in _list(item.get("summary")) if isinstance(p, dict) and isinstance(p.get("text"), str)]
    text = "\n\n".join(t for t in texts if t)
    enc = item.get("encrypted_content")
    if isinstance(enc, str) and enc.startswith(REDACTED_PREFIX):
        return Reasoning("", None, enc[len(REDACTED_PREFIX):])
    if isinstance(enc, str) and enc.startswith(SIGNATURE_PREFIX):
        return Reasoning(text, enc[len(SIGNATURE_PREFIX):] or None)
    return Reasoning(text)  # OpenAI's own encrypted reasoning is bound to OpenAI: not carried


def custom_input(arguments: str) -> str:
    """The free-text input of a custom tool's call, from the function arguments it came back as."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return arguments  # cut off by the output limit: the raw text is all there is
    if isinstance(value, dict):
        if isinstance(value.get("input"), str):
            return value["input"]
        strings = [v for v in value.values() if isinstance(v, str)]
        if len(strings) == 1:
            return strings[0]
    return arguments


def stop_reason_from(payload: dict, ctx: Context) -> str | None:
    status = payload.get("status")
    if status == "incomplete":
        reason = as_dict(payload.get("incomplete_details")).get("reason")
        stop = INCOMPLETE_REASONS.get(str(reason))
        if stop is None:
            ctx.warn(f"incomplete response (reason {reason!r}) reported as cut off by the output limit")
            stop = MAX_TOKENS
        return stop
    if status not in (None, "completed"):
        ctx.warn(f"response status {status!r} reported as end of turn")
    return END



def response_id(raw: str) -> str:
    return raw if raw.startswith("resp_") else "resp_" + (raw or new_id(""))


def status_for(stop: str | None, ctx: Context) -> tuple[str, dict | None]:
    if stop in (MAX_TOKENS, CONTEXT_WINDOW):
        return "incomplete", {"reason": "max_output_tokens"}
    if stop == CONTENT_FILTER:
        return "incomplete", {"reason": "content_filter"}
    if stop == PAUSE:
        ctx.warn("Anthropic pause_turn reported as a completed response")
    return "completed", None


def envelope(id: str, model: str, created: int, request: Request | None) -> dict:
    """The response object's fields besides status, output and usage (echoing the request)."""
    req = request
    tools = render_tools(req.tools) if req else []
    choice = req.tool_choice if req else None
    fmt = req.response_format if req else None
    if fmt is not None and fmt.kind == "json_schema":
        text_format: dict = {"type": "json_schema", "name": fmt.name or "response", "schema": fmt.schema or {},
                             "strict": fmt.strict, "description": fmt.description}
    else:
        text_format = {"type": fmt.kind if fmt is not None else "text"}
    effort = req.reasoning.effort if req and req.reasoning and req.reasoning.enabled else None
    return {
        "id": id, "object": "response", "created_at": created, "status": "in_progress", "background": False,
        "error": None, "incomplete_details": None,
        "instructions": "\n\n".join(t.text for t in req.system) if req and req.system else None,
        "max_output_tokens": req.max_tokens if req else None, "model": model, "output": [],
        "parallel_tool_calls": req.parallel_tool_calls is not False if req else True,
        "previous_response_id": None, "reasoning": {"effort": effort, "summary": None}, "store": False,
        "temperature": req.temperature if req and req.temperature is not None else 1.0,
        "text": {"format": text_format},
        "tool_choice": ({"type": "function", "name": choice.name} if choice.mode == "tool" else choice.mode)
        if choice else "auto",
        "tools": tools, "top_p": req.top_p if req and req.top_p is not None else 1.0, "truncation": "disabled",
        "usage": None, "user": None, "metadata": {},
    }


def reasoning_item(id: str, text: str, signature: str | None, redacted: str | None) -> dict:
    item: dict = {"id": id, "type": "reasoning",
                  "summary": [{"type": "summary_text", "text": text}] if text else []}
    if redacted is not None:
        item["encrypted_content"] = REDACTED_PREFIX + redacted
    elif signature:
        item["encrypted_content"] = SIGNATURE_PREFIX + signature
    return item


def text_part(text: str) -> dict:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(id: str, content: list[dict], status: str = "completed") -> dict:
    return {"id": id, "type": "message", "status": status, "role": "assistant", "content": content}


def call_item_id(call_id: str, prefix: str = "fc_") -> str:
    return prefix + call_id.removeprefix("call_").removeprefix("toolu_")


def call_status(arguments: str, stop: str | None) -> str:
    if stop in (MAX_TOKENS, CONTEXT_WINDOW):
        try:
            json.loads(arguments)
        except ValueError:
            return "incomplete"  # cut off by the output limit: not a call to run
    return "completed"

