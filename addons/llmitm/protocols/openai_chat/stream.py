"""OpenAI Chat stream chunks (`data: {…}` SSE, `[DONE]` terminator) to and from canonical stream events
(PROTOCOLS.md §2.13)."""

from __future__ import annotations

import json
import time

from ..canonical import (
    END,
    PAUSE,
    REASONING,
    REFUSAL,
    TEXT,
    TOOL_CALL,
    BlockStart,
    BlockStop,
    Context,
    Delta,
    KeepAlive,
    Request,
    StreamEnd,
    StreamError,
    StreamFinish,
    StreamStart,
    Usage,
    UsageUpdate,
)
from ..policy import new_id
from ..think_tags import ThinkSplitter
from .api_errors import error_from_payload, render_stream_error
from .response import FINISH_OUT, parse_usage, render_usage, stop_reason_of


class _OpenBlock:
    """The canonical block being written to: its index and kind (text, reasoning, refusal, tool call)."""

    __slots__ = ("index", "kind")

    def __init__(self, index: int, kind: str):
        self.index = index
        self.kind = kind


class _UpstreamToolCall:
    """A tool call seen in the upstream's chunks: the canonical block it became and its call id."""

    __slots__ = ("block_index", "call_id")

    def __init__(self, block_index: int, call_id: str):
        self.block_index = block_index
        self.call_id = call_id


class StreamParser:
    """Chat Completions chunks (decoded SSE data) → canonical stream events. Only choice 0 is
    translated (n>1 is refused toward protocols without choices)."""

    def __init__(self, ctx: Context, *, think_tags: bool = True):
        self.ctx = ctx
        self._started = False
        self._next_block_index = 0
        self._open_block: _OpenBlock | None = None  # text, reasoning, refusal or tool call
        self._tool_calls: dict[int, _UpstreamToolCall] = {}  # by the upstream's tool_calls[].index
        # None once content proved tag-free (or with think_tags off: a local model configured so)
        self._think: ThinkSplitter | None = ThinkSplitter() if think_tags else None
        self._finished = False

    def _start_block(self, kind: str, out: list, **fields) -> int:
        self._close(out)
        index = self._next_block_index
        self._next_block_index += 1
        out.append(BlockStart(index, kind, **fields))
        self._open_block = _OpenBlock(index, kind)
        return index

    def _close(self, out: list) -> None:
        if self._open_block is not None:
            out.append(BlockStop(self._open_block.index))
            self._open_block = None

    def _text(self, kind: str, text: str, out: list) -> None:
        block = self._open_block
        index = block.index if block is not None and block.kind == kind else self._start_block(kind, out)
        out.append(Delta(index, text))

    def feed(self, event: str | None, data: str) -> list:
        if data == "[DONE]":
            return self._end()
        chunk = json.loads(data)
        out: list = []
        if chunk.get("error"):
            return [StreamError(error_from_payload(chunk["error"], None))]
        choices = chunk.get("choices") or []
        if not self._started and (choices or chunk.get("usage")):
            # Azure opens with an id-less prompt_filter_results chunk: start on the first real one.
            self._started = True
            out.append(StreamStart(str(chunk.get("id") or ""), str(chunk.get("model") or "")))
        for choice in choices:
            if choice.get("index", 0) != 0:
                self.ctx.warn("only the first of several choices was translated")
                continue
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning and isinstance(reasoning, str):
                self._think = None  # the server separates reasoning itself
                self._text(REASONING, reasoning, out)
            content = delta.get("content")
            if content:
                if self._think is not None:
                    for kind, piece in self._think.feed(content):
                        self._text(kind, piece, out)
                    if self._think.plain:
                        self._think = None
                else:
                    self._text(TEXT, content, out)
            if delta.get("refusal"):
                self._text(REFUSAL, delta["refusal"], out)
            for call in delta.get("tool_calls") or ():
                self._tool_call(call, out)
            if choice.get("finish_reason"):
                self._flush_think(out)
                self._close(out)
                stop, matched = stop_reason_of(choice, self.ctx)
                out.append(StreamFinish(stop, matched))
                self._finished = True
        usage = chunk.get("usage")
        if isinstance(usage, dict):  # its own chunk, or on the finish chunk (DeepSeek)
            out.append(UsageUpdate(parse_usage(usage)))
        return out

    def _tool_call(self, call: dict, out: list) -> None:
        position = call.get("index", len(self._tool_calls))
        fn = call.get("function") or {}
        known = self._tool_calls.get(position)
        call_id = call.get("id")
        if known is not None and call_id and fn.get("name") and call_id != known.call_id:
            known = None  # a new call reusing the index (servers that send every call as index 0)
        if known is None:
            self._flush_think(out)
            call_id = call_id or new_id("call_")
            index = self._start_block(TOOL_CALL, out, id=call_id, name=fn.get("name") or "")
            known = self._tool_calls[position] = _UpstreamToolCall(index, call_id)
        args = fn.get("arguments")
        if args:
            out.append(Delta(known.block_index, args if isinstance(args, str) else json.dumps(args)))

    def _flush_think(self, out: list) -> None:
        if self._think is not None:
            for kind, piece in self._think.flush():
                self._text(kind, piece, out)

    def _end(self) -> list:
        out: list = []
        self._flush_think(out)
        self._close(out)
        if not self._finished:
            # Some servers end after tool calls without a finish_reason (PROTOCOLS.md §2.13).
            out.append(StreamFinish(None))
            self._finished = True
        out.append(StreamEnd())
        return out

    def comment(self, text: str) -> list:
        return [KeepAlive()]


