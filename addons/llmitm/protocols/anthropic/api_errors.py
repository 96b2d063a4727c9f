"""Anthropic error bodies, as HTTP bodies and as `event: error` inside streams (PROTOCOLS.md §2.11)."""

from __future__ import annotations

import json

from .. import errors
from ..canonical import ApiError
from ..policy import as_dict

# The protocol's name: the spoke's identity (re-exported by the package) and the shape of its error bodies.
NAME = "anthropic"

# Error type → HTTP status, for errors that arrive inside a stream (no status of their own).
STATUS_FOR_TYPE = {
    "invalid_request_error": 400, "authentication_error": 401, "billing_error": 402, "permission_error": 403,
    "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
    "timeout_error": 504, "overloaded_error": 529,
}


def error_from_payload(payload: dict, status: int | None) -> ApiError:
    err = as_dict(payload.get("error"))
    etype = err["type"] if isinstance(err.get("type"), str) else None
    message = err["message"] if isinstance(err.get("message"), str) else json.dumps(payload)[:1000]
    return ApiError(status or STATUS_FOR_TYPE.get(etype or "", 500), message, etype)


def parse_error(status: int | None, body: bytes) -> ApiError:
    """An error body; with `status` None (an error inside a 200) the status follows the error type."""
    try:
        payload = json.loads(body)
    except ValueError:
        return ApiError(status or 502, body.decode("utf-8", "replace")[:1000] or f"upstream returned HTTP {status}")
    return error_from_payload(as_dict(payload), status)


def render_error(err: ApiError) -> bytes:
    return errors.render_error(NAME, err.status, err.message)


def render_stream_error(err: ApiError) -> bytes:
    body = errors.error_body(NAME, err.status, err.message)
    return b"event: error\ndata: " + json.dumps(body).encode() + b"\n\n"
