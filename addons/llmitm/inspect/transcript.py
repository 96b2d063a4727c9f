"""A readable transcript of one request or response body of any of the four protocols.

The renderer knows nothing of mitmproxy or of the wire: it takes what `adapter` parsed (the canonical
model) and writes lines of `(style, text)` segments, which mitmproxy 11's contentview API takes as they
are and 12's as plain text (`Transcript.text()`). Any of a flow's four bodies (app request, upstream
request, upstream response, app response) renders the same way, so two of them can be read side by side.
"""

from __future__ import annotations

import base64
import binascii
import json
import textwrap
from collections.abc import Iterable

from ..protocols.gemini import NAME as GEMINI
from .adapter import (
    PROTOCOL_TITLES,
    Document,
    Image,
    ParsedRequest,
    ParsedResponse,
    Reasoning,
    Refusal,
    Request,
    Text,
    Tool,
    ToolCall,
    ToolResult,
    Usage,
    split_tool_id,
)

Segment = tuple[str, str]  # (style, text); styles known to mitmproxy's console and mitmweb 11
Line = list[Segment]
INDENT = "    "
MAX_TIMELINE_RUNS = 40  # a stream of thousands of events keeps its summary readable
MAX_DESCRIPTION = 100
WRAP = 76  # columns of prose per line (plus indentation): fits mitmweb's detail pane at 1500 px


class Transcript:
    def __init__(self) -> None:
        self.lines: list[Line] = []

    def heading(self, text: str) -> None:
        self.lines.append([("header", f"── {text} ──")])

    def line(self, text: str, style: str = "text", depth: int = 0) -> None:
        self.lines.append([(style, INDENT * depth + text)])

    def pair(self, key: str, value: str, depth: int = 0) -> None:
        self.lines.append([("key", f"{INDENT * depth}{key}: "), ("text", value)])

    def block(self, text: str, depth: int) -> None:
        for row in text.splitlines() or [""]:
            self.line(row, depth=depth)

    def prose(self, text: str, depth: int) -> None:
        """Model and user text, wrapped so a long paragraph stays readable in a narrow pane."""
        for row in text.splitlines() or [""]:
            for piece in textwrap.wrap(row, WRAP, break_long_words=False, break_on_hyphens=False) or [""]:
                self.line(piece, depth=depth)

    def blank(self) -> None:
        self.lines.append([("text", "")])

    def text(self) -> str:
        return "\n".join("".join(t for _, t in line) for line in self.lines)


# -- requests ------------------------------------------------------------------------------------


def render_request(parsed: ParsedRequest, out: Transcript, side: str = "") -> None:
    """`side`: which of a flow's bodies this is ("app's", "upstream"), shown in the title."""
    title = PROTOCOL_TITLES.get(parsed.protocol, parsed.protocol)
    req = parsed.request
    if req is None:
        out.line(f"{title} request: cannot be read as a conversation: {parsed.error}", "error")
        _notes(parsed.notes, out)
        return
    out.line(f"{title} request{side and f' ({side})'}", "header")
    out.pair("model", req.model or "(none)")
    out.pair("parameters", parameters(req) or "(defaults)")
    if req.system:
        out.heading("system")
        out.prose("\n\n".join(t.text for t in req.system), 1)
    if req.tools:
        out.heading(f"tools ({len(req.tools)})")
        for tool in req.tools:
            _tool(tool, out)
    out.heading(f"messages ({len(req.messages)})")
    for i, message in enumerate(req.messages):
        name = f" ({message.name})" if message.name else ""
        out.line(f"[{i}] {message.role}{name}", "key")
        _parts(message.parts, out, depth=1)
    _notes(parsed.notes, out)


