"""The facade the addon calls: one `Translation` per flow whose client protocol differs from the
upstream's. Sans-I/O: bytes and dicts in, bytes out; the addon does all networking.

    t = Translation("openai-chat", "anthropic", max_tokens_default=8192)
    up = t.request(body_dict, upstream_model="claude-sonnet-4-5")   # may raise TranslationError
    ... send up.body to base_url + up.path ...
    status, body = t.response(status, body)          # non-stream body or any upstream error
    s = t.stream(); chunks = s.feed(data) ...; chunks = s.finish()  # 2xx streamed response
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .canonical import (
    REASONING,
    REDACTED,
    REFUSAL,
    TEXT,
    TOOL_CALL,
    ApiError,
    BlockStart,
    BlockStop,
    Context,
    Delta,
    KeepAlive,
    MalformedUpstream,
    Reasoning,
    Refusal,
    Request,
    Response,
    SignatureDelta,
    StreamEnd,
    StreamError,
    StreamFinish,
    StreamStart,
    ToolCall,
    TranslationError,
    Usage,
    UsageUpdate,
)
from .content_encoding import decode_body, decompressor, looks_gzipped
from .errors import render_error
from .local_model import wrap as _local_model
from .policy import derive_stop_reason, drop_unrunnable_hosted_tools
from .registry import REGISTRY
from .sse import SSEDecoder

SPOKES = {spoke.name: spoke.codec for spoke in REGISTRY}  # protocol name → its codec (the spoke package)
STREAM_CONTENT_TYPE = "text/event-stream"
JSON_CONTENT_TYPE = "application/json"


def client_content_type(stream: bool) -> str:
    return STREAM_CONTENT_TYPE if stream else JSON_CONTENT_TYPE


@dataclass
class UpstreamRequest:
    path: str  # relative to the provider's base_url, e.g. "/v1/messages"
    body: bytes
    stream: bool
    headers: dict[str, str] = field(default_factory=dict)  # headers the upstream protocol needs


def _spoke(name: str):
    try:
        return SPOKES[name]
    except KeyError:
        raise ValueError(f"unknown protocol {name!r} (known: {', '.join(SPOKES)})") from None


# Canonical request fields every renderer compares or does arithmetic with.
_NUMERIC_FIELDS = ("max_tokens", "temperature", "top_p", "top_k")


def _check_numbers(req: Request) -> None:
    """Spokes copy sampling values as the app sent them; a non-number would fail inside a renderer
    (`{} > 1`), blamed on llmitm. It is the app's 400 (found by scripts/fuzz)."""
    for name in _NUMERIC_FIELDS:
        value = getattr(req, name, None)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise TranslationError(f"{name} must be a number, not {type(value).__name__}", param=name)


