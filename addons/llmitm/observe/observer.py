"""The one object the request path reports to: it turns a finished exchange into usage ledger rows,
Prometheus samples and an OpenTelemetry span, and stamps `x-llmitm-overhead-ms` on answers.

The hooks call three methods (addon.py): `stamp_overhead` when the answer's headers are final,
`finished` once per forwarded request (answered, failed, or abandoned by the app), and `close`.
Everything here is best effort: a failure is logged, never raised into the request path, and the
ledger only queues rows (ledger.LedgerWriter writes them off the event loop).

What counts (docs/metrics.md): a ledger row per upstream attempt — the relay's `UpstreamTry`s for
pooled requests (a retried 429 is its own row), one row for a request mitmproxy sent with the app's
own credential — and nothing for a request that never reached an upstream (no key could serve).
Tokens go on the attempt whose answer was kept, as far as the answer got: a stream the app
abandoned is recorded up to where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from ..clients import fingerprint
from ..config import ConfigError
from ..protocols.registry import REGISTRY
from ..relay import UpstreamTry
from .ledger import LedgerRow, LedgerWriter, open_ledger
from .metrics import KeyReading, Metrics
from .prices import Price, PriceTable, TokenCounts, cost
from .traces import AttemptTrace, RequestTrace

log = logging.getLogger(__name__)

OVERHEAD_HEADER = "x-llmitm-overhead-ms"
APP_CREDENTIAL = "app-credential"  # the key label of a request sent with the app's own credential
NO_CREDENTIAL = "anonymous"  # the client label of a request that carried no credential at all
FINGERPRINT_CHARS = 16  # of clients.fingerprint's SHA-256 hex: enough to tell apps apart, short as a label

# pool/status.py's states → the metric's (metrics.KEY_STATES). Busy, throttled and half-open keys
# still serve.
KEY_STATE = {"ok": "ready", "busy": "ready", "throttled": "ready", "half-open": "ready", "cooling": "cooling",
             "breaker-open": "breaker_open", "disabled": "disabled", "quota-spent": "exhausted"}


def client_label(secret: str | None) -> str:
    """How the ledger names an app before a configured client identifies it: its credential's fingerprint."""
    return fingerprint(secret)[:FINGERPRINT_CHARS] if secret else NO_CREDENTIAL


def key_readings(pools: Any) -> Iterator[KeyReading]:
    """Every pooled key as its pool sees it now: the one place the metrics read the pools
    (pool/status.py's KeyStatus, from KeyPool.snapshot())."""
    try:
        for provider, pool in list(pools.pools.items()):
            for status in pool.snapshot():
                yield KeyReading(provider, status.key_id, KEY_STATE.get(status.state, "ready"), status.in_flight,
                                 status.remaining.get("requests"), status.remaining.get("tokens"))
    except RuntimeError as e:  # "dictionary changed size during iteration"
        log.debug("llmitm: key gauges cut short: %s", e)


def read_keys_on_loop(observer: Observer, pools: Any) -> list[KeyReading]:
    """The scrape runs in the metrics server's thread; the pools belong to the event loop, so they
    are read there (directly when already on it, or before it runs: nothing can change them then)."""
    loop = observer.loop
    try:
        here = asyncio.get_running_loop()
    except RuntimeError:
        here = None
    if loop is None or loop is here or not loop.is_running():  # prometheus-client reads once on register
        return list(key_readings(pools))

    async def read() -> list[KeyReading]:
        return list(key_readings(pools))

    try:
        return asyncio.run_coroutine_threadsafe(read(), loop).result(timeout=5)
    except Exception as e:  # a loop too busy to answer: no key gauges in this scrape
        log.warning("llmitm: key gauges not read: %s", type(e).__name__)
        return []