def parameters(req: Request) -> str:
    """The request's settings on one line, in the order people look for them."""
    items: list[str] = ["stream" if req.stream else "no stream"]
    for label, value in (("max_tokens", req.max_tokens), ("temperature", req.temperature), ("top_p", req.top_p),
                         ("top_k", req.top_k), ("n", req.n), ("seed", req.seed), ("presence_penalty", req.presence_penalty),
                         ("frequency_penalty", req.frequency_penalty), ("parallel_tool_calls", req.parallel_tool_calls)):
        if value is not None:
            items.append(f"{label} {value}")
    if req.stop:
        items.append("stop " + json.dumps(req.stop, ensure_ascii=False))
    if req.reasoning is not None:
        r = req.reasoning
        detail = ", ".join(x for x in (r.effort and f"effort {r.effort}", r.budget_tokens and f"budget {r.budget_tokens}") if x)
        items.append(f"reasoning {'on' if r.enabled else 'off'}" + (f" ({detail})" if detail else ""))
    if req.tool_choice is not None:
        items.append(f"tool_choice {req.tool_choice.mode}" + (f" {req.tool_choice.name}" if req.tool_choice.name else ""))
    if req.response_format is not None and req.response_format.kind != "text":
        fmt = req.response_format
        items.append(f"response_format {fmt.kind}" + (f" {fmt.name}" if fmt.name else ""))
    if req.include_usage:
        items.append("include_usage")
    return ", ".join(items)


def _tool(tool: Tool, out: Transcript) -> None:
    description = (tool.description or "").strip().splitlines()[0] if tool.description else ""
    if len(description) > MAX_DESCRIPTION:
        description = description[: MAX_DESCRIPTION - 1] + "…"
    out.line(f"{tool.name}({parameter_summary(tool.parameters)})" + (f" — {description}" if description else ""), depth=1)


def parameter_summary(schema: dict | None) -> str:
    """`name: type` per property, `*` for required: `location: string*, units: "c"|"f"*`."""
    if not isinstance(schema, dict):
        return ""
    props = schema.get("properties")
    if not isinstance(props, dict):
        return ""
    required = set(schema.get("required") or [])
    return ", ".join(f"{name}: {_type_of(spec)}{'*' if name in required else ''}" for name, spec in props.items())


def _type_of(spec) -> str:
    if not isinstance(spec, dict):
        return "any"
    if isinstance(spec.get("enum"), list):
        return "|".join(json.dumps(v, ensure_ascii=False) for v in spec["enum"])
    kind = spec.get("type")
    if isinstance(kind, list):
        return "|".join(str(k) for k in kind)
    if kind == "array":
        return f"array of {_type_of(spec.get('items'))}"
    if kind is None and isinstance(spec.get("anyOf"), list):
        return "|".join(_type_of(s) for s in spec["anyOf"])
    return str(kind or "any").lower()  # Gemini's OpenAPI subset writes STRING, OBJECT


# -- content parts -------------------------------------------------------------------------------


def _parts(parts: Iterable, out: Transcript, depth: int, label_text: bool = False) -> None:
    for part in parts:
        if isinstance(part, Text) and label_text:
            out.line("text:", "key", depth)
            out.prose(part.text, depth + 1)
        elif isinstance(part, Text):
            out.prose(part.text, depth)
        elif isinstance(part, Image):
            out.line(media_placeholder("image", part.media_type, part.data, part.url), "highlight", depth)
        elif isinstance(part, Document):
            _document(part, out, depth)
        elif isinstance(part, ToolCall):
            _tool_call(part, out, depth)
        elif isinstance(part, ToolResult):
            flag = " (error)" if part.is_error else ""
            out.line(f"← tool result for {split_tool_id(part.tool_call_id)[0]}{flag}", "key", depth)
            _parts(part.content, out, depth + 1)
        elif isinstance(part, Reasoning):
            _reasoning(part, out, depth)
        elif isinstance(part, Refusal):
            out.line("refusal:", "error", depth)
            out.block(part.text, depth + 1)


def media_placeholder(kind: str, media_type: str | None, data: str | None, url: str | None) -> str:
    if data is not None:
        return f"[{kind} {media_type or 'unknown type'}, {decoded_size(data):,} bytes]"
    return f"[{kind} {media_type or ''} {url or ''}]".replace("  ", " ").replace(" ]", "]")


def decoded_size(b64: str) -> int:
    try:
        return len(base64.b64decode(b64, validate=False))
    except (binascii.Error, ValueError):
        return len(b64) * 3 // 4


def _document(doc: Document, out: Transcript, depth: int) -> None:
    title = f' "{doc.title}"' if doc.title else ""
    if doc.text is not None:
        label = f"[document {doc.media_type or 'text/plain'}{title}, {len(doc.text):,} characters]"
    else:
        label = media_placeholder("document", doc.media_type, doc.data, doc.url)[:-1] + f"{title}]"
    out.line(label, "highlight", depth)


