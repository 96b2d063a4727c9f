"""Pool state in a local SQLite file (the default): cooldowns, disabled keys, quota and usage survive a
restart, and `llmitm keys` can read them beside a running proxy (WAL lets readers in while it writes).

sqlite3 blocks, so every call runs in a worker thread; the pool's writer batches changes, so that is one
short transaction per batch rather than per request.

The file (and SQLite's -wal/-shm beside it, which take its mode) is private to its owner (0600): key ids,
usage and which keys are disabled are nobody else's business. A file that is not a readable SQLite
database stops start-up with CorruptStateFile, which says which file and what to do; llmitm does not
move or replace it itself (the path may name another program's database).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from ..errors import CorruptStateFile, StateStoreError
from ..keystate import COUNTERS, KeyUpdate
from .base import Store

_SCHEMA = """
CREATE TABLE IF NOT EXISTS key_fields (
    provider TEXT NOT NULL, key_id TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (provider, key_id, name)
);
CREATE TABLE IF NOT EXISTS key_counters (
    provider TEXT NOT NULL, key_id TEXT NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL,
    PRIMARY KEY (provider, key_id, name)
);
"""


_PRIVATE = 0o600
_SIDE_FILES = ("-wal", "-shm")


def _create_private(path: Path) -> None:
    """Create the state file 0600 before SQLite opens it: SQLite creates a file 0644 (less the umask) and
    gives its -wal/-shm the database file's mode."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, _PRIVATE)
    except FileNotFoundError:
        raise StateStoreError(
            f"cannot create the pool state file {path}: its folder {path.parent} does not exist "
            "(create it, or point `state:` at an existing folder)"
        ) from None
    except OSError as e:
        raise StateStoreError(f"cannot create the pool state file {path}: {e.strerror}") from None
    os.close(fd)
    _tighten(path)


def _tighten(path: Path) -> None:
    for name in (str(path), *(f"{path}{suffix}" for suffix in _SIDE_FILES)):
        try:
            if os.stat(name).st_mode & 0o077:
                os.chmod(name, _PRIVATE)
        except OSError:
            continue  # absent, or not ours to change: SQLite still works


class SqliteStore(Store):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()  # one connection, used from worker threads one at a time
        _create_private(self.path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=5.0, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL: a power cut may lose the last batch, never corrupt the file; FULL would fsync per batch.
            self._db.execute("PRAGMA synchronous=NORMAL")
            [verdict] = self._db.execute("PRAGMA quick_check").fetchone()
            if verdict != "ok":
                raise CorruptStateFile(str(self.path), verdict)
            self._db.executescript(_SCHEMA)
        except sqlite3.OperationalError as e:  # locked, read-only, out of space: not the file's content
            self._db.close()
            raise StateStoreError(f"cannot use the pool state file {self.path}: {e}") from None
        except sqlite3.DatabaseError as e:  # "file is not a database", "database disk image is malformed"
            self._db.close()
            raise CorruptStateFile(str(self.path), str(e)) from None
        except BaseException:
            self._db.close()
            raise
        _tighten(self.path)  # -wal/-shm left by an older llmitm that created them world-readable

    def load_sync(self, provider: str, key_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        wanted = set(key_ids)
        result: dict[str, dict[str, Any]] = {}
        with self._lock:
            fields = self._db.execute(
                "SELECT key_id, name, value FROM key_fields WHERE provider = ?", (provider,)
            ).fetchall()
            counters = self._db.execute(
                "SELECT key_id, name, value FROM key_counters WHERE provider = ?", (provider,)
            ).fetchall()
        for key_id, name, value in fields:
            if key_id in wanted:
                try:
                    result.setdefault(key_id, {})[name] = json.loads(value)
                except ValueError:
                    continue  # a damaged value is dropped, not fatal: the pool relearns it
        for key_id, name, value in counters:
            if key_id in wanted:
                result.setdefault(key_id, {})[name] = int(value)
        return result

    def write_sync(self, provider: str, updates: Mapping[str, KeyUpdate]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for key_id, update in updates.items():
                    for name, value in update.fields.items():
                        if name in COUNTERS:
                            self._db.execute(
                                "INSERT INTO key_counters VALUES (?, ?, ?, ?) "
                                "ON CONFLICT DO UPDATE SET value = excluded.value",
                                (provider, key_id, name, int(value)),
                            )
                        else:
                            self._db.execute(
                                "INSERT INTO key_fields VALUES (?, ?, ?, ?) "
                                "ON CONFLICT DO UPDATE SET value = excluded.value",
                                (provider, key_id, name, json.dumps(value)),
                            )
                    for name, n in update.incr.items():
                        self._db.execute(
                            "INSERT INTO key_counters VALUES (?, ?, ?, ?) "
                            "ON CONFLICT DO UPDATE SET value = value + excluded.value",
                            (provider, key_id, name, int(n)),
                        )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    async def load(self, provider: str, key_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        return await asyncio.to_thread(self.load_sync, provider, list(key_ids))

    async def write(self, provider: str, updates: Mapping[str, KeyUpdate]) -> None:
        if updates:
            await asyncio.to_thread(self.write_sync, provider, dict(updates))

    async def close(self) -> None:
        with self._lock:
            self._db.close()
