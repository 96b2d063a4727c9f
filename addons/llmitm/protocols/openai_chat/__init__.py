"""OpenAI Chat Completions spoke (`POST /v1/chat/completions`), including OpenAI-compatible servers
(vLLM, SGLang, llama.cpp, Ollama, DeepSeek, xAI, OpenRouter): requests, responses, stream chunks and
errors to and from the canonical model. Field reference: PROTOCOLS.md §1.1."""

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
    REFUSAL,
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
    Part,
    Reasoning,
    ReasoningConfig,
    Refusal,
    Request,
    Response,
    ResponseFormat,
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
from ..think_tags import ThinkSplitter, split_think

NAME = "openai-chat"
PATH = "/v1/chat/completions"
REQUEST_HEADERS = {"content-type": "application/json"}

FINISH_OUT = {
    END: "stop", STOP_SEQUENCE: "stop", MAX_TOKENS: "length", TOOL_USE: "tool_calls",
    CONTENT_FILTER: "content_filter", PAUSE: "stop", CONTEXT_WINDOW: "length",
}
FINISH_IN = {"stop": END, "length": MAX_TOKENS, "tool_calls": TOOL_USE, "function_call": TOOL_USE,
             "content_filter": CONTENT_FILTER}
# Error type/code → HTTP status, for errors that arrive inside a stream.
STATUS_FOR_TYPE = {
    "invalid_request_error": 400, "invalid_prompt": 400, "invalid_image": 400, "invalid_image_format": 400,
    "invalid_base64_image": 400, "invalid_image_url": 400, "image_too_large": 400, "image_too_small": 400,
    "image_parse_error": 400, "image_content_policy_violation": 400, "invalid_image_mode": 400,
    "image_file_too_large": 400, "unsupported_image_media_type": 400, "empty_image_file": 400,
    "failed_to_download_image": 400, "image_file_not_found": 400, "context_length_exceeded": 400,
    "authentication_error": 401, "invalid_api_key": 401, "permission_error": 403, "not_found_error": 404,
    "model_not_found": 404, "rate_limit_exceeded": 429, "rate_limit_error": 429, "insufficient_quota": 429,
    "tokens": 429, "requests": 429, "server_error": 500, "api_error": 500, "vector_store_timeout": 500,
    "overloaded_error": 529,
}
_KNOWN_REQUEST_KEYS = {
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "n", "stop",
    "stream", "stream_options", "tools", "tool_choice", "parallel_tool_calls", "reasoning_effort",
    "response_format", "user", "safety_identifier", "seed", "presence_penalty", "frequency_penalty", "logprobs",
    "top_logprobs", "logit_bias", "functions", "function_call", "modalities",
}
# Fields that would change the answer's form or content and cannot be honoured: refuse when set.
_REJECTED = {"audio", "web_search_options"}


def request_path(req: Request) -> str:
    return PATH


# ---------------------------------------------------------------------------------------------
# Usage and errors


def parse_usage(u: dict) -> Usage:
    pd = as_dict(u.get("prompt_tokens_details"))
    cd = as_dict(u.get("completion_tokens_details"))
    cached = pd.get("cached_tokens")
    if cached is None:
        cached = u.get("prompt_cache_hit_tokens")  # DeepSeek
    reasoning = cd.get("reasoning_tokens")
    return Usage(
        input_total=u.get("prompt_tokens") or 0,
        cached_read=cached or 0,
        cache_write=pd.get("cache_write_tokens") or u.get("cache_write_tokens") or 0,
        output_total=u.get("completion_tokens") or 0,
        reasoning=reasoning if isinstance(reasoning, int) else None,
    )


def render_usage(u: Usage | None) -> dict:
    u = u or Usage()
    prompt_details = {"cached_tokens": u.cached_read}
    if u.cache_write:
        prompt_details["cache_write_tokens"] = u.cache_write
    out = {
        "prompt_tokens": u.input_total, "completion_tokens": u.output_total,
        "total_tokens": u.input_total + u.output_total,
        "prompt_tokens_details": prompt_details,
    }
    if u.reasoning is not None:  # Anthropic does not split reasoning out: say nothing rather than 0
        out["completion_tokens_details"] = {"reasoning_tokens": u.reasoning}
    return out


