"""Wire-protocol translation (hub and spoke): see README.md in this directory.

The addon uses only the names exported here."""

from . import anthropic, canonical, openai_chat, sse
from .canonical import MalformedUpstream, TranslationError, Usage
from .translate import (
    JSON_CONTENT_TYPE,
    SPOKES,
    STREAM_CONTENT_TYPE,
    StreamTranslator,
    Translation,
    UpstreamRequest,
    client_content_type,
)

__all__ = [
    "JSON_CONTENT_TYPE",
    "MalformedUpstream",
    "SPOKES",
    "STREAM_CONTENT_TYPE",
    "StreamTranslator",
    "Translation",
    "TranslationError",
    "UpstreamRequest",
    "Usage",
    "anthropic",
    "canonical",
    "client_content_type",
    "openai_chat",
    "sse",
]
