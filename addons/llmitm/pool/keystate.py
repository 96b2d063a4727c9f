"""What the pool has learned about a key (KeyState), and partial writes of it (KeyUpdate).

KeyState is what persists in the state store: it converts to and from a flat mapping of JSON values so
that every store (memory, SQLite, Redis hash) can hold it field by field and merge partial updates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .ratelimits import Bucket

COUNTERS: tuple[str, ...] = ("requests", "input_tokens", "output_tokens", "errors")
# Persisted fields other than the counters (which travel as increments, see KeyUpdate).
FIELDS: tuple[str, ...] = (
    "fingerprint",
    "cooldown_until",
    "cooldown_reason",
    "disabled",
    "disabled_reason",
    "next_probe_at",
    "failures",
    "breaker_until",
    "quota",
    "last_used",
    "in_flight",
)


@dataclass
class KeyState:
    """Learned, persisted state of one key. Times are epoch seconds on the pool's clock; 0 means unset."""

    fingerprint: str = ""
    cooldown_until: float = 0.0
    cooldown_reason: str = ""
    disabled: bool = False
    disabled_reason: str = ""
    next_probe_at: float = 0.0
    failures: int = 0  # consecutive 5xx / connection failures, for the circuit breaker
    breaker_until: float = 0.0  # > 0: the breaker tripped; open until then, half-open after
    quota: dict[str, Bucket] = field(default_factory=dict)
    last_used: float = 0.0
    in_flight: int = 0  # written by single-instance stores only, so that `llmitm keys` can show it
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    errors: int = 0

    def fields(self, names: Iterable[str] = FIELDS) -> dict[str, Any]:
        """The named fields (counters included) as JSON values."""
        return {name: self.field(name) for name in names}

    def field(self, name: str) -> Any:
        if name == "quota":
            return {bucket: [b.limit, b.remaining, b.reset_at] for bucket, b in self.quota.items()}
        if name not in FIELDS and name not in COUNTERS:
            raise KeyError(name)
        return getattr(self, name)

    @classmethod
    def from_fields(cls, stored: Mapping[str, Any]) -> KeyState:
        state = cls()
        for name in ("fingerprint", "cooldown_reason", "disabled_reason"):
            if isinstance(stored.get(name), str):
                setattr(state, name, stored[name])
        for name in ("cooldown_until", "next_probe_at", "breaker_until", "last_used"):
            if isinstance(stored.get(name), (int, float)):
                setattr(state, name, float(stored[name]))
        for name in ("failures", "in_flight", *COUNTERS):
            if isinstance(stored.get(name), (int, float)):
                setattr(state, name, int(stored[name]))
        state.disabled = bool(stored.get("disabled", False))
        quota = stored.get("quota")
        if isinstance(quota, dict):
            for name, triple in quota.items():
                if isinstance(triple, list) and len(triple) == 3:
                    state.quota[name] = Bucket(limit=triple[0], remaining=triple[1], reset_at=triple[2])
        return state


@dataclass
class KeyUpdate:
    """A partial write: fields to overwrite and counters to add to."""

    fields: dict[str, Any] = field(default_factory=dict)
    incr: dict[str, int] = field(default_factory=dict)

    def merge(self, later: KeyUpdate) -> None:
        self.fields.update(later.fields)
        for name, n in later.incr.items():
            self.incr[name] = self.incr.get(name, 0) + n
