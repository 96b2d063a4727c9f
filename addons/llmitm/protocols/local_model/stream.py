"""The openai-chat stream parser with `<tool_call>` text in the answer turned into tool-call blocks."""

from __future__ import annotations

import time
from typing import Any

from .. import openai_chat
from ..canonical import TEXT, TOOL_CALL, BlockStart, BlockStop, Context, Delta, KeepAlive
from .tool_calls import ToolCallScanner

# While a call's text is held back, a keep-alive goes to the app at most this often.
KEEPALIVE_SECONDS = 10.0


class ScanningStreamParser:
    """The openai-chat stream parser with its answer text run through a ToolCallScanner; block
    indexes renumbered so the calls found in text take their place in the stream."""

    def __init__(self, ctx: Context, cfg: Any):
        self.ctx = ctx
        self._inner = openai_chat.StreamParser(ctx, think_tags=cfg.think_tags)
        self._scan = bool(cfg.tool_call_tags)
        self._next_block_index = 0
        self._our_index: dict[int, int] = {}  # inner block index → ours
        self._scanned_inner_block: int | None = None  # the inner text block being scanned
        self._open_text_block: int | None = None  # our open text block
        self._scanner: ToolCallScanner | None = None
        self._last_out = time.monotonic()

    def comment(self, text: str) -> list:
        return self._inner.comment(text)

    def feed(self, event: str | None, data: str) -> list:
        events = self._inner.feed(event, data)
        if not self._scan:
            return events
        out: list = []
        for ev in events:
            cls = ev.__class__
            if cls is BlockStart:
                if ev.kind == TEXT:
                    self._scanned_inner_block = ev.index
                    self._scanner = ToolCallScanner(self.ctx)
                else:
                    self._our_index[ev.index] = self._new_block_index()
                    out.append(BlockStart(self._our_index[ev.index], ev.kind, ev.id, ev.name, ev.data))
            elif cls is Delta:
                if ev.index == self._scanned_inner_block and self._scanner is not None:
                    self._items(self._scanner.feed(ev.text), out)
                elif ev.index in self._our_index:
                    out.append(Delta(self._our_index[ev.index], ev.text))
            elif cls is BlockStop:
                if ev.index == self._scanned_inner_block and self._scanner is not None:
                    self._items(self._scanner.flush(), out)
                    self._close_text(out)
                    self._scanned_inner_block = self._scanner = None
                elif ev.index in self._our_index:
                    out.append(BlockStop(self._our_index[ev.index]))
            elif hasattr(ev, "index"):  # SignatureDelta
                if ev.index in self._our_index:
                    ev.index = self._our_index[ev.index]
                    out.append(ev)
            else:
                out.append(ev)
        now = time.monotonic()
        if out:
            self._last_out = now
        elif self._scanner is not None and self._scanner.in_call and now - self._last_out >= KEEPALIVE_SECONDS:
            # A long call is held back whole: keep the app's connection visibly alive meanwhile.
            self._last_out = now
            out.append(KeepAlive())
        return out

    def _new_block_index(self) -> int:
        index = self._next_block_index
        self._next_block_index += 1
        return index

    def _close_text(self, out: list) -> None:
        if self._open_text_block is not None:
            out.append(BlockStop(self._open_text_block))
            self._open_text_block = None

    def _items(self, items: list, out: list) -> None:
        for kind, value in items:
            if kind == "text":
                if self._open_text_block is None:
                    self._open_text_block = self._new_block_index()
                    out.append(BlockStart(self._open_text_block, TEXT))
                out.append(Delta(self._open_text_block, value))
            else:
                self._close_text(out)
                index = self._new_block_index()
                out.append(BlockStart(index, TOOL_CALL, id=value.id, name=value.name))
                out.append(Delta(index, value.arguments))
                out.append(BlockStop(index))
