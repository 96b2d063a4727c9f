"""OpenAI Chat requests: client body → canonical `Request` and back out toward an OpenAI-compatible
upstream (PROTOCOLS.md §1.1)."""

from __future__ import annotations

import hashlib
import json

from .. import field_types as field
from .. import model_rules
from ..canonical import (
    Context,
    Document,
    Image,
    Message,
    Part,
    Reasoning,
    ReasoningConfig,
    Refusal,
    Request,
    ResponseFormat,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
    TranslationError,
)
from ..policy import as_dict, effort_for_budget, image_from_url, new_id, parse_data_url
from .api_errors import NAME

KNOWN_REQUEST_KEYS = {
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "n", "stop",
    "stream", "stream_options", "tools", "tool_choice", "parallel_tool_calls", "reasoning_effort",
    "response_format", "user", "safety_identifier", "seed", "presence_penalty", "frequency_penalty", "logprobs",
    "top_logprobs", "logit_bias", "functions", "function_call", "modalities",
}
# Fields that would change the answer's form or content and cannot be honoured: refuse when set.
REJECTED_FIELDS = {"audio", "web_search_options"}


def _parse_content(content, where: str) -> list:
    if content is None:
        return []
    if isinstance(content, str):
        return [Text(content)]
    if not isinstance(content, list):
        raise TranslationError(f"{where}: content must be a string or an array", param=where)
    parts: list = []
    for j, part in enumerate(content):
        here = f"{where}[{j}]"
        part = field.obj(part, here)
        kind = part.get("type")
        if kind == "text":
            parts.append(Text(field.text(part.get("text"), here + ".text") or ""))
        elif kind == "refusal":
            parts.append(Refusal(field.text(part.get("refusal"), here + ".refusal") or ""))
        elif kind == "image_url":
            image = field.obj(part.get("image_url"), here + ".image_url")
            url = field.text(image.get("url"), here + ".image_url.url") or ""
            detail = field.text(image.get("detail"), here + ".image_url.detail")
            parts.append(image_from_url(url, detail, here))
        elif kind == "file":
            file = field.obj(part.get("file"), here + ".file")
            inline = parse_data_url(field.text(file.get("file_data"), here + ".file.file_data") or "")
            if not inline:
                raise TranslationError(f"{here}: only inline file_data can be translated (not file_id)", param=here)
            parts.append(Document(media_type=inline[0], data=inline[1],
                                  title=field.text(file.get("filename"), here + ".file.filename")))
        else:
            raise TranslationError(f"{here}: content part type {kind!r} cannot be translated", param=here)
    return parts


def _parse_tool_calls(calls, where: str) -> list[ToolCall]:
    out = []
    for k, call in enumerate(field.array(calls, where)):
        here = f"{where}[{k}]"
        call = field.obj(call, here)
        fn = field.obj(call.get("function"), here + ".function")
        if call.get("type", "function") != "function":
            raise TranslationError(f"{here}: tool call type {call.get('type')!r} cannot be translated", param=here)
        args = fn.get("arguments")
        out.append(ToolCall(field.text(call.get("id"), here + ".id") or new_id("call_"),
                            field.text(fn.get("name"), here + ".function.name") or "",
                            args if isinstance(args, str) else json.dumps(args if args is not None else {})))
    return out


def parse_assistant_message(m: dict, where: str) -> list:
    parts: list = []
    blocks = m.get("thinking_blocks")  # LiteLLM's carrier for signed Anthropic thinking
    if isinstance(blocks, list) and blocks:
        for k, b in enumerate(blocks):
            here = f"{where}.thinking_blocks[{k}]"
            b = field.obj(b, here)
            if b.get("type") == "redacted_thinking":
                parts.append(Reasoning("", None, field.text(b.get("data"), here + ".data") or ""))
            else:
                parts.append(Reasoning(field.text(b.get("thinking"), here + ".thinking") or "",
                                       field.text(b.get("signature"), here + ".signature") or None))
    else:
        reasoning = m.get("reasoning_content") or m.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            parts.append(Reasoning(reasoning))
    parts.extend(_parse_content(m.get("content"), where + ".content"))
    if isinstance(m.get("refusal"), str) and m["refusal"]:
        parts.append(Refusal(m["refusal"]))
    parts.extend(_parse_tool_calls(m.get("tool_calls"), where + ".tool_calls"))
    fc = m.get("function_call")  # legacy single call
    if isinstance(fc, dict):
        parts.append(ToolCall(f"call_{fc.get('name')}", str(fc.get("name") or ""), str(fc.get("arguments") or "")))
    return parts


