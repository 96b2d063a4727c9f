"""From the config file's text to values: `${VAR}` expansion, and validation messages that name the
field and never show a secret (a credential field's value is never shown; any other value is shown as
written, so a `${VAR}` stays a name and its expansion — possibly a key — stays out of logs)."""

from __future__ import annotations

import os
import re
from typing import Any

from pydantic import ValidationError


class ConfigError(ValueError):
    """A configuration problem; the message names the file and the field."""


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: Any, env: dict[str, str] | os._Environ[str], path: str = "") -> Any:
    """Expand ${VAR} and ${VAR:-default} in every string of a parsed YAML tree."""
    if isinstance(value, dict):
        return {k: expand_env(v, env, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, env, f"{path}.{i}") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env and env[name] != "":
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"{path}: environment variable ${{{name}}} is not set (use ${{{name}:-default}} for a default)")

    return _VAR.sub(substitute, value)


# Fields whose values are credentials: an error about them never shows the value, only its type.
_SECRET_FIELDS = re.compile(r"^(providers\.[^.]+\.(keys|headers)|clients\.\d+\.key)(\.|$)")


def _raw_value(raw: Any, loc: tuple) -> Any:
    """The value at `loc` as written in the file, before ${VAR} expansion (None if absent)."""
    for part in loc:
        if isinstance(raw, dict) and part in raw:
            raw = raw[part]
        elif isinstance(raw, list) and isinstance(part, int) and 0 <= part < len(raw):
            raw = raw[part]
        elif isinstance(raw, str) and isinstance(part, int):
            return raw  # a scalar the model wraps into a list (`protocol: x`)
        else:
            return None
    return raw


def _shown_input(loc: str, written: Any, value: Any) -> str:
    """How an error shows the offending value: as written (so `${VAR}` stays a name, never its
    expansion), and never at all for a credential field."""
    if _SECRET_FIELDS.match(loc):
        return f" (got a {type(value).__name__}; value not shown: it may be a secret)"
    if written is None:  # not found as written: the expanded value might carry a secret
        return f" (got a {type(value).__name__})"
    text = repr(written)
    return f" (got {text[:80] + '…' if len(text) > 80 else text})"


def validation_message(source: str, err: ValidationError, raw: Any = None) -> str:
    """One line per pydantic error: `source: dotted.field: message (got …)`."""
    lines = []
    for e in err.errors():
        parts = tuple(p for p in e["loc"] if not str(p).startswith("function-"))
        loc = ".".join(str(p) for p in parts)
        msg = e["msg"].removeprefix("Value error, ")
        shows_input = e["type"] != "missing" and not isinstance(e["input"], (dict, list))
        got = _shown_input(loc, _raw_value(raw, parts), e["input"]) if shows_input else ""
        lines.append(f"{source}: {loc + ': ' if loc else ''}{msg}{got}")
    return "\n".join(lines)
