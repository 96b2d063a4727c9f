"""OpenAI Responses on the wire (PROTOCOLS.md §1.2). The key, the model list, embeddings and the
error object are the OpenAI API's, shared with Chat Completions (openai_chat/wire.py)."""

from __future__ import annotations

import re

from ..canonical import HOSTED_WEB_SEARCH
from ..openai_chat.wire import (  # the same API as Chat Completions
    CARRIERS,
    ERROR_TYPES,
    HOSTS,
    MODEL_FIELD,
    OPENAI_API_ENDPOINTS,
    OTEL_PROVIDER_NAME,
    PROBE_PATH,
    REQUIRED_HEADERS,
    STREAM_FLAG,
    STREAM_QUERY,
    USAGE_FIELD,
    VENDOR_HEADER_PREFIXES,
    error_body,
    path_with_model,
)
from ..spoke import COUNT_TOKENS, GENERATE, Endpoint

NAME = "openai-responses"
TITLE = "OpenAI Responses"  # how people call this API (inspector titles, docs)
HOSTED_TOOLS = frozenset({HOSTED_WEB_SEARCH})  # web_search
ENDPOINTS = (
    Endpoint(GENERATE, "POST", re.compile(r"/responses$")),
    Endpoint(COUNT_TOKENS, "POST", re.compile(r"/responses/input_tokens$")),
    *OPENAI_API_ENDPOINTS,
)

__all__ = [
    "CARRIERS", "ENDPOINTS", "ERROR_TYPES", "HOSTED_TOOLS", "HOSTS", "MODEL_FIELD", "NAME", "OTEL_PROVIDER_NAME", "TITLE",
    "PROBE_PATH", "REQUIRED_HEADERS", "STREAM_FLAG", "STREAM_QUERY", "USAGE_FIELD", "VENDOR_HEADER_PREFIXES", "error_body",
    "path_with_model",
]