def parse_request(body: dict, ctx: Context) -> Request:
    if not isinstance(body, dict):
        raise TranslationError("request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise TranslationError("messages: field required (an array)", param="messages")
    req = Request(model=str(body.get("model") or ""), stream=bool(body.get("stream")))
    stream_options = field.obj(body.get("stream_options"), "stream_options")
    req.include_usage = bool(stream_options.get("include_usage"))
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        m = field.obj(m, where)
        role = m.get("role")
        if role in ("system", "developer"):
            texts = [p for p in _parse_content(m.get("content"), where + ".content") if isinstance(p, Text)]
            if req.messages:
                parts: list[Part] = list(texts)
                req.messages.append(Message("system", parts))
            else:
                req.system.extend(texts)
        elif role == "user":
            req.messages.append(Message("user", _parse_content(m.get("content"), where + ".content"),
                                        field.text(m.get("name"), where + ".name")))
        elif role == "assistant":
            req.messages.append(Message("assistant", parse_assistant_message(m, where)))
        elif role == "tool":
            content = [p for p in _parse_content(m.get("content"), where + ".content")]
            call_id = field.text(m.get("tool_call_id"), where + ".tool_call_id") or ""
            req.messages.append(Message("user", [ToolResult(call_id, content)]))
        else:
            raise TranslationError(f"{where}.role: role {role!r} cannot be translated", param=f"{where}.role")
    req.max_tokens = field.integer(body.get("max_completion_tokens"), "max_completion_tokens")
    if req.max_tokens is None:
        req.max_tokens = field.integer(body.get("max_tokens"), "max_tokens")
    req.temperature = field.number(body.get("temperature"), "temperature")
    req.top_p = field.number(body.get("top_p"), "top_p")
    req.top_k = field.integer(body.get("top_k"), "top_k")  # vLLM/llama.cpp extension
    stop = body.get("stop")
    req.stop = [stop] if isinstance(stop, str) else [s for s in field.array(stop, "stop") if isinstance(s, str)]
    tools = field.array(body.get("tools"), "tools") or [
        {"type": "function", "function": f} for f in field.array(body.get("functions"), "functions")]
    for i, t in enumerate(tools):
        here = f"tools[{i}]"
        t = field.obj(t, here)
        if t.get("type") != "function":
            raise TranslationError(f"{here}: tool type {t.get('type')!r} cannot be translated", param=here)
        fn = field.obj(t.get("function"), here + ".function")
        req.tools.append(Tool(field.text(fn.get("name"), here + ".function.name") or "",
                              field.text(fn.get("description"), here + ".function.description"),
                              field.schema(fn.get("parameters"), here + ".function.parameters"),
                              field.boolean(fn.get("strict"), here + ".function.strict")))
    req.tool_choice = _parse_tool_choice(body.get("tool_choice", body.get("function_call")), req)
    if isinstance(body.get("parallel_tool_calls"), bool):
        req.parallel_tool_calls = body["parallel_tool_calls"]
    effort = body.get("reasoning_effort")
    if isinstance(effort, str):
        req.reasoning = ReasoningConfig(effort != "none", effort=effort)
    fmt = field.obj(body.get("response_format"), "response_format")
    if fmt.get("type") == "json_object":
        req.response_format = ResponseFormat("json_object")
    elif fmt.get("type") == "json_schema":
        where = "response_format.json_schema"
        js = field.obj(fmt.get("json_schema"), where)
        req.response_format = ResponseFormat(
            "json_schema", field.schema(js.get("schema"), where + ".schema"), field.text(js.get("name"), where + ".name"),
            field.boolean(js.get("strict"), where + ".strict"), field.text(js.get("description"), where + ".description"))
    user = body.get("user") or body.get("safety_identifier")
    req.user = user if isinstance(user, str) else None
    req.n = field.integer(body.get("n"), "n")
    req.seed = field.integer(body.get("seed"), "seed")
    req.presence_penalty = field.number(body.get("presence_penalty"), "presence_penalty")
    req.frequency_penalty = field.number(body.get("frequency_penalty"), "frequency_penalty")
    req.logprobs = field.boolean(body.get("logprobs"), "logprobs")
    req.top_logprobs = field.integer(body.get("top_logprobs"), "top_logprobs")
    req.logit_bias = None if body.get("logit_bias") is None else field.obj(body["logit_bias"], "logit_bias")
    modalities = body.get("modalities")
    if isinstance(modalities, list) and any(m != "text" for m in modalities):
        raise TranslationError("modalities: only text output can be translated", param="modalities")
    for key in body.keys() - KNOWN_REQUEST_KEYS:
        if key in REJECTED_FIELDS and body[key] is not None:
            raise TranslationError(f"{key}: not supported by the upstream protocol", param=key)
        if body[key] is not None:
            ctx.warn(f"request field {key!r} dropped (no equivalent upstream)")
    extra = stream_options.keys() - {"include_usage"}
    if extra:
        ctx.warn(f"stream_options {sorted(extra)} dropped")
    return req


def _parse_tool_choice(choice, req: Request) -> ToolChoice | None:
    if choice is None:
        return None
    if choice in ("auto", "required", "none"):
        return ToolChoice(choice)
    choice = as_dict(choice)
    if choice.get("type") == "function" or "name" in choice:
        name = as_dict(choice.get("function")).get("name") or choice.get("name")
        return ToolChoice("tool", str(name))
    if choice.get("type") == "allowed_tools":
        allowed = as_dict(choice.get("allowed_tools"))
        names = {as_dict(t.get("function")).get("name") or t.get("name") for t in allowed.get("tools") or []
                 if isinstance(t, dict)}
        req.tools = [t for t in req.tools if t.name in names]  # the subset is all the upstream will see
        return ToolChoice("required" if allowed.get("mode") == "required" else "auto")
    raise TranslationError(f"tool_choice: unsupported value {choice!r}", param="tool_choice")


def _content_value(parts: list[dict]) -> str | list[dict]:
    # A lone text part goes out as a plain string: the most widely accepted form.
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts) if len(parts) <= 1 else parts
    return parts


