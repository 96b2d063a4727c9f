"""The contract of a spoke: what each wire-protocol package under protocols/ provides.

A spoke has two halves, stated here as `typing.Protocol`s the way mitmproxy's `contentviews/_api.py`
states a view's contract:

- `Codec`: the package's translation functions (its `__init__.py`): parse into the canonical hub
  and render out of it — requests, responses, errors and streams. Sans-I/O: dicts and bytes.
- `Wire`: the package's `wire.py`: the protocol's wire facts as data — the endpoints its apps call,
  where the model and the credential sit, its vendor headers, a probe request, where usage sits in
  an answer, its error table and body shape, and the hosts that speak it.

`SpokeRecord` pairs the two; `registry.REGISTRY` holds one record per protocol and answers every
question the rest of llmitm asks about protocols, so no module outside this package names one.
Field reference for every fact: ../shared/PROTOCOLS.md.

Both halves are modules, which mypy checks against these protocols where each record is built. The
constants are declared as read-only properties so that a module's `dict` or fixed-length tuple
satisfies a `Mapping` or `tuple[X, ...]` member.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from .canonical import ApiError, Context, Request, Response, Usage

# -- the codec ------------------------------------------------------------------------------------


class StreamParsing(Protocol):
    """A spoke's `StreamParser(ctx)`: the upstream's decoded SSE events → canonical stream events.
    Optional: `comment(text) -> list`, for an SSE comment line (a keep-alive from some servers)."""

    def feed(self, event: str | None, data: str) -> list:
        """One decoded SSE event (its `event:` name, None when absent, and its `data:` text) → the
        canonical stream events it carries (canonical.StreamStart, BlockStart, Delta, …), often none."""
        ...



class StreamRendering(Protocol):
    """A spoke's `StreamRenderer(ctx, request)`: canonical stream events → the client's SSE bytes."""

    def render(self, ev: Any, out: list[bytes]) -> None:
        """Append the client bytes for one canonical stream event to `out` (possibly nothing: a
        renderer may hold an event back until it can write it whole)."""
        ...


class Codec(Protocol):
    """The translation half of a spoke (the package's `__init__.py` functions)."""

    @property
    def NAME(self) -> str:
        """The protocol's name, as the config's `protocol:` field spells it (e.g. "openai-chat")."""
        ...

    @property
    def REQUEST_HEADERS(self) -> Mapping[str, str]:
        """Headers every upstream request in this protocol carries (content type, API version)."""
        ...

    def request_path(self, req: Request) -> str:
        """The path of the upstream request for `req`, relative to the provider's base_url (it may
        carry the model and stream-or-not, as Gemini's does)."""
        ...

    def parse_request(self, body: dict, ctx: Context) -> Request:
        """A client's parsed JSON body → the canonical request. Raises canonical.TranslationError
        (with `param`) for what would change the answer; `ctx.warn()` for what is dropped."""
        ...

    def render_request(self, req: Request, ctx: Context) -> dict:
        """The canonical request → the upstream's JSON body. Same rules as `parse_request`."""
        ...

    def parse_response(self, body: dict, ctx: Context) -> Response:
        """A non-streamed 2xx upstream body → the canonical response. Lenient, but never invents content."""
        ...

    def render_response(self, resp: Response, ctx: Context) -> dict:
        """The canonical response → the client's non-streamed JSON body."""
        ...

    def parse_usage(self, u: dict) -> Usage | None:
        """The usage object of an answer (found at `Wire.USAGE_FIELD`) → canonical usage; None when
        it carries no counts. Metering reads untranslated answers with it."""
        ...

    def parse_error(self, status: int | None, body: bytes) -> ApiError:
        """An upstream error body → ApiError. `status` None: an error inside a 200 or a stream, whose
        status then follows the error's type or code."""
        ...

    def render_error(self, err: ApiError) -> bytes:
        """An ApiError → the client's JSON error body (shape: `Wire.error_body`)."""
        ...

    def render_stream_error(self, err: ApiError) -> bytes:
        """An ApiError → one in-stream error event in the client's SSE format. The one source of that
        shape: the relay uses it too when an upstream breaks off mid-stream."""
        ...

    @property
    def StreamParser(self) -> Callable[[Context], StreamParsing]:
        """`StreamParser(ctx)`: one per upstream stream (see `StreamParsing`)."""
        ...

    @property
    def StreamRenderer(self) -> Callable[[Context, Request | None], StreamRendering]:
        """`StreamRenderer(ctx, request)`: one per client stream; `request` is the canonical request
        (None when unknown), whose options (e.g. include_usage) shape the stream."""
        ...


# -- the wire facts -------------------------------------------------------------------------------

EndpointKind = Literal["generate", "count_tokens", "embeddings", "list_models", "model_info", "other"]
GENERATE: EndpointKind = "generate"  # translated between protocols
COUNT_TOKENS: EndpointKind = "count_tokens"
EMBEDDINGS: EndpointKind = "embeddings"
LIST_MODELS: EndpointKind = "list_models"
MODEL_INFO: EndpointKind = "model_info"
OTHER: EndpointKind = "other"  # any other method of the protocol's URL scheme, forwarded as it is


@dataclass(frozen=True)
class Endpoint:
    """One HTTP endpoint the apps of a protocol call."""

    kind: EndpointKind
    method: str | None  # None: any method
    path: re.Pattern[str]  # searched in the path without its query; a `model` group: the model is in the path
    streams: bool = False  # calling it asks for a stream by itself (Gemini's :streamGenerateContent)

    def match(self, method: str, bare_path: str) -> re.Match[str] | None:
        if self.method is not None and method != self.method:
            return None
        return self.path.search(bare_path)


@dataclass(frozen=True)
class Carrier:
    """One place a request carries an API key: a header (value `prefix` + key) or a query parameter."""

    name: str  # lower-case header name, or the query parameter's name
    in_query: bool = False
    prefix: str = ""  # "Bearer " for Authorization


@dataclass(frozen=True)
class ErrorTypes:
    """A protocol's error type (or google.rpc status) for each HTTP status."""

    by_status: Mapping[int, str]
    client_default: str  # any other 4xx
    server_default: str  # any other 5xx

    def for_status(self, status: int) -> str:
        return self.by_status.get(status, self.server_default if status >= 500 else self.client_default)


class Wire(Protocol):
    """The wire-facts half of a spoke (the package's `wire.py`), as data the registry reads."""

    @property
    def NAME(self) -> str:
        """The protocol's name; the same as its codec's `NAME`."""
        ...

    @property
    def HOSTS(self) -> tuple[str, ...]:
        """The AI hosts that speak it, intercepted with no config (the zero-config default)."""
        ...

    @property
    def ENDPOINTS(self) -> tuple[Endpoint, ...]:
        """The endpoints its apps call, most specific first (the first match wins)."""
        ...

    @property
    def STREAM_FLAG(self) -> str | None:
        """The top-level body field whose `true` asks for a stream (None: the body never says)."""
        ...

    @property
    def STREAM_QUERY(self) -> tuple[str, str] | None:
        """A query parameter (name, value) that asks for server-sent events (Gemini's `alt=sse`)."""
        ...

    @property
    def MODEL_FIELD(self) -> str | None:
        """The top-level body field that names the model, rewritten in place byte for byte
        (jsonbytes); None when the model sits in the path (see `path_with_model`)."""
        ...

    def path_with_model(self, path: str, model: str) -> str:
        """`path` naming `model` instead (unchanged when the model is not in this protocol's path)."""
        ...

    @property
    def CARRIERS(self) -> tuple[Carrier, ...]:
        """Where its apps put an API key; llmitm writes a key into the first one. An app's key is taken
        from (and masked in) every carrier of every protocol, since SDKs differ."""
        ...

    @property
    def REQUIRED_HEADERS(self) -> Mapping[str, str]:
        """Headers an upstream of this protocol requires beside the key, added when a request lacks them."""
        ...

    @property
    def VENDOR_HEADER_PREFIXES(self) -> tuple[str, ...]:
        """Prefixes of its apps' vendor headers (`anthropic-beta`, `openai-organization`,
        `x-goog-user-project`), which mean nothing (or something else) to another protocol's upstream."""
        ...

    @property
    def PROBE_PATH(self) -> str:
        """A cheap authenticated GET (a model list) that tells whether a disabled key works again."""
        ...

    @property
    def USAGE_FIELD(self) -> str:
        """The top-level field of an answer (and of the stream events) that carries token usage."""
        ...

    @property
    def TITLE(self) -> str:
        """The API's name as people know it ("Anthropic Messages"), for what mitmweb shows."""
        ...

    @property
    def HOSTED_TOOLS(self) -> frozenset[str]:
        """Provider-run tools (canonical `Tool.hosted` kinds, e.g. web search) an upstream of this
        protocol runs itself; a request's other hosted tools go by `Context.unsupported_tools`."""
        ...

    @property
    def OTEL_PROVIDER_NAME(self) -> str:
        """`gen_ai.provider.name` of this protocol's upstreams in OpenTelemetry's GenAI semantic
        conventions ("openai", "anthropic", "gcp.gemini"), for llmitm's spans (observe/traces.py)."""
        ...

    @property
    def ERROR_TYPES(self) -> ErrorTypes:
        """Error type by HTTP status (PROTOCOLS.md §2.11)."""
        ...

    def error_body(self, status: int, message: str, error_type: str, param: str | None, code: str | None) -> dict:
        """The JSON error object its clients expect. The in-stream error event is the codec's
        `render_stream_error`."""
        ...


# -- the record -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Surface:
    """The endpoints a protocol has beside generation, each the module that states its shapes (None
    where the protocol has no such endpoint: OpenAI Chat counts no tokens, Anthropic has no embeddings):
    model list and info (catalog.CatalogCodec), token counting (token_count.CountCodec), embeddings
    (embeddings.EmbeddingCodec)."""

    models: Any
    count_tokens: Any = None
    embeddings: Any = None


@dataclass(frozen=True)
class SpokeRecord:
    """One protocol in the registry: its codec (the package), its wire facts (its wire.py) and its
    endpoints beside generation (its models/count_tokens/embeddings modules)."""

    codec: Codec
    wire: Wire
    surface: Surface
    name: str = field(init=False)

    def __post_init__(self) -> None:
        if self.codec.NAME != self.wire.NAME:
            raise ValueError(f"spoke {self.codec.NAME!r} has the wire facts of {self.wire.NAME!r}")
        object.__setattr__(self, "name", self.codec.NAME)
