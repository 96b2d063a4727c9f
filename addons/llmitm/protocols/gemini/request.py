"""Requests: Gemini client → canonical (tools, toolConfig, generationConfig, the body) and canonical → Gemini upstream."""

from __future__ import annotations

import re

from ..canonical import (
    HOSTED_WEB_SEARCH,
    Context,
    ReasoningConfig,
    Request,
    ResponseFormat,
    Text,
    Tool,
    ToolChoice,
    TranslationError,
)
from ..policy import budget_for_effort
from .contents import parse_contents, render_contents
from .fields import camel_keys, get_field, parse_path, typed_field
from .schema import openapi_to_json_schema, standard_json_schema

MAX_STOP_SEQUENCES = 5

_KNOWN_REQUEST_KEYS = {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig",
                       "safetySettings", "labels", "serviceTier", "model", "cachedContent"}
# Hosted Gemini tools: they run at Google. Those with an equivalent elsewhere become canonical hosted
# tools; the others cannot run on another upstream.
_HOSTED_EQUIVALENT = {"googleSearch": HOSTED_WEB_SEARCH}
_HOSTED_ONLY_AT_GOOGLE = {"googleSearchRetrieval", "codeExecution", "urlContext", "fileSearch", "computerUse",
                          "googleMaps", "enterpriseWebSearch", "retrieval", "mcpServers"}
_ALWAYS_THINKS = re.compile(r"gemini-(3|2\.5-pro)")


def _parse_tools(tools, ctx: Context) -> list[Tool]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise TranslationError("tools: must be an array", param="tools")
    out: list[Tool] = []
    for i, t in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(t, dict):
            raise TranslationError(f"{where}: a tool must be an object", param=where)
        for key in sorted(camel_keys(t) - {"functionDeclarations"}):
            if key in _HOSTED_EQUIVALENT:
                if get_field(t, key):
                    ctx.warn(f"{where}.{key}: its options are not carried (the upstream's own search runs)")
                out.append(Tool(f"{where}.{key}", hosted=_HOSTED_EQUIVALENT[key]))
            elif key in _HOSTED_ONLY_AT_GOOGLE:
                raise TranslationError(f"{where}.{key}: Gemini's hosted tool cannot run on this upstream",
                                       param=f"{where}.{key}")
            else:
                ctx.warn(f"tool field {key!r} dropped (no equivalent upstream)")
        declarations = typed_field(t, "functionDeclarations", "an array", where, [])
        for j, fd in enumerate(declarations):
            here = f"{where}.functionDeclarations[{j}]"
            if not isinstance(fd, dict):
                raise TranslationError(f"{here}: a function declaration must be an object", param=here)
            schema = typed_field(fd, "parametersJsonSchema", "an object", here)
            if schema is not None:
                schema, _ = standard_json_schema(schema, close_objects=False)
            elif (parameters := typed_field(fd, "parameters", "an object", here)) is not None:
                schema = openapi_to_json_schema(parameters)
            for key in camel_keys(fd) - {"name", "description", "parameters", "parametersJsonSchema"}:
                ctx.warn(f"functionDeclaration field {key!r} dropped (no equivalent upstream)")
            out.append(Tool(typed_field(fd, "name", "a string", here, ""),
                            typed_field(fd, "description", "a string", here), schema))
    return out


def _parse_tool_config(config, req: Request, ctx: Context) -> None:
    if config is None:
        return
    if not isinstance(config, dict):
        raise TranslationError("toolConfig: must be an object", param="toolConfig")
    where = "toolConfig.functionCallingConfig"
    fcc = typed_field(config, "functionCallingConfig", "an object", "toolConfig")
    if not fcc:
        return
    mode = typed_field(fcc, "mode", "a string", where, "AUTO").upper()
    allowed = typed_field(fcc, "allowedFunctionNames", "an array", where)
    if allowed and not all(isinstance(name, str) for name in allowed):
        raise TranslationError(f"{where}.allowedFunctionNames: must be an array of strings",
                               param=f"{where}.allowedFunctionNames")
    if get_field(fcc, "streamFunctionCallArguments"):
        ctx.warn("streamFunctionCallArguments ignored (function calls arrive whole)")
    if allowed:  # the subset is all the upstream will see
        req.tools = [t for t in req.tools if t.hosted or t.name in allowed]
    if mode == "ANY":
        if allowed and len(allowed) == 1:
            req.tool_choice = ToolChoice("tool", allowed[0])
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
        raise TranslationError(f"{where}.mode: unknown value {mode!r}", param=f"{where}.mode")


