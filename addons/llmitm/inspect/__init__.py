"""mitmweb and the console as an AI-traffic debugger: a transcript contentview for the four
protocols, "what changed since the previous request" (prompt-cache breaks), `llmitm.stats` and
`llmitm.keys`. Reads the canonical model only through `adapter`."""

from .addon import ConversationTracker, Inspect

__all__ = ["ConversationTracker", "Inspect"]
