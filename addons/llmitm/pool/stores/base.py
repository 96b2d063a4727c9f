"""The interface every state store implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from ..keystate import KeyUpdate


@dataclass(frozen=True)
class SlotClaim:
    granted: bool
    in_flight: int  # live total across instances, this claim included when granted
    state_blocked: bool = False  # refused: the shared state says the key cannot serve (cooling, disabled…)


class Store(ABC):
    # True when other processes change the state concurrently: the pool then re-reads it on a TTL and
    # counts in-flight requests in the store (try_acquire_slot/release_slots) instead of locally.
    shared: bool = False

    @abstractmethod
    async def load(self, provider: str, key_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        """Stored fields and counters per key id (missing keys are absent). Shared stores add
        `in_flight`: the live total across instances."""

    @abstractmethod
    async def write(self, provider: str, updates: Mapping[str, KeyUpdate]) -> None:
        """Overwrite the given fields and add the given counter increments, per key id."""

    async def try_acquire_slot(
        self, provider: str, key_id: str, cap: int | None, now: float, released: int = 0
    ) -> SlotClaim:
        """Shared stores: count one more in-flight request on the key unless `cap` is reached or the shared
        state blocks the key at `now` (pool clock). `released`: this instance's releases of the key that
        were not sent yet; they are applied first, in the same atomic step."""
        raise NotImplementedError(f"{type(self).__name__} does not count concurrency")

    async def release_slots(self, provider: str, counts: Mapping[str, int]) -> None:
        """Shared stores: give back this instance's in-flight slots, `counts` per key id."""
        raise NotImplementedError(f"{type(self).__name__} does not count concurrency")

    async def close(self) -> None:
        """Release connections; the pool calls it from KeyPool.close() only when it owns the store."""
