"""Shared pieces of the property tests (test_*_properties.py, test_responses_streams.py): cutting bytes
anywhere, decoding SSE, the hypothesis strategies every spoke's round trips draw from, and the
render∘parse round trips themselves."""

from __future__ import annotations

import json
import re

from hypothesis import strategies as st
from proto_helpers import A_DIR, C_DIR, fixtures, translate_stream

from llmitm.protocols import Translation
from llmitm.protocols.canonical import TOOL_CALL, Context, Delta, Request, ToolCall
from llmitm.protocols.sse import SSEDecoder


def decode(pieces) -> list:
    d = SSEDecoder()
    events = []
    for piece in pieces:
        events.extend(d.feed(piece))
    return events + d.close()


def cut(data: bytes, points: list[int]) -> list[bytes]:
    """`data` cut at `points` (any integers, folded into range): the pieces join back to `data`."""
    points = sorted({p % (len(data) + 1) for p in points})
    return [data[a:b] for a, b in zip([0] + points, points + [len(data)], strict=True)]


# ---------------------------------------------------------------------------------------------
# Whole translations of recorded streams

GEMINI_STREAM_PATH = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
_A_STREAMS, _C_STREAMS = fixtures(A_DIR, stream=True), fixtures(C_DIR, stream=True)
_G_STREAMS, _R_STREAMS = fixtures("gemini", stream=True), fixtures("openai-responses", stream=True)
# (recording, client protocol, upstream protocol) of every recorded stream a spoke translates, by spoke.
TRANSLATED_STREAMS = {
    "anthropic+openai-chat": [(rel, "openai-chat", "anthropic") for rel in _A_STREAMS]
                             + [(rel, "anthropic", "openai-chat") for rel in _C_STREAMS],
    "gemini": [(rel, client, "gemini") for rel in _G_STREAMS for client in ("openai-chat", "anthropic")]
              + [(rel, "gemini", "anthropic") for rel in _A_STREAMS]
              + [(rel, "gemini", "openai-chat") for rel in _C_STREAMS],
    "openai-responses": [(rel, client, "openai-responses") for rel in _R_STREAMS
                         for client in ("openai-chat", "anthropic")]
                        + [(rel, "openai-responses", "anthropic") for rel in _A_STREAMS]
                        + [(rel, "openai-responses", "openai-chat") for rel in _C_STREAMS],
}


def translate(client: str, upstream: str, pieces: list[bytes]) -> bytes:
    """What a `client` app asking for a one-turn stream is sent when the `upstream` answers with these
    pieces of bytes; creation times zeroed (the translator stamps its own clock)."""
    t = Translation(client, upstream)
    if client == "gemini":
        t.request({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}, client_path=GEMINI_STREAM_PATH)
    elif client == "openai-responses":
        t.request({"model": "m", "input": "hi", "stream": True, "store": False})
    else:
        t.request({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True, "max_tokens": 100},
                  upstream_model=None)
    out = translate_stream(t, pieces)
    assert all(out), "a translator must never yield b''"
    return re.sub(rb'"(created|created_at)":\d+', b'"created":0', b"".join(out))


# ---------------------------------------------------------------------------------------------
# Strategies

nat = st.integers(min_value=0, max_value=100_000)
word = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)
tool_id = st.from_regex(r"(call|toolu)_[A-Za-z0-9]{1,12}", fullmatch=True)
text = st.text(min_size=1, max_size=30).filter(lambda s: s.strip() and not s.lstrip().startswith("<think>"))
json_value = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(word, inner, max_size=3),
                          max_leaves=6)
arguments = st.dictionaries(word, json_value, max_size=4).map(json.dumps)
tool_call = st.builds(ToolCall, id=tool_id, name=word, arguments=arguments)
schema = st.fixed_dictionaries({"type": st.just("object"),
                                "properties": st.dictionaries(word, st.just({"type": "string"}), max_size=3)})


@st.composite
def block_plan(draw, kinds: list[str], signed: bool):
    plan = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(kinds))
        if plan and kind == plan[-1][0] and kind != TOOL_CALL:
            continue  # OpenAI Chat has no boundary between two text runs: they are one block
        plan.append((kind, draw(st.lists(text, min_size=1, max_size=3)),
                     draw(tool_id), draw(word), draw(st.none() | text) if signed else None))
    return plan


# ---------------------------------------------------------------------------------------------
# render∘parse round trips


def response_round_trip(spoke, resp):
    """`resp` rendered as the spoke's body and parsed back; and the warnings either way gave."""
    ctx = Context()
    return spoke.parse_response(spoke.render_response(resp, ctx), ctx), ctx.warnings


def request_round_trip(spoke, req):
    """`req` rendered as the spoke's body and parsed back; and the warnings either way gave."""
    ctx = Context()
    return spoke.parse_request(spoke.render_request(req, ctx), ctx), ctx.warnings


def merge_deltas(events: list) -> list:
    # Delta boundaries are not semantic (the think-tag splitter may hold back and join text).
    out: list = []
    for ev in events:
        if isinstance(ev, Delta) and out and isinstance(out[-1], Delta) and out[-1].index == ev.index:
            out[-1] = Delta(ev.index, out[-1].text + ev.text)
        else:
            out.append(ev)
    return out


def render_stream(spoke, events: list, request: Request, ctx: Context | None = None) -> bytes:
    """The stream events as the spoke's renderer writes them for a client."""
    out: list[bytes] = []
    renderer = spoke.StreamRenderer(ctx or Context(), request)
    for ev in events:
        renderer.render(ev, out)
    return b"".join(out)


def parse_stream(spoke, wire: bytes) -> list:
    """The stream events the spoke's parser reads from `wire` (comments included)."""
    parser = spoke.StreamParser(Context())
    parsed: list = []
    for sse in decode([wire]):
        parsed.extend(parser.comment(sse.comment) if sse.data is None else parser.feed(sse.event, sse.data))
    return parsed
