"""Wire-protocol translation (hub and spoke) and every wire fact of each protocol: see README.md here.

One package per protocol (openai_chat, openai_responses, anthropic, gemini), each a spoke whose
contract `spoke.py` states; `REGISTRY` lists them and answers every question the rest of llmitm
asks about protocols. The addon uses only the names exported here."""

from . import anthropic, canonical, gemini, openai_chat, openai_responses, sse
from .canonical import MalformedUpstream, TranslationError, Usage
from .registry import REGISTRY, EndpointMatch, Registry, UnknownProtocol
from .spoke import Carrier, Codec, Endpoint, SpokeRecord, Wire
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
    "REGISTRY",
    "SPOKES",
    "STREAM_CONTENT_TYPE",
    "Carrier",
    "Codec",
    "Endpoint",
    "EndpointMatch",
    "Registry",
    "SpokeRecord",
    "StreamTranslator",
    "Translation",
    "TranslationError",
    "UnknownProtocol",
    "UpstreamRequest",
    "Usage",
    "Wire",
    "anthropic",
    "canonical",
    "client_content_type",
    "gemini",
    "openai_chat",
    "openai_responses",
    "sse",
]
