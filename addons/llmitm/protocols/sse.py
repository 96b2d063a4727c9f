"""Incremental server-sent-events decoder, indifferent to how the bytes are split into chunks.

Follows the WHATWG event-stream rules (lines end in \\r\\n, \\n or \\r; `field: value` with one
optional space; `:` starts a comment; a blank line dispatches) plus two tolerances seen in the wild:
- events separated by a single newline (`data: {..}\\ndata: {..}\\n`): a second `data:` line that
  follows a complete JSON document starts a new event instead of extending the first;
- a final event without its blank line is dispatched by `close()`.
Memory per stream is bounded by the longest line (plus one event's data).
"""

from __future__ import annotations

import json

MAX_LINE = 32 * 1024 * 1024  # a line longer than this is not SSE we can help with


class SSEEvent:
    __slots__ = ("comment", "data", "event")

    def __init__(self, event: str | None = None, data: str | None = None, comment: str | None = None):
        self.event = event  # the `event:` name, or None
        self.data = data  # data lines joined with "\n"; None for a comment
        self.comment = comment  # text of a `:` comment line (keep-alives)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SSEEvent) and (self.event, self.data, self.comment) == (
            other.event, other.data, other.comment)

    def __repr__(self) -> str:
        return f"SSEEvent(event={self.event!r}, data={self.data!r}, comment={self.comment!r})"


def _is_json_document(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


class SSEDecoder:
    def __init__(self) -> None:
        self._buf = b""
        self._event: str | None = None
        self._data: list[str] = []
        self._pending_cr = False
        self._at_start = True  # a UTF-8 byte order mark may open the stream (and be split)

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if self._at_start:
            head = self._buf + chunk
            if len(head) < 3 and b"\xef\xbb\xbf".startswith(head):
                self._buf = head
                return []
            self._at_start = False
            self._buf, chunk = b"", head.removeprefix(b"\xef\xbb\xbf")
        if self._pending_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]  # the \n of a \r\n split across chunks; the \r already ended the line
        self._pending_cr = False
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            self._pending_cr = buf.endswith(b"\r")
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        if len(self._buf) > MAX_LINE:
            raise ValueError("SSE line too long")
        out: list[SSEEvent] = []
        for line in lines:
            self._line(line, out)
        return out

    def close(self) -> list[SSEEvent]:
        """The stream ended: process a last unterminated line and dispatch a pending event."""
        out: list[SSEEvent] = []
        if self._buf:
            self._line(self._buf, out)
            self._buf = b""
        self._dispatch(out)
        return out

    def _line(self, raw: bytes, out: list[SSEEvent]) -> None:
        if not raw:
            self._dispatch(out)
            return
        line = raw.decode("utf-8", "replace")
        if line[0] == ":":
            out.append(SSEEvent(comment=line[1:].lstrip(" ")))
            return
        name, sep, value = line.partition(":")
        if sep and value[:1] == " ":
            value = value[1:]
        if name == "data":
            if self._data and self._data[-1][:1] in ("{", "[") and _is_json_document("\n".join(self._data)):
                self._dispatch(out)  # single-newline framing: the previous event was complete
            self._data.append(value)
        elif name == "event":
            if self._data:
                self._dispatch(out)  # an event line after data without a blank line between
            self._event = value
        # `id:` and `retry:` carry nothing the translators need; unknown fields are ignored per spec.

    def _dispatch(self, out: list[SSEEvent]) -> None:
        if self._data:
            out.append(SSEEvent(self._event, "\n".join(self._data)))
        self._event = None
        self._data = []
