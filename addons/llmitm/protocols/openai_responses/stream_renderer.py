"""Streams: canonical stream events → Responses SSE for a Responses client."""

from __future__ import annotations

import time

from .. import errors
from ..canonical import (
    END,
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
    Request,
    SignatureDelta,
    StreamEnd,
    StreamError,
    StreamFinish,
    StreamStart,
    Usage,
    UsageUpdate,
)
from ..policy import new_id
from .items import (
    call_item_id,
    call_status,
    custom_input,
    envelope,
    message_item,
    reasoning_item,
    response_id,
    status_for,
    text_part,
)
from .tools import client_tool_name
from .usage_errors import NAME, render_usage, sse_event, stream_error_payload


class _ContentPart:
    """The open content part of the open message item: output_text or refusal, its text so far and its
    position in the message."""

    __slots__ = ("kind", "content_index", "text")

    def __init__(self, kind: str, content_index: int) -> None:
        self.kind = kind  # TEXT | REFUSAL
        self.content_index = content_index
        self.text = ""


class _ReasoningItem:
    """An open reasoning item: its summary text so far, the signature arriving for it, and the redacted
    payload when it stands for Anthropic's redacted thinking."""

    __slots__ = ("output_index", "item_id", "text", "signature", "redacted", "has_summary_part")

    def __init__(self, output_index: int, item_id: str, redacted: str | None) -> None:
        self.output_index = output_index
        self.item_id = item_id
        self.text = ""
        self.signature = ""
        self.redacted = redacted
        self.has_summary_part = False  # reasoning_summary_part.added was sent


class _ToolItem:
    """A function_call (or custom_tool_call) item: its arguments so far and whether its done events went out."""

    __slots__ = ("output_index", "item_id", "call_id", "name", "namespace", "arguments", "done", "custom")

    def __init__(self, output_index: int, item_id: str, call_id: str, name: str, custom: bool) -> None:
        self.output_index = output_index
        self.item_id = item_id
        self.call_id = call_id
        self.name = name  # as the client declared it
        self.namespace: str | None = None  # the client's namespace tool holding it
        self.arguments = ""
        self.done = False
        self.custom = custom  # a custom (free-text) tool: shown as custom_tool_call with its input


