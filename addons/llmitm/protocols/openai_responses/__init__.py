"""OpenAI Responses spoke (`POST /v1/responses`): requests, responses, stream events and errors to and
from the canonical model. Field reference: PROTOCOLS.md §1.2.

llmitm is stateless: what needs OpenAI's server-side store (`previous_response_id`, `conversation`,
`background`, `store: true`, `item_reference` items, prompt templates) is refused with a 400 naming the
field. Anthropic's signed thinking is handed to a Responses client inside the reasoning item's
`encrypted_content`, prefixed so that it is recognised (and turned back into a signature) when the
client sends the item back in its next `input`; OpenAI's own encrypted reasoning is not carried.
"""

from __future__ import annotations

import hashlib
import json
import time

from .. import errors
from ..canonical import (
    CONTENT_FILTER,
    CONTEXT_WINDOW,
    END,
    MAX_TOKENS,
    PAUSE,
    REASONING,
    REDACTED,
    REFUSAL,
    TEXT,
    TOOL_CALL,
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
    effort_for_budget,
    new_id,
    parse_data_url,
)
from ..openai_chat import error_from_payload as openai_error  # OpenAI's error object is the same in both protocols

NAME = "openai-responses"
PATH = "/v1/responses"
REQUEST_HEADERS = {"content-type": "application/json"}

# Prefixes of reasoning items' `encrypted_content` that carry a foreign reasoning signature (Anthropic's)
# or Anthropic's redacted thinking, so that they are recognised when the client sends the item back.
SIGNATURE_PREFIX = "llmitm.signature:"
REDACTED_PREFIX = "llmitm.redacted:"
# Stateful features: they need OpenAI's response store, which llmitm does not have.
_STATEFUL = {"previous_response_id", "conversation", "prompt"}
_KNOWN_REQUEST_KEYS = {
    "model", "input", "instructions", "max_output_tokens", "temperature", "top_p", "top_logprobs", "tools",
    "tool_choice", "parallel_tool_calls", "reasoning", "text", "include", "stream", "user", "safety_identifier",
    "store", "background", "previous_response_id", "conversation", "prompt", "truncation", "stream_options",
}
_INCOMPLETE_IN = {"max_output_tokens": MAX_TOKENS, "content_filter": CONTENT_FILTER}
_OUTPUT_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
MIN_OUTPUT_TOKENS = 16  # OpenAI rejects a smaller max_output_tokens


def request_path(req: Request) -> str:
    return PATH


# ---------------------------------------------------------------------------------------------
# Usage and errors


def parse_usage(u: dict) -> Usage:
    u = as_dict(u)
    idet = as_dict(u.get("input_tokens_details"))
    odet = as_dict(u.get("output_tokens_details"))
    reasoning = odet.get("reasoning_tokens")
    return Usage(
        input_total=u.get("input_tokens") or 0,  # includes cached tokens (PROTOCOLS.md §2.8)
        cached_read=idet.get("cached_tokens") or 0,
        cache_write=idet.get("cache_write_tokens") or 0,
        output_total=u.get("output_tokens") or 0,
        reasoning=reasoning if isinstance(reasoning, int) else None,
    )


def render_usage(u: Usage | None) -> dict:
    # Always an object: strict clients (vercel/ai's schema) require usage on completed/incomplete, and
    # the Anthropic spoke likewise reports an unknown usage as zeros.
    u = u or Usage()
    idet = {"cached_tokens": u.cached_read, "cache_write_tokens": u.cache_write}  # openai>=2.x declares both
    return {
        "input_tokens": u.input_total, "input_tokens_details": idet, "output_tokens": u.output_total,
        # Anthropic does not split reasoning out; the field is required, so 0 stands for "not reported".
        "output_tokens_details": {"reasoning_tokens": u.reasoning or 0},
        "total_tokens": u.input_total + u.output_total,
    }


def parse_error(status: int | None, body: bytes) -> ApiError:
    """An error body (`{"error": {...}}`), or a response object with status `failed`; with `status`
    None (inside a 200) the status follows the error code."""
    try:
        payload = json.loads(body)
    except ValueError:
        return ApiError(status or 502, body.decode("utf-8", "replace")[:1000] or f"upstream returned HTTP {status}")
    payload = as_dict(payload)
    if payload.get("error"):
        return openai_error(payload["error"], status)
    if isinstance(payload.get("response"), dict) and payload["response"].get("error"):  # a response.failed event
        return openai_error(payload["response"]["error"], status)
    message = payload.get("message") or payload.get("detail") or json.dumps(payload)[:1000]
    return ApiError(status or 502, message if isinstance(message, str) else json.dumps(message)[:1000])


def render_error(err: ApiError) -> bytes:
    return errors.render_error(NAME, err.status, err.message, param=err.param, code=err.code or err.type)


def _stream_error_payload(err: ApiError, sequence_number: int) -> dict:
    # Both shapes at once: recordings nest the error (and the openai SDK raises on it), SDK 3.x's
    # ResponseErrorEvent declares code/message/param at the top level (PROTOCOLS.md §1.2).
    code = err.code or err.type or errors.error_type_for(NAME, err.status)  # clients require a string code
    body = errors.error_body(NAME, err.status, err.message, param=err.param, code=code)["error"]
    return {"type": "error", "sequence_number": sequence_number, "code": body["code"], "message": err.message,
            "param": err.param, "error": body}


def render_stream_error(err: ApiError) -> bytes:
    return _sse("error", _stream_error_payload(err, 0))


def _sse(name: str, payload: dict) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


# ---------------------------------------------------------------------------------------------
# Requests (Responses client → canonical)