def _tool_call(call: ToolCall, out: Transcript, depth: int) -> None:
    shown_id, gemini_signature = split_tool_id(call.id)
    extra = ", thought signature present" if gemini_signature else ""
    out.line(f"→ tool call {call.name} (id {shown_id}{extra})", "key", depth)
    out.block(pretty_arguments(call.arguments), depth + 1)


def pretty_arguments(arguments: str) -> str:
    if not arguments.strip():
        return "{}"
    try:
        return json.dumps(json.loads(arguments), indent=2, ensure_ascii=False)
    except ValueError:
        return f"{arguments}\n(not valid JSON: cut off?)"


def _reasoning(part: Reasoning, out: Transcript, depth: int) -> None:
    if part.redacted is not None:
        out.line(f"reasoning: encrypted (redacted, {len(part.redacted):,} characters of opaque data)", "key", depth)
        return
    signature = f"signature present ({len(part.signature):,} characters)" if part.signature else "signature absent"
    out.line(f"reasoning, {signature}:", "key", depth)
    out.prose(part.text or "(no text)", depth + 1)


# -- responses -----------------------------------------------------------------------------------


def render_response(parsed: ParsedResponse, out: Transcript, timings: Iterable[tuple[str, str]] = (), side: str = "") -> None:
    title = PROTOCOL_TITLES.get(parsed.protocol, parsed.protocol)
    resp = parsed.response
    if parsed.problem:
        out.line(f"{title} response: cannot be read: {parsed.problem}", "error")
    if resp is not None:
        out.line(f"{title} response{side and f' ({side})'}", "header")
        out.pair("model", resp.model or "(not said)")
        out.pair("id", resp.id or "(none)")
        if parsed.stream is not None:
            s = parsed.stream
            end = ("ended with the protocol's end marker" if s.terminated
                   else "Gemini streams have no end marker" if parsed.protocol == GEMINI else "no end marker: cut off?")
            out.pair("streamed", f"{s.events} events ({end}); assembled below")
        out.heading("output")
        if not resp.parts:
            out.line("(no content)", depth=1)
        _parts(resp.parts, out, depth=1, label_text=True)
        stop = resp.stop_reason or "(not said)"
        out.pair("stop reason", stop + (f' (sequence "{resp.stop_sequence}")' if resp.stop_sequence else ""))
        out.pair("usage", usage_line(resp.usage))
    if parsed.error is not None:
        err = parsed.error
        kind = ", ".join(x for x in (err.type, err.code and f"code {err.code}", err.param and f"param {err.param}") if x)
        out.line(f"{title} error {err.status}" + (f" ({kind})" if kind else "") + ":", "error")
        out.block(err.message, 1)
    if parsed.stream is not None:
        _timeline(parsed, out, timings)
    elif timings:
        out.heading("timing")
        for key, value in timings:
            out.pair(key, value, 1)
    _notes(parsed.notes, out)


def usage_line(u: Usage | None) -> str:
    if u is None:
        return "not reported"
    reasoning = "not reported" if u.reasoning is None else f"{u.reasoning:,}"
    return (f"input {u.input_total:,} (cache read {u.cached_read:,}, cache write {u.cache_write:,}), "
            f"output {u.output_total:,} (reasoning {reasoning})")


def _timeline(parsed: ParsedResponse, out: Transcript, timings: Iterable[tuple[str, str]]) -> None:
    s = parsed.stream
    assert s is not None
    out.heading("stream timeline")
    counts = ", ".join(f"{kind} ×{n}" for kind, n in s.types.items())
    out.pair("event types", counts or "(none)", 1)
    if s.comments:
        out.pair("keep-alive comments", str(s.comments), 1)
    runs = [f"{kind} ×{n}" if n > 1 else kind for kind, n in s.sequence[:MAX_TIMELINE_RUNS]]
    if len(s.sequence) > MAX_TIMELINE_RUNS:
        runs.append(f"… {len(s.sequence) - MAX_TIMELINE_RUNS} more")
    out.pair("order", " → ".join(runs) or "(none)", 1)
    for key, value in timings:
        out.pair(key, value, 1)


def _notes(notes: list[str], out: Transcript) -> None:
    if notes:
        out.heading("notes")
        for note in notes:
            out.line(note, depth=1)
