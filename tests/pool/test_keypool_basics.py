from __future__ import annotations

import pytest

from llmitm.pool import CooldownSettings, KeySpec, PoolExhausted, UnknownKey


async def take_ids(pool, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        lease = await pool.acquire()
        ids.append(lease.key_id)
        lease.release(200)
    return ids


async def test_round_robin_cycles_in_config_order(make_pool):
    pool = make_pool(3, "round-robin")
    assert await take_ids(pool, 7) == ["k0", "k1", "k2", "k0", "k1", "k2", "k0"]


async def test_lease_carries_secret_and_masked_secret(make_pool):
    pool = make_pool(1)
    lease = await pool.acquire()
    assert lease.secret == "sk-secret-0000-abcdef"
    assert lease.masked == "sk-…cdef"
    assert "secret-0000" not in repr(lease)


async def test_release_twice_is_an_error(make_pool):
    pool = make_pool(1)
    lease = await pool.acquire()
    lease.release(200)
    with pytest.raises(RuntimeError):
        lease.release(200)


async def test_context_manager_frees_the_slot_without_judging_the_key(make_pool):
    pool = make_pool(keys=[KeySpec("only", "sk-only-key-123456", max_concurrency=1)])
    with pytest.raises(ValueError):
        async with await pool.acquire():
            raise ValueError("client went away")
    lease = await pool.acquire()  # the slot is free again
    assert lease.key_id == "only"
    [status] = pool.snapshot()
    assert status.errors == 0 and status.requests == 0 and status.state == "busy"


async def test_429_cools_the_key_down_for_retry_after(make_pool, clock):
    pool = make_pool(2, "round-robin")
    lease = await pool.acquire()
    assert lease.key_id == "k0"
    lease.release(429, {"Retry-After": "20"})
    # k0 is skipped until its Retry-After passed
    assert await take_ids(pool, 3) == ["k1", "k1", "k1"]
    clock.advance(19.5)
    assert await take_ids(pool, 1) == ["k1"]
    clock.advance(0.6)
    assert (await take_ids(pool, 1)) == ["k0"]  # back, and first: it missed its turns


async def test_round_robin_gives_missed_turns_back_but_only_a_bounded_number(make_pool, clock):
    pool = make_pool(3, "round-robin")
    (await pool.acquire(pin="k0")).release(429, {"retry-after": "10"})
    assert set(await take_ids(pool, 30)) == {"k1", "k2"}  # k0 misses 15 turns
    clock.advance(10)
    after = await take_ids(pool, 18)
    run = next(i for i, key in enumerate(after) if key != "k0")
    assert 1 <= run <= 2 * 3  # catches up for at most two rounds' worth of turns
    assert after[run:run + 6].count("k0") == 2  # then takes turns with the others again


async def test_429_without_retry_after_uses_the_default_and_the_cap_applies(make_pool, clock):
    pool = make_pool(1, cooldown=CooldownSettings(default_seconds=7, max_seconds=60))
    (await pool.acquire()).release(429)
    assert pool.snapshot()[0].cooldown_until == pytest.approx(clock.now + 7)
    clock.advance(8)
    (await pool.acquire()).release(529, {"retry-after": "3600"})
    assert pool.snapshot()[0].cooldown_until == pytest.approx(clock.now + 60)


async def test_all_keys_cooling_raises_with_the_earliest_free_time(make_pool, clock):
    pool = make_pool(3, "round-robin")
    for retry_after in ("30", "12.5", "40"):
        (await pool.acquire()).release(429, {"retry-after": retry_after})
    with pytest.raises(PoolExhausted) as caught:
        await pool.acquire()
    assert caught.value.retry_after == pytest.approx(12.5)
    assert "cooling" in caught.value.reason
    clock.advance(12.5)
    assert (await pool.acquire()).key_id == "k1"


async def test_most_remaining_prefers_least_busy_then_most_quota_then_lru(make_pool, clock):
    pool = make_pool(3, "most-remaining")
    # Teach the pool each key's quota through response headers.
    for remaining in (10, 90, 50):
        lease = await pool.acquire()
        clock.advance(1)
        lease.release(200, {"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": str(remaining),
                            "x-ratelimit-reset-requests": "1m0s"})
    by_id = {s.key_id: s.remaining["requests"] for s in pool.snapshot()}
    assert by_id == {"k0": 10, "k1": 90, "k2": 50}
    first = await pool.acquire()
    assert first.key_id == "k1"  # most remaining
    second = await pool.acquire()
    assert second.key_id == "k2"  # k1 is busy now: least busy wins over quota
    third = await pool.acquire()
    assert third.key_id == "k0"
    for lease in (first, second, third):
        lease.release(None)


async def test_most_remaining_breaks_ties_by_least_recently_used(make_pool, clock):
    pool = make_pool(3, "most-remaining")
    seen = []
    for _ in range(6):
        lease = await pool.acquire()
        seen.append(lease.key_id)
        clock.advance(1)
        lease.release(200)
    assert seen == ["k0", "k1", "k2", "k0", "k1", "k2"]


async def test_exclude_draws_a_different_key(make_pool):
    pool = make_pool(3, "most-remaining")
    first = await pool.acquire()
    first.release(500)
    retry = await pool.acquire(exclude={first.key_id})
    assert retry.key_id != first.key_id


async def test_excluding_every_key_raises(make_pool):
    pool = make_pool(2)
    with pytest.raises(PoolExhausted) as caught:
        await pool.acquire(exclude={"k0", "k1"})
    assert "already tried" in caught.value.reason
    assert caught.value.retry_after <= 1.0


async def test_pin_uses_only_that_key(make_pool, clock):
    pool = make_pool(3, "round-robin")
    assert {(await pool.acquire(pin="k2")).key_id for _ in range(3)} == {"k2"}
    with pytest.raises(UnknownKey):
        await pool.acquire(pin="nope")


async def test_pinned_key_cooling_raises_rather_than_switching_keys(make_pool, clock):
    pool = make_pool(3)
    (await pool.acquire(pin="k1")).release(429, {"retry-after": "5"})
    with pytest.raises(PoolExhausted) as caught:
        await pool.acquire(pin="k1")
    assert caught.value.retry_after == pytest.approx(5)


async def test_usage_counters(make_pool):
    pool = make_pool(1)
    (await pool.acquire()).release(200, input_tokens=10, output_tokens=5)
    (await pool.acquire()).release(400, input_tokens=3)
    (await pool.acquire()).release(None, error="connection reset")
    [s] = pool.snapshot()
    assert (s.requests, s.input_tokens, s.output_tokens, s.errors) == (3, 13, 5, 2)


async def test_a_lease_dropped_without_release_frees_its_slot(make_pool, caplog):
    import gc

    pool = make_pool(keys=[KeySpec("only", "sk-only-key-123456", max_concurrency=1)])
    await pool.acquire()  # the lease is dropped on the floor
    gc.collect()
    (await pool.acquire()).release(200)
    assert "dropped without release" in caplog.text
    assert pool.snapshot()[0].requests == 1  # the leaked attempt is not counted as a request


async def test_context_manager_with_an_explicit_release_releases_once(make_pool):
    pool = make_pool(1)
    async with await pool.acquire() as lease:
        lease.release(200, input_tokens=3)
    [status] = pool.snapshot()
    assert (status.requests, status.input_tokens, status.in_flight) == (1, 3, 0)


def test_open_store_rejects_unknown_urls():
    from llmitm.pool import open_store
    from llmitm.pool.stores.memory import MemoryStore

    assert isinstance(open_store("memory"), MemoryStore)
    with pytest.raises(ValueError, match="unknown state store"):
        open_store("postgres://db")
