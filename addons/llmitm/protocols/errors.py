"""Error bodies in each wire protocol, for errors llmitm itself raises (bad JSON, unknown model,
no key free) and for upstream errors rendered in the client's protocol.

The status code is the same family everywhere; only the body shape and the error type differ.
"""

from __future__ import annotations

import json

# Anthropic error types by status (PROTOCOLS.md §1.3 / §2.11).
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
# OpenAI error types by status.
_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}
# google.rpc status names by HTTP status.
_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def error_type_for(protocol: str, status: int) -> str:
    if protocol == "anthropic":
        return _ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    if protocol == "gemini":
        return _GOOGLE_STATUS.get(status, "INTERNAL" if status >= 500 else "INVALID_ARGUMENT")
    return _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")


def error_body(
    protocol: str,
    status: int,
    message: str,
    *,
    error_type: str | None = None,
    param: str | None = None,
    code: str | None = None,
) -> dict:
    """The JSON error object a client of `protocol` expects for an HTTP `status`."""
    etype = error_type or error_type_for(protocol, status)
    if protocol == "anthropic":
        return {"type": "error", "error": {"type": etype, "message": message}}
    if protocol == "gemini":
        return {"error": {"code": status, "message": message, "status": etype}}
    return {"error": {"message": message, "type": etype, "param": param, "code": code}}


def render_error(
    protocol: str,
    status: int,
    message: str,
    *,
    error_type: str | None = None,
    param: str | None = None,
    code: str | None = None,
) -> bytes:
    body = error_body(protocol, status, message, error_type=error_type, param=param, code=code)
    return json.dumps(body).encode()
