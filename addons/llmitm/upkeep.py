"""Background upkeep while the proxy runs: config hot reload and probes of disabled keys.

Both run on one slow tick, off the request path. A probe is one cheap authenticated request (a model
list) through the relay's HTTP client; its result goes back to the pool, which re-enables a key that
works again (new-api's disabled keys never recover: #3537).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from .config import ConfigError, LlmitmConfig, load_config
from .plan import upstream_url
from .pool.tasks import CancelGuard, stop_tasks
from .protocols.registry import REGISTRY

log = logging.getLogger(__name__)

TICK_SECONDS = 0.5


class Upkept(Protocol):
    """What the upkeep reads from the addon on every tick (both change on a hot reload)."""

    config: LlmitmConfig
    watcher: ConfigWatcher | None
    pools: Any  # pools.PoolRegistry
    relay: Any  # relay.Relay


async def run(addon: Upkept) -> None:
    """Load the pools' persisted state (cooldowns, disabled keys) before any probe, then tick until
    cancelled. Cancelling it ends the probes it started too, so none outlives the relay they use."""
    guard = CancelGuard()  # a store call may swallow the cancellation (pool/tasks.py): never tick on after one
    probes: set[asyncio.Task] = set()
    try:
        for pool in list(addon.pools.pools.values()):
            try:
                await pool.load()
            except Exception:
                log.exception("llmitm: reading pool state failed")
            guard.check()
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                if addon.watcher is not None:
                    addon.watcher.check()
                await probe_due_keys(addon.config, addon.pools.pools, addon.relay, probes)
            except Exception:  # upkeep must outlive any one failure
                log.exception("llmitm: upkeep failed")
            guard.check()
    finally:
        await stop_tasks(probes)


class ConfigWatcher:
    """Reloads the config file when it changes; a broken edit is logged and the old config stays."""

    def __init__(self, path: Path, apply: Callable[[LlmitmConfig], None]):
        self.path = path
        self.apply = apply
        self.seen = self._stamp()

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def check(self) -> bool:
        stamp = self._stamp()
        if stamp is None or stamp == self.seen:
            return False
        self.seen = stamp
        try:
            config = load_config(self.path)
        except ConfigError as e:
            log.error("llmitm: config change rejected, the previous config stays active:\n%s", e)
            return False
        self.apply(config)
        log.info("llmitm: reloaded %s", self.path)
        return True


async def probe_due_keys(config: LlmitmConfig, pools: dict[str, Any], relay: Any, running: set[asyncio.Task]) -> None:
    """Start a probe for every disabled key whose probe is due (at most one in flight per key)."""
    busy = {t.get_name() for t in running}
    for name, pool in list(pools.items()):
        provider = config.providers.get(name)
        if provider is None:
            continue
        protocol = provider.protocol[0]
        url = upstream_url(provider.base_url, REGISTRY.wire(protocol).PROBE_PATH)
        for target in pool.keys_due_for_probe():
            task_name = f"probe:{name}:{target.key_id}"
            if task_name in busy:
                continue
            probe = _probe(pool, relay, url, protocol, target, provider.headers)
            task = asyncio.get_running_loop().create_task(probe, name=task_name)
            running.add(task)
            task.add_done_callback(running.discard)


async def _probe(pool: Any, relay: Any, url: str, protocol: str, target: Any, headers: dict[str, str]) -> None:
    status = await relay.probe(url, protocol, target.secret, headers)
    # 401/402/403 mean the key is still refused; a 429 or a 2xx means the upstream accepted it.
    ok = status is not None and status < 500 and status not in (401, 402, 403)
    log.info("llmitm: probe of %s %s: %s", target.key_id, target.masked, status if status is not None else "no answer")
    pool.probe_result(target.key_id, ok)
