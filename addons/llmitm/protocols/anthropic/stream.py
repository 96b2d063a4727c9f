"""Anthropic SSE events (`message_start` … `message_stop`) to and from canonical stream events
(PROTOCOLS.md §2.13)."""

from __future__ import annotations

import json

from ..canonical import (
    END,
    REASONING,
    REDACTED,
    STOP_SEQUENCE,
    TEXT,
    TOOL_CALL,
    BlockStart,
    BlockStop,
    Context,
    Delta,
    KeepAlive,
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
from .api_errors import error_from_payload, render_stream_error
from .response import STOP_IN, STOP_OUT, parse_usage, render_usage

_BLOCK_KINDS = {"text": TEXT, "thinking": REASONING, "redacted_thinking": REDACTED, "tool_use": TOOL_CALL}


class StreamParser:
    """Anthropic SSE events (already decoded) → canonical stream events."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._usage: dict = {}  # raw usage fields merged across message_start and message_delta
        self._dropped_blocks: set[int] = set()  # indexes of blocks the client cannot receive

    def feed(self, event: str | None, data: str) -> list:
        if data == "[DONE]":  # not Anthropic's, but some compatible proxies append it
            return []
        payload = json.loads(data)
        kind = payload.get("type") or event
        if kind == "content_block_delta":
            index = payload["index"]
            delta = payload["delta"]
            dtype = delta.get("type")
            if index in self._dropped_blocks:
                return []
            if dtype == "text_delta":
                return [Delta(index, delta["text"])]
            if dtype == "input_json_delta":
                return [Delta(index, delta["partial_json"])] if delta["partial_json"] else []
            if dtype == "thinking_delta":
                return [Delta(index, delta["thinking"])] if delta["thinking"] else []
            if dtype == "signature_delta":
                return [SignatureDelta(index, delta["signature"])]
            if dtype == "citations_delta":
                self.ctx.warn("citations dropped (no equivalent for the client)")
                return []
            self.ctx.warn(f"stream delta type {dtype!r} dropped")
            return []
        if kind == "content_block_start":
            index = payload["index"]
            block = payload["content_block"]
            btype = _BLOCK_KINDS.get(block.get("type"))
            if btype is None:
                self._dropped_blocks.add(index)
                self.ctx.warn(f"response block type {block.get('type')!r} dropped (no equivalent for the client)")
                return []
            if btype == TOOL_CALL:
                out: list = [BlockStart(index, TOOL_CALL, id=block.get("id"), name=block.get("name"))]
                if block.get("input"):
                    out.append(Delta(index, json.dumps(block["input"])))
                return out
            if btype == REDACTED:
                return [BlockStart(index, REDACTED, data=block.get("data"))]
            out = [BlockStart(index, btype)]
            initial = block.get("text") or block.get("thinking")
            if initial:
                out.append(Delta(index, initial))
            return out
        if kind == "content_block_stop":
            index = payload["index"]
            return [] if index in self._dropped_blocks else [BlockStop(index)]
        if kind == "ping":
            return [KeepAlive()]
        if kind == "message_start":
            message = payload.get("message") or {}
            self._usage.update(as_dict(message.get("usage")))
            return [StreamStart(str(message.get("id") or ""), str(message.get("model") or ""),
                                parse_usage(self._usage))]
        if kind == "message_delta":
            # message_delta usage is cumulative and may repeat input/cache fields: merge, then report.
            self._usage.update({k: v for k, v in as_dict(payload.get("usage")).items() if v is not None})
            delta = as_dict(payload.get("delta"))
            reason = delta.get("stop_reason")
            stop = STOP_IN.get(str(reason))
            if stop is None:
                if reason is not None:
                    self.ctx.warn(f"unknown stop_reason {reason!r} reported as end of turn")
                stop = END
            return [UsageUpdate(parse_usage(self._usage)), StreamFinish(stop, delta.get("stop_sequence"))]
        if kind == "message_stop":
            return [StreamEnd()]
        if kind == "error":
            return [StreamError(error_from_payload(payload, None))]
        return []


def _sse(name: str, payload: dict) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


class _ClientBlock:
    """A content block as the Anthropic client sees it: its own index (counted from 0 over the blocks
    it receives) and the canonical kind."""

    __slots__ = ("index", "kind")

    def __init__(self, index: int, kind: str):
        self.index = index
        self.kind = kind


class StreamRenderer:
    """Canonical stream events → Anthropic SSE bytes for an Anthropic client."""

    def __init__(self, ctx: Context, request: Request | None):
        self.ctx = ctx
        self._started = False
        self._open_index: int | None = None  # the client's index of the open block
        self._blocks: dict[int, _ClientBlock] = {}  # by canonical block index
        self._usage: Usage | None = None
        self._finish: StreamFinish | None = None

    def _start(self, out: list, id: str = "", model: str = "", usage: Usage | None = None) -> None:
        self._started = True
        # Unknown input usage goes out as 0 here and for real in message_delta (PROTOCOLS.md §2.8).
        u = render_usage(usage)
        out.append(_sse("message_start", {"type": "message_start", "message": {
            "id": id or new_id("msg_"), "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": u}}))

    def _close_open(self, out: list) -> None:
        if self._open_index is not None:
            out.append(_sse("content_block_stop", {"type": "content_block_stop", "index": self._open_index}))
            self._open_index = None

    def render(self, ev, out: list) -> None:
        if isinstance(ev, Delta):
            block = self._blocks.get(ev.index)
            if block is None:
                return
            kind = block.kind
            if kind == TOOL_CALL:
                delta = {"type": "input_json_delta", "partial_json": ev.text}
            elif kind == REASONING:
                delta = {"type": "thinking_delta", "thinking": ev.text}
            else:
                delta = {"type": "text_delta", "text": ev.text}
            out.append(_sse("content_block_delta", {"type": "content_block_delta", "index": block.index,
                                                                    "delta": delta}))
            return
        if not self._started and not isinstance(ev, (StreamError, KeepAlive)):
            if isinstance(ev, StreamStart):
                self._start(out, ev.id, ev.model, ev.usage)
                return
            self._start(out)
        if isinstance(ev, BlockStart):
            self._close_open(out)
            index = len(self._blocks)
            self._blocks[ev.index] = _ClientBlock(index, ev.kind)
            kind = ev.kind
            if kind == TOOL_CALL:
                content_block = {"type": "tool_use", "id": ev.id or new_id("toolu_"), "name": ev.name or "", "input": {}}
            elif kind == REASONING:
                content_block = {"type": "thinking", "thinking": "", "signature": ""}
            elif kind == REDACTED:
                content_block = {"type": "redacted_thinking", "data": ev.data or ""}
            else:  # TEXT, REFUSAL
                content_block = {"type": "text", "text": ""}
            out.append(_sse("content_block_start", {"type": "content_block_start", "index": index,
                                                    "content_block": content_block}))
            self._open_index = index
        elif isinstance(ev, SignatureDelta):
            signed = self._blocks.get(ev.index)
            if signed is not None:
                out.append(_sse("content_block_delta", {"type": "content_block_delta", "index": signed.index,
                                                        "delta": {"type": "signature_delta",
                                                                  "signature": ev.signature}}))
        elif isinstance(ev, BlockStop):
            stopped = self._blocks.get(ev.index)
            if stopped is not None and stopped.index == self._open_index:
                self._close_open(out)
        elif isinstance(ev, UsageUpdate):
            self._usage = ev.usage
        elif isinstance(ev, StreamFinish):
            self._close_open(out)
            self._finish = ev  # message_delta waits for a trailing usage chunk (OpenAI sends it last)
        elif isinstance(ev, StreamEnd):
            self._close_open(out)
            fin = self._finish or StreamFinish(END)
            out.append(_sse("message_delta", {
                "type": "message_delta",
                "delta": {"stop_reason": STOP_OUT.get(fin.stop_reason or END, "end_turn"),
                          "stop_sequence": fin.stop_sequence if fin.stop_reason == STOP_SEQUENCE else None},
                "usage": render_usage(self._usage)}))
            out.append(_sse("message_stop", {"type": "message_stop"}))
        elif isinstance(ev, StreamError):
            self._close_open(out)
            out.append(render_stream_error(ev.error))
        elif isinstance(ev, KeepAlive) and self._started:  # the SDK rejects any event before message_start
            out.append(b'event: ping\ndata: {"type": "ping"}\n\n')
