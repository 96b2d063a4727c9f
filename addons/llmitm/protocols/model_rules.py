"""Which target models refuse which sampling parameters, as data: one row per model-family glob.

An app written for one provider sends what its own models accept; the model llmitm routes it to may
refuse the same request with a 400. Gemini CLI sends `temperature: 1` with `topP: 0.95`, which Claude
Sonnet/Haiku 4.5+ and Opus 4.1+ refuse ("temperature and top_p cannot both be specified"; PROTOCOLS.md
§6, BerriAI/litellm#15097). Each spoke's `render_request` calls `apply(protocol, body, ctx)` on the body
it rendered: a conflicting parameter is dropped or clamped with a warning naming the field and the
rule, never left for the provider to refuse.

Not rows here because the renderers always handle them: OpenAI reasoning models refuse `max_tokens`
(PROTOCOLS.md §1.1), and the openai-chat spoke always sends `max_completion_tokens` (a local model's
server gets `max_tokens` back, `local_model/request.py`); Anthropic's 0-1 temperature range is clamped
by the anthropic spoke for every model.

Globs (`fnmatch`, case-insensitive) match the model name after any `vendor/` prefix (OpenRouter);
Claude globs start with `*` for Bedrock's `anthropic.` and `us.anthropic.` prefixes. Claude minor
versions are spelled out (`4-1`, `4-[5-9]`): a glob such as `claude-opus-4-[1-9]*` would also match
the dated `claude-opus-4-20250514`, which accepts both parameters.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fnmatch import fnmatchcase

from .canonical import Context


def _thinking_on(body: dict) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


@dataclass(frozen=True, slots=True)
class NotTogether:
    """The model refuses `keep` and `drop` in one request: `drop` goes (the app's temperature is the
    more deliberate choice; Gemini CLI's top_p 0.95 is a default)."""

    keep: str
    drop: str
    rule: str

    def apply(self, body: dict, ctx: Context) -> None:
        if body.get(self.keep) is not None and body.get(self.drop) is not None:
            ctx.warn(f"{self.drop} dropped ({self.rule})")
            del body[self.drop]


@dataclass(frozen=True, slots=True)
class DefaultOnly:
    """The model takes only the default value of `field` (or none): any other value is dropped."""

    field: str
    default: float
    rule: str
    only_with_thinking: bool = False

    def apply(self, body: dict, ctx: Context) -> None:
        if self.field not in body or (self.only_with_thinking and not _thinking_on(body)):
            return
        value = body.pop(self.field)
        if value is not None and value != self.default:
            ctx.warn(f"{self.field} {value} dropped ({self.rule})")


@dataclass(frozen=True, slots=True)
class AtLeast:
    """The model refuses `field` below `minimum`: raised to it."""

    field: str
    minimum: float
    rule: str
    only_with_thinking: bool = False

    def apply(self, body: dict, ctx: Context) -> None:
        value = body.get(self.field)
        if not isinstance(value, (int, float)) or (self.only_with_thinking and not _thinking_on(body)):
            return
        if value < self.minimum:
            ctx.warn(f"{self.field} {value} raised to {self.minimum} ({self.rule})")
            body[self.field] = self.minimum


@dataclass(frozen=True, slots=True)
class Absent:
    """The model refuses `field` altogether (in the conditions the rule names)."""

    field: str
    rule: str
    only_with_thinking: bool = False

    def apply(self, body: dict, ctx: Context) -> None:
        if body.get(self.field) is None or (self.only_with_thinking and not _thinking_on(body)):
            return
        ctx.warn(f"{self.field} dropped ({self.rule})")
        del body[self.field]


Rule = NotTogether | DefaultOnly | AtLeast | Absent

_THINKING = "Anthropic with thinking on"
THINKING_TEMPERATURE = DefaultOnly("temperature", 1, f"{_THINKING}: temperature must stay default",
                                   only_with_thinking=True)
THINKING_TOP_K = Absent("top_k", f"{_THINKING}: no top_k", only_with_thinking=True)
THINKING_TOP_P = AtLeast("top_p", 0.95, f"{_THINKING}: top_p only 0.95-1", only_with_thinking=True)
CLAUDE_TEMPERATURE_OR_TOP_P = NotTogether(
    "temperature", "top_p", "Claude Sonnet/Haiku 4.5+ and Opus 4.1+: temperature and top_p cannot both be specified")
REASONING_TEMPERATURE = DefaultOnly("temperature", 1, "OpenAI reasoning models take only the default temperature")
REASONING_TOP_P = DefaultOnly("top_p", 1, "OpenAI reasoning models take only the default top_p")

# (upstream protocol, model glob, rule), applied in order: the thinking rules first, so that a
# temperature they remove no longer conflicts with top_p.
RULES: tuple[tuple[str, str, Rule], ...] = (
    ("anthropic", "*", THINKING_TEMPERATURE),  # PROTOCOLS.md §1.3: any model behind the Messages API
    ("anthropic", "*", THINKING_TOP_K),
    ("anthropic", "*", THINKING_TOP_P),
    ("anthropic", "*claude-sonnet-4-[5-9]*", CLAUDE_TEMPERATURE_OR_TOP_P),
    ("anthropic", "*claude-sonnet-4.[5-9]*", CLAUDE_TEMPERATURE_OR_TOP_P),
    ("anthropic", "*claude-haiku-4-[5-9]*", CLAUDE_TEMPERATURE_OR_TOP_P),
    ("anthropic", "*claude-haiku-4.[5-9]*", CLAUDE_TEMPERATURE_OR_TOP_P),
    ("anthropic", "*claude-opus-4-1*", CLAUDE_TEMPERATURE_OR_TOP_P),
    ("anthropic", "*claude-opus-4.1*", CLAUDE_TEMPERATURE_OR_TOP_P),
    ("anthropic", "*claude-opus-4-[5-9]*", CLAUDE_TEMPERATURE_OR_TOP_P),
    ("anthropic", "*claude-opus-4.[5-9]*", CLAUDE_TEMPERATURE_OR_TOP_P),
    ("anthropic", "*claude-sonnet-[5-9]*", CLAUDE_TEMPERATURE_OR_TOP_P),
    ("anthropic", "*claude-haiku-[5-9]*", CLAUDE_TEMPERATURE_OR_TOP_P),
    ("anthropic", "*claude-opus-[5-9]*", CLAUDE_TEMPERATURE_OR_TOP_P),
    ("openai-chat", "o1*", REASONING_TEMPERATURE),
    ("openai-chat", "o1*", REASONING_TOP_P),
    ("openai-chat", "o3*", REASONING_TEMPERATURE),
    ("openai-chat", "o3*", REASONING_TOP_P),
    ("openai-chat", "o4*", REASONING_TEMPERATURE),
    ("openai-chat", "o4*", REASONING_TOP_P),
    # gpt-5, gpt-5-mini, gpt-5.1-codex, …; not gpt-5-chat-latest, a non-reasoning model.
    ("openai-chat", "gpt-5", REASONING_TEMPERATURE),
    ("openai-chat", "gpt-5", REASONING_TOP_P),
    ("openai-chat", "gpt-5-[!c]*", REASONING_TEMPERATURE),
    ("openai-chat", "gpt-5-[!c]*", REASONING_TOP_P),
    ("openai-chat", "gpt-5-codex*", REASONING_TEMPERATURE),
    ("openai-chat", "gpt-5-codex*", REASONING_TOP_P),
    ("openai-chat", "gpt-5.*", REASONING_TEMPERATURE),
    ("openai-chat", "gpt-5.*", REASONING_TOP_P),
)


@functools.lru_cache(maxsize=1024)
def rules_for(protocol: str, model: str) -> tuple[Rule, ...]:
    """The rules a request to `model` over `protocol` must satisfy, in the order they apply (each once).

    Cached: every translated request asks, the answer depends only on the two names, and matching
    ~30 globs costs more than the rest of rendering a small request."""
    name = model.lower().rsplit("/", 1)[-1]
    found: list[Rule] = []
    for row_protocol, glob, rule in RULES:
        if row_protocol == protocol and rule not in found and fnmatchcase(name, glob):
            found.append(rule)
    return tuple(found)


def apply(protocol: str, body: dict, ctx: Context) -> dict:
    """`body`, a request rendered for `protocol`, with what its model would refuse dropped or clamped
    (a warning each); changed in place and returned."""
    for rule in rules_for(protocol, str(body.get("model") or "")):
        rule.apply(body, ctx)
    return body