def _parse_content(content, where: str) -> list:
    if content is None:
        return []
    if isinstance(content, str):
        return [Text(content)]
    if not isinstance(content, list):
        raise TranslationError(f"{where}: content must be a string or an array", param=where)
    parts: list = []
    for j, part in enumerate(content):
        part = as_dict(part)
        kind = part.get("type")
        here = f"{where}[{j}]"
        if kind in ("input_text", "output_text", "text", "summary_text", "reasoning_text"):
            parts.append(Text(part.get("text") or ""))
        elif kind == "refusal":
            parts.append(Refusal(part.get("refusal") or ""))
        elif kind == "input_image":
            if part.get("file_id"):
                raise TranslationError(f"{here}: images by file_id cannot be translated (send a URL or data URL)",
                                       param=here)
            url = str(part.get("image_url") or "")
            detail = part.get("detail")
            detail = None if detail in (None, "auto") else detail
            inline = parse_data_url(url)
            if inline:
                parts.append(Image(media_type=inline[0], data=inline[1], detail=detail))
            elif url.startswith(("http://", "https://")):
                parts.append(Image(url=url, detail=detail))
            else:
                raise TranslationError(f"{here}: image_url must be an http(s) or base64 data URL", param=here)
        elif kind == "input_file":
            if part.get("file_id"):
                raise TranslationError(f"{here}: files by file_id cannot be translated (send file_data)", param=here)
            inline = parse_data_url(str(part.get("file_data") or ""))
            if inline:
                parts.append(Document(media_type=inline[0], data=inline[1], title=part.get("filename")))
            elif isinstance(part.get("file_url"), str):
                parts.append(Document(url=part["file_url"], title=part.get("filename")))
            else:
                raise TranslationError(f"{here}: input_file needs file_data (a base64 data URL) or file_url",
                                       param=here)
        else:
            raise TranslationError(f"{here}: content part type {kind!r} cannot be translated", param=here)
    return parts


def _parse_reasoning_item(item: dict) -> Reasoning:
    texts = [as_dict(p).get("text") or "" for p in item.get("content") or [] if isinstance(p, dict)]
    if not any(texts):
        texts = [as_dict(p).get("text") or "" for p in item.get("summary") or [] if isinstance(p, dict)]
    text = "\n\n".join(t for t in texts if t)
    enc = item.get("encrypted_content")
    if isinstance(enc, str) and enc.startswith(REDACTED_PREFIX):
        return Reasoning("", None, enc[len(REDACTED_PREFIX):])
    if isinstance(enc, str) and enc.startswith(SIGNATURE_PREFIX):
        return Reasoning(text, enc[len(SIGNATURE_PREFIX):] or None)
    return Reasoning(text)  # OpenAI's own encrypted reasoning is bound to OpenAI: not carried


def _parse_input(items, req: Request, ctx: Context) -> None:
    if isinstance(items, str):
        req.messages.append(Message("user", [Text(items)]))
        return
    if not isinstance(items, list):
        raise TranslationError("input: field required (a string or an array of items)", param="input")

    def turn(role: str) -> Message:
        # Consecutive items of one side (assistant text, reasoning, function calls; tool outputs and
        # user text) form one canonical turn.
        if req.messages and req.messages[-1].role == role and role != "system":
            return req.messages[-1]
        req.messages.append(Message(role))
        return req.messages[-1]

    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise TranslationError(f"{where}: an input item must be an object", param=where)
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            role = item.get("role")
            parts = _parse_content(item.get("content"), where + ".content")
            if role in ("system", "developer"):
                texts = [p for p in parts if isinstance(p, Text)]
                if req.messages:
                    req.messages.append(Message("system", list(texts)))
                else:
                    req.system.extend(texts)
            elif role == "user":
                turn("user").parts.extend(parts)
            elif role == "assistant":
                turn("assistant").parts.extend(parts)
            else:
                raise TranslationError(f"{where}.role: role {role!r} cannot be translated", param=f"{where}.role")
        elif kind == "function_call":
            args = item.get("arguments")
            turn("assistant").parts.append(ToolCall(
                str(item.get("call_id") or item.get("id") or new_id("call_")), str(item.get("name") or ""),
                args if isinstance(args, str) else json.dumps(args if args is not None else {})))
        elif kind == "custom_tool_call":
            turn("assistant").parts.append(ToolCall(
                str(item.get("call_id") or item.get("id") or new_id("call_")), str(item.get("name") or ""),
                json.dumps({"input": item.get("input") if isinstance(item.get("input"), str) else ""})))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            output = item.get("output")
            if isinstance(output, str):
                content: list = [Text(output)]
            elif isinstance(output, list):
                content = _parse_content(output, where + ".output")
            else:
                content = [] if output is None else [Text(json.dumps(output))]
            turn("user").parts.append(ToolResult(str(item.get("call_id") or ""), content))
        elif kind == "reasoning":
            reasoning = _parse_reasoning_item(item)
            if reasoning.text or reasoning.signature or reasoning.redacted is not None:
                turn("assistant").parts.append(reasoning)
            elif item.get("encrypted_content"):
                ctx.warn("OpenAI encrypted reasoning dropped from history (bound to OpenAI)")
        elif kind == "item_reference":
            raise TranslationError(f"{where}: item_reference needs OpenAI's response store, which this upstream "
                                   "does not have (send the items themselves)", param=where)
        else:
            raise TranslationError(f"{where}: input item type {kind!r} cannot be translated", param=where)


def _custom_tool(t: dict, ctx: Context) -> Tool:
    """A custom (free-text input) tool as a function with one string argument `input`; the grammar,
    which no other protocol can enforce, is handed to the model in the description."""
    name = str(t.get("name") or "")
    ctx.freeform_tools.add(name)
    fmt = as_dict(t.get("format"))
    description = t.get("description") if isinstance(t.get("description"), str) else ""
    hint = "The raw input for this tool, as free text."
    if fmt.get("type") == "grammar":
        ctx.warn(f"custom tool {name!r}: its {fmt.get('syntax')} grammar is not enforced (sent as a function "
                 "with one string argument)")
        hint = f"Free text that must match this {fmt.get('syntax')} grammar:\n{fmt.get('definition') or ''}"
    return Tool(name, description or None, {"type": "object", "properties": {"input": {"type": "string",
                                                                                         "description": hint}},
                                            "required": ["input"], "additionalProperties": False})


def _custom_input(arguments: str) -> str:
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


