"""A translated flow field by field: what the app sent and where each field went, what the upstream
answered and what the app received, compared through the canonical model.

Both requests (the app's, the upstream's) and both responses are parsed with the spokes' own parse
functions (through `adapter`), so a field is compared by what it *means*, not by its wire name: the
app's `max_completion_tokens` and the upstream's `max_tokens` are one field, `kept` under another name.
Each field gets a verdict:

- **kept**: same value, same wire name upstream;
- **renamed**: same value, under the upstream protocol's name for it (`max_completion_tokens` → `max_tokens`);
- **approximated**: the same intent in the upstream's terms (a thinking budget sent as an effort level,
  by the effort ⇄ budget table, PROTOCOLS.md §2.7);
- **changed**: a different value upstream (the route's model, a raised minimum), with the warning
  that explains it when the translation gave one;
- **dropped**: the app set it and the upstream request no longer says it;
- **added**: the upstream request says what the app left to the default (a required `max_tokens`).

Translation warnings (`Translation.warnings`, published on the flow) are listed with the field path
each names. Reasoning signatures are followed: passed back unchanged to the provider that issued them,
or removed because the route's upstream is another provider or model (PROTOCOLS.md §2.7: signatures
are bound to the provider and model that issued them).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from . import adapter
from .adapter import (
    ANTHROPIC,
    CHAT,
    GEMINI,
    RESPONSES,
    ParsedRequest,
    ParsedResponse,
    Reasoning,
    Request,
    Response,
    Text,
    ToolCall,
    ToolResult,
)
from .transcript import Transcript, usage_line

# Where each canonical request field is written on each protocol's wire (top-level JSON paths; Gemini's
# settings live in generationConfig). Only used to name the field as each side spells it.
WIRE_NAMES: dict[str, dict[str, tuple[str, ...]]] = {
    "max_tokens": {CHAT: ("max_completion_tokens", "max_tokens"), ANTHROPIC: ("max_tokens",),
                   RESPONSES: ("max_output_tokens",), GEMINI: ("generationConfig.maxOutputTokens",)},
    "temperature": {"*": ("temperature", "generationConfig.temperature")},
    "top_p": {"*": ("top_p", "generationConfig.topP")},
    "top_k": {"*": ("top_k", "generationConfig.topK")},
    "stop": {CHAT: ("stop",), ANTHROPIC: ("stop_sequences",), GEMINI: ("generationConfig.stopSequences",)},
    "seed": {"*": ("seed", "generationConfig.seed")},
    "n": {CHAT: ("n",), GEMINI: ("generationConfig.candidateCount",)},
    "presence_penalty": {"*": ("presence_penalty", "generationConfig.presencePenalty")},
    "frequency_penalty": {"*": ("frequency_penalty", "generationConfig.frequencyPenalty")},
    "parallel_tool_calls": {"*": ("parallel_tool_calls", "tool_choice.disable_parallel_tool_use")},
    "reasoning": {CHAT: ("reasoning_effort",), ANTHROPIC: ("thinking",), RESPONSES: ("reasoning",),
                  GEMINI: ("generationConfig.thinkingConfig",)},
    "tool_choice": {"*": ("tool_choice", "toolConfig.functionCallingConfig")},
    "response_format": {CHAT: ("response_format",), ANTHROPIC: ("output_format", "output_config"),
                        RESPONSES: ("text.format",),
                        GEMINI: ("generationConfig.responseMimeType", "generationConfig.responseSchema")},
    "system": {CHAT: ("messages[role=system]",), ANTHROPIC: ("system",), RESPONSES: ("instructions",),
               GEMINI: ("systemInstruction",)},
    "tools": {"*": ("tools",)},
    "messages": {CHAT: ("messages",), ANTHROPIC: ("messages",), RESPONSES: ("input",),
                 GEMINI: ("contents",)},
    "model": {GEMINI: ("path: models/{model}",), "*": ("model",)},
    "stream": {GEMINI: ("path: :streamGenerateContent",), "*": ("stream",)},
    "user": {CHAT: ("user",), ANTHROPIC: ("metadata.user_id",), RESPONSES: ("user",)},
}
SCALARS = ("model", "stream", "max_tokens", "temperature", "top_p", "top_k", "n", "seed", "presence_penalty",
           "frequency_penalty", "parallel_tool_calls", "stop", "reasoning", "tool_choice", "response_format", "user")
# Why a streamed answer reaches the app without usage: the app's protocol sends it only when asked.
STREAM_USAGE = {CHAT: "OpenAI Chat streams carry usage only when the app asks (stream_options.include_usage)"}
ROUTE_MODEL = "the route names the upstream's model (routes: model)"
REQUIRED_LIMIT = "the upstream requires an output limit: llmitm sent its default (max_tokens_default)"
EFFORT_TABLE = "effort level ⇄ thinking budget by llmitm's table (policy.EFFORT_BUDGET, PROTOCOLS.md §2.7)"
# Warnings that name their field in words, not as a path: the phrase → the field path it is about.
PHRASE_FIELDS = (
    ("reasoning from earlier turns", "messages[].reasoning"),
    ("encrypted reasoning", "messages[].reasoning.encrypted_content"),
    ("system message inside the conversation", "messages[role=system]"),
    ("tool call with invalid JSON arguments", "tool_calls[].arguments"),
    ("tool call cut off", "tool_calls[]"),
    ("images in tool results", "messages[].tool_result.content"),
    ("grounding/citation metadata", "groundingMetadata"),
    ("annotations (citations)", "annotations"),
    ("only the first of several candidates", "candidates"),
    ("code execution parts", "parts[].executableCode"),
    ("media output", "parts[].inlineData"),
    ("user id longer", "user"),
    ("response not stored", "store"),
    ("function-call", "functionCall"),
    ("late tool-call argument", "tool_calls[].arguments"),
    ("a stream's final text", "output_text"),
    ("response status", "status"),
    ("incomplete response", "incomplete_details.reason"),
    ("Anthropic pause_turn", "stop_reason"),
    ("hosted ", "tools[]"),
    ("custom tool", "tools[].format"),
)
QUOTED_FIELD = re.compile(r"(?:field|include|type) '([^']+)'")
LEADING_FIELD = re.compile(r"^([A-Za-z_][\w.\[\]/]*)(?::| dropped| raised| ignored| not | sent | on | \(| '|$)")


@dataclass(frozen=True)
class FieldRow:
    field: str  # the canonical name
    app: str  # the value as the app set it ("" when unset)
    upstream: str
    verdict: str  # kept | changed | dropped | added
    wire: str = ""  # "app_name → upstream_name" when the protocols spell it differently
    why: str = ""  # the translation warning that explains it, if any


def _show(value: Any) -> str:
    if value is None or value == [] or value == "":
        return ""
    if hasattr(value, "__dataclass_fields__"):
        value = {k: getattr(value, k) for k in value.__dataclass_fields__ if getattr(value, k) not in (None, "", [])}
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def wire_name(protocol: str, canonical: str, body: dict | None) -> str:
    """How `protocol` spells a canonical field: the candidate present in `body`, else the first one."""
    names = WIRE_NAMES.get(canonical, {})
    candidates = names.get(protocol) or names.get("*") or ()
    for name in candidates:
        if _has_path(body, name):
            return name
    return candidates[0] if candidates else canonical


def _has_path(body: dict | None, path: str) -> bool:
    node: Any = body
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def warning_field(warning: str) -> str:
    """The field path a translation warning is about, read from its wording: `request field 'x'`,
    `include 'x'`, or a leading field name (`seed dropped`, `text.verbosity 'low' dropped`)."""
    quoted = QUOTED_FIELD.search(warning)
    if quoted:
        return quoted.group(1)
    phrase = next((path for words, path in PHRASE_FIELDS if warning.startswith(words)), None)
    if phrase:
        return phrase
    leading = LEADING_FIELD.match(warning)
    return leading.group(1) if leading else ""


def _why(field_name: str, wire: tuple[str, str], warnings: list[str]) -> str:
    names = {field_name, *wire} - {""}
    for warning in warnings:
        about = warning_field(warning)
        if about and any(about == n or about.startswith(n + ".") or n in about.split("/") for n in names):
            return warning
    return ""


def compare_requests(app: ParsedRequest, upstream: ParsedRequest, warnings: list[str],
                     app_body: dict | None = None, upstream_body: dict | None = None) -> list[FieldRow]:
    """One row per canonical field either request sets."""
    a, u = app.request, upstream.request
    assert a is not None and u is not None
    rows = []
    fields = [(name, _show(getattr(a, name)), _show(getattr(u, name))) for name in SCALARS]
    fields += [("system", _system(a), _system(u)), ("tools", _tools(a), _tools(u)), ("messages", _messages(a), _messages(u))]
    for name, before, after in fields:
        if not before and not after:
            continue
        wire = (wire_name(app.protocol, name, app_body), wire_name(upstream.protocol, name, upstream_body))
        verdict = _verdict(before, after, wire[0] != wire[1])
        why = _why(name, wire, warnings)
        if verdict == "changed" and name == "model":
            why = why or ROUTE_MODEL
        elif verdict == "added" and name == "max_tokens":
            why = why or REQUIRED_LIMIT
        elif verdict == "changed" and name == "reasoning" and _same_switch(a.reasoning, u.reasoning):
            verdict, why = "approximated", why or EFFORT_TABLE
        rows.append(FieldRow(name, before, after, verdict, " → ".join(wire) if wire[0] != wire[1] else "", why))
    return rows


def _verdict(before: str, after: str, renamed: bool) -> str:
    if before == after:
        return "renamed" if renamed else "kept"
    return "dropped" if not after else "added" if not before else "changed"


def _same_switch(a: Any, b: Any) -> bool:
    """Reasoning on (or off) on both sides, asked for in each protocol's own terms (effort or budget)."""
    return a is not None and b is not None and a.enabled == b.enabled


