"""Throughput guard for the openai-responses spoke (same floor as test_proto_throughput: 20,000
translated events/s per core), in both directions."""

from __future__ import annotations

import time

import pytest
from proto_helpers import split, wire_bytes

from llmitm.protocols import Translation
from llmitm.protocols.sse import SSEDecoder

CASES = [("anthropic", "openai-responses", "openai-responses/prism/stream-text-basic.sse"),
         ("openai-chat", "openai-responses", "openai-responses/vercel-ai/openai-function-call-args.chunks.jsonl"),
         ("openai-responses", "anthropic", "anthropic-messages/vercel-ai/anthropic-thinking-signature-2.chunks.jsonl"),
         ("openai-responses", "openai-chat", "openai-chat/vercel-ai/openai-text.chunks.jsonl")]


@pytest.mark.parametrize("client, upstream, rel", CASES)
def test_responses_translated_stream_throughput(client, upstream, rel):
    wire = wire_bytes(rel)
    events = len(SSEDecoder().feed(wire))
    pieces = split(wire, (300, 700, 1400))
    if client == "openai-responses":
        body = {"model": "m", "input": "hi", "stream": True, "store": False}
    else:
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