def _parse_tool_choice(choice, req: Request) -> ToolChoice | None:
    if choice is None:
        return None
    if choice in ("auto", "required", "none"):
        return ToolChoice(choice)
    choice = as_dict(choice)
    if choice.get("type") in ("function", "custom"):
        return ToolChoice("tool", str(choice.get("name") or ""))
    if choice.get("type") == "allowed_tools":
        tools = [as_dict(t) for t in choice.get("tools") or []]
        if any(t.get("type") not in ("function", "custom") for t in tools):
            raise TranslationError("tool_choice.tools: only function tools can be translated", param="tool_choice")
        names = {t.get("name") for t in tools}
        req.tools = [t for t in req.tools if t.name in names]  # the subset is all the upstream will see
        return ToolChoice("required" if choice.get("mode") == "required" else "auto")
    raise TranslationError(f"tool_choice: {choice.get('type')!r} cannot be translated (only function tools)",
                           param="tool_choice")


def parse_request(body: dict, ctx: Context) -> Request:
    if not isinstance(body, dict):
        raise TranslationError("request body must be a JSON object")
    for key in sorted(_STATEFUL):
        if body.get(key) is not None:
            raise TranslationError(f"{key}: needs OpenAI's server-side state, which this upstream does not have "
                                   "(send the whole conversation in input)", param=key)
    if body.get("background"):
        raise TranslationError("background: background responses need OpenAI's response store, which this "
                               "upstream does not have", param="background")
    if body.get("store") is True:
        raise TranslationError("store: responses cannot be stored for later retrieval on this upstream "
                               "(send store: false and the whole conversation in input)", param="store")
    req = Request(model=str(body.get("model") or ""), stream=bool(body.get("stream")), include_usage=True)
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        if instructions:
            req.system.append(Text(instructions))
    elif isinstance(instructions, list):
        sub = Request(model="")
        _parse_input(instructions, sub, ctx)
        req.system.extend(sub.system)
        req.system.extend(p for m in sub.messages for p in m.parts if isinstance(p, Text))
    if "input" not in body:
        raise TranslationError("input: field required", param="input")
    _parse_input(body["input"], req, ctx)
    if isinstance(body.get("max_output_tokens"), int):
        req.max_tokens = body["max_output_tokens"]
    req.temperature = body.get("temperature")
    req.top_p = body.get("top_p")
    include = [x for x in body.get("include") or [] if isinstance(x, str)]
    if body.get("top_logprobs") or "message.output_text.logprobs" in include:
        raise TranslationError("top_logprobs: log probabilities cannot be translated", param="top_logprobs")
    for x in include:
        if x != "reasoning.encrypted_content":
            ctx.warn(f"include {x!r} dropped (no equivalent upstream)")
    for i, t in enumerate(body.get("tools") or []):
        t = as_dict(t)
        if t.get("type") == "custom":
            req.tools.append(_custom_tool(t, ctx))
            continue
        if t.get("type") != "function":
            raise TranslationError(f"tools[{i}]: tool type {t.get('type')!r} cannot be translated "
                                   "(only function and custom tools)", param=f"tools[{i}]")
        req.tools.append(Tool(str(t.get("name") or ""), t.get("description"), t.get("parameters"), t.get("strict")))
    req.tool_choice = _parse_tool_choice(body.get("tool_choice"), req)
    if isinstance(body.get("parallel_tool_calls"), bool):
        req.parallel_tool_calls = body["parallel_tool_calls"]
    reasoning = as_dict(body.get("reasoning"))
    effort = reasoning.get("effort")
    if isinstance(effort, str):
        req.reasoning = ReasoningConfig(effort != "none", effort=effort)
    elif reasoning.get("summary") or reasoning.get("generate_summary"):
        req.reasoning = ReasoningConfig(True)  # a summary asked for: reasoning at the default effort
    text = as_dict(body.get("text"))
    fmt = as_dict(text.get("format"))
    if fmt.get("type") == "json_object":
        req.response_format = ResponseFormat("json_object")
    elif fmt.get("type") == "json_schema":
        req.response_format = ResponseFormat("json_schema", fmt.get("schema"), fmt.get("name"), fmt.get("strict"),
                                             fmt.get("description"))
    elif fmt and fmt.get("type") != "text":
        raise TranslationError(f"text.format: type {fmt.get('type')!r} cannot be translated", param="text.format")
    if text.get("verbosity") not in (None, "medium"):
        ctx.warn(f"text.verbosity {text['verbosity']!r} dropped (no equivalent upstream)")
    if body.get("truncation") not in (None, "disabled"):
        ctx.warn(f"truncation {body['truncation']!r} dropped (the conversation is sent whole)")
    user = body.get("user") or body.get("safety_identifier")
    req.user = user if isinstance(user, str) else None
    if "store" not in body:
        ctx.warn("response not stored (store defaults to true on OpenAI; later retrieval will not find it)")
    for key in body.keys() - _KNOWN_REQUEST_KEYS:
        if body[key] is not None:
            ctx.warn(f"request field {key!r} dropped (no equivalent upstream)")
    return req


# ---------------------------------------------------------------------------------------------
# Requests (canonical → Responses upstream)


def _render_user_parts(parts: list, where: str, ctx: Context) -> list[dict]:
    out: list[dict] = []
    for p in parts:
        if isinstance(p, (Text, Refusal)):
            out.append({"type": "input_text", "text": p.text})
        elif isinstance(p, Image):
            url = p.url if p.data is None else f"data:{p.media_type or 'image/png'};base64,{p.data}"
            out.append({"type": "input_image", "image_url": url, "detail": p.detail or "auto"})
        elif isinstance(p, Document):
            if p.text is not None:
                out.append({"type": "input_text", "text": p.text})
            elif p.data is not None:
                out.append({"type": "input_file", "file_data": f"data:{p.media_type};base64,{p.data}",
                            "filename": p.title or "document.pdf"})
            else:
                file: dict = {"type": "input_file", "file_url": p.url or ""}
                if p.title:
                    file["filename"] = p.title
                out.append(file)
        elif isinstance(p, Reasoning):
            ctx.warn("reasoning from earlier turns not sent upstream")
    return out


