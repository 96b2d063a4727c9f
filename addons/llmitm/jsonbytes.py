"""Byte-exact edits of JSON request bodies.

Same-protocol passthrough must leave every byte but the model alone (field order, whitespace,
unknown fields, number formats), so the model is replaced in place rather than by a
json.loads/json.dumps round trip.
"""

from __future__ import annotations

import json


def top_level_string_span(body: bytes, key: str) -> tuple[int, int] | None:
    """(start, end) of the string value of `key` in the top-level JSON object, quotes included."""
    text = body
    depth = 0
    i, n = 0, len(text)
    want = json.dumps(key).encode()
    while i < n:
        c = text[i]
        if c == 0x22:  # '"'
            j = _string_end(text, i)
            if depth == 1 and _is_key(text[i:j], want, key):
                k = j
                while k < n and text[k] in b" \t\r\n":
                    k += 1
                if k < n and text[k] == 0x3A:  # ':'
                    k += 1
                    while k < n and text[k] in b" \t\r\n":
                        k += 1
                    if k < n and text[k] == 0x22:
                        return k, _string_end(text, k)
                    return None
            i = j
            continue
        if c in b"{[":
            depth += 1
        elif c in b"}]":
            depth -= 1
        i += 1
    return None


def _is_key(raw: bytes, want: bytes, key: str) -> bool:
    """Whether the JSON string `raw` (quotes included) spells `key`, escapes decoded: `"mod\\u0065l"`
    is the key routing read as "model", so the rewrite must find it too."""
    if raw == want:
        return True
    return b"\\" in raw and len(raw) <= 8 * len(want) and json.loads(raw) == key


def _string_end(text: bytes, start: int) -> int:
    """Index just past the closing quote of the JSON string opening at `start`."""
    i = start + 1
    while True:
        q = text.index(b'"', i)
        backslashes = 0
        k = q - 1
        while text[k] == 0x5C:  # '\\'
            backslashes += 1
            k -= 1
        if backslashes % 2 == 0:
            return q + 1
        i = q + 1


def replace_top_level_string(body: bytes, key: str, value: str) -> bytes:
    span = top_level_string_span(body, key)
    if span is None:
        raise ValueError(f"no top-level string field {key!r}")
    start, end = span
    return body[:start] + json.dumps(value, ensure_ascii=False).encode() + body[end:]
