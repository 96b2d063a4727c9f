"""Rate-limit information from an upstream response, in one shape for every provider.

OpenAI, Azure, Anthropic and Gemini each report quota differently (PROTOCOLS.md §1.1, §1.3, §1.4, §2.12).
The pool only needs two things from them: per bucket how much is left and when it refills, and how long
the upstream asked us to wait. All times are converted to absolute epoch seconds on the caller's clock
so that they can be persisted and shared between instances.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

# A Go duration as OpenAI sends it: "6m0s", "12ms", "1h2m3.5s". Azure sends plain seconds ("20").
_GO_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|us|µs|ns|m|s)")
_GO_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}

# Clock skew below this is Date-header rounding (1 s resolution), not a real offset; correcting for it
# would only add error.
_SKEW_TOLERANCE_SECONDS = 2.0


@dataclass(frozen=True)
class Bucket:
    """One quota dimension (requests, tokens, input-tokens, …) of one key."""

    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None  # epoch seconds when `remaining` refills

    @property
    def spent(self) -> bool:
        return self.remaining is not None and self.remaining <= 0

    def fraction_left(self) -> float | None:
        if self.remaining is None or not self.limit:
            return None
        return max(0.0, min(1.0, self.remaining / self.limit))


@dataclass(frozen=True)
class RateLimitInfo:
    buckets: dict[str, Bucket] = field(default_factory=dict)
    retry_after: float | None = None  # seconds the upstream asked us to wait, from the response's arrival

    @property
    def empty(self) -> bool:
        return not self.buckets and self.retry_after is None


@functools.lru_cache(maxsize=256)  # pure, and a response's values repeat (one Date a second, a few resets)
def parse_go_duration(text: str) -> float | None:
    """Seconds in an OpenAI reset value: a Go duration ("6m0s", "12ms") or plain seconds (Azure)."""
    text = text.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    pos, total = 0, 0.0
    for m in _GO_DURATION_PART.finditer(text):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _GO_UNIT_SECONDS[m.group(2)]
        pos = m.end()
    return total if pos == len(text) and pos > 0 else None


@functools.lru_cache(maxsize=256)  # pure, and a response's values repeat (one Date a second, a few resets)
def _parse_rfc3339(text: str) -> float | None:
    try:
        parsed = datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.timestamp()


@functools.lru_cache(maxsize=256)  # pure, and a response's values repeat (one Date a second, a few resets)
def _parse_http_date(text: str) -> float | None:
    try:
        parsed = parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None or parsed.tzinfo is None:
        return None
    return parsed.timestamp()


def _parse_int(text: str) -> int | None:
    try:
        return int(float(text.strip()))
    except ValueError:
        return None


def _server_skew(headers: Mapping[str, str], now: float) -> float:
    """Local minus server clock, from the Date header, when it is large enough to matter."""
    date = headers.get("date")
    server_now = _parse_http_date(date) if date else None
    if server_now is None:
        return 0.0
    skew = now - server_now
    return skew if abs(skew) > _SKEW_TOLERANCE_SECONDS else 0.0


def _retry_after(headers: Mapping[str, str], now: float, skew: float) -> float | None:
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        if name in headers:
            try:
                return max(0.0, float(headers[name]) / 1000.0)
            except ValueError:
                pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    at = _parse_http_date(value)
    return None if at is None else max(0.0, at + skew - now)


def _gemini_retry_delay(body_json: Any) -> float | None:
    """`RetryInfo.retryDelay` from a Gemini RESOURCE_EXHAUSTED body; rounded up, as PROTOCOLS.md §1.4 asks."""
    if isinstance(body_json, list) and body_json:  # streamed JSON arrays wrap the error
        body_json = body_json[0]
    if not isinstance(body_json, dict):
        return None
    error = body_json.get("error")
    details = error.get("details") if isinstance(error, dict) else None
    if not isinstance(details, list):
        return None
    for detail in details:
        if not isinstance(detail, dict) or not str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            continue
        delay = detail.get("retryDelay")
        seconds: float | None = None
        if isinstance(delay, str):
            seconds = parse_go_duration(delay)
        elif isinstance(delay, dict):  # proto3 JSON of Duration can also be {"seconds": .., "nanos": ..}
            try:
                seconds = float(delay.get("seconds", 0)) + float(delay.get("nanos", 0)) / 1e9
            except (TypeError, ValueError):
                seconds = None
        if seconds is not None:
            return float(math.ceil(seconds))
    return None


def _reset_after_duration(value: str, now: float, skew: float) -> float | None:
    relative = parse_go_duration(value)
    return None if relative is None else now + relative


def _reset_at_rfc3339(value: str, now: float, skew: float) -> float | None:
    absolute = _parse_rfc3339(value)
    return None if absolute is None else absolute + skew  # the server's clock, moved onto ours


@dataclass(frozen=True)
class HeaderFamily:
    """One provider family's rate-limit headers: a name pattern with the groups `bucket` and `part`
    (limit | remaining | reset), and how its reset values read (to epoch seconds on our clock)."""

    name: str
    prefix: str  # cheap first test of a header name
    pattern: re.Pattern[str]
    reset_at: Callable[[str, float, float], float | None]  # (value, now, skew) -> epoch seconds


HEADER_FAMILIES: tuple[HeaderFamily, ...] = (
    # OpenAI and Azure OpenAI (PROTOCOLS.md §1.1): x-ratelimit-remaining-requests: 59, …-reset-tokens: 6m0s
    HeaderFamily("x-ratelimit", "x-ratelimit-",
                 re.compile(r"^x-ratelimit-(?P<part>limit|remaining|reset)-(?P<bucket>.+)$"), _reset_after_duration),
    # Anthropic (PROTOCOLS.md §1.3): anthropic-ratelimit-input-tokens-remaining, …-reset: RFC 3339
    HeaderFamily("anthropic-ratelimit", "anthropic-ratelimit-",
                 re.compile(r"^anthropic-ratelimit-(?P<bucket>.+)-(?P<part>limit|remaining|reset)$"), _reset_at_rfc3339),
    # Gemini sends no quota headers; its retryDelay is read from the error body (_gemini_retry_delay).
)
_PREFIXES = tuple(f.prefix for f in HEADER_FAMILIES)


def parse_rate_limits(headers: Mapping[str, str] | None, now: float, body_json: Any = None) -> RateLimitInfo:
    """Everything a response says about quota. `now` is when the response arrived, on the pool's clock."""
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    skew = _server_skew(lowered, now)
    raw: dict[str, dict[str, str]] = {}
    family_of: dict[str, HeaderFamily] = {}
    for name, value in lowered.items():
        if not name.startswith(_PREFIXES):
            continue
        for family in HEADER_FAMILIES:
            if name.startswith(family.prefix) and (m := family.pattern.match(name)):
                raw.setdefault(m.group("bucket"), {})[m.group("part")] = value
                family_of[m.group("bucket")] = family
                break
    buckets: dict[str, Bucket] = {}
    for bucket, parts in raw.items():
        reset_at = family_of[bucket].reset_at(parts["reset"], now, skew) if "reset" in parts else None
        limit = _parse_int(parts["limit"]) if "limit" in parts else None
        remaining = _parse_int(parts["remaining"]) if "remaining" in parts else None
        if limit is None and remaining is None and reset_at is None:
            continue
        buckets[bucket] = Bucket(limit=limit, remaining=remaining, reset_at=reset_at)
    retry_after = _retry_after(lowered, now, skew)
    if retry_after is None:
        retry_after = _gemini_retry_delay(body_json)
    return RateLimitInfo(buckets=buckets, retry_after=retry_after)