def _render_input(req: Request, ctx: Context) -> list[dict]:
    out: list[dict] = []
    for i, m in enumerate(req.messages):
        where = f"messages[{i}].content"
        if m.role == "system":
            out.append({"type": "message", "role": "system",
                        "content": "\n\n".join(p.text for p in m.parts if isinstance(p, Text))})
        elif m.role == "user":
            for p in m.parts:
                if isinstance(p, ToolResult):
                    inner = _render_user_parts(p.content, where, ctx)
                    if p.is_error:
                        ctx.warn("tool_result is_error flag dropped (function_call_output has none)")
                    output: str | list = ("".join(x["text"] for x in inner)
                                          if all(x["type"] == "input_text" for x in inner) else inner)
                    out.append({"type": "function_call_output", "call_id": p.tool_call_id, "output": output})
            rest = _render_user_parts([p for p in m.parts if not isinstance(p, ToolResult)], where, ctx)
            if rest:
                out.append({"type": "message", "role": "user", "content": rest})
        else:
            texts: list[str] = []  # a run of text up to the next call is one assistant message
            for p in m.parts:
                if isinstance(p, (Text, Refusal)):
                    texts.append(p.text)
                elif isinstance(p, ToolCall):
                    if texts:
                        out.append({"type": "message", "role": "assistant", "content": "".join(texts)})
                        texts = []
                    out.append({"type": "function_call", "call_id": p.id, "name": p.name,
                                "arguments": p.arguments or "{}"})
                elif isinstance(p, Reasoning):
                    ctx.warn("reasoning from earlier turns not sent upstream")
            if texts:
                out.append({"type": "message", "role": "assistant", "content": "".join(texts)})
    return out


def render_request(req: Request, ctx: Context) -> dict:
    if req.n not in (None, 1):
        raise TranslationError("n: only one choice (n=1) is supported by OpenAI Responses", param="n")
    if req.logprobs or req.top_logprobs:
        raise TranslationError("logprobs: log probabilities cannot be translated", param="logprobs")
    if req.logit_bias:
        raise TranslationError("logit_bias: not supported by OpenAI Responses", param="logit_bias")
    if req.stop:
        raise TranslationError("stop: OpenAI Responses has no stop sequences", param="stop")
    if req.seed is not None:
        ctx.warn("seed dropped (OpenAI Responses has no seed)")
    if req.presence_penalty or req.frequency_penalty:
        ctx.warn("presence_penalty/frequency_penalty dropped (OpenAI Responses has no penalties)")
    if req.top_k is not None:
        ctx.warn("top_k dropped (OpenAI Responses has no top_k)")
    out: dict = {"model": req.model, "input": _render_input(req, ctx)}
    system = "\n\n".join(t.text for t in req.system if t.text)
    if system:
        out["instructions"] = system
    if req.max_tokens is not None:
        if req.max_tokens < MIN_OUTPUT_TOKENS:
            ctx.warn(f"max_output_tokens raised to {MIN_OUTPUT_TOKENS} (OpenAI Responses' minimum)")
        out["max_output_tokens"] = max(req.max_tokens, MIN_OUTPUT_TOKENS)
    if req.temperature is not None:
        out["temperature"] = req.temperature
    if req.top_p is not None:
        out["top_p"] = req.top_p
    if req.tools:
        out["tools"] = []
        for t in req.tools:
            tool: dict = {"type": "function", "name": t.name,
                          "parameters": t.parameters or {"type": "object", "properties": {}}}
            if t.description:
                tool["description"] = t.description
            # Responses defaults strict to true, which rejects most non-OpenAI schemas: say it explicitly.
            tool["strict"] = bool(t.strict)
            out["tools"].append(tool)
        if req.tool_choice is not None:
            c = req.tool_choice
            out["tool_choice"] = {"type": "function", "name": c.name} if c.mode == "tool" else c.mode
        if req.parallel_tool_calls is not None:
            out["parallel_tool_calls"] = req.parallel_tool_calls
    if req.reasoning is not None and req.reasoning.enabled:
        r = req.reasoning
        effort = r.effort if r.effort in _OUTPUT_EFFORTS else (
            effort_for_budget(r.budget_tokens) if r.effort is None else "high")
        out["reasoning"] = {"effort": effort, "summary": "auto"}
    fmt = req.response_format
    if fmt is not None and fmt.kind == "json_schema":
        js: dict = {"type": "json_schema", "name": fmt.name or "response", "schema": fmt.schema or {}}
        if fmt.strict is not None:
            js["strict"] = fmt.strict
        if fmt.description:
            js["description"] = fmt.description
        out["text"] = {"format": js}
    elif fmt is not None and fmt.kind == "json_object":
        out["text"] = {"format": {"type": "json_object"}}
    if req.user:
        if len(req.user) > 64:
            ctx.warn("user id longer than 64 characters sent as its SHA-256")
            out["user"] = hashlib.sha256(req.user.encode()).hexdigest()
        else:
            out["user"] = req.user
    out["store"] = False  # llmitm never retrieves it
    if req.stream:
        out["stream"] = True
    return out


# ---------------------------------------------------------------------------------------------
# Non-stream responses


def _stop_from(payload: dict, ctx: Context) -> str | None:
    status = payload.get("status")
    if status == "incomplete":
        reason = as_dict(payload.get("incomplete_details")).get("reason")
        stop = _INCOMPLETE_IN.get(str(reason))
        if stop is None:
            ctx.warn(f"incomplete response (reason {reason!r}) reported as cut off by the output limit")
            stop = MAX_TOKENS
        return stop
    if status not in (None, "completed"):
        ctx.warn(f"response status {status!r} reported as end of turn")
    return END


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
            reasoning = _parse_reasoning_item(item)
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
        stop_reason=_stop_from(body, ctx), usage=parse_usage(usage) if isinstance(usage, dict) else None,
        created=body.get("created_at") if isinstance(body.get("created_at"), int) else None,
    )


def _response_id(raw: str) -> str:
    return raw if raw.startswith("resp_") else "resp_" + (raw or new_id(""))


def _status(stop: str | None, ctx: Context) -> tuple[str, dict | None]:
    if stop in (MAX_TOKENS, CONTEXT_WINDOW):
        return "incomplete", {"reason": "max_output_tokens"}
    if stop == CONTENT_FILTER:
        return "incomplete", {"reason": "content_filter"}
    if stop == PAUSE:
        ctx.warn("Anthropic pause_turn reported as a completed response")
    return "completed", None


def _envelope(id: str, model: str, created: int, request: Request | None) -> dict:
    """The response object's fields besides status, output and usage (echoing the request)."""
    req = request
    tools = [{"type": "function", "name": t.name, "description": t.description,
              "parameters": t.parameters or {"type": "object", "properties": {}}, "strict": bool(t.strict)}
             for t in (req.tools if req else [])]
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


