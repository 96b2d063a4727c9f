"""What a pool is told: its keys and how to treat them. Plain dataclasses, so that the pool depends on
nothing of llmitm's config; `llmitm.provider_pools` converts the YAML config into these."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

StrategyName = Literal["round-robin", "weighted", "least-busy", "most-remaining"]


def mask_secret(secret: str) -> str:
    """Enough of a key to tell keys apart, never enough to use it (the same rule as llmitm.config's)."""
    if len(secret) <= 8:
        return "***"
    return f"{secret[:3]}…{secret[-4:]}"


@dataclass(frozen=True)
class KeySpec:
    """One upstream key as configured."""

    id: str
    secret: str = field(repr=False)
    weight: float = 1.0
    max_concurrency: int | None = None
    rpm: int | None = None  # requests-per-minute hint, enforced locally when the upstream sends no headers
    tpm: int | None = None  # tokens-per-minute hint, likewise

    @property
    def masked(self) -> str:
        return mask_secret(self.secret)

    @property
    def fingerprint(self) -> str:
        """Identifies the secret without revealing it: state learned for one secret is not applied to another
        that reuses its id (default ids are positional, so reordering keys in the config shifts them)."""
        return hashlib.sha256(self.secret.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CooldownSettings:
    default_seconds: float = 30.0  # a 429 without Retry-After
    max_seconds: float = 300.0  # Retry-After is capped here
    failure_threshold: int = 3  # consecutive 5xx/connection errors that trip the breaker
    breaker_seconds: float = 30.0
    probe_interval_seconds: float = 60.0  # how often a disabled key is re-tried


@dataclass(frozen=True)
class PoolSettings:
    """Everything a hot reload may change about one provider's pool."""

    keys: tuple[KeySpec, ...]
    strategy: StrategyName = "most-remaining"
    cooldown: CooldownSettings = CooldownSettings()
    max_wait: float = 10.0  # seconds an acquire may queue for a busy key before PoolExhausted

    def __post_init__(self) -> None:
        from .strategies import STRATEGIES  # checked here so that a reload can fail before it changes anything

        check_unique_ids(self.keys)
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}: use one of {', '.join(STRATEGIES)}")


class DuplicateKeyId(ValueError):
    """Two keys of one provider share an id: pins, state and logs could not tell them apart."""


def check_unique_ids(keys: Sequence[KeySpec]) -> None:
    ids = [k.id for k in keys]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise DuplicateKeyId(f"duplicate key ids {duplicates}: give each key its own `id:`")