def _render_user_parts(parts: list, where: str, ctx: Context) -> list[dict]:
    out: list[dict] = []
    for j, p in enumerate(parts):
        if isinstance(p, (Text, Refusal)):
            out.append({"type": "text", "text": p.text})
        elif isinstance(p, Image):
            url = p.url if p.data is None else f"data:{p.media_type or 'image/png'};base64,{p.data}"
            image = {"url": url}
            if p.detail:
                image["detail"] = p.detail
            out.append({"type": "image_url", "image_url": image})
        elif isinstance(p, Document):
            if p.text is not None:
                out.append({"type": "text", "text": p.text})
            elif p.data is not None:
                out.append({"type": "file", "file": {"file_data": f"data:{p.media_type};base64,{p.data}",
                                                     "filename": p.title or "document.pdf"}})
            else:
                raise TranslationError(f"{where}[{j}]: documents by URL cannot be sent to an OpenAI-compatible "
                                       "upstream", param=f"{where}[{j}]")
        elif isinstance(p, Reasoning):
            ctx.warn("reasoning from earlier turns not sent upstream")
    return out


def _render_messages(req: Request, ctx: Context) -> list[dict]:
    out: list[dict] = []
    system = "\n\n".join(t.text for t in req.system if t.text)
    if system:
        out.append({"role": "system", "content": system})
    for i, m in enumerate(req.messages):
        where = f"messages[{i}].content"
        if m.role == "system":
            out.append({"role": "system", "content": "\n\n".join(p.text for p in m.parts if isinstance(p, Text))})
        elif m.role == "user":
            # Each tool result is its own `tool` message, placed before the turn's other content.
            late_images: list[dict] = []
            for p in m.parts:
                if isinstance(p, ToolResult):
                    inner = _render_user_parts(p.content, where, ctx)
                    texts = [x["text"] for x in inner if x["type"] == "text"]
                    late_images.extend(x for x in inner if x["type"] != "text")
                    if p.is_error:
                        ctx.warn("tool_result is_error flag dropped (OpenAI tool messages have none)")
                    out.append({"role": "tool", "tool_call_id": p.tool_call_id,
                                "content": "\n".join(texts)})
            if late_images:
                ctx.warn("images in tool results moved to a user message (tool messages take text only)")
            rest = _render_user_parts([p for p in m.parts if not isinstance(p, ToolResult)], where, ctx)
            rest = late_images + rest
            if rest:
                user: dict = {"role": "user", "content": _content_value(rest)}
                if m.name:
                    user["name"] = m.name
                out.append(user)
        else:
            texts = [p.text for p in m.parts if isinstance(p, (Text, Refusal))]
            calls = [{"id": p.id, "type": "function", "function": {"name": p.name, "arguments": p.arguments or "{}"}}
                     for p in m.parts if isinstance(p, ToolCall)]
            if any(isinstance(p, Reasoning) for p in m.parts):
                ctx.warn("reasoning from earlier turns not sent upstream")
            msg: dict = {"role": "assistant", "content": "".join(texts) if texts else None}
            if calls:
                msg["tool_calls"] = calls
            if texts or calls:
                out.append(msg)
    return out