class Translation:
    def __init__(self, client: str, upstream: str, *, max_tokens_default: int = 4096, local_model: Any = None,
                 unsupported_tools: str = "drop"):
        """`local_model`: the provider's `LocalModelConfig` when the upstream is a local OpenAI-compatible
        server whose model writes <think>/<tool_call> text and switches reasoning its own way
        (local_model.py); client and upstream may then both be openai-chat. `unsupported_tools`: "drop"
        (warn) or "refuse" (400) a client tool the upstream cannot run (`Context.unsupported_tools`)."""
        self.ctx = Context(max_tokens_default=max_tokens_default, unsupported_tools=unsupported_tools)
        self.client, self.upstream = _local_model(_spoke(client), _spoke(upstream), local_model, self.ctx)
        self.usage: Usage | None = None
        self.stop_reason: str | None = None  # canonical, once the upstream's answer said it (traces, metrics)
        self.canonical_request: Request | None = None

    @property
    def warnings(self) -> list[str]:
        return self.ctx.warnings

    def request(self, body: dict, *, upstream_model: str | None = None, client_path: str | None = None) -> UpstreamRequest:
        """The client's parsed JSON body → the upstream request. Raises TranslationError (a 4xx for
        the client: see `error_response`). `client_path`: the path the app called (Gemini puts the
        model and streaming there)."""
        self.ctx.client_path = client_path
        try:
            req = self.client.parse_request(body, self.ctx)
        except (TypeError, AttributeError) as e:
            # Where the app's own JSON is read, a value of the wrong type (`"messages": 7`) is the app's
            # fault, as the provider's is where its answer is read (MalformedUpstream): the real APIs
            # answer such a body with a 400. The spokes name the common cases; this catches the rest.
            raise TranslationError(f"the request body has a value of the wrong type ({type(e).__name__}: {e})") from None
        _check_numbers(req)
        if upstream_model:
            req.model = upstream_model
        drop_unrunnable_hosted_tools(req, REGISTRY.wire(self.upstream.NAME).HOSTED_TOOLS, self.ctx)
        self.canonical_request = req
        out = self.upstream.render_request(req, self.ctx)
        return UpstreamRequest(self.upstream.request_path(req), json.dumps(out).encode(), req.stream,
                               dict(self.upstream.REQUEST_HEADERS))

    def response(self, status: int, body: bytes, *, as_stream: bool = False,
                 content_encoding: str | None = None) -> tuple[int, bytes]:
        """A non-streamed upstream body (2xx) or an upstream error (any status) → (status, client body).
        `as_stream`: the client asked for a stream but the upstream answered with JSON; a 2xx is then
        rendered as the client protocol's complete SSE stream (errors stay JSON, as providers do).
        `content_encoding`: the upstream's Content-Encoding, if it compressed the body anyway."""
        try:
            return self._response(status, body, as_stream, content_encoding)
        except MalformedUpstream as e:
            return e.status, self.client.render_error(ApiError(e.status, str(e)))

    def _response(self, status: int, body: bytes, as_stream: bool, content_encoding: str | None) -> tuple[int, bytes]:
        """`response` without the blame: raises MalformedUpstream where the provider's data is wrong;
        any other exception (rendering for the client, canonical bookkeeping) is llmitm's bug and
        propagates to the caller, which answers it as a 500."""
        try:
            body = decode_body(body, content_encoding)
        except ValueError as e:  # corrupt data or an unknown encoding
            raise MalformedUpstream(f"undecodable upstream body ({e})", body[:64]) from None
        if not 200 <= status < 300:
            return status, self.client.render_error(self.upstream.parse_error(status, body))
        try:
            payload = json.loads(body)
        except ValueError:
            raise MalformedUpstream("a body that is not JSON", body) from None
        if not isinstance(payload, dict):
            raise MalformedUpstream("JSON that is not an object", body)
        if "error" in payload and payload["error"] is not None and not payload.get("choices") and not payload.get("content"):
            # An error inside a 200 (some OpenAI-compatible servers do this).
            err = self.upstream.parse_error(None, body)
            return err.status, self.client.render_error(err)
        try:
            resp = self.upstream.parse_response(payload, self.ctx)
        except MalformedUpstream:
            raise
        except (KeyError, TypeError, AttributeError, ValueError, IndexError) as e:
            # Reading the provider's answer failed on a field its protocol documents: blame its data,
            # quoted, so a reader can tell a provider quirk from a spoke bug.
            raise MalformedUpstream(f"a response that does not fit {self.upstream.NAME} ({e!r})", body) from None
        resp.stop_reason = derive_stop_reason(resp.stop_reason, any(isinstance(p, ToolCall) for p in resp.parts))
        self.usage, self.stop_reason = resp.usage, resp.stop_reason
        if as_stream:
            renderer = self.client.StreamRenderer(self.ctx, self.canonical_request)
            out: list[bytes] = []
            for ev in response_events(resp):
                renderer.render(ev, out)
            return status, b"".join(out)
        return status, json.dumps(self.client.render_response(resp, self.ctx)).encode()

    def error_response(self, exc: TranslationError) -> tuple[int, bytes]:
        """A TranslationError rendered as the client protocol's error body."""
        return exc.status, render_error(self.client.NAME, exc.status, exc.message, param=exc.param)

    def stream(self, *, content_encoding: str | None = None) -> StreamTranslator:
        return StreamTranslator(self, content_encoding)


def response_events(resp: Response) -> list:
    """A complete response as the stream events that would have produced it."""
    events: list = [StreamStart(resp.id, resp.model, resp.usage)]
    for i, p in enumerate(resp.parts):
        if isinstance(p, ToolCall):
            events.append(BlockStart(i, TOOL_CALL, id=p.id, name=p.name))
            text = p.arguments
        elif isinstance(p, Reasoning) and p.redacted is not None:
            events.append(BlockStart(i, REDACTED, data=p.redacted))
            text = ""
        else:
            events.append(BlockStart(i, REASONING if isinstance(p, Reasoning) else
                                     REFUSAL if isinstance(p, Refusal) else TEXT))
            text = getattr(p, "text", "")
        if text:
            events.append(Delta(i, text))
        if isinstance(p, Reasoning) and p.signature:
            events.append(SignatureDelta(i, p.signature))
        events.append(BlockStop(i))
    events.append(StreamFinish(resp.stop_reason, resp.stop_sequence))
    if resp.usage is not None:
        events.append(UsageUpdate(resp.usage))
    events.append(StreamEnd())
    return events


