"""Model lists and model info in each protocol's shape, for the models an app may use through its
routes (llmitm answers these itself on a translated route: surface.py).

`ModelEntry` is the canonical entry; each protocol's package renders it in `models.py`
(`CatalogCodec`), in the shape its SDK parses: openai `Model` (`GET /v1/models[/{id}]`), anthropic
`ModelInfo` (the same paths), google-genai `Model` (`GET /v1beta/models[/{name}]`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ModelEntry:
    id: str  # the name the app asks for
    serves_as: str | None  # the upstream model a request for it reaches (None: the name itself)
    provider: str  # the provider's name in the config (OpenAI's `owned_by`)
    input_limit: int | None = None  # context window, when known
    output_limit: int | None = None

    @property
    def display_name(self) -> str:
        target = self.serves_as or self.id
        return self.id if target == self.id else f"{self.id} (served by {target} via llmitm)"


class CatalogCodec(Protocol):
    def render_list(self, entries: list[ModelEntry]) -> dict: ...

    def render_info(self, entry: ModelEntry) -> dict: ...
