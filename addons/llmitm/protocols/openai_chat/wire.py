"""OpenAI Chat Completions on the wire (PROTOCOLS.md §1.1): its endpoints, where the model, the key
and the usage sit, and its error shape. Also the facts of the OpenAI API that both OpenAI protocols
share (model list, embeddings, the error object), which openai_responses/wire.py reuses."""

from __future__ import annotations

import re

from ..spoke import EMBEDDINGS, GENERATE, LIST_MODELS, MODEL_INFO, Carrier, Endpoint, ErrorTypes

NAME = "openai-chat"
TITLE = "OpenAI Chat Completions"  # how people call this API (inspector titles, docs)
HOSTS = ("api.openai.com",)

# The OpenAI API endpoints beside generation. Both OpenAI protocols list them (and Anthropic the model
# paths), so the path alone does not say which protocol an app speaks: the planner tells them apart by
# host and headers (REGISTRY.candidates). The model list and info are answered by llmitm on a route
# that restricts or translates models (surfaces.py); embeddings are translated (embeddings.py).
OPENAI_API_ENDPOINTS = (
    Endpoint(EMBEDDINGS, "POST", re.compile(r"/embeddings$")),
    Endpoint(LIST_MODELS, "GET", re.compile(r"/v1/models$")),
    Endpoint(MODEL_INFO, "GET", re.compile(r"/v1/models/(?P<model>[^/:]+)$")),
)
ENDPOINTS = (
    Endpoint(GENERATE, "POST", re.compile(r"/chat/completions$")),
    *OPENAI_API_ENDPOINTS,
)
STREAM_FLAG = "stream"
STREAM_QUERY = None

MODEL_FIELD = "model"


def path_with_model(path: str, model: str) -> str:
    return path  # the model is in the body


# The SDKs send `Authorization: Bearer`; OpenAI-compatible servers read the same.
CARRIERS = (Carrier("authorization", prefix="Bearer "),)
REQUIRED_HEADERS: dict[str, str] = {}
VENDOR_HEADER_PREFIXES = ("openai-",)  # openai-organization, openai-project, openai-beta

PROBE_PATH = "/v1/models"
USAGE_FIELD = "usage"
# gen_ai.provider.name in OpenTelemetry's GenAI semantic conventions (observe/traces.py).
OTEL_PROVIDER_NAME = "openai"

# OpenAI error types by status (PROTOCOLS.md §2.11).
HOSTED_TOOLS: frozenset[str] = frozenset()  # Chat Completions has no provider-run tools
ERROR_TYPES = ErrorTypes(
    {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        413: "invalid_request_error",
        429: "rate_limit_error",
    },
    client_default="invalid_request_error",
    server_default="server_error",
)


def error_body(status: int, message: str, error_type: str, param: str | None, code: str | None) -> dict:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}
