"""Split `<think>…</think>` reasoning out of model text, for OpenAI-compatible servers that run
without a reasoning parser (SmolLM3 and other Qwen3-style templates; PROTOCOLS.md §5.3).

Only a think block at the very start of the answer counts; anything else is plain text. Streaming
holds back at most len("</think>") - 1 characters, so tags split across chunks are found.
"""

from __future__ import annotations

from .canonical import REASONING, TEXT

OPEN, CLOSE = "<think>", "</think>"


def split_think(text: str) -> tuple[str | None, str]:
    """(reasoning, answer) of a complete message; reasoning is None when there is no think block.
    An unterminated block (output cut off) is all reasoning."""
    stripped = text.lstrip()
    if not stripped.startswith(OPEN):
        return None, text
    body = stripped[len(OPEN):].removeprefix("\n")
    reasoning, sep, answer = body.partition(CLOSE)
    return reasoning, answer.removeprefix("\n") if sep else ""


def _held_suffix(text: str) -> int:
    """Length of the longest suffix of `text` that could be the start of CLOSE."""
    for n in range(min(len(CLOSE) - 1, len(text)), 0, -1):
        if CLOSE.startswith(text[-n:]):
            return n
    return 0


class ThinkSplitter:
    def __init__(self) -> None:
        self._state = "start"  # start → (think →) text
        self._buf = ""
        self._strip_newline = False
        self.plain = False  # True once the content is known to have no think block

    def feed(self, text: str) -> list[tuple[str, str]]:
        if self._state == "text":
            return self._text(text)
        self._buf += text
        if self._state == "start":
            head = self._buf.lstrip()
            if len(head) < len(OPEN) and OPEN.startswith(head):
                return []  # could still become <think>
            if not head.startswith(OPEN):
                self._state, self.plain = "text", True
                buf, self._buf = self._buf, ""
                return [(TEXT, buf)]
            self._state = "think"
            self._buf = head[len(OPEN):]
            self._strip_newline = True
        return self._think()

    def _think(self) -> list[tuple[str, str]]:
        if self._strip_newline and self._buf:
            self._buf = self._buf.removeprefix("\n")
            self._strip_newline = False
        out: list[tuple[str, str]] = []
        end = self._buf.find(CLOSE)
        if end >= 0:
            if end:
                out.append((REASONING, self._buf[:end]))
            rest = self._buf[end + len(CLOSE):]
            self._buf = ""
            self._state = "text"
            self._strip_newline = True
            out.extend(self._text(rest))
            return out
        keep = _held_suffix(self._buf)
        emit = self._buf[: len(self._buf) - keep]
        self._buf = self._buf[len(emit):]
        if emit:
            out.append((REASONING, emit))
        return out

    def _text(self, text: str) -> list[tuple[str, str]]:
        if self._strip_newline and text:
            text = text.removeprefix("\n")
            self._strip_newline = False
        return [(TEXT, text)] if text else []

    def flush(self) -> list[tuple[str, str]]:
        """End of output: whatever is held back is what it was heading to be."""
        buf, self._buf = self._buf, ""
        if not buf:
            return []
        return [(REASONING if self._state == "think" else TEXT, buf)]
