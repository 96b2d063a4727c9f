"""One key pool per pooled provider, built from the config and kept across hot reloads."""

from __future__ import annotations

import logging
from typing import Any

from .config import LlmitmConfig

log = logging.getLogger(__name__)


def key_table(config: LlmitmConfig) -> list[str]:
    """`llmitm keys`: every pooled key's state, read from the state store the proxy writes."""
    from .pool.table import format_key_table, key_rows

    return format_key_table(key_rows(config)).splitlines()


class PoolRegistry:
    def __init__(self) -> None:
        self.pools: dict[str, Any] = {}
        self.store: Any = None  # pool.Store
        self.store_url: str | None = None

    def apply(self, config: LlmitmConfig) -> None:
        from .pool import KeyPool, open_store
        from .pool.table import state_url_for

        url = state_url_for(config)
        if url != self.store_url:
            self.pools.clear()  # pools are bound to their store; in-flight leases finish on the old one
            self.store, self.store_url = open_store(url), url
        for name, provider in config.providers.items():
            if not provider.pooled:
                self.pools.pop(name, None)
            elif name in self.pools:
                self.pools[name].reconfigure_from(provider)
            else:
                self.pools[name] = KeyPool.from_config(name, provider, store=self.store)
        for name in set(self.pools) - set(config.providers):
            del self.pools[name]

    def get(self, name: str):
        return self.pools[name]

    async def close(self) -> None:
        for pool in self.pools.values():
            await pool.close()
        self.pools.clear()
        if self.store is not None:
            await self.store.close()
