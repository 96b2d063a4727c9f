"""Keeps a pool's in-memory copy of its keys' state in step with the store.

Reads: every key once before it is first handed out (state persisted by a previous run, or learned by
other instances), and with a shared store again whenever the copy is older than `shared_cache_ttl`.
Writes: queued by the pool and written by the StateWriter in the background. When the store fails the
pool goes on deciding on its own copy (fail open) and leaves the store alone for a few seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .keystate import COUNTERS, FIELDS, KeyState
from .livekey import LiveKey
from .statewriter import StateWriter
from .stores import Store

log = logging.getLogger(__name__)

_STORE_BACKOFF_SECONDS = 5.0  # after a store error, decide locally this long before asking it again


class StoreSync:
    def __init__(self, provider: str, store: Store, clock: Callable[[], float], shared_cache_ttl: float) -> None:
        self.provider = provider
        self.store = store
        self.shared_cache_ttl = shared_cache_ttl
        self._clock = clock
        self.writer = StateWriter(store, provider, self.trouble)
        self.unloaded: set[str] = set()  # keys whose stored state has not been read yet
        self._load_lock: asyncio.Lock | None = None
        self._refresh_lock: asyncio.Lock | None = None
        self.refreshed_at = float("-inf")  # -inf: the copy must be re-read before the next decision
        self._down_until = float("-inf")  # monotonic
        self._warned_at = float("-inf")  # monotonic

    # ---- store health --------------------------------------------------------------------------------

    def usable(self) -> bool:
        return time.monotonic() >= self._down_until

    def trouble(self, action: str, error: Exception) -> None:
        """Fail open: the pool keeps serving on its own copy of the state while the store is unreachable."""
        now = time.monotonic()
        self._down_until = now + _STORE_BACKOFF_SECONDS
        if now - self._warned_at >= 10 * _STORE_BACKOFF_SECONDS:
            self._warned_at = now
            log.warning("%s: state store failed while %s (%s); deciding locally for %gs", self.provider, action,
                        error, _STORE_BACKOFF_SECONDS)

    # ---- reads ---------------------------------------------------------------------------------------

    async def load_unloaded(self, keys: Mapping[str, LiveKey], order: Sequence[str]) -> None:
        if not self.unloaded:
            return
        if self._load_lock is None:
            self._load_lock = asyncio.Lock()
        async with self._load_lock:
            ids = [i for i in order if i in self.unloaded]
            if not ids:
                return
            stored = await self.store.load(self.provider, ids)
            now = self._clock()
            for key_id in ids:
                self.unloaded.discard(key_id)
                key = keys.get(key_id)
                if key is None:
                    continue
                fields = stored.get(key_id) or {}
                stored_fingerprint = fields.get("fingerprint")
                if stored_fingerprint is None or stored_fingerprint == key.spec.fingerprint:
                    # Learned for this secret, or nothing learned yet (a shared store may already count
                    # other instances' requests in flight, and their writes may be on the way: no reset).
                    self.adopt(key, KeyState.from_fields(fields), fields)
                    changed = ["fingerprint"] if stored_fingerprint is None else []
                    if not self.store.shared and key.state.in_flight != key.in_flight:
                        # A count left behind by a previous run that ended with requests in flight.
                        key.state.in_flight = key.in_flight
                        changed.append("in_flight")
                    self.writer.record(key, changed)
                else:
                    # Learned for another secret under this id: start clean, counters too.
                    key.state = KeyState(fingerprint=key.spec.fingerprint, last_used=key.state.last_used)
                    self.writer.record(key, [*FIELDS, *COUNTERS])
            self.refreshed_at = now

    def adopt(self, key: LiveKey, state: KeyState, fields: Mapping[str, Any]) -> None:
        state.fingerprint = key.spec.fingerprint  # a record holding only counters has none yet
        if state.quota != key.state.quota:
            key.local_spent = key.in_flight
        key.state = state
        if self.store.shared and isinstance(fields.get("in_flight"), int):
            unsent = self.writer.unsent_slot_releases(key.spec.id)
            key.remote_in_flight = max(0, fields["in_flight"] - key.in_flight - unsent)

    async def refresh(self, keys: Mapping[str, LiveKey], force: bool = False) -> None:
        """Re-read a shared store's state (other instances' cooldowns, quota, in-flight counts)."""
        if not force and self._clock() - self.refreshed_at < self.shared_cache_ttl:
            return
        if self._refresh_lock is None:
            self._refresh_lock = asyncio.Lock()
        async with self._refresh_lock:
            if not force and self._clock() - self.refreshed_at < self.shared_cache_ttl:
                return
            await self.writer.flush()  # our own changes must be in the store before we read it back
            keys = dict(keys)
            versions = {i: k.version for i, k in keys.items()}
            stored = await self.store.load(self.provider, list(keys))
            for key_id, key in keys.items():
                fields = stored.get(key_id)
                # A key changed locally since the read began keeps its local state until the next refresh.
                if fields is None or key.version != versions[key_id] or key.version != key.flushed_version:
                    continue
                if fields.get("fingerprint") not in (None, key.spec.fingerprint):
                    continue
                self.adopt(key, KeyState.from_fields(fields), fields)
            self.refreshed_at = self._clock()
