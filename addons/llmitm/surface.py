"""The planner's view of the endpoints beside generation (model lists and info, token counting,
embeddings, everything else on an intercepted host), without mitmproxy.

Which protocol an app speaks is not always in its path: `GET /v1/models` is OpenAI's, Anthropic's
and Gemini v1's alike, and a vendor path such as Claude Code's `/api/claude_code/…` is no protocol's
endpoint at all. `plausible_protocols` tells them apart by the app's own headers (the Anthropic SDK
always sends `anthropic-version`, google-genai `x-goog-api-client`; `x-api-key` and `x-goog-api-key`
are only those protocols' key carriers), then by the host the app called (a known AI host). Every fact
comes from the protocols' wire.py files through the registry: this module names no protocol.

`catalog` lists the models an app may use through its routes, for the model list and model info that
llmitm answers itself on a route that restricts or translates models.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Iterable, Mapping
from functools import cache

from .config import LlmitmConfig, RouteConfig
from .observe.prices import PriceTable
from .protocols.catalog import Limits, ModelEntry
from .protocols.registry import REGISTRY, EndpointMatch
from .routing import Router, UnknownModel

GLOB_CHARS = frozenset("*?[")
MODEL_LIMITS_TTL = 300.0  # seconds an upstream's model limits are reused before it is asked again


@cache
def _own_header_prefixes() -> dict[str, tuple[str, ...]]:
    """Per protocol: header names (or prefixes) only its apps send — its vendor prefixes and the key
    carriers no other protocol uses."""
    carrier_users: dict[str, set[str]] = {}
    for spoke in REGISTRY:
        for carrier in spoke.wire.CARRIERS:
            if not carrier.in_query:
                carrier_users.setdefault(carrier.name, set()).add(spoke.name)
    out = {}
    for spoke in REGISTRY:
        own = [c.name for c in spoke.wire.CARRIERS if not c.in_query and carrier_users[c.name] == {spoke.name}]
        out[spoke.name] = (*spoke.wire.VENDOR_HEADER_PREFIXES, *own)
    return out


@cache
def _any_own_header_prefix() -> tuple[str, ...]:
    return tuple(p for prefixes in _own_header_prefixes().values() for p in prefixes)


def hinted_protocols(header_names: Iterable[str]) -> set[str]:
    """The protocols whose apps' own headers the request carries. (Most headers name no protocol:
    one test against every prefix at once sets them aside before the per-protocol look.)"""
    names = [n for n in (name.lower() for name in header_names) if n.startswith(_any_own_header_prefix())]
    if not names:
        return set()
    return {protocol for protocol, prefixes in _own_header_prefixes().items()
            if any(n.startswith(prefixes) for n in names)}


def plausible_protocols(names: Iterable[str], host: str, headers: Mapping[str, str]) -> list[str]:
    """Of the protocols `names` (registry order), those the app most likely speaks: the ones its
    headers name, else the ones its (known) host speaks; empty when neither tells."""
    names = list(names)
    hinted = hinted_protocols(headers)
    by_headers = [n for n in names if n in hinted]
    if by_headers:
        return by_headers
    known = REGISTRY.protocols_of_host(host)
    return [n for n in names if n in known]


def order_candidates(matches: list[EndpointMatch], host: str, headers: Mapping[str, str]) -> list[EndpointMatch]:
    """The endpoints a shared path may be, most plausible first (registry order among equals)."""
    if len(matches) <= 1:
        return matches
    plausible = plausible_protocols([m.protocol for m in matches], host, headers)
    return sorted(matches, key=lambda m: m.protocol not in plausible) if plausible else matches


def prefer_spoken(matches: list[EndpointMatch], host: str, headers: Mapping[str, str],
                  spoken: list[str]) -> EndpointMatch | None:
    """Of equally plausible endpoints, one the provider speaks (then nothing is translated): both OpenAI
    protocols list `/v1/embeddings`; an unknown host with no telling header may be any protocol."""
    if not matches:
        return None
    plausible = plausible_protocols([m.protocol for m in matches], host, headers) or [m.protocol for m in matches]
    for m in matches:
        if m.protocol in plausible and m.protocol in spoken:
            return m
    return matches[0]


def unclassified_protocol(host: str, headers: Mapping[str, str], spoken: list[str]) -> str | None:
    """The protocol of a path no protocol claims (files, batches, vendor paths): by headers and host,
    preferring one the provider speaks; None when nothing tells (then it is taken as the provider's)."""
    plausible = plausible_protocols(REGISTRY.names, host, headers)
    for name in plausible:
        if name in spoken:
            return name
    return plausible[0] if plausible else None


# -- the model catalog ----------------------------------------------------------------------------

def is_glob(pattern: str) -> bool:
    return bool(GLOB_CHARS & set(pattern))


def restricts_models(route: RouteConfig) -> bool:
    """Whether a route chooses or limits the models (then the upstream's own list would be wrong)."""
    return route.model is not None or bool(route.model_map) or route.match.model is not None


@cache
def _prices() -> PriceTable:
    return PriceTable.load()


class ModelLimits:
    """What upstreams said about their models' limits (model info asked on an app's behalf), kept
    briefly so that model lists and repeated model info are answered without asking again."""

    def __init__(self, ttl: float = MODEL_LIMITS_TTL, clock: Callable[[], float] = time.monotonic):
        self.ttl, self.clock = ttl, clock
        self._known: dict[tuple[str, str], tuple[float, Limits]] = {}

    def get(self, provider: str, model: str) -> Limits | None:
        found = self._known.get((provider, model))
        if found is None or found[0] < self.clock():
            return None
        return found[1]

    def learner(self, provider: str, model: str) -> Callable[[Limits], None]:
        def learned(limits: Limits) -> None:
            self._known[(provider, model)] = (self.clock() + self.ttl, limits)
        return learned


def entry(name: str, upstream_model: str | None, provider: str, known: ModelLimits | None = None) -> ModelEntry:
    """One model as the app names it, with the upstream model's limits: as the upstream stated them
    (`known`), else from the price table (LiteLLM's `max_input_tokens`/`max_output_tokens`)."""
    target = upstream_model or name
    table_input, table_output = _prices().context_window(target)
    stated = known.get(provider, target) if known is not None else None
    input_limit, output_limit = stated if stated is not None else (None, None)
    return ModelEntry(name, upstream_model, provider, input_limit or table_input, output_limit or table_output)


def route_serves_host(route: RouteConfig, host: str, router: Router) -> bool:
    if route.match.host is None:
        return router.intercepts(host)  # a route without a host matcher applies to every intercepted host
    return fnmatch.fnmatchcase(host.lower(), route.match.host.lower())


def catalog(config: LlmitmConfig, router: Router, host: str, known: ModelLimits | None = None) -> list[ModelEntry]:
    """The models an app on `host` may ask for by name: per route, its model matcher and model_map keys
    that are not globs, and its `model` (every name reaches it, so its own is one) — each listed only
    where a generation request naming it would take that route (routes matching a path serve only that
    endpoint)."""
    entries: dict[str, ModelEntry] = {}
    for i, route in enumerate(config.routes):
        if route.match.path is not None or not route_serves_host(route, host, router):
            continue
        names = [route.match.model] if route.match.model and not is_glob(route.match.model) else []
        names += [key for key in route.model_map if not is_glob(key)]
        names += [route.model] if route.model else []
        for name in names:
            try:
                decision = router.select(host, "/", name)
            except UnknownModel:
                continue
            if decision is not None and decision.position == i and name not in entries:
                entries[name] = entry(name, decision.upstream_model, route.provider, known)
    return list(entries.values())
