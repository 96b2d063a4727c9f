"""Background upkeep in-process: a disabled key is probed through the relay (with the provider's
configured headers) and re-enabled once the upstream accepts it again; config edits hot-reload."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from llmitm import upkeep
from llmitm.relay import Relay
from tests.glue.conftest import config_text, make_config, pools_for
from tests.harness.upstream import Reply


def state_of(pool, key_id: str) -> str:
    return next(s.state for s in pool.snapshot() if s.key_id == key_id)


@asynccontextmanager
async def upkeep_of_the_openai_pool(upstream):
    """The test config's pools and a relay; `probe_once()` runs one round of upkeep probes to the end."""
    config = make_config(upstream.url)
    pools, relay = pools_for(config), Relay()

    async def probe_once() -> None:
        running: set[asyncio.Task] = set()
        await upkeep.probe_due_keys(config, pools.pools, relay, running)
        await asyncio.gather(*running)

    try:
        yield pools.get("openai"), probe_once
    finally:
        await relay.close()
        await pools.close()


async def test_a_disabled_key_is_probed_and_comes_back(upstream):
    async with upkeep_of_the_openai_pool(upstream) as (pool, probe_once):
        lease = await pool.acquire()
        lease.release(status=401, body_json={"error": {"message": "bad key"}})
        assert state_of(pool, lease.key_id) == "disabled"
        await asyncio.sleep(0.05)  # probe_interval_seconds is 0.01 in the test config
        upstream.script = lambda req: Reply.json(200, {"object": "list", "data": []})
        await probe_once()
        (probe,) = upstream.received
        assert probe.path == "/v1/models" and probe.headers["helicone-auth"].startswith("Bearer sk-helicone")
        assert state_of(pool, lease.key_id) != "disabled"


async def test_a_key_still_refused_stays_disabled(upstream):
    async with upkeep_of_the_openai_pool(upstream) as (pool, probe_once):
        lease = await pool.acquire()
        lease.release(status=401)
        await asyncio.sleep(0.05)
        upstream.script = lambda req: Reply.json(401, {"error": {"message": "still bad"}})
        await probe_once()
        assert len(upstream.received) == 1 and state_of(pool, lease.key_id) == "disabled"


def test_a_broken_config_edit_keeps_the_previous_config(tmp_path):
    path = tmp_path / "llmitm.yaml"
    path.write_text(config_text("http://127.0.0.1:9"))
    applied = []
    watcher = upkeep.ConfigWatcher(path, applied.append)
    path.write_text("providers: [this is not a mapping")
    assert watcher.check() is False and applied == []
    path.write_text(config_text("http://127.0.0.1:10"))
    assert watcher.check() is True and applied[0].providers["openai"].base_url == "http://127.0.0.1:10"
