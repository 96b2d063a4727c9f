"""Tools: custom (free-text) tools and tool_choice."""

from __future__ import annotations

from ..canonical import (
    Context,
    Request,
    Tool,
    ToolChoice,
    TranslationError,
    as_dict,
)


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



def parse_tool_choice(choice, req: Request) -> ToolChoice | None:
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


