"""Every background task of the pool and its stores ends on close() and on cancellation, so that a
proxy shutting down (or asyncio.Runner.close() after a test) never waits forever for one of them."""

from __future__ import annotations

import asyncio
import gc

import pytest
from pool_helpers import FakeClock, specs
from redis_server import running_redis_server

from llmitm.pool import KeyPool, KeySpec
from llmitm.pool.stores.redis import RedisStore

BOUND_SECONDS = 5.0  # far above what ending takes; only here so that a regression fails instead of hanging


def other_tasks() -> set[asyncio.Task]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}


async def assert_ends(task: asyncio.Task) -> None:
    done, _ = await asyncio.wait({task}, timeout=BOUND_SECONDS)
    assert task in done, f"{task.get_name()} outlived its cancellation"


async def test_the_state_writer_ends_when_cancelled_as_an_urgent_change_arrives():
    # Python 3.11's wait_for lost a cancellation arriving in the same tick as the event it waited for.
    pool = KeyPool("openai", specs(1), clock=FakeClock(), max_wait=0)
    (await pool.acquire()).release(200)  # a routine change: the writer waits out its batch window
    await asyncio.sleep(0.01)
    writer = pool._writer._task
    (await pool.acquire()).release(429)  # an urgent change wakes that wait...
    writer.cancel()  # ...in the same tick as the cancellation
    await assert_ends(writer)


async def test_a_waiting_acquire_ends_when_cancelled_as_a_key_frees_up():
    pool = KeyPool("openai", [KeySpec("solo", "sk-solo-key-1234", max_concurrency=1)], max_wait=30)
    held = await pool.acquire()
    waiter = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0.01)
    held.release(200)  # wakes the waiter...
    waiter.cancel()  # ...in the same tick as its cancellation
    await assert_ends(waiter)
    assert waiter.cancelled()
    await pool.close()


async def test_no_writer_is_started_after_close():
    pool = KeyPool("openai", specs(1), max_wait=0)
    lease = await pool.acquire()
    await pool.close()
    lease.release(429)  # a lease that outlived its pool (a reload): its change stays local
    assert other_tasks() == set()


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    with running_redis_server(str(tmp_path_factory.mktemp("redis"))) as url:
        yield url


async def test_pools_on_a_real_redis_cancelled_mid_traffic_leave_no_task_behind(redis_url):
    stores = [RedisStore(redis_url, prefix="shutdown") for _ in range(2)]
    keys = specs(3, max_concurrency=2)
    pools = [KeyPool("openai", keys, store=store, strategy="round-robin", max_wait=5) for store in stores]
    leaked = []

    async def worker(pool: KeyPool) -> None:
        while True:
            lease = await pool.acquire()
            await asyncio.sleep(0.001)
            if len(leaked) < 2:
                leaked.append(lease)  # dropped below without release(): its finalizer frees the slot
                continue
            lease.release(200 if lease.key_id != "k1" else 429)

    workers = [asyncio.create_task(worker(pools[i % 2])) for i in range(8)]
    await asyncio.sleep(0.3)  # claims, releases, writes and heartbeats in flight
    for task in workers:
        task.cancel()
    leaked.clear()
    gc.collect()  # the leaked leases' finalizers release in the middle of the shutdown
    for task in workers:
        await assert_ends(task)
    closing = asyncio.gather(*(p.close() for p in pools), *(s.close() for s in stores))
    await asyncio.wait_for(closing, BOUND_SECONDS)
    async with asyncio.timeout(BOUND_SECONDS):
        while other_tasks():  # redis-py may finish a connection release in the background
            await asyncio.sleep(0.01)


async def test_a_cancelled_close_still_stops_the_heartbeat_and_the_writer(redis_url):
    store = RedisStore(redis_url, prefix="cancelled-close")
    pool = KeyPool("openai", specs(1), store=store, max_wait=0)
    (await pool.acquire()).release(200)
    assert store._heartbeat is not None and pool._writer._task is not None
    heartbeat, writer = store._heartbeat, pool._writer._task
    closing = asyncio.create_task(pool.close())
    await asyncio.sleep(0)
    closing.cancel()
    await assert_ends(closing)
    await assert_ends(writer)
    await asyncio.wait_for(store.close(), BOUND_SECONDS)
    await assert_ends(heartbeat)
