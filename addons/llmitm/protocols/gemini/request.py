"""Requests: Gemini client → canonical (tools, toolConfig, generationConfig, the body) and canonical → Gemini upstream."""

from __future__ import annotations

import re

from ..canonical import (
    Context,
    ReasoningConfig,
    Request,
    ResponseFormat,
    Text,
    Tool,
    ToolChoice,
    TranslationError,
    as_dict,
    budget_for_effort,
)
from .contents import parse_contents, render_contents
from .fields import camel_keys, get_field, parse_path
from .schema import openapi_to_json_schema

MAX_STOP_SEQUENCES = 5

_KNOWN_REQUEST_KEYS = {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig",
                       "safetySettings", "labels", "serviceTier", "model", "cachedContent"}
# Hosted Gemini tools: they run at Google, the other upstream cannot run them.
_HOSTED_TOOLS = {"googleSearch", "googleSearchRetrieval", "codeExecution", "urlContext", "fileSearch",
                 "computerUse", "googleMaps", "enterpriseWebSearch", "retrieval", "mcpServers"}
_ALWAYS_THINKS = re.compile(r"gemini-(3|2\.5-pro)")


def _parse_tools(tools, ctx: Context) -> list[Tool]:
    out: list[Tool] = []
    for i, t in enumerate(tools if isinstance(tools, list) else []):
        t = as_dict(t)
        for key in camel_keys(t) - {"functionDeclarations"}:
            if key in _HOSTED_TOOLS:
                raise TranslationError(f"tools[{i}].{key}: Gemini's hosted tool cannot run on this upstream",
                                       param=f"tools[{i}].{key}")
            ctx.warn(f"tool field {key!r} dropped (no equivalent upstream)")
        for fd in get_field(t, "functionDeclarations") or []:
            fd = as_dict(fd)
            schema = get_field(fd, "parametersJsonSchema")
            if schema is None and get_field(fd, "parameters") is not None:
                schema = openapi_to_json_schema(get_field(fd, "parameters"))
            for key in camel_keys(fd) - {"name", "description", "parameters", "parametersJsonSchema"}:
                ctx.warn(f"functionDeclaration field {key!r} dropped (no equivalent upstream)")
            out.append(Tool(str(fd.get("name") or ""), fd.get("description"), schema))
    return out


def _parse_tool_config(config, req: Request, ctx: Context) -> None:
    fcc = as_dict(get_field(as_dict(config), "functionCallingConfig"))
    mode = str(fcc.get("mode") or "AUTO").upper()
    allowed = get_field(fcc, "allowedFunctionNames")
    if get_field(fcc, "streamFunctionCallArguments"):
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
    count = get_field(gc, "candidateCount")
    if isinstance(count, int) and count > 1:
        raise TranslationError(f"{where}.candidateCount: only one candidate can be translated",
                               param=f"{where}.candidateCount")
    if get_field(gc, "responseLogprobs") or get_field(gc, "logprobs"):
        raise TranslationError(f"{where}.responseLogprobs: log probabilities cannot be translated",
                               param=f"{where}.responseLogprobs")
    modalities = get_field(gc, "responseModalities")
    if isinstance(modalities, list) and any(str(m).upper() != "TEXT" for m in modalities):
        raise TranslationError(f"{where}.responseModalities: only TEXT output can be translated",
                               param=f"{where}.responseModalities")
    req.temperature = get_field(gc, "temperature")
    req.top_p = get_field(gc, "topP")
    top_k = get_field(gc, "topK")
    req.top_k = int(top_k) if isinstance(top_k, (int, float)) else None
    limit = get_field(gc, "maxOutputTokens")
    if isinstance(limit, int):
        req.max_tokens = limit
    stops = get_field(gc, "stopSequences")
    if isinstance(stops, list):
        req.stop = [s for s in stops if isinstance(s, str)]
    req.presence_penalty = get_field(gc, "presencePenalty")
    req.frequency_penalty = get_field(gc, "frequencyPenalty")
    req.seed = get_field(gc, "seed")
    mime = get_field(gc, "responseMimeType")
    schema = get_field(gc, "responseJsonSchema")
    if schema is None and get_field(gc, "responseSchema") is not None:
        schema = openapi_to_json_schema(get_field(gc, "responseSchema"))
    if mime in (None, "text/plain"):
        if schema is not None:
            ctx.warn("response schema without responseMimeType application/json ignored")
    elif mime == "application/json":
        req.response_format = (ResponseFormat("json_schema", schema=schema, name="response", strict=True)
                               if schema is not None else ResponseFormat("json_object"))
    else:
        raise TranslationError(f"{where}.responseMimeType: {mime!r} cannot be translated",
                               param=f"{where}.responseMimeType")
    tc = get_field(gc, "thinkingConfig")
    if isinstance(tc, dict):
        budget = get_field(tc, "thinkingBudget")
        level = get_field(tc, "thinkingLevel")
        include = get_field(tc, "includeThoughts")
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
    for key in camel_keys(gc) - _GEN_KNOWN:
        ctx.warn(f"generationConfig field {key!r} dropped (no equivalent upstream)")
    for key in ("mediaResolution", "speechConfig", "enableEnhancedCivicAnswers"):
        if get_field(gc, key) is not None:
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
    system = get_field(body, "systemInstruction")
    if isinstance(system, str):
        req.system = [Text(system)]
    elif isinstance(system, dict):
        req.system = [Text(p["text"]) for p in system.get("parts") or [] if isinstance(p, dict)
                      and isinstance(p.get("text"), str)]
    req.messages = parse_contents(contents, ctx)
    req.tools = _parse_tools(body.get("tools"), ctx)
    _parse_tool_config(get_field(body, "toolConfig"), req, ctx)
    gc = get_field(body, "generationConfig")
    if isinstance(gc, dict):
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
