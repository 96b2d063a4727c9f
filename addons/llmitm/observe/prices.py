"""What a request cost: a maintained price table (LiteLLM's, pruned; see prices.json's `_source`),
per-model overrides from the config, and local models at zero.

Cache semantics are where peers double-bill. llmitm's canonical usage (protocols/canonical.Usage)
counts `input_total` *including* cache reads and writes — the spokes normalise Anthropic's
`input_tokens` (which excludes both) and OpenAI's `prompt_tokens` (which includes cached tokens) to
that one meaning — so the uncached input is `input_total - cached_read - cache_write`, each part
priced once at its own rate. Reasoning tokens are part of `output_total` and priced at the reasoning
rate where the table has one. A model the table does not know is *unpriced* (None), never free.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRICES_FILE = Path(__file__).with_name("prices.json")
_DATE_SUFFIX = re.compile(r"-(\d{8}|\d{4}-\d{2}-\d{2})$")  # claude-sonnet-4-5-20250929, gpt-4o-2024-08-06


@dataclass(frozen=True)
class Price:
    """USD per token."""

    input: float
    output: float
    cache_read: float | None = None  # None: charged as input
    cache_write: float | None = None
    reasoning: float | None = None  # None: charged as output

    @classmethod
    def per_million(cls, spec: dict[str, float]) -> Price:
        """From a config override written per million tokens: {input: 3, output: 15, cache_read: 0.3, ...}."""
        return cls(**{k: v / 1_000_000 for k, v in spec.items()})

    @classmethod
    def from_table(cls, entry: dict[str, Any]) -> Price:
        return cls(entry["input_cost_per_token"], entry.get("output_cost_per_token", 0.0),
                   entry.get("cache_read_input_token_cost"), entry.get("cache_creation_input_token_cost"),
                   entry.get("output_cost_per_reasoning_token"))


@dataclass(frozen=True)
class TokenCounts:
    """The tokens of one answer, in canonical meaning (input includes cache reads and writes)."""

    input: int = 0
    cache_read: int = 0
    cache_write: int = 0
    output: int = 0
    reasoning: int = 0  # part of output


def cost(price: Price, tokens: TokenCounts) -> float:
    uncached = max(0, tokens.input - tokens.cache_read - tokens.cache_write)
    reasoning = min(tokens.reasoning, tokens.output)
    total = uncached * price.input
    total += tokens.cache_read * (price.cache_read if price.cache_read is not None else price.input)
    total += tokens.cache_write * (price.cache_write if price.cache_write is not None else price.input)
    total += (tokens.output - reasoning) * price.output
    total += reasoning * (price.reasoning if price.reasoning is not None else price.output)
    return total


class PriceTable:
    """Model name → Price: overrides (globs) first, then the table, trying the usual name variants."""

    def __init__(self, table: dict[str, dict[str, Any]], overrides: dict[str, Price] | None = None) -> None:
        self.table = table
        self.overrides = dict(overrides or {})

    @classmethod
    def load(cls, overrides: dict[str, Price] | None = None, path: Path = PRICES_FILE) -> PriceTable:
        return cls(json.loads(path.read_text())["models"], overrides)

    def price(self, model: str | None) -> Price | None:
        if not model:
            return None
        for pattern, price in self.overrides.items():
            if fnmatch.fnmatchcase(model, pattern):
                return price
        for name in _variants(model):
            entry = self.table.get(name)
            if entry is not None:
                return Price.from_table(entry)
        return None

    def context_window(self, model: str | None) -> tuple[int | None, int | None]:
        """(max input tokens, max output tokens) as the table knows them."""
        for name in _variants(model or ""):
            entry = self.table.get(name)
            if entry is not None:
                return entry.get("max_input_tokens"), entry.get("max_output_tokens")
        return None, None


def _variants(model: str) -> list[str]:
    bare = model.removeprefix("models/")  # Gemini's resource names
    out = [model, bare, _DATE_SUFFIX.sub("", bare), f"gemini/{bare}"]
    return list(dict.fromkeys(out))