def error_from_payload(err, status: int | None) -> ApiError:
    """`{"message","type","code","param"}`: HTTP errors, in-stream errors, and (Responses) failed responses."""
    if isinstance(err, str):
        return ApiError(status or 500, err)
    err = as_dict(err)
    etype = err.get("type") if isinstance(err.get("type"), str) else None
    code = err.get("code")
    if status is None:
        status = (code if isinstance(code, int) and 400 <= code < 600
                  else STATUS_FOR_TYPE.get(str(code), STATUS_FOR_TYPE.get(etype or "", 500)))
    message = err.get("message") if isinstance(err.get("message"), str) else json.dumps(err)[:1000]
    return ApiError(status, message, etype, err.get("param"), str(code) if code is not None else None)


def parse_error(status: int | None, body: bytes) -> ApiError:
    """An error body; with `status` None (an error inside a 200) the status follows the error type."""
    try:
        payload = json.loads(body)
    except ValueError:
        return ApiError(status or 502, body.decode("utf-8", "replace")[:1000] or f"upstream returned HTTP {status}")
    payload = as_dict(payload)
    if "error" in payload:
        return error_from_payload(payload["error"], status)
    # FastAPI-style servers ({"detail": …}) and others ({"message": …}).
    message = payload.get("message") or payload.get("detail") or json.dumps(payload)[:1000]
    return ApiError(status or 502, message if isinstance(message, str) else json.dumps(message)[:1000])


def render_error(err: ApiError) -> bytes:
    # The upstream's own error type survives as `code` when the client has no code to go by.
    return errors.render_error(NAME, err.status, err.message, param=err.param, code=err.code or err.type)


def render_stream_error(err: ApiError) -> bytes:
    body = errors.error_body(NAME, err.status, err.message, param=err.param, code=err.code or err.type)
    return b"data: " + json.dumps(body).encode() + b"\n\n"


# ---------------------------------------------------------------------------------------------
# Requests


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
        if kind == "text":
            parts.append(Text(part.get("text") or ""))
        elif kind == "refusal":
            parts.append(Refusal(part.get("refusal") or ""))
        elif kind == "image_url":
            image = as_dict(part.get("image_url"))
            url = str(image.get("url") or "")
            inline = parse_data_url(url)
            if inline:
                parts.append(Image(media_type=inline[0], data=inline[1], detail=image.get("detail")))
            elif url.startswith(("http://", "https://")):
                parts.append(Image(url=url, detail=image.get("detail")))
            else:
                raise TranslationError(f"{here}: image_url must be an http(s) or base64 data URL", param=here)
        elif kind == "file":
            file = as_dict(part.get("file"))
            inline = parse_data_url(str(file.get("file_data") or ""))
            if not inline:
                raise TranslationError(f"{here}: only inline file_data can be translated (not file_id)", param=here)
            parts.append(Document(media_type=inline[0], data=inline[1], title=file.get("filename")))
        else:
            raise TranslationError(f"{here}: content part type {kind!r} cannot be translated", param=here)
    return parts


def _parse_tool_calls(calls, where: str) -> list[ToolCall]:
    out = []
    for k, call in enumerate(calls or []):
        call = as_dict(call)
        fn = as_dict(call.get("function"))
        if call.get("type", "function") != "function":
            raise TranslationError(f"{where}[{k}]: tool call type {call.get('type')!r} cannot be translated",
                                   param=f"{where}[{k}]")
        args = fn.get("arguments")
        out.append(ToolCall(str(call.get("id") or new_id("call_")), str(fn.get("name") or ""),
                            args if isinstance(args, str) else json.dumps(args if args is not None else {})))
    return out


