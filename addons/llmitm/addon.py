"""The mitmproxy glue: thin hooks that hand each AI flow to routing, the key pool and translation.

Hook order for one flow (MITMPROXY.md §2): requestheaders → request → (upstream) → responseheaders
→ response | error. The request is rewritten in `request`; the response is streamed or translated
from `responseheaders`; the key lease is returned and the flow annotated in `response`/`error`.
Every decision lives in a mitmproxy-free module; this file only moves data between them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any, NamedTuple

from mitmproxy import ctx, exceptions, http

from . import credentials, endpoints, flowinfo, jsonbytes, relay, sideflows, upkeep
from .config import DEFAULT_CONFIG_PATH, ConfigError, LlmitmConfig, builtin_default, load_config
from .exchange import Exchange, Refused, upstream_url
from .protocols.errors import render_error
from .provider_pools import PoolRegistry
from .relay import Candidate, Relay, RelayJob
from .routing import Router, UnknownModel
from .streaming import StreamTap, sse_headers

log = logging.getLogger(__name__)

PIN_HEADER = "x-llmitm-key"


class Llmitm:
    """Route, key-swap and translate the AI traffic of an unmodified app."""

    def __init__(self) -> None:
        self.config: LlmitmConfig = builtin_default()
        self.router = Router(self.config)
        self.pools = PoolRegistry()
        self.exchanges: dict[str, Exchange] = {}
        self.relay = Relay()
        self.watcher: upkeep.ConfigWatcher | None = None
        self._upkeep: asyncio.Task | None = None

    # -- lifecycle ---------------------------------------------------------------------------

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
            except ConfigError as e:
                raise exceptions.OptionsError(str(e)) from None
            self.apply(config)
            self.watcher = upkeep.ConfigWatcher(path, self.apply) if path else None

    def apply(self, config: LlmitmConfig) -> None:
        """Make `config` the active one (startup and hot reload)."""
        self.pools.apply(config)
        self.config = config
        self.router = Router(config)
        # Terminate TLS only for the AI hosts; every other host is tunneled untouched. Lazy
        # connections: the original host is never contacted for a rerouted flow.
        ctx.options.update(allow_hosts=self.router.allow_hosts_patterns(), connection_strategy="lazy")
        log.info("llmitm: %s: %d providers, %d routes", config.source, len(config.providers), len(config.routes))

    @staticmethod
    def _config_path(option: str) -> Path | None:
        if option:
            return Path(option)
        return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None

    def running(self) -> None:
        # `running` may be called synchronously (script reload): start the upkeep as a task.
        if self._upkeep is None or self._upkeep.done():
            self._upkeep = asyncio.get_running_loop().create_task(self._run_upkeep())

    async def _run_upkeep(self) -> None:
        probes: set[asyncio.Task] = set()
        for pool in list(self.pools.pools.values()):
            try:
                await pool.load()  # persisted cooldowns and disabled keys, before any request (probes)
            except Exception:
                log.exception("llmitm: reading pool state failed")
        while True:
            await asyncio.sleep(upkeep.TICK_SECONDS)
            try:
                if self.watcher is not None:
                    self.watcher.check()
                await upkeep.probe_due_keys(self.config, self.pools.pools, self.relay, probes)
            except Exception:  # upkeep must outlive any one failure
                log.exception("llmitm: upkeep failed")

    async def done(self) -> None:
        if self._upkeep is not None:
            self._upkeep.cancel()
        await self.relay.close()
        await self.pools.close()

    # -- request -----------------------------------------------------------------------------

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response or not self.router.intercepts(flow.request.pretty_host):
            return
        length = flow.request.headers.get("content-length", "")
        if length.isdigit() and int(length) > self.config.max_body_bytes:
            endpoint = endpoints.classify(flow.request.method, flow.request.path)
            protocol = endpoint.protocol if endpoint else "openai-chat"
            message = f"request body of {length} bytes exceeds llmitm's max_body_bytes ({self.config.max_body_bytes})"
            self._reply_error(flow, protocol, 413, message)

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        if _aims_at_web_ui(flow):
            # mitmweb 11 has no auth and lacks the CVE-2025-23217 fix: never proxy to its port.
            flow.response = http.Response.make(403, b"llmitm: requests to the web UI through the proxy are refused")
            return
        if not self.router.intercepts(flow.request.pretty_host):
            return
        incoming = self._read(flow)
        if incoming is None:
            return
        exchange = self._plan(flow, incoming)
        if exchange is not None:
            await self._send(flow, exchange, incoming)

    def _read(self, flow: http.HTTPFlow) -> Incoming | None:
        """What the app asked for: its protocol, its JSON body and its model (None: answered with an error)."""
        endpoint = endpoints.classify(flow.request.method, flow.request.path)
        body: dict | None = None
        model: str | None = None
        if endpoint and (endpoint.translatable or endpoint.counts_tokens):
            try:
                body = json.loads(flow.request.get_content() or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("the body must be a JSON object")
            except ValueError as e:
                self._reply_error(flow, endpoint.protocol, 400, f"malformed JSON in request body: {e}")
                return None
            model = body.get("model") if isinstance(body.get("model"), str) else None
        if endpoint and endpoint.model_in_path:
            model = endpoint.model_in_path
        return Incoming(endpoint, body, model)

    def _plan(self, flow: http.HTTPFlow, incoming: Incoming) -> Exchange | None:
        """Pick the route and rewrite the request for its provider (translated when the protocols
        differ). None when the flow is answered here or passes through untouched."""
        endpoint, body, model = incoming
        protocol = endpoint.protocol if endpoint else None
        try:
            decision = self.router.select(flow.request.pretty_host, flow.request.path, model)
        except UnknownModel as e:
            self._reply_error(flow, protocol or "openai-chat", 404, str(e), code="model_not_found")
            return None
        record = flowinfo.FlowRecord(client_protocol=protocol, model=model)
        if decision is None:
            flowinfo.publish(flow, record)
            return None
        provider = decision.provider
        upstream_protocol = protocol if protocol in provider.protocol else provider.protocol[0]
        exchange = Exchange(record, protocol, upstream_protocol, decision)
        record.route, record.provider = decision.position, decision.provider_name
        record.upstream_protocol, record.upstream_model = upstream_protocol, decision.upstream_model
        try:
            # A local model's text conventions (<think>, <tool_call>) are mapped even for an app
            # that speaks the server's own protocol, so that case is translated too.
            local = provider.local_model is not None and bool(endpoint and endpoint.translatable)
            if protocol is None or (protocol == upstream_protocol and not local):
                self._rewrite_model(flow, endpoint, decision.upstream_model, model)
                exchange.retarget(flow, flow.request.path)
            elif endpoint and endpoint.counts_tokens:
                self._estimate_token_count(flow, record, upstream_protocol)
                return None
            elif endpoint and endpoint.translatable:
                exchange.start_translation(flow, body or {}, sideflows.views_enabled())
            else:
                raise Refused(404, f"llmitm cannot translate {flow.request.path} from {protocol} to {upstream_protocol}")
        except Refused as e:
            self._reply_error(flow, protocol or "openai-chat", e.status, str(e), param=e.param)
            return None
        return exchange

    async def _send(self, flow: http.HTTPFlow, exchange: Exchange, incoming: Incoming) -> None:
        """Credentials, then the upstream call: pooled ones through the relay, others by mitmproxy."""
        provider = exchange.decision.provider
        pin = flow.request.headers.pop(PIN_HEADER, None)
        client_secret = credentials.take_client_credential(flow.request)
        for name, value in provider.headers.items():
            flow.request.headers[name] = value
        self.exchanges[flow.id] = exchange
        if provider.pooled:
            # The relay draws the key and retries on another; the flow never holds the pooled key.
            exchange.record.credential = "pooled"
            exchange.job = RelayJob(self._candidates(exchange, flow.request.url), pin=pin)
            if _streams(flow, incoming, exchange):
                flow.request.url = await self.relay.submit(exchange.job)
            else:
                await self._fetch(flow, exchange)
        elif client_secret:
            credentials.put_credential(flow.request, exchange.upstream_protocol, client_secret)
        flowinfo.publish(flow, exchange.record)

    async def _fetch(self, flow: http.HTTPFlow, exchange: Exchange) -> None:
        """A request that does not stream: llmitm calls upstream itself and answers the flow whole."""
        headers = [(k, v) for k, v in flow.request.headers.items(multi=True) if k.lower() not in relay.HOP_BY_HOP]
        answer = await self.relay.fetch(exchange.job, flow.request.method, headers, flow.request.raw_content or b"")
        response = http.Response.make(answer.status, b"", http.Headers([(k.encode(), v.encode()) for k, v in answer.headers]))
        response.raw_content = answer.body  # as the upstream sent it (content-encoding kept)
        response.headers["content-length"] = str(len(answer.body))
        flow.response = response
        exchange.relayed(flow)

    def _candidates(self, exchange: Exchange, url: str) -> list[Candidate]:
        """The route's provider, then each fallback that speaks the same upstream protocol."""
        decision = exchange.decision
        out = [Candidate(decision.provider_name, exchange.upstream_protocol, url, self.pools.get(decision.provider_name),
                         timeout=decision.provider.timeout_seconds)]
        for name in decision.route.fallback:
            fallback = self.config.providers[name]
            if not fallback.pooled or exchange.upstream_protocol not in fallback.protocol:
                exchange.record.warnings.append(
                    f"fallback {name} skipped: it needs a pool and must speak {exchange.upstream_protocol}")
                continue
            out.append(Candidate(name, exchange.upstream_protocol, upstream_url(fallback.base_url, exchange.upstream_path),
                                 self.pools.get(name), timeout=fallback.timeout_seconds))
        return out

    @staticmethod
    def _estimate_token_count(flow: http.HTTPFlow, record: flowinfo.FlowRecord, upstream_protocol: str) -> None:
        """Anthropic's count_tokens has no twin elsewhere; Claude Code calls it, so answer with an
        estimate (about 4 characters per token of the prompt's JSON) rather than fail the app."""
        try:
            body = json.loads(flow.request.get_content() or b"{}")
            prompt = json.dumps([body.get("system"), body.get("messages"), body.get("tools")], ensure_ascii=False)
        except (ValueError, AttributeError):
            prompt = ""
        estimate = max(1, len(prompt) // 4)
        record.warnings.append(
            f"count_tokens estimated locally ({estimate}, ~4 characters per token): {upstream_protocol} has no such endpoint")
        body = json.dumps({"input_tokens": estimate}).encode()
        flow.response = http.Response.make(200, body, {"content-type": "application/json"})
        credentials.redact(flow.request)
        flowinfo.publish(flow, record)

    @staticmethod
    def _rewrite_model(flow: http.HTTPFlow, endpoint: endpoints.Endpoint | None, target: str | None, model: str | None) -> None:
        if target is None or target == model or endpoint is None:
            return
        if endpoint.protocol == "gemini":
            flow.request.path = endpoints.gemini_path_with_model(flow.request.path, target)
        else:
            flow.request.content = jsonbytes.replace_top_level_string(flow.request.get_content() or b"", "model", target)

    # -- response ----------------------------------------------------------------------------

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        exchange = self.exchanges.get(flow.id)
        if exchange is None:
            if self.router.intercepts(flow.request.pretty_host):
                credentials.redact(flow.request)
            return
        # The request is on the wire: from here on no credential may remain readable on the flow.
        credentials.redact(flow.request)
        exchange.relayed(flow)
        response = flow.response
        assert response is not None
        is_sse = response.headers.get("content-type", "").startswith("text/event-stream")
        if exchange.translation is not None:
            if sideflows.views_enabled():
                exchange.upstream_response = response.copy()
            if is_sse and 200 <= response.status_code < 300:
                keep_raw = exchange.upstream_response is not None
                encoding = response.headers.get("content-encoding")
                sse_headers(flow)  # drops content-encoding: the translated stream goes out plain
                translator = exchange.translation.stream(content_encoding=encoding)
                response.stream = StreamTap(flow, exchange, translator, keep_raw)
            else:
                response.stream = False  # translated whole in `response`
        elif is_sse:
            exchange.meter.content_encoding = response.headers.get("content-encoding")
            response.stream = StreamTap(flow, exchange, None)

    def response(self, flow: http.HTTPFlow) -> None:
        exchange = self.exchanges.pop(flow.id, None)
        if exchange is None:
            return
        response = flow.response
        assert response is not None
        upstream_body = b""
        if isinstance(response.stream, StreamTap) and response.stream.raw is not None:
            upstream_body = b"".join(response.stream.raw)
        if exchange.translation is not None and not isinstance(response.stream, StreamTap):
            upstream_body = response.raw_content or b""
            exchange.translate_whole(flow, upstream_body)
        elif exchange.translation is None and not isinstance(response.stream, StreamTap):
            try:
                exchange.meter.read_body(response.get_content() or b"")
            except ValueError:  # undecodable content-encoding: passed on as it came
                pass
        exchange.finish(flow)
        flowinfo.publish(flow, exchange.record)
        if exchange.upstream_response is not None and exchange.client_request is not None:
            sideflows.publish_upstream_side(flow, exchange.client_request, exchange.upstream_response, upstream_body)

    def error(self, flow: http.HTTPFlow) -> None:
        if flow.id in self.exchanges or self.router.intercepts(flow.request.pretty_host):
            credentials.redact(flow.request)
        exchange = self.exchanges.pop(flow.id, None)
        if exchange is None:
            return
        if exchange.job is not None:
            self.relay.forget(flow.request.url)
            exchange.relayed(flow)
        exchange.record.error = flow.error.msg if flow.error else "unknown error"
        exchange.finish(flow)
        flowinfo.publish(flow, exchange.record)

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _reply_error(
        flow: http.HTTPFlow,
        protocol: str,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        headers = {"content-type": "application/json", "x-llmitm-error": "1"}
        credentials.redact(flow.request)  # answered here, but the app's key is still not for display
        flow.response = http.Response.make(status, render_error(protocol, status, message, param=param, code=code), headers)
        flow.comment = f"llmitm: {status}: {message}"


class Incoming(NamedTuple):
    endpoint: endpoints.Endpoint | None
    body: dict | None  # parsed JSON, for generation endpoints
    model: str | None


def _streams(flow: http.HTTPFlow, incoming: Incoming, exchange: Exchange) -> bool:
    """Whether the app asked for a streamed answer (then the relay streams it back)."""
    if exchange.translation is not None and exchange.translation.canonical_request is not None:
        return bool(exchange.translation.canonical_request.stream)
    if incoming.endpoint is not None and incoming.endpoint.stream_in_path:
        return True
    return bool(incoming.body and incoming.body.get("stream") is True) or endpoints.asks_for_sse(flow.request.path)


def _aims_at_web_ui(flow: http.HTTPFlow) -> bool:
    if "web_port" not in ctx.options:
        return False
    local = {"127.0.0.1", "localhost", "::1", ctx.options.web_host}
    return flow.request.port == ctx.options.web_port and flow.request.host in local

