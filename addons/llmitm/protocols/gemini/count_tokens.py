"""Gemini's `models/{model}:countTokens` (PROTOCOLS.md §1.4) for token_count.py.

The body is `{contents}` (what google-genai sends on the Gemini API) or `{generateContentRequest:
{model, contents, systemInstruction?, tools?, toolConfig?, generationConfig?}}` (which counts the system
instruction and tools too); the API refuses both at once. Answer: `{totalTokens,
cachedContentTokenCount?, promptTokensDetails?}` (google.genai.types.CountTokensResponse).
"""

from __future__ import annotations

import re

from .. import gemini
from ..canonical import Context, Request, TranslationError

COUNTED_FIELDS = ("contents", "systemInstruction", "tools", "toolConfig")
_METHOD = re.compile(r":countTokens(?=\?|$)")


def parse_request(body: dict, path: str, ctx: Context) -> Request:
    inner = body.get("generateContentRequest", body.get("generate_content_request"))
    if inner is not None and "contents" in body:
        raise TranslationError("give either contents or generateContentRequest, not both", param="contents")
    # The generation spoke reads the model from a :generateContent path.
    ctx.client_path = _METHOD.sub(":generateContent", path)
    return gemini.parse_request(inner if isinstance(inner, dict) else body, ctx)


def render_request(req: Request, ctx: Context) -> tuple[str, dict]:
    req.stream = False
    body = gemini.render_request(req, ctx)
    model = req.model.removeprefix("models/")
    inner = {"model": f"models/{model}", **{k: body[k] for k in COUNTED_FIELDS if k in body}}
    return f"/v1beta/models/{model}:countTokens", {"generateContentRequest": inner}


def parse_response(body: dict) -> int:
    return int(body.get("totalTokens", body.get("total_tokens", 0)))


def render_response(tokens: int) -> dict:
    return {"totalTokens": tokens}