def render_request(req: Request, ctx: Context) -> dict:
    out: dict = {"model": req.model, "messages": _render_messages(req, ctx)}
    if req.max_tokens is not None:
        out["max_completion_tokens"] = req.max_tokens
    for key in ("temperature", "top_p", "n", "seed", "presence_penalty", "frequency_penalty", "logprobs",
                "top_logprobs", "logit_bias"):
        value = getattr(req, key)
        if value is not None:
            out[key] = value
    if req.top_k is not None:
        ctx.warn("top_k dropped (OpenAI Chat has no top_k)")
    if req.stop:
        out["stop"] = list(req.stop)  # always a list (a lone string breaks some servers)
    if req.tools:
        out["tools"] = []
        for t in req.tools:
            fn: dict = {"name": t.name, "parameters": t.parameters or {"type": "object", "properties": {}}}
            if t.description:
                fn["description"] = t.description
            if t.strict is not None:
                fn["strict"] = t.strict
            out["tools"].append({"type": "function", "function": fn})
        if req.tool_choice is not None:
            c = req.tool_choice
            out["tool_choice"] = {"type": "function", "function": {"name": c.name}} if c.mode == "tool" else c.mode
        if req.parallel_tool_calls is not None:
            out["parallel_tool_calls"] = req.parallel_tool_calls
    if req.reasoning is not None and req.reasoning.enabled:
        r = req.reasoning
        # Compatible servers widely accept only low/medium/high: the levels around them fold in.
        folded = {"minimal": "low", "xhigh": "high", "max": "high"}
        out["reasoning_effort"] = r.effort if r.effort in ("low", "medium", "high") else (
            effort_for_budget(r.budget_tokens) if r.effort is None else folded.get(r.effort, "high"))
    fmt = req.response_format
    if fmt is not None and fmt.kind == "json_schema":
        js: dict = {"name": fmt.name or "response", "schema": fmt.schema or {}}
        if fmt.strict is not None:
            js["strict"] = fmt.strict
        if fmt.description:
            js["description"] = fmt.description
        out["response_format"] = {"type": "json_schema", "json_schema": js}
    elif fmt is not None and fmt.kind == "json_object":
        out["response_format"] = {"type": "json_object"}
    if req.user:
        if len(req.user) > 64:  # OpenAI caps end-user ids; Claude Code's metadata.user_id is longer
            ctx.warn("user id longer than 64 characters sent as its SHA-256")
            out["user"] = hashlib.sha256(req.user.encode()).hexdigest()
        else:
            out["user"] = req.user
    if req.stream:
        out["stream"] = True
        # Always ask for usage (metering); the translator drops it if the client did not ask.
        out["stream_options"] = {"include_usage": True}
    return model_rules.apply(NAME, out, ctx)  # what the target model refuses (reasoning models' sampling)
