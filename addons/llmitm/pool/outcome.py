"""What a finished upstream attempt means for the key that served it."""

from __future__ import annotations

import enum
from typing import Any


class Outcome(enum.Enum):
    UNKNOWN = "unknown"  # released without a result (attempt abandoned before an answer): frees the slot only
    ABORTED = "aborted"  # the app went away mid-answer: the key served, its health is not judged
    SUCCESS = "success"  # the key works: 2xx/3xx, and 4xx that are the request's fault (400, 404, 413, 422…)
    RATE_LIMITED = "rate-limited"  # 429 / rate_limit_error / RESOURCE_EXHAUSTED: cool down
    QUOTA_EXHAUSTED = "quota-exhausted"  # OpenAI insufficient_quota: billing, not a minute window; long cooldown
    OVERLOADED = "overloaded"  # 529 / 503 / overloaded_error: cool down
    AUTH_FAILED = "auth-failed"  # 401 / 402 / 403: disable until a probe succeeds
    FAILURE = "failure"  # other 5xx or a connection error: counts towards the circuit breaker


_BODY_TYPES = {
    "rate_limit_error": Outcome.RATE_LIMITED,  # Anthropic, also in-stream
    "overloaded_error": Outcome.OVERLOADED,
    "insufficient_quota": Outcome.QUOTA_EXHAUSTED,  # OpenAI puts it in type and code
    "RESOURCE_EXHAUSTED": Outcome.RATE_LIMITED,  # Gemini status
    "UNAVAILABLE": Outcome.OVERLOADED,
}


def _body_outcome(body_json: Any) -> Outcome | None:
    if isinstance(body_json, list) and body_json:
        body_json = body_json[0]
    if not isinstance(body_json, dict):
        return None
    error = body_json.get("error")
    if not isinstance(error, dict):
        return None
    for name in ("code", "type", "status"):
        value = error.get(name)
        if isinstance(value, str) and value in _BODY_TYPES:
            return _BODY_TYPES[value]
    return None


def classify(status: int | None, body_json: Any = None, error: str | None = None, aborted: bool = False) -> Outcome:
    if aborted:
        # The app disconnected: a broken stream or read is its doing, not the key's (three aborted streams
        # used to open a key's breaker). What the upstream itself said before that (429, 401, 5xx, an
        # in-stream overloaded_error) still counts.
        verdict = classify(status, body_json)
        return Outcome.ABORTED if verdict in (Outcome.SUCCESS, Outcome.UNKNOWN) else verdict
    if status is None:
        return Outcome.FAILURE if error else Outcome.UNKNOWN
    # An error body names the cause more precisely than the status (an in-stream overloaded_error comes
    # with 200; OpenAI's insufficient_quota comes with 429 but will not clear in a minute).
    by_body = _body_outcome(body_json)
    if by_body is not None and (status >= 400 or by_body is not Outcome.QUOTA_EXHAUSTED):
        return by_body
    if status == 429:
        return Outcome.RATE_LIMITED
    if status in (529, 503):
        return Outcome.OVERLOADED
    if status in (401, 402, 403):
        return Outcome.AUTH_FAILED
    if status >= 500 or error:  # error with a 2xx: the connection broke mid-response
        return Outcome.FAILURE
    return Outcome.SUCCESS
