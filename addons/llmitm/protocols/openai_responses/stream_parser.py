"""Streams: Responses upstream events → canonical stream events."""

from __future__ import annotations

import json

from ..canonical import (
    REASONING,
    REFUSAL,
    TEXT,
    TOOL_CALL,
    BlockStart,
    BlockStop,
    Context,
    Delta,
    KeepAlive,
    StreamEnd,
    StreamError,
    StreamFinish,
    StreamStart,
    UsageUpdate,
)
from ..policy import as_dict, new_id
from .items import parse_reasoning_item, stop_reason_from
from .usage_errors import error_from_payload, parse_usage


class _ReasoningPart:
    """The summary or reasoning_text part of a reasoning item being written, and its text so far (a
    part's `.done` event carries its full text: only what the deltas missed is emitted)."""

    __slots__ = ("key", "text")

    def __init__(self, key: tuple) -> None:
        self.key = key  # ("summary", summary_index) | ("content", content_index)
        self.text = ""


class StreamParser:
    """Responses stream events → canonical stream events. Everything is read from the payload's
    `type` (the `event:` line is only a fallback); text and arguments that a backend sends only in the
    `.done` events (or only in `output_item.done`) are recovered from there."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._started = False
        self._next = 0  # next canonical block index
        self._open: int | None = None  # open text/reasoning/refusal block
        self._blocks: dict[tuple, int] = {}  # (output_index, content key) → canonical block index
        self._kinds: dict[int, str] = {}
        self._sent: dict[int, str] = {}  # canonical block index → text/arguments emitted so far
        self._stopped: set[int] = set()
        self._items: dict[int, str] = {}  # output_index → item type
        self._reasoning_parts: dict[int, _ReasoningPart] = {}  # reasoning item's output_index → its current part
        self._finished = False

    # -- helpers

    def _start(self, payload: dict, out: list) -> None:
        if not self._started:
            self._started = True
            resp = as_dict(payload.get("response"))
            out.append(StreamStart(str(resp.get("id") or ""), str(resp.get("model") or "")))

    def _close_open(self, out: list) -> None:
        if self._open is not None:
            self._stop(self._open, out)

    def _stop(self, index: int, out: list) -> None:
        if index not in self._stopped:
            self._stopped.add(index)
            out.append(BlockStop(index))
        if self._open == index:
            self._open = None

    def _block(self, key: tuple, kind: str, out: list, **kw) -> int:
        index = self._blocks.get(key)
        if index is not None:
            return index
        self._close_open(out)
        index = self._next
        self._next += 1
        self._blocks[key] = index
        self._kinds[index] = kind
        self._sent[index] = ""
        out.append(BlockStart(index, kind, **kw))
        if kind != TOOL_CALL:
            self._open = index
        return index

    def _delta(self, index: int, text: str, out: list) -> None:
        if text and index not in self._stopped:
            self._sent[index] += text
            out.append(Delta(index, text))

    def _complete(self, index: int, full, out: list) -> None:
        """A `.done` event's full text: emit what the deltas did not already carry."""
        if not isinstance(full, str) or index in self._stopped:
            return
        sent = self._sent[index]
        if full.startswith(sent):
            self._delta(index, full[len(sent):], out)
        elif full != sent:
            self.ctx.warn("a stream's final text differed from its deltas; the deltas were kept")

    def _text_key(self, payload: dict) -> tuple:
        return (payload.get("output_index", 0), "content", payload.get("content_index", 0))

    def _reasoning_block(self, payload: dict, out: list) -> int:
        """The one canonical block of a reasoning item; its summary / reasoning_text parts are
        joined with a blank line; `_reasoning_parts` follows the part being written."""
        output_index = payload.get("output_index", 0)
        index = self._block((output_index, "reasoning"), REASONING, out)
        part = ("summary", payload.get("summary_index", 0)) if "summary_index" in payload else (
            "content", payload.get("content_index", 0))
        current = self._reasoning_parts.get(output_index)
        if current is None or current.key != part:
            if self._sent[index]:
                self._delta(index, "\n\n", out)
            self._reasoning_parts[output_index] = _ReasoningPart(part)
        return index

    def _reasoning_delta(self, payload: dict, text: str, out: list) -> None:
        index = self._reasoning_block(payload, out)
        if text and index not in self._stopped:
            output_index = payload.get("output_index", 0)
            self._reasoning_parts[output_index].text += text
            self._delta(index, text, out)

    def _item_done(self, output_index: int, item: dict, out: list) -> None:
        kind = item.get("type")
        if kind == "function_call":
            index = self._blocks.get((output_index, "call"))
            if index is None:
                index = self._tool_start(output_index, item, out)
            self._complete(index, item.get("arguments"), out)
            self._stop(index, out)
        elif kind == "message":
            for j, c in enumerate(item.get("content") or []):
                c = as_dict(c)
                key = (output_index, "content", j)
                ctype = c.get("type")
                if ctype not in ("output_text", "refusal"):
                    continue
                full = c.get("text") if ctype == "output_text" else c.get("refusal")
                if key not in self._blocks and not full:
                    continue
                index = self._block(key, TEXT if ctype == "output_text" else REFUSAL, out)
                self._complete(index, full, out)
                self._stop(index, out)
        elif kind == "reasoning":
            index = self._blocks.get((output_index, "reasoning"))
            if index is None:
                r = parse_reasoning_item(item)
                if r.text:
                    index = self._block((output_index, "reasoning"), REASONING, out)
                    self._delta(index, r.text, out)
            if index is not None:
                self._stop(index, out)

    def _tool_start(self, output_index: int, item: dict, out: list) -> int:
        self._close_open(out)
        call_id = str(item.get("call_id") or item.get("id") or new_id("call_"))
        index = self._block((output_index, "call"), TOOL_CALL, out, id=call_id, name=str(item.get("name") or ""))
        args = item.get("arguments")
        if isinstance(args, str) and args:
            self._delta(index, args, out)
        return index

    def _finish(self, payload: dict, out: list) -> None:
        resp = as_dict(payload.get("response"))
        if not self._blocks:  # a backend that put everything only in the final response object
            for output_index, item in enumerate(resp.get("output") or []):
                item = as_dict(item)
                if item.get("type") in ("message", "function_call", "reasoning"):
                    self._item_done(output_index, item, out)
        for index in list(self._blocks.values()):
            self._stop(index, out)
        if isinstance(resp.get("usage"), dict):
            out.append(UsageUpdate(parse_usage(resp["usage"])))
        out.append(StreamFinish(stop_reason_from(resp, self.ctx)))
        out.append(StreamEnd())
        self._finished = True

    # -- events

    def feed(self, event: str | None, data: str) -> list:
        if data == "[DONE]":
            return []
        payload = json.loads(data)
        if not isinstance(payload, dict):
            return []
        kind = payload.get("type") or event
        out: list = []
        if kind == "error":  # nested (recordings) or top-level (SDK 3.x ResponseErrorEvent) fields
            err = payload.get("error")
            if not isinstance(err, dict):
                err = {k: payload[k] for k in ("code", "message", "param") if k in payload}
            return [StreamError(error_from_payload(err, None))]
        if kind == "response.failed":
            resp = as_dict(payload.get("response"))
            return [StreamError(error_from_payload(resp.get("error") or "the upstream response failed", None))]
        if kind in ("response.created", "response.in_progress", "response.queued"):
            self._start(payload, out)
            return out
        if not self._started:
            self._start(payload, out)
        if kind == "response.output_text.delta":
            self._delta(self._block(self._text_key(payload), TEXT, out), payload.get("delta") or "", out)
        elif kind == "response.function_call_arguments.delta":
            output_index = payload.get("output_index", 0)
            index = self._blocks.get((output_index, "call"))
            if index is None:
                index = self._tool_start(output_index, {"id": payload.get("item_id")}, out)
            self._delta(index, payload.get("delta") or "", out)
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            self._reasoning_delta(payload, payload.get("delta") or "", out)
        elif kind == "response.refusal.delta":
            self._delta(self._block(self._text_key(payload), REFUSAL, out), payload.get("delta") or "", out)
        elif kind == "response.output_item.added":
            item = as_dict(payload.get("item"))
            output_index = payload.get("output_index", 0)
            self._items[output_index] = str(item.get("type"))
            if item.get("type") == "function_call":
                self._tool_start(output_index, item, out)
            elif item.get("type") not in ("message", "reasoning"):
                self.ctx.warn(f"output item type {item.get('type')!r} dropped (no equivalent for the client)")
        elif kind == "response.content_part.added":
            part = as_dict(payload.get("part"))
            if part.get("type") in ("output_text", "refusal"):
                index = self._block(self._text_key(payload), TEXT if part["type"] == "output_text" else REFUSAL, out)
                self._delta(index, part.get("text") or part.get("refusal") or "", out)
        elif kind in ("response.output_text.done", "response.refusal.done"):
            key = self._text_key(payload)
            full = payload.get("text") if kind == "response.output_text.done" else payload.get("refusal")
            if key in self._blocks or full:
                index = self._block(key, TEXT if kind == "response.output_text.done" else REFUSAL, out)
                self._complete(index, full, out)
        elif kind == "response.content_part.done":
            index = self._blocks.get(self._text_key(payload))
            if index is not None:
                self._stop(index, out)
        elif kind == "response.function_call_arguments.done":
            # Some backends send the arguments only here (BerriAI/litellm#25321 ignored this event).
            output_index = payload.get("output_index", 0)
            index = self._blocks.get((output_index, "call"))
            if index is None:
                index = self._tool_start(output_index, {"id": payload.get("item_id"), "name": payload.get("name")}, out)
            self._complete(index, payload.get("arguments"), out)
        elif kind in ("response.reasoning_summary_text.done", "response.reasoning_text.done"):
            # The part's full text: emit what its deltas did not carry.
            full = payload.get("text")
            if isinstance(full, str) and full:
                output_index = payload.get("output_index", 0)
                index = self._reasoning_block(payload, out)
                sofar = self._reasoning_parts[output_index].text
                if full.startswith(sofar):
                    self._reasoning_delta(payload, full[len(sofar):], out)
        elif kind == "response.output_item.done":
            self._item_done(payload.get("output_index", 0), as_dict(payload.get("item")), out)
        elif kind in ("response.completed", "response.incomplete"):
            self._finish(payload, out)
        elif kind == "response.output_text.annotation.added":
            self.ctx.warn("annotations (citations) dropped (no equivalent for the client)")
        # Everything else (hosted tool progress, summary part markers, keepalive) carries nothing to translate.
        return out

    def comment(self, text: str) -> list:
        return [KeepAlive()]

