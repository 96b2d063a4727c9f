"""What a finished attempt does to its key's health: a table from outcome to effect, kept apart from I/O.

`transition()` is pure: it reads the key's state and the attempt's result and returns the fields to
change and the counters to add; the pool applies them, queues the write and logs the note. One row per
outcome (see outcome.py for how a response is classified, and pool/__init__.py for the summary table).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .keystate import KeyState
from .outcome import Outcome
from .settings import CooldownSettings


@dataclass(frozen=True)
class Attempt:
    """One released attempt, as the transition sees it."""

    outcome: Outcome
    now: float
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None  # what the upstream asked for (Retry-After, retry-after-ms, retryDelay)
    trial: bool = False  # the one request a half-open breaker let through


@dataclass(frozen=True)
class Transition:
    fields: dict[str, Any] = field(default_factory=dict)  # KeyState fields to overwrite
    counters: dict[str, int] = field(default_factory=dict)  # KeyState counters to add to
    note: tuple[int, str] | None = None  # (log level, what happened to the key), for the pool's log


Effect = Callable[[KeyState, Attempt, CooldownSettings], Transition]


def _no_change(state: KeyState, attempt: Attempt, cooldown: CooldownSettings) -> Transition:
    return Transition()


def _close_breaker(state: KeyState, attempt: Attempt, cooldown: CooldownSettings) -> Transition:
    if not (state.failures or state.breaker_until):
        return Transition()
    return Transition(fields={"failures": 0, "breaker_until": 0.0})


def _cool_down(state: KeyState, attempt: Attempt, cooldown: CooldownSettings) -> Transition:
    now = attempt.now
    if attempt.outcome is Outcome.QUOTA_EXHAUSTED:
        seconds = cooldown.max_seconds  # billing, not a minute window
    elif attempt.retry_after is not None:
        seconds = attempt.retry_after
    else:
        # No Retry-After: a spent bucket's reset is the next best estimate, then the default.
        resets = [b.reset_at - now for b in state.quota.values() if b.spent and b.reset_at and b.reset_at > now]
        seconds = max(resets) if resets else cooldown.default_seconds
    seconds = min(seconds, cooldown.max_seconds)
    outcome = attempt.outcome.value
    reason = f"{outcome} (HTTP {attempt.status})" if attempt.status is not None else outcome
    return Transition(
        fields={"cooldown_until": max(state.cooldown_until, now + seconds), "cooldown_reason": reason},
        note=(logging.INFO, f"cooling down for {seconds:.1f}s: {reason}"),
    )


def _disable(state: KeyState, attempt: Attempt, cooldown: CooldownSettings) -> Transition:
    interval = cooldown.probe_interval_seconds
    return Transition(
        fields={"disabled": True, "disabled_reason": f"HTTP {attempt.status} from upstream",
                "next_probe_at": attempt.now + interval},
        note=(logging.WARNING, f"disabled after HTTP {attempt.status}; probing every {interval:g}s"),
    )


def _count_failure(state: KeyState, attempt: Attempt, cooldown: CooldownSettings) -> Transition:
    failures = state.failures + 1
    if not (attempt.trial or failures >= cooldown.failure_threshold):
        return Transition(fields={"failures": failures, "breaker_until": state.breaker_until})
    cause = attempt.error or f"HTTP {attempt.status}"
    return Transition(
        fields={"failures": failures, "breaker_until": attempt.now + cooldown.breaker_seconds},
        note=(logging.WARNING,
              f"circuit breaker open for {cooldown.breaker_seconds:g}s after {failures} failures ({cause})"),
    )


@dataclass(frozen=True)
class Rule:
    counts_as_request: bool  # an answer (or part of one) came back: usage counters count it
    counts_as_error: bool
    effect: Effect


RULES: dict[Outcome, Rule] = {
    # outcome                      request  error  effect on the key's health
    Outcome.UNKNOWN: Rule(False, False, _no_change),  # no answer to judge: the slot is freed, nothing else
    Outcome.ABORTED: Rule(True, False, _no_change),  # the app left mid-answer: not the key's fault
    Outcome.SUCCESS: Rule(True, False, _close_breaker),
    Outcome.RATE_LIMITED: Rule(True, True, _cool_down),
    Outcome.OVERLOADED: Rule(True, True, _cool_down),
    Outcome.QUOTA_EXHAUSTED: Rule(True, True, _cool_down),
    Outcome.AUTH_FAILED: Rule(True, True, _disable),
    Outcome.FAILURE: Rule(True, True, _count_failure),
}


def transition(state: KeyState, attempt: Attempt, cooldown: CooldownSettings) -> Transition:
    """The change `attempt` makes to a key in `state` (which is not modified)."""
    rule = RULES[attempt.outcome]
    health = rule.effect(state, attempt, cooldown)
    counters: dict[str, int] = {}
    if rule.counts_as_request:
        counters["requests"] = 1
    # A 4xx that is the request's fault (400, 404…) leaves the key healthy but is still an error answer.
    http_error = attempt.status is not None and attempt.status >= 400 and attempt.outcome is not Outcome.UNKNOWN
    if rule.counts_as_error or http_error:
        counters["errors"] = 1
    return Transition(fields=health.fields, counters=counters, note=health.note)
