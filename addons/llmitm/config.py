"""llmitm's YAML configuration: loading, ${VAR} expansion and validation.

Everything structured lives here, validated by pydantic, so the addon, the CLI (`llmitm check`) and the
key pool all see one typed object. Every error names the file and the dotted field path, e.g.
``config/llmitm.yaml: providers.openai.protocol: Input should be 'openai-chat', ...``.
"""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .clients import ClientSpec, fingerprint
from .config_text import ConfigError, expand_env, validation_message
from .pool.stores import sqlite_path
from .protocols.registry import REGISTRY


def _known_protocol(name: str) -> str:
    if name not in REGISTRY:
        *others, last = (repr(n) for n in REGISTRY.names)
        raise ValueError(f"Input should be {', '.join(others)} or {last}")
    return name


# A protocol name as the registry spells it (protocols/registry.py: one entry per protocol package).
Protocol = Annotated[str, AfterValidator(_known_protocol)]
Strategy = Literal["most-remaining", "round-robin", "weighted", "least-busy"]

DEFAULT_CONFIG_PATH = Path("config/llmitm.yaml")

# The hosts llmitm knows without being told, and the protocols they speak (each protocol's wire.py
# HOSTS). Used for the zero-config default and for routes that match on path or model only.
KNOWN_AI_HOSTS: dict[str, list[str]] = REGISTRY.known_hosts()


class _Strict(BaseModel):
    # Unknown fields are errors: a typo such as `base-url` must not be silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class KeyConfig(_Strict):
    """One upstream credential of a provider's pool."""

    key: str = Field(min_length=1)
    id: str | None = None  # label shown in logs and mitmweb; defaults to "<provider>#<n>"
    weight: float = Field(default=1.0, gt=0)
    max_concurrency: int | None = Field(default=None, ge=1)
    rpm: int | None = Field(default=None, ge=1)  # requests-per-minute hint
    tpm: int | None = Field(default=None, ge=1)  # tokens-per-minute hint


class CooldownConfig(_Strict):
    default_seconds: float = Field(default=30.0, ge=0)  # a 429 without Retry-After
    max_seconds: float = Field(default=300.0, gt=0)  # Retry-After is capped here
    failure_threshold: int = Field(default=3, ge=1)  # consecutive 5xx/connection errors that trip the breaker
    breaker_seconds: float = Field(default=30.0, ge=0)
    probe_interval_seconds: float = Field(default=60.0, gt=0)  # how often a disabled key is re-tried


class LocalModelConfig(_Strict):
    """How a local OpenAI-compatible server's model writes reasoning and tool calls, and how its
    reasoning is switched on and off (vLLM, llama.cpp, Ollama, `transformers serve`; SmolLM3 …).

    With this set, even an OpenAI-Chat app's requests to this provider are translated (chat to
    chat), so the model's text conventions reach the app in its protocol's native form."""

    # <think>…</think> in the answer's text becomes the app's native reasoning (reasoning_content,
    # an Anthropic thinking block, …).
    think_tags: bool = True
    # <tool_call>{"name": …, "arguments": …}</tool_call> in the text (Hermes format, SmolLM3)
    # becomes native tool calls, for servers that do not parse them.
    tool_call_tags: bool = False
    # How the app's reasoning on/off reaches the model: "none"; "chat_template_kwargs" (sends
    # chat_template_kwargs.enable_thinking: vLLM, SGLang, llama.cpp, transformers serve); "smollm3"
    # (that, plus /think or /no_think in the system prompt, which SmolLM3's template reads).
    reasoning_switch: Literal["none", "chat_template_kwargs", "smollm3"] = "none"
    # Reasoning when the app says nothing about it (Anthropic apps: off unless asked).
    thinking_default: bool = False


class ProviderConfig(_Strict):
    """An upstream: where it is, what it speaks and which keys it takes."""

    # One protocol, or several when the upstream speaks more than one (api.openai.com speaks both
    # OpenAI wire protocols). A client protocol in this list passes through untranslated; otherwise
    # llmitm translates to the first one.
    protocol: list[Protocol]
    base_url: str
    keys: list[KeyConfig] = []
    strategy: Strategy = "most-remaining"
    max_tokens_default: int = Field(default=4096, ge=1)  # Anthropic requires max_tokens
    timeout_seconds: float = Field(default=600.0, gt=0)
    idle_timeout_seconds: float = Field(default=120.0, gt=0)  # a pooled stream's silence before an in-stream error
    max_wait_seconds: float = Field(default=10.0, ge=0)  # queueing for a busy key before a 429
    cooldown: CooldownConfig = CooldownConfig()
    headers: dict[str, str] = {}  # extra headers sent upstream (e.g. OpenAI-Organization)
    local_model: LocalModelConfig | None = None  # an OpenAI-compatible server running an open model

    @field_validator("protocol", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("protocol")
    @classmethod
    def _not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one protocol")
        return value

    @field_validator("keys", mode="before")
    @classmethod
    def _keys_as_objects(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"key": k} if isinstance(k, str) else k for k in value]
        return value

    @field_validator("keys")
    @classmethod
    def _unique_key_ids(cls, keys: list[KeyConfig]) -> list[KeyConfig]:
        ids = [k.id for k in keys if k.id is not None]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"key ids must be unique within a provider: {', '.join(duplicates)} used more than once")
        return keys

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
        return value.rstrip("/")

    @property
    def pooled(self) -> bool:
        """A provider without keys forwards the app's own credential (inspection / local servers)."""
        return bool(self.keys)


