"""OpenAI's `GET /v1/models` and `GET /v1/models/{id}` answers (openai.types.Model: `{id, object:
"model", created, owned_by}`; the list is `{object: "list", data: [...]}`), for catalog.py. OpenAI's
model object has no context window: none is invented. OpenAI-compatible servers state theirs: vLLM and
SGLang as `max_model_len`, read as the upstream's context window."""

from __future__ import annotations

from ..catalog import ModelEntry


def render_info(entry: ModelEntry) -> dict:
    return {"id": entry.id, "object": "model", "created": 0, "owned_by": entry.provider}


def render_list(entries: list[ModelEntry]) -> dict:
    return {"object": "list", "data": [render_info(e) for e in entries]}


def info_path(model: str) -> str:
    return f"/v1/models/{model}"


def parse_limits(body: dict):
    window = body.get("max_model_len")
    return (window if isinstance(window, int) else None), None
