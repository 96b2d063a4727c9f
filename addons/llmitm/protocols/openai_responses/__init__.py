"""OpenAI Responses spoke (`POST /v1/responses`): requests, responses, stream events and errors to and
from the canonical model. Field reference: PROTOCOLS.md §1.2.

llmitm is stateless: what needs OpenAI's server-side store (`previous_response_id`, `conversation`,
`background`, `store: true`, `item_reference` items, prompt templates) is refused with a 400 naming the
field. Anthropic's signed thinking is handed to a Responses client inside the reasoning item's
`encrypted_content`, prefixed so that it is recognised (and turned back into a signature) when the
client sends the item back in its next `input`; OpenAI's own encrypted reasoning is not carried.

Modules: `usage_errors`, `items` (output items and the response object), `tools` (function, custom,
namespace and hosted tools), `input_items` (the `input` array both ways), `request`, `response`,
`stream_parser`, `stream_renderer`.
"""
from __future__ import annotations

from ..canonical import Request
from .items import REDACTED_PREFIX, SIGNATURE_PREFIX
from .request import parse_request, render_request
from .response import parse_response, render_response
from .stream_parser import StreamParser
from .stream_renderer import StreamRenderer
from .usage_errors import error_from_payload, parse_error, parse_usage, render_error, render_stream_error, render_usage

NAME = "openai-responses"
PATH = "/v1/responses"
REQUEST_HEADERS = {"content-type": "application/json"}


def request_path(req: Request) -> str:
    return PATH


__all__ = [
    "NAME", "PATH", "REDACTED_PREFIX", "REQUEST_HEADERS", "SIGNATURE_PREFIX", "StreamParser", "StreamRenderer",
    "error_from_payload", "parse_error", "parse_request", "parse_response", "parse_usage", "render_error",
    "render_request", "render_response", "render_stream_error", "render_usage", "request_path",
]

# ---------------------------------------------------------------------------------------------
# The registry record (spoke.py states the contract; registry.py lists every record). Imported
# here, at the end, because the record holds this module: the package itself, named so that
# mypy checks it against spoke.Codec, and its wire facts.

from .. import openai_responses as _codec  # noqa: E402  (this package, complete by now)
from ..openai_chat import embeddings as _embeddings  # noqa: E402
from ..openai_chat import models as _models  # noqa: E402
from ..spoke import SpokeRecord, Surface  # noqa: E402
from . import count_tokens as _count_tokens  # noqa: E402
from . import wire  # noqa: E402

SPOKE = SpokeRecord(codec=_codec, wire=wire, surface=Surface(models=_models, count_tokens=_count_tokens, embeddings=_embeddings))
