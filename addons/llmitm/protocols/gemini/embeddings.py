"""Gemini's embeddings methods (PROTOCOLS.md §1.4), as the canonical embeddings request and answer
(protocols/embeddings.py).

- `models/{model}:embedContent`: `{content: {parts: [{text}]}, taskType?, title?, outputDimensionality?}`
  → `{embedding: {values: [...]}}`.
- `models/{model}:batchEmbedContents` (what google-genai's `models.embed_content` calls on the Gemini
  API): `{requests: [{model: "models/{model}", content, taskType?, title?, outputDimensionality?}]}`
  → `{embeddings: [{values: [...]}]}`.

Both are read in lowerCamel and snake_case, like the generation spoke. Neither answer counts tokens.
"""

from __future__ import annotations

import re

from ..canonical import Context, TranslationError
from ..embeddings import EmbeddingRequest, EmbeddingResponse

_PATH = re.compile(r"/models/(?P<model>[^/:]+):(?P<method>embedContent|batchEmbedContents)(?:\?|$)")


def _get(obj: dict, camel: str, snake: str):
    return obj.get(camel, obj.get(snake))


def _text(content: object, param: str) -> str:
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list) or not parts:
        raise TranslationError("content.parts must be a non-empty list", param=param)
    texts = []
    for part in parts:
        if not isinstance(part, dict) or not isinstance(part.get("text"), str):
            raise TranslationError("llmitm can only translate text parts to another provider's embeddings API",
                                   param=param)
        texts.append(part["text"])
    return "\n".join(texts)  # the parts of one content are one input (one vector)


def parse_request(body: dict, path: str, ctx: Context) -> EmbeddingRequest:
    m = _PATH.search(path)
    if not m:
        raise TranslationError(f"not a Gemini embeddings path: {path}")
    batch = m.group("method") == "batchEmbedContents"
    items = body.get("requests") if batch else [body]
    if not isinstance(items, list) or not items:
        raise TranslationError("requests must be a non-empty list", param="requests")
    first = items[0] if isinstance(items[0], dict) else {}
    settings = {(_get(i, "taskType", "task_type"), _get(i, "title", "title"),
                 _get(i, "outputDimensionality", "output_dimensionality")) for i in items if isinstance(i, dict)}
    if len(settings) > 1:
        raise TranslationError("llmitm sends one batch upstream: every request must have the same taskType, "
                               "title and outputDimensionality", param="requests")
    inputs = [_text(item.get("content") if isinstance(item, dict) else None, f"requests.{i}.content" if batch else "content")
              for i, item in enumerate(items)]
    dimensions = _get(first, "outputDimensionality", "output_dimensionality")
    return EmbeddingRequest(m.group("model"), inputs, batch=batch, dimensions=dimensions,
                            task_type=_get(first, "taskType", "task_type"), title=first.get("title"))


def render_request(req: EmbeddingRequest, ctx: Context) -> tuple[str, dict]:
    model = req.model.removeprefix("models/")
    one: dict = {"model": f"models/{model}"}
    if req.task_type:
        one["taskType"] = req.task_type
    if req.title:
        one["title"] = req.title
    if req.dimensions is not None:
        one["outputDimensionality"] = req.dimensions
    requests = [{**one, "content": {"parts": [{"text": text}]}} for text in req.inputs]
    return f"/v1beta/models/{model}:batchEmbedContents", {"requests": requests}


def parse_response(body: dict, req: EmbeddingRequest) -> EmbeddingResponse:
    rows = body["embeddings"] if "embeddings" in body else [body["embedding"]]
    return EmbeddingResponse([[float(x) for x in row["values"]] for row in rows], req.model)


def render_response(resp: EmbeddingResponse, req: EmbeddingRequest) -> dict:
    if req.batch:
        return {"embeddings": [{"values": v} for v in resp.vectors]}
    return {"embedding": {"values": resp.vectors[0]}}
