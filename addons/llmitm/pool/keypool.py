"""One provider's pool of upstream keys: which key serves the next attempt, and what its result teaches us.

Decisions are made on an in-memory copy of every key's state, so acquire() costs no I/O with local
stores. State changes are queued and written by one background task (batched, in order). With a shared
store (Redis) the copy is re-read when older than `shared_cache_ttl`, and in-flight slots are claimed in
the store so that concurrency caps hold across instances.

Times come from an injectable `clock` (epoch seconds, like time.time) because cooldowns and quota resets
are persisted and shared; waiting additionally stops on a monotonic deadline so that a clock that does not
move (tests) cannot hang a caller.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import PoolExhausted, UnknownKey
from .lease import Lease
from .livekey import LiveKey
from .outcome import classify
from .ratelimits import parse_rate_limits
from .settings import CooldownSettings, KeySpec, PoolSettings, check_unique_ids
from .status import KeyStatus, pool_snapshot
from .stores import SlotClaim, Store
from .stores.memory import MemoryStore
from .strategies import Candidate, Strategy, make_strategy
from .sync import StoreSync
from .tasks import CancelGuard, wait_event
from .transitions import Attempt, transition
from .waiting import exhausted, wait_seconds

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProbeTarget:
    """A disabled key due for a probe: send one cheap authenticated request, then call probe_result()."""

    key_id: str
    secret: str
    masked: str


class KeyPool:
    def __init__(
        self,
        provider: str,
        keys: Sequence[KeySpec],
        *,
        strategy: str = "most-remaining",
        cooldown: CooldownSettings | None = None,
        store: Store | None = None,
        max_wait: float = 10.0,
        max_waiters: int = 256,
        clock: Callable[[], float] = time.time,
        shared_cache_ttl: float = 1.0,
    ) -> None:
        self.provider = provider
        self.cooldown = cooldown or CooldownSettings()
        self.max_wait = max_wait
        self.max_waiters = max_waiters
        self._clock = clock
        self._store = store or MemoryStore()
        self._sync = StoreSync(provider, self._store, clock, shared_cache_ttl)
        self._writer = self._sync.writer
        self._strategy_name = strategy
        self._strategy: Strategy = make_strategy(strategy)
        self._keys: dict[str, LiveKey] = {}
        self._order: list[str] = []
        self._set_keys(keys)
        self._waiters = 0
        self._changed: asyncio.Event | None = None

    @classmethod
    def from_settings(cls, provider: str, settings: PoolSettings, store: Store | None = None, **kwargs: Any) -> KeyPool:
        return cls(provider, settings.keys, strategy=settings.strategy, cooldown=settings.cooldown, store=store,
                   max_wait=settings.max_wait, **kwargs)

    # ---- configuration -------------------------------------------------------------------------------

    def _set_keys(self, specs: Sequence[KeySpec]) -> None:
        check_unique_ids(specs)
        ids = [s.id for s in specs]
        keys: dict[str, LiveKey] = {}
        for spec in specs:
            old = self._keys.get(spec.id)
            if old is not None and old.spec.fingerprint == spec.fingerprint:
                old.spec = spec  # weight, cap and hints may change; what was learned stays
                keys[spec.id] = old
            else:
                # New key, or the id now names another secret: nothing learned applies to it.
                keys[spec.id] = LiveKey(spec)
                self._sync.unloaded.add(spec.id)
        self._sync.unloaded &= set(keys)
        self._keys = keys
        self._order = ids
        self._positions = {key_id: i for i, key_id in enumerate(ids)}

    def reconfigure(
        self,
        keys: Sequence[KeySpec] | None = None,
        strategy: str | None = None,
        cooldown: CooldownSettings | None = None,
        max_wait: float | None = None,
    ) -> None:
        """Hot reload. Unchanged keys keep their state; leases on removed keys stay valid and are
        released normally, they are just not handed out again."""
        new_strategy = make_strategy(strategy) if strategy is not None and strategy != self._strategy_name else None
        if keys is not None:
            self._set_keys(keys)
        if new_strategy is not None:
            self._strategy, self._strategy_name = new_strategy, strategy or self._strategy_name
        if cooldown is not None:
            self.cooldown = cooldown
        if max_wait is not None:
            self.max_wait = max_wait
        self._notify()

    def apply(self, settings: PoolSettings) -> None:
        self.reconfigure(keys=settings.keys, strategy=settings.strategy, cooldown=settings.cooldown,
                         max_wait=settings.max_wait)

    @property
    def key_ids(self) -> list[str]:
        return list(self._order)

    # ---- acquire -------------------------------------------------------------------------------------

    async def acquire(self, pin: str | None = None, exclude: Collection[str] = (), tokens: int = 0) -> Lease:
        """A key for one upstream attempt. pin: only this key id. exclude: key ids already tried for this
        request. tokens: estimated input tokens, to skip keys whose token quota is too low (0: unknown).
        Waits up to max_wait for a busy or soon-free key; raises PoolExhausted otherwise."""
        guard = CancelGuard()  # a store call may lose our caller's cancellation (tasks.py): re-raise it
        if self._sync.usable():
            try:
                await self._sync.load_unloaded(self._keys, self._order)
            except Exception as e:
                self._sync.trouble("loading key state", e)
            guard.check()
        if pin is not None and pin not in self._keys:
            raise UnknownKey(self.provider, pin)
        deadline = self._clock() + self.max_wait
        real_deadline = time.monotonic() + self.max_wait
        queued = False
        reread = False
        polls = 0
        try:
            while True:
                if self._store.shared and self._sync.usable():
                    try:
                        await self.refresh()
                    except Exception as e:
                        self._sync.trouble("reading shared state", e)
                    guard.check()
                now = self._clock()
                names = [pin] if pin is not None else self._order
                candidates = [self._keys[n] for n in names if n in self._keys and n not in exclude]
                lease = await self._take(candidates, now, tokens)
                if guard.lost:
                    if lease is not None:
                        lease.release()  # abandoned: the slot is freed, the key not judged
                    guard.check()
                if lease is not None:
                    return lease
                if self._sync.refreshed_at == float("-inf") and not reread:
                    reread = True  # the store refused a key our copy thought usable: re-read, decide again
                    continue
                now = self._clock()
                budget = min(deadline - now, real_deadline - time.monotonic())
                wait = wait_seconds(candidates, now, budget, tokens, polls, self._store.shared)
                if wait is None:
                    raise self._exhausted(now, pin, exclude, tokens)
                if not queued:
                    if self._waiters >= self.max_waiters:
                        raise self._exhausted(now, pin, exclude, tokens, reason="wait queue full")
                    self._waiters += 1
                    queued = True
                await self._wait_for_change(wait)
                polls += 1
        finally:
            if queued:
                self._waiters -= 1

    async def _take(self, candidates: list[LiveKey], now: float, tokens: int) -> Lease | None:
        if self._store.shared:
            # Other instances' in-flight counts here may be stale; the store's claim decides the cap.
            available = [
                k for k in candidates if k.blocked(now, ignore_cap=True, tokens=tokens) is None and not k.locally_full
            ]
        else:
            available = [k for k in candidates if k.blocked(now, tokens=tokens) is None]
        if not available:
            return None
        views = [
            Candidate(
                id=k.spec.id,
                position=self._positions.get(k.spec.id, len(self._order)),
                weight=k.spec.weight,
                busy=k.busy,
                remaining=k.remaining_fraction(now),
                last_used=k.state.last_used,
            )
            for k in available
        ]
        by_id = {k.spec.id: k for k in available}
        for view in self._strategy.order(views):
            key = by_id[view.id]
            claimed = False
            if self._store.shared and self._sync.usable():
                # The store is the authority on concurrency across instances, and on state other instances
                # changed since our last read: claim there first.
                try:
                    claim = await self._claim_slot(key)
                except Exception as e:
                    # Fail open: a Redis outage must not take the proxy down; caps hold per instance meanwhile.
                    self._sync.trouble("claiming a slot", e)
                else:
                    if claim.state_blocked:
                        self._sync.refreshed_at = float("-inf")  # our copy is behind: re-read before deciding again
                        continue
                    if not claim.granted:
                        continue
                    claimed = True
                    if key.blocked(self._clock(), ignore_cap=True) is not None:
                        # Became unusable while we awaited the store (a release on this instance cooled it).
                        self._writer.release_slot(key.spec.id)
                        continue
            self._strategy.picked(view, views)
            return self._lease(key, self._clock(), claimed)
        return None

    async def _claim_slot(self, key: LiveKey) -> SlotClaim:
        """Claim an in-flight slot in the shared store, carrying this instance's unsent releases of the key
        so the count it checks is current. A refusal while releases of the key are still on their way (sent
        by the writer, or released during the claim) may be a false one: then send them and try again."""
        for attempt in range(3):
            if attempt:
                await self._writer.flush()
            released = self._writer.take_slot_releases(key.spec.id)
            try:
                claim = await self._store.try_acquire_slot(
                    self.provider, key.spec.id, key.spec.max_concurrency, self._clock(), released
                )
            except Exception:
                self._writer.give_back_slot_releases(key.spec.id, released)
                raise
            unsent = self._writer.unsent_slot_releases(key.spec.id)
            # The store's total counts our unsent releases as still in flight.
            key.remote_in_flight = max(0, claim.in_flight - int(claim.granted) - key.in_flight - unsent)
            if claim.granted or claim.state_blocked or not unsent:
                return claim
        return claim

    def _lease(self, key: LiveKey, now: float, claimed: bool) -> Lease:
        key.in_flight += 1
        key.local_spent += 1
        key.recent_requests.append(now)
        trial = bool(key.state.breaker_until) and key.state.breaker_until <= now
        if trial:
            key.trial_in_flight = True
        key.state.last_used = now
        changed = ["last_used"]
        if not self._store.shared:
            key.state.in_flight = key.in_flight
            changed.append("in_flight")
        self._writer.record(key, changed)

        def release(lease: Lease | None, status, headers, body_json, error, input_tokens, output_tokens,  # type: ignore[no-untyped-def]
                    aborted=False) -> None:
            self._release(key, trial, claimed, status, headers, body_json, error, input_tokens, output_tokens,
                          aborted)

        return Lease(self.provider, key.spec.id, key.spec.secret, key.spec.masked, release)

    async def _wait_for_change(self, seconds: float) -> None:
        await wait_event(self._change_event(), seconds)

    def _exhausted(
        self, now: float, pin: str | None, exclude: Collection[str], tokens: int, reason: str | None = None
    ) -> PoolExhausted:
        names = [pin] if pin is not None else self._order
        return exhausted(self.provider, [(n, self._keys[n]) for n in names], now, exclude, tokens,
                         self.cooldown.default_seconds, reason)

    # ---- release -------------------------------------------------------------------------------------

    def _release(
        self,
        key: LiveKey,
        trial: bool,
        claimed: bool,
        status: int | None,
        headers: Mapping[str, str] | None,
        body_json: Any,
        error: str | None,
        input_tokens: int,
        output_tokens: int,
        aborted: bool = False,
    ) -> None:
        now = self._clock()
        s = key.state
        key.in_flight -= 1
        if trial:
            key.trial_in_flight = False
        changed: list[str] = []
        if not self._store.shared:
            s.in_flight = key.in_flight
            changed.append("in_flight")
        elif claimed:
            self._writer.release_slot(key.spec.id)

        info = parse_rate_limits(headers, now, body_json) if (headers or body_json is not None) else None
        if info is not None and info.buckets:
            s.quota = {**s.quota, **info.buckets}
            # Requests still in flight may not be counted in this snapshot: stay conservative.
            key.local_spent = key.in_flight
            changed.append("quota")
        if input_tokens + output_tokens:
            key.add_tokens(now, input_tokens + output_tokens)

        attempt = Attempt(classify(status, body_json, error, aborted), now, status, error,
                          info.retry_after if info else None, trial)
        result = transition(s, attempt, self.cooldown)
        for name, value in result.fields.items():
            setattr(s, name, value)
        counters = {**result.counters, "input_tokens": input_tokens, "output_tokens": output_tokens}
        for name, n in counters.items():
            setattr(s, name, getattr(s, name) + n)
        if result.note is not None:
            level, text = result.note
            log.log(level, "%s: key %s %s", self.provider, key.spec.id, text)
        self._writer.record(key, [*changed, *result.fields], {k: v for k, v in counters.items() if v})
        self._notify()

    # ---- probes --------------------------------------------------------------------------------------

    def keys_due_for_probe(self) -> list[ProbeTarget]:
        """Disabled keys whose probe is due. Each returned key is claimed until the next interval, so
        concurrent callers do not probe it twice; report the result with probe_result()."""
        now = self._clock()
        due: list[ProbeTarget] = []
        for name in self._order:
            k = self._keys[name]
            if k.state.disabled and k.state.next_probe_at <= now:
                k.state.next_probe_at = now + self.cooldown.probe_interval_seconds
                self._writer.record(k, ["next_probe_at"])
                due.append(ProbeTarget(k.spec.id, k.spec.secret, k.spec.masked))
        return due

    def probe_result(self, key_id: str, ok: bool) -> None:
        k = self._keys.get(key_id)
        if k is None:
            raise UnknownKey(self.provider, key_id)
        now = self._clock()
        s = k.state
        if ok:
            s.disabled, s.disabled_reason, s.next_probe_at = False, "", 0.0
            s.failures, s.breaker_until = 0, 0.0
            log.info("%s: key %s re-enabled after a successful probe", self.provider, key_id)
        else:
            s.next_probe_at = now + self.cooldown.probe_interval_seconds
        self._writer.record(k, ["disabled", "disabled_reason", "next_probe_at", "failures", "breaker_until"])
        self._notify()

    def next_probe_at(self) -> float | None:
        """When the earliest disabled key is due for a probe (for the prober's sleep); None if none is."""
        times = [k.state.next_probe_at for k in self._keys.values() if k.state.disabled]
        return min(times) if times else None

    # ---- status --------------------------------------------------------------------------------------

    def snapshot(self) -> list[KeyStatus]:
        return pool_snapshot(self.provider, [self._keys[n] for n in self._order], self._clock())

    # ---- store I/O -----------------------------------------------------------------------------------

    async def flush(self) -> None:
        """Write every queued change to the store now."""
        await self._writer.flush()

    async def load(self) -> None:
        """Read the stored state of keys not read yet. acquire() does it on demand; call it at start so
        that snapshot() and keys_due_for_probe() see persisted state before the first request."""
        await self._sync.load_unloaded(self._keys, self._order)

    async def refresh(self, force: bool = False) -> None:
        """Re-read a shared store's state (other instances' cooldowns, quota, in-flight counts)."""
        await self._sync.refresh(self._keys, force)

    async def close(self) -> None:
        """Write what is queued and stop the writer. The store stays open: it is shared by all pools."""
        await self._writer.close()

    # ---- waiting -------------------------------------------------------------------------------------

    def _change_event(self) -> asyncio.Event:
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    def _notify(self) -> None:
        """Wake every waiter to look again (each may want a different key, so waking one is not enough)."""
        if self._changed is not None:
            self._changed.set()
            self._changed = None