class MatchConfig(_Strict):
    host: str | None = None  # glob, case-insensitive, port ignored
    path: str | None = None  # glob on the path without the query
    model: str | None = None  # glob on the requested model

    def matches(self, host: str, path: str, model: str | None) -> bool:
        if self.host is not None and not fnmatch.fnmatchcase(host.lower(), self.host.lower()):
            return False
        if self.path is not None and not fnmatch.fnmatchcase(path, self.path):
            return False
        if self.model is not None and (model is None or not fnmatch.fnmatchcase(model, self.model)):
            return False
        return True


class RouteConfig(_Strict):
    match: MatchConfig = MatchConfig()
    provider: str
    model: str | None = None  # rewrite every matched request to this model
    model_map: dict[str, str] = {}  # {glob: model}; first matching glob wins
    fallback: list[str] = []  # providers tried in order when the main one cannot serve
    # A tool of the app's that the upstream cannot run (a hosted tool with no twin there): "drop" it
    # with a warning on the flow, so a coding agent is not failed entirely by one optional tool, or
    # "refuse" the request with a 400 that names it.
    unsupported_tools: Literal["drop", "refuse"] = "drop"
    # An endpoint of the app's protocol that the route's provider (speaking another protocol) lacks:
    # files, batches, stored responses, vendor paths. "refuse": a 404 in the app's protocol naming it;
    # "original": passed to the host the app called, with the app's own credential (never a pooled key).
    other_endpoints: Literal["refuse", "original"] = "refuse"

    @model_validator(mode="after")
    def _model_xor_map(self) -> RouteConfig:
        if self.model is not None and self.model_map:
            raise ValueError("set either model or model_map, not both")
        return self

    def upstream_model(self, requested: str | None) -> str | None:
        """The model to send upstream, or None when model_map has no entry for it."""
        if self.model is not None:
            return self.model
        if not self.model_map:
            return requested
        for pattern, target in self.model_map.items():
            if requested is not None and fnmatch.fnmatchcase(requested, pattern):
                return target
        return None


class ClientConfig(_Strict):
    """An app (or team) allowed to use this proxy, told apart by the key it sends (see clients.py)."""

    name: str = Field(min_length=1)
    key: str | None = Field(default=None, min_length=8)  # as the app sends it; usually "${VAR}"
    key_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")  # or only its hash
    proxy_user: str | None = None  # or the user name of mitmproxy's proxyauth
    models: list[str] = ["*"]  # globs of the models it may ask for
    providers: list[str] = ["*"]  # globs of the providers its routes may reach
    pins: list[str] = []  # key ids it may pick with x-llmitm-key ("*": any)
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_identity(self) -> ClientConfig:
        if sum(x is not None for x in (self.key, self.key_sha256, self.proxy_user)) != 1:
            raise ValueError("give exactly one of key, key_sha256 or proxy_user")
        return self

    def spec(self) -> ClientSpec:
        digest = self.key_sha256 or (fingerprint(self.key) if self.key else None)
        return ClientSpec(self.name, digest, self.proxy_user, tuple(self.models), tuple(self.providers),
                          tuple(self.pins), self.rpm, self.tpm)


class ObserveConfig(_Strict):
    """Usage ledger, Prometheus metrics, OpenTelemetry traces and the overhead header (docs/metrics.md)."""

    # Rows in <state>-ledger.db (SQLite state) or shared totals in Redis; `state: memory` keeps none.
    ledger: bool = True
    metrics_port: int | None = Field(default=None, ge=0, le=65535)  # None: no endpoint; 0: any free port
    # Where /metrics listens. Loopback unless you say otherwise: the numbers name keys (by id) and clients.
    metrics_host: str = "127.0.0.1"
    otlp_endpoint: str | None = None  # OTLP/HTTP traces, e.g. http://127.0.0.1:4318/v1/traces
    capture_content: bool = False  # put prompts and answers on the spans (off: they may be confidential)
    overhead_header: bool = True  # x-llmitm-overhead-ms on every answer llmitm forwarded

    @field_validator("otlp_endpoint")
    @classmethod
    def _otlp_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
        return value


