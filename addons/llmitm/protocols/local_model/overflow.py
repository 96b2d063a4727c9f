"""Context overflow (PROTOCOLS.md §5.5): each server words it its own way; apps recognise Anthropic's
wording (Claude Code compacts on "prompt is too long", lowers max_tokens on the other) and OpenAI's
code `context_length_exceeded`."""

from __future__ import annotations

import json
import re
from typing import Any

from ..canonical import ApiError
from ..policy import as_dict

_OVERFLOW_RE = re.compile(r"context (?:length|size|window)|exceed_context_size|prompt is too long", re.I)
_CTX_RES = (re.compile(r"maximum context length is (\d+)"), re.compile(r"context length \((\d+) tokens\)"))
_INPUT_RES = (re.compile(r"(\d+) in the messages"), re.compile(r"has (\d+) input tokens"),
              re.compile(r"input \((\d+) tokens\)"))
_OUTPUT_RES = (re.compile(r"(\d+) in the completion"), re.compile(r"is too large: (\d+)"))


def _first_int(patterns: tuple, text: str, extra: Any = None) -> int | None:
    if isinstance(extra, int) and not isinstance(extra, bool):
        return extra
    for pattern in patterns:
        m = pattern.search(text)
        if m:
            return int(m.group(1))
    return None


def context_overflow(err: ApiError, body: bytes) -> ApiError:
    """A local server's "context exceeded" error in the words apps act on; other errors unchanged.
    vLLM, SGLang and llama.cpp (`exceed_context_size_error` with n_prompt_tokens/n_ctx) wordings."""
    if not 400 <= err.status < 500 or not _OVERFLOW_RE.search(f"{err.message} {err.type} {err.code}"):
        return err
    try:
        detail = as_dict(as_dict(json.loads(body)).get("error"))
    except ValueError:
        detail = {}
    ctx_len = _first_int(_CTX_RES, err.message, detail.get("n_ctx"))
    prompt = _first_int(_INPUT_RES, err.message, detail.get("n_prompt_tokens"))
    output = _first_int(_OUTPUT_RES, err.message)
    if prompt is not None and ctx_len is not None and output is not None and prompt < ctx_len:
        message = (f"input length and `max_tokens` exceed context limit: {prompt} + {output} > {ctx_len}, "
                   "decrease input length or `max_tokens` and try again")
    elif prompt is not None and ctx_len is not None:
        message = f"prompt is too long: {prompt} tokens > {ctx_len} maximum"
    else:
        message = "prompt is too long"
    if err.message and not err.message.lower().startswith("prompt is too long"):
        message += f" (local server: {err.message})"
    return ApiError(400, message, "invalid_request_error", err.param, "context_length_exceeded")
