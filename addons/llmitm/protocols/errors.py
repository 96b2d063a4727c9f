"""Error bodies in each wire protocol, for errors llmitm itself raises (bad JSON, unknown model,
no key free) and for upstream errors rendered in the client's protocol.

The status code is the same family everywhere; the body shape and the error type for a status are
each protocol's wire facts (`error_body` and `ERROR_TYPES` in its wire.py), the in-stream error
event its codec's `render_stream_error`.
"""

from __future__ import annotations

import json

from .canonical import ApiError
from .spoke import SpokeRecord


def _spoke(protocol: str) -> SpokeRecord:
    # Looked up at call time: every spoke imports this module, and the registry imports every spoke.
    from .registry import REGISTRY

    return REGISTRY[protocol]


def error_type_for(protocol: str, status: int) -> str:
    """The error type (Gemini: the google.rpc status) a client of `protocol` expects for `status`."""
    return _spoke(protocol).wire.ERROR_TYPES.for_status(status)


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
    wire = _spoke(protocol).wire
    return wire.error_body(status, message, error_type or wire.ERROR_TYPES.for_status(status), param, code)


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


def render_stream_error(protocol: str, status: int, message: str) -> bytes:
    """One in-stream error event for a client of `protocol`, exactly as a translated stream would end
    (the codec's own `render_stream_error`: one source for both paths)."""
    return _spoke(protocol).codec.render_stream_error(ApiError(status, message))
