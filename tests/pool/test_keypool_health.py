"""Quota, auth failures and probes, the circuit breaker: how a response changes what the pool hands out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from llmitm.pool import CooldownSettings, KeySpec, PoolExhausted, UnknownKey
from llmitm.pool.outcome import Outcome, classify


@pytest.mark.parametrize(
    ("status", "body", "error", "outcome"),
    [
        (200, None, None, Outcome.SUCCESS),
        (400, {"error": {"type": "invalid_request_error"}}, None, Outcome.SUCCESS),
        (429, None, None, Outcome.RATE_LIMITED),
        (429, {"error": {"type": "insufficient_quota", "code": "insufficient_quota"}}, None, Outcome.QUOTA_EXHAUSTED),
        (529, None, None, Outcome.OVERLOADED),
        (503, None, None, Outcome.OVERLOADED),
        (200, {"type": "error", "error": {"type": "overloaded_error"}}, None, Outcome.OVERLOADED),
        (429, {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}, None, Outcome.RATE_LIMITED),
        (401, None, None, Outcome.AUTH_FAILED),
        (403, None, None, Outcome.AUTH_FAILED),
        (500, None, None, Outcome.FAILURE),
        (502, None, None, Outcome.FAILURE),
        (None, None, "connection reset", Outcome.FAILURE),
        (200, None, "stream broke", Outcome.FAILURE),
        (None, None, None, Outcome.UNKNOWN),
    ],
)
def test_classify(status, body, error, outcome):
    assert classify(status, body, error) is outcome


def spent_headers(reset: str = "30s") -> dict[str, str]:
    return {"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": reset}


async def test_key_with_spent_quota_is_skipped_until_its_reset(make_pool, clock):
    pool = make_pool(2, "round-robin")
    (await pool.acquire()).release(200, spent_headers("30s"))  # k0 reports 0 requests left
    for _ in range(4):
        lease = await pool.acquire()
        assert lease.key_id == "k1"
        lease.release(200)
    assert pool.snapshot()[0].state == "quota-spent"
    clock.advance(30.01)
    assert (await pool.acquire()).key_id == "k0"  # refilled: back in rotation


async def test_spent_anthropic_token_bucket_blocks_too(make_pool, clock):
    pool = make_pool(1)
    reset = datetime.fromtimestamp(clock.now + 8, tz=UTC).isoformat()
    (await pool.acquire()).release(200, {"anthropic-ratelimit-output-tokens-remaining": "0",
                                         "anthropic-ratelimit-output-tokens-reset": reset})
    with pytest.raises(PoolExhausted) as caught:
        await pool.acquire()
    assert caught.value.retry_after == pytest.approx(8)
    assert "quota spent" in caught.value.reason


async def test_last_remaining_request_is_not_handed_out_twice(make_pool, clock):
    pool = make_pool(2, "most-remaining")
    (await pool.acquire(pin="k0")).release(200, {"x-ratelimit-limit-requests": "100",
                                                 "x-ratelimit-remaining-requests": "1",
                                                 "x-ratelimit-reset-requests": "10s"})
    clock.advance(1)
    (await pool.acquire(pin="k1")).release(200, spent_headers("10s"))
    first = await pool.acquire()
    assert first.key_id == "k0"
    # k0's one remaining request is taken by `first`: a second request must not go there
    with pytest.raises(PoolExhausted):
        await pool.acquire()
    first.release(200)


async def test_429_without_retry_after_waits_for_the_spent_buckets_reset(make_pool, clock):
    pool = make_pool(1, cooldown=CooldownSettings(default_seconds=5))
    (await pool.acquire()).release(429, spent_headers("45s"))
    assert pool.snapshot()[0].cooldown_until == pytest.approx(clock.now + 45)


async def test_insufficient_quota_cools_for_the_maximum(make_pool, clock):
    pool = make_pool(1, cooldown=CooldownSettings(max_seconds=300))
    (await pool.acquire()).release(429, {"retry-after": "1"},
                                   {"error": {"type": "insufficient_quota", "code": "insufficient_quota"}})
    assert pool.snapshot()[0].cooldown_until == pytest.approx(clock.now + 300)


async def test_gemini_retry_delay_sets_the_cooldown(make_pool, clock):
    pool = make_pool(1)
    body = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
                      "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "34.4s"}]}}
    (await pool.acquire()).release(429, {}, body)
    assert pool.snapshot()[0].cooldown_until == pytest.approx(clock.now + 35)


async def test_401_disables_and_a_successful_probe_re_enables(make_pool, clock):
    pool = make_pool(2, "round-robin", cooldown=CooldownSettings(probe_interval_seconds=60))
    (await pool.acquire()).release(401)
    assert pool.snapshot()[0].state == "disabled"
    assert {(await pool.acquire()).key_id for _ in range(3)} == {"k1"}
    assert pool.keys_due_for_probe() == []
    clock.advance(60)
    [due] = pool.keys_due_for_probe()
    assert (due.key_id, due.secret) == ("k0", "sk-secret-0000-abcdef")
    assert pool.keys_due_for_probe() == []  # claimed: not handed out twice
    pool.probe_result("k0", ok=False)
    assert pool.snapshot()[0].state == "disabled"
    clock.advance(59)
    assert pool.keys_due_for_probe() == []
    clock.advance(1)
    [due] = pool.keys_due_for_probe()
    pool.probe_result(due.key_id, ok=True)
    assert pool.snapshot()[0].state == "ok"
    assert "k0" in {(await pool.acquire()).key_id for _ in range(2)}


async def test_all_keys_disabled_raises_with_the_next_probe_time(make_pool, clock):
    pool = make_pool(1, cooldown=CooldownSettings(probe_interval_seconds=60))
    (await pool.acquire()).release(403)
    assert pool.next_probe_at() == pytest.approx(clock.now + 60)
    with pytest.raises(PoolExhausted) as caught:
        await pool.acquire()
    assert caught.value.retry_after == pytest.approx(60)
    assert "disabled" in caught.value.reason
    with pytest.raises(UnknownKey):
        pool.probe_result("nope", ok=True)


async def test_breaker_trips_after_consecutive_failures_and_half_opens(make_pool, clock):
    cooldown = CooldownSettings(failure_threshold=3, breaker_seconds=30)
    pool = make_pool(2, "round-robin", cooldown=cooldown)
    for _ in range(2):
        (await pool.acquire(pin="k0")).release(502)
    (await pool.acquire(pin="k0")).release(200)  # a success resets the count
    for _ in range(2):
        (await pool.acquire(pin="k0")).release(None, error="connection refused")
    assert pool.snapshot()[0].state == "ok"
    (await pool.acquire(pin="k0")).release(500)
    assert pool.snapshot()[0].state == "breaker-open"
    assert {(await pool.acquire()).key_id for _ in range(3)} == {"k1"}
    clock.advance(30)
    # half-open: exactly one trial request goes through
    trial = await pool.acquire(pin="k0")
    with pytest.raises(PoolExhausted) as caught:
        await pool.acquire(pin="k0")
    assert "half-open" in caught.value.reason
    trial.release(500)  # the trial failed: open again at once
    assert pool.snapshot()[0].state == "breaker-open"
    clock.advance(30)
    (await pool.acquire(pin="k0")).release(200)
    assert pool.snapshot()[0].state == "ok"


async def test_client_errors_do_not_count_against_the_key(make_pool):
    pool = make_pool(1, cooldown=CooldownSettings(failure_threshold=1))
    for _ in range(3):
        (await pool.acquire()).release(400)
    assert pool.snapshot()[0].state == "ok"


async def test_rpm_hint_is_enforced_locally(make_pool, clock):
    pool = make_pool(keys=[KeySpec("a", "sk-aaaaaaaaaaaa", rpm=2), KeySpec("b", "sk-bbbbbbbbbbbb")],
                     strategy="round-robin")
    ids = []
    for _ in range(6):
        lease = await pool.acquire()
        ids.append(lease.key_id)
        lease.release(200)
        clock.advance(1)
    assert ids.count("a") == 2
    clock.advance(60)
    assert (await pool.acquire(pin="a")).key_id == "a"


async def test_tpm_hint_blocks_after_the_tokens_are_used(make_pool, clock):
    pool = make_pool(keys=[KeySpec("a", "sk-aaaaaaaaaaaa", tpm=1000)])
    (await pool.acquire()).release(200, input_tokens=900, output_tokens=200)
    with pytest.raises(PoolExhausted) as caught:
        await pool.acquire()
    assert caught.value.retry_after == pytest.approx(60)


async def test_a_request_larger_than_a_keys_remaining_tokens_goes_elsewhere(make_pool, clock):
    pool = make_pool(2, "round-robin")
    (await pool.acquire(pin="k0")).release(200, {"x-ratelimit-limit-tokens": "30000",
                                                 "x-ratelimit-remaining-tokens": "1200",
                                                 "x-ratelimit-reset-tokens": "20s"})
    assert (await pool.acquire(pin="k0", tokens=1000)).key_id == "k0"  # enough left
    assert {(await pool.acquire(tokens=5000)).key_id for _ in range(3)} == {"k1"}
    reset = datetime.fromtimestamp(clock.now + 30, tz=UTC).isoformat()
    (await pool.acquire(pin="k1")).release(200, {"anthropic-ratelimit-input-tokens-limit": "30000",
                                                 "anthropic-ratelimit-input-tokens-remaining": "10",
                                                 "anthropic-ratelimit-input-tokens-reset": reset})
    with pytest.raises(PoolExhausted) as caught:
        await pool.acquire(tokens=5000)
    assert caught.value.retry_after == pytest.approx(20)  # when k0's tokens refill
    assert (await pool.acquire(tokens=5)).key_id in ("k0", "k1")  # a small request still fits
    # a request bigger than a whole bucket cannot be helped by waiting: the upstream decides
    assert (await pool.acquire(pin="k0", tokens=40000)).key_id == "k0"


async def test_tpm_hint_counts_the_estimate(make_pool, clock):
    pool = make_pool(keys=[KeySpec("a", "sk-aaaaaaaaaaaa", tpm=1000)])
    (await pool.acquire()).release(200, input_tokens=600)
    assert (await pool.acquire(tokens=300)).key_id == "a"
    with pytest.raises(PoolExhausted):
        await pool.acquire(tokens=500)
