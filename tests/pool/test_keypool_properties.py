"""Random operation sequences against invariants the pool must never break."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pool_helpers import FakeClock

from llmitm.pool import CooldownSettings, KeyPool, KeySpec, PoolExhausted

KEYS = [KeySpec("a", "sk-aaaaaaaaaaaa", max_concurrency=2), KeySpec("b", "sk-bbbbbbbbbbbb", weight=2),
        KeySpec("c", "sk-cccccccccccc", max_concurrency=1, rpm=5)]
STATUSES = [None, 200, 200, 200, 400, 401, 429, 500, 502, 503, 529]

acquire_op = st.tuples(st.just("acquire"), st.sampled_from([None, "a", "b", "c"]),
                       st.sets(st.sampled_from(["a", "b", "c"]), max_size=3))
release_op = st.tuples(st.just("release"), st.integers(0, 10), st.sampled_from(STATUSES),
                       st.sampled_from([None, "0", "3", "40"]), st.sampled_from([None, "0", "5"]))
other_op = st.sampled_from([("advance", 0.5), ("advance", 5.0), ("advance", 61.0), ("probe", True), ("probe", False)])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(strategy=st.sampled_from(["round-robin", "weighted", "least-busy", "most-remaining"]),
       ops=st.lists(st.one_of(acquire_op, release_op, other_op), max_size=60))
def test_invariants_hold_for_any_sequence(strategy, ops):
    asyncio.run(_run(strategy, ops))


async def _run(strategy: str, ops) -> None:
    clock = FakeClock()
    cooldown = CooldownSettings(default_seconds=10, max_seconds=30, failure_threshold=2, breaker_seconds=4,
                                probe_interval_seconds=20)
    pool = KeyPool("openai", KEYS, strategy=strategy, cooldown=cooldown, clock=clock, max_wait=0)
    caps = {k.id: k.max_concurrency for k in KEYS}
    held = []
    for op in ops:
        if op[0] == "acquire":
            _, pin, exclude = op
            before = {s.key_id: s for s in pool.snapshot()}
            try:
                lease = await pool.acquire(pin=pin, exclude=exclude)
            except PoolExhausted as e:
                assert e.retry_after >= 0
                # Nothing was servable: every allowed key is blocked one way or another.
                allowed = [k for k in ([pin] if pin else list(before)) if k not in exclude]
                assert all(before[k].state != "ok" for k in allowed), (before, allowed)
                continue
            status = before[lease.key_id]
            assert status.state in ("ok", "half-open"), status
            assert lease.key_id not in exclude and (pin is None or lease.key_id == pin)
            held.append(lease)
            in_flight = sum(1 for h in held if h.key_id == lease.key_id)
            assert caps[lease.key_id] is None or in_flight <= caps[lease.key_id]
        elif op[0] == "release" and held:
            _, index, status, retry_after, remaining = op
            lease = held.pop(index % len(held))
            headers = {}
            if retry_after is not None:
                headers["retry-after"] = retry_after
            if remaining is not None:
                headers |= {"x-ratelimit-remaining-requests": remaining, "x-ratelimit-reset-requests": "7s"}
            lease.release(status, headers, error="reset" if status is None and index % 2 else None)
            after = {s.key_id: s for s in pool.snapshot()}[lease.key_id]
            if status in (401,):
                assert after.state == "disabled"
            if status in (429, 529, 503) and after.state != "disabled":
                assert after.cooldown_until is not None or retry_after == "0"
        elif op[0] == "advance":
            clock.advance(op[1])
        elif op[0] == "probe":
            for target in pool.keys_due_for_probe():
                pool.probe_result(target.key_id, op[1])
        for s in pool.snapshot():
            assert s.in_flight == sum(1 for h in held if h.key_id == s.key_id)
            if s.cooldown_until is not None:
                assert s.cooldown_until - clock.now <= 30 + 1e-6  # Retry-After is capped
