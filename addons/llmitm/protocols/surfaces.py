"""Which of the endpoints beside generation each protocol has (model lists and info, token counting,
embeddings): each protocol's registry record states it (`SpokeRecord.surface`, in its package's
`__init__.py`); this is the planner's view of them, keyed by protocol name."""

from __future__ import annotations

from .registry import REGISTRY
from .spoke import Surface

SURFACES: dict[str, Surface] = {spoke.name: spoke.surface for spoke in REGISTRY}
