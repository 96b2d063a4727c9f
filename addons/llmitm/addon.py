"""The mitmproxy glue: option handling and thin hooks, each behind one guard (guard.py).

Hook order for one flow (MITMPROXY.md §2): requestheaders → request → (upstream) → responseheaders
→ response | error. `request` asks the planner (plan.py, no mitmproxy) what to do and carries the
plan out through an `Exchange` (exchange.py), which the later hooks consult: the response is streamed
or translated from `responseheaders`; the key lease is returned and the flow annotated in
`response`/`error`. Every decision lives in a mitmproxy-free module.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import time
from pathlib import Path
from typing import Any

from mitmproxy import ctx, exceptions, http

from . import credentials, sideflows, streaming, upkeep, websocket
from .bodylimits import mitmproxy_body_size_limit
from .config import DEFAULT_CONFIG_PATH, ConfigError, LlmitmConfig, builtin_default, load_config
from .exchange import Exchange, PassThroughCall, answer, header_map
from .guard import fail_closed
from .observe.observer import Observer
from .plan import AppRequest, Forward, PassThrough, Planner, Refuse, protocol_of
from .pool.tasks import bounded, stop_task, stop_tasks
from .provider_pools import PoolRegistry
from .relay import Relay

log = logging.getLogger(__name__)

# Each step of `done` may take this long. Its five steps stay well inside the ten seconds a service
# manager (and tests/harness/proxy.py) grants after SIGTERM before SIGKILL.
SHUTDOWN_STEP_SECONDS = 1.5


class Llmitm:
    """Route, key-swap and translate the AI traffic of an unmodified app."""

    def __init__(self) -> None:
        self.config: LlmitmConfig = builtin_default()
        self.planner = Planner(self.config)
        self.pools = PoolRegistry()
        self.exchanges: dict[str, Exchange] = {}
        self.passing: dict[str, PassThroughCall] = {}  # pass-throughs until their answer's headers
        self.relay = Relay()
        self.observer = Observer.for_config(self.config, self.pools, None)  # usage ledger, metrics, traces
        self.watcher: upkeep.ConfigWatcher | None = None
        self._upkeep: asyncio.Task | None = None
        # Requests being sent through the relay (waiting for a key, or for a whole upstream answer): ended
        # first on shutdown, so that none draws a key and then meets the relay closed under it.
        self._sends: set[asyncio.Future] = set()
        self.stopping = False

    # -- lifecycle ----------------------------------------------------------------------------

    def load(self, loader: Any) -> None:
        loader.add_option(
            "llmitm_config",
            str,
            "",
            "Path of llmitm's YAML config. Empty: config/llmitm.yaml if it exists, else the built-in "
            "default (intercept the known AI hosts, pass their traffic through untouched).",
        )

    def configure(self, updated: set[str]) -> None:
        if "llmitm_config" in updated:
            path = self._config_path(ctx.options.llmitm_config)
            try:
                config = load_config(path) if path else builtin_default()
                self.apply(config)  # ConfigError too when observe.metrics_port is taken
            except ConfigError as e:
                raise exceptions.OptionsError(str(e)) from None
            self.watcher = upkeep.ConfigWatcher(path, self.apply) if path else None

    def apply(self, config: LlmitmConfig) -> None:
        """Make `config` the active one (startup and hot reload). The planner is built first, so a
        config it cannot use leaves the previous one fully active (a metrics port that cannot be had
        turns observation off)."""
        planner = Planner(config)
        self.observer = Observer.for_config(config, self.pools, self.observer)
        planner.clients.inherit_usage(self.planner.clients)
        self.pools.apply(config)
        self.config, self.planner = config, planner
        # Terminate TLS only for the AI hosts; every other host is tunneled untouched. Lazy
        # connections: the original host is never contacted for a rerouted flow. mitmproxy buffers
        # a body only up to body_size_limit, an outer cap above max_body_bytes (bodylimits.py).
        limit = mitmproxy_body_size_limit(config.max_body_bytes, config.max_response_bytes)
        ctx.options.update(allow_hosts=planner.router.allow_hosts_patterns(), connection_strategy="lazy",
                           body_size_limit=str(limit))
        log.info("llmitm: %s: %d providers, %d routes", config.source, len(config.providers), len(config.routes))

    @staticmethod
    def _config_path(option: str) -> Path | None:
        if option:
            return Path(option)
        return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None

    def running(self) -> None:
        # `running` may be called synchronously (script reload): start the upkeep as a task.
        if self._upkeep is None or self._upkeep.done():
            self._upkeep = asyncio.get_running_loop().create_task(upkeep.run(self))

    async def done(self) -> None:
        """Stop everything llmitm started, each step bounded: mitmproxy runs `done` before it drops any
        connection and stays deaf to further signals meanwhile, so one step waiting on a silent
        upstream or collector would keep the proxy from exiting at all. A step that overruns is
        logged and left; the process is ending anyway."""
        self.stopping = True
        upkeep_task, self._upkeep = self._upkeep, None
        if upkeep_task is not None:
            await bounded("stopping the upkeep (config watch, key probes)", stop_task(upkeep_task), SHUTDOWN_STEP_SECONDS)
        if self._sends:
            await bounded("ending the requests still waiting for a key or a whole answer", stop_tasks(self._sends),
                          SHUTDOWN_STEP_SECONDS)
        await bounded("closing the relay (its loopback server and upstream connections)", self.relay.close(),
                      SHUTDOWN_STEP_SECONDS)
        await bounded("closing the observer (ledger rows, traces, metrics port)", self.observer.close(),
                      SHUTDOWN_STEP_SECONDS)
        await bounded("closing the key pools (their last state)", self.pools.close(), SHUTDOWN_STEP_SECONDS)

    # -- request ------------------------------------------------------------------------------

    @fail_closed
    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response or not self.planner.intercepts(flow.request.pretty_host):
            return
        if websocket.is_upgrade(flow.request):  # Codex's Responses WebSocket: 426, so it falls back now
            websocket.refuse(flow)
            return
        refusal = self.planner.screen_length(flow.request.method, flow.request.path, flow.request.headers.get("content-length"))
        if refusal is not None:
            answer(flow, refusal)

    @fail_closed
    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        if not self.planner.intercepts(flow.request.pretty_host):
            return
        body = self.planner.screen_body(flow.request.method, flow.request.path, flow.request.raw_content or b"",
                                        flow.request.headers.get("content-encoding"))
        if isinstance(body, Refuse):
            answer(flow, body)
            return
        plan = self.planner.admitted(app_request(flow, body), time.monotonic())
        if not isinstance(plan, (Forward, PassThrough)):
            answer(flow, plan)
            return
        if self.stopping:  # the relay is closing: refuse in the app's protocol rather than fail on it
            answer(flow, shutting_down(plan, flow))
            return
        if isinstance(plan, PassThrough):
            self.passing[flow.id] = await PassThroughCall.send(flow, plan, self.relay, self.config)
            return
        exchange = self.exchanges[flow.id] = Exchange(plan)
        # In a task of its own, which `done` can end (a request waiting for a key or for a whole answer)
        # while the pools and the relay still stand; the app is then told that llmitm is stopping.
        send = asyncio.ensure_future(exchange.send(flow, self.relay, self.pools, self.config, sideflows.views_enabled()))
        self._sends.add(send)
        send.add_done_callback(self._sends.discard)
        try:
            await asyncio.wait({send})
        except asyncio.CancelledError:  # mitmproxy dropped the flow: its upstream work goes too
            send.cancel()
            raise
        if send.cancelled():  # by `done`
            del self.exchanges[flow.id]
            exchange.abandon(self.relay, flow)  # its key is freed unjudged
            answer(flow, shutting_down(plan, flow))
            self.observer.finished(exchange, flow)  # an attempt that was under way gets its ledger row
            return
        send.result()  # a failure is the guard's to answer

    # -- response -----------------------------------------------------------------------------

    @fail_closed
    def responseheaders(self, flow: http.HTTPFlow) -> None:
        exchange = self.exchanges.get(flow.id)
        if exchange is not None:
            exchange.on_response_headers(flow)
            if flow.response is not None and flow.response.stream:
                self.observer.stamp_overhead(exchange, flow)  # a streamed answer's headers go out now
        elif (call := self.passing.pop(flow.id, None)) is not None:
            call.on_response_headers(flow)
        elif self.planner.intercepts(flow.request.pretty_host):
            credentials.redact(flow.request)

    @fail_closed
    def response(self, flow: http.HTTPFlow) -> None:
        exchange = self.exchanges.get(flow.id)
        if exchange is not None:
            exchange.on_response(flow)
            if not flow.response.stream:
                self.observer.stamp_overhead(exchange, flow)  # a whole answer's headers go out now
            self.observer.finished(exchange, flow)
            del self.exchanges[flow.id]  # only now: after a bug, the guard still finds the exchange
            self.account(exchange)

    @fail_closed
    def error(self, flow: http.HTTPFlow) -> None:
        exchange = self.exchanges.get(flow.id)
        if exchange is not None:
            if streaming.settle_hangup_after_answer(flow):  # the app hung up after the whole answer
                exchange.on_response(flow)
            else:
                exchange.on_error(flow, self.relay)
            self.observer.finished(exchange, flow)
            del self.exchanges[flow.id]
            self.account(exchange)
        elif (call := self.passing.pop(flow.id, None)) is not None:
            call.restore(flow, self.relay)
        elif self.planner.intercepts(flow.request.pretty_host):
            credentials.redact(flow.request)

    def account(self, exchange: Exchange) -> None:
        """The answer's tokens count toward its client's tokens per minute (known only afterwards)."""
        self.planner.clients.record_tokens(exchange.plan.client, sum(exchange.usage), time.monotonic())

    def abandon(self, flow: http.HTTPFlow) -> str | None:
        """After a bug (guard.py): drop the flow's state, free its key unjudged."""
        if (call := self.passing.pop(flow.id, None)) is not None:
            call.restore(flow, self.relay)
        exchange = self.exchanges.pop(flow.id, None)
        if exchange is None:
            return None
        exchange.abandon(self.relay, flow)
        self.observer.finished(exchange, flow, bug=True)
        return exchange.client_protocol


