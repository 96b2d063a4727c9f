"""The answer half of a call beside generation (token counting, embeddings) translated between
protocols: the upstream's JSON answer, or its error, in the app's protocol.

`SideTranslation` offers the members of `translate.Translation` that exchange.py uses on a whole
(non-streamed) answer — `response()`, `warnings`, `usage`, `canonical_request` — so such a call is
forwarded, retried on another pooled key and answered like a translated generation. Errors go
through the spokes' own `parse_error`/`render_error` (PROTOCOLS.md §2.11). Sans-I/O.
"""

from __future__ import annotations

import json
from typing import Any

from .canonical import ApiError, Context, MalformedUpstream, Usage
from .content_encoding import decode_body


class SideTranslation:
    """Subclasses set `client`/`upstream` (protocol names) and implement `answer(payload)`: the
    upstream's parsed 2xx JSON object → the app's JSON object (raising KeyError, TypeError or
    ValueError on an answer that does not fit the upstream's documented shape)."""

    canonical_request = None  # never a stream: exchange.py renders the answer whole

    def __init__(self, client: str, upstream: str, ctx: Context | None = None):
        self.client, self.upstream = client, upstream
        self.ctx = ctx or Context()
        self.usage: Usage | None = None

    @property
    def warnings(self) -> list[str]:
        return self.ctx.warnings

    def answer(self, payload: dict) -> dict:
        raise NotImplementedError

    def stream(self, content_encoding: str | None = None) -> Any:
        """These endpoints never stream; an upstream that answers with SSE is the upstream's fault."""
        raise MalformedUpstream("a stream where a JSON answer was expected", b"")

    def response(self, status: int, body: bytes, *, as_stream: bool = False,
                 content_encoding: str | None = None) -> tuple[int, bytes]:
        from .registry import REGISTRY  # the registry imports every spoke, which may import this module

        client, upstream = REGISTRY.codec(self.client), REGISTRY.codec(self.upstream)
        try:
            plain = decode_body(body, content_encoding)
        except ValueError as e:
            return 502, client.render_error(ApiError(502, f"undecodable upstream body ({e})"))
        if not 200 <= status < 300:
            return status, client.render_error(upstream.parse_error(status, plain))
        try:
            payload = json.loads(plain)
            if not isinstance(payload, dict):
                raise ValueError("JSON that is not an object")
            return status, json.dumps(self.answer(payload)).encode()
        except (KeyError, TypeError, ValueError, IndexError) as e:
            message = f"llmitm: the {self.upstream} upstream's answer does not fit its protocol ({e!r})"
            return 502, client.render_error(ApiError(502, message))
