"""The inspector's only door into llmitm's protocol code: wire bytes in, canonical model out.

Everything under `llmitm.inspect` reads requests, responses and streams through the functions here,
so when the spokes move (a new registry, renamed modules) only this file is repointed. The inspector
never translates: it parses one body in the protocol it was written in and shows what it says.

Parsing is lenient where the spokes are strict: a spoke refuses fields it cannot translate
(`TranslationError`, e.g. a Responses `previous_response_id`), but a viewer should still show the rest,
so a refused top-level field is set aside, named in the notes, and the body parsed again.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from .. import endpoints
from ..protocols import anthropic, gemini, openai_chat, openai_responses, policy
from ..protocols.canonical import (  # re-exported: the renderer imports the model from here only
    REASONING,
    REDACTED,
    REFUSAL,
    TOOL_CALL,
    ApiError,
    BlockStart,
    Context,
    Delta,
    Document,
    Image,
    Message,
    Reasoning,
    Refusal,
    Request,
    Response,
    SignatureDelta,
    StreamEnd,
    StreamError,
    StreamFinish,
    StreamStart,
    Text,
    Tool,
    ToolCall,
    ToolResult,
    TranslationError,
    Usage,
    UsageUpdate,
)
from ..protocols.registry import REGISTRY
from ..protocols.sse import SSEDecoder
from ..protocols.translate import SPOKES

__all__ = [
    "ApiError", "Document", "Image", "Message", "Reasoning", "Refusal", "Request", "Response", "Text", "Tool",
    "ToolCall", "ToolResult", "Usage", "PROTOCOL_TITLES", "ParsedRequest", "ParsedResponse", "protocol_of",
    "parse_request", "parse_response", "split_tool_id",
]

PROTOCOL_TITLES = {spoke.name: spoke.wire.TITLE for spoke in REGISTRY}
# The four protocols by the spokes' own names, for tables keyed by protocol (compare.WIRE_NAMES).
CHAT, RESPONSES, ANTHROPIC, GEMINI = openai_chat.NAME, openai_responses.NAME, anthropic.NAME, gemini.NAME
MAX_LENIENT_RETRIES = 8  # refused top-level fields set aside before giving up


def protocol_of(method: str, path: str) -> str | None:
    """The protocol of a generation endpoint (the four the inspector renders), else None."""
    endpoint = endpoints.classify(method, path)
    return endpoint.protocol if endpoint is not None and endpoint.translatable else None


@dataclass
class ParsedRequest:
    protocol: str
    request: Request | None = None
    error: str | None = None  # why the body could not be read as a request
    notes: list[str] = field(default_factory=list)  # set-aside fields, what the canonical model has no place for


@dataclass
class StreamFacts:
    """What the wire looked like: how many SSE events of which type, in which order."""

    events: int = 0
    comments: int = 0  # `:` keep-alive lines
    types: Counter = field(default_factory=Counter)
    sequence: list[tuple[str, int]] = field(default_factory=list)  # run-length: (type, repeats)
    terminated: bool = False  # the protocol's end marker ([DONE], message_stop, ...) arrived

    def saw(self, kind: str) -> None:
        self.events += 1
        self.types[kind] += 1
        if self.sequence and self.sequence[-1][0] == kind:
            self.sequence[-1] = (kind, self.sequence[-1][1] + 1)
        else:
            self.sequence.append((kind, 1))


@dataclass
class ParsedResponse:
    protocol: str
    response: Response | None = None
    error: ApiError | None = None  # an error body, or an error event inside a stream
    stream: StreamFacts | None = None  # set for a streamed body
    problem: str | None = None  # why the body could not be read
    notes: list[str] = field(default_factory=list)


def _json(body: bytes):
    return json.loads(body.decode("utf-8", "replace") or "null")


def parse_request(protocol: str, body: bytes, path: str) -> ParsedRequest:
    out = ParsedRequest(protocol)
    try:
        payload = _json(body)
    except ValueError as e:
        out.error = f"not JSON: {e}"
        return out
    if not isinstance(payload, dict):
        out.error = "the body is not a JSON object"
        return out
    payload = dict(payload)
    for _ in range(MAX_LENIENT_RETRIES):
        ctx = Context(client_path=path)
        try:
            out.request = SPOKES[protocol].parse_request(payload, ctx)
        except TranslationError as e:
            top = (e.param or "").split(".")[0].split("[")[0]
            if top and top in payload and top not in ("messages", "input", "contents", "model"):
                out.notes.append(f"{top}: not shown ({e.message})")
                del payload[top]
                continue
            out.error = e.message
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            out.error = f"unreadable: {e!r}"
        else:
            out.notes += [f"not in this transcript: {w}" for w in ctx.warnings]
        return out
    out.error = "too many fields this transcript cannot show"
    return out


def looks_like_stream(body: bytes, content_type: str | None) -> bool:
    if content_type == "text/event-stream":
        return True
    head = body.lstrip()[:16]
    return head.startswith((b"data:", b"event:", b":"))


def parse_response(protocol: str, status: int | None, body: bytes, content_type: str | None = None) -> ParsedResponse:
    """A response body of any status, streamed (SSE, or Gemini's JSON array) or whole."""
    spoke = SPOKES[protocol]
    out = ParsedResponse(protocol)
    if status is not None and not 200 <= status < 300:
        out.error = spoke.parse_error(status, body)
        return out
    if looks_like_stream(body, content_type):
        return _parse_sse(spoke, body, out)
    try:
        payload = _json(body)
    except ValueError as e:
        out.problem = f"not JSON: {e}"
        return out
    if protocol == gemini.NAME and isinstance(payload, list):  # streamGenerateContent without alt=sse
        return _parse_chunks(spoke, [json.dumps(p) for p in payload], out)
    if not isinstance(payload, dict):
        out.problem = "the body is not a JSON object"
        return out
    if payload.get("error") and not payload.get("choices") and not payload.get("content") and not payload.get("output"):
        out.error = spoke.parse_error(status, body)
        return out
    ctx = Context()
    try:
        out.response = spoke.parse_response(payload, ctx)
    except (KeyError, TypeError, AttributeError, ValueError, TranslationError) as e:
        out.problem = f"unreadable as a {protocol} response: {e!r}"
        return out
    _settle_stop_reason(out.response)
    out.notes += [f"not in this transcript: {w}" for w in ctx.warnings]
    out.notes += _encrypted_reasoning_notes(protocol, payload)
    return out


def _parse_sse(spoke, body: bytes, out: ParsedResponse) -> ParsedResponse:
    decoder = SSEDecoder()
    ctx = Context()
    parser = spoke.StreamParser(ctx)
    builder = _Assembler()
    facts = out.stream = StreamFacts()
    for sse in decoder.feed(body) + decoder.close():
        if sse.data is None:
            facts.comments += 1
            continue
        if not sse.data.strip():
            continue
        facts.saw(_event_type(sse.event, sse.data))
        try:
            events = parser.feed(sse.event, sse.data)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            out.notes.append(f"event {facts.events} unreadable: {e!r}")
            continue
        for ev in events:
            builder.take(ev)
    return _finish(builder, ctx, out)


def _parse_chunks(spoke, chunks: list[str], out: ParsedResponse) -> ParsedResponse:
    ctx = Context()
    parser = spoke.StreamParser(ctx)
    builder = _Assembler()
    out.stream = StreamFacts()
    for data in chunks:
        out.stream.saw("chunk")
        for ev in parser.feed(None, data):
            builder.take(ev)
    return _finish(builder, ctx, out)


def _finish(builder: _Assembler, ctx: Context, out: ParsedResponse) -> ParsedResponse:
    out.response, out.error = builder.response, builder.error
    assert out.stream is not None
    out.stream.terminated = builder.ended
    _settle_stop_reason(out.response)
    out.notes += [f"not in this transcript: {w}" for w in ctx.warnings]
    return out


def _settle_stop_reason(resp: Response) -> None:
    """The stop reason the hub reports (a tool call means tool use, whatever the wire said); a stream
    cut off before its finish keeps none."""
    if resp.stop_reason is not None:
        resp.stop_reason = policy.derive_stop_reason(resp.stop_reason, any(isinstance(p, ToolCall) for p in resp.parts))


def _event_type(event: str | None, data: str) -> str:
    """The name a person would use for one SSE event: its `event:` line, else its JSON `type`/`object`."""
    if event:
        return event
    if data.strip() == "[DONE]":
        return "[DONE]"
    try:
        payload = json.loads(data)
    except ValueError:
        return "data (not JSON)"
    if isinstance(payload, dict):
        kind = payload.get("type") or payload.get("object")
        if isinstance(kind, str):
            return kind
        if "error" in payload:
            return "error"
    return "chunk"


class _Assembler:
    """Canonical stream events → the complete Response they describe (what the app ends up with)."""

    def __init__(self) -> None:
        self.response = Response(id="", model="", stop_reason=None)
        self.error: ApiError | None = None
        self.ended = False
        self._blocks: dict[int, Text | Reasoning | Refusal | ToolCall] = {}
        self._handlers = {
            StreamStart: self._start, BlockStart: self._block, Delta: self._delta, SignatureDelta: self._signature,
            UsageUpdate: self._usage, StreamFinish: self._finish, StreamEnd: self._end, StreamError: self._error,
        }

    def take(self, ev) -> None:
        handler = self._handlers.get(type(ev))  # KeepAlive and BlockStop change nothing here
        if handler is not None:
            handler(ev)

    def _start(self, ev: StreamStart) -> None:
        self.response.id, self.response.model = ev.id, ev.model
        self.response.usage = ev.usage or self.response.usage

    def _block(self, ev: BlockStart) -> None:
        part = _part_for(ev)
        self._blocks[ev.index] = part
        self.response.parts.append(part)

    def _delta(self, ev: Delta) -> None:
        part = self._blocks.get(ev.index)
        if isinstance(part, ToolCall):
            part.arguments += ev.text
        elif part is not None:
            part.text += ev.text

    def _signature(self, ev: SignatureDelta) -> None:
        part = self._blocks.get(ev.index)
        if isinstance(part, Reasoning):
            part.signature = (part.signature or "") + ev.signature

    def _usage(self, ev: UsageUpdate) -> None:
        self.response.usage = ev.usage

    def _finish(self, ev: StreamFinish) -> None:
        self.response.stop_reason, self.response.stop_sequence = ev.stop_reason, ev.stop_sequence

    def _end(self, ev: StreamEnd) -> None:
        self.ended = True

    def _error(self, ev: StreamError) -> None:
        self.error = ev.error


def _part_for(ev):
    if ev.kind == TOOL_CALL:
        return ToolCall(ev.id or "", ev.name or "", "")
    if ev.kind == REASONING:
        return Reasoning("")
    if ev.kind == REDACTED:
        return Reasoning("", None, ev.data or "")
    if ev.kind == REFUSAL:
        return Refusal("")
    return Text("")


def _encrypted_reasoning_notes(protocol: str, payload: dict) -> list[str]:
    """OpenAI's own encrypted reasoning has no place in the canonical model (it is bound to OpenAI)."""
    if protocol != openai_responses.NAME:
        return []
    items = [i for i in payload.get("output") or [] if isinstance(i, dict) and i.get("type") == "reasoning"]
    sealed = [i for i in items if isinstance(i.get("encrypted_content"), str)
              and not i["encrypted_content"].startswith(("llmitm.signature:", "llmitm.redacted:"))]
    return [f"reasoning: {len(sealed)} item(s) with OpenAI encrypted_content (not readable)"] if sealed else []


def split_tool_id(tool_id: str) -> tuple[str, bool]:
    """(the id to show, whether a Gemini thought signature rides on it in llmitm's `__thought__` carrier)."""
    base, sep, signature = tool_id.partition(gemini.THOUGHT_SEPARATOR)
    return (base, bool(signature)) if sep else (tool_id, False)
