"""Embeddings between protocols: a small canonical request and answer, and the translation of one
call (PROTOCOLS.md §1.1 `/v1/embeddings`, §1.4 `embedContent`/`batchEmbedContents`).

Each protocol that has an embeddings API states its shapes in its package's `embeddings.py`
(`EmbeddingCodec`); `surfaces.SURFACES` says which protocol has one. Anthropic has none: a route
that sends embeddings there is refused by the planner with the fix (plan.py / surface.py).
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass
from typing import Protocol

from .canonical import Context, TranslationError, Usage
from .sidecall import SideTranslation

CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text, where no count is known


@dataclass
class EmbeddingRequest:
    """What to embed. `batch`: the app sent a list (OpenAI) or a batch call (Gemini), so it expects
    a list back even for one input."""

    model: str
    inputs: list[str]
    batch: bool = True
    dimensions: int | None = None  # OpenAI `dimensions` ⇄ Gemini `outputDimensionality`
    task_type: str | None = None  # Gemini `taskType` (RETRIEVAL_QUERY, …): OpenAI has no such field
    title: str | None = None  # Gemini `title` (RETRIEVAL_DOCUMENT only)
    encoding: str = "float"  # OpenAI `encoding_format`: "float" or "base64" (the openai SDK's default)


@dataclass
class EmbeddingResponse:
    vectors: list[list[float]]
    model: str
    input_tokens: int | None = None  # None: the upstream did not count (Gemini's batch answer)


class EmbeddingCodec(Protocol):
    """One protocol's embeddings shapes (its package's embeddings.py)."""

    def parse_request(self, body: dict, path: str, ctx: Context) -> EmbeddingRequest:
        """The app's body (and the path it called, which may name the model) → the canonical request;
        TranslationError for what another protocol cannot express."""
        ...

    def render_request(self, req: EmbeddingRequest, ctx: Context) -> tuple[str, dict]:
        """The canonical request → (path relative to the provider's base_url, body)."""
        ...

    def parse_response(self, body: dict, req: EmbeddingRequest) -> EmbeddingResponse:
        ...

    def render_response(self, resp: EmbeddingResponse, req: EmbeddingRequest) -> dict:
        ...


def estimate_tokens(texts: list[str]) -> int:
    return sum(max(1, len(t) // CHARS_PER_TOKEN) for t in texts)


def float32_base64(vector: list[float]) -> str:
    """OpenAI's `encoding_format: base64`: the vector as little-endian float32, base64-encoded."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def as_texts(value: object, param: str) -> list[str]:
    """A string or a list of strings; anything else (token ids, objects) cannot cross protocols."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise TranslationError(f"llmitm can only translate text inputs to another provider's embeddings API "
                           f"(a string or a list of strings); got {type(value).__name__}", param=param)


class EmbeddingTranslation(SideTranslation):
    """One embeddings call: `request()` renders the upstream's, `response()` answers the app."""

    def __init__(self, client: str, upstream: str, client_codec: EmbeddingCodec, upstream_codec: EmbeddingCodec):
        super().__init__(client, upstream)
        self.client_codec, self.upstream_codec = client_codec, upstream_codec
        self.request: EmbeddingRequest | None = None

    def translate_request(self, body: dict, path: str, upstream_model: str | None) -> tuple[str, dict]:
        req = self.client_codec.parse_request(body, path, self.ctx)
        if upstream_model:
            req.model = upstream_model
        self.request = req
        return self.upstream_codec.render_request(req, self.ctx)

    def answer(self, payload: dict) -> dict:
        assert self.request is not None
        resp = self.upstream_codec.parse_response(payload, self.request)
        if len(resp.vectors) != len(self.request.inputs):
            raise ValueError(f"{len(resp.vectors)} vectors for {len(self.request.inputs)} inputs")
        if resp.input_tokens is None:
            resp.input_tokens = estimate_tokens(self.request.inputs)
            self.ctx.warn(f"embedding usage estimated (~{CHARS_PER_TOKEN} characters per token): "
                          f"the {self.upstream} upstream does not count embedding tokens")
        self.usage = Usage(input_total=resp.input_tokens)
        return self.client_codec.render_response(resp, self.request)
