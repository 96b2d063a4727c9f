"""Field spelling and the request path: the Gemini API accepts lowerCamel and snake_case field names
(the google-genai SDK sends a mix of both), and puts the model and stream-or-not in the path."""

from __future__ import annotations

import re

from ..field_types import typed

_PATH_RE = re.compile(r"models/([^/:?]+):([A-Za-z]+)")


_SNAKE: dict[str, str] = {}


def _snake(name: str) -> str:
    snake = _SNAKE.get(name)
    if snake is None:
        snake = _SNAKE[name] = re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()
    return snake


def get_field(d: dict, name: str, default=None):
    """A field in either spelling (the API accepts lowerCamel and snake_case)."""
    if name in d:
        return d[name]
    return d.get(_SNAKE.get(name) or _snake(name), default)


def typed_field(d: dict, name: str, kind: str, where: str, default=None):
    """A field in either spelling that must hold `kind` (see `canonical.typed`) when present and not
    null; `where` is the path of `d`."""
    return typed(get_field(d, name), kind, f"{where}.{name}" if where else name, default)


def camel_keys(d: dict) -> set[str]:
    """Field names normalised to lowerCamel."""
    out = set()
    for k in d:
        head, *rest = k.split("_")
        out.add(head + "".join(w[:1].upper() + w[1:] for w in rest))
    return out


def parse_path(path: str | None) -> tuple[str | None, str | None, bool]:
    """(model, method, alt=sse) from the path the app called."""
    if not path:
        return None, None, False
    m = _PATH_RE.search(path)
    sse = "alt=sse" in (path.partition("?")[2])
    if not m:
        return None, None, sse
    return m.group(1), m.group(2), sse
