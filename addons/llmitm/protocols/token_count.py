"""Token counting between protocols: the app's counting request goes to the upstream's own counting
endpoint, translated like generation (through the canonical `Request`), and the count comes back in
the app's shape — exact, as the upstream counts.

Each protocol with a counting endpoint states its shapes in its package's `count_tokens.py`
(`CountCodec`): Anthropic `POST /v1/messages/count_tokens`, Gemini `models/{m}:countTokens`, OpenAI
Responses `POST /v1/responses/input_tokens`. An upstream without one (OpenAI Chat Completions and the
OpenAI-compatible servers) gets no call: llmitm answers with `estimate()`, marked as an estimate on
the flow. A real tokenizer would be closer for OpenAI models, but tiktoken downloads its encodings on
first use, which an offline proxy cannot (verified with tiktoken 0.14: `get_encoding` raises a
ConnectionError), and it would be wrong for every other model family anyway.
"""

from __future__ import annotations

import json
from typing import Protocol

from .canonical import Context, Request
from .sidecall import SideTranslation

CHARS_PER_TOKEN = 4


class CountCodec(Protocol):
    """One protocol's counting endpoint (its package's count_tokens.py)."""

    def parse_request(self, body: dict, path: str, ctx: Context) -> Request:
        """The app's counting body (and the path it called) → the canonical request it would generate
        from; TranslationError for what the upstream cannot express."""
        ...

    def render_request(self, req: Request, ctx: Context) -> tuple[str, dict]:
        """The canonical request → (counting path relative to the provider's base_url, body)."""
        ...

    def parse_response(self, body: dict) -> int:
        """The upstream's counting answer → the number of input tokens."""
        ...

    def render_response(self, tokens: int) -> dict:
        """A number of input tokens → the app's counting answer."""
        ...


def estimate(body: dict) -> int:
    """About 4 characters per token of the prompt's JSON (everything but the model name)."""
    prompt = json.dumps({k: v for k, v in body.items() if k != "model"}, ensure_ascii=False)
    return max(1, len(prompt) // CHARS_PER_TOKEN)


class CountTranslation(SideTranslation):
    def __init__(self, client: str, upstream: str, client_codec: CountCodec, upstream_codec: CountCodec):
        super().__init__(client, upstream)
        self.client_codec, self.upstream_codec = client_codec, upstream_codec

    def translate_request(self, body: dict, path: str, upstream_model: str | None) -> tuple[str, dict]:
        req = self.client_codec.parse_request(body, path, self.ctx)
        if upstream_model:
            req.model = upstream_model
        return self.upstream_codec.render_request(req, self.ctx)

    def answer(self, payload: dict) -> dict:
        return self.client_codec.render_response(self.upstream_codec.parse_response(payload))
