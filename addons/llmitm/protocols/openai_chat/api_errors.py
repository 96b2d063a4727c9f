"""OpenAI Chat error bodies, as HTTP bodies and inside streams (PROTOCOLS.md §2.11); the error object
is the same in the Responses API, which parses it with `error_from_payload`."""

from __future__ import annotations

import json

from .. import errors
from ..canonical import ApiError
from ..policy import as_dict

# The protocol's name: the spoke's identity (re-exported by the package) and the shape of its error bodies.
NAME = "openai-chat"

# Error type/code → HTTP status, for errors that arrive inside a stream.
STATUS_FOR_TYPE = {
    "invalid_request_error": 400, "invalid_prompt": 400, "invalid_image": 400, "invalid_image_format": 400,
    "invalid_base64_image": 400, "invalid_image_url": 400, "image_too_large": 400, "image_too_small": 400,
    "image_parse_error": 400, "image_content_policy_violation": 400, "invalid_image_mode": 400,
    "image_file_too_large": 400, "unsupported_image_media_type": 400, "empty_image_file": 400,
    "failed_to_download_image": 400, "image_file_not_found": 400, "context_length_exceeded": 400,
    "authentication_error": 401, "invalid_api_key": 401, "permission_error": 403, "not_found_error": 404,
    "model_not_found": 404, "rate_limit_exceeded": 429, "rate_limit_error": 429, "insufficient_quota": 429,
    "tokens": 429, "requests": 429, "server_error": 500, "api_error": 500, "vector_store_timeout": 500,
    "overloaded_error": 529,
}


def error_from_payload(err, status: int | None) -> ApiError:
    """`{"message","type","code","param"}`: HTTP errors, in-stream errors, and (Responses) failed responses."""
    if isinstance(err, str):
        return ApiError(status or 500, err)
    err = as_dict(err)
    etype = err.get("type") if isinstance(err.get("type"), str) else None
    code = err.get("code")
    if status is None:
        status = (code if isinstance(code, int) and 400 <= code < 600
                  else STATUS_FOR_TYPE.get(str(code), STATUS_FOR_TYPE.get(etype or "", 500)))
    message = err.get("message") if isinstance(err.get("message"), str) else json.dumps(err)[:1000]
    return ApiError(status, message, etype, err.get("param"), str(code) if code is not None else None)


def parse_error(status: int | None, body: bytes) -> ApiError:
    """An error body; with `status` None (an error inside a 200) the status follows the error type."""
    try:
        payload = json.loads(body)
    except ValueError:
        return ApiError(status or 502, body.decode("utf-8", "replace")[:1000] or f"upstream returned HTTP {status}")
    payload = as_dict(payload)
    if "error" in payload:
        return error_from_payload(payload["error"], status)
    # FastAPI-style servers ({"detail": …}) and others ({"message": …}).
    message = payload.get("message") or payload.get("detail") or json.dumps(payload)[:1000]
    return ApiError(status or 502, message if isinstance(message, str) else json.dumps(message)[:1000])


def render_error(err: ApiError) -> bytes:
    # The upstream's own error type survives as `code` when the client has no code to go by.
    return errors.render_error(NAME, err.status, err.message, param=err.param, code=err.code or err.type)


def render_stream_error(err: ApiError) -> bytes:
    body = errors.error_body(NAME, err.status, err.message, param=err.param, code=err.code or err.type)
    return b"data: " + json.dumps(body).encode() + b"\n\n"
