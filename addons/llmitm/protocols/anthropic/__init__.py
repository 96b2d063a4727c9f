"""Anthropic Messages spoke (`POST /v1/messages`): requests, responses, stream events and errors
to and from the canonical model. Field reference: PROTOCOLS.md §1.3."""

from __future__ import annotations

import base64
import json
import re

from .. import errors
from ..canonical import (
    CONTENT_FILTER,
    CONTEXT_WINDOW,
    END,
    HOSTED_WEB_SEARCH,
    MAX_TOKENS,
    PAUSE,
    REASONING,
    REDACTED,
    STOP_SEQUENCE,
    TEXT,
    TOOL_CALL,
    TOOL_USE,
    ApiError,
    BlockStart,
    BlockStop,
    Context,
    Delta,
    Document,
    Image,
    KeepAlive,
    Message,
    Reasoning,
    ReasoningConfig,
    Refusal,
    Request,
    Response,
    ResponseFormat,
    SignatureDelta,
    StreamEnd,
    StreamError,
    StreamFinish,
    StreamStart,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
    TranslationError,
    Usage,
    UsageUpdate,
    as_dict,
    budget_for_effort,
    new_id,
)

NAME = "anthropic"
PATH = "/v1/messages"
# Headers the upstream needs besides auth (the addon adds the key; anthropic-beta is forwarded by it).
REQUEST_HEADERS = {"content-type": "application/json", "anthropic-version": "2023-06-01"}

STOP_OUT = {
    END: "end_turn", MAX_TOKENS: "max_tokens", STOP_SEQUENCE: "stop_sequence", TOOL_USE: "tool_use",
    CONTENT_FILTER: "refusal", PAUSE: "pause_turn", CONTEXT_WINDOW: "model_context_window_exceeded",
}
STOP_IN = {v: k for k, v in STOP_OUT.items()}
IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
# Error type → HTTP status, for errors that arrive inside a stream (no status of their own).
STATUS_FOR_TYPE = {
    "invalid_request_error": 400, "authentication_error": 401, "billing_error": 402, "permission_error": 403,
    "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
    "timeout_error": 504, "overloaded_error": 529,
}
_BAD_ID_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
_KNOWN_REQUEST_KEYS = {
    "model", "messages", "system", "max_tokens", "stop_sequences", "temperature", "top_p", "top_k", "tools",
    "tool_choice", "thinking", "output_config", "output_format", "metadata", "stream",
}
# Request fields that need provider-side machinery: refused. Any other unknown field is dropped with a warning.
_REJECTED = {"container", "mcp_servers"}


def request_path(req: Request) -> str:
    return PATH


# ---------------------------------------------------------------------------------------------
# Usage and errors


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


def _error_from_payload(payload: dict, status: int | None) -> ApiError:
    err = as_dict(payload.get("error"))
    etype = err["type"] if isinstance(err.get("type"), str) else None
    message = err["message"] if isinstance(err.get("message"), str) else json.dumps(payload)[:1000]
    return ApiError(status or STATUS_FOR_TYPE.get(etype or "", 500), message, etype)


def parse_error(status: int | None, body: bytes) -> ApiError:
    """An error body; with `status` None (an error inside a 200) the status follows the error type."""
    try:
        payload = json.loads(body)
    except ValueError:
        return ApiError(status or 502, body.decode("utf-8", "replace")[:1000] or f"upstream returned HTTP {status}")
    return _error_from_payload(as_dict(payload), status)


def render_error(err: ApiError) -> bytes:
    return errors.render_error(NAME, err.status, err.message)


def render_stream_error(err: ApiError) -> bytes:
    body = errors.error_body(NAME, err.status, err.message)
    return b"event: error\ndata: " + json.dumps(body).encode() + b"\n\n"