def _parse_assistant(m: dict, where: str) -> list:
    parts: list = []
    blocks = m.get("thinking_blocks")  # LiteLLM's carrier for signed Anthropic thinking
    if isinstance(blocks, list) and blocks:
        for b in blocks:
            b = as_dict(b)
            if b.get("type") == "redacted_thinking":
                parts.append(Reasoning("", None, b.get("data") or ""))
            else:
                parts.append(Reasoning(b.get("thinking") or "", b.get("signature") or None))
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
    req.include_usage = bool(as_dict(body.get("stream_options")).get("include_usage"))
    for i, m in enumerate(messages):
        m = as_dict(m)
        role = m.get("role")
        where = f"messages[{i}]"
        if role in ("system", "developer"):
            texts = [p for p in _parse_content(m.get("content"), where + ".content") if isinstance(p, Text)]
            if req.messages:
                parts: list[Part] = list(texts)
                req.messages.append(Message("system", parts))
            else:
                req.system.extend(texts)
        elif role == "user":
            req.messages.append(Message("user", _parse_content(m.get("content"), where + ".content"), m.get("name")))
        elif role == "assistant":
            req.messages.append(Message("assistant", _parse_assistant(m, where)))
        elif role == "tool":
            content = [p for p in _parse_content(m.get("content"), where + ".content")]
            req.messages.append(Message("user", [ToolResult(str(m.get("tool_call_id") or ""), content)]))
        else:
            raise TranslationError(f"{where}.role: role {role!r} cannot be translated", param=f"{where}.role")
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if isinstance(limit, int):
        req.max_tokens = limit
    req.temperature = body.get("temperature")
    req.top_p = body.get("top_p")
    req.top_k = body.get("top_k")  # vLLM/llama.cpp extension
    stop = body.get("stop")
    req.stop = [stop] if isinstance(stop, str) else [s for s in stop or [] if isinstance(s, str)]
    tools = body.get("tools") or [{"type": "function", "function": f} for f in body.get("functions") or []]
    for i, t in enumerate(tools):
        t = as_dict(t)
        if t.get("type") != "function":
            raise TranslationError(f"tools[{i}]: tool type {t.get('type')!r} cannot be translated",
                                   param=f"tools[{i}]")
        fn = as_dict(t.get("function"))
        req.tools.append(Tool(str(fn.get("name") or ""), fn.get("description"), fn.get("parameters"),
                              fn.get("strict")))
    req.tool_choice = _parse_tool_choice(body.get("tool_choice", body.get("function_call")), req)
    if isinstance(body.get("parallel_tool_calls"), bool):
        req.parallel_tool_calls = body["parallel_tool_calls"]
    effort = body.get("reasoning_effort")
    if isinstance(effort, str):
        req.reasoning = ReasoningConfig(effort != "none", effort=effort)
    fmt = as_dict(body.get("response_format"))
    if fmt.get("type") == "json_object":
        req.response_format = ResponseFormat("json_object")
    elif fmt.get("type") == "json_schema":
        js = as_dict(fmt.get("json_schema"))
        req.response_format = ResponseFormat("json_schema", js.get("schema"), js.get("name"), js.get("strict"),
                                             js.get("description"))
    user = body.get("user") or body.get("safety_identifier")
    req.user = user if isinstance(user, str) else None
    req.n = body.get("n")
    req.seed = body.get("seed")
    req.presence_penalty = body.get("presence_penalty")
    req.frequency_penalty = body.get("frequency_penalty")
    req.logprobs = body.get("logprobs")
    req.top_logprobs = body.get("top_logprobs")
    req.logit_bias = body.get("logit_bias")
    modalities = body.get("modalities")
    if isinstance(modalities, list) and any(m != "text" for m in modalities):
        raise TranslationError("modalities: only text output can be translated", param="modalities")
    for key in body.keys() - _KNOWN_REQUEST_KEYS:
        if key in _REJECTED and body[key] is not None:
            raise TranslationError(f"{key}: not supported by the upstream protocol", param=key)
        if body[key] is not None:
            ctx.warn(f"request field {key!r} dropped (no equivalent upstream)")
    extra = as_dict(body.get("stream_options")).keys() - {"include_usage"}
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
    return out


