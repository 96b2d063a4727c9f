"""A guard against pathological slowdowns (per-event validation, quadratic buffering): translated
streams must sustain the 20,000 events/s per core target with margin to spare on a quiet machine."""

from __future__ import annotations

import time

import pytest

from llmitm.protocols import Translation
from llmitm.protocols.sse import SSEDecoder
from proto_helpers import split, wire_bytes

CASES = [("openai-chat", "anthropic", "anthropic-messages/vercel-ai/anthropic-thinking-signature-2.chunks.jsonl"),
         ("anthropic", "openai-chat", "openai-chat/vercel-ai/openai-text.chunks.jsonl")]


@pytest.mark.parametrize("client, upstream, rel", CASES)
def test_translated_stream_throughput(client, upstream, rel):
    wire = wire_bytes(rel)
    events = len(SSEDecoder().feed(wire))
    pieces = split(wire, (300, 700, 1400))  # network-sized reads
    body = {"model": "m", "max_tokens": 100, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    best = 0.0
    for _ in range(3):
        reps, started = 20, time.perf_counter()
        for _ in range(reps):
            t = Translation(client, upstream)
            t.request(dict(body), upstream_model=None)
            s = t.stream()
            for piece in pieces:
                s.feed(piece)
            s.finish()
        best = max(best, events * reps / (time.perf_counter() - started))
    assert best >= 20_000, f"{best:.0f} events/s"
