"""OpenAI Responses' `POST /v1/responses/input_tokens` (PROTOCOLS.md §1.2) for token_count.py.

The body is a Responses request without the generation settings: `{model, input, instructions?,
tools?, tool_choice?, reasoning?, text?, parallel_tool_calls?}`. Answer: `{"object":
"response.input_tokens", "input_tokens": N}` (openai.types.responses.InputTokenCountResponse).
"""

from __future__ import annotations

from .. import openai_responses
from ..canonical import Context, Request

PATH = "/v1/responses/input_tokens"
COUNTED_FIELDS = ("model", "input", "instructions", "tools", "tool_choice", "reasoning", "text", "parallel_tool_calls")


def parse_request(body: dict, path: str, ctx: Context) -> Request:
    # A counting request stores nothing: say so, so the spoke does not warn that it is not stored.
    return openai_responses.parse_request({"store": False, **body}, ctx)


def render_request(req: Request, ctx: Context) -> tuple[str, dict]:
    req.stream = False
    body = openai_responses.render_request(req, ctx)
    return PATH, {k: body[k] for k in COUNTED_FIELDS if k in body}


def parse_response(body: dict) -> int:
    return int(body["input_tokens"])


def render_response(tokens: int) -> dict:
    return {"object": "response.input_tokens", "input_tokens": tokens}
