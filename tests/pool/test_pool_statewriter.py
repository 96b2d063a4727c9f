"""The write queue: nothing is lost or reordered when the store fails for a while."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import pytest
from pool_helpers import FakeClock, specs

from llmitm.pool import KeyPool
from llmitm.pool.keystate import KeyUpdate
from llmitm.pool.stores import SlotClaim
from llmitm.pool.stores.memory import MemoryStore


class FlakyStore(MemoryStore):
    """A shared store in memory whose writes fail while `down` is set."""

    shared = True

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.slots: Counter[str] = Counter()

    async def write(self, provider: str, updates: Mapping[str, KeyUpdate]) -> None:
        if self.down:
            raise ConnectionError("store down")
        await super().write(provider, updates)

    async def try_acquire_slot(self, provider, key_id, cap, now, released=0) -> SlotClaim:
        if self.down:
            raise ConnectionError("store down")
        self.slots[key_id] -= released
        if cap is not None and self.slots[key_id] >= cap:
            return SlotClaim(granted=False, in_flight=self.slots[key_id])
        self.slots[key_id] += 1
        return SlotClaim(granted=True, in_flight=self.slots[key_id])

    async def release_slots(self, provider, counts) -> None:
        if self.down:
            raise ConnectionError("store down")
        self.slots.subtract(counts)


async def test_writes_and_slot_releases_survive_a_store_outage():
    store = FlakyStore()
    pool = KeyPool("openai", specs(2), store=store, clock=FakeClock(), max_wait=0)
    lease = await pool.acquire(pin="k0")
    await pool.flush()
    assert store.slots["k0"] == 1
    store.down = True
    lease.release(429, {"retry-after": "30"}, input_tokens=5)
    with pytest.raises(ConnectionError):
        await pool.flush()
    (await pool.acquire(pin="k1")).release(200, input_tokens=7)  # decided locally meanwhile
    store.down = False
    await pool.flush()
    stored = await store.load("openai", ["k0", "k1"])
    assert stored["k0"]["cooldown_until"] > 0 and stored["k0"]["input_tokens"] == 5
    assert stored["k0"]["requests"] == 1 and stored["k1"]["requests"] == 1
    assert store.slots["k0"] == 0 and store.slots["k1"] == 0  # the unclaimed k1 lease sends no release
    await pool.close()
