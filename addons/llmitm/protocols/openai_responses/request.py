"""Requests: Responses client → canonical, and canonical → Responses upstream."""

from __future__ import annotations

import hashlib

from ..canonical import Context, ReasoningConfig, Request, ResponseFormat, Text, TranslationError
from ..field_types import typed
from ..policy import effort_for_budget
from .input_items import parse_input, render_input
from .tools import parse_tool_choice, parse_tools, render_tools

# Stateful features: they need OpenAI's response store, which llmitm does not have.
_STATEFUL = {"previous_response_id", "conversation", "prompt"}
_KNOWN_REQUEST_KEYS = {
    "model", "input", "instructions", "max_output_tokens", "temperature", "top_p", "top_logprobs", "tools",
    "tool_choice", "parallel_tool_calls", "reasoning", "text", "include", "stream", "user", "safety_identifier",
    "store", "background", "previous_response_id", "conversation", "prompt", "truncation", "stream_options",
}
_OUTPUT_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
MIN_OUTPUT_TOKENS = 16  # OpenAI rejects a smaller max_output_tokens


def _response_format(fmt: dict) -> ResponseFormat | None:
    kind = fmt.get("type")
    if kind == "json_object":
        return ResponseFormat("json_object")
    if kind == "json_schema":
        where = "text.format"
        return ResponseFormat("json_schema", typed(fmt.get("schema"), "an object", f"{where}.schema"),
                              typed(fmt.get("name"), "a string", f"{where}.name"),
                              typed(fmt.get("strict"), "a boolean", f"{where}.strict"),
                              typed(fmt.get("description"), "a string", f"{where}.description"))
    if fmt and kind != "text":
        raise TranslationError(f"text.format: type {kind!r} cannot be translated", param="text.format")
    return None


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
    req = Request(model=typed(body.get("model"), "a string", "model", ""), stream=bool(body.get("stream")),
                  include_usage=True)
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        if instructions:
            req.system.append(Text(instructions))
    elif isinstance(instructions, list):
        sub = Request(model="")
        parse_input(instructions, sub, ctx)
        req.system.extend(sub.system)
        req.system.extend(p for m in sub.messages for p in m.parts if isinstance(p, Text))
    elif instructions is not None:
        raise TranslationError("instructions: must be a string or an array of items", param="instructions")
    if "input" not in body:
        raise TranslationError("input: field required", param="input")
    parse_input(body["input"], req, ctx)
    req.max_tokens = typed(body.get("max_output_tokens"), "an integer", "max_output_tokens")
    req.temperature = typed(body.get("temperature"), "a number", "temperature")
    req.top_p = typed(body.get("top_p"), "a number", "top_p")
    include = [x for x in typed(body.get("include"), "an array", "include", []) if isinstance(x, str)]
    if body.get("top_logprobs") or "message.output_text.logprobs" in include:
        raise TranslationError("top_logprobs: log probabilities cannot be translated", param="top_logprobs")
    for x in include:
        if x != "reasoning.encrypted_content":
            ctx.warn(f"include {x!r} dropped (no equivalent upstream)")
    req.tools = parse_tools(body.get("tools"), ctx) + req.tools  # + those declared in `additional_tools` items
    req.tool_choice = parse_tool_choice(body.get("tool_choice"), req)
    req.parallel_tool_calls = typed(body.get("parallel_tool_calls"), "a boolean", "parallel_tool_calls")
    reasoning = typed(body.get("reasoning"), "an object", "reasoning", {})
    effort = typed(reasoning.get("effort"), "a string", "reasoning.effort")
    if effort is not None:
        req.reasoning = ReasoningConfig(effort != "none", effort=effort)
    elif reasoning.get("summary") or reasoning.get("generate_summary"):
        req.reasoning = ReasoningConfig(True)  # a summary asked for: reasoning at the default effort
    text = typed(body.get("text"), "an object", "text", {})
    req.response_format = _response_format(typed(text.get("format"), "an object", "text.format", {}))
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
    out: dict = {"model": req.model, "input": render_input(req, ctx)}
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
        out["tools"] = render_tools(req.tools)
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

