"""Model lists and model info in each protocol's shape, for the models an app may use through its
routes (llmitm answers these itself on a translated route: surface.py).

`ModelEntry` is the canonical entry; each protocol's package renders it in `models.py`
(`CatalogCodec`), in the shape its SDK parses: openai `Model` (`GET /v1/models[/{id}]`), anthropic
`ModelInfo` (the same paths), google-genai `Model` (`GET /v1beta/models[/{name}]`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

from .sidecall import SideTranslation


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


Limits = tuple[int | None, int | None]  # (input, output) tokens; None: not known


class CatalogCodec(Protocol):
    def render_list(self, entries: list[ModelEntry]) -> dict: ...

    def render_info(self, entry: ModelEntry) -> dict: ...

    def info_path(self, model: str) -> str:
        """The upstream's own model-info path for `model`, relative to the provider's base_url."""
        ...

    def parse_limits(self, body: dict) -> Limits:
        """The context window and output limit the upstream states in its model-info answer."""
        ...


class ModelInfoTranslation(SideTranslation):
    """Model info asked of the upstream (its own metadata: context window, output limit), answered as
    `entry` — the name the app asked for — in the app's protocol. `learned(limits)` is told what the
    upstream said, for the planner's short-lived cache."""

    def __init__(self, client: str, upstream: str, client_codec: CatalogCodec, upstream_codec: CatalogCodec,
                 entry: ModelEntry, learned=None):
        super().__init__(client, upstream)
        self.client_codec, self.upstream_codec, self.entry = client_codec, upstream_codec, entry
        self.learned = learned

    def answer(self, payload: dict) -> dict:
        input_limit, output_limit = self.upstream_codec.parse_limits(payload)
        if self.learned is not None:
            self.learned((input_limit, output_limit))
        entry = replace(self.entry, input_limit=input_limit or self.entry.input_limit,
                        output_limit=output_limit or self.entry.output_limit)
        return self.client_codec.render_info(entry)
