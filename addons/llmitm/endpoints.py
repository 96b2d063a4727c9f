"""Which wire protocol an app is speaking, told from the request's method and path.

The protocol of the endpoint the app called is the *client protocol*; the provider's configured
protocol is the *upstream protocol*. Only the generation endpoints are translated; every other
endpoint (model lists, embeddings, count_tokens, ...) is forwarded as it is.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import parse_qsl


class Endpoint(NamedTuple):
    protocol: str  # openai-chat | openai-responses | anthropic | gemini
    translatable: bool  # a generation endpoint llmitm can translate to another protocol
    model_in_path: str | None = None  # Gemini carries the model in the path
    stream_in_path: bool = False  # Gemini :streamGenerateContent
    counts_tokens: bool = False  # Anthropic's /v1/messages/count_tokens


_GEMINI = re.compile(r"^(?P<prefix>.*/v1(?:beta|alpha)?)/models/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$")


def classify(method: str, path: str) -> Endpoint | None:
    """The endpoint an app called, or None for a path llmitm does not know."""
    bare = path.split("?", 1)[0]
    if method == "POST":
        if bare.endswith("/chat/completions"):
            return Endpoint("openai-chat", True)
        if bare.endswith("/responses"):
            return Endpoint("openai-responses", True)
        if bare.endswith("/v1/messages"):
            return Endpoint("anthropic", True)
        if bare.endswith("/v1/messages/count_tokens"):
            return Endpoint("anthropic", False, counts_tokens=True)
    m = _GEMINI.match(bare)
    if m:
        verb = m.group("method")
        generate = verb in ("generateContent", "streamGenerateContent")
        return Endpoint("gemini", generate and method == "POST", m.group("model"), verb == "streamGenerateContent")
    return None


def gemini_path_with_model(path: str, model: str) -> str:
    """Rewrite the model segment of a Gemini path, keeping the method and the query."""
    bare, sep, query = path.partition("?")
    m = _GEMINI.match(bare)
    if not m:
        return path
    return f"{m.group('prefix')}/models/{model}:{m.group('method')}{sep}{query}"


def asks_for_sse(path: str) -> bool:
    """`?alt=sse`: how Gemini asks for a server-sent-event stream."""
    return ("alt", "sse") in parse_qsl(path.partition("?")[2], keep_blank_values=True)
