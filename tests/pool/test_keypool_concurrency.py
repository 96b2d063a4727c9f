"""Concurrency caps, the wait queue, strategies under load and hot reload."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
from pool_helpers import specs

from llmitm.pool import KeyPool, KeySpec, PoolExhausted


async def test_cap_blocks_and_without_wait_raises_busy(make_pool):
    pool = make_pool(keys=[KeySpec("a", "sk-aaaaaaaaaaaa", max_concurrency=2)])
    first, second = await pool.acquire(), await pool.acquire()
    with pytest.raises(PoolExhausted) as caught:
        await pool.acquire()
    assert "at concurrency cap" in caught.value.reason
    assert caught.value.retry_after <= 1.0
    first.release(200)
    (await pool.acquire()).release(200)
    second.release(200)


async def test_waiter_gets_the_key_when_a_lease_is_released():
    pool = KeyPool("openai", [KeySpec("a", "sk-aaaaaaaaaaaa", max_concurrency=1)], max_wait=5.0)
    held = await pool.acquire()
    waiter = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0.02)
    assert not waiter.done()
    started = time.monotonic()
    held.release(200)
    lease = await asyncio.wait_for(waiter, 1.0)
    assert lease.key_id == "a" and time.monotonic() - started < 0.5
    lease.release(200)


async def test_wait_times_out():
    pool = KeyPool("openai", [KeySpec("a", "sk-aaaaaaaaaaaa", max_concurrency=1)], max_wait=0.1)
    held = await pool.acquire()
    started = time.monotonic()
    with pytest.raises(PoolExhausted):
        await pool.acquire()
    assert 0.08 <= time.monotonic() - started < 1.0
    held.release(200)


async def test_wait_queue_is_bounded():
    pool = KeyPool("openai", [KeySpec("a", "sk-aaaaaaaaaaaa", max_concurrency=1)], max_wait=5.0, max_waiters=2)
    held = await pool.acquire()
    waiters = [asyncio.create_task(pool.acquire()) for _ in range(2)]
    await asyncio.sleep(0.02)
    with pytest.raises(PoolExhausted) as caught:
        await pool.acquire()
    assert "wait queue full" in caught.value.reason
    held.release(200)
    for _ in waiters:  # the two queued callers are served one after the other
        done, _pending = await asyncio.wait([t for t in waiters if not t.done() or not t.result().released],
                                            timeout=1, return_when=asyncio.FIRST_COMPLETED)
        next(iter(done)).result().release(200)
    assert all(t.done() and t.result().released for t in waiters)


async def test_a_short_cooldown_is_waited_out_within_max_wait():
    now = [1000.0]
    pool = KeyPool("openai", specs(1), max_wait=5.0, clock=lambda: now[0])
    (await pool.acquire()).release(429, {"retry-after-ms": "50"})
    task = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0.01)
    assert not task.done()
    now[0] += 0.05
    lease = await asyncio.wait_for(task, 1.0)
    assert lease.key_id == "k0"


async def test_a_cooldown_longer_than_max_wait_raises_at_once():
    pool = KeyPool("openai", specs(1), max_wait=5.0)
    (await pool.acquire()).release(429, {"retry-after": "30"})
    started = time.monotonic()
    with pytest.raises(PoolExhausted) as caught:
        await pool.acquire()
    assert time.monotonic() - started < 0.2
    assert 29 <= caught.value.retry_after <= 30


async def test_weighted_follows_the_weights(make_pool):
    keys = [KeySpec("a", "sk-aaaaaaaaaaaa", weight=3), KeySpec("b", "sk-bbbbbbbbbbbb", weight=1),
            KeySpec("c", "sk-cccccccccccc", weight=1)]
    pool = make_pool(keys=keys, strategy="weighted")
    seen = []
    for _ in range(50):
        lease = await pool.acquire()
        seen.append(lease.key_id)
        lease.release(200)
    assert Counter(seen) == {"a": 30, "b": 10, "c": 10}
    assert "aa" in "".join(seen) and "aaa" not in "".join(seen)  # smooth: no bursts of the heavy key


async def test_least_busy_spreads_concurrent_leases(make_pool):
    pool = make_pool(3, "least-busy")
    leases = [await pool.acquire() for _ in range(6)]
    assert Counter(lease.key_id for lease in leases) == {"k0": 2, "k1": 2, "k2": 2}


async def test_reconfigure_keeps_state_and_in_flight_leases(make_pool, clock):
    pool = make_pool(3, "round-robin")
    (await pool.acquire()).release(429, {"retry-after": "60"})  # k0 cooling
    in_flight = await pool.acquire()
    assert in_flight.key_id == "k1"
    keys = specs(3)
    pool.reconfigure(keys=[keys[0], KeySpec("k2", keys[2].secret, weight=5), KeySpec("new", "sk-new-key-0001")],
                     strategy="weighted")
    assert pool.key_ids == ["k0", "k2", "new"]
    by_id = {s.key_id: s for s in pool.snapshot()}
    assert by_id["k0"].state == "cooling"  # learned state kept
    in_flight.release(200)  # a lease on a removed key still releases cleanly
    seen = Counter()
    for _ in range(12):
        lease = await pool.acquire()
        seen[lease.key_id] += 1
        lease.release(200)
    assert set(seen) == {"k2", "new"} and seen["k2"] == 10


async def test_reconfigure_with_a_new_secret_under_an_old_id_starts_clean(make_pool):
    pool = make_pool(1)
    (await pool.acquire()).release(401)
    pool.reconfigure(keys=[KeySpec("k0", "sk-replacement-key-999")])
    lease = await pool.acquire()
    assert lease.secret == "sk-replacement-key-999"
    assert pool.snapshot()[0].requests == 0


async def test_snapshot(make_pool, clock):
    pool = make_pool(keys=[KeySpec("a", "sk-aaaaaaaaaaaa", max_concurrency=1), KeySpec("b", "sk-bbbbbbbbbbbb")])
    lease = await pool.acquire(pin="a")
    (await pool.acquire(pin="b")).release(429, {"retry-after": "9", "x-ratelimit-remaining-tokens": "5",
                                                "x-ratelimit-reset-tokens": "1m0s"})
    a, b = pool.snapshot()
    assert (a.key_id, a.state, a.in_flight, a.masked) == ("a", "busy", 1, "sk-…aaaa")
    assert (b.state, b.cooldown_until, b.remaining, b.errors) == ("cooling", clock.now + 9, {"tokens": 5}, 1)
    lease.release(200)


async def test_stress_caps_hold_and_round_robin_spreads_evenly():
    """2,000 requests at concurrency 16 over 5 keys capped at 3 (so requests queue), 30 % of attempts
    failing at random and retried on another key."""
    import random

    rng = random.Random(7)
    keys = specs(5, max_concurrency=3)
    # failures must not bench keys for long, or the spread measures the dice rather than the pool
    from llmitm.pool import CooldownSettings

    pool = KeyPool("openai", keys, strategy="round-robin", max_wait=5.0, max_waiters=64,
                   cooldown=CooldownSettings(default_seconds=0, failure_threshold=1000))
    in_flight: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    served: Counter[str] = Counter()
    client_failures = 0

    async def one_request() -> None:
        nonlocal client_failures
        tried: set[str] = set()
        for _attempt in range(20):
            if len(tried) == len(keys):
                tried.clear()  # every key failed once for this request: start over rather than give up
            lease = await pool.acquire(exclude=tried)
            in_flight[lease.key_id] += 1
            peak[lease.key_id] = max(peak[lease.key_id], in_flight[lease.key_id])
            assert in_flight[lease.key_id] <= 3
            await asyncio.sleep(0)
            roll = rng.random()
            in_flight[lease.key_id] -= 1
            if roll < 0.1:
                lease.release(429, {"retry-after": "0"})
            elif roll < 0.2:
                lease.release(None, error="connection reset")
            elif roll < 0.3:
                lease.release(529)
            else:
                lease.release(200)
                served[lease.key_id] += 1
                return
            tried.add(lease.key_id)
        client_failures += 1

    queue = asyncio.Queue()
    for _ in range(2000):
        queue.put_nowait(None)

    async def worker() -> None:
        while not queue.empty():
            queue.get_nowait()
            await one_request()

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(16))), 20)
    assert client_failures == 0
    assert max(peak.values()) == 3 and sum(served.values()) == 2000
    for key in keys:
        assert abs(served[key.id] - 400) <= 40, served
