"""Cost from the pruned LiteLLM table: each token priced once at its own rate, unknown models unpriced."""

from __future__ import annotations

import json

import pytest

from llmitm.observe.prices import PRICES_FILE, Price, PriceTable, TokenCounts, cost

TABLE = PriceTable.load()


def test_the_table_records_its_source_and_licence():
    source = json.loads(PRICES_FILE.read_text())["_source"]
    assert source["package"].startswith("litellm==") and len(source["sha256"]) == 64
    assert "MIT License" in PRICES_FILE.with_name("prices.LICENSE").read_text()


def test_anthropic_cache_reads_and_writes_are_not_billed_twice():
    # Anthropic reported input_tokens=100 (uncached), cache_read=1000, cache_creation=200: canonical input 1300.
    price = TABLE.price("claude-sonnet-4-5-20250929")
    got = cost(price, TokenCounts(input=1300, cache_read=1000, cache_write=200, output=50))
    want = 100 * 3e-6 + 1000 * 3e-7 + 200 * 3.75e-6 + 50 * 1.5e-5
    assert got == pytest.approx(want)


def test_openai_cached_prompt_tokens_are_a_part_of_the_input():
    # prompt_tokens=1000 with 800 cached: 200 at the input rate, 800 at the cached rate.
    got = cost(TABLE.price("gpt-4o"), TokenCounts(input=1000, cache_read=800, output=10))
    assert got == pytest.approx(200 * 2.5e-6 + 800 * 1.25e-6 + 10 * 1e-5)


def test_reasoning_tokens_use_the_reasoning_rate_when_the_table_has_one():
    price = Price(input=1e-6, output=2e-6, reasoning=5e-6)
    assert cost(price, TokenCounts(input=10, output=100, reasoning=40)) == pytest.approx(10e-6 + 60 * 2e-6 + 40 * 5e-6)


def test_unknown_models_are_unpriced_and_overrides_win():
    assert TABLE.price("HuggingFaceTB/SmolLM3-3B") is None
    table = PriceTable(TABLE.table, {"HuggingFaceTB/*": Price(0.0, 0.0), "gpt-4o": Price.per_million({"input": 1, "output": 2})})
    assert cost(table.price("HuggingFaceTB/SmolLM3-3B"), TokenCounts(input=10, output=10)) == 0.0
    assert table.price("gpt-4o") == Price(1e-6, 2e-6)


def test_gemini_resource_names_and_context_windows():
    assert TABLE.price("models/gemini-2.5-flash") is not None
    assert TABLE.context_window("claude-sonnet-4-5") == (200000, 64000)
