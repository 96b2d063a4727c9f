"""`<tool_call>{…}</tool_call>` text in a local model's answer → tool calls (PROTOCOLS.md §5.4), for
servers that run without a tool parser: lenient JSON, and a scanner for streams."""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from ..canonical import Context, Text, ToolCall
from ..policy import new_id

OPEN, CLOSE = "<tool_call>", "</tool_call>"
# A call body longer than this is not a call the model meant (or a runaway): kept as text.
MAX_CALL_CHARS = 1024 * 1024


def _strip_fence(s: str) -> str:
    s = s.strip()
    if s.startswith("```"):
        s = s[3:]
        s = s[s.find("\n") + 1:] if "\n" in s else ""
        s = s.removesuffix("```")
    return s.strip()


def _close_open(s: str) -> str:
    """`s` with unterminated strings, objects and arrays closed (output cut off mid-call)."""
    stack: list[str] = []
    in_str = escaped = False
    for ch in s:
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack:
            stack.pop()
    if escaped:
        s = s[:-1]
    return s + ('"' if in_str else "") + "".join(reversed(stack))


def _loads_lenient(s: str) -> Any:
    s = _strip_fence(s)
    if not s:
        raise ValueError("empty")
    try:
        return json.loads(s)
    except ValueError:
        pass
    try:
        return json.JSONDecoder().raw_decode(s)[0]  # trailing garbage after the object
    except ValueError:
        pass
    repaired = re.sub(r",\s*([}\]])", r"\1", _close_open(s))  # cut off / trailing commas
    try:
        return json.loads(repaired)
    except ValueError:
        pass
    if len(s) <= 100_000:  # Python literals: the template shows tools as Python dicts
        try:
            return ast.literal_eval(s)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            pass
    raise ValueError("not JSON")


def parse_calls(body: str) -> list[tuple[str, str]] | None:
    """The (name, arguments JSON text) calls in the text between <tool_call> tags, or None when
    it is not a call (kept as text by the caller)."""
    try:
        value = _loads_lenient(body)
    except ValueError:
        return None
    items = value if isinstance(value, list) else [value]
    calls = []
    for item in items:
        if not isinstance(item, dict):
            return None
        fn: dict = item["function"] if isinstance(item.get("function"), dict) else item  # OpenAI-shaped too
        name = fn.get("name")
        args = fn.get("arguments", fn.get("parameters"))
        if not isinstance(name, str) or not name:
            return None
        if args is None:
            args = {}
        if isinstance(args, str):  # arguments as a JSON string
            try:
                args = _loads_lenient(args) if args.strip() else {}
            except ValueError:
                return None
        if not isinstance(args, dict):
            return None
        calls.append((name, json.dumps(args, ensure_ascii=False)))
    return calls or None


def _partial_open(text: str) -> int:
    """Length of the longest suffix of `text` that could be the start of OPEN."""
    for n in range(min(len(OPEN) - 1, len(text)), 0, -1):
        if OPEN.startswith(text[-n:]):
            return n
    return 0


class ToolCallScanner:
    """Answer text in, in pieces of any size → ("text", str) and ("call", ToolCall) items, with the
    `<tool_call>` markup never shown as text. Holds back at most a partial open tag plus trailing
    whitespace (whitespace next to a tag is dropped) and the body of an open call."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._in_call = False
        self._held = ""
        self._after_tag = False  # drop the whitespace that follows a closing tag
        self._whitespace_before_tag = ""  # whitespace dropped before the open tag
        self._searched = 0  # how much of an open call's body is known to hold no CLOSE

    @property
    def in_call(self) -> bool:
        return self._in_call

    def feed(self, text: str) -> list[tuple[str, Any]]:
        self._held += text
        out: list[tuple[str, Any]] = []
        while True:
            if self._in_call:
                end = self._held.find(CLOSE, self._searched)
                if end < 0:
                    self._searched = max(0, len(self._held) - len(CLOSE) + 1)  # long calls: no rescans
                    if len(self._held) > MAX_CALL_CHARS:
                        self.ctx.warn("<tool_call> block too long: kept as text")
                        self._in_call = False
                        self._emit_text(self._tag_prefix() + self._held, out)
                        self._held = ""
                    return out
                body, self._held = self._held[:end], self._held[end + len(CLOSE):]
                self._in_call = False
                self._call(body, out, closed=True)
                continue
            start = self._held.find(OPEN)
            if start >= 0:
                before = self._held[:start].rstrip()
                self._whitespace_before_tag = self._held[len(before):start]  # given back if this is not a call
                self._emit_text(before, out)
                self._held = self._held[start + len(OPEN):]
                self._in_call = True
                self._searched = 0
                continue
            keep = _partial_open(self._held)
            head = self._held[:len(self._held) - keep]
            body = head.rstrip()  # trailing whitespace waits: a tag may follow
            self._emit_text(body, out)
            self._held = self._held[len(body):]
            return out

    def flush(self) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        held, self._held = self._held, ""
        if self._in_call:
            self._in_call = False
            self._call(held, out, closed=False)
        else:
            self._emit_text(held, out)
        return out

    def _tag_prefix(self) -> str:
        """The open tag of markup that turned out not to be a call, with the whitespace held before it."""
        return ("" if self._after_tag else self._whitespace_before_tag) + OPEN

    def _emit_text(self, text: str, out: list) -> None:
        if self._after_tag:
            text = text.lstrip()
            if not text:
                return
            self._after_tag = False
        if text:
            out.append(("text", text))

    def _call(self, body: str, out: list, *, closed: bool) -> None:
        calls = parse_calls(body)
        if calls is None:
            self.ctx.warn("<tool_call> text that is not a valid call kept as text")
            out.append(("text", self._tag_prefix() + body + (CLOSE if closed else "")))
            self._after_tag = False
            return
        if not closed:
            self.ctx.warn("unterminated <tool_call> read as a tool call")
        for name, args in calls:
            out.append(("call", ToolCall(new_id("call_"), name, args)))
        self._after_tag = True


def scan_parts(parts: list, ctx: Context) -> list:
    """A complete response's parts with `<tool_call>` markup in Text parts turned into ToolCalls."""
    out: list = []
    for p in parts:
        if not isinstance(p, Text) or OPEN not in p.text:
            out.append(p)
            continue
        scanner = ToolCallScanner(ctx)
        for kind, value in scanner.feed(p.text) + scanner.flush():
            if kind == "call":
                out.append(value)
            elif out and isinstance(out[-1], Text):
                out[-1] = Text(out[-1].text + value)
            else:
                out.append(Text(value))
    return out
