"""One key pool per pooled provider, built from the config and kept across hot reloads.

This is the only place that knows both llmitm's config and the pool package: it turns a provider's YAML
into `pool.PoolSettings`, picks the state store (`state:`, else SQLite beside the config file), and
applies a new config atomically: everything that can fail (key ids, the new store) is done first, then
the pools are swapped, so a failed reload leaves the previous pools serving.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from .config import ConfigError, LlmitmConfig, ProviderConfig
from .pool import CooldownSettings, KeyPool, KeySpec, PoolSettings, StateStoreError, Store, open_store
from .pool.table import format_key_table, key_rows

log = logging.getLogger(__name__)

STATE_FILE_NAME = ".llmitm-state.db"


class PoolConfigError(ConfigError):
    """The pools cannot be built from this config (duplicate key ids, an unusable `state:` store)."""


def default_key_id(provider: str, index: int) -> str:
    return f"{provider}#{index + 1}"


def key_specs(provider: str, config: ProviderConfig) -> tuple[KeySpec, ...]:
    return tuple(
        KeySpec(id=key.id or default_key_id(provider, i), secret=key.key, weight=key.weight,
                max_concurrency=key.max_concurrency, rpm=key.rpm, tpm=key.tpm)
        for i, key in enumerate(config.keys)
    )


def pool_settings(provider: str, config: ProviderConfig) -> PoolSettings:
    c = config.cooldown
    cooldown = CooldownSettings(default_seconds=c.default_seconds, max_seconds=c.max_seconds,
                                failure_threshold=c.failure_threshold, breaker_seconds=c.breaker_seconds,
                                probe_interval_seconds=c.probe_interval_seconds)
    try:
        return PoolSettings(keys=key_specs(provider, config), strategy=config.strategy, cooldown=cooldown,
                            max_wait=config.max_wait_seconds)
    except ValueError as e:
        raise PoolConfigError(f"providers.{provider}: {e}") from None


def state_url_for(config: LlmitmConfig) -> str:
    """`state:` from the config; else SQLite beside the config file; else (built-in default) memory."""
    if config.state:
        return config.state
    source = Path(config.source)
    if config.source.startswith("<") or not source.suffix:
        return "memory"
    return f"sqlite:///{source.resolve().parent / STATE_FILE_NAME}"


def pooled_keys(config: LlmitmConfig) -> dict[str, tuple[KeySpec, ...]]:
    return {name: key_specs(name, p) for name, p in config.providers.items() if p.pooled}


def key_table(config: LlmitmConfig) -> list[str]:
    """`llmitm keys`: every pooled key's state, read from the state store the proxy writes."""
    return format_key_table(key_rows(pooled_keys(config), state_url_for(config))).splitlines()


class PoolRegistry:
    def __init__(self) -> None:
        self.pools: dict[str, KeyPool] = {}
        self.store: Store | None = None
        self.store_url: str | None = None
        # Pools and stores replaced by a reload: leases handed out before it finish on them, so they are
        # closed (their last state written) with the registry rather than at the swap.
        self._retired_pools: list[KeyPool] = []
        self._retired_stores: list[Store] = []

    def apply(self, config: LlmitmConfig) -> None:
        """Make `config`'s pools the active ones. Raises PoolConfigError, leaving the previous pools (and
        store) in place, when the new ones cannot be built."""
        # 1. Everything that can fail, before anything changes.
        settings = {name: pool_settings(name, p) for name, p in config.providers.items() if p.pooled}
        url = state_url_for(config)
        new_store: Store | None = None
        if url != self.store_url:
            try:
                new_store = open_store(url)
            except (StateStoreError, ValueError) as e:
                raise PoolConfigError(f"state: {e}") from None
        store = new_store if new_store is not None else self.store
        # 2. Build and swap; nothing below raises (the settings were checked when they were made).
        pools: dict[str, KeyPool] = {}
        for name, s in settings.items():
            current = self.pools.get(name) if new_store is None else None
            if current is not None:
                current.apply(s)
                pools[name] = current
            else:
                pools[name] = KeyPool.from_settings(name, s, store=store)
        self._retired_pools += [p for name, p in self.pools.items() if pools.get(name) is not p]
        if new_store is not None and self.store is not None:
            self._retired_stores.append(self.store)  # pools are bound to their store
        self.pools, self.store, self.store_url = pools, store, url

    def get(self, name: str) -> KeyPool:
        return self.pools[name]

    async def close(self) -> None:
        pools, self.pools = [*self.pools.values(), *self._retired_pools], {}
        stores = [*self._retired_stores, *([self.store] if self.store is not None else [])]
        self._retired_pools, self._retired_stores, self.store = [], [], None
        # Side by side, not one after another: at shutdown this is one bounded step (addon.done), and a
        # pool whose store hangs must not leave the others' last state unwritten.
        for failure in await asyncio.gather(*(pool.close() for pool in pools), return_exceptions=True):
            if isinstance(failure, Exception):
                log.error("llmitm: closing a key pool failed: %s", failure)
        for failure in await asyncio.gather(*(store.close() for store in stores), return_exceptions=True):
            if isinstance(failure, Exception):
                log.error("llmitm: closing a state store failed: %s", failure)
