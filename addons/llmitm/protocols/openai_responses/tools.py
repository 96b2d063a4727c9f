"""Tools: function, custom (free-text), namespace and hosted tools, and tool_choice, both ways.

Codex CLI sends a `namespace` tool (`multi_agent_v1`, holding function tools) and the hosted `web_search`
tool (PROTOCOLS.md §6). A namespace's functions go upstream as plain functions named
`<namespace>__<name>` (`Context.namespaced_tools` remembers the pair), and their calls come back to the
client with the function's own name and its `namespace`. `web_search` becomes the canonical hosted
web-search tool; other hosted tools have no equivalent elsewhere (`Context.unsupported_tools`)."""

from __future__ import annotations

import hashlib
import re

from ..canonical import HOSTED_WEB_SEARCH, Context, Request, Tool, ToolChoice, TranslationError
from ..field_types import typed
from ..policy import as_dict

_WEB_SEARCH_TYPES = {"web_search", "web_search_preview", "web_search_2025_08_26", "web_search_preview_2025_03_11"}
# Provider-run tools with no equivalent on other upstreams.
_HOSTED_ONLY_AT_OPENAI = {"file_search", "code_interpreter", "image_generation", "computer_use_preview", "computer",
                          "mcp", "local_shell", "shell", "apply_patch", "tool_search"}
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")
MAX_TOOL_NAME = 64  # OpenAI and Anthropic tool names: ^[a-zA-Z0-9_-]{1,64}$


def namespaced_name(namespace: str, name: str) -> str:
    """The plain function name a namespace's function goes upstream under."""
    flat = _UNSAFE_NAME_CHARS.sub("_", f"{namespace}__{name}")
    if len(flat) > MAX_TOOL_NAME:
        flat = flat[:MAX_TOOL_NAME - 9] + "_" + hashlib.sha256(flat.encode()).hexdigest()[:8]
    return flat


def client_tool_name(name: str, ctx: Context) -> tuple[str, str | None]:
    """(name, namespace) of a call as the client declared its tool."""
    declared = ctx.namespaced_tools.get(name)
    return (declared[1], declared[0]) if declared else (name, None)


def _string(t: dict, key: str, where: str) -> str | None:
    value = t.get(key)
    if value is not None and not isinstance(value, str):
        raise TranslationError(f"{where}.{key}: must be a string", param=f"{where}.{key}")
    return value


def _function_tool(t: dict, where: str, name: str | None = None) -> Tool:
    parameters = t.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise TranslationError(f"{where}.parameters: must be a JSON Schema object", param=f"{where}.parameters")
    strict = t.get("strict")
    return Tool(name or _string(t, "name", where) or "", _string(t, "description", where), parameters,
                strict if isinstance(strict, bool) else None)


def parse_tools(tools, ctx: Context) -> list[Tool]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise TranslationError("tools: must be an array", param="tools")
    out: list[Tool] = []
    for i, t in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(t, dict):
            raise TranslationError(f"{where}: a tool must be an object", param=where)
        kind = typed(t.get("type"), "a string", f"{where}.type")
        if kind == "function":
            out.append(_function_tool(t, where))
        elif kind == "custom":
            out.append(custom_tool(t, ctx))
        elif kind == "namespace":
            out.extend(_namespace_tools(t, where, ctx))
        elif kind in _WEB_SEARCH_TYPES:
            if any(t.get(k) for k in ("filters", "user_location", "search_context_size")):
                ctx.warn(f"{where}: web_search options are not carried (the upstream's own search runs)")
            out.append(Tool(where, hosted=HOSTED_WEB_SEARCH))
        elif kind in _HOSTED_ONLY_AT_OPENAI:
            if ctx.unsupported_tools == "refuse":
                raise TranslationError(f"{where}: the hosted {kind} tool has no equivalent on this upstream",
                                       param=where)
            ctx.warn(f"{where}: hosted {kind} tool dropped (no equivalent on this upstream)")
        else:
            raise TranslationError(f"{where}: tool type {kind!r} cannot be translated", param=where)
    return out


def _namespace_tools(t: dict, where: str, ctx: Context) -> list[Tool]:
    namespace = _string(t, "name", where)
    if not namespace:
        raise TranslationError(f"{where}.name: a namespace needs a name", param=f"{where}.name")
    inner = t.get("tools")
    if not isinstance(inner, list):
        raise TranslationError(f"{where}.tools: must be an array", param=f"{where}.tools")
    out = []
    for j, tool in enumerate(inner):
        here = f"{where}.tools[{j}]"
        if not isinstance(tool, dict) or tool.get("type") not in ("function", "custom"):
            raise TranslationError(f"{here}: a namespace holds function or custom tools", param=here)
        name = _string(tool, "name", here) or ""
        flat = namespaced_name(namespace, name)
        ctx.namespaced_tools[flat] = (namespace, name)
        if tool["type"] == "custom":  # Codex's free-text `exec`: a one-string-argument function upstream
            out.append(custom_tool({**tool, "name": flat}, ctx))
        else:
            out.append(_function_tool(tool, here, flat))
    return out


def render_tools(tools: list[Tool]) -> list[dict]:
    """Canonical tools → a Responses request's (or response object's) `tools`."""
    out = []
    for t in tools:
        if t.hosted == HOSTED_WEB_SEARCH:
            out.append({"type": "web_search"})
            continue
        tool: dict = {"type": "function", "name": t.name,
                      "parameters": t.parameters or {"type": "object", "properties": {}}}
        if t.description:
            tool["description"] = t.description
        # Responses defaults strict to true, which rejects most non-OpenAI schemas: say it explicitly.
        tool["strict"] = bool(t.strict)
        out.append(tool)
    return out


def custom_tool(t: dict, ctx: Context) -> Tool:
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



def _chosen_name(choice: dict, where: str) -> str:
    name = typed(choice.get("name"), "a string", f"{where}.name", "")
    namespace = typed(choice.get("namespace"), "a string", f"{where}.namespace")
    return name if namespace is None else namespaced_name(namespace, name)


def parse_tool_choice(choice, req: Request) -> ToolChoice | None:
    if choice is None:
        return None
    if choice in ("auto", "required", "none"):
        return ToolChoice(choice)
    if not isinstance(choice, dict):
        raise TranslationError("tool_choice: must be auto, required, none or an object", param="tool_choice")
    if choice.get("type") in ("function", "custom"):
        return ToolChoice("tool", _chosen_name(choice, "tool_choice"))
    if choice.get("type") == "allowed_tools":
        tools = typed(choice.get("tools"), "an array", "tool_choice.tools", [])
        if any(not isinstance(t, dict) or t.get("type") not in ("function", "custom") for t in tools):
            raise TranslationError("tool_choice.tools: only function tools can be translated", param="tool_choice")
        names = {_chosen_name(t, f"tool_choice.tools[{k}]") for k, t in enumerate(tools)}
        req.tools = [t for t in req.tools if t.hosted or t.name in names]  # the subset is all the upstream will see
        return ToolChoice("required" if choice.get("mode") == "required" else "auto")
    raise TranslationError(f"tool_choice: {choice.get('type')!r} cannot be translated (only function tools)",
                           param="tool_choice")


