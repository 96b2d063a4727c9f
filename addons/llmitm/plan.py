"""What happens to one request the app sent, decided without mitmproxy.

The planner reads what the app sent (method, host, path, headers, body bytes) and the active config,
and answers with a plan, one of:

- `Refuse`: answer here with an error in the app's own protocol (bad JSON, unknown model, a request
  the upstream protocol cannot express, a body over `max_body_bytes`); nothing goes upstream;
- `LocalAnswer`: answer here with a success llmitm computed (a model list from the routes; a token count
  estimated toward an upstream that cannot count);
- `PassThrough`: an intercepted host no route serves: the request goes where the app sent it, untouched;
- `Forward`: send it to the route's provider — the same bytes with only the model rewritten in place, or
  translated through the canonical model — by the relay, with a pooled key (`Forward.pooled`) or the
  app's own credential, streamed or whole (`Forward.streams`).

`Planner.admitted` adds who is asking (clients.py): with `clients:` configured, an unknown caller gets
a 401, a model, provider or key pin outside its grant a 403, a caller over its rate a 429 with
Retry-After — in the app's protocol like every other refusal. Request bodies are screened first
(`Planner.screen_body`): larger than `max_body_bytes` once decoded, or encoded in a way llmitm will not
decode, they are refused before anything parses them.

The addon turns a plan into flow edits (exchange.py); everything here is plain data and unit-tested
like routing.py. This module imports nothing from mitmproxy.
"""

from __future__ import annotations

import json
from typing import Any

from . import bodylimits, clients, endpoints, jsonbytes, surface
from .config import LlmitmConfig
from .flowinfo import FlowRecord
from .plan_model import (  # noqa: F401  (the plan types are part of the planner's interface)
    DEFAULT_PROTOCOL,
    AppRequest,
    BadJson,
    Forward,
    LocalAnswer,
    PassThrough,
    Plan,
    Refuse,
    parse_json_object,
    protocol_of,
    upstream_url,
    without_query_key,
)
from .protocols import Translation, TranslationError, token_count
from .protocols.catalog import ModelInfoTranslation
from .protocols.embeddings import EmbeddingTranslation
from .protocols.registry import REGISTRY, EndpointMatch
from .protocols.sidecall import SideTranslation
from .protocols.spoke import COUNT_TOKENS, EMBEDDINGS, GENERATE, LIST_MODELS, MODEL_INFO, OTHER
from .protocols.surfaces import SURFACES
from .protocols.token_count import CountTranslation
from .routing import RouteDecision, Router, UnknownModel

JSON_BODY_KINDS = frozenset({GENERATE, COUNT_TOKENS, EMBEDDINGS})  # endpoints whose JSON body llmitm reads
MODELLESS_KINDS = frozenset({LIST_MODELS, OTHER, None})  # None: a path no protocol claims