class StreamTranslator:
    """Upstream SSE bytes in, client SSE bytes out, event by event, in constant memory."""

    def __init__(self, translation: Translation, content_encoding: str | None = None):
        self._t = translation
        ctx = translation.ctx
        self._decoder = SSEDecoder()
        self._parser = translation.upstream.StreamParser(ctx)
        self._renderer = translation.client.StreamRenderer(ctx, translation.canonical_request)
        self._tool_emitted = False
        self._finished = False  # upstream gave a stop reason
        self._done = False  # the client stream is complete (end or error)
        self.complete = False  # the client got its protocol's normal end of stream: the whole answer
        # None: not known yet (gzip is sniffed from the first two bytes); False: plain; else a decompressor.
        self._decompressor: Any = decompressor(content_encoding) or (None if content_encoding is None else False)
        self._head = b""

    def feed(self, data: bytes) -> list[bytes]:
        if self._done:
            return []
        if self._decompressor is None:  # sniff the gzip magic, which may itself arrive split
            self._head += data
            if len(self._head) < 2:
                return []
            data, self._head = self._head, b""
            self._decompressor = decompressor("gzip") if looks_gzipped(data) else False
        out: list[bytes] = []
        if self._decompressor:
            try:
                data = self._decompressor.decompress(data)
            except ValueError as e:
                what = MalformedUpstream(f"undecodable upstream stream ({e})", data[:64])
                self._emit(StreamError(ApiError(502, str(what), "api_error")), out)
                return out
        for sse in self._decoder.feed(data):
            self._handle(sse, out)
        return out

    def keepalive(self) -> list[bytes]:
        """Something protocol-native to send during a long upstream silence (nothing once the
        stream is complete, or for Anthropic clients before message_start)."""
        out: list[bytes] = []
        if not self._done:
            self._renderer.render(KeepAlive(), out)
        return out

    def finish(self) -> list[bytes]:
        """The upstream body ended (normally or not)."""
        out: list[bytes] = []
        if self._head:  # a one-byte body: too short to be gzip
            self._decompressor, head, self._head = False, self._head, b""
            out.extend(self.feed(head))
        for sse in self._decoder.close():
            self._handle(sse, out)
        if not self._done:
            if self._finished:  # stop reason seen, only the terminator ([DONE]/message_stop) missing
                self._emit(StreamEnd(), out)
            else:
                self._emit(StreamError(ApiError(502, "upstream stream ended before the response was complete",
                                                "api_error")), out)
        return out

    def _handle(self, sse, out: list[bytes]) -> None:
        if self._done:
            return
        if sse.data is None:  # comment line: a keep-alive
            comment = getattr(self._parser, "comment", None)
            events = comment(sse.comment) if comment else []
        elif not sse.data.strip():
            return  # an empty data line carries nothing
        else:
            try:
                events = self._parser.feed(sse.event, sse.data)
            except MalformedUpstream as e:
                events = [StreamError(ApiError(502, str(e), "api_error"))]
            except (ValueError, KeyError, TypeError, AttributeError, IndexError) as e:
                # Reading the provider's event failed (see Translation._response); rendering for the
                # client is not caught here: a failure there is llmitm's bug, for the caller to report.
                what = MalformedUpstream(f"malformed upstream stream event ({e!r})", sse.data)
                events = [StreamError(ApiError(502, str(what), "api_error"))]
        for ev in events:
            self._emit(ev, out)

    def _emit(self, ev, out: list[bytes]) -> None:
        if self._done:
            return
        cls = ev.__class__
        if cls is BlockStart and ev.kind == TOOL_CALL:
            self._tool_emitted = True
        elif cls is StreamFinish:
            self._finished = True
            ev = StreamFinish(derive_stop_reason(ev.stop_reason, self._tool_emitted), ev.stop_sequence)
            self._t.stop_reason = ev.stop_reason
        elif cls is UsageUpdate or cls is StreamStart and ev.usage is not None:
            self._t.usage = ev.usage
        elif cls is StreamEnd or cls is StreamError:
            self._done = True
            self.complete = cls is StreamEnd
        self._renderer.render(ev, out)
