"""Usage read from untranslated (same-protocol) answers, recorded ones, whole and streamed."""

import pytest

from llmitm.metering import UsageMeter
from tests.harness import fixtures

BODIES = [
    ("openai-chat", "openai-chat/vercel-ai/openai-text.json"),
    ("anthropic", "anthropic-messages/vercel-ai/anthropic-text.json"),
    ("openai-responses", "openai-responses/prism/text-basic-2.json"),
    ("gemini", "gemini/vercel-ai/google-text.json"),
]
STREAMS = [
    ("openai-chat", "openai-chat/openai-python/stream-tool-call-pydantic.sse"),
    ("anthropic", "anthropic-messages/prism/stream-text-basic.sse"),
    ("openai-responses", "openai-responses/prism/stream-text-basic.sse"),
    ("gemini", "gemini/prism/stream-text-followup.sse"),
]


@pytest.mark.parametrize("protocol, rel", BODIES)
def test_whole_bodies(protocol, rel):
    meter = UsageMeter(protocol)
    meter.read_body(fixtures.body(rel))
    inp, out = meter.tokens
    assert inp > 0 and out > 0


@pytest.mark.parametrize("protocol, rel", STREAMS)
def test_streams_in_odd_pieces(protocol, rel):
    raw = fixtures.body(rel)
    meter = UsageMeter(protocol)
    for i in range(0, len(raw), 7):
        meter.feed(raw[i:i + 7])
    inp, out = meter.tokens
    assert inp > 0 and out > 0
