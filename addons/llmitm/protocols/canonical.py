"""The canonical model every wire protocol is translated into and out of (the hub).

Plain slotted dataclasses, no validation: spokes parse untrusted JSON defensively themselves, and
stream events are created tens of thousands of times per second.

Conventions that hold for every spoke:
- A conversation is a list of `Message`s with role "system", "user" or "assistant". Tool results
  are `ToolResult` parts inside a user message (Anthropic's shape); spokes whose wire format has a
  separate tool role convert on the way in and out.
- Tool-call arguments are kept as the JSON *text* the model produced, because streamed arguments
  arrive as text fragments and a truncated call is not valid JSON.
- `Usage.input_total` counts every prompt token including cache reads and writes;
  `output_total` includes reasoning tokens (PROTOCOLS.md §2.8).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# ---------------------------------------------------------------------------------------------
# Content parts


@dataclass(slots=True)
class Text:
    text: str


@dataclass(slots=True)
class Image:
    """An image given inline (`data` base64 + `media_type`) or by `url`."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    detail: str | None = None


@dataclass(slots=True)
class Document:
    """A file such as a PDF: inline base64 `data`, plain `text`, or a `url`."""

    media_type: str | None = None
    data: str | None = None
    text: str | None = None
    url: str | None = None
    title: str | None = None


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, exactly as produced


@dataclass(slots=True)
class ToolResult:
    tool_call_id: str
    content: list[Part] = field(default_factory=list)  # Text / Image parts
    is_error: bool = False


@dataclass(slots=True)
class Reasoning:
    """Model reasoning. `signature` is provider-bound and opaque (only Anthropic's is kept for
    Anthropic); `redacted` holds Anthropic's encrypted redacted_thinking data."""

    text: str = ""
    signature: str | None = None
    redacted: str | None = None


@dataclass(slots=True)
class Refusal:
    text: str


Part = Text | Image | Document | ToolCall | ToolResult | Reasoning | Refusal


@dataclass(slots=True)
class Message:
    role: str  # "system" | "user" | "assistant"
    parts: list[Part] = field(default_factory=list)
    name: str | None = None


# ---------------------------------------------------------------------------------------------
# Request


@dataclass(slots=True)
class Tool:
    name: str
    description: str | None = None
    parameters: dict | None = None  # JSON Schema of the arguments object
    strict: bool | None = None
    # A tool the provider runs itself (HOSTED_WEB_SEARCH), not a function the app runs; `name` is then
    # where the client declared it (e.g. "tools[2]"), for the warning or 400 when it cannot go upstream.
    hosted: str | None = None


# Hosted tool kinds: what each upstream calls them lives with its spoke, which upstreams can run them
# in each protocol's `wire.HOSTED_TOOLS`.
HOSTED_WEB_SEARCH = "web_search"  # Responses web_search, Anthropic web_search_20250305, Gemini googleSearch


@dataclass(slots=True)
class ToolChoice:
    mode: str  # "auto" | "required" | "none" | "tool"
    name: str | None = None  # for mode "tool"


@dataclass(slots=True)
class ReasoningConfig:
    """What the client asked for: an effort level (OpenAI style) and/or a token budget
    (Anthropic style). Spokes derive the missing one with the tables in `reasoning_budget`."""

    enabled: bool
    effort: str | None = None
    budget_tokens: int | None = None


@dataclass(slots=True)
class ResponseFormat:
    kind: str  # "text" | "json_object" | "json_schema"
    schema: dict | None = None
    name: str | None = None
    strict: bool | None = None
    description: str | None = None


@dataclass(slots=True)
class Request:
    model: str
    messages: list[Message] = field(default_factory=list)
    system: list[Text] = field(default_factory=list)
    max_tokens: int | None = None
    stream: bool = False
    include_usage: bool = False  # a streaming client asked for token usage
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    reasoning: ReasoningConfig | None = None
    response_format: ResponseFormat | None = None
    user: str | None = None
    # Features only some protocols have: the target spoke either renders them or refuses.
    n: int | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    logit_bias: dict | None = None


# ---------------------------------------------------------------------------------------------
# Response, usage, errors

# Stop reasons (PROTOCOLS.md §2.5), named after what happened rather than after one protocol.
END = "end"  # natural end of turn
MAX_TOKENS = "max_tokens"  # output limit reached (also: a tool call cut off by it)
STOP_SEQUENCE = "stop_sequence"
TOOL_USE = "tool_use"
CONTENT_FILTER = "content_filter"  # provider refusal / safety stop
PAUSE = "pause"  # Anthropic pause_turn (server-tool loop paused)
CONTEXT_WINDOW = "context_window"  # model context exhausted


@dataclass(slots=True)
class Usage:
    input_total: int = 0
    cached_read: int = 0
    cache_write: int = 0
    output_total: int = 0
    reasoning: int | None = None  # None: upstream did not say


