"""Anthropic Messages on the wire (PROTOCOLS.md §1.3): its endpoints, where the model, the key and
the usage sit, and its error shape."""

from __future__ import annotations

import re

from ..canonical import HOSTED_WEB_SEARCH
from ..spoke import COUNT_TOKENS, GENERATE, LIST_MODELS, MODEL_INFO, Carrier, Endpoint, ErrorTypes

NAME = "anthropic"
TITLE = "Anthropic Messages"  # how people call this API (inspector titles, docs)
HOSTS = ("api.anthropic.com",)

ENDPOINTS = (
    Endpoint(GENERATE, "POST", re.compile(r"/v1/messages$")),
    # Toward another protocol: that upstream's counting endpoint, else llmitm's estimate (token_count.py).
    Endpoint(COUNT_TOKENS, "POST", re.compile(r"/v1/messages/count_tokens$")),
    # The same paths as OpenAI's: the planner tells them apart by host and the `anthropic-version` header.
    Endpoint(LIST_MODELS, "GET", re.compile(r"/v1/models$")),
    Endpoint(MODEL_INFO, "GET", re.compile(r"/v1/models/(?P<model>[^/:]+)$")),
)
STREAM_FLAG = "stream"
STREAM_QUERY = None

MODEL_FIELD = "model"


def path_with_model(path: str, model: str) -> str:
    return path  # the model is in the body


# x-api-key is where the API reads a key; the Anthropic SDK 2.x sends `Authorization: Bearer`, older
# ones x-api-key.
CARRIERS = (Carrier("x-api-key"), Carrier("authorization", prefix="Bearer "))
ANTHROPIC_VERSION = "2023-06-01"
REQUIRED_HEADERS = {"anthropic-version": ANTHROPIC_VERSION}
VENDOR_HEADER_PREFIXES = ("anthropic-",)  # anthropic-version, anthropic-beta

PROBE_PATH = "/v1/models"
USAGE_FIELD = "usage"
# gen_ai.provider.name in OpenTelemetry's GenAI semantic conventions (observe/traces.py).
OTEL_PROVIDER_NAME = "anthropic"

# Anthropic error types by status (PROTOCOLS.md §1.3 / §2.11).
HOSTED_TOOLS = frozenset({HOSTED_WEB_SEARCH})  # web_search_20250305 (server tool)
ERROR_TYPES = ErrorTypes(
    {
        400: "invalid_request_error",
        401: "authentication_error",
        402: "billing_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        500: "api_error",
        503: "overloaded_error",
        504: "timeout_error",
        529: "overloaded_error",
    },
    client_default="invalid_request_error",
    server_default="api_error",
)


def error_body(status: int, message: str, error_type: str, param: str | None, code: str | None) -> dict:
    return {"type": "error", "error": {"type": error_type, "message": message}}