_GEN_KNOWN = {"temperature", "topP", "topK", "candidateCount", "maxOutputTokens", "stopSequences",
              "presencePenalty", "frequencyPenalty", "seed", "responseMimeType", "responseSchema",
              "responseJsonSchema", "responseJsonSchemaOrdering", "thinkingConfig", "responseModalities",
              "responseLogprobs", "logprobs", "mediaResolution", "speechConfig", "enableEnhancedCivicAnswers"}


def _response_format(gc: dict, where: str) -> ResponseFormat | None:
    """responseMimeType + responseJsonSchema / responseSchema → the canonical response format."""
    mime = typed_field(gc, "responseMimeType", "a string", where)
    schema = typed_field(gc, "responseJsonSchema", "an object", where)
    if schema is None and (openapi := typed_field(gc, "responseSchema", "an object", where)) is not None:
        schema = openapi_to_json_schema(openapi)
    if mime in (None, "text/plain"):
        return None
    if mime != "application/json":
        raise TranslationError(f"{where}.responseMimeType: {mime!r} cannot be translated",
                               param=f"{where}.responseMimeType")
    if schema is None:
        return ResponseFormat("json_object")
    schema, strict_ready = standard_json_schema(schema, close_objects=True)
    return ResponseFormat("json_schema", schema=schema, name="response", strict=strict_ready)


def _parse_thinking_config(tc: dict, req: Request, where: str) -> None:
    budget = typed_field(tc, "thinkingBudget", "an integer", where)
    level = typed_field(tc, "thinkingLevel", "a string", where)
    include = typed_field(tc, "includeThoughts", "a boolean", where)
    if budget is not None and level is not None:
        raise TranslationError(f"{where}: thinkingBudget and thinkingLevel are exclusive", param=where)
    if level is not None and level.upper() != "THINKING_LEVEL_UNSPECIFIED":
        # MINIMAL is Gemini's lowest level, "low" everywhere else (some targets read "minimal" as unknown).
        effort = level.lower()
        req.reasoning = ReasoningConfig(True, effort="low" if effort == "minimal" else effort)
    elif budget == 0:
        req.reasoning = ReasoningConfig(False)
    elif budget is not None and budget > 0:
        req.reasoning = ReasoningConfig(True, budget_tokens=budget)
    elif budget == -1 or include:
        req.reasoning = ReasoningConfig(True)  # dynamic: the target spoke picks its default