class _ClientToolCall:
    """A tool call as the OpenAI client sees it: its `tool_calls[].index` and whether any arguments went out."""

    __slots__ = ("tool_index", "arguments_sent")

    def __init__(self, tool_index: int):
        self.tool_index = tool_index
        self.arguments_sent = False


class StreamRenderer:
    """Canonical stream events → Chat Completions chunks for an OpenAI client."""

    def __init__(self, ctx: Context, request: Request | None):
        self.ctx = ctx
        self._include_usage = bool(request and request.include_usage)
        self._prefix = b""
        self._started = False
        self._block_kinds: dict[int, str] = {}  # by canonical block index
        self._tool_calls: dict[int, _ClientToolCall] = {}  # by canonical block index
        self._usage: Usage | None = None
        self._id = new_id("chatcmpl-")
        self._model = ""
        self._created = int(time.time())

    def _start(self, out: list, id: str = "", model: str = "") -> None:
        self._started = True
        self._id = id or self._id
        self._model = model
        self._prefix = ('data: {"id":' + json.dumps(self._id) + ',"object":"chat.completion.chunk","created":'
                        + str(self._created) + ',"model":' + json.dumps(model) + ',"choices":').encode()
        self._chunk(out, {"role": "assistant", "content": ""})

    def _chunk(self, out: list, delta: dict, finish: str | None = None) -> None:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        out.append(self._prefix + json.dumps([choice], separators=(",", ":")).encode() + b"}\n\n")

    def render(self, ev, out: list) -> None:
        if isinstance(ev, Delta):
            kind = self._block_kinds.get(ev.index)
            if kind == TOOL_CALL:
                call = self._tool_calls[ev.index]
                call.arguments_sent = True
                self._chunk(out, {"tool_calls": [{"index": call.tool_index, "function": {"arguments": ev.text}}]})
            elif kind == REASONING:
                self._chunk(out, {"reasoning_content": ev.text})
            elif kind == REFUSAL:
                self._chunk(out, {"refusal": ev.text})
            elif kind == TEXT:
                self._chunk(out, {"content": ev.text})
            return
        if not self._started and not isinstance(ev, (StreamError, KeepAlive)):
            if isinstance(ev, StreamStart):
                self._start(out, ev.id, ev.model)
                return
            self._start(out)
        if isinstance(ev, BlockStart):
            self._block_kinds[ev.index] = ev.kind
            if ev.kind == TOOL_CALL:
                tool_index = len(self._tool_calls)  # OpenAI tool indexes count from 0
                self._tool_calls[ev.index] = _ClientToolCall(tool_index)
                self._chunk(out, {"tool_calls": [{"index": tool_index, "id": ev.id, "type": "function",
                                                  "function": {"name": ev.name, "arguments": ""}}]})
            elif ev.kind not in (TEXT, REASONING, REFUSAL):
                self.ctx.warn(f"{ev.kind} block dropped (no OpenAI Chat equivalent)")
        elif isinstance(ev, BlockStop):
            call = self._tool_calls.get(ev.index)
            if call is not None and not call.arguments_sent:  # a tool without arguments takes "{}"
                call.arguments_sent = True
                self._chunk(out, {"tool_calls": [{"index": call.tool_index, "function": {"arguments": "{}"}}]})
        elif isinstance(ev, UsageUpdate):
            self._usage = ev.usage
        elif isinstance(ev, StreamFinish):
            if ev.stop_reason == PAUSE:
                self.ctx.warn("Anthropic pause_turn reported as finish_reason stop")
            self._chunk(out, {}, FINISH_OUT.get(ev.stop_reason or END, "stop"))
        elif isinstance(ev, StreamEnd):
            if self._include_usage and self._usage is not None:
                out.append(self._prefix + b'[],"usage":' + json.dumps(render_usage(self._usage)).encode()
                           + b"}\n\n")
            out.append(b"data: [DONE]\n\n")
        elif isinstance(ev, StreamError):
            out.append(render_stream_error(ev.error))
        elif isinstance(ev, KeepAlive):
            out.append(b": keep-alive\n\n")
        # SignatureDelta: an Anthropic signature has no place in a Chat Completions stream.
