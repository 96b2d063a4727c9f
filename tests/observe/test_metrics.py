"""Prometheus metrics: counters and histograms from the request path, key gauges read at scrape time,
parsed back with prometheus-client's own text parser; never a key in a label."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from llmitm.observe.metrics import KeyReading, Metrics
from llmitm.observe.prices import TokenCounts


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_request_path_counters_and_key_gauges_scrape_as_expected():
    keys = [KeyReading("claude", "a1", "cooling", 0, 0, 1000), KeyReading("claude", "b2", "ready", 2, 49, None)]
    metrics = Metrics(keys=lambda: keys)
    metrics.attempt("claude", "a1", "rate_limited")
    metrics.attempt("claude", "b2", "ok", retried_because="429")
    metrics.request(route="#0", provider="claude", model="claude-sonnet-4-5", status=200, client="ci", duration=1.2,
                    ttft=0.3, overhead=0.002, tokens=TokenCounts(input=1300, cache_read=1000, output=50), cost=0.0021)
    metrics.request(route="#1", provider="local", model="SmolLM3-3B", status=200, client="ci", duration=0.1,
                    ttft=None, overhead=0.001, tokens=TokenCounts(input=10, output=5), cost=None)
    metrics.error("client_abort")
    got = samples(metrics.render().decode())
    assert got[("llmitm_requests_total", (("model", "claude-sonnet-4-5"), ("provider", "claude"), ("route", "#0"), ("status", "200")))] == 1
    assert got[("llmitm_retries_total", (("provider", "claude"), ("reason", "429")))] == 1
    assert got[("llmitm_tokens_total", (("model", "claude-sonnet-4-5"), ("provider", "claude"), ("type", "cache_read")))] == 1000
    assert got[("llmitm_spend_usd_total", (("client", "ci"), ("model", "claude-sonnet-4-5"), ("provider", "claude")))] == 0.0021
    assert got[("llmitm_unpriced_requests_total", (("model", "SmolLM3-3B"), ("provider", "local")))] == 1
    assert got[("llmitm_request_errors_total", (("kind", "client_abort"),))] == 1
    assert got[("llmitm_time_to_first_token_seconds_count", (("provider", "claude"), ("route", "#0")))] == 1
    assert got[("llmitm_key_state", (("key", "a1"), ("provider", "claude"), ("state", "cooling")))] == 1
    assert got[("llmitm_key_state", (("key", "a1"), ("provider", "claude"), ("state", "ready")))] == 0
    assert got[("llmitm_key_remaining_requests", (("key", "b2"), ("provider", "claude")))] == 49
    assert ("llmitm_key_remaining_tokens", (("key", "b2"), ("provider", "claude"))) not in got


def test_served_on_a_loopback_port():
    metrics = Metrics()
    metrics.error("refused")
    port = metrics.serve("127.0.0.1", 0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            text = r.read().decode()
    finally:
        metrics.close()
    assert samples(text)[("llmitm_request_errors_total", (("kind", "refused"),))] == 1
