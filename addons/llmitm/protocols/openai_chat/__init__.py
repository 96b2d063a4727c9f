"""OpenAI Chat Completions spoke (`POST /v1/chat/completions`), including OpenAI-compatible servers
(vLLM, SGLang, llama.cpp, Ollama, DeepSeek, xAI, OpenRouter): requests, responses, stream chunks and
errors to and from the canonical model. Field reference: PROTOCOLS.md §1.1.

`request` parses and renders request bodies, `response` non-stream bodies, finish reasons and usage,
`stream` SSE chunks, `api_errors` error bodies."""

from __future__ import annotations

from ..canonical import Request
from .api_errors import NAME, STATUS_FOR_TYPE, error_from_payload, parse_error, render_error, render_stream_error
from .request import KNOWN_REQUEST_KEYS, REJECTED_FIELDS, parse_request, render_request
from .response import FINISH_IN, FINISH_OUT, parse_response, parse_usage, render_response, render_usage
from .stream import StreamParser, StreamRenderer

PATH = "/v1/chat/completions"
REQUEST_HEADERS = {"content-type": "application/json"}


def request_path(req: Request) -> str:
    return PATH


__all__ = [
    "FINISH_IN", "FINISH_OUT", "KNOWN_REQUEST_KEYS", "NAME", "PATH", "REJECTED_FIELDS", "REQUEST_HEADERS",
    "STATUS_FOR_TYPE", "StreamParser", "StreamRenderer", "error_from_payload", "parse_error", "parse_request",
    "parse_response", "parse_usage", "render_error", "render_request", "render_response", "render_stream_error",
    "render_usage", "request_path",
]


# ---------------------------------------------------------------------------------------------
# The registry record (spoke.py states the contract; registry.py lists every record). Imported
# here, at the end, because the record holds this module: the package itself, named so that
# mypy checks it against spoke.Codec, and its wire facts.

from .. import openai_chat as _codec  # noqa: E402  (this package, complete by now)
from ..spoke import SpokeRecord, Surface  # noqa: E402
from . import embeddings as _embeddings  # noqa: E402
from . import models as _models  # noqa: E402
from . import wire  # noqa: E402

SPOKE = SpokeRecord(codec=_codec, wire=wire, surface=Surface(models=_models, embeddings=_embeddings))
