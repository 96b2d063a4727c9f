"""Where pool state lives: the interface every store implements, and `open_store` to pick one by URL.

The pool keeps an in-memory copy of every key's state and decides on it; a store persists that state
(SQLite) or shares it between llmitm instances (Redis). Writes leave the hot path: the pool queues them
and a background writer applies them in batches. Reads happen once at start and, for shared stores,
again whenever the pool's cached copy is older than a short TTL.
"""

from __future__ import annotations

from .base import SlotClaim, Store

__all__ = ["SlotClaim", "Store", "open_store"]


def sqlite_path(url: str) -> str | None:
    """The file of a `sqlite://` state URL (`sqlite:///abs/path` -> "/abs/path", `sqlite://rel.db` ->
    "rel.db"), or None for another kind of store."""
    return url.removeprefix("sqlite://") if url.startswith("sqlite://") else None


def open_store(url: str) -> Store:
    """`memory`, `sqlite:///path/to/state.db` (or `sqlite://relative.db`) or `redis://host:port/db`."""
    if url == "memory":
        from .memory import MemoryStore

        return MemoryStore()
    if (path := sqlite_path(url)) is not None:
        from .sqlite import SqliteStore

        return SqliteStore(path)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from .redis import RedisStore

        return RedisStore(url)
    raise ValueError(f"unknown state store {url!r}: use 'memory', 'sqlite:///path' or 'redis://host:port/db'")
