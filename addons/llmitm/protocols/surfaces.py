"""Which of the endpoints beside generation each protocol has, and the module that states its shapes:
model lists and info (catalog.py), token counting (token_count.py), embeddings (embeddings.py).

Keyed by protocol name like `registry.REGISTRY`; None where a protocol has no such endpoint (OpenAI
Chat Completions counts no tokens; Anthropic has no embeddings API). The planner (plan.py, surface.py)
asks here and names no protocol itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from .anthropic import count_tokens as anthropic_count
from .anthropic import models as anthropic_models
from .catalog import CatalogCodec
from .embeddings import EmbeddingCodec
from .gemini import count_tokens as gemini_count
from .gemini import embeddings as gemini_embeddings
from .gemini import models as gemini_models
from .openai_chat import embeddings as openai_embeddings
from .openai_chat import models as openai_models
from .openai_responses import count_tokens as responses_count
from .registry import REGISTRY
from .token_count import CountCodec


@dataclass(frozen=True)
class Surface:
    models: CatalogCodec
    count_tokens: CountCodec | None
    embeddings: EmbeddingCodec | None


SURFACES: dict[str, Surface] = {
    "openai-chat": Surface(openai_models, None, openai_embeddings),
    "openai-responses": Surface(openai_models, responses_count, openai_embeddings),
    "anthropic": Surface(anthropic_models, anthropic_count, None),
    "gemini": Surface(gemini_models, gemini_count, gemini_embeddings),
}
assert set(SURFACES) == set(REGISTRY.names), "every registered protocol states its surface"