def _reasoning_item(id: str, text: str, signature: str | None, redacted: str | None) -> dict:
    item: dict = {"id": id, "type": "reasoning",
                  "summary": [{"type": "summary_text", "text": text}] if text else []}
    if redacted is not None:
        item["encrypted_content"] = REDACTED_PREFIX + redacted
    elif signature:
        item["encrypted_content"] = SIGNATURE_PREFIX + signature
    return item


def _text_part(text: str) -> dict:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _message_item(id: str, content: list[dict], status: str = "completed") -> dict:
    return {"id": id, "type": "message", "status": status, "role": "assistant", "content": content}


def _call_item_id(call_id: str, prefix: str = "fc_") -> str:
    return prefix + call_id.removeprefix("call_").removeprefix("toolu_")


def _call_status(arguments: str, stop: str | None) -> str:
    if stop in (MAX_TOKENS, CONTEXT_WINDOW):
        try:
            json.loads(arguments)
        except ValueError:
            return "incomplete"  # cut off by the output limit: not a call to run
    return "completed"


def render_response(resp: Response, ctx: Context, request: Request | None = None) -> dict:
    rid = _response_id(resp.id)
    suffix = rid.removeprefix("resp_")
    output: list[dict] = []
    message: dict | None = None
    for k, p in enumerate(resp.parts):
        if isinstance(p, (Text, Refusal)):
            if message is None:
                message = _message_item(f"msg_{k}_{suffix}", [])
                output.append(message)
            content = message["content"]
            if isinstance(p, Text):
                if content and content[-1]["type"] == "output_text":
                    content[-1]["text"] += p.text  # consecutive text blocks: one output_text
                else:
                    content.append(_text_part(p.text))
            else:
                content.append({"type": "refusal", "refusal": p.text})
            continue
        message = None
        if isinstance(p, Reasoning):
            output.append(_reasoning_item(f"rs_{k}_{suffix}", p.text, p.signature, p.redacted))
        elif isinstance(p, ToolCall) and p.name in ctx.freeform_tools:
            output.append({"id": _call_item_id(p.id, "ctc_"), "type": "custom_tool_call",
                           "status": _call_status(p.arguments, resp.stop_reason), "call_id": p.id, "name": p.name,
                           "input": _custom_input(p.arguments)})
        elif isinstance(p, ToolCall):
            args = p.arguments or "{}"
            output.append({"id": _call_item_id(p.id), "type": "function_call", "status": _call_status(args, resp.stop_reason),
                           "arguments": args, "call_id": p.id, "name": p.name})
    status, incomplete = _status(resp.stop_reason, ctx)
    out = _envelope(rid, resp.model, int(time.time()) if resp.created is None else resp.created,
                    request)
    out.update(status=status, incomplete_details=incomplete, output=output, usage=render_usage(resp.usage))
    return out


# ---------------------------------------------------------------------------------------------
# Streams (Responses upstream → canonical)


