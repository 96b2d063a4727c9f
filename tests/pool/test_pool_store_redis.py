"""Two llmitm instances (two KeyPools, each with its own RedisStore) sharing one real redis-server."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from pool_helpers import FakeClock, specs
from redis_server import running_redis_server

from llmitm.pool import KeyPool, KeySpec, PoolExhausted, open_store
from llmitm.pool.keystate import KeyUpdate
from llmitm.pool.stores.redis import RedisStore


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    with running_redis_server(str(tmp_path_factory.mktemp("redis"))) as url:
        yield url


@pytest.fixture
async def stores(redis_url, request):
    opened: list[RedisStore] = []
    prefix = f"t{abs(hash(request.node.name))}"  # each test its own namespace on the shared server

    def make(**kwargs) -> RedisStore:
        store = RedisStore(redis_url, prefix=prefix, **kwargs)
        opened.append(store)
        return store

    yield make
    for store in opened:
        with contextlib.suppress(Exception):  # some tests close their store themselves
            await store.close()


def two_pools(stores, clock, keys, **kwargs):
    kwargs.setdefault("max_wait", 0)
    return (KeyPool("openai", keys, store=stores(), clock=clock, **kwargs),
            KeyPool("openai", keys, store=stores(), clock=clock, **kwargs))


async def test_open_store_picks_redis(redis_url):
    store = open_store(redis_url)
    assert isinstance(store, RedisStore) and store.shared
    await store.write("p", {"k": KeyUpdate({"cooldown_until": 5.0}, {"requests": 2})})
    loaded = await store.load("p", ["k", "other"])
    await store._redis.delete("llmitm:{p}:key:k")
    await store.close()
    assert loaded == {"k": {"cooldown_until": 5.0, "requests": 2, "in_flight": 0}}


async def test_a_key_cooled_down_by_one_instance_is_skipped_by_the_other(stores):
    clock = FakeClock()
    a, b = two_pools(stores, clock, specs(2), strategy="round-robin")
    assert (await b.acquire()).key_id == "k0"  # b has read the state once and caches it for 1 s
    (await a.acquire(pin="k0")).release(429, {"retry-after": "30"})
    await a.flush()
    clock.advance(1.01)  # b's cached copy expires
    for _ in range(3):
        lease = await b.acquire()
        assert lease.key_id == "k1"
        lease.release(200)
    assert b.snapshot()[0].state == "cooling"
    clock.advance(30)
    assert (await b.acquire()).key_id == "k0"  # after its cooldown, k0 serves again


async def test_the_other_instance_skips_a_cooled_key_at_once_despite_its_cached_copy(stores):
    clock = FakeClock()
    a, b = two_pools(stores, clock, specs(2), strategy="round-robin")
    (await b.acquire()).release(200)  # b has read the state and handed out k0; next in turn is k1
    (await b.acquire()).release(200)
    (await a.acquire(pin="k0")).release(429, {"retry-after": "30"})
    await a.flush()
    # b's copy is still fresh (the clock has not moved) and says k0 is fine; the store's claim refuses it.
    assert (await b.acquire()).key_id == "k1"
    assert (await b.acquire()).key_id == "k1"  # b re-read its copy before this one: k0 is not even tried
    assert b.snapshot()[0].state == "cooling"


async def test_a_disabled_key_and_a_spent_quota_are_refused_by_the_claim(stores):
    clock = FakeClock()
    a, b = two_pools(stores, clock, specs(3), strategy="round-robin")
    (await b.acquire()).release(200)
    (await a.acquire(pin="k1")).release(401)
    spent = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "9s"}
    (await a.acquire(pin="k2")).release(200, spent)
    await a.flush()
    assert {(await b.acquire()).key_id for _ in range(3)} == {"k0"}


async def test_a_spent_quota_seen_by_one_instance_is_skipped_by_the_other(stores):
    clock = FakeClock()
    a, b = two_pools(stores, clock, specs(2), strategy="most-remaining")
    (await a.acquire(pin="k1")).release(200, {"x-ratelimit-remaining-requests": "0",
                                               "x-ratelimit-limit-requests": "60",
                                               "x-ratelimit-reset-requests": "20s"})
    await a.flush()
    for _ in range(3):
        lease = await b.acquire()
        assert lease.key_id == "k0"
        lease.release(200)


async def test_the_concurrency_cap_is_shared(stores):
    clock = FakeClock()
    a, b = two_pools(stores, clock, [KeySpec("solo", "sk-solo-key-1234", max_concurrency=2)])
    first = await a.acquire()
    second = await b.acquire()
    with pytest.raises(PoolExhausted) as caught:
        await a.acquire()
    assert "cap" in caught.value.reason
    with pytest.raises(PoolExhausted):
        await b.acquire()
    assert b.snapshot()[0].in_flight == 2
    first.release(200)
    await a.flush()
    third = await b.acquire()
    second.release(200)
    third.release(200)
    await a.flush()
    await b.flush()
    await b.refresh(force=True)
    [status] = b.snapshot()
    assert (status.in_flight, status.requests) == (0, 3)  # counters add up across instances


async def test_a_waiter_gets_a_slot_freed_on_another_instance(stores):
    a = KeyPool("openai", [KeySpec("solo", "sk-solo-key-1234", max_concurrency=1)], store=stores(), max_wait=3)
    b = KeyPool("openai", [KeySpec("solo", "sk-solo-key-1234", max_concurrency=1)], store=stores(), max_wait=3)
    held = await a.acquire()
    waiter = asyncio.create_task(b.acquire())
    await asyncio.sleep(0.1)
    assert not waiter.done()
    held.release(200)
    await a.flush()
    lease = await asyncio.wait_for(waiter, 2)
    lease.release(200)
    await b.flush()


async def test_a_crashed_instance_stops_holding_slots(stores):
    keys = [KeySpec("solo", "sk-solo-key-1234", max_concurrency=1)]
    crashing = stores(instance_ttl=0.6)
    a = KeyPool("openai", keys, store=crashing, max_wait=0)
    b = KeyPool("openai", keys, store=stores(), max_wait=0)
    held = await a.acquire()  # never released
    crashing._heartbeat.cancel()  # the process "dies": no more heartbeats, no clean close
    with pytest.raises(PoolExhausted):
        await b.acquire()
    await asyncio.sleep(0.8)
    await b.refresh(force=True)
    (await b.acquire()).release(200)
    assert not held.released  # the slot expired with its instance, not through a release


async def test_an_unreachable_redis_does_not_stop_the_pool(caplog):
    from redis_server import _free_port

    store = RedisStore(f"redis://127.0.0.1:{_free_port()}/0")
    pool = KeyPool("openai", [KeySpec("solo", "sk-solo-key-1234", max_concurrency=1)], store=store, max_wait=0)
    lease = await pool.acquire()
    with pytest.raises(PoolExhausted):
        await pool.acquire()  # the cap still holds on this instance
    lease.release(429, {"retry-after": "5"})
    with pytest.raises(PoolExhausted) as caught:
        await pool.acquire()
    assert "cooling" in caught.value.reason
    assert "deciding locally" in caplog.text
    await pool.close()
    await store.close()


async def test_stress_two_instances_never_exceed_a_shared_cap(stores):
    """400 requests from two instances at concurrency 8 each over 3 keys capped at 2 across both."""
    keys = specs(3, max_concurrency=2)
    pools = [KeyPool("openai", keys, store=stores(), strategy="round-robin", max_wait=5) for _ in range(2)]
    in_flight = {k.id: 0 for k in keys}
    peak = 0
    served = 0

    async def worker(pool: KeyPool, n: int) -> None:
        nonlocal peak, served
        for _ in range(n):
            lease = await pool.acquire()
            in_flight[lease.key_id] += 1
            peak = max(peak, in_flight[lease.key_id])
            await asyncio.sleep(0.001)
            in_flight[lease.key_id] -= 1
            lease.release(200)
            served += 1

    await asyncio.wait_for(asyncio.gather(*(worker(pools[i % 2], 25) for i in range(16))), 20)
    assert served == 400
    assert peak == 2  # the cap was reached, and never exceeded across the two instances
    for pool in pools:
        await pool.flush()
    await pools[0].refresh(force=True)
    assert sum(s.requests for s in pools[0].snapshot()) == 400
    assert all(s.in_flight == 0 for s in pools[0].snapshot())


async def test_joining_instance_does_not_reset_counters_it_finds_without_a_fingerprint(stores):
    # Another instance has a request in flight and counted usage, but its state write is still on the way.
    other = stores()
    await other.try_acquire_slot("openai", "k0", None, 0.0)
    await other.write("openai", {"k0": KeyUpdate({}, {"requests": 3})})
    joining = KeyPool("openai", specs(1), store=stores(), max_wait=0)
    (await joining.acquire()).release(200)
    await joining.flush()
    assert (await other.load("openai", ["k0"]))["k0"]["requests"] == 4


async def test_a_slot_released_here_is_free_at_once_for_the_next_claim(stores):
    # The release travels to Redis in the background; the next claim must not be refused meanwhile.
    pool = KeyPool("openai", [KeySpec("solo", "sk-solo-key-1234", max_concurrency=1)], store=stores(), max_wait=0)
    for _ in range(50):
        lease = await pool.acquire()
        lease.release(200)
    await pool.flush()
    await pool.refresh(force=True)
    assert pool.snapshot()[0].in_flight == 0


async def test_llmitm_keys_reads_the_shared_pool(stores, redis_url):
    from llmitm.config import parse_config
    from llmitm.pool.table import read_key_statuses
    from llmitm.provider_pools import pool_settings, pooled_keys

    config = parse_config(
        f"""
state: {redis_url}
providers:
  openai:
    protocol: openai-chat
    base_url: https://api.openai.com
    keys: [sk-shared-secret-0001, sk-shared-secret-0002]
routes: [{{provider: openai}}]
""",
        "llmitm.yaml",
        env={},
    )
    store = stores()
    pool = KeyPool.from_settings("openai", pool_settings("openai", config.providers["openai"]), store=store)
    (await pool.acquire(pin="openai#1")).release(429, {"retry-after": "60"})
    held = await pool.acquire(pin="openai#2")
    await pool.flush()
    reader = stores()  # `llmitm keys` beside the running proxy: its own connection
    first, second = await read_key_statuses(pooled_keys(config), reader)
    assert (first.state, first.errors, first.masked) == ("cooling", 1, "sk-…0001")
    assert (second.state, second.in_flight) == ("ok", 1)
    held.release(200)
