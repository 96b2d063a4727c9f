from __future__ import annotations

import asyncio

from pool_helpers import FakeClock

from llmitm.config import parse_config
from llmitm.pool import KeyPool, Lease, open_store
from llmitm.pool.table import format_key_table, key_rows, read_key_statuses
from llmitm.provider_pools import pool_settings, pooled_keys, state_url_for

CONFIG = """
providers:
  openai:
    protocol: openai-chat
    base_url: https://api.openai.com
    keys:
      - sk-first-secret-0001
      - {key: sk-second-secret-0002, id: backup, max_concurrency: 2}
routes:
  - provider: openai
"""


def test_state_url_defaults_beside_the_config(tmp_path):
    config = parse_config(CONFIG, str(tmp_path / "llmitm.yaml"), env={})
    assert state_url_for(config) == f"sqlite:///{tmp_path}/.llmitm-state.db"
    assert state_url_for(config.model_copy(update={"state": "redis://h:1/0"})) == "redis://h:1/0"


def test_rows_read_from_the_store_a_running_proxy_writes(tmp_path):
    config = parse_config(CONFIG, str(tmp_path / "llmitm.yaml"), env={})
    clock = FakeClock()
    url = state_url_for(config)

    async def run_proxy() -> Lease:
        store = open_store(url)
        pool = KeyPool.from_settings("openai", pool_settings("openai", config.providers["openai"]), store=store, clock=clock)
        (await pool.acquire(pin="openai#1")).release(429, {"retry-after": "30"})
        (await pool.acquire(pin="backup")).release(200, {"x-ratelimit-remaining-requests": "41",
                                                         "x-ratelimit-reset-requests": "1m0s"},
                                                   input_tokens=12, output_tokens=3)
        held = await pool.acquire(pin="backup")  # still in flight while the table is read
        await pool.close()
        await store.close()
        return held

    held = asyncio.run(run_proxy())
    first, backup = key_rows(pooled_keys(config), url, clock)
    assert (first.key_id, first.masked, first.state, first.errors) == ("openai#1", "sk-…0001", "cooling", 1)
    assert first.cooldown_until == clock.now + 30
    assert (backup.state, backup.in_flight, backup.requests, backup.input_tokens, backup.output_tokens) == (
        "ok", 1, 1, 12, 3)
    assert backup.remaining == {"requests": 41}
    text = format_key_table([first, backup], now=clock.now)
    assert "sk-first-secret" not in text and "sk-…0001" in text and "in 30s" in text
    assert text.splitlines()[0].startswith("PROVIDER")
    assert not held.released


async def test_rows_ignore_state_learned_for_another_secret(tmp_path):
    config = parse_config(CONFIG, str(tmp_path / "llmitm.yaml"), env={})
    store = open_store("memory")
    other = parse_config(CONFIG.replace("sk-first-secret-0001", "sk-other-secret-9999"), "x.yaml", env={})
    pool = KeyPool.from_settings("openai", pool_settings("openai", other.providers["openai"]), store=store)
    (await pool.acquire(pin="openai#1")).release(401)
    await pool.flush()
    rows = await read_key_statuses(pooled_keys(config), store)
    assert rows[0].state == "ok"


def test_rows_before_the_proxy_ever_ran_do_not_create_the_state_file(tmp_path):
    config = parse_config(CONFIG, str(tmp_path / "llmitm.yaml"), env={})
    rows = key_rows(pooled_keys(config), state_url_for(config))
    assert [(r.key_id, r.state, r.requests) for r in rows] == [("openai#1", "ok", 0), ("backup", "ok", 0)]
    assert not (tmp_path / ".llmitm-state.db").exists()
