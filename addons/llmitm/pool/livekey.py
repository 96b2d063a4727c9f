"""A key as one pool instance sees it at run time: its spec, its learned state and what only this
instance knows (its own leases, the rpm/tpm windows, requests started since the last quota snapshot)."""

from __future__ import annotations

from collections import deque

from .keystate import KeyState
from .ratelimits import Bucket
from .settings import KeySpec

HINT_WINDOW_SECONDS = 60.0  # rpm/tpm hints are per minute
UNKNOWN_FREE_SECONDS = 1.0  # how soon a key frees when that depends on a release we cannot predict


class LiveKey:
    """Runtime view of one key: its spec, its learned state and what only this instance knows."""

    def __init__(self, spec: KeySpec, state: KeyState | None = None) -> None:
        self.spec = spec
        self.state = state or KeyState(fingerprint=spec.fingerprint)
        self.in_flight = 0  # leases of this instance
        self.remote_in_flight = 0  # other instances' leases, as of the last look at a shared store
        # Requests started since the last quota snapshot: the upstream's `remaining` does not count them
        # yet, so it is lowered by this many to stop handing out a key whose last request is spent.
        self.local_spent = 0
        self.trial_in_flight = False  # a half-open breaker lets one request through
        self.recent_requests: deque[float] = deque()  # start times, for the rpm hint
        self.recent_tokens: deque[tuple[float, int]] = deque()  # (time, tokens), for the tpm hint
        self.recent_token_sum = 0
        self.version = 0  # local changes, so that a concurrent read of a shared store does not undo them
        self.flushed_version = 0

    @property
    def locally_full(self) -> bool:
        cap = self.spec.max_concurrency
        return cap is not None and self.in_flight >= cap

    @property
    def busy(self) -> int:
        return self.in_flight + self.remote_in_flight

    def prune_hints(self, now: float) -> None:
        horizon = now - HINT_WINDOW_SECONDS
        while self.recent_requests and self.recent_requests[0] <= horizon:
            self.recent_requests.popleft()
        while self.recent_tokens and self.recent_tokens[0][0] <= horizon:
            self.recent_token_sum -= self.recent_tokens.popleft()[1]

    def add_tokens(self, now: float, tokens: int) -> None:
        self.recent_tokens.append((now, tokens))
        self.recent_token_sum += tokens

    def effective_remaining(self, name: str, bucket: Bucket) -> int | None:
        if bucket.remaining is None:
            return None
        return bucket.remaining - self.local_spent if name == "requests" else bucket.remaining

    def blocked(self, now: float, ignore_cap: bool = False, tokens: int = 0) -> tuple[str, float | None] | None:
        """None when the key can take a request now; else (reason, when it frees up or None if that
        depends on a release). tokens: the request's estimated input tokens, checked against token quota."""
        s = self.state
        if s.disabled:
            return "disabled", max(s.next_probe_at, now + UNKNOWN_FREE_SECONDS)
        if s.cooldown_until > now:
            return "cooling down", s.cooldown_until
        if s.breaker_until > now:
            return "circuit breaker open", s.breaker_until
        if s.breaker_until and self.trial_in_flight:
            return "circuit breaker half-open", None
        spent_until = [
            b.reset_at
            for name, b in s.quota.items()
            if b.reset_at is not None and b.reset_at > now and b.remaining is not None
            and (self.effective_remaining(name, b) or 0) < _needed(name, b, tokens)
        ]
        if spent_until:
            return "quota spent", max(spent_until)
        self.prune_hints(now)
        if self.spec.rpm is not None and len(self.recent_requests) >= self.spec.rpm:
            return "rpm hint reached", self.recent_requests[0] + HINT_WINDOW_SECONDS
        if self.spec.tpm is not None and self.recent_tokens and self.recent_token_sum + max(tokens, 1) > self.spec.tpm:
            return "tpm hint reached", self.recent_tokens[0][0] + HINT_WINDOW_SECONDS
        cap = self.spec.max_concurrency
        if not ignore_cap and cap is not None and self.busy >= cap:
            return "at concurrency cap", None
        return None

    def remaining_fraction(self, now: float) -> float:
        """The scarcest quota dimension's share left; 1.0 when nothing is known."""
        fractions = [1.0]
        for name, b in self.state.quota.items():
            if b.reset_at is not None and b.reset_at <= now:
                continue  # refilled since the snapshot
            remaining = self.effective_remaining(name, b)
            if remaining is not None and b.limit:
                fractions.append(max(0.0, remaining / b.limit))
        if self.spec.rpm is not None:
            fractions.append(max(0.0, 1 - len(self.recent_requests) / self.spec.rpm))
        if self.spec.tpm is not None:
            fractions.append(max(0.0, 1 - self.recent_token_sum / self.spec.tpm))
        return min(fractions)


def _needed(bucket_name: str, bucket: Bucket, tokens: int) -> int:
    """How much a request needs left in a bucket: one of anything; of input-token buckets, its estimated
    tokens, unless it exceeds the whole bucket (then waiting cannot help: let the upstream decide)."""
    is_input_tokens = bucket_name in ("tokens", "input-tokens") or bucket_name.startswith("tokens_")
    if tokens > 1 and is_input_tokens and (bucket.limit is None or tokens <= bucket.limit):
        return tokens
    return 1
