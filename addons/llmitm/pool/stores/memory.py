"""A store that forgets everything on exit: for tests and the zero-config default."""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from typing import Any

from ..keystate import KeyUpdate
from .base import Store


class MemoryStore(Store):
    def __init__(self) -> None:
        self._keys: dict[tuple[str, str], dict[str, Any]] = {}

    async def load(self, provider: str, key_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        return {k: copy.deepcopy(self._keys[(provider, k)]) for k in key_ids if (provider, k) in self._keys}

    async def write(self, provider: str, updates: Mapping[str, KeyUpdate]) -> None:
        for key_id, update in updates.items():
            stored = self._keys.setdefault((provider, key_id), {})
            stored.update(copy.deepcopy(update.fields))
            for name, n in update.incr.items():
                stored[name] = stored.get(name, 0) + n
