"""Why the pool could not hand out a key."""

from __future__ import annotations

import shlex


class PoolExhausted(Exception):
    """No key can serve now. `retry_after`: seconds until the earliest key frees up (for Retry-After)."""

    def __init__(self, retry_after: float, reason: str) -> None:
        super().__init__(f"{reason} (retry after {retry_after:.1f}s)")
        self.retry_after = max(0.0, retry_after)
        self.reason = reason


_SHOWN_ID_CHARS = 40


def shown_key_id(key_id: str) -> str:
    """A key id as errors may echo it: a pin comes from the app's request (x-llmitm-key) and may be huge
    or be a secret pasted by mistake, so a long one is cut to its start and its length."""
    if len(key_id) <= _SHOWN_ID_CHARS:
        return repr(key_id)
    return f"{key_id[:12]!r}… ({len(key_id)} characters)"


class UnknownKey(LookupError):
    """A pin or probe result named a key id that the pool does not have (the caller's mistake)."""

    def __init__(self, provider: str, key_id: str) -> None:
        super().__init__(f"provider {provider!r} has no key {shown_key_id(key_id)}")
        self.provider = provider
        self.key_id = key_id[:_SHOWN_ID_CHARS]


class StateStoreError(Exception):
    """The state store named by `state:` cannot be used; the message says what to do."""


class CorruptStateFile(StateStoreError):
    """The SQLite state file exists but is not a readable llmitm state database.

    llmitm stops rather than replacing it: the path may point at another program's database, and the
    file holds what the pool learned (disabled keys, cooldowns, usage). Move it aside to start fresh."""

    def __init__(self, path: str, cause: str) -> None:
        aside = f"mv {shlex.quote(path)} {shlex.quote(path + '.corrupt')}"
        super().__init__(
            f"the pool state file {path} is not a readable SQLite database ({cause}). If it is llmitm's, "
            f"move it aside ({aside}) and start again: llmitm creates a fresh one, and keys "
            "start with no cooldowns, disabled flags or usage counts. Otherwise point `state:` elsewhere."
        )
        self.path = path
