from __future__ import annotations

import pytest
from pool_helpers import FakeClock, specs

from llmitm.pool import CooldownSettings, KeyPool, KeySpec, PoolExhausted, open_store
from llmitm.pool.keystate import KeyUpdate
from llmitm.pool.stores.sqlite import SqliteStore


async def test_fields_and_counters_round_trip(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/state.db")
    assert isinstance(store, SqliteStore)
    await store.write("openai", {"k0": KeyUpdate({"cooldown_until": 12.5, "quota": {"requests": [1, 0, 9.0]}},
                                                 {"requests": 2, "errors": 1})})
    await store.write("openai", {"k0": KeyUpdate({"disabled": True}, {"requests": 3})})
    assert await store.load("openai", ["k0", "k1"]) == {
        "k0": {"cooldown_until": 12.5, "quota": {"requests": [1, 0, 9.0]}, "disabled": True,
               "requests": 5, "errors": 1}
    }
    assert await store.load("anthropic", ["k0"]) == {}
    await store.write("openai", {"k0": KeyUpdate({"requests": 0})})  # a counter named as a field is reset
    assert (await store.load("openai", ["k0"]))["k0"]["requests"] == 0
    await store.close()


async def test_cooldown_and_disabled_key_survive_a_restart(tmp_path):
    clock = FakeClock()
    url = f"sqlite:///{tmp_path}/state.db"
    store = open_store(url)
    cooldown = CooldownSettings(probe_interval_seconds=600)
    pool = KeyPool("openai", specs(2), strategy="round-robin", store=store, clock=clock, max_wait=0, cooldown=cooldown)
    (await pool.acquire(pin="k0")).release(429, {"retry-after": "120"}, input_tokens=7)
    (await pool.acquire(pin="k1")).release(401)
    await pool.close()
    await store.close()

    clock.advance(60)
    store = open_store(url)
    restarted = KeyPool("openai", specs(2), strategy="round-robin", store=store, clock=clock, max_wait=0,
                        cooldown=cooldown)
    await restarted.load()  # before any request: snapshot() and probes see the persisted state
    assert [s.state for s in restarted.snapshot()] == ["cooling", "disabled"]
    with pytest.raises(PoolExhausted) as caught:
        await restarted.acquire()
    assert caught.value.retry_after == pytest.approx(60)  # the cooldown set before the restart holds
    k0, k1 = restarted.snapshot()
    assert (k0.state, k0.requests, k0.input_tokens, k0.errors) == ("cooling", 1, 7, 1)
    assert k1.state == "disabled"
    clock.advance(60)
    assert (await restarted.acquire()).key_id == "k0"
    assert restarted.keys_due_for_probe() == []
    clock.advance(480)  # 600 s after the 401: the probe schedule survived the restart too
    assert [t.key_id for t in restarted.keys_due_for_probe()] == ["k1"]
    await restarted.close()
    await store.close()


async def test_a_different_secret_under_the_same_id_does_not_inherit_state(tmp_path):
    clock = FakeClock()
    url = f"sqlite:///{tmp_path}/state.db"
    store = open_store(url)
    pool = KeyPool("openai", specs(1), store=store, clock=clock, max_wait=0)
    (await pool.acquire()).release(401)
    await pool.close()

    other = KeyPool("openai", [KeySpec("k0", "sk-a-different-secret")], store=store, clock=clock, max_wait=0)
    lease = await other.acquire()
    lease.release(200)
    await other.close()
    [row] = other.snapshot()
    assert (row.state, row.requests, row.errors) == ("ok", 1, 0)
    assert (await store.load("openai", ["k0"]))["k0"]["requests"] == 1
    await store.close()


async def test_in_flight_left_by_a_crash_is_reset_on_start(tmp_path):
    url = f"sqlite:///{tmp_path}/state.db"
    store = open_store(url)
    pool = KeyPool("openai", specs(1), store=store, max_wait=0)
    held = await pool.acquire()  # never released: the process "dies" here
    await pool.flush()
    assert (await store.load("openai", ["k0"]))["k0"]["in_flight"] == 1
    restarted = KeyPool("openai", specs(1), store=store, max_wait=0)
    (await restarted.acquire()).release(200)
    await restarted.flush()
    assert (await store.load("openai", ["k0"]))["k0"]["in_flight"] == 0
    held.release(None)  # (kept alive until here: a dropped lease would free its slot itself)
    await store.close()
