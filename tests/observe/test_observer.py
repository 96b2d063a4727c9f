"""The observer: what a finished request becomes in the ledger and the metrics, what it costs, and how
the `observe:` and `prices:` config sections build it (the request path itself: tests/e2e/test_observe_e2e.py)."""

from __future__ import annotations

import socket
from types import SimpleNamespace

import pytest

from llmitm.config import ConfigError, parse_config
from llmitm.flowinfo import FlowRecord
from llmitm.observe.observer import Observer, key_readings
from llmitm.pool.status import KeyStatus
from llmitm.protocols import REGISTRY
from llmitm.protocols.canonical import Usage
from llmitm.relay import UpstreamTry

T0 = 1_765_000_000.0


def config(tmp_path, observe: str = "{}", prices: str = "{}"):
    return parse_config(f"""
state: sqlite:///{tmp_path}/state.db
observe: {observe}
prices: {prices}
providers:
  cloud: {{protocol: openai-chat, base_url: "https://api.example.com", keys: [{{key: sk-cloud-00000001, id: c1}}]}}
  lab: {{protocol: openai-chat, base_url: "http://127.0.0.1:8000/v1"}}
  tuned: {{protocol: openai-chat, base_url: "http://10.0.0.5:8000/v1", local_model: {{}}}}
routes:
  - {{match: {{host: api.openai.com}}, provider: cloud}}
""", "test.yaml")


def finished_request(provider: str, model: str, usage: Usage | None, status: int = 200):
    """A pooled request answered on its first attempt, as the exchange and flow present it."""
    record = FlowRecord(route=0, provider=provider, model=model, upstream_model=model)
    attempt = UpstreamTry(provider, "k1", T0, responded=T0 + 0.5, end=T0 + 1, status=status)
    plan = SimpleNamespace(decision=SimpleNamespace(provider_name=provider), upstream_protocol=REGISTRY.names[0],
                           client_protocol=None, translation=None)
    exchange = SimpleNamespace(
        record=record, plan=plan, job=SimpleNamespace(tries=[attempt], served=object()), translation=None,
        meter=SimpleNamespace(usage=usage), client_name=None, client_fingerprint="abcd", first_chunk_at=None,
        overhead=0.002, sent_at=T0, bodies=SimpleNamespace(app_request=None, app_response=None))
    flow = SimpleNamespace(request=SimpleNamespace(timestamp_start=T0 - 0.01), error=None,
                           response=SimpleNamespace(status_code=status, headers={}, stream=False))
    return exchange, flow


def test_local_models_cost_nothing_overrides_beat_the_table_and_unknown_models_are_unpriced(tmp_path):
    cfg = config(tmp_path, "{metrics_port: 0}", '{"gpt-4o*": {input: 2, output: 8}}')
    observer = Observer.for_config(cfg, SimpleNamespace(pools={}), None)
    usage = Usage(input_total=1_000, cached_read=200, output_total=500)
    try:
        for provider, model in (("cloud", "gpt-4o"), ("lab", "smollm3"), ("tuned", "qwen3"), ("cloud", "no-such-model")):
            observer.finished(*finished_request(provider, model, usage))
        rows = {(r.provider, r.model): r for r in observer.ledger.queue}
        assert rows[("cloud", "gpt-4o")].cost == pytest.approx((1_000 * 2 + 500 * 8) / 1_000_000)  # the override, not the table
        assert rows[("lab", "smollm3")].cost == 0.0  # keyless on loopback
        assert rows[("tuned", "qwen3")].cost == 0.0  # local_model, wherever it runs
        assert rows[("cloud", "no-such-model")].cost is None
        assert (rows[("cloud", "gpt-4o")].input, rows[("cloud", "gpt-4o")].cache_read) == (1_000, 200)
        text = observer.metrics.render().decode()
        assert 'llmitm_unpriced_requests_total{model="no-such-model",provider="cloud"} 1.0' in text
        assert 'llmitm_spend_usd_total{client="abcd",model="smollm3",provider="lab"} 0.0' in text
    finally:
        observer.close_soon()


def test_a_reload_that_changes_only_prices_keeps_the_observer_and_its_port(tmp_path):
    first = Observer.for_config(config(tmp_path, "{metrics_port: 0}"), SimpleNamespace(pools={}), None)
    try:
        again = Observer.for_config(config(tmp_path, "{metrics_port: 0}", '{"x*": {input: 1, output: 1}}'),
                                    SimpleNamespace(pools={}), first)
        assert again is first and first.prices.price("x-1") is not None
        other = Observer.for_config(config(tmp_path, "{metrics_port: 0, overhead_header: false}"), SimpleNamespace(pools={}), first)
        assert other is not first and first.closed and other.ports() and not other.options.overhead_header
        other.close_soon()
    finally:
        first.close_soon()


def test_a_taken_metrics_port_is_a_config_error_that_names_the_field(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"observe.metrics_port: cannot listen on 127.0.0.1:{port}"):
            Observer.for_config(config(tmp_path, f"{{metrics_port: {port}}}"), SimpleNamespace(pools={}), None)


def test_observe_and_prices_are_validated(tmp_path):
    with pytest.raises(ConfigError, match="observe.metrics_prot"):
        config(tmp_path, "{metrics_prot: 9464}")
    with pytest.raises(ConfigError, match="observe.otlp_endpoint: must be an http"):
        config(tmp_path, "{otlp_endpoint: 127.0.0.1:4318}")
    with pytest.raises(ConfigError, match=r"prices.gpt\*.output"):
        config(tmp_path, prices='{"gpt*": {input: 1}}')
    assert config(tmp_path).observe.overhead_header is True  # on unless turned off


def test_key_gauges_read_the_pools_states_by_id():
    statuses = [KeyStatus("cloud", "c1", "sk-…0001", "cooling", "429", T0, 0, {"requests": 7}),
                KeyStatus("cloud", "c2", "sk-…0002", "busy", "", None, 3, {"tokens": 900}),
                KeyStatus("cloud", "c3", "sk-…0003", "quota-spent", "", None, 0)]
    pools = SimpleNamespace(pools={"cloud": SimpleNamespace(snapshot=lambda: statuses)})
    assert [(r.key, r.state, r.in_flight, r.remaining_requests, r.remaining_tokens) for r in key_readings(pools)] == [
        ("c1", "cooling", 0, 7, None), ("c2", "ready", 3, None, 900), ("c3", "exhausted", 0, None, None)]


def test_a_scrape_reads_the_pools_on_the_event_loop_thread(tmp_path, caplog):
    import asyncio
    import threading

    import httpx

    read_on = []

    def snapshot():
        read_on.append(threading.get_ident())
        return [KeyStatus("cloud", "c1", "sk-…0001", "ok", "", None, 0)]

    async def scrape():
        observer = Observer.for_config(config(tmp_path, "{metrics_port: 0}"),
                                       SimpleNamespace(pools={"cloud": SimpleNamespace(snapshot=snapshot)}), None)
        try:
            url = f"http://127.0.0.1:{observer.metrics_port}/metrics"
            return (await asyncio.to_thread(httpx.get, url, timeout=10)).text
        finally:
            await observer.close()

    text = asyncio.run(scrape())
    assert 'llmitm_key_state{key="c1",provider="cloud",state="ready"} 1.0' in text
    assert set(read_on) == {threading.get_ident()}  # never from the metrics server's thread
    assert "key gauges not read" not in caplog.text
