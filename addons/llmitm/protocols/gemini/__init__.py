"""Google Gemini API spoke (`POST /v1beta/models/{model}:generateContent` and
`…:streamGenerateContent?alt=sse`): requests, responses, stream chunks and errors to and from the
canonical model. Field reference: PROTOCOLS.md §1.4.

Gemini puts the model and stream-or-not in the path (`Context.client_path`), not in the body. Its JSON
parser accepts both lowerCamel and snake_case field names, and the google-genai SDK sends a mix of both
(`parameters_json_schema`, `inlineData.mime_type`, `thinkingConfig.thinking_budget`): every field is read
in either spelling.

Identifiers and signatures carried through foreign clients:
- A function call without an id gets a synthesized one (`gcall_<responseId>_<n>`), removed again when
  the call comes back in history.
- A function call's `thoughtSignature` (Gemini 3 refuses a tool loop without it) rides in the tool-call id
  after `__thought__` (LiteLLM's convention) and is put back on the call when the id returns.
- Reasoning signed by another provider (Anthropic) reaches a Gemini client as a thought part whose
  `thoughtSignature` is `base64("llmitm:" + JSON)`; it is recognised and restored when it comes back.
"""

from __future__ import annotations

import base64
import binascii
import json
import mimetypes
import re

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

NAME = "gemini"
REQUEST_HEADERS = {"content-type": "application/json"}
THOUGHT_SEPARATOR = "__thought__"
SYNTH_ID_PREFIX = "gcall_"
# Gemini 3 rejects history function calls without a signature; the documented placeholder for
# conversations that did not come from Gemini (ai.google.dev/gemini-api/docs/thought-signatures).
DUMMY_SIGNATURE = "skip_thought_signature_validator"
_FOREIGN_SIG_PREFIX = b"llmitm:"
MAX_STOP_SEQUENCES = 5

_PATH_RE = re.compile(r"models/([^/:?]+):([A-Za-z]+)")
_FILTERED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "LANGUAGE", "IMAGE_SAFETY",
             "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "IMAGE_OTHER", "MODEL_ARMOR"}
FINISH_OUT = {
    END: "STOP", STOP_SEQUENCE: "STOP", TOOL_USE: "STOP", PAUSE: "STOP", MAX_TOKENS: "MAX_TOKENS",
    CONTEXT_WINDOW: "MAX_TOKENS", CONTENT_FILTER: "SAFETY",
}
# google.rpc status → HTTP status, for errors that carry no usable code.
STATUS_FOR_RPC = {
    "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400, "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403, "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429, "CANCELLED": 499, "INTERNAL": 500, "UNKNOWN": 500, "DATA_LOSS": 500,
    "NOT_IMPLEMENTED": 501, "UNIMPLEMENTED": 501, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504,
}
_KNOWN_REQUEST_KEYS = {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig",
                       "safetySettings", "labels", "serviceTier", "model", "cachedContent"}
# Hosted Gemini tools: they run at Google, the other upstream cannot run them.
_HOSTED_TOOLS = {"googleSearch", "googleSearchRetrieval", "codeExecution", "urlContext", "fileSearch",
                 "computerUse", "googleMaps", "enterpriseWebSearch", "retrieval", "mcpServers"}
_ALWAYS_THINKS = re.compile(r"gemini-(3|2\.5-pro)")
# Model families that do not validate thought signatures: no placeholder for them.
_NO_SIGNATURE_CHECK = re.compile(r"gemini-(1\.|2\.)")


# ---------------------------------------------------------------------------------------------
# Helpers


_SNAKE: dict[str, str] = {}


def _snake(name: str) -> str:
    snake = _SNAKE.get(name)
    if snake is None:
        snake = _SNAKE[name] = re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()
    return snake


def _g(d: dict, name: str, default=None):
    """A field in either spelling (the API accepts lowerCamel and snake_case)."""
    if name in d:
        return d[name]
    return d.get(_SNAKE.get(name) or _snake(name), default)


def _keys(d: dict) -> set[str]:
    """Field names normalised to lowerCamel."""
    out = set()
    for k in d:
        head, *rest = k.split("_")
        out.add(head + "".join(w[:1].upper() + w[1:] for w in rest))
    return out


def parse_path(path: str | None) -> tuple[str | None, str | None, bool]:
    """(model, method, alt=sse) from the path the app called."""
    if not path:
        return None, None, False
    m = _PATH_RE.search(path)
    sse = "alt=sse" in (path.partition("?")[2])
    if not m:
        return None, None, sse
    return m.group(1), m.group(2), sse


def request_path(req: Request) -> str:
    model = req.model.removeprefix("models/")
    if req.stream:
        return f"/v1beta/models/{model}:streamGenerateContent?alt=sse"
    return f"/v1beta/models/{model}:generateContent"


def split_tool_id(tool_id: str) -> tuple[str | None, str | None]:
    """A client's tool-call id → (Gemini functionCall id or None if synthesized, thought signature)."""
    base, sep, signature = tool_id.partition(THOUGHT_SEPARATOR)
    gemini_id = None if base.startswith(SYNTH_ID_PREFIX) or not base else base
    return gemini_id, (signature or None) if sep else None


def make_tool_id(gemini_id: str | None, response_id: str, n: int, signature: str | None) -> str:
    base = gemini_id or f"{SYNTH_ID_PREFIX}{response_id or 'r'}_{n}"
    return base + THOUGHT_SEPARATOR + signature if signature else base


def _encode_foreign(payload: dict) -> str:
    return base64.b64encode(_FOREIGN_SIG_PREFIX + json.dumps(payload, separators=(",", ":")).encode()).decode()


def _decode_foreign(signature) -> dict | None:
    if not isinstance(signature, str) or not signature:
        return None
    try:
        raw = base64.b64decode(signature + "=" * (-len(signature) % 4), altchars=b"-_"
                               if ("-" in signature or "_" in signature) else None)
    except (binascii.Error, ValueError):
        return None
    if not raw.startswith(_FOREIGN_SIG_PREFIX):
        return None
    try:
        value = json.loads(raw[len(_FOREIGN_SIG_PREFIX):])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


_OPENAPI_DROP = {"propertyOrdering", "property_ordering", "example", "nullable"}


