"""Gemini's `models.list` (`GET /v1beta/models` → `{models: [...], nextPageToken?}`) and `models.get`
(`GET /v1beta/models/{name}`) answers (google.genai.types.Model: `name` "models/…", `displayName`,
`inputTokenLimit`, `outputTokenLimit`, `supportedGenerationMethods`), for catalog.py."""

from __future__ import annotations

from ..catalog import ModelEntry

# What llmitm serves for a Gemini app on any route (embeddings only where the upstream has them).
METHODS = ["generateContent", "streamGenerateContent", "countTokens"]


def render_info(entry: ModelEntry) -> dict:
    name = entry.id.removeprefix("models/")
    info: dict = {"name": f"models/{name}", "baseModelId": name, "version": "llmitm",
                  "displayName": entry.display_name, "supportedGenerationMethods": METHODS}
    if entry.input_limit is not None:
        info["inputTokenLimit"] = entry.input_limit
    if entry.output_limit is not None:
        info["outputTokenLimit"] = entry.output_limit
    return info


def render_list(entries: list[ModelEntry]) -> dict:
    return {"models": [render_info(e) for e in entries]}


def info_path(model: str) -> str:
    return f"/v1beta/models/{model.removeprefix('models/')}"


def parse_limits(body: dict):
    def count(camel: str, snake: str) -> int | None:
        value = body.get(camel, body.get(snake))
        return value if isinstance(value, int) else None

    return count("inputTokenLimit", "input_token_limit"), count("outputTokenLimit", "output_token_limit")
