"""The one stream callable per response (MITMPROXY.md §5, trap 3): passthrough or translation,
plus capture so mitmweb can show the streamed body afterwards.

A stream callable that raises would leave mitmproxy to abort the response half-sent, so `StreamTap`
contains its own failures: llmitm's bug is logged once with its traceback, the app gets an in-stream
error event in its protocol that says so, and the rest of the upstream stream is dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from mitmproxy import http

from .endpoints import FALLBACK_PROTOCOL
from .guard import bug_message
from .relay_stream import in_band_error

log = logging.getLogger(__name__)


def sse_headers(flow: http.HTTPFlow) -> None:
    """Headers for a response whose body llmitm rewrites while streaming (trap 2: content-length)."""
    response = flow.response
    assert response is not None
    response.headers.pop("content-length", None)
    response.headers.pop("content-encoding", None)
    response.headers["content-type"] = "text/event-stream"
    if flow.request.http_version.startswith("HTTP/1"):
        response.headers["transfer-encoding"] = "chunked"


def settle_hangup_after_answer(flow: http.HTTPFlow) -> bool:
    """Whether a flow that ended in an error had in fact served the app its whole answer; if so, make
    it a complete flow. A translated stream ends for the app with its protocol's end event
    (`data: [DONE]`, `message_stop`, `response.completed`) as soon as the upstream's stop arrives, and
    OpenAI clients (Codex, LangChain) hang up right then — before the upstream's body has ended — so
    mitmproxy reports `Client disconnected.` / `stream reset by client (CANCEL)`. The answer was whole
    and its usage known: mitmweb shows it as served, and the key is judged by its answer."""
    tap = flow.response.stream if flow.response is not None else None
    if not isinstance(tap, StreamTap) or tap.failed or tap.translator is None:
        return False
    if not getattr(tap.translator, "complete", False):
        return False
    flow.error = None
    tap._keep_body()
    return True


class StreamTap:
    """Passes upstream chunks on (translated when a translator is given) as they arrive."""

    def __init__(self, flow: http.HTTPFlow, exchange: Any, translator: Any | None, keep_raw: bool = False):
        self.flow = flow
        self.exchange = exchange
        self.translator = translator
        self.sent: list[bytes] = []
        self.raw: list[bytes] | None = [] if keep_raw else None  # upstream bytes, for the side flow
        self.failed = False  # after a bug: the rest of the upstream stream is dropped

    def __call__(self, data: bytes) -> bytes | Iterable[bytes]:
        if self.failed:
            if not data:
                self._keep_body()
            return []
        try:
            return self._pass(data)
        except Exception as e:
            self.failed = True
            protocol = self.exchange.client_protocol or FALLBACK_PROTOCOL
            log.exception("llmitm: bug while streaming the response of %s", self.flow.request.pretty_url)
            self.flow.metadata["llmitm_bug"] = f"stream: {type(e).__name__}"
            out = [in_band_error(protocol, bug_message("while streaming", e))]
            self.sent.extend(out)
            if not data:
                self._keep_body()
            return out

    def _pass(self, data: bytes) -> bytes | Iterable[bytes]:
        if not data:
            out = self.translator.finish() if self.translator is not None else []
            self.sent.extend(out)
            self._keep_body()
            return out
        if self.exchange.first_chunk_at is None:
            self.exchange.first_chunk_at = time.time()
        if self.translator is None:
            self.sent.append(data)
            self.exchange.meter.feed(data)
            return data
        if self.raw is not None:
            self.raw.append(data)
        out = self.translator.feed(data)
        self.sent.extend(out)
        return out  # may be [] (hold back): never b"", which would end a chunked response (trap 1)

    def _keep_body(self) -> None:
        # mitmproxy 11 stores no streamed body; keep what the client got visible in mitmweb.
        if self.flow.response is not None:
            self.flow.response.data.content = b"".join(self.sent)


class PassTap:
    """A pass-through's stream: each chunk on as it arrives, untouched, and kept so mitmweb shows the
    body afterwards (mitmproxy 11 stores none; the relay caps it at max_response_bytes)."""

    def __init__(self, flow: http.HTTPFlow):
        self.flow = flow
        self.sent: list[bytes] = []

    def __call__(self, data: bytes) -> bytes | Iterable[bytes]:
        if data:
            self.sent.append(data)
            return data
        if self.flow.response is not None:
            self.flow.response.data.content = b"".join(self.sent)
        return []
