"""Anthropic requests from a client: body → canonical `Request` (PROTOCOLS.md §1.3)."""

from __future__ import annotations

import json

from .. import field_types as field
from ..canonical import (
    Context,
    Document,
    Image,
    Message,
    Reasoning,
    ReasoningConfig,
    Request,
    ResponseFormat,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
    TranslationError,
)

KNOWN_REQUEST_KEYS = {
    "model", "messages", "system", "max_tokens", "stop_sequences", "temperature", "top_p", "top_k", "tools",
    "tool_choice", "thinking", "output_config", "output_format", "metadata", "stream",
}
# Request fields that need provider-side machinery: refused. Any other unknown field is dropped with a warning.
REJECTED_FIELDS = {"container", "mcp_servers"}


def _parse_blocks(content, where: str, ctx: Context) -> list:
    if isinstance(content, str):
        return [Text(content)]
    if not isinstance(content, list):
        raise TranslationError(f"{where}: content must be a string or an array", param=where)
    parts: list = []
    for j, block in enumerate(content):
        here = f"{where}[{j}]"
        block = field.obj(block, here)
        kind = block.get("type")
        if "cache_control" in block:
            ctx.warn("cache_control dropped (the OpenAI-compatible upstream caches implicitly)")
        if kind == "text":
            parts.append(Text(field.text(block.get("text"), here + ".text") or ""))
        elif kind == "image":
            parts.append(_parse_image_source(field.obj(block.get("source"), here + ".source"), here))
        elif kind == "document":
            parts.append(_parse_document(block, here))
        elif kind == "tool_use":
            parts.append(ToolCall(field.text(block.get("id"), here + ".id") or "",
                                  field.text(block.get("name"), here + ".name") or "",
                                  json.dumps(block.get("input") if block.get("input") is not None else {})))
        elif kind == "tool_result":
            inner = block.get("content")
            inner_parts = [] if inner is None else _parse_blocks(inner, here + ".content", ctx)
            parts.append(ToolResult(field.text(block.get("tool_use_id"), here + ".tool_use_id") or "", inner_parts,
                                    bool(field.boolean(block.get("is_error"), here + ".is_error"))))
        elif kind == "thinking":
            parts.append(Reasoning(field.text(block.get("thinking"), here + ".thinking") or "",
                                   field.text(block.get("signature"), here + ".signature") or None))
        elif kind == "redacted_thinking":
            parts.append(Reasoning("", None, field.text(block.get("data"), here + ".data") or ""))
        else:
            # Server-tool blocks, search results, …: the upstream has no such thing.
            ctx.warn(f"content block type {kind!r} dropped (no equivalent upstream)")
    return parts


def _parse_image_source(src: dict, where: str) -> Image:
    here = where + ".source"
    if src.get("type") == "base64":
        return Image(media_type=field.text(src.get("media_type"), here + ".media_type"),
                     data=field.text(src.get("data"), here + ".data") or "")
    if src.get("type") == "url":
        return Image(url=field.text(src.get("url"), here + ".url") or "")
    raise TranslationError(f"{where}: image source {src.get('type')!r} cannot be translated", param=where)


def _parse_document(block: dict, where: str) -> Document:
    here = where + ".source"
    src = field.obj(block.get("source"), here)
    title = field.text(block.get("title"), where + ".title")
    data = field.text(src.get("data"), here + ".data")
    if src.get("type") == "base64":
        return Document(media_type=field.text(src.get("media_type"), here + ".media_type"), data=data or "",
                        title=title)
    if src.get("type") == "text":
        return Document(media_type="text/plain", text=data or "", title=title)
    if src.get("type") == "url":
        return Document(url=field.text(src.get("url"), here + ".url") or "", title=title)
    raise TranslationError(f"{where}: document source {src.get('type')!r} cannot be translated", param=where)