def _system(req: Request) -> str:
    text = "\n\n".join(t.text for t in req.system)
    return f"{len(text):,} characters" + (f", {len(req.system)} blocks" if len(req.system) > 1 else "") if text else ""


def _tools(req: Request) -> str:
    return ", ".join(t.name for t in req.tools)


def _messages(req: Request) -> str:
    return " ".join(f"{m.role}[{'+'.join(_kind(p) for p in m.parts)}]" for m in req.messages)


def _kind(part: Any) -> str:
    return {Text: "text", ToolCall: "tool call", ToolResult: "tool result", Reasoning: "reasoning"}.get(
        type(part), type(part).__name__.lower())


def signatures(req: Request) -> list[tuple[int, str, str]]:
    """(message index, kind, signature) of every provider-bound signature in the request's history:
    reasoning signatures, Anthropic's redacted thinking, Gemini thought signatures on tool calls."""
    out = []
    for i, message in enumerate(req.messages):
        for part in message.parts:
            if isinstance(part, Reasoning) and (part.signature or part.redacted):
                out.append((i, "redacted thinking" if part.redacted else "reasoning signature",
                            part.redacted or part.signature or ""))
            elif isinstance(part, ToolCall) and adapter.split_tool_id(part.id)[1]:
                out.append((i, "thought signature on tool call", part.id.partition(adapter.gemini.THOUGHT_SEPARATOR)[2]))
    return out


