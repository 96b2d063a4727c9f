"""Rows for `llmitm keys`: every configured key's state as the state store has it, so the table works
beside a running proxy (SQLite in WAL mode, or the shared Redis)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from llmitm.config import LlmitmConfig

from .keystate import KeyState, keys_from_config
from .status import KeyStatus, key_status
from .store import Store, open_store

STATE_FILE_NAME = ".llmitm-state.db"


def state_url_for(config: LlmitmConfig) -> str:
    """`state:` from the config; else SQLite beside the config file; else (built-in default) memory."""
    if config.state:
        return config.state
    source = Path(config.source)
    if config.source.startswith("<") or not source.suffix:
        return "memory"
    return f"sqlite:///{source.resolve().parent / STATE_FILE_NAME}"


async def read_key_statuses(
    config: LlmitmConfig, store: Store, clock: Callable[[], float] = time.time
) -> list[KeyStatus]:
    rows: list[KeyStatus] = []
    now = clock()
    for provider, provider_config in config.providers.items():
        specs = keys_from_config(provider, provider_config)
        stored = await store.load(provider, [s.id for s in specs])
        for spec in specs:
            fields = stored.get(spec.id, {})
            # State learned for another secret under this id is not this key's (the pool ignores it too).
            state = KeyState.from_fields(fields) if fields.get("fingerprint") == spec.fingerprint else KeyState()
            in_flight = fields.get("in_flight", 0) if isinstance(fields.get("in_flight"), int) else 0
            rows.append(key_status(provider, spec.id, spec.masked, state, now, in_flight, spec.max_concurrency))
    return rows


def key_rows(
    config: LlmitmConfig, state_url: str | None = None, clock: Callable[[], float] = time.time
) -> list[KeyStatus]:
    """Synchronous entry for the CLI: opens the store, reads every key, closes the store."""

    url = state_url or state_url_for(config)

    async def read() -> list[KeyStatus]:
        # No state file yet (the proxy never ran): every key is fresh; do not create the file here.
        missing = url.startswith("sqlite://") and not Path(url.removeprefix("sqlite://")).exists()
        store = open_store("memory" if missing else url)
        try:
            return await read_key_statuses(config, store, clock)
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
