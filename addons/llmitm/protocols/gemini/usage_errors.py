"""usageMetadata and error bodies (google.rpc.Status) in and out."""

from __future__ import annotations

import json
import re

from .. import errors
from ..canonical import ApiError, Usage
from ..policy import as_dict
from .fields import get_field

NAME = "gemini"
# google.rpc status → HTTP status, for errors that carry no usable code.
STATUS_FOR_RPC = {
    "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400, "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403, "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429, "CANCELLED": 499, "INTERNAL": 500, "UNKNOWN": 500, "DATA_LOSS": 500,
    "NOT_IMPLEMENTED": 501, "UNIMPLEMENTED": 501, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504,
}




def parse_usage(u: dict) -> Usage | None:
    """usageMetadata → Usage; None when it carries no counts (Vertex's `{"trafficType": …}` chunks)."""
    prompt = get_field(u, "promptTokenCount")
    candidates = get_field(u, "candidatesTokenCount")
    thoughts = get_field(u, "thoughtsTokenCount")
    if prompt is None and candidates is None and thoughts is None and get_field(u, "totalTokenCount") is None:
        return None
    tool_prompt = get_field(u, "toolUsePromptTokenCount") or 0
    return Usage(
        input_total=(prompt or 0) + tool_prompt,  # promptTokenCount already includes cached tokens
        cached_read=get_field(u, "cachedContentTokenCount") or 0,
        output_total=(candidates or 0) + (thoughts or 0),  # candidatesTokenCount excludes thoughts
        reasoning=thoughts if isinstance(thoughts, int) else None,
    )


def render_usage(u: Usage | None) -> dict:
    u = u or Usage()
    thoughts = u.reasoning or 0
    # candidatesTokenCount excludes thoughts. An upstream reporting more reasoning than output tokens
    # (xAI) counted them apart: then both are reported as given.
    candidates = u.output_total - thoughts if thoughts <= u.output_total else u.output_total
    out = {"promptTokenCount": u.input_total, "candidatesTokenCount": candidates,
           "totalTokenCount": u.input_total + candidates + thoughts}
    if thoughts:
        out["thoughtsTokenCount"] = thoughts
    if u.cached_read:
        out["cachedContentTokenCount"] = u.cached_read
    return out


def _retry_delay(details) -> float | None:
    for d in details if isinstance(details, list) else []:
        d = as_dict(d)
        if str(d.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = d.get("retryDelay") or d.get("retry_delay")
            if isinstance(delay, str) and delay.endswith("s"):
                try:
                    return float(delay[:-1])
                except ValueError:
                    return None
    return None


def error_from_payload(err, status: int | None) -> ApiError:
    if isinstance(err, str):
        return ApiError(status or 500, err)
    err = as_dict(err)
    rpc = err.get("status") if isinstance(err.get("status"), str) else None
    code = err.get("code")
    if status is None:
        status = code if isinstance(code, int) and 400 <= code < 600 else STATUS_FOR_RPC.get(rpc or "", 500)
    message = err.get("message") if isinstance(err.get("message"), str) else json.dumps(err)[:1000]
    delay = _retry_delay(err.get("details"))
    if delay is not None and "retry" not in message.lower():
        message = f"{message} (retry in {delay:g}s)"
    return ApiError(status, message, rpc, None, rpc)


def parse_error(status: int | None, body: bytes) -> ApiError:
    """An error body; with `status` None (an error inside a 200) the status follows the error code."""
    try:
        payload = json.loads(body)
    except ValueError:
        return ApiError(status or 502, body.decode("utf-8", "replace")[:1000] or f"upstream returned HTTP {status}")
    if isinstance(payload, list) and payload:  # a non-SSE stream's JSON array
        payload = payload[0]
    payload = as_dict(payload)
    if "error" in payload:
        return error_from_payload(payload["error"], status)
    message = payload.get("message") or json.dumps(payload)[:1000]
    return ApiError(status or 502, message if isinstance(message, str) else json.dumps(message)[:1000])


_RETRY_RE = re.compile(r"(?:retry|try again) in ([0-9.]+)s\b", re.I)


def error_body(err: ApiError) -> dict:
    body = errors.error_body(NAME, err.status, err.message)
    if err.status == 429:  # google-genai and other Gemini clients look for RetryInfo
        m = _RETRY_RE.search(err.message)
        if m:
            body["error"]["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                         "retryDelay": f"{m.group(1)}s"}]
    return body


def render_error(err: ApiError) -> bytes:
    return json.dumps(error_body(err)).encode()


def render_stream_error(err: ApiError) -> bytes:
    return b"data: " + json.dumps(error_body(err)).encode() + b"\r\n\r\n"