def signature_fates(app: Request, upstream: Request, upstream_protocol: str, warnings: list[str]) -> list[str]:
    """What happened to each signature the app sent back: passed on unchanged, or removed and why."""
    sent = {sig for _, _, sig in signatures(upstream)}
    reason = next((w for w in warnings if "signature" in w.lower() or "reasoning from earlier turns" in w), "")
    out = []
    for index, kind, sig in signatures(app):
        if sig in sent:
            out.append(f"message {index}: {kind} ({len(sig):,} characters) passed back unchanged to "
                       f"{upstream_protocol} ({upstream.model})")
        else:
            because = reason or (f"the route sends this conversation to {upstream_protocol} ({upstream.model}); a "
                                 "signature is valid only for the provider and model that issued it")
            out.append(f"message {index}: {kind} removed: {because}")
    return out


def compare_responses(upstream: ParsedResponse, app: ParsedResponse, client_protocol: str = "") -> list[FieldRow]:
    """The upstream's answer against what the app received, field by field."""
    rows = []
    u, a = upstream.response, app.response
    pairs: list[tuple[str, str, str]] = []
    if u is not None or a is not None:
        pairs += [("id", u.id if u else "", a.id if a else ""), ("model", u.model if u else "", a.model if a else ""),
                  ("stop_reason", (u.stop_reason or "") if u else "", (a.stop_reason or "") if a else ""),
                  ("output", _output(u), _output(a)),
                  ("usage", usage_line(u.usage) if u else "", usage_line(a.usage) if a else "")]
    if upstream.error is not None or app.error is not None:
        pairs.append(("error", _error(upstream), _error(app)))
    for name, before, after in pairs:
        if not before and not after:
            continue
        verdict = "kept" if before == after else "dropped" if not after else "added" if not before else "changed"
        why = ""
        if name == "usage" and a is not None and a.usage is None and app.stream is not None:
            why = STREAM_USAGE.get(client_protocol, "")
        rows.append(FieldRow(name, before, after, verdict, why=why))
    return rows


def _output(resp: Response | None) -> str:
    if resp is None:
        return ""
    kinds = []
    for part in resp.parts:
        if isinstance(part, ToolCall):
            kinds.append(f"tool call {part.name}({_compact(part.arguments)})")
        elif isinstance(part, Reasoning):
            kinds.append("reasoning" + (" (signed)" if part.signature else ""))
        elif isinstance(part, Text):
            kinds.append(f"text {len(part.text):,} characters")
        else:
            kinds.append(_kind(part))
    return ", ".join(kinds)


def _compact(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments or "{}"), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    except ValueError:
        return arguments


def _error(parsed: ParsedResponse) -> str:
    err = parsed.error
    return f"{err.status} {err.type or ''}: {err.message}".replace("  ", " ") if err is not None else ""


def render_rows(rows: list[FieldRow], out: Transcript, app_label: str, upstream_label: str) -> None:
    for row in rows:
        style = {"kept": "text", "renamed": "text", "approximated": "highlight", "changed": "highlight",
                 "dropped": "error", "added": "highlight"}[row.verdict]
        wire = f" (as {row.wire})" if row.wire else ""
        out.lines.append([("key", f"    {row.field}{wire}: "), (style, row.verdict)])
        same = row.verdict in ("kept", "renamed")
        if not same or len(row.app) <= 60:
            out.pair(app_label, row.app or "(not set)", 2)
            if not same:
                out.pair(upstream_label, row.upstream or "(not set)", 2)
        if row.why:
            out.pair("because", row.why, 2)
