"""Anthropic Messages spoke (`POST /v1/messages`): requests, responses, stream events and errors
to and from the canonical model. Field reference: PROTOCOLS.md §1.3.

`request` parses a client's request, `request_render` renders one for an Anthropic upstream,
`response` non-stream bodies, stop reasons and usage, `stream` SSE events, `api_errors` error bodies."""

from __future__ import annotations

from ..canonical import Request
from .api_errors import NAME, STATUS_FOR_TYPE, error_from_payload, parse_error, render_error, render_stream_error
from .request import KNOWN_REQUEST_KEYS, REJECTED_FIELDS, parse_request
from .request_render import IMAGE_TYPES, render_request
from .response import STOP_IN, STOP_OUT, parse_response, parse_usage, render_response, render_usage
from .stream import StreamParser, StreamRenderer
from .wire import REQUIRED_HEADERS

PATH = "/v1/messages"
# Headers the upstream needs besides auth (the addon adds the key; anthropic-beta is forwarded by it).
REQUEST_HEADERS = {"content-type": "application/json", **REQUIRED_HEADERS}


def request_path(req: Request) -> str:
    return PATH


__all__ = [
    "IMAGE_TYPES", "KNOWN_REQUEST_KEYS", "NAME", "PATH", "REJECTED_FIELDS", "REQUEST_HEADERS", "STATUS_FOR_TYPE",
    "STOP_IN", "STOP_OUT", "StreamParser", "StreamRenderer", "error_from_payload", "parse_error", "parse_request",
    "parse_response", "parse_usage", "render_error", "render_request", "render_response", "render_stream_error",
    "render_usage", "request_path",
]


# ---------------------------------------------------------------------------------------------
# The registry record (spoke.py states the contract; registry.py lists every record). Imported
# here, at the end, because the record holds this module: the package itself, named so that
# mypy checks it against spoke.Codec, and its wire facts.

from .. import anthropic as _codec  # noqa: E402  (this package, complete by now)
from ..spoke import SpokeRecord, Surface  # noqa: E402
from . import count_tokens as _count_tokens  # noqa: E402
from . import models as _models  # noqa: E402
from . import wire  # noqa: E402

SPOKE = SpokeRecord(codec=_codec, wire=wire, surface=Surface(models=_models, count_tokens=_count_tokens))
