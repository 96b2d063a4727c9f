"""OpenAI's `POST /v1/embeddings` (PROTOCOLS.md §1.1; shared by every OpenAI-compatible server and by
both OpenAI protocols), as the canonical embeddings request and answer (protocols/embeddings.py).

Request: `{model, input: str | [str] | [int] | [[int]], dimensions?, encoding_format?: "float" |
"base64", user?}`. The openai Python SDK asks for base64 unless told otherwise and decodes it, so the
answer keeps the encoding the app asked for. Answer: `{object: "list", data: [{object: "embedding",
index, embedding}], model, usage: {prompt_tokens, total_tokens}}` (openai.types.CreateEmbeddingResponse).
"""

from __future__ import annotations

from ..canonical import Context, TranslationError
from ..embeddings import EmbeddingRequest, EmbeddingResponse, as_texts, float32_base64

PATH = "/v1/embeddings"


def parse_request(body: dict, path: str, ctx: Context) -> EmbeddingRequest:
    model = body.get("model")
    if not isinstance(model, str):
        raise TranslationError("'model' is required", param="model")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise TranslationError(f"encoding_format {encoding!r} is not 'float' or 'base64'", param="encoding_format")
    dimensions = body.get("dimensions")
    if dimensions is not None and (not isinstance(dimensions, int) or dimensions < 1):
        raise TranslationError("dimensions must be a positive integer", param="dimensions")
    if "user" in body:
        ctx.warn("embeddings: 'user' dropped (the upstream has no such field)")
    raw = body.get("input")
    return EmbeddingRequest(model, as_texts(raw, "input"), batch=isinstance(raw, list), dimensions=dimensions,
                            encoding=encoding)


def render_request(req: EmbeddingRequest, ctx: Context) -> tuple[str, dict]:
    if req.task_type:
        ctx.warn(f"embeddings: taskType {req.task_type} dropped (OpenAI's embeddings API has no task type)")
    if req.title:
        ctx.warn("embeddings: title dropped (OpenAI's embeddings API has no title)")
    body: dict = {"model": req.model, "input": req.inputs, "encoding_format": "float"}
    if req.dimensions is not None:
        body["dimensions"] = req.dimensions
    return PATH, body


def parse_response(body: dict, req: EmbeddingRequest) -> EmbeddingResponse:
    rows = sorted(body["data"], key=lambda row: row.get("index", 0))
    vectors = []
    for row in rows:
        vector = row["embedding"]
        if not isinstance(vector, list):  # base64: llmitm asked for floats, so the upstream ignored it
            raise ValueError("embedding is not a list of floats")
        vectors.append([float(x) for x in vector])
    usage = body.get("usage") or {}
    tokens = usage.get("prompt_tokens")
    return EmbeddingResponse(vectors, body.get("model") or req.model, tokens if isinstance(tokens, int) else None)


def render_response(resp: EmbeddingResponse, req: EmbeddingRequest) -> dict:
    encode = float32_base64 if req.encoding == "base64" else (lambda v: v)
    data = [{"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(resp.vectors)]
    tokens = resp.input_tokens or 0
    return {"object": "list", "data": data, "model": resp.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
