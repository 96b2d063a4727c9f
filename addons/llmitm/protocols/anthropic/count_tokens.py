"""Anthropic's `POST /v1/messages/count_tokens` (PROTOCOLS.md §1.3) for token_count.py.

The body is a Messages request without the generation settings: `{model, messages, system?, tools?,
tool_choice?, thinking?}`; the API rejects other fields (`max_tokens`, `stream`, …). Answer:
`{"input_tokens": N}` (anthropic.types.MessageTokensCount).
"""

from __future__ import annotations

from .. import anthropic
from ..canonical import Context, Request

PATH = "/v1/messages/count_tokens"
COUNTED_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking")


def parse_request(body: dict, path: str, ctx: Context) -> Request:
    return anthropic.parse_request(body, ctx)


def render_request(req: Request, ctx: Context) -> tuple[str, dict]:
    req.stream = False
    body = anthropic.render_request(req, ctx)
    return PATH, {k: body[k] for k in COUNTED_FIELDS if k in body}


def parse_response(body: dict) -> int:
    return int(body["input_tokens"])


def render_response(tokens: int) -> dict:
    return {"input_tokens": tokens}
