"""Writes a pool's state changes to its store: queued on the hot path, written in batches and in order by
one background task, so that acquire() and release() never wait for I/O."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from .keystate import KeyUpdate
from .livekey import LiveKey
from .stores import Store
from .tasks import CancelGuard, stop_task, wait_event

_WRITE_RETRY_SECONDS = 1.0
# Routine changes (usage counters, last use, remaining quota, in-flight counts) are gathered for this
# long and written in one transaction: at hundreds of requests a second a write per request costs more
# CPU than the proxying. Health changes (a key cooling down, disabled, its breaker tripping) are
# written at once, so a restart or another instance sees them immediately.
BATCH_SECONDS = 0.25
_URGENT_FIELDS = frozenset({"cooldown_until", "cooldown_reason", "disabled", "disabled_reason",
                            "next_probe_at", "failures", "breaker_until"})


class StateWriter:
    def __init__(self, store: Store, provider: str, on_trouble: Callable[[str, Exception], None]) -> None:
        self._store = store
        self.provider = provider
        self._on_trouble = on_trouble
        # Changes per key id, coalesced, with the key object and its version at the last change: a key
        # replaced under the same id (new secret) must not inherit the old one's pending write.
        self._pending: dict[str, KeyUpdate] = {}
        self._pending_versions: dict[str, tuple[LiveKey, int]] = {}
        self._slot_releases: Counter[str] = Counter()  # shared stores: in-flight slots to give back
        self._slot_releases_sending: Counter[str] = Counter()  # the part of them a flush is sending now
        self._urgent = False  # a queued change that must not wait for the batch window
        self._urgent_waiter: asyncio.Event | None = None
        self._write_lock: asyncio.Lock | None = None
        self._wake_event: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False  # after close() no task is started: a late release must not outlive the loop

    def release_slot(self, key_id: str) -> None:
        self._slot_releases[key_id] += 1
        self._urgent = True  # other instances are waiting for that slot
        self._wake()

    def take_slot_releases(self, key_id: str) -> int:
        """Hand the key's unsent slot releases to the caller, which sends them with its next claim."""
        return self._slot_releases.pop(key_id, 0)

    def unsent_slot_releases(self, key_id: str) -> int:
        return self._slot_releases.get(key_id, 0) + self._slot_releases_sending.get(key_id, 0)

    def give_back_slot_releases(self, key_id: str, n: int) -> None:
        """The claim that was to carry them failed: send them with the next batch after all."""
        if n:
            self._slot_releases[key_id] += n
            self._wake()

    def record(self, key: LiveKey, changed: Sequence[str], incr: Mapping[str, int] | None = None) -> None:
        """Queue a write of the changed fields (only those: with a shared store, writing fields we did not
        change would undo other instances' changes)."""
        if not changed and not incr:
            return
        fields = key.state.fields(changed)
        if key.state.fingerprint:
            fields["fingerprint"] = key.state.fingerprint
        update = KeyUpdate(fields=fields, incr=dict(incr or {}))
        key.version += 1
        if key.spec.id in self._pending and self._pending_versions[key.spec.id][0] is key:
            self._pending[key.spec.id].merge(update)
        else:
            self._pending[key.spec.id] = update
        self._pending_versions[key.spec.id] = (key, key.version)
        self._urgent = self._urgent or not _URGENT_FIELDS.isdisjoint(changed)
        self._wake()

    def _urgent_event(self) -> asyncio.Event:
        event = asyncio.Event()
        self._urgent_waiter = event
        if self._urgent:
            event.set()
        return event

    def _wake(self) -> None:
        if self._urgent and self._urgent_waiter is not None:
            self._urgent_waiter.set()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a sync caller): the next flush() or acquire() writes it
        if self._closed:
            return  # close() wrote what was queued; a release after it (a lease outliving a reload) stays local
        if self._task is None or self._task.done():
            self._wake_event = asyncio.Event()
            self._task = loop.create_task(self._loop(), name=f"llmitm-pool-writer-{self.provider}")
        assert self._wake_event is not None
        self._wake_event.set()

    async def _loop(self) -> None:
        assert self._wake_event is not None
        guard = CancelGuard()
        while True:
            guard.check()  # a store call that swallowed our cancellation must not keep this loop alive
            await self._wake_event.wait()
            self._wake_event.clear()
            if not self._urgent:
                # Gather routine changes; an urgent one arriving meanwhile cuts the wait short.
                await wait_event(self._urgent_event(), BATCH_SECONDS)
            self._urgent = False
            try:
                await self.flush()
            except Exception as e:  # the store is down: keep the state in memory and try again
                self._on_trouble("writing key state", e)
                await asyncio.sleep(_WRITE_RETRY_SECONDS)
                self._wake_event.set()

    async def flush(self) -> None:
        """Write every queued change to the store now."""
        if self._write_lock is None:
            self._write_lock = asyncio.Lock()
        async with self._write_lock:
            while self._pending or self._slot_releases:
                batch, versions = self._pending, self._pending_versions
                self._pending, self._pending_versions = {}, {}
                slots, self._slot_releases = self._slot_releases, Counter()
                self._slot_releases_sending = slots
                batch_written = False
                try:
                    if batch:
                        await self._store.write(self.provider, batch)
                    batch_written = True
                    if slots:
                        await self._store.release_slots(self.provider, slots)
                except Exception:
                    # Unsent slot releases must not be lost: the count would stay up while this instance lives.
                    self._slot_releases.update(slots)
                    if not batch_written:
                        self._requeue(batch, versions)
                    raise
                finally:
                    self._slot_releases_sending = Counter()
                    if batch_written:
                        for key, version in versions.values():
                            key.flushed_version = max(key.flushed_version, version)

    def _requeue(self, batch: dict[str, KeyUpdate], versions: dict[str, tuple[LiveKey, int]]) -> None:
        """Put a failed batch back in front of anything queued since, so the order of writes holds."""
        for key_id, update in self._pending.items():
            if key_id in batch and versions[key_id][0] is self._pending_versions[key_id][0]:
                batch[key_id].merge(update)
            else:
                batch[key_id] = update
                versions[key_id] = self._pending_versions[key_id]
        self._pending, self._pending_versions = batch, versions

    async def close(self) -> None:
        """Write what is queued, then stop the background task. Ends even when cancelled itself: the task
        is stopped first, then the cancellation goes on to the caller."""
        self._closed = True
        try:
            await self.flush()
        except Exception as e:
            self._on_trouble("writing the last key state on close", e)
        finally:
            task, self._task = self._task, None
            if task is not None:
                await stop_task(task)
