"""Route selection: which provider and model serve a request, from host, path and model.

Routes are tried in config order; the first whose `match` fits wins. A host that llmitm
intercepts but no route serves is passed through to where the app sent it (inspection).
"""

from __future__ import annotations

import fnmatch
import re
from typing import NamedTuple

from .config import LlmitmConfig, ProviderConfig, RouteConfig


class RouteDecision(NamedTuple):
    position: int  # index in config.routes, for messages that name the field
    route: RouteConfig
    provider_name: str
    provider: ProviderConfig
    upstream_model: str | None


class UnknownModel(Exception):
    """The matched route has a model_map without an entry for the requested model."""

    def __init__(self, model: str | None, index: int, route: RouteConfig):
        known = ", ".join(route.model_map) or "-"
        super().__init__(
            f"model {model!r} is not served here: routes.{index}.model_map has no entry for it (patterns: {known})"
        )


class Router:
    def __init__(self, config: LlmitmConfig):
        self.config = config
        patterns = [fnmatch.translate(h.lower()) for h in config.intercepted_hosts()]
        self._intercept = re.compile("|".join(patterns)) if patterns else None

    def intercepts(self, host: str) -> bool:
        return bool(self._intercept and self._intercept.match(host.lower()))

    def select(self, host: str, path: str, model: str | None, *, needs_model: bool = True) -> RouteDecision | None:
        """The route serving the request. `needs_model=False`: a request that names no model (a model
        list, a file upload) matches a model_map route too, with no upstream model."""
        bare = path.split("?", 1)[0]
        host = host.lower()
        for i, route in enumerate(self.config.routes):
            if route.match.host is None and not self.intercepts(host):
                continue  # a route without a host matcher applies to every intercepted host
            if not route.match.matches(host, bare, model):
                continue
            upstream_model = route.upstream_model(model)
            if upstream_model is None and route.model_map and (needs_model or model is not None):
                raise UnknownModel(model, i, route)
            return RouteDecision(i, route, route.provider, self.config.providers[route.provider], upstream_model)
        return None

    def allow_hosts_patterns(self) -> list[str]:
        """Regexes for mitmproxy's allow_hosts option (host, optional :port)."""
        out = []
        for h in self.config.intercepted_hosts():
            rx = fnmatch.translate(h.lower()).removesuffix(r"\Z").removeprefix("(?s:").removesuffix(")")
            out.append(f"^(?i:{rx})(:\\d+)?$")
        return out