# ---------------------------------------------------------------------------------------------
# Requests


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
    for key in body.keys() - _KNOWN_REQUEST_KEYS:
        if key in _REJECTED:
            raise TranslationError(f"{key}: not supported by the upstream protocol", param=key)
        ctx.warn(f"request field {key!r} dropped (no equivalent upstream)")
    return req


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
    temperature, top_p, top_k = req.temperature, req.top_p, req.top_k
    if temperature is not None and temperature > 1:
        ctx.warn(f"temperature {temperature} clamped to 1 (Anthropic range is 0-1)")
        temperature = 1
    if req.stop:
        stops = [s for s in req.stop if s.strip()]
        if len(stops) < len(req.stop):
            ctx.warn("whitespace-only stop sequences dropped (Anthropic rejects them)")
        if stops:
            out["stop_sequences"] = stops
    if req.tools:
        out["tools"] = []
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
        tc: dict | None = None
        if choice is not None:
            tc = {"type": {"auto": "auto", "required": "any", "none": "none", "tool": "tool"}[choice.mode]}
            if choice.mode == "tool":
                tc["name"] = choice.name
        if req.parallel_tool_calls is False:
            tc = tc or {"type": "auto"}
            if tc["type"] != "none":
                tc["disable_parallel_tool_use"] = True
        if tc is not None:
            out["tool_choice"] = tc
    thinking = req.reasoning
    if thinking is not None and thinking.enabled:
        budget = thinking.budget_tokens or budget_for_effort(thinking.effort)
        forced = req.tool_choice is not None and req.tool_choice.mode in ("required", "tool") and req.tools
        if forced:
            ctx.warn("thinking disabled: Anthropic allows thinking only with tool_choice auto/none")
        elif _last_tool_turn_lacks_signed_thinking(req):
            ctx.warn("thinking disabled: the last tool-use turn carries no Anthropic-signed thinking block")
        else:
            if req.max_tokens is None and max_tokens <= budget:
                max_tokens = budget + ctx.max_tokens_default  # the client set no limit: leave room to answer
            elif max_tokens <= budget:
                budget = max(1024, max_tokens // 2)
            if max_tokens <= budget:
                ctx.warn("thinking disabled: max_tokens too small for Anthropic's minimum thinking budget (1024)")
            else:
                out["thinking"] = {"type": "enabled", "budget_tokens": budget}
                # Anthropic with thinking: temperature/top_k must stay default, top_p only 0.95-1.
                if temperature is not None and temperature != 1:
                    ctx.warn("temperature dropped (not allowed with Anthropic thinking)")
                temperature = None
                if top_k is not None:
                    ctx.warn("top_k dropped (not allowed with Anthropic thinking)")
                top_k = None
                if top_p is not None and top_p < 0.95:
                    ctx.warn("top_p raised to 0.95 (minimum with Anthropic thinking)")
                    top_p = 0.95
    out["max_tokens"] = max_tokens
    if temperature is not None:
        out["temperature"] = temperature
    if top_p is not None:
        out["top_p"] = top_p
    if top_k is not None:
        out["top_k"] = top_k
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


# ---------------------------------------------------------------------------------------------
# Non-stream responses


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


# ---------------------------------------------------------------------------------------------
# Streams


_BLOCK_KINDS = {"text": TEXT, "thinking": REASONING, "redacted_thinking": REDACTED, "tool_use": TOOL_CALL}


class StreamParser:
    """Anthropic SSE events (already decoded) → canonical stream events."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._usage: dict = {}  # raw usage fields merged across message_start and message_delta
        self._skipped: set[int] = set()  # indexes of blocks the client cannot receive

    def feed(self, event: str | None, data: str) -> list:
        if data == "[DONE]":  # not Anthropic's, but some compatible proxies append it
            return []
        payload = json.loads(data)
        kind = payload.get("type") or event
        if kind == "content_block_delta":
            index = payload["index"]
            delta = payload["delta"]
            dtype = delta.get("type")
            if index in self._skipped:
                return []
            if dtype == "text_delta":
                return [Delta(index, delta["text"])]
            if dtype == "input_json_delta":
                return [Delta(index, delta["partial_json"])] if delta["partial_json"] else []
            if dtype == "thinking_delta":
                return [Delta(index, delta["thinking"])] if delta["thinking"] else []
            if dtype == "signature_delta":
                return [SignatureDelta(index, delta["signature"])]
            if dtype == "citations_delta":
                self.ctx.warn("citations dropped (no equivalent for the client)")
                return []
            self.ctx.warn(f"stream delta type {dtype!r} dropped")
            return []
        if kind == "content_block_start":
            index = payload["index"]
            block = payload["content_block"]
            btype = _BLOCK_KINDS.get(block.get("type"))
            if btype is None:
                self._skipped.add(index)
                self.ctx.warn(f"response block type {block.get('type')!r} dropped (no equivalent for the client)")
                return []
            if btype == TOOL_CALL:
                out: list = [BlockStart(index, TOOL_CALL, id=block.get("id"), name=block.get("name"))]
                if block.get("input"):
                    out.append(Delta(index, json.dumps(block["input"])))
                return out
            if btype == REDACTED:
                return [BlockStart(index, REDACTED, data=block.get("data"))]
            out = [BlockStart(index, btype)]
            initial = block.get("text") or block.get("thinking")
            if initial:
                out.append(Delta(index, initial))
            return out
        if kind == "content_block_stop":
            index = payload["index"]
            return [] if index in self._skipped else [BlockStop(index)]
        if kind == "ping":
            return [KeepAlive()]
        if kind == "message_start":
            message = payload.get("message") or {}
            self._usage.update(as_dict(message.get("usage")))
            return [StreamStart(str(message.get("id") or ""), str(message.get("model") or ""),
                                parse_usage(self._usage))]
        if kind == "message_delta":
            # message_delta usage is cumulative and may repeat input/cache fields: merge, then report.
            self._usage.update({k: v for k, v in as_dict(payload.get("usage")).items() if v is not None})
            delta = as_dict(payload.get("delta"))
            reason = delta.get("stop_reason")
            stop = STOP_IN.get(str(reason))
            if stop is None:
                if reason is not None:
                    self.ctx.warn(f"unknown stop_reason {reason!r} reported as end of turn")
                stop = END
            return [UsageUpdate(parse_usage(self._usage)), StreamFinish(stop, delta.get("stop_sequence"))]
        if kind == "message_stop":
            return [StreamEnd()]
        if kind == "error":
            return [StreamError(_error_from_payload(payload, None))]
        return []


def _sse(name: str, payload: dict) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


class StreamRenderer:
    """Canonical stream events → Anthropic SSE bytes for an Anthropic client."""

    def __init__(self, ctx: Context, request: Request | None):
        self.ctx = ctx
        self._started = False
        self._open: int | None = None  # Anthropic index of the open block
        self._index: dict[int, int] = {}  # canonical block index → Anthropic index
        self._kinds: dict[int, str] = {}
        self._usage: Usage | None = None
        self._finish: StreamFinish | None = None

    def _start(self, out: list, id: str = "", model: str = "", usage: Usage | None = None) -> None:
        self._started = True
        # Unknown input usage goes out as 0 here and for real in message_delta (PROTOCOLS.md §2.8).
        u = render_usage(usage)
        out.append(_sse("message_start", {"type": "message_start", "message": {
            "id": id or new_id("msg_"), "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": u}}))

    def _close_open(self, out: list) -> None:
        if self._open is not None:
            out.append(_sse("content_block_stop", {"type": "content_block_stop", "index": self._open}))
            self._open = None

    def render(self, ev, out: list) -> None:
        if isinstance(ev, Delta):
            a = self._index.get(ev.index)
            if a is None:
                return
            kind = self._kinds[ev.index]
            if kind == TOOL_CALL:
                delta = {"type": "input_json_delta", "partial_json": ev.text}
            elif kind == REASONING:
                delta = {"type": "thinking_delta", "thinking": ev.text}
            else:
                delta = {"type": "text_delta", "text": ev.text}
            out.append(_sse("content_block_delta", {"type": "content_block_delta", "index": a, "delta": delta}))
            return
        if not self._started and not isinstance(ev, (StreamError, KeepAlive)):
            if isinstance(ev, StreamStart):
                self._start(out, ev.id, ev.model, ev.usage)
                return
            self._start(out)
        if isinstance(ev, BlockStart):
            self._close_open(out)
            a = len(self._index)
            self._index[ev.index] = a
            kind = ev.kind
            self._kinds[ev.index] = kind
            if kind == TOOL_CALL:
                block = {"type": "tool_use", "id": ev.id or new_id("toolu_"), "name": ev.name or "", "input": {}}
            elif kind == REASONING:
                block = {"type": "thinking", "thinking": "", "signature": ""}
            elif kind == REDACTED:
                block = {"type": "redacted_thinking", "data": ev.data or ""}
            else:  # TEXT, REFUSAL
                block = {"type": "text", "text": ""}
            out.append(_sse("content_block_start", {"type": "content_block_start", "index": a,
                                                    "content_block": block}))
            self._open = a
        elif isinstance(ev, SignatureDelta):
            a = self._index.get(ev.index)
            if a is not None:
                out.append(_sse("content_block_delta", {"type": "content_block_delta", "index": a,
                                                        "delta": {"type": "signature_delta",
                                                                  "signature": ev.signature}}))
        elif isinstance(ev, BlockStop):
            if self._index.get(ev.index) == self._open:
                self._close_open(out)
        elif isinstance(ev, UsageUpdate):
            self._usage = ev.usage
        elif isinstance(ev, StreamFinish):
            self._close_open(out)
            self._finish = ev  # message_delta waits for a trailing usage chunk (OpenAI sends it last)
        elif isinstance(ev, StreamEnd):
            self._close_open(out)
            fin = self._finish or StreamFinish(END)
            out.append(_sse("message_delta", {
                "type": "message_delta",
                "delta": {"stop_reason": STOP_OUT.get(fin.stop_reason or END, "end_turn"),
                          "stop_sequence": fin.stop_sequence if fin.stop_reason == STOP_SEQUENCE else None},
                "usage": render_usage(self._usage)}))
            out.append(_sse("message_stop", {"type": "message_stop"}))
        elif isinstance(ev, StreamError):
            self._close_open(out)
            out.append(render_stream_error(ev.error))
        elif isinstance(ev, KeepAlive) and self._started:  # the SDK rejects any event before message_start
            out.append(b'event: ping\ndata: {"type": "ping"}\n\n')


# ---------------------------------------------------------------------------------------------
# The registry record (spoke.py states the contract; registry.py lists every record). Imported
# here, at the end, because the record holds this module: the package itself, named so that
# mypy checks it against spoke.Codec, and its wire facts.

from .. import anthropic as _codec  # noqa: E402  (this package, complete by now)
from ..spoke import SpokeRecord  # noqa: E402
from . import wire  # noqa: E402

SPOKE = SpokeRecord(codec=_codec, wire=wire)
