"""Rows for `llmitm keys`: every configured key's state as the state store has it, so the table works
beside a running proxy (SQLite in WAL mode, or the shared Redis). Which keys and which store come from
the caller (llmitm.provider_pools reads them from the config)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from .keystate import KeyState
from .settings import KeySpec
from .status import KeyStatus, key_status
from .stores import Store, open_store

KeysByProvider = Mapping[str, Sequence[KeySpec]]


async def read_key_statuses(
    keys: KeysByProvider, store: Store, clock: Callable[[], float] = time.time
) -> list[KeyStatus]:
    rows: list[KeyStatus] = []
    now = clock()
    for provider, specs in keys.items():
        stored = await store.load(provider, [s.id for s in specs])
        for spec in specs:
            fields = stored.get(spec.id, {})
            # State learned for another secret under this id is not this key's (the pool ignores it too).
            state = KeyState.from_fields(fields) if fields.get("fingerprint") == spec.fingerprint else KeyState()
            in_flight = fields.get("in_flight", 0) if isinstance(fields.get("in_flight"), int) else 0
            rows.append(key_status(provider, spec.id, spec.masked, state, now, in_flight, spec.max_concurrency))
    return rows


def key_rows(keys: KeysByProvider, state_url: str, clock: Callable[[], float] = time.time) -> list[KeyStatus]:
    """Synchronous entry for the CLI: opens the store, reads every key, closes the store."""

    async def read() -> list[KeyStatus]:
        # No state file yet (the proxy never ran): every key is fresh; do not create the file here.
        missing = state_url.startswith("sqlite://") and not Path(state_url.removeprefix("sqlite://")).exists()
        store = open_store("memory" if missing else state_url)
        try:
            return await read_key_statuses(keys, store, clock)
        finally:
            await store.close()

    return asyncio.run(read())


def _when(epoch: float | None, now: float) -> str:
    if epoch is None:
        return "-"
    stamp = datetime.fromtimestamp(epoch, tz=UTC).strftime("%H:%M:%SZ")
    return f"{stamp} (in {max(0.0, epoch - now):.0f}s)"


def format_key_table(rows: list[KeyStatus], now: float | None = None) -> str:
    """A plain-text table, one line per key."""
    now = time.time() if now is None else now
    header = ["PROVIDER", "KEY", "SECRET", "STATE", "COOLDOWN UNTIL", "IN FLIGHT", "REMAINING", "REQUESTS",
              "TOKENS IN/OUT", "ERRORS", "REASON"]
    lines = [header]
    for r in rows:
        remaining = " ".join(f"{name}={n}" for name, n in r.remaining.items()) or "-"
        lines.append([r.provider, r.key_id, r.masked, r.state, _when(r.cooldown_until, now), str(r.in_flight),
                      remaining, str(r.requests), f"{r.input_tokens}/{r.output_tokens}", str(r.errors),
                      r.reason or "-"])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines)