def parse_request(body: dict, ctx: Context) -> Request:
    if not isinstance(body, dict):
        raise TranslationError("request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise TranslationError("messages: field required (an array)", param="messages")
    req = Request(model=str(body.get("model") or ""), stream=bool(body.get("stream")), include_usage=True)
    system = body.get("system")
    if system is not None:
        req.system = [p for p in _parse_blocks(system, "system", ctx) if isinstance(p, Text)]
    for i, m in enumerate(messages):
        m = field.obj(m, f"messages[{i}]")
        role = m.get("role")
        if role not in ("user", "assistant", "system"):
            raise TranslationError(f"messages[{i}].role: unexpected role {role!r}", param=f"messages[{i}].role")
        req.messages.append(Message(role, _parse_blocks(m.get("content", ""), f"messages[{i}].content", ctx)))
    req.max_tokens = field.integer(body.get("max_tokens"), "max_tokens")
    req.stop = [s for s in field.array(body.get("stop_sequences"), "stop_sequences") if isinstance(s, str)]
    req.temperature = field.number(body.get("temperature"), "temperature")
    req.top_p = field.number(body.get("top_p"), "top_p")
    req.top_k = field.integer(body.get("top_k"), "top_k")
    for i, t in enumerate(field.array(body.get("tools"), "tools")):
        here = f"tools[{i}]"
        t = field.obj(t, here)
        if t.get("type") not in (None, "custom"):
            raise TranslationError(f"{here}: server tool {t.get('type')!r} cannot run on this upstream", param=here)
        if "cache_control" in t:
            ctx.warn("cache_control dropped (the OpenAI-compatible upstream caches implicitly)")
        for key in t.keys() - {"name", "description", "input_schema", "strict", "type", "cache_control"}:
            ctx.warn(f"tool field {key!r} dropped (no equivalent upstream)")
        req.tools.append(Tool(field.text(t.get("name"), here + ".name") or "",
                              field.text(t.get("description"), here + ".description"),
                              field.schema(t.get("input_schema"), here + ".input_schema"),
                              field.boolean(t.get("strict"), here + ".strict")))
    choice = field.obj(body.get("tool_choice"), "tool_choice")
    if choice:
        mode = {"auto": "auto", "any": "required", "none": "none", "tool": "tool"}.get(str(choice.get("type")))
        if mode is None:
            raise TranslationError(f"tool_choice.type: unknown value {choice.get('type')!r}", param="tool_choice")
        req.tool_choice = ToolChoice(mode, field.text(choice.get("name"), "tool_choice.name"))
        if choice.get("disable_parallel_tool_use"):
            req.parallel_tool_calls = False
    output_config = field.obj(body.get("output_config"), "output_config")
    effort = field.text(output_config.get("effort"), "output_config.effort")
    thinking = field.obj(body.get("thinking"), "thinking")
    if thinking.get("type") == "enabled":
        req.reasoning = ReasoningConfig(True, budget_tokens=field.integer(thinking.get("budget_tokens"),
                                                                          "thinking.budget_tokens"))
    elif thinking.get("type") == "adaptive":
        req.reasoning = ReasoningConfig(True, effort=effort)
    elif thinking.get("type") == "disabled":
        req.reasoning = ReasoningConfig(False)
    elif effort:
        req.reasoning = ReasoningConfig(True, effort=effort)
    format_param = "output_config.format" if output_config.get("format") else "output_format"
    fmt = field.obj(output_config.get("format") or body.get("output_format"), format_param)
    if fmt.get("type") == "json_schema":
        req.response_format = ResponseFormat("json_schema", schema=field.schema(fmt.get("schema"), format_param + ".schema"),
                                             strict=True)
    user_id = field.obj(body.get("metadata"), "metadata").get("user_id")
    if isinstance(user_id, str):
        req.user = user_id
    for key in body.keys() - KNOWN_REQUEST_KEYS:
        if key in REJECTED_FIELDS:
            raise TranslationError(f"{key}: not supported by the upstream protocol", param=key)
        ctx.warn(f"request field {key!r} dropped (no equivalent upstream)")
    return req
