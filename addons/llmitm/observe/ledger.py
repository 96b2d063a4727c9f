"""The usage ledger: one row per upstream attempt (so a retried request has a row per try), kept in
SQLite beside the pool state or shared through Redis, and summed by `llmitm usage`.

Writing never slows or fails a request: `LedgerWriter.record` only appends to a bounded in-memory
queue; a background task writes batches off the event loop, and a full queue or a failed write is
logged and counted (`dropped`, `failed`), never raised. With Redis every instance adds into the same
per-bucket totals, so each reports the same numbers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol

from ..pool.tasks import stop_task

log = logging.getLogger(__name__)

DIMENSIONS = ("day", "client", "route", "provider", "model", "key")
TOTALS = ("requests", "input", "cache_read", "cache_write", "output", "reasoning", "errors", "cost", "unpriced")


@dataclass(frozen=True)
class LedgerRow:
    at: float  # unix time the attempt started
    client: str  # the client's name, or the app credential's fingerprint
    route: str
    provider: str
    model: str  # the upstream model
    key: str  # the key id (never the key)
    status: int | None  # None: no answer (connection error, client abort)
    input: int = 0  # canonical: includes cache reads and writes
    cache_read: int = 0
    cache_write: int = 0
    output: int = 0
    reasoning: int = 0
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    attempt: int = 1  # 1 for the first try of a request
    cost: float | None = None  # USD; None: the model has no price

    @property
    def day(self) -> str:
        return time.strftime("%Y-%m-%d", time.gmtime(self.at))


class LedgerStore(Protocol):
    def append(self, rows: list[LedgerRow]) -> None:
        """Persist a batch (called off the event loop)."""

    def totals(self, since: float, by: tuple[str, ...]) -> list[dict[str, Any]]:
        """Sums of TOTALS grouped by the DIMENSIONS in `by`, over rows since `since`."""

    def close(self) -> None: ...


def _error(row: LedgerRow) -> int:
    return 0 if row.status is not None and row.status < 400 else 1


class SqliteLedger:
    """The `ledger` table in its own SQLite file (WAL; created 0600 like the state file)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.touch(mode=0o600, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        # NORMAL, as for the pool's state file: with WAL it cannot corrupt, and a power cut loses at
        # most the last batch; FULL fsyncs every batch, which the benchmark showed as 2 ms of kernel
        # CPU per commit and the writer thread's largest cost.
        self.db.execute("PRAGMA synchronous=NORMAL")
        for side in (self.path.with_name(self.path.name + "-wal"), self.path.with_name(self.path.name + "-shm")):
            if side.exists():
                side.chmod(0o600)
        columns = ", ".join(f.name for f in fields(LedgerRow))
        self.db.execute(f"CREATE TABLE IF NOT EXISTS ledger ({columns}, day)")
        self.db.execute("CREATE INDEX IF NOT EXISTS ledger_at ON ledger (at)")

    def append(self, rows: list[LedgerRow]) -> None:
        names = [f.name for f in fields(LedgerRow)]
        marks = ", ".join("?" for _ in range(len(names) + 1))
        with self.db:
            self.db.executemany(f"INSERT INTO ledger ({', '.join(names)}, day) VALUES ({marks})",
                                [(*astuple_row(r), r.day) for r in rows])

    def totals(self, since: float, by: tuple[str, ...]) -> list[dict[str, Any]]:
        group = ", ".join(by)
        sums = ("COUNT(*) AS requests, SUM(input), SUM(cache_read), SUM(cache_write), SUM(output), SUM(reasoning), "
                "SUM(CASE WHEN status IS NULL OR status >= 400 THEN 1 ELSE 0 END), SUM(cost), "
                "SUM(CASE WHEN cost IS NULL AND status < 400 THEN 1 ELSE 0 END)")
        sql = f"SELECT {group + ', ' if group else ''}{sums} FROM ledger WHERE at >= ?"
        sql += f" GROUP BY {group} ORDER BY {group}" if group else ""
        out = []
        for values in self.db.execute(sql, (since,)):
            row = dict(zip(by, values[: len(by)], strict=True))
            row.update(zip(TOTALS, (v or 0 for v in values[len(by):]), strict=True))
            out.append(row)
        return [r for r in out if r["requests"]]

    def close(self) -> None:
        self.db.close()


def astuple_row(row: LedgerRow) -> tuple:
    return tuple(getattr(row, f.name) for f in fields(LedgerRow))


class RedisLedger:
    """Shared totals: one hash per (day, client, route, provider, model, key) bucket, incremented by
    every instance; `totals` regroups the buckets. Cost is kept in micro-dollars (integers add exactly)."""

    PREFIX = "llmitm:ledger:"

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url)

    def append(self, rows: list[LedgerRow]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for r in rows:
            bucket = self.PREFIX + json.dumps([r.day, r.client, r.route, r.provider, r.model, r.key])
            for name, value in (("requests", 1), ("input", r.input), ("cache_read", r.cache_read),
                                ("cache_write", r.cache_write), ("output", r.output), ("reasoning", r.reasoning),
                                ("errors", _error(r)), ("cost_micro", round((r.cost or 0) * 1_000_000)),
                                ("unpriced", int(r.cost is None and not _error(r)))):
                if value:
                    pipe.hincrby(bucket, name, value)
        pipe.execute()

    def totals(self, since: float, by: tuple[str, ...]) -> list[dict[str, Any]]:
        first_day = time.strftime("%Y-%m-%d", time.gmtime(since))
        grouped: dict[tuple, dict[str, Any]] = {}
        for name in self.client.scan_iter(match=self.PREFIX + "*", count=1000):
            dims = dict(zip(DIMENSIONS, json.loads(name[len(self.PREFIX):]), strict=True))
            if dims["day"] < first_day:
                continue
            values = {k.decode(): int(v) for k, v in self.client.hgetall(name).items()}
            key = tuple(dims[d] for d in by)
            row = grouped.setdefault(key, {**dict(zip(by, key, strict=True)), **dict.fromkeys(TOTALS, 0)})
            for total in TOTALS:
                row[total] += values.get("cost_micro", 0) / 1_000_000 if total == "cost" else values.get(total, 0)
        return [grouped[k] for k in sorted(grouped)]

    def close(self) -> None:
        self.client.close()


def open_ledger(state_url: str) -> LedgerStore | None:
    """The ledger that goes with a pool state URL: SQLite beside the state file, Redis shared; none for memory."""
    from ..pool.stores import sqlite_path

    if (path := sqlite_path(state_url)) is not None:
        state = Path(path)
        return SqliteLedger(state.with_name(state.stem + "-ledger.db"))
    if state_url.startswith(("redis://", "rediss://")):
        return RedisLedger(state_url)
    return None


class LedgerWriter:
    """Batches rows off the request path. `record` never blocks and never raises."""

    def __init__(self, store: LedgerStore, *, max_queue: int = 10_000, batch: int = 500, interval: float = 0.5) -> None:
        self.store, self.max_queue, self.batch, self.interval = store, max_queue, batch, interval
        self.queue: list[LedgerRow] = []
        self.dropped = 0
        self.failed = 0
        self.written = 0
        self._task: asyncio.Task | None = None

    def record(self, row: LedgerRow) -> None:
        if len(self.queue) >= self.max_queue:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("llmitm: usage ledger queue full: %d rows dropped", self.dropped)
            return
        self.queue.append(row)
        if self._task is None or self._task.done():
            try:
                self._task = asyncio.get_running_loop().create_task(self._drain())
            except RuntimeError:  # no loop (a test, a CLI): written on flush()
                pass

    async def _drain(self) -> None:
        while self.queue:
            await asyncio.sleep(self.interval)
            await self.flush()

    async def flush(self) -> None:
        while self.queue:
            rows, self.queue = self.queue[: self.batch], self.queue[self.batch:]
            try:
                await asyncio.to_thread(self.store.append, rows)
                self.written += len(rows)
            except Exception:
                self.failed += len(rows)
                log.exception("llmitm: writing %d usage ledger rows failed", len(rows))

    async def close(self) -> None:
        if self._task is not None:
            await stop_task(self._task)  # unlike awaiting it under `except CancelledError`, keeps our own cancellation
        await self.flush()
        self.store.close()