# ---------------------------------------------------------------------------------------------
# Non-stream responses


def _finish_in(choice: dict, ctx: Context) -> tuple[str | None, str | None]:
    reason = choice.get("finish_reason")
    matched = choice.get("stop_reason")  # vLLM: the stop string that ended generation
    if reason == "stop" and isinstance(matched, str):
        return STOP_SEQUENCE, matched
    if reason is None:
        return None, None
    stop = FINISH_IN.get(reason)
    if stop is None:
        ctx.warn(f"unknown finish_reason {reason!r} reported as end of turn")
        stop = END
    return stop, None


def parse_response(body: dict, ctx: Context, *, think_tags: bool = True) -> Response:
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(as_dict(choices[0]).get("message"), dict):
        raise ValueError("no choices[0].message")
    if len(choices) > 1:
        ctx.warn("only the first of several choices was translated")
    choice = choices[0]
    message = choice["message"]
    parts = _parse_assistant(message, "choices[0].message")
    if think_tags and not any(isinstance(p, Reasoning) for p in parts):  # <think>…</think> in content (SmolLM3…)
        for k, p in enumerate(parts):
            if isinstance(p, Text):
                reasoning, text = split_think(p.text)
                if reasoning is not None:
                    parts[k:k + 1] = [Reasoning(reasoning)] + ([Text(text)] if text else [])
                break
    stop, matched = _finish_in(choice, ctx)
    usage = body.get("usage")
    return Response(
        id=str(body.get("id") or ""), model=str(body.get("model") or ""), parts=parts, stop_reason=stop or END,
        stop_sequence=matched, usage=parse_usage(usage) if isinstance(usage, dict) else None,
        created=body.get("created") if isinstance(body.get("created"), int) else None,
    )


def render_response(resp: Response, ctx: Context) -> dict:
    texts = [p.text for p in resp.parts if isinstance(p, Text)]
    refusals = [p.text for p in resp.parts if isinstance(p, Refusal)]
    reasoning = [p.text for p in resp.parts if isinstance(p, Reasoning) and p.text]
    calls = [{"id": p.id, "type": "function", "function": {"name": p.name, "arguments": p.arguments or "{}"}}
             for p in resp.parts if isinstance(p, ToolCall)]
    message: dict = {"role": "assistant", "content": "".join(texts) if texts else None,
                     "refusal": "".join(refusals) if refusals else None}
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if any(isinstance(p, Reasoning) and (p.signature or p.redacted is not None) for p in resp.parts):
        # Signed thinking in LiteLLM's carrier: a client that sends the message back keeps
        # Anthropic's thinking valid across a tool loop (parsed again in _parse_assistant).
        message["thinking_blocks"] = [
            {"type": "redacted_thinking", "data": p.redacted} if p.redacted is not None
            else {"type": "thinking", "thinking": p.text, "signature": p.signature or ""}
            for p in resp.parts if isinstance(p, Reasoning)]
    if calls:
        message["tool_calls"] = calls
    out = {
        "id": resp.id, "object": "chat.completion", "created": int(time.time()) if resp.created is None else resp.created,
        "model": resp.model,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": FINISH_OUT.get(resp.stop_reason or END, "stop")}],
    }
    if resp.usage is not None:
        out["usage"] = render_usage(resp.usage)
    if resp.stop_reason == PAUSE:
        ctx.warn("Anthropic pause_turn reported as finish_reason stop")
    return out


# ---------------------------------------------------------------------------------------------
# Streams


