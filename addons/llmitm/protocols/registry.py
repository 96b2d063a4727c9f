"""Every wire protocol llmitm speaks, in one list, and the questions the rest of llmitm asks about them.

Modules outside protocols/ name no protocol: they ask `REGISTRY` (which endpoint an app called,
whether it asked for a stream, where a key goes, which headers belong to which vendor, ...) and
the answer comes from the spokes' wire.py files (spoke.py states their contract). Adding a protocol
is one package and one entry in the list below (README.md).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from . import anthropic, gemini, openai_chat, openai_responses
from .spoke import Carrier, Codec, Endpoint, SpokeRecord, Wire


@dataclass(frozen=True)
class EndpointMatch:
    """The endpoint an app called: whose protocol it is, which of its endpoints, and the model its
    path names (None when the model is in the body, or not routed)."""

    protocol: str
    endpoint: Endpoint
    model: str | None


class UnknownProtocol(ValueError):
    """A protocol name no spoke registers (a config or code error, not the app's)."""


class Registry:
    def __init__(self, spokes: Iterable[SpokeRecord]):
        self._spokes: dict[str, SpokeRecord] = {}
        for spoke in spokes:
            if spoke.name in self._spokes:
                raise ValueError(f"protocol {spoke.name!r} registered twice")
            self._spokes[spoke.name] = spoke
        self.names: tuple[str, ...] = tuple(self._spokes)
        carriers: list[Carrier] = []
        for spoke in self._spokes.values():
            carriers.extend(c for c in spoke.wire.CARRIERS if c not in carriers)
        # Every place any protocol's apps put a key: an app's key is looked for (and masked) in all.
        self.carriers: tuple[Carrier, ...] = tuple(carriers)
        self.credential_header_names: frozenset[str] = frozenset(c.name for c in carriers if not c.in_query)
        # Every request asks which endpoints its path fits, two or three times, and the answer depends
        # on the method and path alone: a bounded cache spares ~30 regex searches each time.
        self._endpoints_for = functools.lru_cache(maxsize=4096)(self._scan)
        self._host_protocols = {host: tuple(names) for host, names in self.known_hosts().items()}

    # -- lookups by name ----------------------------------------------------------------------

    def __iter__(self) -> Iterator[SpokeRecord]:
        return iter(self._spokes.values())

    def __contains__(self, name: object) -> bool:
        return name in self._spokes

    def __getitem__(self, name: str) -> SpokeRecord:
        try:
            return self._spokes[name]
        except KeyError:
            raise UnknownProtocol(f"unknown protocol {name!r} (known: {', '.join(self.names)})") from None

    def codec(self, name: str) -> Codec:
        return self[name].codec

    def wire(self, name: str) -> Wire:
        return self[name].wire

    # -- endpoints ----------------------------------------------------------------------------

    def classify(self, method: str, path: str) -> EndpointMatch | None:
        """The endpoint an app called, or None for a path no protocol claims or several claim
        (`GET /v1/models` is OpenAI's and Anthropic's alike: the path alone does not tell)."""
        found = self.candidates(method, path)
        return found[0] if len(found) == 1 else None

    def candidates(self, method: str, path: str) -> list[EndpointMatch]:
        """Every protocol's endpoint that `method` and `path` fit, in registry order (one per protocol;
        several for a shared path, which the caller tells apart by host and headers: plan.py)."""
        return list(self._endpoints_for(method, path.split("?", 1)[0]))

    def _scan(self, method: str, bare_path: str) -> tuple[EndpointMatch, ...]:
        found: list[EndpointMatch] = []
        for spoke in self._spokes.values():
            for endpoint in spoke.wire.ENDPOINTS:
                m = endpoint.match(method, bare_path)
                if m:
                    found.append(EndpointMatch(spoke.name, endpoint, m.groupdict().get("model")))
                    break
        return tuple(found)

    def asks_to_stream(self, match: EndpointMatch | None, path: str, body: Mapping | None) -> bool:
        """Whether the app asked for a streamed answer: by the endpoint it called, its body's stream
        flag or its query. For an endpoint no protocol claims, any protocol's way counts."""
        wires = [self.wire(match.protocol)] if match is not None else [s.wire for s in self._spokes.values()]
        if match is not None and match.endpoint.streams:
            return True
        query = parse_qsl(path.partition("?")[2], keep_blank_values=True)
        for wire in wires:
            if wire.STREAM_FLAG is not None and body is not None and body.get(wire.STREAM_FLAG) is True:
                return True
            if wire.STREAM_QUERY is not None and wire.STREAM_QUERY in query:
                return True
        return False

    # -- hosts, credentials and headers -------------------------------------------------------

    def known_hosts(self) -> dict[str, list[str]]:
        """The AI hosts llmitm knows without being told, and the protocols each speaks (registry order)."""
        hosts: dict[str, list[str]] = {}
        for spoke in self._spokes.values():
            for host in spoke.wire.HOSTS:
                hosts.setdefault(host, []).append(spoke.name)
        return hosts

    def protocols_of_host(self, host: str) -> tuple[str, ...]:
        """The protocols a known AI host speaks (registry order); empty for any other host."""
        return self._host_protocols.get(host.lower(), ())

    def credential_headers(self, protocol: str, secret: str, present: Iterable[str] = ()) -> list[tuple[str, str]]:
        """The headers that carry `secret` to an upstream speaking `protocol`, plus the headers that
        upstream requires and `present` (the request's header names) lacks."""
        wire = self.wire(protocol)
        carrier = next(c for c in wire.CARRIERS if not c.in_query)
        have = {name.lower() for name in present}
        out = [(carrier.name, carrier.prefix + secret)]
        out += [(name, value) for name, value in wire.REQUIRED_HEADERS.items() if name not in have]
        return out

    def foreign_vendor_headers(self, upstream: str, names: Iterable[str]) -> list[str]:
        """Of `names`, the vendor headers of other protocols' apps (`anthropic-beta` toward OpenAI,
        `x-goog-api-client` toward Anthropic), which mean nothing or something else upstream.
        Credential carriers are kept: they are taken and swapped separately."""
        own = tuple(self.wire(upstream).VENDOR_HEADER_PREFIXES)
        prefixes = {p for s in self._spokes.values() for p in s.wire.VENDOR_HEADER_PREFIXES if p not in own}
        return [name for name in names
                if name.lower() not in self.credential_header_names and name.lower().startswith(tuple(prefixes))]


REGISTRY = Registry([openai_chat.SPOKE, openai_responses.SPOKE, anthropic.SPOKE, gemini.SPOKE])