def openapi_to_json_schema(schema):
    """Gemini's OpenAPI-subset `Schema` (type "OBJECT", `nullable`, …) → JSON Schema."""
    if isinstance(schema, list):
        return [openapi_to_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict = {}
    for key, value in schema.items():
        camel = next(iter(_keys({key: None})))
        if key in _OPENAPI_DROP:
            continue
        if camel == "type" and isinstance(value, str):
            out["type"] = value.lower() if value != "TYPE_UNSPECIFIED" else None
            if out["type"] is None:
                del out["type"]
        elif camel == "properties" and isinstance(value, dict):
            out["properties"] = {k: openapi_to_json_schema(v) for k, v in value.items()}
        elif camel in ("items", "anyOf", "additionalProperties", "not"):
            out[camel] = openapi_to_json_schema(value)
        elif camel in ("minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties") \
                and isinstance(value, str) and value.isdigit():
            out[camel] = int(value)  # int64 fields arrive as strings in proto JSON
        else:
            out[camel] = value
    if _g(schema, "nullable") is True:
        t = out.get("type")
        if isinstance(t, str):
            out["type"] = [t, "null"]
        elif t is None and "anyOf" in out:
            out["anyOf"] = [*out["anyOf"], {"type": "null"}]
    return out


# ---------------------------------------------------------------------------------------------
# Usage and errors


USAGE_FIELD = "usageMetadata"  # where a response body carries usage (the other spokes: "usage")


def parse_usage(u: dict) -> Usage | None:
    """usageMetadata → Usage; None when it carries no counts (Vertex's `{"trafficType": …}` chunks)."""
    prompt = _g(u, "promptTokenCount")
    candidates = _g(u, "candidatesTokenCount")
    thoughts = _g(u, "thoughtsTokenCount")
    if prompt is None and candidates is None and thoughts is None and _g(u, "totalTokenCount") is None:
        return None
    tool_prompt = _g(u, "toolUsePromptTokenCount") or 0
    return Usage(
        input_total=(prompt or 0) + tool_prompt,  # promptTokenCount already includes cached tokens
        cached_read=_g(u, "cachedContentTokenCount") or 0,
        output_total=(candidates or 0) + (thoughts or 0),  # candidatesTokenCount excludes thoughts
        reasoning=thoughts if isinstance(thoughts, int) else None,
    )


def render_usage(u: Usage | None) -> dict:
    u = u or Usage()
    thoughts = u.reasoning or 0
    # candidatesTokenCount excludes thoughts. An upstream reporting more reasoning than output tokens
    # (xAI) counted them apart: then both are reported as given.
    candidates = u.output_total - thoughts if thoughts <= u.output_total else u.output_total
    out = {"promptTokenCount": u.input_total, "candidatesTokenCount": candidates,
           "totalTokenCount": u.input_total + candidates + thoughts}
    if thoughts:
        out["thoughtsTokenCount"] = thoughts
    if u.cached_read:
        out["cachedContentTokenCount"] = u.cached_read
    return out


def _retry_delay(details) -> float | None:
    for d in details if isinstance(details, list) else []:
        d = as_dict(d)
        if str(d.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = d.get("retryDelay") or d.get("retry_delay")
            if isinstance(delay, str) and delay.endswith("s"):
                try:
                    return float(delay[:-1])
                except ValueError:
                    return None
    return None


def _error_from_payload(err, status: int | None) -> ApiError:
    if isinstance(err, str):
        return ApiError(status or 500, err)
    err = as_dict(err)
    rpc = err.get("status") if isinstance(err.get("status"), str) else None
    code = err.get("code")
    if status is None:
        status = code if isinstance(code, int) and 400 <= code < 600 else STATUS_FOR_RPC.get(rpc or "", 500)
    message = err.get("message") if isinstance(err.get("message"), str) else json.dumps(err)[:1000]
    delay = _retry_delay(err.get("details"))
    if delay is not None and "retry" not in message.lower():
        message = f"{message} (retry in {delay:g}s)"
    return ApiError(status, message, rpc, None, rpc)


def parse_error(status: int | None, body: bytes) -> ApiError:
    """An error body; with `status` None (an error inside a 200) the status follows the error code."""
    try:
        payload = json.loads(body)
    except ValueError:
        return ApiError(status or 502, body.decode("utf-8", "replace")[:1000] or f"upstream returned HTTP {status}")
    if isinstance(payload, list) and payload:  # a non-SSE stream's JSON array
        payload = payload[0]
    payload = as_dict(payload)
    if "error" in payload:
        return _error_from_payload(payload["error"], status)
    message = payload.get("message") or json.dumps(payload)[:1000]
    return ApiError(status or 502, message if isinstance(message, str) else json.dumps(message)[:1000])


_RETRY_RE = re.compile(r"(?:retry|try again) in ([0-9.]+)s\b", re.I)


def error_body(err: ApiError) -> dict:
    body = errors.error_body(NAME, err.status, err.message)
    if err.status == 429:  # google-genai and other Gemini clients look for RetryInfo
        m = _RETRY_RE.search(err.message)
        if m:
            body["error"]["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                         "retryDelay": f"{m.group(1)}s"}]
    return body


def render_error(err: ApiError) -> bytes:
    return json.dumps(error_body(err)).encode()


def render_stream_error(err: ApiError) -> bytes:
    return b"data: " + json.dumps(error_body(err)).encode() + b"\r\n\r\n"


# ---------------------------------------------------------------------------------------------
# Requests: Gemini client → canonical


def _media(d: dict) -> tuple[str | None, str | None]:
    return _g(d, "mimeType"), _g(d, "data")


def _inline_part(blob: dict, where: str) -> Image | Document:
    mime, data = _media(blob)
    mime = (mime or "").lower() or None
    if not isinstance(data, str):
        raise TranslationError(f"{where}.inlineData.data: base64 data required", param=where)
    if mime and mime.startswith("image/"):
        return Image(media_type=mime, data=data)
    if mime and mime.startswith(("audio/", "video/")):
        raise TranslationError(f"{where}: {mime} input cannot be translated for this upstream", param=where)
    return Document(media_type=mime, data=data)


def _file_part(fd: dict, where: str) -> Image | Document:
    uri = _g(fd, "fileUri")
    mime = (_g(fd, "mimeType") or "").lower() or None
    if not isinstance(uri, str) or not uri.startswith(("http://", "https://")) \
            or "generativelanguage.googleapis.com" in uri:
        raise TranslationError(f"{where}.fileData: only public http(s) URLs can be translated (Files API and "
                               "gs:// URIs are readable by Gemini only)", param=where)
    if mime and mime.startswith(("audio/", "video/")):
        raise TranslationError(f"{where}: {mime} input cannot be translated for this upstream", param=where)
    if mime is None:
        mime = mimetypes.guess_type(uri.partition("?")[0])[0]
    if mime and mime.startswith("image/"):
        return Image(url=uri)
    return Document(media_type=mime, url=uri)


def _response_parts(response, parts, where: str, ctx: Context) -> tuple[list, bool]:
    """functionResponse.response (+ multimodal parts) → ToolResult content and is_error."""
    content: list = []
    is_error = False
    if isinstance(response, dict):
        keys = set(response)
        if keys == {"error"}:
            is_error = True
            value = response["error"]
        elif keys in ({"result"}, {"output"}, {"content"}):
            value = next(iter(response.values()))
        else:
            value = response
        if value is not None:
            content.append(Text(value if isinstance(value, str) else json.dumps(value)))
    elif response is not None:
        content.append(Text(json.dumps(response)))
    for k, p in enumerate(parts if isinstance(parts, list) else []):
        p = as_dict(p)
        blob = _g(p, "inlineData")
        if isinstance(blob, dict):
            content.append(_inline_part(blob, f"{where}.parts[{k}]"))
        else:
            ctx.warn("functionResponse part without inlineData dropped")
    return content, is_error


def _merge_adjacent(parts: list, join_text: bool = True) -> list:
    """Streams stored as history arrive as many small parts: join neighbouring text and thought parts
    (a thought part carrying only a signature belongs to the thought text before it). A user's separate
    text parts stay separate (`join_text` False)."""
    out: list = []
    for p in parts:
        last = out[-1] if out else None
        if join_text and type(p) is Text and type(last) is Text:
            out[-1] = Text(last.text + p.text)
        elif type(p) is Reasoning and type(last) is Reasoning and last.redacted is None and p.redacted is None \
                and not last.signature:
            out[-1] = Reasoning(last.text + p.text, p.signature)
        else:
            out.append(p)
    return out


def _parse_contents(contents, ctx: Context) -> list[Message]:
    messages: list[Message] = []
    pending: dict[str, list[str]] = {}  # function name → ids of calls not answered yet (FIFO)
    warned_sig = False
    for i, content in enumerate(contents):
        content = as_dict(content)
        where = f"contents[{i}]"
        role = content.get("role") or "user"
        if role not in ("user", "model", "function", "tool"):
            raise TranslationError(f"{where}.role: unexpected role {role!r}", param=f"{where}.role")
        raw_parts = content.get("parts")
        if not isinstance(raw_parts, list):
            raise TranslationError(f"{where}.parts: an array is required", param=f"{where}.parts")
        parts: list = []
        for j, part in enumerate(raw_parts):
            part = as_dict(part)
            here = f"{where}.parts[{j}]"
            signature = _g(part, "thoughtSignature")
            if signature == DUMMY_SIGNATURE:
                signature = None
            fc = _g(part, "functionCall")
            fr = _g(part, "functionResponse")
            text = part.get("text")
            if isinstance(fc, dict):
                name = str(fc.get("name") or "")
                raw_id = fc.get("id")
                call_id = raw_id if isinstance(raw_id, str) and raw_id else f"call_{i}_{j}"
                pending.setdefault(name, []).append(call_id)
                args = fc.get("args")
                parts.append(ToolCall(call_id, name, json.dumps(args if args is not None else {})))
            elif isinstance(fr, dict):
                name = str(fr.get("name") or "")
                call_id = fr.get("id") if isinstance(fr.get("id"), str) and fr.get("id") else None
                queue = pending.get(name) or []
                if call_id is None:
                    if not queue:
                        raise TranslationError(f"{here}.functionResponse: no earlier functionCall named {name!r} "
                                               "to answer", param=here)
                    call_id = queue.pop(0)
                elif call_id in queue:
                    queue.remove(call_id)
                content_parts, is_error = _response_parts(fr.get("response"), fr.get("parts"), here, ctx)
                parts.append(ToolResult(call_id, content_parts, is_error))
            elif isinstance(text, str):
                if part.get("thought") is True:
                    foreign = _decode_foreign(signature)
                    if foreign and isinstance(foreign.get("r"), str):
                        parts.append(Reasoning("", None, foreign["r"]))
                    else:
                        parts.append(Reasoning(text, foreign.get("s") if foreign else None))
                    if foreign:
                        continue
                else:
                    parts.append(Text(text))
            elif isinstance(_g(part, "inlineData"), dict):
                parts.append(_inline_part(_g(part, "inlineData"), here))
            elif isinstance(_g(part, "fileData"), dict):
                parts.append(_file_part(_g(part, "fileData"), here))
            elif _g(part, "executableCode") is not None or _g(part, "codeExecutionResult") is not None:
                ctx.warn("code execution parts dropped from history (no equivalent upstream)")
                continue
            else:
                ctx.warn(f"part with fields {sorted(_keys(part))} dropped (no equivalent upstream)")
                continue
            if signature and not warned_sig:
                warned_sig = True  # Gemini's own signatures mean nothing to another provider
                ctx.warn("thoughtSignature dropped (provider-bound; the upstream is not Gemini)")
        msg_role = "assistant" if role == "model" else "user"
        parts = _merge_adjacent(parts, msg_role == "assistant")
        if messages and messages[-1].role == msg_role:
            messages[-1].parts = _merge_adjacent(messages[-1].parts + parts, msg_role == "assistant")
        else:
            messages.append(Message(msg_role, parts))
    return messages


def _parse_tools(tools, ctx: Context) -> list[Tool]:
    out: list[Tool] = []
    for i, t in enumerate(tools if isinstance(tools, list) else []):
        t = as_dict(t)
        for key in _keys(t) - {"functionDeclarations"}:
            if key in _HOSTED_TOOLS:
                raise TranslationError(f"tools[{i}].{key}: Gemini's hosted tool cannot run on this upstream",
                                       param=f"tools[{i}].{key}")
            ctx.warn(f"tool field {key!r} dropped (no equivalent upstream)")
        for fd in _g(t, "functionDeclarations") or []:
            fd = as_dict(fd)
            schema = _g(fd, "parametersJsonSchema")
            if schema is None and _g(fd, "parameters") is not None:
                schema = openapi_to_json_schema(_g(fd, "parameters"))
            for key in _keys(fd) - {"name", "description", "parameters", "parametersJsonSchema"}:
                ctx.warn(f"functionDeclaration field {key!r} dropped (no equivalent upstream)")
            out.append(Tool(str(fd.get("name") or ""), fd.get("description"), schema))
    return out


def _parse_tool_config(config, req: Request, ctx: Context) -> None:
    fcc = as_dict(_g(as_dict(config), "functionCallingConfig"))
    mode = str(fcc.get("mode") or "AUTO").upper()
    allowed = _g(fcc, "allowedFunctionNames")
    if _g(fcc, "streamFunctionCallArguments"):
        ctx.warn("streamFunctionCallArguments ignored (function calls arrive whole)")
    if isinstance(allowed, list) and allowed:
        req.tools = [t for t in req.tools if t.name in allowed]  # the subset is all the upstream will see
    if not fcc:
        return
    if mode == "ANY":
        if isinstance(allowed, list) and len(allowed) == 1:
            req.tool_choice = ToolChoice("tool", str(allowed[0]))
        else:
            req.tool_choice = ToolChoice("required")
    elif mode == "NONE":
        req.tool_choice = ToolChoice("none")
    elif mode in ("AUTO", "MODE_UNSPECIFIED"):
        req.tool_choice = ToolChoice("auto") if "mode" in fcc else None
    elif mode == "VALIDATED":
        ctx.warn("functionCallingConfig mode VALIDATED sent as auto (schema adherence not enforced)")
        req.tool_choice = ToolChoice("auto")
    else:
        raise TranslationError(f"toolConfig.functionCallingConfig.mode: unknown value {mode!r}",
                               param="toolConfig.functionCallingConfig.mode")


_GEN_KNOWN = {"temperature", "topP", "topK", "candidateCount", "maxOutputTokens", "stopSequences",
              "presencePenalty", "frequencyPenalty", "seed", "responseMimeType", "responseSchema",
              "responseJsonSchema", "responseJsonSchemaOrdering", "thinkingConfig", "responseModalities",
              "responseLogprobs", "logprobs", "mediaResolution", "speechConfig", "enableEnhancedCivicAnswers"}


def _parse_generation_config(gc: dict, req: Request, ctx: Context) -> None:
    where = "generationConfig"
    count = _g(gc, "candidateCount")
    if isinstance(count, int) and count > 1:
        raise TranslationError(f"{where}.candidateCount: only one candidate can be translated",
                               param=f"{where}.candidateCount")
    if _g(gc, "responseLogprobs") or _g(gc, "logprobs"):
        raise TranslationError(f"{where}.responseLogprobs: log probabilities cannot be translated",
                               param=f"{where}.responseLogprobs")
    modalities = _g(gc, "responseModalities")
    if isinstance(modalities, list) and any(str(m).upper() != "TEXT" for m in modalities):
        raise TranslationError(f"{where}.responseModalities: only TEXT output can be translated",
                               param=f"{where}.responseModalities")
    req.temperature = _g(gc, "temperature")
    req.top_p = _g(gc, "topP")
    top_k = _g(gc, "topK")
    req.top_k = int(top_k) if isinstance(top_k, (int, float)) else None
    limit = _g(gc, "maxOutputTokens")
    if isinstance(limit, int):
        req.max_tokens = limit
    stops = _g(gc, "stopSequences")
    if isinstance(stops, list):
        req.stop = [s for s in stops if isinstance(s, str)]
    req.presence_penalty = _g(gc, "presencePenalty")
    req.frequency_penalty = _g(gc, "frequencyPenalty")
    req.seed = _g(gc, "seed")
    mime = _g(gc, "responseMimeType")
    schema = _g(gc, "responseJsonSchema")
    if schema is None and _g(gc, "responseSchema") is not None:
        schema = openapi_to_json_schema(_g(gc, "responseSchema"))
    if mime in (None, "text/plain"):
        if schema is not None:
            ctx.warn("response schema without responseMimeType application/json ignored")
    elif mime == "application/json":
        req.response_format = (ResponseFormat("json_schema", schema=schema, name="response", strict=True)
                               if schema is not None else ResponseFormat("json_object"))
    else:
        raise TranslationError(f"{where}.responseMimeType: {mime!r} cannot be translated",
                               param=f"{where}.responseMimeType")
    tc = _g(gc, "thinkingConfig")
    if isinstance(tc, dict):
        budget = _g(tc, "thinkingBudget")
        level = _g(tc, "thinkingLevel")
        include = _g(tc, "includeThoughts")
        if budget is not None and level is not None:
            raise TranslationError(f"{where}.thinkingConfig: thinkingBudget and thinkingLevel are exclusive",
                                   param=f"{where}.thinkingConfig")
        if isinstance(level, str) and level.upper() != "THINKING_LEVEL_UNSPECIFIED":
            # MINIMAL is Gemini's lowest level, "low" everywhere else (some targets read "minimal" as unknown).
            effort = level.lower()
            req.reasoning = ReasoningConfig(True, effort="low" if effort == "minimal" else effort)
        elif isinstance(budget, int) and budget == 0:
            req.reasoning = ReasoningConfig(False)
        elif isinstance(budget, int) and budget > 0:
            req.reasoning = ReasoningConfig(True, budget_tokens=budget)
        elif budget == -1 or include:
            req.reasoning = ReasoningConfig(True)  # dynamic: the target spoke picks its default
    for key in _keys(gc) - _GEN_KNOWN:
        ctx.warn(f"generationConfig field {key!r} dropped (no equivalent upstream)")
    for key in ("mediaResolution", "speechConfig", "enableEnhancedCivicAnswers"):
        if _g(gc, key) is not None:
            ctx.warn(f"generationConfig field {key!r} dropped (no equivalent upstream)")


def parse_request(body: dict, ctx: Context) -> Request:
    if not isinstance(body, dict):
        raise TranslationError("request body must be a JSON object")
    model, method, _sse = parse_path(ctx.client_path)
    if method not in (None, "generateContent", "streamGenerateContent"):
        raise TranslationError(f"models.{method} cannot be translated (only generateContent and "
                               "streamGenerateContent)", status=404)
    contents = body.get("contents")
    if not isinstance(contents, list):
        raise TranslationError("contents: field required (an array)", param="contents")
    model = model or str(body.get("model") or "").removeprefix("models/")
    req = Request(model=model, stream=method == "streamGenerateContent", include_usage=True)
    system = _g(body, "systemInstruction")
    if isinstance(system, str):
        req.system = [Text(system)]
    elif isinstance(system, dict):
        req.system = [Text(p["text"]) for p in system.get("parts") or [] if isinstance(p, dict)
                      and isinstance(p.get("text"), str)]
    req.messages = _parse_contents(contents, ctx)
    req.tools = _parse_tools(body.get("tools"), ctx)
    _parse_tool_config(_g(body, "toolConfig"), req, ctx)
    gc = _g(body, "generationConfig")
    if isinstance(gc, dict):
        _parse_generation_config(gc, req, ctx)
    if _g(body, "cachedContent"):
        raise TranslationError("cachedContent: cached contents live at Google and cannot be translated",
                               param="cachedContent")
    if _g(body, "safetySettings"):
        ctx.warn("safetySettings dropped (no equivalent upstream)")
    for key in ("labels", "serviceTier"):
        if _g(body, key):
            ctx.warn(f"request field {key!r} dropped (no equivalent upstream)")
    for key in _keys(body) - _KNOWN_REQUEST_KEYS:
        ctx.warn(f"request field {key!r} dropped (no equivalent upstream)")
    return req


# ---------------------------------------------------------------------------------------------
# Requests: canonical → Gemini upstream


def _function_response(result: ToolResult, name: str, gemini_id: str | None, ctx: Context) -> tuple[dict, list]:
    texts = [p.text for p in result.content if isinstance(p, (Text, Refusal))]
    media = []
    for p in result.content:
        if isinstance(p, (Image, Document)) and (p.data is not None or p.url or getattr(p, "text", None) is not None):
            if isinstance(p, Document) and p.text is not None:
                texts.append(p.text)
            else:
                media.append(p)
    text = "\n".join(texts)
    if result.is_error:
        response: dict = {"error": text}
    else:
        try:
            value = json.loads(text) if text.strip().startswith("{") else None
        except ValueError:
            value = None
        response = value if isinstance(value, dict) else {"result": text}
    fr: dict = {"name": name, "response": response}
    if gemini_id:
        fr["id"] = gemini_id
    return {"functionResponse": fr}, media


def _render_media(p: Image | Document, where: str, ctx: Context) -> dict:
    if isinstance(p, Image) and p.detail not in (None, "auto"):
        ctx.warn(f"image detail {p.detail!r} dropped (Gemini has no per-image detail)")
    if isinstance(p, Document) and p.text is not None:
        return {"text": p.text}
    if p.data is not None:
        mime = p.media_type or ("image/png" if isinstance(p, Image) else "application/pdf")
        return {"inlineData": {"mimeType": mime, "data": p.data}}
    url = p.url or ""
    mime = p.media_type or mimetypes.guess_type(url.partition("?")[0])[0] or (
        "image/jpeg" if isinstance(p, Image) else "application/pdf")
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def _args_object(arguments: str, ctx: Context) -> dict:
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        ctx.warn("tool call with invalid JSON arguments sent as {} (arguments were not valid JSON)")
        return {}
    return value if isinstance(value, dict) else {"value": value}


def _render_contents(req: Request, ctx: Context) -> tuple[list[str], list[dict]]:
    system = [t.text for t in req.system if t.text]
    names: dict[str, str] = {}  # client tool id → function name (functionResponse needs the name)
    for m in req.messages:
        for p in m.parts:
            if isinstance(p, ToolCall):
                names[p.id] = p.name
    # Gemini 3 validates the signatures of the current turn: the model steps after the last user
    # message that is more than function results.
    turn_start = max((i for i, m in enumerate(req.messages) if m.role == "user"
                      and any(not isinstance(p, ToolResult) for p in m.parts)), default=-1)
    placeholder = not _NO_SIGNATURE_CHECK.search(req.model)
    out: list[dict] = []
    for i, m in enumerate(req.messages):
        where = f"messages[{i}]"
        if m.role == "system":
            ctx.warn("system message inside the conversation moved to systemInstruction (position lost)")
            system.extend(p.text for p in m.parts if isinstance(p, Text) and p.text)
            continue
        parts: list[dict] = []
        late: list[dict] = []
        signed_first = False
        for j, p in enumerate(m.parts):
            here = f"{where}.content[{j}]"
            if isinstance(p, (Text, Refusal)):
                if p.text:  # Gemini rejects empty text parts
                    parts.append({"text": p.text})
            elif isinstance(p, (Image, Document)):
                parts.append(_render_media(p, here, ctx))
            elif isinstance(p, ToolCall):
                gemini_id, signature = split_tool_id(p.id)
                fc: dict = {"name": p.name, "args": _args_object(p.arguments, ctx)}
                if gemini_id:
                    fc["id"] = gemini_id
                part: dict = {"functionCall": fc}
                if signature:
                    part["thoughtSignature"] = signature
                    signed_first = True
                elif not signed_first and m.role == "assistant" and i > turn_start and placeholder:
                    # Only the first call of a turn carries a signature; a turn from another model has none.
                    part["thoughtSignature"] = DUMMY_SIGNATURE
                    signed_first = True
                parts.append(part)
            elif isinstance(p, ToolResult):
                name = names.get(p.tool_call_id)
                if name is None:
                    raise TranslationError(f"{here}: tool result {p.tool_call_id!r} answers no tool call in the "
                                           "conversation (Gemini needs the function name)", param=here)
                gemini_id, _ = split_tool_id(p.tool_call_id)
                fr, media = _function_response(p, name, gemini_id, ctx)
                parts.append(fr)
                for k, x in enumerate(media):
                    ctx.warn("images in tool results moved to parts after the function responses")
                    late.append(_render_media(x, f"{here}.content[{k}]", ctx))
            elif isinstance(p, Reasoning):
                ctx.warn("reasoning from earlier turns not sent upstream (Gemini takes only its own signatures)")
        parts.extend(late)
        if not parts:
            continue
        role = "model" if m.role == "assistant" else "user"
        if out and out[-1]["role"] == role:  # Gemini expects alternating turns: merge
            out[-1]["parts"].extend(parts)
        else:
            out.append({"role": role, "parts": parts})
    for turn in out:
        if turn["role"] == "user":  # function responses open the user turn, in call order
            turn["parts"].sort(key=lambda x: "functionResponse" not in x)
    return system, out


def render_request(req: Request, ctx: Context) -> dict:
    if req.n not in (None, 1):
        raise TranslationError("n: only one candidate can be translated from Gemini", param="n")
    if req.logprobs or req.top_logprobs:
        raise TranslationError("logprobs: log probabilities cannot be translated from Gemini", param="logprobs")
    if req.logit_bias:
        raise TranslationError("logit_bias: not supported by Gemini", param="logit_bias")
    system, contents = _render_contents(req, ctx)
    out: dict = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
    gc: dict = {}
    if req.max_tokens is not None:
        gc["maxOutputTokens"] = req.max_tokens
    for key, name in (("temperature", "temperature"), ("top_p", "topP"), ("top_k", "topK"), ("seed", "seed"),
                      ("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty")):
        value = getattr(req, key)
        if value is not None:
            gc[name] = value
    if req.stop:
        if len(req.stop) > MAX_STOP_SEQUENCES:
            raise TranslationError(f"stop: Gemini accepts at most {MAX_STOP_SEQUENCES} stop sequences",
                                   param="stop")
        gc["stopSequences"] = list(req.stop)
    fmt = req.response_format
    if fmt is not None and fmt.kind == "json_schema":
        gc["responseMimeType"] = "application/json"
        gc["responseJsonSchema"] = fmt.schema or {"type": "object"}
    elif fmt is not None and fmt.kind == "json_object":
        gc["responseMimeType"] = "application/json"
    r = req.reasoning
    if r is not None:
        if r.enabled:
            budget = r.budget_tokens or (budget_for_effort(r.effort) if r.effort else -1)
            gc["thinkingConfig"] = {"includeThoughts": True, "thinkingBudget": budget}
        elif _ALWAYS_THINKS.search(req.model):
            ctx.warn("thinking cannot be turned off on this Gemini model: left at its default")
        else:
            gc["thinkingConfig"] = {"thinkingBudget": 0}
    if gc:
        out["generationConfig"] = gc
    if req.tools:
        decls = []
        for t in req.tools:
            decl: dict = {"name": t.name}
            if t.description:
                decl["description"] = t.description
            # JSON Schema as is: the OpenAPI-subset `parameters` rejects many JSON Schema keywords.
            decl["parametersJsonSchema"] = t.parameters or {"type": "object", "properties": {}}
            if t.strict:
                ctx.warn("tool strict mode dropped (Gemini has no strict flag)")
            decls.append(decl)
        out["tools"] = [{"functionDeclarations": decls}]
        c = req.tool_choice
        if c is not None:
            fcc: dict = {"mode": {"auto": "AUTO", "required": "ANY", "none": "NONE", "tool": "ANY"}[c.mode]}
            if c.mode == "tool":
                fcc["allowedFunctionNames"] = [c.name]
            out["toolConfig"] = {"functionCallingConfig": fcc}
        if req.parallel_tool_calls is False:
            ctx.warn("parallel_tool_calls=false dropped (Gemini cannot disable parallel calls)")
    if req.user:
        ctx.warn("user id dropped (Gemini has no end-user field)")
    return out


# ---------------------------------------------------------------------------------------------
# Non-stream responses


def _finish_in(reason, ctx: Context) -> str | None:
    if reason is None:
        return None
    reason = str(reason)
    if reason == "STOP":
        return END
    if reason == "MAX_TOKENS":
        return MAX_TOKENS
    if reason in _FILTERED:
        return CONTENT_FILTER
    ctx.warn(f"finishReason {reason!r} reported as end of turn")
    return END


def _candidate(body: dict, ctx: Context) -> dict:
    candidates = body.get("candidates")
    if not isinstance(candidates, list) or not candidates:
        return {}
    if len(candidates) > 1:
        ctx.warn("only the first of several candidates was translated")
    return as_dict(candidates[0])


def _drop_part(part: dict, ctx: Context) -> None:
    if _g(part, "executableCode") is not None or _g(part, "codeExecutionResult") is not None:
        ctx.warn("code execution parts dropped (no equivalent for the client)")
    elif _g(part, "inlineData") is not None or _g(part, "fileData") is not None:
        ctx.warn("media output dropped (no equivalent for the client)")
    elif part:
        ctx.warn(f"response part with fields {sorted(_keys(part))} dropped")


def parse_response(body: dict, ctx: Context) -> Response:
    if not isinstance(body.get("candidates"), list) and not isinstance(_g(body, "promptFeedback"), dict):
        raise TypeError("no candidates")
    rid = str(_g(body, "responseId") or "") or new_id("gemini-")
    candidate = _candidate(body, ctx)
    parts: list = []
    n = 0
    warned = False
    for part in as_dict(candidate.get("content")).get("parts") or []:
        part = as_dict(part)
        fc = _g(part, "functionCall")
        signature = _g(part, "thoughtSignature")
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
        _drop_part(part, ctx)
    if _g(candidate, "groundingMetadata") or _g(candidate, "citationMetadata"):
        ctx.warn("grounding/citation metadata dropped (no equivalent for the client)")
    stop = _finish_in(_g(candidate, "finishReason"), ctx)
    if not candidate and _g(as_dict(_g(body, "promptFeedback")), "blockReason"):
        stop = CONTENT_FILTER  # the prompt itself was blocked: no candidates at all
    usage = _g(body, "usageMetadata")
    return Response(id=rid, model=str(_g(body, "modelVersion") or ""), parts=_merge_adjacent(parts),
                    stop_reason=stop or END, usage=parse_usage(usage) if isinstance(usage, dict) else None)


def _reasoning_part(text: str, signature: str | None = None, redacted: str | None = None) -> dict:
    part: dict = {"text": text, "thought": True}
    if redacted is not None:
        part["thoughtSignature"] = _encode_foreign({"r": redacted})
    elif signature:
        part["thoughtSignature"] = _encode_foreign({"s": signature})
    return part


def _call_part(call_id: str, name: str, args: dict) -> dict:
    return {"functionCall": {"id": call_id, "name": name, "args": args}}


def render_response(resp: Response, ctx: Context) -> dict:
    parts: list[dict] = []
    for p in resp.parts:
        if isinstance(p, (Text, Refusal)):
            if p.text:
                parts.append({"text": p.text})
        elif isinstance(p, Reasoning):
            parts.append(_reasoning_part(p.text, p.signature, p.redacted))
        elif isinstance(p, ToolCall):
            try:
                value = json.loads(p.arguments) if p.arguments.strip() else {}
            except ValueError:
                if resp.stop_reason == MAX_TOKENS:
                    ctx.warn("tool call cut off by the output limit dropped from the response")
                    continue
                ctx.warn("tool call with invalid JSON arguments returned with args {}")
                value = {}
            parts.append(_call_part(p.id, p.name, value if isinstance(value, dict) else {"value": value}))
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


# ---------------------------------------------------------------------------------------------
# Streams

_PATH_TOKEN = re.compile(r"\.([A-Za-z_$][\w$-]*)|\[(\d+)\]|\[['\"]((?:[^'\"\\]|\\.)*)['\"]\]")


def _json_path(path: str) -> list | None:
    if not path.startswith("$"):
        return None
    keys: list = []
    pos = 1
    while pos < len(path):
        m = _PATH_TOKEN.match(path, pos)
        if not m:
            return None
        keys.append(m.group(1) if m.group(1) is not None else int(m.group(2)) if m.group(2) is not None
                    else m.group(3))
        pos = m.end()
    return keys


class ArgsWriter:
    """Streamed function-call arguments (`partialArgs`: one JSON path and value at a time, in document
    order, strings in pieces) → the JSON text of the arguments object, written as it arrives so the
    client sees the call progress. A path that goes back to something already written (never seen from
    Gemini) ends the object there: the text stays valid JSON and the rest is dropped with a warning."""

    __slots__ = ("_stack", "_string", "broken", "closed")

    def __init__(self) -> None:
        self._stack: list[list] = []  # open containers: [kind "o"/"a", keys written (set) / next index, child key]
        self._string: list | None = None  # path of the string still being written
        self.broken = False
        self.closed = False

    def value(self, path: list, value, *, is_string: bool, more: bool) -> str:
        if self.broken or self.closed:
            return ""
        out: list[str] = []
        if not self._stack:
            self._stack.append(["o", set(), None])
            out.append("{")
        if self._string is not None:
            if is_string and path == self._string:
                out.append(json.dumps(value)[1:-1])
                if not more:
                    out.append('"')
                    self._string = None
                return "".join(out)
            out.append('"')
            self._string = None
        open_path = [entry[2] for entry in self._stack[:-1]]
        parent = path[:-1]
        common = 0
        while common < min(len(open_path), len(parent)) and open_path[common] == parent[common]:
            common += 1
        while len(self._stack) - 1 > common:
            out.append("}" if self._stack.pop()[0] == "o" else "]")
            self._stack[-1][2] = None
        for depth, key in enumerate(path[common:], start=common):
            entry = self._stack[-1]
            if entry[0] == "o" and isinstance(key, str) and key not in entry[1]:
                out.append(("," if entry[1] else "") + json.dumps(key) + ":")
                entry[1].add(key)
            elif entry[0] == "a" and isinstance(key, int) and key >= entry[1]:
                for _ in range(entry[1], key):
                    out.append(("," if entry[1] else "") + "null")
                    entry[1] += 1
                out.append("," if entry[1] else "")
                entry[1] = key + 1
            else:
                self.broken = True
                return "".join(out) + self.close()
            if depth == len(path) - 1:
                if is_string:
                    out.append(json.dumps(value)[:-1] if more else json.dumps(value))
                    if more:
                        self._string = list(path)
                else:
                    out.append(json.dumps(value))
            else:
                child = path[depth + 1]
                entry[2] = key
                self._stack.append(["a", 0, None] if isinstance(child, int) else ["o", set(), None])
                out.append("[" if isinstance(child, int) else "{")
        return "".join(out)

    def close(self) -> str:
        if self.closed:
            return ""
        self.closed = True
        if not self._stack:
            return "{}"
        out = '"' if self._string is not None else ""
        while self._stack:
            out += "}" if self._stack.pop()[0] == "o" else "]"
        return out


class StreamParser:
    """Gemini SSE chunks (each a whole GenerateContentResponse) → canonical stream events."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._started = False
        self._next = 0
        self._open: int | None = None  # open text/reasoning block
        self._open_kind: str | None = None
        self._partial: int | None = None  # block index of a function call whose arguments stream (partialArgs)
        self._writer = ArgsWriter()
        self._calls = 0
        self._rid = ""
        self._usage: Usage | None = None
        self._warned_sig = False

    def _block(self, kind: str, out: list, **kw) -> int:
        self._close_text(out)
        index = self._next
        self._next += 1
        out.append(BlockStart(index, kind, **kw))
        return index

    def _close_text(self, out: list) -> None:
        if self._open is not None:
            out.append(BlockStop(self._open))
            self._open = self._open_kind = None

    def _close_partial(self, out: list) -> None:
        if self._partial is not None:
            self._emit_args(self._writer.close(), out)
            out.append(BlockStop(self._partial))
            self._partial = None

    def _emit_args(self, text: str, out: list) -> None:
        if text:
            out.append(Delta(self._partial, text))

    def _text(self, kind: str, text: str, out: list) -> None:
        self._close_partial(out)
        if self._open is None or self._open_kind != kind:
            self._open = self._block(kind, out)
            self._open_kind = kind
        out.append(Delta(self._open, text))

    def _function_call(self, fc: dict, signature, out: list) -> None:
        name = fc.get("name")
        if name:
            self._close_partial(out)
            self._close_text(out)
            cid = make_tool_id(fc.get("id") or None, self._rid, self._calls, signature)
            self._calls += 1
            index = self._block(TOOL_CALL, out, id=cid, name=str(name))
            if fc.get("willContinue") and fc.get("args") is None:
                self._partial = index
                self._writer = ArgsWriter()
                self._apply_partial(fc, out)
                return
            args = fc.get("args")
            out.append(Delta(index, json.dumps(args if args is not None else {})))
            out.append(BlockStop(index))
            return
        if self._partial is None:
            if fc.get("args") or _g(fc, "partialArgs"):
                self.ctx.warn("function-call fragment without a started call dropped")
            return
        self._apply_partial(fc, out)
        if not fc.get("willContinue"):
            self._close_partial(out)

    def _apply_partial(self, fc: dict, out: list) -> None:
        w = self._writer
        if isinstance(fc.get("args"), dict):
            for key, value in fc["args"].items():
                self._emit_args(w.value([key], value, is_string=False, more=False), out)
        for pa in _g(fc, "partialArgs") or []:
            pa = as_dict(pa)
            keys = _json_path(str(_g(pa, "jsonPath") or ""))
            more = bool(_g(pa, "willContinue"))
            if "stringValue" in pa or "string_value" in pa:
                value, is_string = str(_g(pa, "stringValue") or ""), True
            elif "numberValue" in pa or "number_value" in pa:
                value, is_string = _g(pa, "numberValue"), False
            elif "boolValue" in pa or "bool_value" in pa:
                value, is_string = bool(_g(pa, "boolValue")), False
            elif "nullValue" in pa or "null_value" in pa:
                value, is_string = None, False
            else:
                continue
            if not keys:
                self.ctx.warn("function-call argument with an unusable jsonPath dropped")
                continue
            self._emit_args(w.value(keys, value, is_string=is_string, more=more), out)
            if w.broken:
                self.ctx.warn("function-call arguments that arrived out of order were cut at that point")

    def feed(self, event: str | None, data: str) -> list:
        chunk = json.loads(data)
        if isinstance(chunk, list):  # a JSON-array stream element that arrived as one SSE event
            out: list = []
            for c in chunk:
                out.extend(self._chunk(as_dict(c)))
            return out
        return self._chunk(as_dict(chunk))

    def _chunk(self, chunk: dict) -> list:
        out: list = []
        if chunk.get("error"):
            return [StreamError(_error_from_payload(chunk["error"], None))]
        if not self._started:
            self._started = True
            self._rid = str(_g(chunk, "responseId") or "") or new_id("gemini-")
            out.append(StreamStart(self._rid, str(_g(chunk, "modelVersion") or "")))
        candidate = _candidate(chunk, self.ctx)
        for part in as_dict(candidate.get("content")).get("parts") or []:
            part = as_dict(part)
            fc = _g(part, "functionCall")
            signature = _g(part, "thoughtSignature")
            if isinstance(fc, dict):
                self._function_call(fc, signature, out)
                continue
            text = part.get("text")
            if isinstance(text, str):
                if text:
                    self._text(REASONING if part.get("thought") is True else TEXT, text, out)
                if signature and not self._warned_sig:
                    self._warned_sig = True
                    self.ctx.warn("thoughtSignature on a text part dropped (only function-call signatures "
                                  "are carried)")
                continue
            _drop_part(part, self.ctx)
        if _g(candidate, "groundingMetadata") or _g(candidate, "citationMetadata"):
            self.ctx.warn("grounding/citation metadata dropped (no equivalent for the client)")
        reason = _g(candidate, "finishReason")
        blocked = not candidate and _g(as_dict(_g(chunk, "promptFeedback")), "blockReason")
        if reason is not None or blocked:
            self._close_partial(out)
            self._close_text(out)
        usage = _g(chunk, "usageMetadata")
        if isinstance(usage, dict):
            parsed = parse_usage(usage)
            if parsed is not None and parsed != self._usage:
                self._usage = parsed
                out.append(UsageUpdate(parsed))
        if reason is not None or blocked:
            out.append(StreamFinish(CONTENT_FILTER if blocked else _finish_in(reason, self.ctx)))
        return out


    def comment(self, text: str) -> list:
        return [KeepAlive()]  # Gemini sends none; a compatible server's keep-alive is passed on


class StreamRenderer:
    """Canonical stream events → Gemini SSE chunks (`data: {…}\\r\\n\\r\\n`, as Gemini frames them), or a
    JSON array when the app called streamGenerateContent without `alt=sse`."""

    def __init__(self, ctx: Context, request: Request | None):
        self.ctx = ctx
        _, method, sse = parse_path(ctx.client_path)
        self._array = method == "streamGenerateContent" and not sse
        self._sent = False
        self._id = new_id("llmitm-")
        self._model = request.model if request is not None else ""
        self._kinds: dict[int, str] = {}
        self._calls: dict[int, list] = {}  # block index → [id, name, argument text]
        self._bad_calls: list = []  # calls whose arguments did not parse: fate decided by the stop reason
        self._usage: Usage | None = None
        self._finish: StreamFinish | None = None
        self._done = False

    def _emit(self, out: list, parts: list[dict] | None, finish: str | None = None, usage: bool = False) -> None:
        candidate: dict = {"content": {"role": "model", "parts": parts or [{"text": ""}]}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        chunk: dict = {"candidates": [candidate]}
        if self._usage is not None:
            chunk["usageMetadata"] = render_usage(self._usage)
        chunk["modelVersion"] = self._model
        chunk["responseId"] = self._id
        self._write(out, json.dumps(chunk, separators=(",", ":")).encode())

    def _write(self, out: list, payload: bytes) -> None:
        if self._array:
            out.append((b"," if self._sent else b"[") + payload + b"\r\n")
        else:
            out.append(b"data: " + payload + b"\r\n\r\n")
        self._sent = True

    def render(self, ev, out: list) -> None:
        if self._done:
            return
        cls = ev.__class__
        if cls is Delta:
            kind = self._kinds.get(ev.index)
            if kind == TOOL_CALL:
                self._calls[ev.index][2] += ev.text
            elif kind == REASONING:
                self._emit(out, [{"text": ev.text, "thought": True}])
            elif kind in (TEXT, REFUSAL):
                self._emit(out, [{"text": ev.text}])
        elif cls is StreamStart:
            self._id = ev.id or self._id
            self._model = ev.model or self._model
            if ev.usage is not None:
                self._usage = ev.usage
        elif cls is BlockStart:
            self._kinds[ev.index] = ev.kind
            if ev.kind == TOOL_CALL:
                self._calls[ev.index] = [ev.id or new_id("call_"), ev.name or "", ""]
            elif ev.kind == REDACTED:
                self._emit(out, [_reasoning_part("", None, ev.data or "")])
        elif cls is SignatureDelta:
            if self._kinds.get(ev.index) == REASONING:
                self._emit(out, [_reasoning_part("", ev.signature)])
        elif cls is BlockStop:
            call = self._calls.pop(ev.index, None)
            if call is not None:
                try:
                    value = json.loads(call[2]) if call[2].strip() else {}
                except ValueError:
                    self._bad_calls.append(call)
                    return
                self._emit(out, [_call_part(call[0], call[1], value if isinstance(value, dict)
                                            else {"value": value})])
        elif cls is UsageUpdate:
            self._usage = ev.usage
        elif cls is StreamFinish:
            self._finish = ev  # the finishReason chunk waits for a trailing usage chunk (OpenAI sends it last)
        elif cls is StreamEnd:
            fin = self._finish or StreamFinish(END)
            parts: list[dict] = []
            for call in [*self._calls.values(), *self._bad_calls]:
                if fin.stop_reason == MAX_TOKENS:
                    self.ctx.warn("tool call cut off by the output limit dropped from the response")
                    continue
                self.ctx.warn("tool call with invalid JSON arguments returned with args {}")
                parts.append(_call_part(call[0], call[1], {}))
            if fin.stop_reason == PAUSE:
                self.ctx.warn("Anthropic pause_turn reported as finishReason STOP")
            self._emit(out, parts, FINISH_OUT.get(fin.stop_reason or END, "STOP"), usage=True)
            self._close(out)
        elif cls is StreamError:
            if self._array:
                self._write(out, json.dumps(error_body(ev.error)).encode())
            else:
                out.append(render_stream_error(ev.error))
            self._close(out)
        elif cls is KeepAlive and not self._array:
            out.append(b"\r\n")  # a blank line dispatches nothing but keeps the connection busy

    def _close(self, out: list) -> None:
        self._done = True
        if self._array:
            out.append(b"]" if self._sent else b"[]")


# ---------------------------------------------------------------------------------------------
# The registry record (spoke.py states the contract; registry.py lists every record). Imported
# here, at the end, because the record holds this module: the package itself, named so that
# mypy checks it against spoke.Codec, and its wire facts.

from .. import gemini as _codec  # noqa: E402  (this package, complete by now)
from ..spoke import SpokeRecord  # noqa: E402
from . import wire  # noqa: E402

SPOKE = SpokeRecord(codec=_codec, wire=wire)
