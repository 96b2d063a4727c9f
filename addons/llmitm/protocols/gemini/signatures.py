"""Tool-call ids and thought signatures carried through foreign clients (see the package docstring)."""

from __future__ import annotations

import base64
import binascii
import json

THOUGHT_SEPARATOR = "__thought__"
SYNTH_ID_PREFIX = "gcall_"
# Gemini 3 rejects history function calls without a signature; the documented placeholder for
# conversations that did not come from Gemini (ai.google.dev/gemini-api/docs/thought-signatures).
DUMMY_SIGNATURE = "skip_thought_signature_validator"
FOREIGN_SIGNATURE_PREFIX = b"llmitm:"


def split_tool_id(tool_id: str) -> tuple[str | None, str | None]:
    """A client's tool-call id → (Gemini functionCall id or None if synthesized, thought signature)."""
    base, sep, signature = tool_id.partition(THOUGHT_SEPARATOR)
    gemini_id = None if base.startswith(SYNTH_ID_PREFIX) or not base else base
    return gemini_id, (signature or None) if sep else None


def make_tool_id(gemini_id: str | None, response_id: str, n: int, signature: str | None) -> str:
    base = gemini_id or f"{SYNTH_ID_PREFIX}{response_id or 'r'}_{n}"
    return base + THOUGHT_SEPARATOR + signature if signature else base


def encode_foreign_signature(payload: dict) -> str:
    return base64.b64encode(FOREIGN_SIGNATURE_PREFIX + json.dumps(payload, separators=(",", ":")).encode()).decode()


def decode_foreign_signature(signature) -> dict | None:
    if not isinstance(signature, str) or not signature:
        return None
    try:
        raw = base64.b64decode(signature + "=" * (-len(signature) % 4), altchars=b"-_"
                               if ("-" in signature or "_" in signature) else None)
    except (binascii.Error, ValueError):
        return None
    if not raw.startswith(FOREIGN_SIGNATURE_PREFIX):
        return None
    try:
        value = json.loads(raw[len(FOREIGN_SIGNATURE_PREFIX):])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
