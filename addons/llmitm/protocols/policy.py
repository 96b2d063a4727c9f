"""Policy every spoke shares, beside the canonical model it is about: effort levels against thinking
budgets, OpenAI's data URLs and image URLs, hosted tools an upstream cannot run, the stop reason
a stream actually earned, ids for what the upstream left unnamed."""

from __future__ import annotations

import uuid
from typing import Any

from .canonical import END, TOOL_USE, Context, Image, Request, TranslationError

# Effort level ⇄ thinking budget (PROTOCOLS.md §2.7, LiteLLM's table; Anthropic's minimum is 1024).
EFFORT_BUDGET = {"minimal": 1024, "low": 1024, "medium": 2048, "high": 4096, "xhigh": 8192, "max": 16384}


def budget_for_effort(effort: str | None) -> int:
    return EFFORT_BUDGET.get(effort or "medium", 2048)


def effort_for_budget(budget: int | None) -> str:
    # OpenAI-compatible servers widely accept only low/medium/high.
    if budget is None:
        return "medium"
    if budget < 2048:
        return "low"
    if budget < 8192:
        return "medium"
    return "high"


def parse_data_url(url: str) -> tuple[str | None, str] | None:
    """(media type, base64 data) of a base64 `data:` URL (OpenAI's image and file carrier); None
    for any other URL."""
    if not url.startswith("data:"):
        return None
    header, _, data = url[len("data:"):].partition(",")
    if not header.endswith(";base64"):
        return None
    return header[: -len(";base64")] or None, data


def image_from_url(url: str, detail: str | None, where: str) -> Image:
    """The image an OpenAI app names by URL (Chat's `image_url`, Responses' `input_image`): a base64
    data URL or an http(s) URL; anything else is the app's mistake (400 naming the field)."""
    inline = parse_data_url(url)
    if inline:
        return Image(media_type=inline[0], data=inline[1], detail=detail)
    if url.startswith(("http://", "https://")):
        return Image(url=url, detail=detail)
    raise TranslationError(f"{where}: image_url must be an http(s) or base64 data URL", param=where)


def drop_unrunnable_hosted_tools(req: Request, runnable: frozenset[str], ctx: Context) -> None:
    """Hosted tools the upstream cannot run leave the request with a warning, or refuse it (400) when the
    route says so (`ctx.unsupported_tools == "refuse"`)."""
    if not any(t.hosted for t in req.tools):
        return
    kept = []
    for tool in req.tools:
        if tool.hosted is None or tool.hosted in runnable:
            kept.append(tool)
        elif ctx.unsupported_tools == "refuse":
            raise TranslationError(f"{tool.name}: the hosted {tool.hosted} tool has no equivalent on this upstream",
                                   param=tool.name)
        else:
            ctx.warn(f"{tool.name}: hosted {tool.hosted} tool dropped (no equivalent on this upstream)")
    req.tools = kept


def derive_stop_reason(reason: str | None, emitted_tool_call: bool) -> str:
    """The stop reason to report given what was actually emitted (PROTOCOLS.md §2.5): a tool block
    means tool_use even if upstream said "stop"; no tool block means it was not a tool turn; a cut-off
    output stays max_tokens even with a (truncated) tool call."""
    if reason in (None, END, TOOL_USE):
        return TOOL_USE if emitted_tool_call else END
    return reason


def new_id(prefix: str) -> str:
    """An id for something the upstream left unnamed; unique, so histories never collide."""
    return prefix + uuid.uuid4().hex[:24]


def as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}