def shutting_down(plan: Forward | PassThrough, flow: http.HTTPFlow) -> Refuse:
    protocol = plan.client_protocol if isinstance(plan, Forward) else plan.record.client_protocol
    protocol = protocol or protocol_of(flow.request.method, flow.request.path)
    return Refuse(protocol, 503, "llmitm is shutting down; retry on another instance", retry_after=1)


def app_request(flow: http.HTTPFlow, body: bytes) -> AppRequest:
    """What the planner needs of the flow's request; `body` is the screened, decoded body."""
    request = flow.request
    headers = header_map(request.headers)
    proxyauth = flow.metadata.get("proxyauth")
    proxy_user = proxyauth[0] if isinstance(proxyauth, (tuple, list)) and proxyauth else None
    return AppRequest(request.method, request.pretty_host, request.path, headers, body, proxy_user=proxy_user,
                      local_listener=reached_on_loopback(flow))


def reached_on_loopback(flow: http.HTTPFlow) -> bool:
    """Whether the app connected to a loopback address of the proxy (so it runs on this machine)."""
    try:
        return is_loopback_address(str(flow.client_conn.sockname[0]))
    except (IndexError, TypeError):
        return False


@functools.lru_cache(maxsize=64)  # the proxy's own listening addresses: a handful
def is_loopback_address(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback
