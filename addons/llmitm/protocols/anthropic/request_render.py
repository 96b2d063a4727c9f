"""Canonical `Request` → an Anthropic Messages body for the upstream (PROTOCOLS.md §1.3): content
blocks, tool ids, tools, thinking and the sampling rules that go with it."""

from __future__ import annotations

import base64
import json
import re

from .. import model_rules
from ..canonical import (
    HOSTED_WEB_SEARCH,
    Context,
    Document,
    Image,
    Reasoning,
    Refusal,
    Request,
    Text,
    ToolCall,
    ToolResult,
    TranslationError,
)
from ..policy import budget_for_effort
from .api_errors import NAME

IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}


_BAD_ID_CHARS = re.compile(r"[^a-zA-Z0-9_-]")


def _tool_id(raw: str, ctx: Context) -> str:
    # Anthropic accepts ^[a-zA-Z0-9_-]+$; the same mapping on tool_use and tool_result keeps pairs matched.
    clean = _BAD_ID_CHARS.sub("_", raw)
    return clean or "toolu_missing_id"


def _render_image(img: Image, where: str, ctx: Context) -> dict:
    if img.detail not in (None, "auto"):
        ctx.warn(f"image detail {img.detail!r} dropped (Anthropic has no detail setting)")
    if img.data is not None:
        if img.media_type not in IMAGE_TYPES:
            raise TranslationError(f"{where}: image type {img.media_type!r} not supported by Anthropic "
                                   "(jpeg, png, gif, webp only)", param=where)
        return {"type": "image", "source": {"type": "base64", "media_type": img.media_type, "data": img.data}}
    return {"type": "image", "source": {"type": "url", "url": img.url}}


def _render_document(doc: Document, where: str) -> dict:
    if doc.text is not None:
        source = {"type": "text", "media_type": "text/plain", "data": doc.text}
    elif doc.data is not None and (doc.media_type or "").startswith("text/"):
        try:  # Anthropic takes plain-text documents as text, not base64
            text = base64.b64decode(doc.data, validate=True).decode("utf-8")
        except ValueError:
            raise TranslationError(f"{where}: file_data is not valid base64 UTF-8 text", param=where) from None
        source = {"type": "text", "media_type": "text/plain", "data": text}
    elif doc.data is not None:
        if doc.media_type != "application/pdf":
            raise TranslationError(f"{where}: file type {doc.media_type!r} not supported by Anthropic", param=where)
        source = {"type": "base64", "media_type": "application/pdf", "data": doc.data}
    else:
        source = {"type": "url", "url": doc.url or ""}
    out = {"type": "document", "source": source}
    if doc.title:
        out["title"] = doc.title
    return out


def _tool_input(arguments: str, ctx: Context) -> dict:
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        ctx.warn("tool call with invalid JSON arguments sent as {} (arguments were not valid JSON)")
        return {}
    return value if isinstance(value, dict) else {"value": value}


def _render_parts(parts: list, where: str, ctx: Context) -> list[dict]:
    blocks: list[dict] = []
    for j, p in enumerate(parts):
        here = f"{where}[{j}]"
        if isinstance(p, (Text, Refusal)):
            if p.text.strip():  # Anthropic rejects empty and whitespace-only text blocks
                blocks.append({"type": "text", "text": p.text})
        elif isinstance(p, Image):
            blocks.append(_render_image(p, here, ctx))
        elif isinstance(p, Document):
            blocks.append(_render_document(p, here))
        elif isinstance(p, ToolCall):
            blocks.append({"type": "tool_use", "id": _tool_id(p.id, ctx), "name": p.name,
                           "input": _tool_input(p.arguments, ctx)})
        elif isinstance(p, ToolResult):
            block: dict = {"type": "tool_result", "tool_use_id": _tool_id(p.tool_call_id, ctx)}
            inner = _render_parts(p.content, here, ctx)
            if len(inner) == 1 and inner[0]["type"] == "text":
                block["content"] = inner[0]["text"]
            elif inner:
                block["content"] = inner
            if p.is_error:
                block["is_error"] = True
            blocks.append(block)
        elif isinstance(p, Reasoning):
            if p.redacted is not None:
                blocks.append({"type": "redacted_thinking", "data": p.redacted})
            elif p.signature:
                blocks.append({"type": "thinking", "thinking": p.text, "signature": p.signature})
            else:
                # Unsigned (foreign) reasoning would be rejected by Anthropic's signature check.
                ctx.warn("unsigned reasoning dropped from history (Anthropic accepts only its own signed thinking)")
    return blocks


def _render_messages(req: Request, ctx: Context) -> tuple[list[str], list[dict]]:
    system = [t.text for t in req.system if t.text]
    out: list[dict] = []
    for i, m in enumerate(req.messages):
        if m.role == "system":
            ctx.warn("system message inside the conversation moved to the system prompt (position lost)")
            system.extend(p.text for p in m.parts if isinstance(p, Text) and p.text)
            continue
        blocks = _render_parts(m.parts, f"messages[{i}].content", ctx)
        if not blocks:
            continue
        if out and out[-1]["role"] == m.role:  # Anthropic wants alternating turns: merge
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": m.role, "content": blocks})
    for turn in out:
        if turn["role"] == "user":  # tool_result blocks must open the user turn
            turn["content"].sort(key=lambda b: b["type"] != "tool_result")
    return system, out


def _last_tool_turn_lacks_signed_thinking(req: Request) -> bool:
    for m in reversed(req.messages):
        if m.role == "assistant":
            has_call = any(isinstance(p, ToolCall) for p in m.parts)
            signed = any(isinstance(p, Reasoning) and (p.signature or p.redacted) for p in m.parts)
            return has_call and not signed
    return False


def render_tools(req: Request, ctx: Context) -> dict:
    """`tools` and `tool_choice` of the Anthropic body (empty without tools)."""
    if not req.tools:
        return {}
    out: dict = {"tools": []}
    for t in req.tools:
        if t.hosted == HOSTED_WEB_SEARCH:  # a server tool: Anthropic runs the search itself
            out["tools"].append({"type": "web_search_20250305", "name": "web_search"})
            continue
        tool = {"name": t.name, "input_schema": t.parameters or {"type": "object", "properties": {}}}
        if t.description:
            tool["description"] = t.description
        if t.strict:
            ctx.warn("tool strict mode dropped (not sent to Anthropic)")
        out["tools"].append(tool)
    choice = req.tool_choice
    tool_choice: dict | None = None
    if choice is not None:
        tool_choice = {"type": {"auto": "auto", "required": "any", "none": "none", "tool": "tool"}[choice.mode]}
        if choice.mode == "tool":
            tool_choice["name"] = choice.name
    if req.parallel_tool_calls is False:
        tool_choice = tool_choice or {"type": "auto"}
        if tool_choice["type"] != "none":
            tool_choice["disable_parallel_tool_use"] = True
    if tool_choice is not None:
        out["tool_choice"] = tool_choice
    return out


def _render_thinking(req: Request, max_tokens: int, ctx: Context) -> tuple[dict | None, int]:
    """(`thinking` or None, `max_tokens`): thinking on only where Anthropic accepts it (PROTOCOLS.md §1.3),
    its budget fitted below the output limit."""
    thinking = req.reasoning
    if thinking is None or not thinking.enabled:
        return None, max_tokens
    budget = thinking.budget_tokens or budget_for_effort(thinking.effort)
    if req.tool_choice is not None and req.tool_choice.mode in ("required", "tool") and req.tools:
        ctx.warn("thinking disabled: Anthropic allows thinking only with tool_choice auto/none")
        return None, max_tokens
    if _last_tool_turn_lacks_signed_thinking(req):
        ctx.warn("thinking disabled: the last tool-use turn carries no Anthropic-signed thinking block")
        return None, max_tokens
    if req.max_tokens is None and max_tokens <= budget:
        max_tokens = budget + ctx.max_tokens_default  # the client set no limit: leave room to answer
    elif max_tokens <= budget:
        budget = max(1024, max_tokens // 2)
    if max_tokens <= budget:
        ctx.warn("thinking disabled: max_tokens too small for Anthropic's minimum thinking budget (1024)")
        return None, max_tokens
    return {"type": "enabled", "budget_tokens": budget}, max_tokens


def render_request(req: Request, ctx: Context) -> dict:
    if req.n not in (None, 1):
        raise TranslationError("n: only one choice (n=1) is supported by Anthropic", param="n")
    if req.logprobs:
        raise TranslationError("logprobs: not supported by Anthropic", param="logprobs")
    if req.top_logprobs:
        raise TranslationError("top_logprobs: not supported by Anthropic", param="top_logprobs")
    if req.logit_bias:
        raise TranslationError("logit_bias: not supported by Anthropic", param="logit_bias")
    if req.seed is not None:
        ctx.warn("seed dropped (Anthropic has no seed)")
    if req.presence_penalty or req.frequency_penalty:
        ctx.warn("presence_penalty/frequency_penalty dropped (Anthropic has no penalties)")
    system, messages = _render_messages(req, ctx)
    out: dict = {"model": req.model, "messages": messages}
    max_tokens = req.max_tokens if req.max_tokens is not None else ctx.max_tokens_default
    if system:
        out["system"] = "\n\n".join(system)
    temperature = req.temperature
    if temperature is not None and temperature > 1:
        ctx.warn(f"temperature {temperature} clamped to 1 (Anthropic range is 0-1)")
        temperature = 1
    if req.stop:
        stops = [s for s in req.stop if s.strip()]
        if len(stops) < len(req.stop):
            ctx.warn("whitespace-only stop sequences dropped (Anthropic rejects them)")
        if stops:
            out["stop_sequences"] = stops
    out.update(render_tools(req, ctx))
    thinking, out["max_tokens"] = _render_thinking(req, max_tokens, ctx)
    if thinking is not None:
        out["thinking"] = thinking
    for key, value in (("temperature", temperature), ("top_p", req.top_p), ("top_k", req.top_k)):
        if value is not None:
            out[key] = value
    # What the target model refuses (thinking's sampling limits, Claude 4.5's temperature-or-top_p).
    model_rules.apply(NAME, out, ctx)
    fmt = req.response_format
    if fmt is not None and fmt.kind == "json_schema":
        out["output_config"] = {"format": {"type": "json_schema", "schema": fmt.schema or {}}}
    elif fmt is not None and fmt.kind == "json_object":
        ctx.warn("response_format json_object dropped (Anthropic has no JSON mode without a schema)")
    if req.user:
        out["metadata"] = {"user_id": req.user}
    if req.stream:
        out["stream"] = True
    return out
