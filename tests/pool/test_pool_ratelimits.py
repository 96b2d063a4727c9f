from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from llmitm.pool.ratelimits import Bucket, parse_go_duration, parse_rate_limits

NOW = 1_750_000_000.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("6m0s", 360.0), ("12ms", 0.012), ("1s", 1.0), ("1h2m3.5s", 3723.5), ("20", 20.0), ("0.5", 0.5),
     ("500us", 0.0005), ("7.2s", 7.2)],
)
def test_go_durations_and_azure_seconds(text, seconds):
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "6x", "m5", "5s junk"])
def test_garbage_durations_are_not_guessed(text):
    assert parse_go_duration(text) is None


def test_openai_headers():
    info = parse_rate_limits(
        {
            "X-RateLimit-Limit-Requests": "500",
            "x-ratelimit-remaining-requests": "499",
            "x-ratelimit-reset-requests": "120ms",
            "x-ratelimit-limit-tokens": "30000",
            "x-ratelimit-remaining-tokens": "29000",
            "x-ratelimit-reset-tokens": "6m0s",
        },
        NOW,
    )
    assert info.buckets["requests"] == Bucket(500, 499, pytest.approx(NOW + 0.12))
    assert info.buckets["tokens"] == Bucket(30000, 29000, pytest.approx(NOW + 360))
    assert info.retry_after is None


def test_azure_reset_in_integer_seconds():
    info = parse_rate_limits({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "20"}, NOW)
    assert info.buckets["requests"].reset_at == NOW + 20
    assert info.buckets["requests"].spent


def test_anthropic_headers_with_rfc3339_resets():
    reset = datetime.fromtimestamp(NOW + 42, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    info = parse_rate_limits(
        {
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "0",
            "anthropic-ratelimit-requests-reset": reset,
            "anthropic-ratelimit-input-tokens-limit": "80000",
            "anthropic-ratelimit-input-tokens-remaining": "79000",
            "anthropic-ratelimit-input-tokens-reset": reset,
            "anthropic-ratelimit-output-tokens-remaining": "100",
            "anthropic-ratelimit-tokens-remaining": "10",
        },
        NOW,
    )
    assert info.buckets["requests"] == Bucket(50, 0, NOW + 42)
    assert info.buckets["input-tokens"] == Bucket(80000, 79000, NOW + 42)
    assert info.buckets["output-tokens"].remaining == 100
    assert info.buckets["tokens"].remaining == 10


def test_server_clock_skew_is_corrected_from_the_date_header():
    server_now = NOW - 300  # the upstream's clock is 5 minutes behind ours
    reset = datetime.fromtimestamp(server_now + 10, tz=UTC).isoformat()
    date = format_datetime(datetime.fromtimestamp(server_now, tz=UTC), usegmt=True)
    info = parse_rate_limits({"anthropic-ratelimit-requests-reset": reset, "date": date}, NOW)
    assert info.buckets["requests"].reset_at == pytest.approx(NOW + 10)


def test_retry_after_seconds_date_and_ms():
    assert parse_rate_limits({"retry-after": "17"}, NOW).retry_after == 17
    assert parse_rate_limits({"Retry-After": "1.5"}, NOW).retry_after == 1.5
    date = format_datetime(datetime.fromtimestamp(NOW + 30, tz=UTC), usegmt=True)
    assert parse_rate_limits({"retry-after": date}, NOW).retry_after == pytest.approx(30)
    # retry-after-ms is the more precise of the two
    assert parse_rate_limits({"retry-after": "2", "retry-after-ms": "1250"}, NOW).retry_after == 1.25
    assert parse_rate_limits({"retry-after": "soon"}, NOW).retry_after is None


def test_gemini_retry_delay_from_the_body_rounded_up():
    body = {
        "error": {
            "code": 429,
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "34.4s"},
            ],
        }
    }
    assert parse_rate_limits({}, NOW, body).retry_after == 35
    assert parse_rate_limits(None, NOW, [body]).retry_after == 35  # a streamed JSON array
    assert parse_rate_limits(None, NOW, {"error": "flat"}).retry_after is None
    # a Retry-After header wins over the body
    assert parse_rate_limits({"retry-after": "3"}, NOW, body).retry_after == 3


def test_no_headers_is_empty():
    assert parse_rate_limits(None, NOW).empty
    assert parse_rate_limits({"content-type": "application/json"}, NOW).empty
