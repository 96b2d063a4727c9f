"""The openai-chat spoke wrapped for a local server: `wrap` picks the (client, upstream) pair."""

from __future__ import annotations

from typing import Any

from .. import openai_chat
from ..canonical import ApiError, Context, Request, Response
from .overflow import context_overflow
from .request import adapt_request
from .stream import ScanningStreamParser
from .tool_calls import scan_parts


class LocalModelSpoke:
    """The openai-chat spoke for a local server with model conventions `cfg`; everything not
    overridden here is the openai-chat module's."""

    def __init__(self, base: Any, cfg: Any):
        self._base = base
        self.cfg = cfg
        self.extras: dict = {}  # set by PassThroughChatClient

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)

    def render_request(self, req: Request, ctx: Context) -> dict:
        out = self._base.render_request(req, ctx)
        if "top_k" in self.extras:
            _unwarn(ctx, "top_k dropped")
        return adapt_request(req, out, self.cfg, ctx, self.extras)

    def parse_response(self, body: dict, ctx: Context) -> Response:
        resp = self._base.parse_response(body, ctx, think_tags=self.cfg.think_tags)
        if self.cfg.tool_call_tags:
            resp.parts = scan_parts(resp.parts, ctx)
        return resp

    def parse_error(self, status: int | None, body: bytes) -> ApiError:
        return context_overflow(self._base.parse_error(status, body), body)

    def StreamParser(self, ctx: Context) -> ScanningStreamParser:  # noqa: N802 (the spoke interface's name)
        return ScanningStreamParser(ctx, self.cfg)


def _unwarn(ctx: Context, prefix: str) -> None:
    """Withdraw warnings about something that is passed on after all."""
    ctx.warnings[:] = [w for w in ctx.warnings if not w.startswith(prefix)]


class PassThroughChatClient:
    """An OpenAI-Chat app on a local OpenAI-Chat server: what the hub has no field for (the server's
    own extensions) is passed on unchanged instead of dropped, as if the app talked to it directly."""

    def __init__(self, base: Any, upstream: LocalModelSpoke):
        self._base = base
        self._upstream = upstream

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)

    def parse_request(self, body: dict, ctx: Context) -> Request:
        req = self._base.parse_request(body, ctx)
        extras = {k: v for k, v in body.items() if k not in openai_chat.KNOWN_REQUEST_KEYS and v is not None}
        if body.get("top_k") is not None:
            extras["top_k"] = body["top_k"]
        for key in extras:
            _unwarn(ctx, f"request field {key!r} dropped")
        self._upstream.extras = extras
        return req


def wrap(client: Any, upstream: Any, cfg: Any, ctx: Context) -> tuple[Any, Any]:
    """The (client, upstream) spokes to use for a provider with `local_model` settings `cfg`
    (None: unchanged)."""
    if cfg is None:
        return client, upstream
    if upstream.NAME != openai_chat.NAME:
        ctx.warn(f"local_model settings ignored: they apply to an openai-chat upstream, not {upstream.NAME}")
        return client, upstream
    up = LocalModelSpoke(upstream, cfg)
    if client.NAME == openai_chat.NAME:
        client = PassThroughChatClient(client, up)
    return client, up
