"""A key's state as people read it: for KeyPool.snapshot() and the `llmitm keys` table."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from .keystate import KeyState
from .livekey import LiveKey


@dataclass(frozen=True)
class KeyStatus:
    provider: str
    key_id: str
    masked: str
    # ok | busy | cooling | disabled | breaker-open | half-open | quota-spent | throttled (rpm/tpm hint,
    # or the last remaining request already handed out; KeyPool.snapshot() only)
    state: str
    reason: str
    cooldown_until: float | None  # epoch seconds; None when the key is not cooling down
    in_flight: int
    remaining: dict[str, int] = field(default_factory=dict)  # per bucket, only buckets not yet reset
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    errors: int = 0
    last_used: float | None = None


def describe(state: KeyState, now: float, in_flight: int, max_concurrency: int | None) -> tuple[str, str]:
    """(state, reason) of a key, the most severe condition first."""
    if state.disabled:
        return "disabled", state.disabled_reason
    if state.cooldown_until > now:
        return "cooling", state.cooldown_reason
    if state.breaker_until > now:
        return "breaker-open", f"{state.failures} consecutive failures"
    if state.breaker_until:
        return "half-open", "breaker waiting for a successful trial request"
    spent = sorted(name for name, b in state.quota.items() if b.spent and b.reset_at and b.reset_at > now)
    if spent:
        return "quota-spent", "remaining " + ", ".join(spent) + " is 0"
    if max_concurrency is not None and in_flight >= max_concurrency:
        return "busy", f"{in_flight}/{max_concurrency} in flight"
    return "ok", ""


def remaining_quota(state: KeyState, now: float) -> dict[str, int]:
    return {
        name: b.remaining
        for name, b in sorted(state.quota.items())
        if b.remaining is not None and (b.reset_at is None or b.reset_at > now)
    }


def key_status(
    provider: str,
    key_id: str,
    masked: str,
    state: KeyState,
    now: float,
    in_flight: int,
    max_concurrency: int | None,
) -> KeyStatus:
    name, reason = describe(state, now, in_flight, max_concurrency)
    return KeyStatus(
        provider=provider,
        key_id=key_id,
        masked=masked,
        state=name,
        reason=reason,
        cooldown_until=state.cooldown_until if state.cooldown_until > now else None,
        in_flight=in_flight,
        remaining=remaining_quota(state, now),
        requests=state.requests,
        input_tokens=state.input_tokens,
        output_tokens=state.output_tokens,
        errors=state.errors,
        last_used=state.last_used or None,
    )


def pool_snapshot(provider: str, keys: Sequence[LiveKey], now: float) -> list[KeyStatus]:
    """KeyPool.snapshot(): the stored view of each key, plus what only this instance knows."""
    statuses = []
    for key in keys:
        status = key_status(provider, key.spec.id, key.spec.masked, key.state, now, key.busy, key.spec.max_concurrency)
        blocked = key.blocked(now)
        if status.state == "ok" and blocked is not None:
            # Held back by what only this instance knows: the rpm/tpm hints or requests not yet answered.
            status = dataclasses.replace(status, state="throttled", reason=blocked[0])
        statuses.append(status)
    return statuses