def is_local_provider(provider: Any) -> bool:
    """A provider whose tokens cost nothing: a local model server (`local_model`), or a keyless
    provider on a loopback address."""
    if provider.local_model is not None:
        return True
    host = urlsplit(provider.base_url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    return not provider.keys and loopback


@dataclass(frozen=True)
class Settings:
    """What needs a new observer when it changes on reload (prices do not: they are swapped in place)."""

    observe: Any  # config.ObserveConfig
    ledger_url: str | None


class Observer:
    def __init__(self, settings: Settings, pools: Any, config: Any) -> None:
        self.settings = settings
        self.options = settings.observe
        self.ledger: LedgerWriter | None = None
        self.metrics: Metrics | None = None
        self.tracer: Any = None
        self.metrics_port: int | None = None
        self._reported_drops = 0
        self.closed = False  # replaced on reload: reports after that are dropped
        try:
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # configured before mitmproxy's loop runs: taken from the first report
            self.loop = None
        self.reprice(config)
        store = open_ledger(settings.ledger_url) if settings.ledger_url else None
        if store is not None:
            self.ledger = LedgerWriter(store)
        if self.options.metrics_port is not None:
            self.metrics = Metrics(keys=lambda: read_keys_on_loop(self, pools))
            try:
                self.metrics_port = self.metrics.serve(self.options.metrics_host, self.options.metrics_port)
            except OSError as e:
                raise ConfigError(f"observe.metrics_port: cannot listen on {self.options.metrics_host}:"
                                  f"{self.options.metrics_port}: {e.strerror or e}") from None
            log.info("llmitm: metrics on http://%s:%d/metrics", self.options.metrics_host, self.metrics_port)
        if self.options.otlp_endpoint:
            from .traces import Tracer

            self.tracer = Tracer(self.options.otlp_endpoint, capture_content=self.options.capture_content)

    @classmethod
    def for_config(cls, config: Any, pools: Any, previous: Observer | None) -> Observer:
        """The observer `config` asks for: `previous` when only prices changed, else a new one
        (the previous one's port and tracer are released first, its queued rows still written).
        Raises ConfigError when the metrics port cannot be had (observation is then off)."""
        from ..provider_pools import state_url_for

        settings = Settings(config.observe, state_url_for(config) if config.observe.ledger else None)
        if previous is not None and previous.settings == settings:
            previous.reprice(config)
            return previous
        if previous is not None:
            previous.close_soon()
        return cls(settings, pools, config)

    def reprice(self, config: Any) -> None:
        overrides = {glob: Price.per_million(p.model_dump(exclude_none=True)) for glob, p in config.prices.items()}
        self.prices = PriceTable.load(overrides)
        self.local_providers = {name for name, p in config.providers.items() if is_local_provider(p)}

    def ports(self) -> list[int]:
        """Ports this observer listens on (netguard keeps apps away from them)."""
        return [self.metrics_port] if self.metrics_port else []

    # -- what the hooks report ------------------------------------------------------------------

    def stamp_overhead(self, exchange: Any, flow: Any) -> None:
        """The answer's headers are final: note llmitm's own time so far (the whole time minus the
        upstream's) and, unless turned off, tell the app in `x-llmitm-overhead-ms`."""
        try:
            now = time.time()
            overhead = max(0.0, now - flow.request.timestamp_start - upstream_seconds(exchange, flow, now))
            exchange.overhead = overhead
            if self.options.overhead_header and flow.response is not None:
                flow.response.headers[OVERHEAD_HEADER] = f"{overhead * 1000:.1f}"
        except Exception:
            log.exception("llmitm: measuring the overhead failed")

    def finished(self, exchange: Any, flow: Any, *, bug: bool = False) -> None:
        """One forwarded request is over: its ledger rows, samples and span. Never raises."""
        if self.closed:
            return
        if self.loop is None:
            with contextlib.suppress(RuntimeError):  # no loop: a unit test
                self.loop = asyncio.get_running_loop()
        try:
            self._finished(exchange, flow, bug)
        except Exception:
            log.exception("llmitm: recording usage failed")

    def _finished(self, exchange: Any, flow: Any, bug: bool) -> None:
        now = time.time()
        record, plan = exchange.record, exchange.plan
        provider = record.provider or plan.decision.provider_name
        model = record.upstream_model or record.model or ""
        route = f"#{record.route}"
        client = exchange.client_name or exchange.client_fingerprint or NO_CREDENTIAL
        tries = attempts_of(exchange, flow, now)
        usage = exchange.translation.usage if exchange.translation is not None else exchange.meter.usage
        tokens = token_counts(usage)
        served = bool(tries) and tries[-1].status is not None and (exchange.job is None or exchange.job.served is not None)
        start = flow.request.timestamp_start
        ttft = exchange.first_chunk_at - start if exchange.first_chunk_at is not None else None
        price_of = self._cost
        rows = []
        for n, attempt in enumerate(tries, 1):
            kept = served and n == len(tries)
            counts = tokens if kept and tokens is not None else TokenCounts()
            rows.append(LedgerRow(
                at=attempt.start, client=client, route=route, provider=attempt.provider, model=model, key=attempt.key,
                status=attempt.status, input=counts.input, cache_read=counts.cache_read, cache_write=counts.cache_write,
                output=counts.output, reasoning=counts.reasoning, latency_ms=((attempt.end or now) - attempt.start) * 1000,
                ttft_ms=ttft * 1000 if kept and ttft is not None else None, attempt=n,
                cost=price_of(attempt.provider, model, counts)))
        if self.ledger is not None:
            for row in rows:
                self.ledger.record(row)
        status: int | str = flow.response.status_code if flow.response is not None else "error"
        if self.metrics is not None:
            kept_cost = rows[-1].cost if served else None
            self._count(exchange, flow, tries, route, provider, model, client, status, now - start, ttft,
                        tokens, kept_cost, bug)
        if self.tracer is not None:
            self._trace(exchange, flow, tries, route, client, status, now, ttft, usage)

    def _cost(self, provider: str, model: str, tokens: TokenCounts) -> float | None:
        if provider in self.local_providers:
            return 0.0
        price = self.prices.price(model)
        return cost(price, tokens) if price is not None else None

    def _count(self, exchange, flow, tries, route, provider, model, client, status, duration, ttft, tokens, kept_cost, bug):
        m = self.metrics
        for n, attempt in enumerate(tries, 1):
            outcome = str(attempt.status) if attempt.status is not None else "no_response"
            m.attempt(attempt.provider, attempt.key, outcome, retried_because=outcome if n < len(tries) else None)
        m.request(route=route, provider=provider, model=model, status=status, client=client, duration=duration,
                  ttft=ttft, overhead=exchange.overhead, tokens=tokens, cost=kept_cost)
        kind = error_kind(exchange, flow, bug)
        if kind is not None:
            m.error(kind)
        if self.ledger is not None:
            lost = self.ledger.dropped + self.ledger.failed
            if lost > self._reported_drops:
                m.ledger_dropped.inc(lost - self._reported_drops)
                self._reported_drops = lost

    def _trace(self, exchange, flow, tries, route, client, status, now, ttft, usage):
        record, plan = exchange.record, exchange.plan
        content = self.options.capture_content
        self.tracer.record(RequestTrace(
            operation="chat", provider_name=REGISTRY.wire(plan.upstream_protocol).OTEL_PROVIDER_NAME,
            request_model=record.model, response_model=record.upstream_model, start=flow.request.timestamp_start,
            end=now, status=status if isinstance(status, int) else None, route=route, client=client,
            input_tokens=usage.input_total if usage else None, output_tokens=usage.output_total if usage else None,
            cache_read_tokens=usage.cached_read if usage else None, time_to_first_chunk=ttft,
            finish_reasons=_finish_reasons(plan.translation),
            translated_from=plan.client_protocol if plan.translation is not None else None,
            attempts=tuple(AttemptTrace(t.provider, t.key, t.start, t.end or now, t.status, t.error) for t in tries),
            prompt=_text(exchange.bodies.app_request) if content else None,
            completion=_text(exchange.bodies.app_response) if content else None,
        ))

    # -- shutdown -------------------------------------------------------------------------------

    def _release(self) -> asyncio.Future[None] | None:
        """Stop reporting and free the metrics port. The tracer's last export runs in a thread of its
        own: OpenTelemetry's shutdown blocks for up to 30 s on a collector that does not answer, which
        on the event loop would freeze every flow (and a proxy's exit). Returns when it is done."""
        self.closed = True
        if self.metrics is not None:
            self.metrics.close()  # the server's poll interval (0.5 s) at most
        return in_daemon_thread(self.tracer.close, "llmitm-trace-export") if self.tracer is not None else None

    def close_soon(self) -> None:
        """Replaced on reload: free the port now, write the queued rows in the background."""
        self._release()
        if self.ledger is not None:
            try:
                asyncio.get_running_loop().create_task(self.ledger.close())
            except RuntimeError:
                asyncio.run(self.ledger.close())

    async def close(self) -> None:
        """The proxy stops: write the queued ledger rows and the last spans. Not bounded here; the
        caller bounds it (addon.done), and what it cuts short is lost with the process."""
        traces = self._release()
        if self.ledger is not None:
            await self.ledger.close()
        if traces is not None:
            await traces


def in_daemon_thread(work: Callable[[], object], name: str) -> asyncio.Future[None] | None:
    """Run blocking `work` in a daemon thread; the future is done when it ended (None: no event loop
    here, and the thread just runs). Not asyncio.to_thread: asyncio.run waits for the default
    executor's threads at exit, without a bound on Python 3.11, so a stuck export would hang the exit."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    done: asyncio.Future[None] | None = loop.create_future() if loop is not None else None

    def run() -> None:
        try:
            work()
        except Exception:
            log.exception("llmitm: %s failed", name)
        finally:
            if loop is not None and done is not None:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
                    loop.call_soon_threadsafe(lambda: done.done() or done.set_result(None))

    threading.Thread(target=run, name=name, daemon=True).start()
    return done


def attempts_of(exchange: Any, flow: Any, now: float) -> list[UpstreamTry]:
    """The upstream attempts of a request: the relay's for a pooled one; for one mitmproxy sent with
    the app's credential, a single attempt timed by mitmproxy (none when it never left llmitm)."""
    if exchange.job is not None:
        return list(exchange.job.tries)
    if not exchange.sent_at:
        return []
    response = flow.response
    provider = exchange.record.provider or exchange.plan.decision.provider_name
    attempt = UpstreamTry(provider, APP_CREDENTIAL, exchange.sent_at)
    if response is not None:
        return [replace(attempt, responded=response.timestamp_start, end=response.timestamp_end or now,
                        status=response.status_code)]
    return [replace(attempt, end=now, error="no_response")]


def upstream_seconds(exchange: Any, flow: Any, now: float) -> float:
    """How long the upstream(s) took so far: every attempt's time, the kept one's up to its headers
    (and its body, once read whole)."""
    if exchange.job is not None:
        return sum((t.end or t.responded or now) - t.start for t in exchange.job.tries)
    response = flow.response
    if response is None or not exchange.sent_at:
        return 0.0
    until = response.timestamp_end if response.timestamp_end and not response.stream else response.timestamp_start
    return max(0.0, (until or now) - exchange.sent_at)


def token_counts(usage: Any) -> TokenCounts | None:
    if usage is None:
        return None
    return TokenCounts(usage.input_total, usage.cached_read, usage.cache_write, usage.output_total, usage.reasoning or 0)


def error_kind(exchange: Any, flow: Any, bug: bool) -> str | None:
    """metrics.errors' `kind` of a failed request, None for an answered one."""
    if bug:
        return "llmitm_bug"
    if flow.error is not None:
        # Pooled requests: the relay turns upstream failures into answers, so only the app can have
        # gone away. Otherwise mitmproxy's upstream call failed unless an answer had begun.
        return "client_abort" if exchange.job is not None or flow.response is not None else "upstream"
    response = flow.response
    if response is None or response.status_code < 400:
        return None
    return "no_key" if response.headers.get("x-llmitm-error") == "pool-exhausted" else "upstream"


def _text(body: bytes | None) -> str | None:
    return body.decode("utf-8", "replace") if body else None


def _finish_reasons(translation) -> tuple[str, ...]:
    """`gen_ai.response.finish_reasons`: the canonical stop reason of a translated answer (an untranslated
    one passes through unparsed, so llmitm does not claim to know it)."""
    reason = getattr(translation, "stop_reason", None)
    return (reason,) if isinstance(reason, str) else ()