class StreamParser:
    """Chat Completions chunks (decoded SSE data) → canonical stream events. Only choice 0 is
    translated (n>1 is refused toward protocols without choices)."""

    def __init__(self, ctx: Context, *, think_tags: bool = True):
        self.ctx = ctx
        self._started = False
        self._next = 0  # next canonical block index
        self._open: int | None = None  # open text/reasoning/refusal block
        self._open_kind: str | None = None
        self._tools: dict[int, int] = {}  # OpenAI tool index → canonical block index
        self._tool_ids: dict[int, str] = {}  # canonical block index → tool call id
        self._open_tool: int | None = None
        # None once content proved tag-free (or with think_tags off: a local model configured so)
        self._think: ThinkSplitter | None = ThinkSplitter() if think_tags else None
        self._finished = False

    def _block(self, kind: str, out: list, **kw) -> int:
        self._close(out)
        index = self._next
        self._next += 1
        out.append(BlockStart(index, kind, **kw))
        return index

    def _close(self, out: list) -> None:
        if self._open is not None:
            out.append(BlockStop(self._open))
            self._open = self._open_kind = None
        if self._open_tool is not None:
            out.append(BlockStop(self._open_tool))
            self._open_tool = None

    def _text(self, kind: str, text: str, out: list) -> None:
        if self._open is None or self._open_kind != kind:
            self._open = self._block(kind, out)
            self._open_kind = kind
        out.append(Delta(self._open, text))

    def feed(self, event: str | None, data: str) -> list:
        if data == "[DONE]":
            return self._end()
        chunk = json.loads(data)
        out: list = []
        if chunk.get("error"):
            return [StreamError(error_from_payload(chunk["error"], None))]
        choices = chunk.get("choices") or []
        if not self._started and (choices or chunk.get("usage")):
            # Azure opens with an id-less prompt_filter_results chunk: start on the first real one.
            self._started = True
            out.append(StreamStart(str(chunk.get("id") or ""), str(chunk.get("model") or "")))
        for choice in choices:
            if choice.get("index", 0) != 0:
                self.ctx.warn("only the first of several choices was translated")
                continue
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning and isinstance(reasoning, str):
                self._think = None  # the server separates reasoning itself
                self._text(REASONING, reasoning, out)
            content = delta.get("content")
            if content:
                if self._think is not None:
                    for kind, piece in self._think.feed(content):
                        self._text(kind, piece, out)
                    if self._think.plain:
                        self._think = None
                else:
                    self._text(TEXT, content, out)
            if delta.get("refusal"):
                self._text(REFUSAL, delta["refusal"], out)
            for call in delta.get("tool_calls") or ():
                self._tool_call(call, out)
            if choice.get("finish_reason"):
                self._flush_think(out)
                self._close(out)
                stop, matched = _finish_in(choice, self.ctx)
                out.append(StreamFinish(stop, matched))
                self._finished = True
        usage = chunk.get("usage")
        if isinstance(usage, dict):  # its own chunk, or on the finish chunk (DeepSeek)
            out.append(UsageUpdate(parse_usage(usage)))
        return out

    def _tool_call(self, call: dict, out: list) -> None:
        position = call.get("index", len(self._tools))
        fn = call.get("function") or {}
        index = self._tools.get(position)
        call_id = call.get("id")
        if index is not None and call_id and fn.get("name") and call_id != self._tool_ids[index]:
            index = None  # a new call reusing the index (servers that send every call as index 0)
        if index is None:
            self._flush_think(out)
            call_id = call_id or new_id("call_")
            index = self._block(TOOL_CALL, out, id=call_id, name=fn.get("name") or "")
            self._tools[position] = index
            self._tool_ids[index] = call_id
            self._open_tool = index
        args = fn.get("arguments")
        if args:
            out.append(Delta(index, args if isinstance(args, str) else json.dumps(args)))

    def _flush_think(self, out: list) -> None:
        if self._think is not None:
            for kind, piece in self._think.flush():
                self._text(kind, piece, out)

    def _end(self) -> list:
        out: list = []
        self._flush_think(out)
        self._close(out)
        if not self._finished:
            # Some servers end after tool calls without a finish_reason (PROTOCOLS.md §2.13).
            out.append(StreamFinish(None))
            self._finished = True
        out.append(StreamEnd())
        return out

    def comment(self, text: str) -> list:
        return [KeepAlive()]