class StreamParser:
    """Responses stream events → canonical stream events. Everything is read from the payload's
    `type` (the `event:` line is only a fallback); text and arguments that a backend sends only in the
    `.done` events (or only in `output_item.done`) are recovered from there."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._started = False
        self._next = 0  # next canonical block index
        self._open: int | None = None  # open text/reasoning/refusal block
        self._blocks: dict[tuple, int] = {}  # (output_index, content key) → canonical block index
        self._kinds: dict[int, str] = {}
        self._sent: dict[int, str] = {}  # canonical block index → text/arguments emitted so far
        self._stopped: set[int] = set()
        self._items: dict[int, str] = {}  # output_index → item type
        self._rpart: dict[int, tuple] = {}  # reasoning output_index → (part key, text of that part)
        self._finished = False

    # -- helpers

    def _start(self, payload: dict, out: list) -> None:
        if not self._started:
            self._started = True
            resp = as_dict(payload.get("response"))
            out.append(StreamStart(str(resp.get("id") or ""), str(resp.get("model") or "")))

    def _close_open(self, out: list) -> None:
        if self._open is not None:
            self._stop(self._open, out)

    def _stop(self, index: int, out: list) -> None:
        if index not in self._stopped:
            self._stopped.add(index)
            out.append(BlockStop(index))
        if self._open == index:
            self._open = None

    def _block(self, key: tuple, kind: str, out: list, **kw) -> int:
        index = self._blocks.get(key)
        if index is not None:
            return index
        self._close_open(out)
        index = self._next
        self._next += 1
        self._blocks[key] = index
        self._kinds[index] = kind
        self._sent[index] = ""
        out.append(BlockStart(index, kind, **kw))
        if kind != TOOL_CALL:
            self._open = index
        return index

    def _delta(self, index: int, text: str, out: list) -> None:
        if text and index not in self._stopped:
            self._sent[index] += text
            out.append(Delta(index, text))

    def _complete(self, index: int, full, out: list) -> None:
        """A `.done` event's full text: emit what the deltas did not already carry."""
        if not isinstance(full, str) or index in self._stopped:
            return
        sent = self._sent[index]
        if full.startswith(sent):
            self._delta(index, full[len(sent):], out)
        elif full != sent:
            self.ctx.warn("a stream's final text differed from its deltas; the deltas were kept")

    def _text_key(self, payload: dict) -> tuple:
        return (payload.get("output_index", 0), "c", payload.get("content_index", 0))

    def _reasoning_block(self, payload: dict, out: list) -> int:
        """The one canonical block of a reasoning item; its summary / reasoning_text parts are
        joined with a blank line. `_rpart[output_index]` = (current part key, its text so far)."""
        oi = payload.get("output_index", 0)
        index = self._block((oi, "r"), REASONING, out)
        part = ("s", payload.get("summary_index", 0)) if "summary_index" in payload else (
            "t", payload.get("content_index", 0))
        current = self._rpart.get(oi)
        if current is None or current[0] != part:
            if self._sent[index]:
                self._delta(index, "\n\n", out)
            self._rpart[oi] = (part, "")
        return index

    def _reasoning_delta(self, payload: dict, text: str, out: list) -> None:
        index = self._reasoning_block(payload, out)
        if text and index not in self._stopped:
            oi = payload.get("output_index", 0)
            part, sofar = self._rpart[oi]
            self._rpart[oi] = (part, sofar + text)
            self._delta(index, text, out)

    def _item_done(self, oi: int, item: dict, out: list) -> None:
        kind = item.get("type")
        if kind == "function_call":
            index = self._blocks.get((oi, "f"))
            if index is None:
                index = self._tool_start(oi, item, out)
            self._complete(index, item.get("arguments"), out)
            self._stop(index, out)
        elif kind == "message":
            for j, c in enumerate(item.get("content") or []):
                c = as_dict(c)
                key = (oi, "c", j)
                ctype = c.get("type")
                if ctype not in ("output_text", "refusal"):
                    continue
                full = c.get("text") if ctype == "output_text" else c.get("refusal")
                if key not in self._blocks and not full:
                    continue
                index = self._block(key, TEXT if ctype == "output_text" else REFUSAL, out)
                self._complete(index, full, out)
                self._stop(index, out)
        elif kind == "reasoning":
            index = self._blocks.get((oi, "r"))
            if index is None:
                r = _parse_reasoning_item(item)
                if r.text:
                    index = self._block((oi, "r"), REASONING, out)
                    self._delta(index, r.text, out)
            if index is not None:
                self._stop(index, out)

    def _tool_start(self, oi: int, item: dict, out: list) -> int:
        self._close_open(out)
        index = self._block((oi, "f"), TOOL_CALL, out, id=str(item.get("call_id") or item.get("id") or new_id("call_")),
                            name=str(item.get("name") or ""))
        args = item.get("arguments")
        if isinstance(args, str) and args:
            self._delta(index, args, out)
        return index

    def _finish(self, payload: dict, out: list) -> None:
        resp = as_dict(payload.get("response"))
        if not self._blocks:  # a backend that put everything only in the final response object
            for oi, item in enumerate(resp.get("output") or []):
                item = as_dict(item)
                if item.get("type") in ("message", "function_call", "reasoning"):
                    self._item_done(oi, item, out)
        for index in list(self._blocks.values()):
            self._stop(index, out)
        if isinstance(resp.get("usage"), dict):
            out.append(UsageUpdate(parse_usage(resp["usage"])))
        out.append(StreamFinish(_stop_from(resp, self.ctx)))
        out.append(StreamEnd())
        self._finished = True

    # -- events

    def feed(self, event: str | None, data: str) -> list:
        if data == "[DONE]":
            return []
        payload = json.loads(data)
        if not isinstance(payload, dict):
            return []
        kind = payload.get("type") or event
        out: list = []
        if kind == "error":  # nested (recordings) or top-level (SDK 3.x ResponseErrorEvent) fields
            err = payload.get("error")
            if not isinstance(err, dict):
                err = {k: payload[k] for k in ("code", "message", "param") if k in payload}
            return [StreamError(openai_error(err, None))]
        if kind == "response.failed":
            resp = as_dict(payload.get("response"))
            return [StreamError(openai_error(resp.get("error") or "the upstream response failed", None))]
        if kind in ("response.created", "response.in_progress", "response.queued"):
            self._start(payload, out)
            return out
        if not self._started:
            self._start(payload, out)
        if kind == "response.output_text.delta":
            self._delta(self._block(self._text_key(payload), TEXT, out), payload.get("delta") or "", out)
        elif kind == "response.function_call_arguments.delta":
            oi = payload.get("output_index", 0)
            index = self._blocks.get((oi, "f"))
            if index is None:
                index = self._tool_start(oi, {"id": payload.get("item_id")}, out)
            self._delta(index, payload.get("delta") or "", out)
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            self._reasoning_delta(payload, payload.get("delta") or "", out)
        elif kind == "response.refusal.delta":
            self._delta(self._block(self._text_key(payload), REFUSAL, out), payload.get("delta") or "", out)
        elif kind == "response.output_item.added":
            item = as_dict(payload.get("item"))
            oi = payload.get("output_index", 0)
            self._items[oi] = str(item.get("type"))
            if item.get("type") == "function_call":
                self._tool_start(oi, item, out)
            elif item.get("type") not in ("message", "reasoning"):
                self.ctx.warn(f"output item type {item.get('type')!r} dropped (no equivalent for the client)")
        elif kind == "response.content_part.added":
            part = as_dict(payload.get("part"))
            if part.get("type") in ("output_text", "refusal"):
                index = self._block(self._text_key(payload), TEXT if part["type"] == "output_text" else REFUSAL, out)
                self._delta(index, part.get("text") or part.get("refusal") or "", out)
        elif kind in ("response.output_text.done", "response.refusal.done"):
            key = self._text_key(payload)
            full = payload.get("text") if kind == "response.output_text.done" else payload.get("refusal")
            if key in self._blocks or full:
                index = self._block(key, TEXT if kind == "response.output_text.done" else REFUSAL, out)
                self._complete(index, full, out)
        elif kind == "response.content_part.done":
            index = self._blocks.get(self._text_key(payload))
            if index is not None:
                self._stop(index, out)
        elif kind == "response.function_call_arguments.done":
            # Some backends send the arguments only here (BerriAI/litellm#25321 ignored this event).
            oi = payload.get("output_index", 0)
            index = self._blocks.get((oi, "f"))
            if index is None:
                index = self._tool_start(oi, {"id": payload.get("item_id"), "name": payload.get("name")}, out)
            self._complete(index, payload.get("arguments"), out)
        elif kind in ("response.reasoning_summary_text.done", "response.reasoning_text.done"):
            # The part's full text: emit what its deltas did not carry.
            full = payload.get("text")
            if isinstance(full, str) and full:
                oi = payload.get("output_index", 0)
                index = self._reasoning_block(payload, out)
                sofar = self._rpart[oi][1]
                if full.startswith(sofar):
                    self._reasoning_delta(payload, full[len(sofar):], out)
        elif kind == "response.output_item.done":
            self._item_done(payload.get("output_index", 0), as_dict(payload.get("item")), out)
        elif kind in ("response.completed", "response.incomplete"):
            self._finish(payload, out)
        elif kind == "response.output_text.annotation.added":
            self.ctx.warn("annotations (citations) dropped (no equivalent for the client)")
        # Everything else (hosted tool progress, summary part markers, keepalive) carries nothing to translate.
        return out

    def comment(self, text: str) -> list:
        return [KeepAlive()]


