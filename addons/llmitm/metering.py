"""Token usage of same-protocol (untranslated) responses, for the pool's per-key counters.

Translated flows get usage from their Translation. Passthrough flows are not translated, so this
reads only what carries usage: a non-stream body's `usage`, and in a stream only the events whose
data mentions it (parsed by the protocol's own stream parser), so the bytes pass on untouched and
the cost stays at a substring test for every other event.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from .protocols import REGISTRY, Usage
from .protocols.canonical import Context, StreamStart, UsageUpdate
from .protocols.content_encoding import decompressor
from .protocols.sse import SSEDecoder

log = logging.getLogger(__name__)


class UsageMeter:
    def __init__(self, protocol: str | None):
        record = REGISTRY[protocol] if protocol is not None and protocol in REGISTRY else None
        self.spoke = record.codec if record is not None else None
        self.field = record.wire.USAGE_FIELD if record is not None else ""  # where an answer carries usage
        self.usage: Usage | None = None
        self._decoder: SSEDecoder | None = None
        self._parser: Any = None  # the spoke's StreamParser
        self._decompressor: Any = None
        self.content_encoding: str | None = None  # of the stream, set before the first feed

    def read_body(self, body: bytes) -> None:
        """A whole (non-stream) response body."""
        if self.spoke is None or f'"{self.field}"'.encode() not in body:
            return
        try:
            payload = json.loads(body)
            if isinstance(payload, dict) and isinstance(payload.get(self.field), dict):
                self.usage = self.spoke.parse_usage(payload[self.field])
        except (ValueError, KeyError, TypeError) as e:
            log.debug("llmitm: no usage in response body: %s", e)

    def feed(self, chunk: bytes) -> None:
        """Part of an SSE stream, as it passes."""
        if self.spoke is None:
            return
        if self._decoder is None:
            self._decoder = SSEDecoder()
            self._parser = self.spoke.StreamParser(Context())
            self._decompressor = decompressor(self.content_encoding)
        if self._decompressor is not None:
            try:
                chunk = self._decompressor.decompress(chunk)
            except ValueError:  # the client gets the bytes as they are; only metering gives up
                self.spoke = None
                return
        for event in self._decoder.feed(chunk):
            if event.data is None or self.field not in event.data:
                continue
            try:
                for ev in self._parser.feed(event.event, event.data):
                    usage = ev.usage if isinstance(ev, (UsageUpdate, StreamStart)) else None
                    if usage is not None:
                        self.usage = usage
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                log.debug("llmitm: unreadable usage event: %s", e)

    @property
    def tokens(self) -> tuple[int, int]:
        u = self.usage
        return (u.input_total, u.output_total) if u is not None else (0, 0)
