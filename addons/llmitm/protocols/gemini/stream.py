"""Streams: Gemini SSE chunks → canonical stream events, and canonical stream events → Gemini SSE (or a JSON array)."""

from __future__ import annotations

import json

from ..canonical import (
    CONTENT_FILTER,
    END,
    MAX_TOKENS,
    PAUSE,
    REASONING,
    REDACTED,
    REFUSAL,
    TEXT,
    TOOL_CALL,
    BlockStart,
    BlockStop,
    Context,
    Delta,
    KeepAlive,
    Reasoning,
    Request,
    SignatureDelta,
    StreamEnd,
    StreamError,
    StreamFinish,
    StreamStart,
    Usage,
    UsageUpdate,
)
from ..policy import as_dict, new_id
from .fields import get_field, parse_path
from .partial_args import ArgsWriter, parse_json_path
from .response import (
    FINISH_OUT,
    first_candidate,
    function_call_part,
    reasoning_on_call,
    reasoning_part,
    stop_reason_from_finish,
    warn_dropped_part,
)
from .signatures import make_tool_id
from .usage_errors import error_body, error_from_payload, parse_usage, render_stream_error, render_usage


class StreamParser:
    """Gemini SSE chunks (each a whole GenerateContentResponse) → canonical stream events."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._started = False
        self._next = 0
        self._open: int | None = None  # open text/reasoning block
        self._open_kind: str | None = None
        self._partial: int | None = None  # block index of a function call whose arguments stream (partialArgs)
        self._writer = ArgsWriter()
        self._calls = 0
        self._rid = ""
        self._usage: Usage | None = None
        self._warned_sig = False

    def _block(self, kind: str, out: list, **kw) -> int:
        self._close_text(out)
        index = self._next
        self._next += 1
        out.append(BlockStart(index, kind, **kw))
        return index

    def _close_text(self, out: list) -> None:
        if self._open is not None:
            out.append(BlockStop(self._open))
            self._open = self._open_kind = None

    def _close_partial(self, out: list) -> None:
        if self._partial is not None:
            self._emit_args(self._writer.close(), out)
            out.append(BlockStop(self._partial))
            self._partial = None

    def _emit_args(self, text: str, out: list) -> None:
        if text:
            out.append(Delta(self._partial, text))

    def _text(self, kind: str, text: str, out: list) -> None:
        self._close_partial(out)
        if self._open is None or self._open_kind != kind:
            self._open = self._block(kind, out)
            self._open_kind = kind
        out.append(Delta(self._open, text))

    def _function_call(self, fc: dict, signature, out: list) -> None:
        name = fc.get("name")
        if name:
            self._close_partial(out)
            self._close_text(out)
            cid = make_tool_id(fc.get("id") or None, self._rid, self._calls, signature)
            self._calls += 1
            index = self._block(TOOL_CALL, out, id=cid, name=str(name))
            if fc.get("willContinue") and fc.get("args") is None:
                self._partial = index
                self._writer = ArgsWriter()
                self._apply_partial(fc, out)
                return
            args = fc.get("args")
            out.append(Delta(index, json.dumps(args if args is not None else {})))
            out.append(BlockStop(index))
            return
        if self._partial is None:
            if fc.get("args") or get_field(fc, "partialArgs"):
                self.ctx.warn("function-call fragment without a started call dropped")
            return
        self._apply_partial(fc, out)
        if not fc.get("willContinue"):
            self._close_partial(out)

    def _apply_partial(self, fc: dict, out: list) -> None:
        w = self._writer
        if isinstance(fc.get("args"), dict):
            for key, value in fc["args"].items():
                self._emit_args(w.value([key], value, is_string=False, more=False), out)
        for pa in get_field(fc, "partialArgs") or []:
            pa = as_dict(pa)
            keys = parse_json_path(str(get_field(pa, "jsonPath") or ""))
            more = bool(get_field(pa, "willContinue"))
            if "stringValue" in pa or "string_value" in pa:
                value, is_string = str(get_field(pa, "stringValue") or ""), True
            elif "numberValue" in pa or "number_value" in pa:
                value, is_string = get_field(pa, "numberValue"), False
            elif "boolValue" in pa or "bool_value" in pa:
                value, is_string = bool(get_field(pa, "boolValue")), False
            elif "nullValue" in pa or "null_value" in pa:
                value, is_string = None, False
            else:
                continue
            if not keys:
                self.ctx.warn("function-call argument with an unusable jsonPath dropped")
                continue
            self._emit_args(w.value(keys, value, is_string=is_string, more=more), out)
            if w.broken:
                self.ctx.warn("function-call arguments that arrived out of order were cut at that point")

    def feed(self, event: str | None, data: str) -> list:
        chunk = json.loads(data)
        if isinstance(chunk, list):  # a JSON-array stream element that arrived as one SSE event
            out: list = []
            for c in chunk:
                out.extend(self._chunk(as_dict(c)))
            return out
        return self._chunk(as_dict(chunk))

    def _chunk(self, chunk: dict) -> list:
        out: list = []
        if chunk.get("error"):
            return [StreamError(error_from_payload(chunk["error"], None))]
        if not self._started:
            self._started = True
            self._rid = str(get_field(chunk, "responseId") or "") or new_id("gemini-")
            out.append(StreamStart(self._rid, str(get_field(chunk, "modelVersion") or "")))
        candidate = first_candidate(chunk, self.ctx)
        for part in as_dict(candidate.get("content")).get("parts") or []:
            part = as_dict(part)
            fc = get_field(part, "functionCall")
            signature = get_field(part, "thoughtSignature")
            if isinstance(fc, dict):
                self._function_call(fc, signature, out)
                continue
            text = part.get("text")
            if isinstance(text, str):
                if text:
                    self._text(REASONING if part.get("thought") is True else TEXT, text, out)
                if signature and not self._warned_sig:
                    self._warned_sig = True
                    self.ctx.warn("thoughtSignature on a text part dropped (only function-call signatures "
                                  "are carried)")
                continue
            warn_dropped_part(part, self.ctx)
        if get_field(candidate, "groundingMetadata") or get_field(candidate, "citationMetadata"):
            self.ctx.warn("grounding/citation metadata dropped (no equivalent for the client)")
        reason = get_field(candidate, "finishReason")
        blocked = not candidate and get_field(as_dict(get_field(chunk, "promptFeedback")), "blockReason")
        if reason is not None or blocked:
            self._close_partial(out)
            self._close_text(out)
        usage = get_field(chunk, "usageMetadata")
        if isinstance(usage, dict):
            parsed = parse_usage(usage)
            if parsed is not None and parsed != self._usage:
                self._usage = parsed
                out.append(UsageUpdate(parsed))
        if reason is not None or blocked:
            out.append(StreamFinish(CONTENT_FILTER if blocked else stop_reason_from_finish(reason, self.ctx)))
        return out


    def comment(self, text: str) -> list:
        return [KeepAlive()]  # Gemini sends none; a compatible server's keep-alive is passed on


class _PendingCall:
    """A function call being rendered: Gemini sends a call whole, so its arguments are collected until
    its block stops."""

    __slots__ = ("id", "name", "arguments")

    def __init__(self, id: str, name: str) -> None:
        self.id = id
        self.name = name
        self.arguments = ""


class StreamRenderer:
    """Canonical stream events → Gemini SSE chunks (`data: {…}\\r\\n\\r\\n`, as Gemini frames them), or a
    JSON array when the app called streamGenerateContent without `alt=sse`."""

    def __init__(self, ctx: Context, request: Request | None):
        self.ctx = ctx
        _, method, sse = parse_path(ctx.client_path)
        self._array = method == "streamGenerateContent" and not sse
        self._sent = False
        self._id = new_id("llmitm-")
        self._model = request.model if request is not None else ""
        self._kinds: dict[int, str] = {}
        self._calls: dict[int, _PendingCall] = {}  # block index → call whose arguments are still arriving
        self._bad_calls: list[_PendingCall] = []  # calls whose arguments did not parse: fate decided by the stop reason
        self._usage: Usage | None = None
        self._finish: StreamFinish | None = None
        self._done = False
        # Signed reasoning (block index → its text and signature, or redacted payload) waiting for the next
        # function call, whose part carries it too (response.reasoning_on_call): clients that drop thought
        # parts keep the call's signature.
        self._signed: dict[int, Reasoning] = {}
        self._thinking: list[str] = []  # text of the open reasoning block (pieces), for its signature

    def _emit(self, out: list, parts: list[dict] | None, finish: str | None = None, usage: bool = False) -> None:
        candidate: dict = {"content": {"role": "model", "parts": parts or [{"text": ""}]}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        chunk: dict = {"candidates": [candidate]}
        if self._usage is not None:
            chunk["usageMetadata"] = render_usage(self._usage)
        chunk["modelVersion"] = self._model
        chunk["responseId"] = self._id
        self._write(out, json.dumps(chunk, separators=(",", ":")).encode())

    def _write(self, out: list, payload: bytes) -> None:
        if self._array:
            out.append((b"," if self._sent else b"[") + payload + b"\r\n")
        else:
            out.append(b"data: " + payload + b"\r\n\r\n")
        self._sent = True

    def _call_part(self, call: _PendingCall, args: dict) -> dict:
        part = function_call_part(call.id, call.name, args)
        if self._signed:
            part["thoughtSignature"] = reasoning_on_call(list(self._signed.values()))
            self._signed.clear()
        return part

    def render(self, ev, out: list) -> None:
        if self._done:
            return
        cls = ev.__class__
        if cls is Delta:
            kind = self._kinds.get(ev.index)
            if kind == TOOL_CALL:
                self._calls[ev.index].arguments += ev.text
            elif kind == REASONING:
                self._thinking.append(ev.text)
                self._emit(out, [{"text": ev.text, "thought": True}])
            elif kind in (TEXT, REFUSAL):
                self._emit(out, [{"text": ev.text}])
        elif cls is StreamStart:
            self._id = ev.id or self._id
            self._model = ev.model or self._model
            if ev.usage is not None:
                self._usage = ev.usage
        elif cls is BlockStart:
            self._kinds[ev.index] = ev.kind
            if ev.kind == TOOL_CALL:
                self._calls[ev.index] = _PendingCall(ev.id or new_id("call_"), ev.name or "")
            elif ev.kind == REDACTED:
                self._signed[ev.index] = Reasoning("", None, ev.data or "")
                self._emit(out, [reasoning_part("", None, ev.data or "")])
            elif ev.kind == REASONING:
                self._thinking = []
        elif cls is SignatureDelta:
            if self._kinds.get(ev.index) == REASONING:
                signed = self._signed.get(ev.index)
                if signed is None:
                    self._signed[ev.index] = Reasoning("".join(self._thinking), ev.signature)
                else:
                    signed.signature = (signed.signature or "") + ev.signature
                self._emit(out, [reasoning_part("", ev.signature)])  # for clients that send thoughts back
        elif cls is BlockStop:
            call = self._calls.pop(ev.index, None)
            if call is not None:
                try:
                    value = json.loads(call.arguments) if call.arguments.strip() else {}
                except ValueError:
                    self._bad_calls.append(call)
                    return
                self._emit(out, [self._call_part(call, value if isinstance(value, dict) else {"value": value})])
        elif cls is UsageUpdate:
            self._usage = ev.usage
        elif cls is StreamFinish:
            self._finish = ev  # the finishReason chunk waits for a trailing usage chunk (OpenAI sends it last)
        elif cls is StreamEnd:
            fin = self._finish or StreamFinish(END)
            parts: list[dict] = []
            for call in [*self._calls.values(), *self._bad_calls]:
                if fin.stop_reason == MAX_TOKENS:
                    self.ctx.warn("tool call cut off by the output limit dropped from the response")
                    continue
                self.ctx.warn("tool call with invalid JSON arguments returned with args {}")
                parts.append(self._call_part(call, {}))
            if fin.stop_reason == PAUSE:
                self.ctx.warn("Anthropic pause_turn reported as finishReason STOP")
            self._emit(out, parts, FINISH_OUT.get(fin.stop_reason or END, "STOP"), usage=True)
            self._close(out)
        elif cls is StreamError:
            if self._array:
                self._write(out, json.dumps(error_body(ev.error)).encode())
            else:
                out.append(render_stream_error(ev.error))
            self._close(out)
        elif cls is KeepAlive and not self._array:
            out.append(b"\r\n")  # a blank line dispatches nothing but keeps the connection busy

    def _close(self, out: list) -> None:
        self._done = True
        if self._array:
            out.append(b"]" if self._sent else b"[]")
