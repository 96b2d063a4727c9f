from __future__ import annotations

import pytest
from pool_helpers import FakeClock, specs

from llmitm.pool import CooldownSettings, KeyPool, KeySpec


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_pool(clock):
    def make(n: int = 3, strategy: str = "round-robin", keys: list[KeySpec] | None = None, **kwargs) -> KeyPool:
        kwargs.setdefault("max_wait", 0.0)
        kwargs.setdefault("cooldown", CooldownSettings())
        return KeyPool("openai", keys if keys is not None else specs(n), strategy=strategy, clock=clock, **kwargs)

    return make
