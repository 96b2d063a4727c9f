"""Shared by the pool tests (imported by name: tests/ is not a package)."""

from __future__ import annotations

from llmitm.pool import KeySpec


class FakeClock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def specs(n: int, **kwargs) -> list[KeySpec]:
    return [KeySpec(id=f"k{i}", secret=f"sk-secret-{i:04d}-abcdef", **kwargs) for i in range(n)]