class Planner:
    """Plans requests against one config; rebuilt on every (re)load."""

    def __init__(self, config: LlmitmConfig):
        self.config = config
        self.router = Router(config)
        self.model_limits = surface.ModelLimits()  # what upstreams said about their models, kept briefly
        self.clients = clients.ClientRegistry([c.spec() for c in config.clients])

    def intercepts(self, host: str) -> bool:
        return self.router.intercepts(host)

    def screen_length(self, method: str, path: str, content_length: str | None) -> Refuse | None:
        """Refuse a body declared larger than max_body_bytes before mitmproxy reads it."""
        length = content_length or ""
        if length.isdigit() and int(length) > self.config.max_body_bytes:
            message = f"request body of {length} bytes exceeds llmitm's max_body_bytes ({self.config.max_body_bytes})"
            return Refuse(protocol_of(method, path), 413, message)
        return None

    def screen_body(self, method: str, path: str, raw: bytes, content_encoding: str | None) -> bytes | Refuse:
        """The body as the planner reads it (content-encoding undone, never more than max_body_bytes),
        or a 413 (too large once decoded: a small gzip body can inflate a thousandfold) / 415 (an
        encoding llmitm does not decode, or several stacked) in the app's protocol."""
        try:
            return bodylimits.decode_capped(raw, content_encoding, self.config.max_body_bytes)
        except bodylimits.BodyTooLarge as e:
            return Refuse(protocol_of(method, path), 413, f"request body {e} llmitm's max_body_bytes "
                          f"({self.config.max_body_bytes})")
        except bodylimits.UnreadableEncoding as e:
            return Refuse(protocol_of(method, path), 415 if e.unsupported else 400, f"request body: {e}")

    def admitted(self, req: AppRequest, now: float) -> Plan:
        """`plan(req)` as the calling client may have it (clients.py; see the module docstring).

        An unidentified caller is refused before anything else is looked at, so that a 400 or 404 tells
        a stranger nothing about the routes. A request no route serves passes through untouched: it
        goes to the host the app named, with the app's own credential, spending no pooled key.
        A key pin (`x-llmitm-key`) chooses which pooled key pays: with clients configured only those
        the client's `pins` list; without, only from this machine (a loopback listener address)."""
        credential = clients.app_credential(req.headers, req.path)
        client = self.clients.identify(credential, req.proxy_user)
        protocol = protocol_of(req.method, req.path)
        if client is None:  # a 401 when clients are configured; anyone is admitted when none are
            refusal = self.clients.admit(None, model=None, provider=None, pin=None, now=now)
            if refusal is not None:
                return Refuse(protocol, refusal.status, refusal.message)
        plan = self.plan(req)
        if isinstance(plan, (Refuse, PassThrough)):
            return plan
        plan.record.client = client.name if client is not None else None
        pin = req.headers.get(clients.PIN_HEADER)
        if pin is not None and not self.clients.required and not req.local_listener:
            return Refuse(protocol, 403, f"llmitm: {clients.PIN_HEADER} is honoured only from this machine, or for a "
                                         "configured client whose pins allow it")
        provider = plan.decision.provider_name if isinstance(plan, Forward) else plan.record.provider
        refusal = self.clients.admit(client, model=plan.record.model, provider=provider, pin=pin, now=now)
        if refusal is not None:
            return Refuse(protocol, refusal.status, refusal.message, retry_after=refusal.retry_after)
        if isinstance(plan, Forward):
            plan.client = client
            # A client key is for llmitm only: a route without a pool forwards no credential then.
            plan.forward_app_credential = client is None or self.clients.identify(credential) is not client
        return plan

    def plan(self, req: AppRequest) -> Plan:
        # A shared path (`GET /v1/models`, `/v1/embeddings`) may be several protocols' endpoint: the
        # app's headers and host say which it most likely is (surface.py).
        matches = surface.order_candidates(REGISTRY.candidates(req.method, req.path), req.host, req.headers)
        first = matches[0] if matches else None
        kind = first.endpoint.kind if first else None
        body: dict[str, Any] | None = None
        model: str | None = None
        if first is not None and kind in JSON_BODY_KINDS:
            try:
                body = parse_json_object(req.body)
            except BadJson as e:
                return Refuse(first.protocol, 400, f"malformed JSON in request body: {e}")
            field = REGISTRY.wire(first.protocol).MODEL_FIELD  # None: the model is in the path
            model = body.get(field) if field and isinstance(body.get(field), str) else None
        if first is not None and first.model:
            model = first.model
        try:
            decision = self.router.select(req.host, req.path, model, needs_model=kind not in MODELLESS_KINDS)
        except UnknownModel as e:
            return Refuse(first.protocol if first else DEFAULT_PROTOCOL, 404, str(e), code="model_not_found")
        if decision is None:
            return PassThrough(FlowRecord(client_protocol=first.protocol if first else None, model=model))
        provider = decision.provider
        match = surface.prefer_spoken(matches, req.host, req.headers, provider.protocol)
        protocol = match.protocol if match else surface.unclassified_protocol(req.host, req.headers, provider.protocol)
        upstream_protocol = protocol if protocol in provider.protocol else provider.protocol[0]
        record = FlowRecord(client_protocol=protocol, model=model)
        record.route, record.provider = decision.position, decision.provider_name
        record.upstream_protocol, record.upstream_model = upstream_protocol, decision.upstream_model
        endpoint = endpoints.Endpoint(match) if match else None
        kind = match.endpoint.kind if match else None  # the claimants of a shared path share its kind
        same = protocol is None or protocol == upstream_protocol  # None: no header or host tells; the provider's
        if kind == GENERATE and endpoint is not None:
            # A local model's text conventions (<think>, <tool_call>) are mapped even for an app that
            # speaks the server's own protocol, so that case is translated too.
            if same and provider.local_model is None:
                return self._same_protocol(req, endpoint, body, model, decision, record, upstream_protocol)
            return self._translated(req, endpoint, body or {}, decision, record, upstream_protocol)
        # The upstream's own model list only where the route passes every model through untranslated.
        upstream_lists = same and not surface.restricts_models(decision.route)
        if match is not None and kind in (LIST_MODELS, MODEL_INFO) and not upstream_lists:
            return self._catalog(req, match, decision, record, upstream_protocol)
        if same:
            return self._same_protocol(req, endpoint, body, model, decision, record, upstream_protocol)
        assert protocol is not None  # (`same` covers None)
        if match is not None and kind == COUNT_TOKENS:
            return self._count(req, match, body or {}, decision, record, upstream_protocol)
        if match is not None and kind == EMBEDDINGS:
            return self._embeddings(req, match, body or {}, decision, record, upstream_protocol)
        return self._other(req, protocol, decision, record, upstream_protocol)

    # -- the endpoints beside generation (README "Endpoints") ------------------------------------

    def _catalog(self, req: AppRequest, match: EndpointMatch, decision: RouteDecision, record: FlowRecord,
                 upstream_protocol: str) -> Plan:
        """The models the app may use through its routes, in its protocol's shape: the upstream's own list
        would name models the route does not serve, or be another protocol's answer. Model info asks the
        upstream's own model-info endpoint for its limits (then kept briefly: surface.ModelLimits)."""
        codec = SURFACES[match.protocol].models
        if match.endpoint.kind == MODEL_INFO and match.model:
            target = decision.upstream_model or match.model
            entry = surface.entry(match.model, target, decision.provider_name, self.model_limits)
            if self.model_limits.get(decision.provider_name, target) is None:
                upstream_codec = SURFACES[upstream_protocol].models
                learned = self.model_limits.learner(decision.provider_name, target)
                info = ModelInfoTranslation(match.protocol, upstream_protocol, codec, upstream_codec, entry, learned)
                return _side_forward(req, match, decision, record, upstream_protocol, info, upstream_codec.info_path(target))
            answer = codec.render_info(entry)
        else:
            answer = codec.render_list(surface.catalog(self.config, self.router, req.host, self.model_limits))
        record.warnings.append("answered by llmitm from the routes (model names as the app asks for them)")
        return LocalAnswer(200, json.dumps(answer).encode(), record)

    def _count(self, req: AppRequest, match: EndpointMatch, body: dict, decision: RouteDecision, record: FlowRecord,
               upstream_protocol: str) -> Plan:
        """The upstream's own counting endpoint when it has one (exact), else llmitm's estimate."""
        client, target = SURFACES[match.protocol].count_tokens, SURFACES[upstream_protocol].count_tokens
        assert client is not None  # a protocol that declares a counting endpoint states its shape
        if target is None:
            tokens = token_count.estimate(body)
            record.warnings.append(f"token count estimated locally ({tokens}, ~{token_count.CHARS_PER_TOKEN} "
                                   f"characters per token): {upstream_protocol} has no counting endpoint")
            return LocalAnswer(200, json.dumps(client.render_response(tokens)).encode(), record)
        translation = CountTranslation(match.protocol, upstream_protocol, client, target)
        return _translate_side(req, match, body, decision, record, upstream_protocol, translation)

    def _embeddings(self, req: AppRequest, match: EndpointMatch, body: dict, decision: RouteDecision,
                    record: FlowRecord, upstream_protocol: str) -> Plan:
        client, target = SURFACES[match.protocol].embeddings, SURFACES[upstream_protocol].embeddings
        assert client is not None
        if target is None:
            able = " or ".join(name for name, s in SURFACES.items() if s.embeddings is not None)
            bare = req.path.split("?", 1)[0]
            return Refuse(match.protocol, 400, (
                f"llmitm: routes.{decision.position} sends this embeddings request to {decision.provider_name}, which "
                f"speaks {upstream_protocol}: it has no embeddings API. Add a route before it, e.g. "
                f"{{match: {{host: {req.host}, path: \"{bare}\"}}, provider: <a provider speaking {able}>}}"),
                code="embeddings_not_supported")
        translation = EmbeddingTranslation(match.protocol, upstream_protocol, client, target)
        return _translate_side(req, match, body, decision, record, upstream_protocol, translation)

    @staticmethod
    def _other(req: AppRequest, protocol: str, decision: RouteDecision, record: FlowRecord, upstream_protocol: str) -> Plan:
        """An endpoint of the app's protocol that the route's provider lacks (files, batches, stored
        responses, vendor paths): never sent to that provider, and never with a pooled key."""
        what, where = f"{req.method} {req.path.split('?', 1)[0]}", f"routes.{decision.position}"
        if decision.route.other_endpoints == "original":
            passed = FlowRecord(client_protocol=protocol, model=record.model)
            passed.warnings.append(f"{what}: passed to {req.host} with the app's own credential "
                                   f"({where}.other_endpoints: original)")
            return PassThrough(passed)
        return Refuse(protocol, 404, (
            f"llmitm: {what} is not served: {where} sends this app's requests to {decision.provider_name}, which "
            f"speaks {upstream_protocol}, and llmitm translates only generation, token counting, embeddings and "
            f"model lists. Set {where}.other_endpoints: original to pass it to {req.host} with the app's own key"),
            code="endpoint_not_served")

    @staticmethod
    def _same_protocol(req: AppRequest, endpoint: endpoints.Endpoint | None, body: dict | None, model: str | None,
                       decision: RouteDecision, record: FlowRecord, upstream_protocol: str) -> Plan:
        """Byte for byte, except the model when the route rewrites it (in place: field order,
        whitespace and number formats stay as the app wrote them)."""
        target, path, new_body = decision.upstream_model, without_query_key(req.path), None
        if target is not None and target != model and endpoint is not None:
            if endpoint.model_in_path:
                path = REGISTRY.wire(endpoint.protocol).path_with_model(path, target)
            else:
                try:
                    field = REGISTRY.wire(endpoint.protocol).MODEL_FIELD or "model"
                    new_body = jsonbytes.replace_top_level_string(req.body, field, target)
                except ValueError:
                    return Refuse(endpoint.protocol, 400, "llmitm cannot set the model: the body has no top-level string "
                                  "\"model\"", param="model")
        streams = _asks_to_stream(endpoint, body, path)
        return Forward(record, decision, endpoint.protocol if endpoint else None, upstream_protocol, path,
                       upstream_url(decision.provider.base_url, path), body=new_body, streams=streams)

    @staticmethod
    def _translated(req: AppRequest, endpoint: endpoints.Endpoint, body: dict, decision: RouteDecision,
                    record: FlowRecord, upstream_protocol: str) -> Plan:
        provider = decision.provider
        translation = Translation(endpoint.protocol, upstream_protocol, max_tokens_default=provider.max_tokens_default,
                                  local_model=provider.local_model, unsupported_tools=decision.route.unsupported_tools)
        try:
            upstream = translation.request(body, upstream_model=decision.upstream_model, client_path=req.path)
        except TranslationError as e:
            return Refuse(endpoint.protocol, e.status, e.message, param=e.param)
        record.translated = True
        record.warnings.extend(translation.warnings)
        # Headers of the app's protocol mean nothing (or something else) to the upstream's.
        drop = REGISTRY.foreign_vendor_headers(upstream_protocol, list(req.headers))
        # The translated body goes out plain.
        drop.append("content-encoding")
        set_headers = dict(upstream.headers)
        # The stream translator reads plain bytes; compressed SSE would need a decoder per chunk.
        set_headers["accept-encoding"] = "identity"
        streams = bool(translation.canonical_request is not None and translation.canonical_request.stream)
        return Forward(record, decision, endpoint.protocol, upstream_protocol, upstream.path,
                       upstream_url(provider.base_url, upstream.path), body=upstream.body, drop_headers=tuple(drop),
                       set_headers=set_headers, translation=translation, streams=streams)


