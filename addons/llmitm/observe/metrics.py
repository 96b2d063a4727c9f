"""Prometheus metrics (prometheus-client), on an optional loopback port.

Names follow Prometheus conventions (`_total` counters, base units: seconds, USD) and map one-to-one
onto LiteLLM's where it has an equivalent, so its dashboards carry over (docs/metrics.md has the
table). Label values never contain a key: keys appear only by their id.

Per-key state (state, in-flight, remaining requests/tokens from the providers' rate-limit headers) is
read from the pools when scraped, by a collector, so it is never stale and costs nothing per request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily

from .prices import TokenCounts

# Seconds: LLM calls run from tens of milliseconds (a local model) to minutes (long reasoning).
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320, 600)
OVERHEAD_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
KEY_STATES = ("ready", "cooling", "breaker_open", "disabled", "exhausted")


@dataclass(frozen=True)
class KeyReading:
    """One pooled key as the pool sees it now (by id; never the key)."""

    provider: str
    key: str
    state: str
    in_flight: int
    remaining_requests: int | None
    remaining_tokens: int | None


class _KeyCollector:
    def __init__(self, read: Callable[[], Iterable[KeyReading]]) -> None:
        self.read = read

    def collect(self):
        state = GaugeMetricFamily("llmitm_key_state", "1 for the state each pooled key is in",
                                  labels=["provider", "key", "state"])
        busy = GaugeMetricFamily("llmitm_key_in_flight", "Requests in flight per key", labels=["provider", "key"])
        requests = GaugeMetricFamily("llmitm_key_remaining_requests", "Remaining requests per key, as the provider's "
                                     "rate-limit headers last said", labels=["provider", "key"])
        tokens = GaugeMetricFamily("llmitm_key_remaining_tokens", "Remaining tokens per key, as the provider's "
                                   "rate-limit headers last said", labels=["provider", "key"])
        for reading in self.read():
            for name in KEY_STATES:
                state.add_metric([reading.provider, reading.key, name], 1.0 if reading.state == name else 0.0)
            busy.add_metric([reading.provider, reading.key], reading.in_flight)
            if reading.remaining_requests is not None:
                requests.add_metric([reading.provider, reading.key], reading.remaining_requests)
            if reading.remaining_tokens is not None:
                tokens.add_metric([reading.provider, reading.key], reading.remaining_tokens)
        yield from (state, busy, requests, tokens)


class Metrics:
    def __init__(self, keys: Callable[[], Iterable[KeyReading]] = lambda: ()) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("llmitm_requests", "AI requests answered, by route, provider, upstream model and status",
                                ["route", "provider", "model", "status"], registry=r)
        self.errors = Counter("llmitm_request_errors", "Failed requests by kind (upstream, translation, no_key, client_abort, "
                              "refused, llmitm_bug)", ["kind"], registry=r)
        self.attempts = Counter("llmitm_upstream_attempts", "Upstream calls by provider, key id and outcome",
                                ["provider", "key", "outcome"], registry=r)
        self.retries = Counter("llmitm_retries", "Attempts retried on another key or provider, by reason",
                               ["provider", "reason"], registry=r)
        self.tokens = Counter("llmitm_tokens", "Tokens by type (input includes cache reads and writes)",
                              ["provider", "model", "type"], registry=r)
        self.spend = Counter("llmitm_spend_usd", "Cost in USD of priced models", ["provider", "model", "client"], registry=r)
        self.unpriced = Counter("llmitm_unpriced_requests", "Answered requests of models without a price",
                                ["provider", "model"], registry=r)
        self.latency = Histogram("llmitm_request_duration_seconds", "Whole request time", ["provider", "route"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.ttft = Histogram("llmitm_time_to_first_token_seconds", "Time to the first streamed event", ["provider", "route"],
                              buckets=LATENCY_BUCKETS, registry=r)
        self.overhead = Histogram("llmitm_overhead_seconds", "Time llmitm itself added (request minus upstream)",
                                  ["provider", "route"], buckets=OVERHEAD_BUCKETS, registry=r)
        self.ledger_dropped = Counter("llmitm_ledger_rows_dropped", "Usage rows not recorded (queue full or write failed)",
                                      registry=r)
        r.register(_KeyCollector(keys))
        self._server: WSGIServer | None = None

    # -- what the request path reports ----------------------------------------------------------

    def attempt(self, provider: str, key: str, outcome: str, retried_because: str | None = None) -> None:
        self.attempts.labels(provider, key, outcome).inc()
        if retried_because is not None:
            self.retries.labels(provider, retried_because).inc()

    def request(self, *, route: str, provider: str, model: str, status: int | str, client: str, duration: float,
                ttft: float | None, overhead: float | None, tokens: TokenCounts | None, cost: float | None) -> None:
        self.requests.labels(route, provider, model, str(status)).inc()
        self.latency.labels(provider, route).observe(duration)
        if ttft is not None:
            self.ttft.labels(provider, route).observe(ttft)
        if overhead is not None:
            self.overhead.labels(provider, route).observe(max(0.0, overhead))
        if tokens is not None:
            for kind in ("input", "cache_read", "cache_write", "output", "reasoning"):
                value = getattr(tokens, kind)
                if value:
                    self.tokens.labels(provider, model, kind).inc(value)
        answered = isinstance(status, int) and status < 400
        if cost is not None:
            self.spend.labels(provider, model, client).inc(cost)
        elif answered:
            self.unpriced.labels(provider, model).inc()

    def error(self, kind: str) -> None:
        self.errors.labels(kind).inc()

    # -- exposition -------------------------------------------------------------------------------

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def serve(self, host: str, port: int) -> int:
        """Expose /metrics on host:port in a daemon thread; returns the bound port (for port 0)."""
        from wsgiref.simple_server import make_server

        from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler

        app = make_wsgi_app(self.registry)
        self._server = make_server(host, port, app, ThreadingWSGIServer, handler_class=_SilentHandler)
        threading.Thread(target=self._server.serve_forever, name="llmitm-metrics", daemon=True).start()
        return self._server.server_port

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
