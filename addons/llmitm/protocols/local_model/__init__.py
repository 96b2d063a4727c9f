"""Local OpenAI-compatible servers running open models (vLLM, SGLang, llama.cpp, Ollama,
`transformers serve`; SmolLM3 and other Hermes/Qwen3-style templates): PROTOCOLS.md §5.

The upstream speaks OpenAI Chat, but the model's conventions leak through it: reasoning is switched
by `chat_template_kwargs.enable_thinking` and/or a `/think` `/no_think` flag in the system prompt,
reasoning may come back as `<think>…</think>` text and tool calls as `<tool_call>{…}</tool_call>` text
when the server runs without parsers. `LocalModelSpoke` wraps the openai-chat spoke so the hub sees
native reasoning and tool calls whatever the client protocol:

- request: reasoning on/off from the canonical `ReasoningConfig` (never `reasoning_effort`, which many
  local servers reject), content arrays of text flattened to strings, and with `tool_call_tags`
  earlier tool calls written into the assistant text the way the model writes them;
- response (stream and not): `<think>` split by the openai-chat spoke (`think_tags.py`), then
  `<tool_call>` blocks in the answer text (never in reasoning) turned into tool-call parts.

The config object only needs the attributes of `llmitm.config.LocalModelConfig`: think_tags,
tool_call_tags, reasoning_switch ("none" | "chat_template_kwargs" | "smollm3"), thinking_default.

Modules: `request` (switch and request adaptation), `tool_calls` (markup → calls), `stream` (the
scanning stream parser), `overflow` (context-overflow errors), `spoke` (the wrappers and `wrap`).
"""

from __future__ import annotations

from .overflow import context_overflow
from .request import adapt_request, neutralise_flags, thinking_wanted, tool_call_markup
from .spoke import LocalModelSpoke, PassThroughChatClient, wrap
from .stream import KEEPALIVE_SECONDS, ScanningStreamParser
from .tool_calls import CLOSE, MAX_CALL_CHARS, OPEN, ToolCallScanner, parse_calls, scan_parts

__all__ = [
    "CLOSE", "KEEPALIVE_SECONDS", "MAX_CALL_CHARS", "OPEN", "LocalModelSpoke", "PassThroughChatClient",
    "ScanningStreamParser", "ToolCallScanner", "adapt_request", "context_overflow", "neutralise_flags",
    "parse_calls", "scan_parts", "thinking_wanted", "tool_call_markup", "wrap",
]