@dataclass(slots=True)
class Response:
    id: str
    model: str
    parts: list[Part] = field(default_factory=list)
    stop_reason: str | None = END
    stop_sequence: str | None = None
    usage: Usage | None = None
    created: int | None = None


@dataclass(slots=True)
class ApiError:
    """An error reported by a provider, in any protocol. `status` is the HTTP status (inferred
    from the error type for errors that arrive inside a stream)."""

    status: int
    message: str
    type: str | None = None
    param: str | None = None
    code: str | None = None


# ---------------------------------------------------------------------------------------------
# Stream events. Blocks are identified by an index unique within the stream; at most one
# text/reasoning block is open at a time, tool-call blocks may receive late argument fragments.

TEXT, REASONING, REDACTED, TOOL_CALL, REFUSAL = "text", "reasoning", "redacted", "tool_call", "refusal"


@dataclass(slots=True)
class StreamStart:
    id: str
    model: str
    usage: Usage | None = None


@dataclass(slots=True)
class BlockStart:
    index: int
    kind: str  # TEXT | REASONING | REDACTED | TOOL_CALL | REFUSAL
    id: str | None = None  # tool call id
    name: str | None = None  # tool name
    data: str | None = None  # redacted reasoning payload


@dataclass(slots=True)
class Delta:
    """Text for TEXT/REASONING/REFUSAL blocks, an argument fragment for TOOL_CALL blocks."""

    index: int
    text: str


@dataclass(slots=True)
class SignatureDelta:
    index: int
    signature: str


@dataclass(slots=True)
class BlockStop:
    index: int


@dataclass(slots=True)
class UsageUpdate:
    usage: Usage  # the complete usage known so far (replaces, never adds)


@dataclass(slots=True)
class StreamFinish:
    stop_reason: str | None
    stop_sequence: str | None = None


@dataclass(slots=True)
class StreamEnd:
    """The upstream declared the stream complete ([DONE], message_stop)."""


@dataclass(slots=True)
class StreamError:
    error: ApiError


@dataclass(slots=True)
class KeepAlive:
    pass


StreamEvent = (
    StreamStart | BlockStart | Delta | SignatureDelta | BlockStop | UsageUpdate | StreamFinish | StreamEnd
    | StreamError | KeepAlive
)


class MalformedUpstream(Exception):
    """The provider sent data its own protocol does not allow (not JSON, a wrong shape): the
    provider's fault, answered as a 502 whose message says what it sent. Raised only where the
    upstream's data is being read; any other exception while translating is llmitm's own bug."""

    status = 502
    SAMPLE_CHARS = 200

    def __init__(self, what: str, sent: bytes | str = b""):
        text = sent.decode("utf-8", "replace") if isinstance(sent, bytes) else sent
        sample = text[: self.SAMPLE_CHARS] + ("…" if len(text) > self.SAMPLE_CHARS else "")
        super().__init__(f"malformed upstream data: {what}; the provider sent: {sample!r}")
        self.what, self.sample = what, sample


class TranslationError(Exception):
    """A request the target protocol cannot express, or a malformed one. The addon renders it as a
    4xx in the client's protocol (`errors.render_error(client, e.status, e.message, param=e.param)`)."""

    def __init__(self, message: str, *, param: str | None = None, status: int = 400):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param


class Context:
    """Per-flow translation state shared by the spokes: warnings to show in mitmweb and policy."""

    __slots__ = ("_warned", "client_path", "freeform_tools", "max_tokens_default", "namespaced_tools",
                 "unsupported_tools", "warnings")

    def __init__(self, *, max_tokens_default: int = 4096, client_path: str | None = None,
                 unsupported_tools: str = "drop"):
        self.warnings: list[str] = []
        self.max_tokens_default = max_tokens_default
        # The path the app called: Gemini carries the model and stream-or-not there, not in the body.
        self.client_path = client_path
        # Client tools whose call input is free text (OpenAI Responses `custom` tools): sent upstream as
        # functions with one string argument `input`, their calls shown to the client as custom calls.
        self.freeform_tools: set[str] = set()
        # Functions a Responses client declared inside a `namespace` tool: the flat name they go upstream
        # under → (namespace, the function's own name), so that calls reach the client as it named them.
        self.namespaced_tools: dict[str, tuple[str, str]] = {}
        # A client tool the upstream has no equivalent for (a hosted tool such as web search toward an
        # OpenAI Chat upstream): "drop" sends the request on without it and warns; "refuse" answers 400.
        if unsupported_tools not in ("drop", "refuse"):
            raise ValueError(f"unsupported_tools must be 'drop' or 'refuse', not {unsupported_tools!r}")
        self.unsupported_tools = unsupported_tools
        self._warned: set[str] = set()

    def warn(self, message: str) -> None:
        if message not in self._warned:  # one line per distinct problem, not per occurrence
            self._warned.add(message)
            self.warnings.append(message)
