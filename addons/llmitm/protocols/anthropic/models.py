"""Anthropic's `GET /v1/models` and `GET /v1/models/{id}` answers (anthropic.types.ModelInfo: `{type:
"model", id, display_name, created_at, lifecycle, max_input_tokens?, max_tokens?}`; the list is a page
`{data, first_id, last_id, has_more}`), for catalog.py. `created_at` is the epoch, as the API documents
for an unknown release date; `lifecycle` (required from anthropic 2.x on) is "active": the route serves it."""

from __future__ import annotations

from ..catalog import ModelEntry

EPOCH = "1970-01-01T00:00:00Z"


def render_info(entry: ModelEntry) -> dict:
    info: dict = {"type": "model", "id": entry.id, "display_name": entry.display_name, "created_at": EPOCH,
                  "lifecycle": "active"}
    if entry.input_limit is not None:
        info["max_input_tokens"] = entry.input_limit
    if entry.output_limit is not None:
        info["max_tokens"] = entry.output_limit
    return info


def render_list(entries: list[ModelEntry]) -> dict:
    data = [render_info(e) for e in entries]
    return {"data": data, "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None,
            "has_more": False}


def info_path(model: str) -> str:
    return f"/v1/models/{model}"


def parse_limits(body: dict):
    def count(name: str) -> int | None:
        return body[name] if isinstance(body.get(name), int) else None

    return count("max_input_tokens"), count("max_tokens")
