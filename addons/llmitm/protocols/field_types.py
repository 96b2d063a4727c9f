"""Typed reads of client request fields for the spokes' parsers.

A field of the wrong JSON type is the app's mistake: it becomes a `TranslationError` (a 400 in the
app's protocol, `param` naming the field) at parse time, so the canonical `Request` holds only the
types it declares and no renderer meets a list where it expects text. Absent and `null` fields are
not errors: each reader returns its empty value for them.
"""

from __future__ import annotations

from typing import Any

from .canonical import TranslationError


def _wrong(param: str, expected: str, value: Any) -> TranslationError:
    return TranslationError(f"{param}: expected {expected}, got {_json_type(value)}", param=param)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"


def text(value: Any, param: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise _wrong(param, "a string", value)


def number(value: Any, param: str) -> int | float | None:
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    raise _wrong(param, "a number", value)


def integer(value: Any, param: str) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, float) and value.is_integer():  # 1024.0 from clients that only have floats
        return int(value)
    raise _wrong(param, "an integer", value)


def boolean(value: Any, param: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise _wrong(param, "a boolean", value)


def array(value: Any, param: str) -> list:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise _wrong(param, "an array", value)


def obj(value: Any, param: str) -> dict:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    raise _wrong(param, "an object", value)


def schema(value: Any, param: str) -> dict | None:
    """A JSON Schema (tool parameters, response schema): an object, or absent."""
    return None if value is None else obj(value, param)


# The readers by the name of the JSON type they accept, for spokes that read many fields alike.
_READERS = {"a string": text, "a number": number, "an integer": integer, "a boolean": boolean,
            "an array": array, "an object": obj}


def typed(value: Any, kind: str, param: str, default: Any = None) -> Any:
    """`value` (a client's field at path `param`) when it holds `kind` ("a string", "an object", "an
    array", "a boolean", "an integer", "a number"); `default` when absent (None); anything else is the
    client's mistake, answered with a 400 naming the field."""
    if value is None:
        return default
    return _READERS[kind](value, param)