class StreamRenderer:
    """Canonical stream events → Chat Completions chunks for an OpenAI client."""

    def __init__(self, ctx: Context, request: Request | None):
        self.ctx = ctx
        self._include_usage = bool(request and request.include_usage)
        self._prefix = b""
        self._started = False
        self._tools: dict[int, int] = {}  # canonical block index → OpenAI tool index
        self._args_sent: dict[int, bool] = {}
        self._kinds: dict[int, str] = {}
        self._usage: Usage | None = None
        self._id = new_id("chatcmpl-")
        self._model = ""
        self._created = int(time.time())

    def _start(self, out: list, id: str = "", model: str = "") -> None:
        self._started = True
        self._id = id or self._id
        self._model = model
        self._prefix = ('data: {"id":' + json.dumps(self._id) + ',"object":"chat.completion.chunk","created":'
                        + str(self._created) + ',"model":' + json.dumps(model) + ',"choices":').encode()
        self._chunk(out, {"role": "assistant", "content": ""})

    def _chunk(self, out: list, delta: dict, finish: str | None = None) -> None:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        out.append(self._prefix + json.dumps([choice], separators=(",", ":")).encode() + b"}\n\n")

    def render(self, ev, out: list) -> None:
        if isinstance(ev, Delta):
            kind = self._kinds.get(ev.index)
            if kind == TOOL_CALL:
                self._args_sent[ev.index] = True
                self._chunk(out, {"tool_calls": [{"index": self._tools[ev.index], "function": {"arguments": ev.text}}]})
            elif kind == REASONING:
                self._chunk(out, {"reasoning_content": ev.text})
            elif kind == REFUSAL:
                self._chunk(out, {"refusal": ev.text})
            elif kind == TEXT:
                self._chunk(out, {"content": ev.text})
            return
        if not self._started and not isinstance(ev, (StreamError, KeepAlive)):
            if isinstance(ev, StreamStart):
                self._start(out, ev.id, ev.model)
                return
            self._start(out)
        if isinstance(ev, BlockStart):
            self._kinds[ev.index] = ev.kind
            if ev.kind == TOOL_CALL:
                k = self._tools[ev.index] = len(self._tools)  # OpenAI tool indexes count from 0
                self._args_sent[ev.index] = False
                self._chunk(out, {"tool_calls": [{"index": k, "id": ev.id, "type": "function",
                                                  "function": {"name": ev.name, "arguments": ""}}]})
            elif ev.kind not in (TEXT, REASONING, REFUSAL):
                self.ctx.warn(f"{ev.kind} block dropped (no OpenAI Chat equivalent)")
        elif isinstance(ev, BlockStop):
            if self._args_sent.get(ev.index) is False:  # a tool without arguments takes "{}"
                self._args_sent[ev.index] = True
                self._chunk(out, {"tool_calls": [{"index": self._tools[ev.index], "function": {"arguments": "{}"}}]})
        elif isinstance(ev, UsageUpdate):
            self._usage = ev.usage
        elif isinstance(ev, StreamFinish):
            if ev.stop_reason == PAUSE:
                self.ctx.warn("Anthropic pause_turn reported as finish_reason stop")
            self._chunk(out, {}, FINISH_OUT.get(ev.stop_reason or END, "stop"))
        elif isinstance(ev, StreamEnd):
            if self._include_usage and self._usage is not None:
                out.append(self._prefix + b'[],"usage":' + json.dumps(render_usage(self._usage)).encode()
                           + b"}\n\n")
            out.append(b"data: [DONE]\n\n")
        elif isinstance(ev, StreamError):
            out.append(render_stream_error(ev.error))
        elif isinstance(ev, KeepAlive):
            out.append(b": keep-alive\n\n")
        # SignatureDelta: an Anthropic signature has no place in a Chat Completions stream.


# ---------------------------------------------------------------------------------------------
# The registry record (spoke.py states the contract; registry.py lists every record). Imported
# here, at the end, because the record holds this module: the package itself, named so that
# mypy checks it against spoke.Codec, and its wire facts.

from .. import openai_chat as _codec  # noqa: E402  (this package, complete by now)
from ..spoke import SpokeRecord  # noqa: E402
from . import wire  # noqa: E402

SPOKE = SpokeRecord(codec=_codec, wire=wire)
