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
import dataclasses
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmitm.config import CooldownConfig, ProviderConfig

from .errors import PoolExhausted, UnknownKey
from .keystate import COUNTERS, FIELDS, KeySpec, KeyState, keys_from_config
from .lease import Lease
from .livekey import UNKNOWN_FREE_SECONDS, LiveKey
from .outcome import Outcome, classify
from .ratelimits import parse_rate_limits
from .statewriter import StateWriter
from .status import KeyStatus, key_status
from .store import SlotClaim, Store
from .store_memory import MemoryStore
from .strategies import Candidate, Strategy, make_strategy
from .tasks import CancelGuard, wait_event

log = logging.getLogger(__name__)

CooldownSettings = CooldownConfig  # the pool takes the config model as is

# Releases on other instances wake no local waiter, so waiters poll a shared store: from 50 ms, doubling
# to 0.5 s, so that many waiters on a busy pool do not flood Redis.
_SHARED_POLL_SECONDS = (0.05, 0.5)
_STORE_BACKOFF_SECONDS = 5.0  # after a store error, decide locally this long before asking it again


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
        cooldown: CooldownConfig | None = None,
        store: Store | None = None,
        max_wait: float = 10.0,
        max_waiters: int = 256,
        clock: Callable[[], float] = time.time,
        shared_cache_ttl: float = 1.0,
    ) -> None:
        self.provider = provider
        self.cooldown = cooldown or CooldownConfig()
        self.max_wait = max_wait
        self.max_waiters = max_waiters
        self.shared_cache_ttl = shared_cache_ttl
        self._clock = clock
        self._store = store or MemoryStore()
        self._strategy_name = strategy
        self._strategy: Strategy = make_strategy(strategy)
        self._keys: dict[str, LiveKey] = {}
        self._order: list[str] = []
        self._unloaded: set[str] = set()  # keys whose stored state has not been read yet
        self._set_keys(keys)
        self._waiters = 0
        self._changed: asyncio.Event | None = None
        self._writer = StateWriter(self._store, provider, self._store_trouble)
        self._load_lock: asyncio.Lock | None = None
        self._refresh_lock: asyncio.Lock | None = None
        self._refreshed_at = float("-inf")
        self._store_down_until = float("-inf")  # monotonic
        self._store_warned_at = float("-inf")  # monotonic

    @classmethod
    def from_config(
        cls, provider: str, config: ProviderConfig, store: Store | None = None, **kwargs: Any
    ) -> KeyPool:
        return cls(
            provider,
            keys_from_config(provider, config),
            strategy=config.strategy,
            cooldown=config.cooldown,
            store=store,
            max_wait=config.max_wait_seconds,
            **kwargs,
        )

    # ---- configuration -------------------------------------------------------------------------------

    def _set_keys(self, specs: Sequence[KeySpec]) -> None:
        ids = [s.id for s in specs]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{self.provider}: duplicate key ids in {ids}")
        keys: dict[str, LiveKey] = {}
        for spec in specs:
            old = self._keys.get(spec.id)
            if old is not None and old.spec.fingerprint == spec.fingerprint:
                old.spec = spec  # weight, cap and hints may change; what was learned stays
                keys[spec.id] = old
            else:
                # New key, or the id now names another secret: nothing learned applies to it.
                keys[spec.id] = LiveKey(spec)
                self._unloaded.add(spec.id)
        self._unloaded &= set(keys)
        self._keys = keys
        self._order = ids
        self._positions = {key_id: i for i, key_id in enumerate(ids)}

    def reconfigure(
        self,
        keys: Sequence[KeySpec] | None = None,
        strategy: str | None = None,
        cooldown: CooldownConfig | None = None,
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

    def reconfigure_from(self, config: ProviderConfig) -> None:
        self.reconfigure(
            keys=keys_from_config(self.provider, config),
            strategy=config.strategy,
            cooldown=config.cooldown,
            max_wait=config.max_wait_seconds,
        )

    @property
    def key_ids(self) -> list[str]:
        return list(self._order)

    # ---- acquire -------------------------------------------------------------------------------------

    async def acquire(self, pin: str | None = None, exclude: Collection[str] = (), tokens: int = 0) -> Lease:
        """A key for one upstream attempt. pin: only this key id. exclude: key ids already tried for this
        request. tokens: estimated input tokens, to skip keys whose token quota is too low (0: unknown).
        Waits up to max_wait for a busy or soon-free key; raises PoolExhausted otherwise."""
        guard = CancelGuard()  # a store call may lose our caller's cancellation (tasks.py): re-raise it
        if self._store_usable():
            try:
                await self._load_unloaded()
            except Exception as e:
                self._store_trouble("loading key state", e)
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
                if self._store.shared and self._store_usable():
                    try:
                        await self.refresh()
                    except Exception as e:
                        self._store_trouble("reading shared state", e)
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
                if self._refreshed_at == float("-inf") and not reread:
                    reread = True  # the store refused a key our copy thought usable: re-read, decide again
                    continue
                now = self._clock()
                budget = min(deadline - now, real_deadline - time.monotonic())
                wait = self._wait_seconds(candidates, now, budget, tokens, polls)
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
            if self._store.shared and self._store_usable():
                # The store is the authority on concurrency across instances, and on state other instances
                # changed since our last read: claim there first.
                try:
                    claim = await self._claim_slot(key)
                except Exception as e:
                    # Fail open: a Redis outage must not take the proxy down; caps hold per instance meanwhile.
                    self._store_trouble("claiming a slot", e)
                else:
                    if claim.state_blocked:
                        self._refreshed_at = float("-inf")  # our copy is behind: re-read before deciding again
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

        def release(lease: Lease | None, status, headers, body_json, error, input_tokens, output_tokens) -> None:  # type: ignore[no-untyped-def]
            self._release(key, trial, claimed, status, headers, body_json, error, input_tokens, output_tokens)

        return Lease(self.provider, key.spec.id, key.spec.secret, key.spec.masked, release)

    def _wait_seconds(
        self, candidates: list[LiveKey], now: float, budget: float, tokens: int, polls: int
    ) -> float | None:
        """How long to wait before trying again, or None when waiting cannot help within the budget."""
        if budget <= 0 or not candidates:
            return None
        frees: list[float] = []
        depends_on_release = False
        for k in candidates:
            blocked = k.blocked(now, tokens=tokens)
            if blocked is None:
                # Available but the shared store refused its slot: another instance holds it.
                depends_on_release = True
            elif blocked[1] is None:
                depends_on_release = True
            elif not k.state.disabled:
                frees.append(blocked[1])
        earliest = min(frees) - now if frees else None
        if earliest is not None and earliest <= budget:
            wait = max(earliest, 0.0)
        elif depends_on_release:
            wait = budget
        else:
            return None
        if self._store.shared:
            first, most = _SHARED_POLL_SECONDS
            wait = min(wait, first * 2 ** min(polls, 10), most)
        return min(wait, budget)

    async def _wait_for_change(self, seconds: float) -> None:
        await wait_event(self._change_event(), seconds)

    def _exhausted(
        self, now: float, pin: str | None, exclude: Collection[str], tokens: int, reason: str | None = None
    ) -> PoolExhausted:
        """Retry-After is for the client's next request, which excludes nothing: it is when any key (the
        pinned one, if pinned) frees up."""
        names = [pin] if pin is not None else self._order
        frees: list[float] = []
        reasons: dict[str, int] = {}
        for name in names:
            k = self._keys[name]
            blocked = k.blocked(now, tokens=tokens)
            if blocked is None:
                why, free_at = ("already tried" if name in exclude else "busy"), now + UNKNOWN_FREE_SECONDS
            else:
                why, free_at = blocked[0], blocked[1] if blocked[1] is not None else now + UNKNOWN_FREE_SECONDS
            frees.append(free_at)
            reasons[why] = reasons.get(why, 0) + 1
        if not frees:
            return PoolExhausted(self.cooldown.default_seconds, reason or f"{self.provider}: no keys configured")
        summary = ", ".join(f"{n} {why}" for why, n in sorted(reasons.items(), key=lambda kv: -kv[1]))
        prefix = f"{self.provider}: {reason}; " if reason else f"{self.provider}: no key can serve; "
        return PoolExhausted(min(frees) - now, prefix + f"keys: {summary}")

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

        outcome = classify(status, body_json, error)
        incr = {"input_tokens": input_tokens, "output_tokens": output_tokens}
        if outcome is not Outcome.UNKNOWN:
            incr["requests"] = 1
        if outcome not in (Outcome.UNKNOWN, Outcome.SUCCESS) or (status is not None and status >= 400):
            incr["errors"] = 1
        if input_tokens + output_tokens:
            key.add_tokens(now, input_tokens + output_tokens)

        if outcome is Outcome.SUCCESS:
            if s.failures or s.breaker_until:
                s.failures, s.breaker_until = 0, 0.0
                changed += ["failures", "breaker_until"]
        elif outcome in (Outcome.RATE_LIMITED, Outcome.OVERLOADED, Outcome.QUOTA_EXHAUSTED):
            self._cool_down(key, now, outcome, status, info.retry_after if info else None)
            changed += ["cooldown_until", "cooldown_reason"]
        elif outcome is Outcome.AUTH_FAILED:
            s.disabled = True
            s.disabled_reason = f"HTTP {status} from upstream"
            s.next_probe_at = now + self.cooldown.probe_interval_seconds
            changed += ["disabled", "disabled_reason", "next_probe_at"]
            log.warning("%s: key %s disabled after HTTP %s; probing every %gs", self.provider, key.spec.id,
                        status, self.cooldown.probe_interval_seconds)
        elif outcome is Outcome.FAILURE:
            s.failures += 1
            if trial or s.failures >= self.cooldown.failure_threshold:
                s.breaker_until = now + self.cooldown.breaker_seconds
                log.warning("%s: key %s circuit breaker open for %gs after %d failures (%s)", self.provider,
                            key.spec.id, self.cooldown.breaker_seconds, s.failures, error or f"HTTP {status}")
            changed += ["failures", "breaker_until"]
        for name, n in incr.items():
            setattr(s, name, getattr(s, name) + n)
        self._writer.record(key, changed, {k: v for k, v in incr.items() if v})
        self._notify()

    def _cool_down(
        self, key: LiveKey, now: float, outcome: Outcome, status: int | None, retry_after: float | None
    ) -> None:
        s = key.state
        if outcome is Outcome.QUOTA_EXHAUSTED:
            seconds = self.cooldown.max_seconds
        elif retry_after is not None:
            seconds = retry_after
        else:
            # No Retry-After: a spent bucket's reset is the next best estimate, then the default.
            resets = [b.reset_at - now for b in s.quota.values() if b.spent and b.reset_at and b.reset_at > now]
            seconds = max(resets) if resets else self.cooldown.default_seconds
        seconds = min(seconds, self.cooldown.max_seconds)
        s.cooldown_until = max(s.cooldown_until, now + seconds)
        s.cooldown_reason = f"{outcome.value} (HTTP {status})" if status is not None else outcome.value
        log.info("%s: key %s cooling down for %.1fs: %s", self.provider, key.spec.id, seconds, s.cooldown_reason)

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
        now = self._clock()
        statuses = []
        for key in (self._keys[n] for n in self._order):
            status = key_status(self.provider, key.spec.id, key.spec.masked, key.state, now, key.busy,
                                key.spec.max_concurrency)
            blocked = key.blocked(now)
            if status.state == "ok" and blocked is not None:
                # Held back by what only this instance knows: the rpm/tpm hints or requests not yet answered.
                status = dataclasses.replace(status, state="throttled", reason=blocked[0])
            statuses.append(status)
        return statuses

    # ---- store I/O -----------------------------------------------------------------------------------

    async def flush(self) -> None:
        """Write every queued change to the store now."""
        await self._writer.flush()

    async def load(self) -> None:
        """Read the stored state of keys not read yet. acquire() does it on demand; call it at start so
        that snapshot() and keys_due_for_probe() see persisted state before the first request."""
        await self._load_unloaded()

    async def _load_unloaded(self) -> None:
        if not self._unloaded:
            return
        if self._load_lock is None:
            self._load_lock = asyncio.Lock()
        async with self._load_lock:
            ids = [i for i in self._order if i in self._unloaded]
            if not ids:
                return
            stored = await self._store.load(self.provider, ids)
            now = self._clock()
            for key_id in ids:
                self._unloaded.discard(key_id)
                key = self._keys.get(key_id)
                if key is None:
                    continue
                fields = stored.get(key_id) or {}
                stored_fingerprint = fields.get("fingerprint")
                if stored_fingerprint is None or stored_fingerprint == key.spec.fingerprint:
                    # Learned for this secret, or nothing learned yet (a shared store may already count
                    # other instances' requests in flight, and their writes may be on the way: no reset).
                    self._adopt(key, KeyState.from_fields(fields), fields)
                    changed = ["fingerprint"] if stored_fingerprint is None else []
                    if not self._store.shared and key.state.in_flight != key.in_flight:
                        # A count left behind by a previous run that ended with requests in flight.
                        key.state.in_flight = key.in_flight
                        changed.append("in_flight")
                    self._writer.record(key, changed)
                else:
                    # Learned for another secret under this id: start clean, counters too.
                    key.state = KeyState(fingerprint=key.spec.fingerprint, last_used=key.state.last_used)
                    self._writer.record(key, [*FIELDS, *COUNTERS])
            self._refreshed_at = now

    def _adopt(self, key: LiveKey, state: KeyState, fields: Mapping[str, Any]) -> None:
        state.fingerprint = key.spec.fingerprint  # a record holding only counters has none yet
        if state.quota != key.state.quota:
            key.local_spent = key.in_flight
        key.state = state
        if self._store.shared and isinstance(fields.get("in_flight"), int):
            unsent = self._writer.unsent_slot_releases(key.spec.id)
            key.remote_in_flight = max(0, fields["in_flight"] - key.in_flight - unsent)

    async def refresh(self, force: bool = False) -> None:
        """Re-read a shared store's state (other instances' cooldowns, quota, in-flight counts)."""
        if not force and self._clock() - self._refreshed_at < self.shared_cache_ttl:
            return
        if self._refresh_lock is None:
            self._refresh_lock = asyncio.Lock()
        async with self._refresh_lock:
            if not force and self._clock() - self._refreshed_at < self.shared_cache_ttl:
                return
            await self.flush()  # our own changes must be in the store before we read it back
            keys = dict(self._keys)
            versions = {i: k.version for i, k in keys.items()}
            stored = await self._store.load(self.provider, list(keys))
            for key_id, key in keys.items():
                fields = stored.get(key_id)
                # A key changed locally since the read began keeps its local state until the next refresh.
                if fields is None or key.version != versions[key_id] or key.version != key.flushed_version:
                    continue
                if fields.get("fingerprint") not in (None, key.spec.fingerprint):
                    continue
                self._adopt(key, KeyState.from_fields(fields), fields)
            self._refreshed_at = self._clock()

    async def close(self) -> None:
        """Write what is queued and stop the writer. The store stays open: it is shared by all pools."""
        await self._writer.close()

    def _store_usable(self) -> bool:
        return time.monotonic() >= self._store_down_until

    def _store_trouble(self, action: str, error: Exception) -> None:
        """Fail open: the pool keeps serving on its own copy of the state while the store is unreachable."""
        now = time.monotonic()
        self._store_down_until = now + _STORE_BACKOFF_SECONDS
        if now - self._store_warned_at >= 10 * _STORE_BACKOFF_SECONDS:
            self._store_warned_at = now
            log.warning("%s: state store failed while %s (%s); deciding locally for %gs", self.provider, action,
                        error, _STORE_BACKOFF_SECONDS)

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
