"""Why the pool could not hand out a key."""

from __future__ import annotations


class PoolExhausted(Exception):
    """No key can serve now. `retry_after`: seconds until the earliest key frees up (for Retry-After)."""

    def __init__(self, retry_after: float, reason: str) -> None:
        super().__init__(f"{reason} (retry after {retry_after:.1f}s)")
        self.retry_after = max(0.0, retry_after)
        self.reason = reason


class UnknownKey(LookupError):
    """A pin or probe result named a key id that the pool does not have."""

    def __init__(self, provider: str, key_id: str) -> None:
        super().__init__(f"provider {provider!r} has no key {key_id!r}")
        self.provider = provider
        self.key_id = key_id
