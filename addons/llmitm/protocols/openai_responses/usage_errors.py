"""Usage and error bodies (OpenAI's error object, in bodies and as stream events)."""

from __future__ import annotations

import json

from .. import errors
from ..canonical import ApiError, Usage
from ..openai_chat import error_from_payload  # OpenAI's error object is the same in both protocols
from ..policy import as_dict

NAME = "openai-responses"


def parse_usage(u: dict) -> Usage:
    u = as_dict(u)
    idet = as_dict(u.get("input_tokens_details"))
    odet = as_dict(u.get("output_tokens_details"))
    reasoning = odet.get("reasoning_tokens")
    return Usage(
        input_total=u.get("input_tokens") or 0,  # includes cached tokens (PROTOCOLS.md §2.8)
        cached_read=idet.get("cached_tokens") or 0,
        cache_write=idet.get("cache_write_tokens") or 0,
        output_total=u.get("output_tokens") or 0,
        reasoning=reasoning if isinstance(reasoning, int) else None,
    )


def render_usage(u: Usage | None) -> dict:
    # Always an object: strict clients (vercel/ai's schema) require usage on completed/incomplete, and
    # the Anthropic spoke likewise reports an unknown usage as zeros.
    u = u or Usage()
    idet = {"cached_tokens": u.cached_read, "cache_write_tokens": u.cache_write}  # openai>=2.x declares both
    return {
        "input_tokens": u.input_total, "input_tokens_details": idet, "output_tokens": u.output_total,
        # Anthropic does not split reasoning out; the field is required, so 0 stands for "not reported".
        "output_tokens_details": {"reasoning_tokens": u.reasoning or 0},
        "total_tokens": u.input_total + u.output_total,
    }


def parse_error(status: int | None, body: bytes) -> ApiError:
    """An error body (`{"error": {...}}`), or a response object with status `failed`; with `status`
    None (inside a 200) the status follows the error code."""
    try:
        payload = json.loads(body)
    except ValueError:
        return ApiError(status or 502, body.decode("utf-8", "replace")[:1000] or f"upstream returned HTTP {status}")
    payload = as_dict(payload)
    if payload.get("error"):
        return error_from_payload(payload["error"], status)
    if isinstance(payload.get("response"), dict) and payload["response"].get("error"):  # a response.failed event
        return error_from_payload(payload["response"]["error"], status)
    message = payload.get("message") or payload.get("detail") or json.dumps(payload)[:1000]
    return ApiError(status or 502, message if isinstance(message, str) else json.dumps(message)[:1000])


def render_error(err: ApiError) -> bytes:
    return errors.render_error(NAME, err.status, err.message, param=err.param, code=err.code or err.type)


def stream_error_payload(err: ApiError, sequence_number: int) -> dict:
    # Both shapes at once: recordings nest the error (and the openai SDK raises on it), SDK 3.x's
    # ResponseErrorEvent declares code/message/param at the top level (PROTOCOLS.md §1.2).
    code = err.code or err.type or errors.error_type_for(NAME, err.status)  # clients require a string code
    body = errors.error_body(NAME, err.status, err.message, param=err.param, code=code)["error"]
    return {"type": "error", "sequence_number": sequence_number, "code": body["code"], "message": err.message,
            "param": err.param, "error": body}


def render_stream_error(err: ApiError) -> bytes:
    return sse_event("error", stream_error_payload(err, 0))


def sse_event(name: str, payload: dict) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"
