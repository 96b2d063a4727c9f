"""Requests toward a local model (PROTOCOLS.md §5.1, §5.2): the reasoning switch, content flattening
and, with `tool_call_tags`, earlier tool calls written into the assistant text as the model writes them."""

from __future__ import annotations

import json
import re
from typing import Any

from ..canonical import Context, Request
from ..policy import as_dict
from .tool_calls import CLOSE, OPEN

# SmolLM3's template reads these as switches anywhere in the first system message (substring test).
_FLAG_RE = re.compile(r"/(?=no_think|think|system_override)")
_NEUTRAL = "/\u200b"  # a zero-width space after the slash: reads the same, no longer a switch


def thinking_wanted(req: Request, cfg: Any, ctx: Context) -> bool:
    """On or off for this request (PROTOCOLS.md §5.1): effort none/minimal or an explicit disable
    (or a zero budget) → off, any other request for reasoning → on, nothing said → the default.
    A local model's thinking is only on or off: effort levels and budgets are warned about."""
    r = req.reasoning
    if r is None:
        return bool(cfg.thinking_default)
    if not r.enabled or r.effort in ("none", "minimal") or r.budget_tokens == 0:
        return False
    if r.budget_tokens:
        ctx.warn(f"thinking budget {r.budget_tokens} not enforced (the local model's thinking is only on or off)")
    elif r.effort:
        ctx.warn(f"reasoning effort {r.effort!r} not honoured (the local model's thinking is only on or off)")
    return True


def neutralise_flags(text: str) -> str:
    """Client text with SmolLM3's `/think`, `/no_think`, `/system_override` made inert (a URL such as
    https://example.com/thinking would otherwise switch the mode)."""
    return _FLAG_RE.sub(_NEUTRAL, text)


# ---------------------------------------------------------------------------------------------
# Request


def _flatten(content: Any) -> Any:
    """A content array of text parts → one string (SmolLM3's template renders lists as ""; vLLM
    joins text parts with a newline too). Arrays with images or files are left alone."""
    if isinstance(content, list) and content and all(isinstance(p, dict) and p.get("type") == "text"
                                                     for p in content):
        return "\n".join(str(p.get("text") or "") for p in content)
    return content


def tool_call_markup(name: str, arguments: str) -> str:
    """A tool call as the model writes it (Hermes format): arguments as a JSON object."""
    try:
        args: Any = json.loads(arguments) if arguments and arguments.strip() else {}
    except ValueError:
        args = arguments  # not JSON: the text as it was produced
    return OPEN + "\n" + json.dumps({"name": name, "arguments": args}, ensure_ascii=False) + "\n" + CLOSE


def _calls_into_text(msg: dict) -> None:
    calls = msg.pop("tool_calls", None) or []
    fns = [as_dict(c.get("function")) for c in calls if isinstance(c, dict)]
    markup = [tool_call_markup(as_str(fn.get("name")), as_str(fn.get("arguments"))) for fn in fns]
    text = msg.get("content")
    text = text if isinstance(text, str) else ""
    msg["content"] = "\n".join(([text] if text else []) + markup)


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _system_first(messages: list[dict]) -> dict:
    """messages[0] as a system message with string content (the only one SmolLM3's template reads)."""
    if messages and messages[0].get("role") == "system":
        messages[0]["content"] = _flatten(messages[0].get("content"))
        if isinstance(messages[0]["content"], str):
            return messages[0]
    messages.insert(0, {"role": "system", "content": ""})
    return messages[0]


def _append(text: str, addition: str) -> str:
    return f"{text.rstrip()}\n{addition}" if text.strip() else addition


def adapt_request(req: Request, out: dict, cfg: Any, ctx: Context, extras: dict | None = None) -> dict:
    """Adjust the openai-chat body `out` rendered from `req` for a local server with conventions `cfg`.
    `extras`: fields an OpenAI-Chat app sent that the hub has no place for (the server's own
    extensions: chat_template_kwargs, top_k, min_p, …), passed on as they were."""
    out.pop("reasoning_effort", None)  # many local servers reject it; the switch below replaces it
    extras = dict(extras or {})
    app_kwargs = as_dict(extras.pop("chat_template_kwargs", None))
    out.update(extras)
    if "max_completion_tokens" in out:  # the field every local server reads
        out["max_tokens"] = out.pop("max_completion_tokens")
    messages: list[dict] = out.get("messages") or []
    for m in messages:
        m["content"] = _flatten(m.get("content"))
    switch = cfg.reasoning_switch
    if switch == "none":
        if req.reasoning is not None:
            ctx.warn("reasoning on/off not sent to the local model (local_model.reasoning_switch is none)")
    else:
        out.setdefault("chat_template_kwargs", {})["enable_thinking"] = thinking_wanted(req, cfg, ctx)
    if app_kwargs:  # the app's own template switches win: it knows its server
        out["chat_template_kwargs"] = {**out.get("chat_template_kwargs", {}), **app_kwargs}

    tools_sent = bool(out.get("tools"))
    choice = out.get("tool_choice")
    if cfg.tool_call_tags:
        for m in messages:
            if m.get("role") == "assistant" and m.get("tool_calls"):
                _calls_into_text(m)
        if tools_sent and choice == "none":
            # The model sees no tools rather than tools it must not call.
            for key in ("tools", "tool_choice", "parallel_tool_calls"):
                out.pop(key, None)
            tools_sent = False
    if tools_sent and cfg.tool_call_tags and choice not in (None, "auto"):
        # Without a server-side parser nothing enforces a forced choice: say it to the model.
        name = as_str(as_dict(as_dict(choice).get("function")).get("name"))
        system = _system_first(messages)
        system["content"] = _append(system["content"], "You must call one of the tools in this answer."
                                    if choice == "required" else f"You must call the tool {name} in this answer.")
        ctx.warn("tool_choice also stated as an instruction in the system prompt (the model may still not call a tool)")
    if switch == "smollm3":
        system = _system_first(messages)
        clean = neutralise_flags(system["content"])
        if clean != system["content"]:
            ctx.warn("/think, /no_think or /system_override in the system prompt made inert (SmolLM3 reads them "
                     "as switches)")
        if tools_sent:  # the template's own tool block, for servers that do not hand it `tools`
            out["chat_template_kwargs"].setdefault("xml_tools", [t["function"] for t in out["tools"]])
        flag = "/think" if out["chat_template_kwargs"].get("enable_thinking", True) else "/no_think"
        system["content"] = _append(clean, flag)
    out["messages"] = messages
    return out
