"""The Gemini API on the wire (PROTOCOLS.md §1.4): its endpoints, the model in the path, where the key
and the usage sit, and its error shape (google.rpc status names)."""

from __future__ import annotations

import re

from ..canonical import HOSTED_WEB_SEARCH
from ..spoke import COUNT_TOKENS, EMBEDDINGS, GENERATE, LIST_MODELS, MODEL_INFO, OTHER, Carrier, Endpoint, ErrorTypes

NAME = "gemini"
TITLE = "Gemini generateContent"  # how people call this API (inspector titles, docs)
HOSTS = ("generativelanguage.googleapis.com",)

# `{prefix}/models/{model}:{method}`, prefix ending in /v1, /v1beta or /v1alpha.
_MODEL_METHOD = re.compile(r"^(?P<prefix>.*/v1(?:beta|alpha)?)/models/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$")


def _method(*names: str) -> re.Pattern[str]:
    return re.compile(r"^.*/v1(?:beta|alpha)?/models/(?P<model>[^/:]+):(?:" + "|".join(names) + r")$")


ENDPOINTS = (
    Endpoint(GENERATE, "POST", _method("generateContent")),
    Endpoint(GENERATE, "POST", _method("streamGenerateContent"), streams=True),
    Endpoint(COUNT_TOKENS, "POST", _method("countTokens")),
    Endpoint(EMBEDDINGS, "POST", _method("embedContent", "batchEmbedContents")),
    # Any other method of a model: routed by the model in its path and forwarded as it is.
    Endpoint(OTHER, None, _MODEL_METHOD),
    # /v1/models is OpenAI's and Anthropic's path too: only the beta paths tell Gemini apart.
    Endpoint(LIST_MODELS, "GET", re.compile(r"/v1(?:beta|alpha)?/models$")),
    # The model of an info request routes it like a generation request's.
    Endpoint(MODEL_INFO, "GET", re.compile(r"/v1(?:beta|alpha)?/models/(?P<model>[^/:]+)$")),
)
STREAM_FLAG = None  # the path says it (:streamGenerateContent)
STREAM_QUERY = ("alt", "sse")  # without it a stream is one JSON array

MODEL_FIELD = None


def path_with_model(path: str, model: str) -> str:
    """Rewrite the model segment of a `models/{model}:{method}` path, keeping the method and the query."""
    bare, sep, query = path.partition("?")
    m = _MODEL_METHOD.match(bare)
    if not m:
        return path
    return f"{m.group('prefix')}/models/{model}:{m.group('method')}{sep}{query}"


# The google-genai SDK sends x-goog-api-key; `?key=` is the REST docs' (and curl users') way.
CARRIERS = (Carrier("x-goog-api-key"), Carrier("key", in_query=True))
REQUIRED_HEADERS: dict[str, str] = {}
VENDOR_HEADER_PREFIXES = ("x-goog-",)  # x-goog-api-client, x-goog-user-project, x-goog-request-params

PROBE_PATH = "/v1beta/models"
USAGE_FIELD = "usageMetadata"
# gen_ai.provider.name in OpenTelemetry's GenAI semantic conventions (observe/traces.py).
OTEL_PROVIDER_NAME = "gcp.gemini"

# google.rpc status names by HTTP status.
HOSTED_TOOLS = frozenset({HOSTED_WEB_SEARCH})  # googleSearch grounding
ERROR_TYPES = ErrorTypes(
    {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        413: "INVALID_ARGUMENT",
        429: "RESOURCE_EXHAUSTED",
        500: "INTERNAL",
        503: "UNAVAILABLE",
        504: "DEADLINE_EXCEEDED",
    },
    client_default="INVALID_ARGUMENT",
    server_default="INTERNAL",
)


def error_body(status: int, message: str, error_type: str, param: str | None, code: str | None) -> dict:
    return {"error": {"code": status, "message": message, "status": error_type}}
