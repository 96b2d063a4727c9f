"""Where a request's prompt stops matching the previous request of the same conversation.

Provider prompt caches (Anthropic's cache_control, OpenAI's and Gemini's implicit caches) reuse the
longest unchanged *prefix* of tools, system and messages. An agent that rewrites an early message
(a timestamp in the system prompt, a re-ordered tool list, an edited first turn) silently pays for the
whole prompt again. This module finds the first position where a request's prefix differs from an
earlier request it extends: pure functions over small snapshots, no mitmproxy.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from .adapter import Document, Image, Message, Reasoning, Refusal, Request, Text, ToolCall, ToolResult

EXCERPT = 40  # characters shown either side of a difference


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a request's cacheable prefix consists of, in cache order: tools, system, messages.
    Each message is a tuple of its parts, each part one string (binary data as a digest)."""

    tools: str
    system: str
    roles: tuple[str, ...]
    messages: tuple[tuple[str, ...], ...]

    @property
    def size(self) -> int:
        return len(self.tools) + len(self.system) + sum(len(p) for m in self.messages for p in m)


def snapshot(req: Request) -> Snapshot:
    tools = json.dumps([[t.name, t.description, t.parameters] for t in req.tools], sort_keys=True, ensure_ascii=False)
    system = "\n\n".join(t.text for t in req.system)
    return Snapshot(tools, system, tuple(m.role for m in req.messages), tuple(_message_parts(m) for m in req.messages))


def _message_parts(message: Message) -> tuple[str, ...]:
    return tuple(_part_text(p) for p in message.parts)


def _digest(data: str | None) -> str:
    return hashlib.sha256((data or "").encode()).hexdigest()[:12]


def _part_text(part) -> str:
    if isinstance(part, Text):
        return part.text
    if isinstance(part, Image):
        return f"[image {part.media_type} {part.url or _digest(part.data)}]"
    if isinstance(part, Document):
        return f"[document {part.media_type} {part.title} {part.url or _digest(part.data or part.text)}]"
    if isinstance(part, ToolCall):
        return f"[tool call {part.id} {part.name}] {part.arguments}"
    if isinstance(part, ToolResult):
        inner = "".join(_part_text(p) for p in part.content)
        return f"[tool result {part.tool_call_id}{' error' if part.is_error else ''}] {inner}"
    if isinstance(part, Reasoning):
        return f"[reasoning {_digest(part.signature or part.redacted)}] {part.text}"
    if isinstance(part, Refusal):
        return f"[refusal] {part.text}"
    return repr(part)


def extends(previous: Snapshot, current: Snapshot) -> bool:
    """Whether `current` continues the conversation of `previous`: at least as many messages, and
    at least half of the earlier ones unchanged in place (so an edited early turn still matches,
    while an unrelated conversation on the same route does not)."""
    n = len(previous.messages)
    if n == 0 or len(current.messages) < n:
        return False
    same = sum(1 for a, b in zip(previous.messages, current.messages, strict=False) if a == b)
    return same * 2 >= n


@dataclass(frozen=True, slots=True)
class Difference:
    where: str  # "tools" | "system" | "message"
    message: int | None = None  # index into the request's messages
    role: str | None = None
    part: int | None = None  # index of the content part within that message
    offset: int = 0  # characters into that part (or into the tools / system text)
    before: str = ""  # the previous request's text around the difference
    after: str = ""  # this request's

    def describe(self) -> str:
        if self.where == "message":
            return f"message {self.message} ({self.role}), content part {self.part}, character {self.offset}"
        return f"{self.where}, character {self.offset}"


def first_difference(previous: Snapshot, current: Snapshot) -> Difference | None:
    """The first position where `current`'s prefix differs from `previous`; None when every tool,
    the system text and all of `previous`'s messages are unchanged (the whole earlier prompt is reusable)."""
    if previous.tools != current.tools:
        return _at("tools", previous.tools, current.tools)
    if previous.system != current.system:
        return _at("system", previous.system, current.system)
    for i, (old, new) in enumerate(zip(previous.messages, current.messages, strict=False)):
        if old == new and previous.roles[i] == current.roles[i]:
            continue
        for j in range(max(len(old), len(new))):
            a = old[j] if j < len(old) else ""
            b = new[j] if j < len(new) else ""
            if a != b:
                d = _at("message", a, b)
                return Difference("message", i, current.roles[i], j, d.offset, d.before, d.after)
        return Difference("message", i, current.roles[i], 0, 0, f"role {previous.roles[i]}", f"role {current.roles[i]}")
    return None


def _at(where: str, a: str, b: str) -> Difference:
    k = 0
    limit = min(len(a), len(b))
    while k < limit and a[k] == b[k]:
        k += 1
    start = max(0, k - EXCERPT)
    return Difference(where, offset=k, before=a[start:k + EXCERPT], after=b[start:k + EXCERPT])