# ---------------------------------------------------------------------------------------------
# Streams (canonical → Responses client)


class StreamRenderer:
    """Canonical stream events → Responses SSE (`event:` line, `type` and an increasing
    `sequence_number` in every payload) for a Responses client."""

    def __init__(self, ctx: Context, request: Request | None):
        self.ctx = ctx
        self._request = request
        self._seq = 0
        self._started = False
        self._id = _response_id(new_id(""))
        self._model = request.model if request else ""
        self._created = int(time.time())
        self._output: list[dict | None] = []  # finished items by output_index (None while open)
        self._kinds: dict[int, str] = {}  # canonical block index → kind
        # The open message item: output_index, item id, finished content parts, and the open part.
        self._msg: int | None = None
        self._msg_id = ""
        self._msg_parts: list[dict] = []
        self._part: dict | None = None  # {"kind", "text", "index"} of the open content part
        self._part_blocks: set[int] = set()  # canonical blocks written into the open part
        self._part_closing = False  # its block stopped; another text block may continue it
        self._reasoning: dict[int, dict] = {}  # canonical index → {"oi","id","text","sig","data","part"}
        self._tools: dict[int, dict] = {}  # canonical index → {"oi","id","call_id","name","args","done"}
        self._pending_tools: list[int] = []  # stopped tool blocks whose done events are still due
        self._usage: Usage | None = None
        self._finish: StreamFinish | None = None

    def _emit(self, out: list, kind: str, **fields) -> None:
        payload = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        out.append(_sse(kind, payload))

    def _response(self, status: str, **fields) -> dict:
        resp = _envelope(self._id, self._model, self._created, self._request)
        resp["status"] = status
        resp.update(fields)
        return resp

    def _start(self, out: list, id: str = "", model: str = "") -> None:
        self._started = True
        if id:
            self._id = _response_id(id)
        self._model = model or self._model
        self._emit(out, "response.created", response=self._response("in_progress"))
        self._emit(out, "response.in_progress", response=self._response("in_progress"))

    # -- message items and content parts

    def _open_msg(self, out: list) -> None:
        if self._msg is None:
            self._msg = len(self._output)
            self._output.append(None)
            self._msg_id = f"msg_{self._msg}_{self._id.removeprefix('resp_')}"
            self._msg_parts = []
            self._emit(out, "response.output_item.added", output_index=self._msg,
                       item=_message_item(self._msg_id, [], "in_progress"))

    def _open_part(self, kind: str, out: list) -> None:
        self._close_part(out)
        self._open_msg(out)
        self._part = {"kind": kind, "text": "", "index": len(self._msg_parts)}
        self._part_closing = False
        empty = _text_part("") if kind == TEXT else {"type": "refusal", "refusal": ""}
        self._emit(out, "response.content_part.added", item_id=self._msg_id, output_index=self._msg,
                   content_index=self._part["index"], part=empty)

    def _close_part(self, out: list) -> None:
        part = self._part
        if part is None:
            return
        common = {"item_id": self._msg_id, "output_index": self._msg, "content_index": part["index"]}
        if part["kind"] == TEXT:
            done = _text_part(part["text"])
            self._emit(out, "response.output_text.done", **common, text=part["text"], logprobs=[])
        else:
            done = {"type": "refusal", "refusal": part["text"]}
            self._emit(out, "response.refusal.done", **common, refusal=part["text"])
        self._emit(out, "response.content_part.done", **common, part=done)
        self._msg_parts.append(done)
        self._part = None
        self._part_blocks.clear()
        self._part_closing = False

    def _close_msg(self, out: list) -> None:
        self._close_part(out)
        if self._msg is not None:
            item = _message_item(self._msg_id, self._msg_parts)
            self._output[self._msg] = item
            self._emit(out, "response.output_item.done", output_index=self._msg, item=item)
            self._msg = None

    # -- tool items

    def _flush_tools(self, out: list) -> None:
        for index in self._pending_tools:
            tool = self._tools[index]
            common = {"item_id": tool["id"], "output_index": tool["oi"]}
            if tool["custom"]:  # the input is known once the JSON arguments are whole
                stop = self._finish.stop_reason if self._finish else None
                text = _custom_input(tool["args"])
                if text:
                    self._emit(out, "response.custom_tool_call_input.delta", **common, delta=text)
                self._emit(out, "response.custom_tool_call_input.done", **common, input=text)
                item = {"id": tool["id"], "type": "custom_tool_call", "status": _call_status(tool["args"], stop),
                        "call_id": tool["call_id"], "name": tool["name"], "input": text}
                self._output[tool["oi"]] = item
                self._emit(out, "response.output_item.done", output_index=tool["oi"], item=item)
                tool["done"] = True
                continue
            if not tool["args"]:  # a tool without arguments takes "{}"
                tool["args"] = "{}"
                self._emit(out, "response.function_call_arguments.delta", **common, delta="{}")
            self._emit(out, "response.function_call_arguments.done", **common, name=tool["name"],
                       arguments=tool["args"])
            stop = self._finish.stop_reason if self._finish else None
            item = {"id": tool["id"], "type": "function_call", "status": _call_status(tool["args"], stop),
                    "arguments": tool["args"], "call_id": tool["call_id"], "name": tool["name"]}
            self._output[tool["oi"]] = item
            self._emit(out, "response.output_item.done", output_index=tool["oi"], item=item)
            tool["done"] = True
        self._pending_tools.clear()

    # -- reasoning items

    def _close_reasoning(self, index: int, out: list) -> None:
        r = self._reasoning.pop(index, None)
        if r is None:
            return
        common = {"item_id": r["id"], "output_index": r["oi"]}
        if r["part"]:
            part = {"type": "summary_text", "text": r["text"]}
            self._emit(out, "response.reasoning_summary_text.done", **common, summary_index=0, text=r["text"])
            self._emit(out, "response.reasoning_summary_part.done", **common, summary_index=0, part=part)
        item = _reasoning_item(r["id"], r["text"], r["sig"] or None, r["data"])
        self._output[r["oi"]] = item
        self._emit(out, "response.output_item.done", output_index=r["oi"], item=item)

    def _close_all(self, out: list) -> None:
        self._close_msg(out)
        for index in list(self._reasoning):
            self._close_reasoning(index, out)
        for index, tool in self._tools.items():  # opened but never stopped
            if not tool["done"] and index not in self._pending_tools:
                self._pending_tools.append(index)
        self._flush_tools(out)

    # -- events

    def render(self, ev, out: list) -> None:
        cls = ev.__class__
        if cls is Delta:
            kind = self._kinds.get(ev.index)
            if kind in (TEXT, REFUSAL):
                part = self._part
                if part is None or ev.index not in self._part_blocks:
                    return
                part["text"] += ev.text
                common = {"item_id": self._msg_id, "output_index": self._msg, "content_index": part["index"]}
                if part["kind"] == TEXT:
                    self._emit(out, "response.output_text.delta", **common, delta=ev.text, logprobs=[])
                else:
                    self._emit(out, "response.refusal.delta", **common, delta=ev.text)
            elif kind == REASONING:
                r = self._reasoning.get(ev.index)
                if r is None or not ev.text:
                    return
                common = {"item_id": r["id"], "output_index": r["oi"]}
                if not r["part"]:
                    r["part"] = True
                    self._emit(out, "response.reasoning_summary_part.added", **common, summary_index=0,
                               part={"type": "summary_text", "text": ""})
                r["text"] += ev.text
                self._emit(out, "response.reasoning_summary_text.delta", **common, summary_index=0, delta=ev.text)
            elif kind == TOOL_CALL:
                tool = self._tools[ev.index]
                if tool["done"]:
                    self.ctx.warn("late tool-call argument fragment dropped (its item was already complete)")
                    return
                tool["args"] += ev.text
                if not tool["custom"]:
                    self._emit(out, "response.function_call_arguments.delta", item_id=tool["id"],
                               output_index=tool["oi"], delta=ev.text)
            return
        if not self._started and cls is not KeepAlive:
            if cls is StreamStart:
                self._start(out, ev.id, ev.model)
                return
            self._start(out)
        if cls is BlockStart:
            kind = ev.kind
            self._kinds[ev.index] = kind
            if kind != TOOL_CALL:
                self._flush_tools(out)
            if kind == TEXT and self._part is not None and self._part["kind"] == TEXT and self._part_closing:
                self._part_blocks.add(ev.index)  # consecutive text blocks continue one output_text
                self._part_closing = False
                return
            if kind in (TEXT, REFUSAL):
                self._open_part(kind, out)
                self._part_blocks.add(ev.index)
                return
            self._close_msg(out)
            oi = len(self._output)
            self._output.append(None)
            if kind == TOOL_CALL:
                call_id = ev.id or new_id("call_")
                custom = (ev.name or "") in self.ctx.freeform_tools
                tool = {"oi": oi, "id": _call_item_id(call_id, "ctc_" if custom else "fc_"), "call_id": call_id,
                        "name": ev.name or "", "args": "", "done": False, "custom": custom}
                self._tools[ev.index] = tool
                item = ({"id": tool["id"], "type": "custom_tool_call", "status": "in_progress", "call_id": call_id,
                         "name": tool["name"], "input": ""} if custom else
                        {"id": tool["id"], "type": "function_call", "status": "in_progress", "arguments": "",
                         "call_id": call_id, "name": tool["name"]})
                self._emit(out, "response.output_item.added", output_index=oi, item=item)
            else:  # REASONING, REDACTED
                rid = f"rs_{oi}_{self._id.removeprefix('resp_')}"
                self._reasoning[ev.index] = {"oi": oi, "id": rid, "text": "", "sig": "", "part": False,
                                             "data": ev.data or "" if kind == REDACTED else None}
                self._emit(out, "response.output_item.added", output_index=oi,
                           item={"id": rid, "type": "reasoning", "summary": []})
        elif cls is SignatureDelta:
            r = self._reasoning.get(ev.index)
            if r is not None:
                r["sig"] += ev.signature
        elif cls is BlockStop:
            kind = self._kinds.get(ev.index)
            if kind in (TEXT, REFUSAL):
                if ev.index in self._part_blocks:
                    if kind == REFUSAL:
                        self._close_part(out)
                    else:
                        self._part_closing = True  # closed at the next non-text event
            elif kind == TOOL_CALL:
                if not self._tools[ev.index]["done"] and ev.index not in self._pending_tools:
                    self._pending_tools.append(ev.index)
            elif kind is not None:
                self._close_reasoning(ev.index, out)
        elif cls is UsageUpdate:
            self._usage = ev.usage
        elif cls is StreamFinish:
            self._finish = ev
            self._close_all(out)
        elif cls is StreamEnd:
            self._close_all(out)
            stop = self._finish.stop_reason if self._finish else END
            status, incomplete = _status(stop, self.ctx)
            output = [item for item in self._output if item is not None]
            self._emit(out, f"response.{status}", response=self._response(
                status, incomplete_details=incomplete, output=output, usage=render_usage(self._usage)))
        elif cls is StreamError:
            err = ev.error
            self._emit(out, "error", **{k: v for k, v in _stream_error_payload(err, 0).items()
                                        if k not in ("type", "sequence_number")})
            body = {"code": err.code or err.type or errors.error_type_for(NAME, err.status), "message": err.message}
            output = [item for item in self._output if item is not None]
            self._emit(out, "response.failed", response=self._response(
                "failed", error=body, output=output, usage=render_usage(self._usage) if self._usage else None))
        elif cls is KeepAlive:
            out.append(b": keep-alive\n\n")


# ---------------------------------------------------------------------------------------------
# The registry record (spoke.py states the contract; registry.py lists every record). Imported
# here, at the end, because the record holds this module: the package itself, named so that
# mypy checks it against spoke.Codec, and its wire facts.

from .. import openai_responses as _codec  # noqa: E402  (this package, complete by now)
from ..spoke import SpokeRecord  # noqa: E402
from . import wire  # noqa: E402

SPOKE = SpokeRecord(codec=_codec, wire=wire)
