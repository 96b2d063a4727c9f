"""Streamed function-call arguments (`partialArgs`) → the JSON text of the arguments object."""

from __future__ import annotations

import json
import re

_PATH_TOKEN = re.compile(r"\.([A-Za-z_$][\w$-]*)|\[(\d+)\]|\[['\"]((?:[^'\"\\]|\\.)*)['\"]\]")


def parse_json_path(path: str) -> list | None:
    if not path.startswith("$"):
        return None
    keys: list = []
    pos = 1
    while pos < len(path):
        m = _PATH_TOKEN.match(path, pos)
        if not m:
            return None
        keys.append(m.group(1) if m.group(1) is not None else int(m.group(2)) if m.group(2) is not None
                    else m.group(3))
        pos = m.end()
    return keys


class _OpenObject:
    """An object whose closing brace is still due: the keys written so far, and the key whose value
    (an open container) is being written."""

    __slots__ = ("keys", "child")
    closer = "}"

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.child: str | int | None = None


class _OpenArray:
    """An array whose closing bracket is still due: the next index to write, and the index whose value
    (an open container) is being written."""

    __slots__ = ("next_index", "child")
    closer = "]"

    def __init__(self) -> None:
        self.next_index = 0
        self.child: str | int | None = None


class ArgsWriter:
    """Streamed function-call arguments (`partialArgs`: one JSON path and value at a time, in document
    order, strings in pieces) → the JSON text of the arguments object, written as it arrives so the
    client sees the call progress. A path that goes back to something already written (never seen from
    Gemini) ends the object there: the text stays valid JSON and the rest is dropped with a warning."""

    __slots__ = ("_stack", "_string", "broken", "closed")

    def __init__(self) -> None:
        self._stack: list[_OpenObject | _OpenArray] = []  # open containers, outermost first
        self._string: list | None = None  # path of the string still being written
        self.broken = False
        self.closed = False

    def value(self, path: list, value, *, is_string: bool, more: bool) -> str:
        if self.broken or self.closed:
            return ""
        out: list[str] = []
        if not self._stack:
            self._stack.append(_OpenObject())
            out.append("{")
        if self._string is not None:
            if is_string and path == self._string:
                out.append(json.dumps(value)[1:-1])
                if not more:
                    out.append('"')
                    self._string = None
                return "".join(out)
            out.append('"')
            self._string = None
        open_path = [container.child for container in self._stack[:-1]]
        parent = path[:-1]
        common = 0
        while common < min(len(open_path), len(parent)) and open_path[common] == parent[common]:
            common += 1
        while len(self._stack) - 1 > common:
            out.append(self._stack.pop().closer)
            self._stack[-1].child = None
        for depth, key in enumerate(path[common:], start=common):
            container = self._stack[-1]
            if container.__class__ is _OpenObject and isinstance(key, str) and key not in container.keys:
                out.append(("," if container.keys else "") + json.dumps(key) + ":")
                container.keys.add(key)
            elif container.__class__ is _OpenArray and isinstance(key, int) and key >= container.next_index:
                for _ in range(container.next_index, key):
                    out.append(("," if container.next_index else "") + "null")
                    container.next_index += 1
                out.append("," if container.next_index else "")
                container.next_index = key + 1
            else:
                self.broken = True
                return "".join(out) + self.close()
            if depth == len(path) - 1:
                if is_string:
                    out.append(json.dumps(value)[:-1] if more else json.dumps(value))
                    if more:
                        self._string = list(path)
                else:
                    out.append(json.dumps(value))
            else:
                child = path[depth + 1]
                container.child = key
                self._stack.append(_OpenArray() if isinstance(child, int) else _OpenObject())
                out.append("[" if isinstance(child, int) else "{")
        return "".join(out)

    def close(self) -> str:
        if self.closed:
            return ""
        self.closed = True
        if not self._stack:
            return "{}"
        out = '"' if self._string is not None else ""
        while self._stack:
            out += self._stack.pop().closer
        return out
