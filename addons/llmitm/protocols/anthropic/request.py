"""Anthropic requests from a client: body → canonical `Request` (PROTOCOLS.md §1.3)."""

from __future__ import annotations

import json

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
    as_dict,
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
        block = as_dict(block)
        kind = block.get("type")
        here = f"{where}[{j}]"
        if "cache_control" in block:
            ctx.warn("cache_control dropped (the OpenAI-compatible upstream caches implicitly)")
        if kind == "text":
            parts.append(Text(block.get("text") or ""))
        elif kind == "image":
            parts.append(_parse_image_source(as_dict(block.get("source")), here))
        elif kind == "document":
            src = as_dict(block.get("source"))
            if src.get("type") == "base64":
                parts.append(Document(media_type=src.get("media_type"), data=src.get("data"), title=block.get("title")))
            elif src.get("type") == "text":
                parts.append(Document(media_type="text/plain", text=src.get("data"), title=block.get("title")))
            elif src.get("type") == "url":
                parts.append(Document(url=src.get("url"), title=block.get("title")))
            else:
                raise TranslationError(f"{here}: document source {src.get('type')!r} cannot be translated", param=here)
        elif kind == "tool_use":
            parts.append(ToolCall(str(block.get("id") or ""), str(block.get("name") or ""),
                                  json.dumps(block.get("input") if block.get("input") is not None else {})))
        elif kind == "tool_result":
            inner = block.get("content")
            inner_parts = [] if inner is None else _parse_blocks(inner, here + ".content", ctx)
            parts.append(ToolResult(str(block.get("tool_use_id") or ""), inner_parts, bool(block.get("is_error"))))
        elif kind == "thinking":
            parts.append(Reasoning(block.get("thinking") or "", block.get("signature") or None))
        elif kind == "redacted_thinking":
            parts.append(Reasoning("", None, block.get("data") or ""))
        else:
            # Server-tool blocks, search results, …: the upstream has no such thing.
            ctx.warn(f"content block type {kind!r} dropped (no equivalent upstream)")
    return parts


def _parse_image_source(src: dict, where: str) -> Image:
    if src.get("type") == "base64":
        return Image(media_type=src.get("media_type"), data=src.get("data"))
    if src.get("type") == "url":
        return Image(url=src.get("url"))
    raise TranslationError(f"{where}: image source {src.get('type')!r} cannot be translated", param=where)


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
        m = as_dict(m)
        role = m.get("role")
        if role not in ("user", "assistant", "system"):
            raise TranslationError(f"messages[{i}].role: unexpected role {role!r}", param=f"messages[{i}].role")
        req.messages.append(Message(role, _parse_blocks(m.get("content", ""), f"messages[{i}].content", ctx)))
    if isinstance(body.get("max_tokens"), int):
        req.max_tokens = body["max_tokens"]
    stops = body.get("stop_sequences")
    if isinstance(stops, list):
        req.stop = [s for s in stops if isinstance(s, str)]
    req.temperature = body.get("temperature")
    req.top_p = body.get("top_p")
    req.top_k = body.get("top_k")
    for i, t in enumerate(body.get("tools") or []):
        t = as_dict(t)
        if t.get("type") not in (None, "custom"):
            raise TranslationError(f"tools[{i}]: server tool {t.get('type')!r} cannot run on this upstream",
                                   param=f"tools[{i}]")
        if "cache_control" in t:
            ctx.warn("cache_control dropped (the OpenAI-compatible upstream caches implicitly)")
        for key in t.keys() - {"name", "description", "input_schema", "strict", "type", "cache_control"}:
            ctx.warn(f"tool field {key!r} dropped (no equivalent upstream)")
        req.tools.append(Tool(str(t.get("name") or ""), t.get("description"), t.get("input_schema"), t.get("strict")))
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        mode = {"auto": "auto", "any": "required", "none": "none", "tool": "tool"}.get(str(choice.get("type")))
        if mode is None:
            raise TranslationError(f"tool_choice.type: unknown value {choice.get('type')!r}", param="tool_choice")
        req.tool_choice = ToolChoice(mode, choice.get("name"))
        if choice.get("disable_parallel_tool_use"):
            req.parallel_tool_calls = False
    output_config = as_dict(body.get("output_config"))
    thinking = as_dict(body.get("thinking"))
    if thinking.get("type") == "enabled":
        req.reasoning = ReasoningConfig(True, budget_tokens=thinking.get("budget_tokens"))
    elif thinking.get("type") == "adaptive":
        req.reasoning = ReasoningConfig(True, effort=output_config.get("effort"))
    elif thinking.get("type") == "disabled":
        req.reasoning = ReasoningConfig(False)
    elif output_config.get("effort"):
        req.reasoning = ReasoningConfig(True, effort=output_config["effort"])
    fmt = as_dict(output_config.get("format") or body.get("output_format"))
    if fmt.get("type") == "json_schema":
        req.response_format = ResponseFormat("json_schema", schema=fmt.get("schema"), strict=True)
    user_id = as_dict(body.get("metadata")).get("user_id")
    if isinstance(user_id, str):
        req.user = user_id
    for key in body.keys() - KNOWN_REQUEST_KEYS:
        if key in REJECTED_FIELDS:
            raise TranslationError(f"{key}: not supported by the upstream protocol", param=key)
        ctx.warn(f"request field {key!r} dropped (no equivalent upstream)")
    return req
