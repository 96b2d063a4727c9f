"""Which wire protocol an app is speaking, told from the request's method and path: the addon's
view of `protocols.REGISTRY.classify` (the endpoints themselves are each protocol's wire.py).

The protocol of the endpoint the app called is the *client protocol*; the provider's configured
protocol is the *upstream protocol*. Only the generation endpoints are translated; every other
endpoint (model lists, embeddings, count_tokens, ...) is forwarded as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from .protocols.registry import REGISTRY, EndpointMatch
from .protocols.spoke import GENERATE

# The protocol of llmitm's own errors for a request whose protocol is unknown (an unclassified path):
# the first registered, OpenAI Chat, whose error shape is the most widely understood.
FALLBACK_PROTOCOL = REGISTRY.names[0]


@dataclass(frozen=True)
class Endpoint:
    match: EndpointMatch

    @property
    def protocol(self) -> str:
        return self.match.protocol

    @property
    def translatable(self) -> bool:
        """A generation endpoint llmitm can translate to another protocol."""
        return self.match.endpoint.kind == GENERATE

    @property
    def model_in_path(self) -> str | None:
        """The model the path names (Gemini), which routes the request like a body's model."""
        return self.match.model

    @property
    def stream_in_path(self) -> bool:
        """Calling this endpoint asks for a stream by itself (Gemini :streamGenerateContent)."""
        return self.match.endpoint.streams


def classify(method: str, path: str) -> Endpoint | None:
    """The endpoint an app called, or None for a path llmitm does not know (or that several
    protocols share, such as `GET /v1/models`)."""
    match = REGISTRY.classify(method, path)
    return Endpoint(match) if match is not None else None


def asks_to_stream(endpoint: Endpoint | None, path: str, body: dict | None) -> bool:
    """Whether the app asked for a streamed answer: by the endpoint, its body's flag or the query."""
    return REGISTRY.asks_to_stream(endpoint.match if endpoint is not None else None, path, body)
