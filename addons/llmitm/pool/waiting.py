"""When no key can serve at once: how long a caller waits, and what it is told when waiting cannot help.

Pure functions of the keys' runtime views (livekey.LiveKey) and the clock, used by KeyPool.acquire().
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from .errors import PoolExhausted
from .livekey import UNKNOWN_FREE_SECONDS, LiveKey

# Releases on other instances wake no local waiter, so waiters poll a shared store: from 50 ms, doubling
# to 0.5 s, so that many waiters on a busy pool do not flood Redis.
SHARED_POLL_SECONDS = (0.05, 0.5)


def wait_seconds(
    candidates: Sequence[LiveKey], now: float, budget: float, tokens: int, polls: int, shared: bool
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
    if shared:
        first, most = SHARED_POLL_SECONDS
        wait = min(wait, first * 2 ** min(polls, 10), most)
    return min(wait, budget)


def exhausted(
    provider: str,
    keys: Sequence[tuple[str, LiveKey]],
    now: float,
    exclude: Collection[str],
    tokens: int,
    default_retry_after: float,
    reason: str | None = None,
) -> PoolExhausted:
    """The error for a caller no key can serve. Retry-After is for the client's next request, which
    excludes nothing: it is when any of `keys` (the pinned one, if pinned) frees up."""
    frees: list[float] = []
    reasons: dict[str, int] = {}
    for name, k in keys:
        blocked = k.blocked(now, tokens=tokens)
        if blocked is None:
            why, free_at = ("already tried" if name in exclude else "busy"), now + UNKNOWN_FREE_SECONDS
        else:
            why, free_at = blocked[0], blocked[1] if blocked[1] is not None else now + UNKNOWN_FREE_SECONDS
        frees.append(free_at)
        reasons[why] = reasons.get(why, 0) + 1
    if not frees:
        return PoolExhausted(default_retry_after, reason or f"{provider}: no keys configured")
    summary = ", ".join(f"{n} {why}" for why, n in sorted(reasons.items(), key=lambda kv: -kv[1]))
    prefix = f"{provider}: {reason}; " if reason else f"{provider}: no key can serve; "
    return PoolExhausted(min(frees) - now, prefix + f"keys: {summary}")