def _asks_to_stream(endpoint: endpoints.Endpoint | None, body: dict | None, path: str) -> bool:
    """Whether the app asked for a streamed answer (then the relay streams it back)."""
    return endpoints.asks_to_stream(endpoint, path, body)


def _side_forward(req: AppRequest, match: EndpointMatch, decision: RouteDecision, record: FlowRecord,
                  upstream_protocol: str, translation: SideTranslation, path: str, body: dict | None = None) -> Plan:
    """A call beside generation sent to the upstream's own endpoint for it, its answer translated whole."""
    record.translated = True
    record.warnings.extend(translation.warnings)
    drop = [*REGISTRY.foreign_vendor_headers(upstream_protocol, list(req.headers)), "content-encoding"]
    set_headers = {**REGISTRY.codec(upstream_protocol).REQUEST_HEADERS, "accept-encoding": "identity"}
    return Forward(record, decision, match.protocol, upstream_protocol, path,
                   upstream_url(decision.provider.base_url, path), body=None if body is None else json.dumps(body).encode(),
                   drop_headers=tuple(drop), set_headers=set_headers, translation=translation)


def _translate_side(req: AppRequest, match: EndpointMatch, body: dict, decision: RouteDecision, record: FlowRecord,
                    upstream_protocol: str, translation: CountTranslation | EmbeddingTranslation) -> Plan:
    """A counting or embeddings body translated to the upstream's own endpoint."""
    try:
        path, out = translation.translate_request(body, req.path, decision.upstream_model)
    except TranslationError as e:
        return Refuse(match.protocol, e.status, e.message, param=e.param)
    return _side_forward(req, match, decision, record, upstream_protocol, translation, path, out)