class StreamRenderer:
    """Canonical stream events → Responses SSE (`event:` line, `type` and an increasing
    `sequence_number` in every payload) for a Responses client."""

    def __init__(self, ctx: Context, request: Request | None):
        self.ctx = ctx
        self._request = request
        self._seq = 0
        self._started = False
        self._id = response_id(new_id(""))
        self._model = request.model if request else ""
        self._created = int(time.time())
        self._output: list[dict | None] = []  # finished items by output_index (None while open)
        self._kinds: dict[int, str] = {}  # canonical block index → kind
        # The open message item: output_index, item id, finished content parts, and the open part.
        self._msg: int | None = None
        self._msg_id = ""
        self._msg_parts: list[dict] = []
        self._part: _ContentPart | None = None  # the open content part
        self._part_blocks: set[int] = set()  # canonical blocks written into the open part
        self._part_closing = False  # its block stopped; another text block may continue it
        self._reasoning: dict[int, _ReasoningItem] = {}  # canonical block index → open reasoning item
        self._tools: dict[int, _ToolItem] = {}  # canonical block index → tool-call item
        self._pending_tools: list[int] = []  # stopped tool blocks whose done events are still due
        self._usage: Usage | None = None
        self._finish: StreamFinish | None = None

    def _emit(self, out: list, kind: str, **fields) -> None:
        payload = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        out.append(sse_event(kind, payload))

    def _response(self, status: str, **fields) -> dict:
        resp = envelope(self._id, self._model, self._created, self._request)
        resp["status"] = status
        resp.update(fields)
        return resp

    def _start(self, out: list, id: str = "", model: str = "") -> None:
        self._started = True
        if id:
            self._id = response_id(id)
        self._model = model or self._model
        self._emit(out, "response.created", response=self._response("in_progress"))
        self._emit(out, "response.in_progress", response=self._response("in_progress"))

    # -- message items and content parts

    def _open_msg(self, out: list) -> None:
        if self._msg is None:
            self._msg = len(self._output)
            self._output.append(None)
            self._msg_id = f"msg_{self._msg}_{self._id.removeprefix('resp_')}"
            self._msg_parts = []
            self._emit(out, "response.output_item.added", output_index=self._msg,
                       item=message_item(self._msg_id, [], "in_progress"))

    def _open_part(self, kind: str, out: list) -> None:
        self._close_part(out)
        self._open_msg(out)
        self._part = _ContentPart(kind, len(self._msg_parts))
        self._part_closing = False
        empty = text_part("") if kind == TEXT else {"type": "refusal", "refusal": ""}
        self._emit(out, "response.content_part.added", item_id=self._msg_id, output_index=self._msg,
                   content_index=self._part.content_index, part=empty)

    def _close_part(self, out: list) -> None:
        part = self._part
        if part is None:
            return
        common = {"item_id": self._msg_id, "output_index": self._msg, "content_index": part.content_index}
        if part.kind == TEXT:
            done = text_part(part.text)
            self._emit(out, "response.output_text.done", **common, text=part.text, logprobs=[])
        else:
            done = {"type": "refusal", "refusal": part.text}
            self._emit(out, "response.refusal.done", **common, refusal=part.text)
        self._emit(out, "response.content_part.done", **common, part=done)
        self._msg_parts.append(done)
        self._part = None
        self._part_blocks.clear()
        self._part_closing = False

    def _close_msg(self, out: list) -> None:
        self._close_part(out)
        if self._msg is not None:
            item = message_item(self._msg_id, self._msg_parts)
            self._output[self._msg] = item
            self._emit(out, "response.output_item.done", output_index=self._msg, item=item)
            self._msg = None

    # -- tool items

    def _flush_tools(self, out: list) -> None:
        for index in self._pending_tools:
            tool = self._tools[index]
            common = {"item_id": tool.item_id, "output_index": tool.output_index}
            if tool.custom:  # the input is known once the JSON arguments are whole
                stop = self._finish.stop_reason if self._finish else None
                text = custom_input(tool.arguments)
                if text:
                    self._emit(out, "response.custom_tool_call_input.delta", **common, delta=text)
                self._emit(out, "response.custom_tool_call_input.done", **common, input=text)
                item = {"id": tool.item_id, "type": "custom_tool_call", "status": call_status(tool.arguments, stop),
                        "call_id": tool.call_id, "name": tool.name, "input": text}
                self._output[tool.output_index] = item
                self._emit(out, "response.output_item.done", output_index=tool.output_index, item=item)
                tool.done = True
                continue
            if not tool.arguments:  # a tool without arguments takes "{}"
                tool.arguments = "{}"
                self._emit(out, "response.function_call_arguments.delta", **common, delta="{}")
            self._emit(out, "response.function_call_arguments.done", **common, name=tool.name,
                       arguments=tool.arguments)
            stop = self._finish.stop_reason if self._finish else None
            item = {"id": tool.item_id, "type": "function_call", "status": call_status(tool.arguments, stop),
                    "arguments": tool.arguments, "call_id": tool.call_id, "name": tool.name}
            if tool.namespace:
                item["namespace"] = tool.namespace
            self._output[tool.output_index] = item
            self._emit(out, "response.output_item.done", output_index=tool.output_index, item=item)
            tool.done = True
        self._pending_tools.clear()

    # -- reasoning items

    def _close_reasoning(self, index: int, out: list) -> None:
        r = self._reasoning.pop(index, None)
        if r is None:
            return
        common = {"item_id": r.item_id, "output_index": r.output_index}
        if r.has_summary_part:
            part = {"type": "summary_text", "text": r.text}
            self._emit(out, "response.reasoning_summary_text.done", **common, summary_index=0, text=r.text)
            self._emit(out, "response.reasoning_summary_part.done", **common, summary_index=0, part=part)
        item = reasoning_item(r.item_id, r.text, r.signature or None, r.redacted)
        self._output[r.output_index] = item
        self._emit(out, "response.output_item.done", output_index=r.output_index, item=item)

    def _close_all(self, out: list) -> None:
        self._close_msg(out)
        for index in list(self._reasoning):
            self._close_reasoning(index, out)
        for index, tool in self._tools.items():  # opened but never stopped
            if not tool.done and index not in self._pending_tools:
                self._pending_tools.append(index)
        self._flush_tools(out)

    # -- events

    def render(self, ev, out: list) -> None:
        cls = ev.__class__
        if cls is Delta:
            kind = self._kinds.get(ev.index)
            if kind in (TEXT, REFUSAL):
                part = self._part
                if part is None or ev.index not in self._part_blocks:
                    return
                part.text += ev.text
                common = {"item_id": self._msg_id, "output_index": self._msg, "content_index": part.content_index}
                if part.kind == TEXT:
                    self._emit(out, "response.output_text.delta", **common, delta=ev.text, logprobs=[])
                else:
                    self._emit(out, "response.refusal.delta", **common, delta=ev.text)
            elif kind == REASONING:
                r = self._reasoning.get(ev.index)
                if r is None or not ev.text:
                    return
                common = {"item_id": r.item_id, "output_index": r.output_index}
                if not r.has_summary_part:
                    r.has_summary_part = True
                    self._emit(out, "response.reasoning_summary_part.added", **common, summary_index=0,
                               part={"type": "summary_text", "text": ""})
                r.text += ev.text
                self._emit(out, "response.reasoning_summary_text.delta", **common, summary_index=0, delta=ev.text)
            elif kind == TOOL_CALL:
                tool = self._tools[ev.index]
                if tool.done:
                    self.ctx.warn("late tool-call argument fragment dropped (its item was already complete)")
                    return
                tool.arguments += ev.text
                if not tool.custom:
                    self._emit(out, "response.function_call_arguments.delta", item_id=tool.item_id,
                               output_index=tool.output_index, delta=ev.text)
            return
        if not self._started and cls is not KeepAlive:
            if cls is StreamStart:
                self._start(out, ev.id, ev.model)
                return
            self._start(out)
        if cls is BlockStart:
            kind = ev.kind
            self._kinds[ev.index] = kind
            if kind != TOOL_CALL:
                self._flush_tools(out)
            if kind == TEXT and self._part is not None and self._part.kind == TEXT and self._part_closing:
                self._part_blocks.add(ev.index)  # consecutive text blocks continue one output_text
                self._part_closing = False
                return
            if kind in (TEXT, REFUSAL):
                self._open_part(kind, out)
                self._part_blocks.add(ev.index)
                return
            self._close_msg(out)
            output_index = len(self._output)
            self._output.append(None)
            if kind == TOOL_CALL:
                call_id = ev.id or new_id("call_")
                custom = (ev.name or "") in self.ctx.freeform_tools
                name, namespace = client_tool_name(ev.name or "", self.ctx)
                tool = _ToolItem(output_index, call_item_id(call_id, "ctc_" if custom else "fc_"), call_id, name, custom)
                tool.namespace = namespace
                self._tools[ev.index] = tool
                item = ({"id": tool.item_id, "type": "custom_tool_call", "status": "in_progress", "call_id": call_id,
                         "name": tool.name, "input": ""} if custom else
                        {"id": tool.item_id, "type": "function_call", "status": "in_progress", "arguments": "",
                         "call_id": call_id, "name": tool.name})
                if namespace:
                    item["namespace"] = namespace
                self._emit(out, "response.output_item.added", output_index=output_index, item=item)
            else:  # REASONING, REDACTED
                rid = f"rs_{output_index}_{self._id.removeprefix('resp_')}"
                self._reasoning[ev.index] = _ReasoningItem(output_index, rid, ev.data or "" if kind == REDACTED else None)
                self._emit(out, "response.output_item.added", output_index=output_index,
                           item={"id": rid, "type": "reasoning", "summary": []})
        elif cls is SignatureDelta:
            r = self._reasoning.get(ev.index)
            if r is not None:
                r.signature += ev.signature
        elif cls is BlockStop:
            kind = self._kinds.get(ev.index)
            if kind in (TEXT, REFUSAL):
                if ev.index in self._part_blocks:
                    if kind == REFUSAL:
                        self._close_part(out)
                    else:
                        self._part_closing = True  # closed at the next non-text event
            elif kind == TOOL_CALL:
                if not self._tools[ev.index].done and ev.index not in self._pending_tools:
                    self._pending_tools.append(ev.index)
            elif kind is not None:
                self._close_reasoning(ev.index, out)
        elif cls is UsageUpdate:
            self._usage = ev.usage
        elif cls is StreamFinish:
            self._finish = ev
            self._close_all(out)
        elif cls is StreamEnd:
            self._close_all(out)
            stop = self._finish.stop_reason if self._finish else END
            status, incomplete = status_for(stop, self.ctx)
            output = [item for item in self._output if item is not None]
            self._emit(out, f"response.{status}", response=self._response(
                status, incomplete_details=incomplete, output=output, usage=render_usage(self._usage)))
        elif cls is StreamError:
            err = ev.error
            self._emit(out, "error", **{k: v for k, v in stream_error_payload(err, 0).items()
                                        if k not in ("type", "sequence_number")})
            body = {"code": err.code or err.type or errors.error_type_for(NAME, err.status), "message": err.message}
            output = [item for item in self._output if item is not None]
            self._emit(out, "response.failed", response=self._response(
                "failed", error=body, output=output, usage=render_usage(self._usage) if self._usage else None))
        elif cls is KeepAlive:
            out.append(b": keep-alive\n\n")