class PriceConfig(_Strict):
    """A model's price in USD per million tokens (overrides the built-in table; see observe/prices.py)."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_read: float | None = Field(default=None, ge=0)  # None: charged as input
    cache_write: float | None = Field(default=None, ge=0)
    reasoning: float | None = Field(default=None, ge=0)  # None: charged as output


class LlmitmConfig(_Strict):
    providers: dict[str, ProviderConfig] = {}
    routes: list[RouteConfig] = []
    # Who may use the proxy. Empty: anyone who reaches the port (fine on 127.0.0.1 only; `llmitm run`
    # refuses a non-loopback listen address without client authentication).
    clients: list[ClientConfig] = []
    # Where pool state (cooldowns, disabled keys, usage) lives: "sqlite:///path" (default, beside
    # the config as .llmitm-state.db), "memory" or "redis://host:port/db" to share one pool.
    state: str | None = None
    # Largest request body llmitm parses for routing or translation.
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    max_response_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)  # a whole upstream answer; a pooled stream in total
    # Seconds a client has to send a request's complete headers: from connecting, and again whenever
    # it has no request open (so also a keep-alive connection's idle limit). Past it the connection
    # is closed: a client trickling header bytes (slowloris) cannot hold one forever (deadlines.py).
    header_timeout_seconds: float = Field(default=30.0, gt=0)
    # Whether a client may reach local services (loopback, this host's addresses) through the proxy.
    # Off by default: such services (a Redis state store, the web UI, llmitm's relay) trust local
    # callers. llmitm's own ports stay unreachable either way (netguard.py).
    allow_local_destinations: bool = False
    observe: ObserveConfig = ObserveConfig()
    prices: dict[str, PriceConfig] = {}  # {model glob: price per million tokens}; first matching glob wins
    source: Annotated[str, Field(exclude=True)] = "<built-in default>"

    @model_validator(mode="after")
    def _routes_name_providers(self) -> LlmitmConfig:
        for i, route in enumerate(self.routes):
            for j, name in enumerate([route.provider, *route.fallback]):
                if name not in self.providers:
                    field = f"routes.{i}.provider" if j == 0 else f"routes.{i}.fallback.{j - 1}"
                    known = ", ".join(sorted(self.providers)) or "none defined"
                    raise ValueError(f"{field}: unknown provider {name!r} (providers: {known})")
        return self

    @field_validator("clients")
    @classmethod
    def _unique_client_names(cls, clients: list[ClientConfig]) -> list[ClientConfig]:
        names = [c.name for c in clients]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"client names must be unique: {', '.join(duplicates)}")
        keys = [c.spec().key_sha256 for c in clients if c.spec().key_sha256]
        if len(keys) != len(set(keys)):
            raise ValueError("two clients have the same key")
        return clients

    @field_validator("state")
    @classmethod
    def _state_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^(memory|sqlite://.+|rediss?://.+)$", value):
            raise ValueError("must be 'memory', 'sqlite:///path' or 'redis://host:port/db'")
        path = sqlite_path(value) if value is not None else None
        if path is not None:
            folder = Path(path).expanduser().parent
            if not folder.is_dir():
                raise ValueError(f"the folder {str(folder)!r} of the SQLite state file does not exist")
        return value

    def intercepted_hosts(self) -> list[str]:
        """Host globs whose TLS llmitm terminates; every other host is tunneled untouched."""
        hosts: list[str] = []
        for route in self.routes:
            candidates = [route.match.host] if route.match.host else list(KNOWN_AI_HOSTS)
            hosts.extend(h for h in candidates if h not in hosts)
        return hosts


def builtin_default() -> LlmitmConfig:
    """Zero configuration: intercept the known AI hosts and pass their traffic through untouched
    (one provider per host, named after it, speaking the protocols that host speaks)."""
    providers = {host: ProviderConfig(protocol=protocols, base_url=f"https://{host}")
                 for host, protocols in KNOWN_AI_HOSTS.items()}
    routes = [RouteConfig(match=MatchConfig(host=host), provider=host) for host in KNOWN_AI_HOSTS]
    return LlmitmConfig(providers=providers, routes=routes, state="memory")


def parse_config(text: str, source: str, env: dict[str, str] | os._Environ[str] | None = None) -> LlmitmConfig:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: not valid YAML: {e}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping with providers and routes")
    try:
        expanded = expand_env(raw, os.environ if env is None else env)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    try:
        config = LlmitmConfig.model_validate(expanded)
    except ValidationError as e:
        raise ConfigError(validation_message(source, e, raw)) from None
    return config.model_copy(update={"source": source})


def load_config(path: str | Path) -> LlmitmConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config: {e.strerror}") from None
    return parse_config(text, str(path))


def mask_secret(secret: str) -> str:
    """Show enough of a key to tell keys apart, never enough to use it."""
    if len(secret) <= 8:
        return "***"
    return f"{secret[:3]}…{secret[-4:]}"