def _parse_generation_config(gc: dict, req: Request, ctx: Context) -> None:
    where = "generationConfig"
    count = typed_field(gc, "candidateCount", "an integer", where)
    if count is not None and count > 1:
        raise TranslationError(f"{where}.candidateCount: only one candidate can be translated",
                               param=f"{where}.candidateCount")
    if get_field(gc, "responseLogprobs") or get_field(gc, "logprobs"):
        raise TranslationError(f"{where}.responseLogprobs: log probabilities cannot be translated",
                               param=f"{where}.responseLogprobs")
    modalities = typed_field(gc, "responseModalities", "an array", where, [])
    if any(not isinstance(m, str) or m.upper() != "TEXT" for m in modalities):
        raise TranslationError(f"{where}.responseModalities: only TEXT output can be translated",
                               param=f"{where}.responseModalities")
    req.temperature = typed_field(gc, "temperature", "a number", where)
    req.top_p = typed_field(gc, "topP", "a number", where)
    top_k = typed_field(gc, "topK", "a number", where)
    req.top_k = int(top_k) if top_k is not None else None
    req.max_tokens = typed_field(gc, "maxOutputTokens", "an integer", where)
    stops = typed_field(gc, "stopSequences", "an array", where, [])
    if not all(isinstance(stop, str) for stop in stops):
        raise TranslationError(f"{where}.stopSequences: must be an array of strings", param=f"{where}.stopSequences")
    req.stop = list(stops)
    req.presence_penalty = typed_field(gc, "presencePenalty", "a number", where)
    req.frequency_penalty = typed_field(gc, "frequencyPenalty", "a number", where)
    req.seed = typed_field(gc, "seed", "an integer", where)
    req.response_format = _response_format(gc, where)
    if req.response_format is None and (get_field(gc, "responseJsonSchema") or get_field(gc, "responseSchema")):
        ctx.warn("response schema without responseMimeType application/json ignored")
    tc = typed_field(gc, "thinkingConfig", "an object", where)
    if tc is not None:
        _parse_thinking_config(tc, req, f"{where}.thinkingConfig")
    for key in camel_keys(gc) - _GEN_KNOWN:
        ctx.warn(f"generationConfig field {key!r} dropped (no equivalent upstream)")
    for key in ("mediaResolution", "speechConfig", "enableEnhancedCivicAnswers"):
        if get_field(gc, key) is not None:
            ctx.warn(f"generationConfig field {key!r} dropped (no equivalent upstream)")


def _system_instruction(system) -> list[Text]:
    if system is None:
        return []
    if isinstance(system, str):
        return [Text(system)]
    if not isinstance(system, dict):
        raise TranslationError("systemInstruction: must be a content object", param="systemInstruction")
    parts = typed_field(system, "parts", "an array", "systemInstruction", [])
    return [Text(p["text"]) for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]


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
    model = model or typed_field(body, "model", "a string", "", "").removeprefix("models/")
    req = Request(model=model, stream=method == "streamGenerateContent", include_usage=True)
    req.system = _system_instruction(get_field(body, "systemInstruction"))
    req.messages = parse_contents(contents, ctx)
    req.tools = _parse_tools(body.get("tools"), ctx)
    _parse_tool_config(get_field(body, "toolConfig"), req, ctx)
    gc = typed_field(body, "generationConfig", "an object", "")
    if gc is not None:
        _parse_generation_config(gc, req, ctx)
    if get_field(body, "cachedContent"):
        raise TranslationError("cachedContent: cached contents live at Google and cannot be translated",
                               param="cachedContent")
    if get_field(body, "safetySettings"):
        ctx.warn("safetySettings dropped (no equivalent upstream)")
    for key in ("labels", "serviceTier"):
        if get_field(body, key):
            ctx.warn(f"request field {key!r} dropped (no equivalent upstream)")
    for key in camel_keys(body) - _KNOWN_REQUEST_KEYS:
        ctx.warn(f"request field {key!r} dropped (no equivalent upstream)")
    return req


def render_request(req: Request, ctx: Context) -> dict:
    if req.n not in (None, 1):
        raise TranslationError("n: only one candidate can be translated from Gemini", param="n")
    if req.logprobs or req.top_logprobs:
        raise TranslationError("logprobs: log probabilities cannot be translated from Gemini", param="logprobs")
    if req.logit_bias:
        raise TranslationError("logit_bias: not supported by Gemini", param="logit_bias")
    system, contents = render_contents(req, ctx)
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
        hosted = []
        for t in req.tools:
            if t.hosted == HOSTED_WEB_SEARCH:
                hosted.append({"googleSearch": {}})
                continue
            decl: dict = {"name": t.name}
            if t.description:
                decl["description"] = t.description
            # JSON Schema as is: the OpenAPI-subset `parameters` rejects many JSON Schema keywords.
            decl["parametersJsonSchema"] = t.parameters or {"type": "object", "properties": {}}
            if t.strict:
                ctx.warn("tool strict mode dropped (Gemini has no strict flag)")
            decls.append(decl)
        out["tools"] = ([{"functionDeclarations": decls}] if decls else []) + hosted
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
