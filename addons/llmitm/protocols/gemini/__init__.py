"""Google Gemini API spoke (`POST /v1beta/models/{model}:generateContent` and
`…:streamGenerateContent?alt=sse`): requests, responses, stream chunks and errors to and from the
canonical model. Field reference: PROTOCOLS.md §1.4.

Gemini puts the model and stream-or-not in the path (`Context.client_path`), not in the body. Its JSON
parser accepts both lowerCamel and snake_case field names, and the google-genai SDK sends a mix of both
(`parameters_json_schema`, `inlineData.mime_type`, `thinkingConfig.thinking_budget`): every field is read
in either spelling.

Identifiers and signatures carried through foreign clients:
- A function call without an id gets a synthesized one (`gcall_<responseId>_<n>`), removed again when
  the call comes back in history.
- A function call's `thoughtSignature` (Gemini 3 refuses a tool loop without it) rides in the tool-call id
  after `__thought__` (LiteLLM's convention) and is put back on the call when the id returns.
- Reasoning signed by another provider (Anthropic) reaches a Gemini client as a thought part whose
  `thoughtSignature` is `base64("llmitm:" + JSON)`; it is recognised and restored when it comes back.
  The reasoning before a function call also rides, whole, on that call's `thoughtSignature`: Gemini
  clients keep a signature on the part it came with, and Gemini CLI never sends thought parts back.

Modules: `fields` (spellings, path), `signatures` (ids, foreign signatures), `schema` (OpenAPI Schema and
JSON Schema), `usage_errors`, `parts` (media, function responses), `contents` (the conversation both
ways), `request`, `response`, `partial_args` (streamed arguments), `stream`.
"""

from __future__ import annotations

from ..canonical import Request
from .fields import parse_path
from .partial_args import ArgsWriter
from .request import parse_request, render_request
from .response import FINISH_OUT, parse_response, render_response
from .schema import openapi_to_json_schema, standard_json_schema
from .signatures import DUMMY_SIGNATURE, SYNTH_ID_PREFIX, THOUGHT_SEPARATOR, make_tool_id, split_tool_id
from .stream import StreamParser, StreamRenderer
from .usage_errors import (
    STATUS_FOR_RPC,
    error_body,
    parse_error,
    parse_usage,
    render_error,
    render_stream_error,
    render_usage,
)

NAME = "gemini"
REQUEST_HEADERS = {"content-type": "application/json"}


def request_path(req: Request) -> str:
    model = req.model.removeprefix("models/")
    if req.stream:
        return f"/v1beta/models/{model}:streamGenerateContent?alt=sse"
    return f"/v1beta/models/{model}:generateContent"


__all__ = [
    "DUMMY_SIGNATURE", "FINISH_OUT", "NAME", "REQUEST_HEADERS", "STATUS_FOR_RPC", "SYNTH_ID_PREFIX", "THOUGHT_SEPARATOR",
    "ArgsWriter", "StreamParser", "StreamRenderer", "error_body", "make_tool_id", "openapi_to_json_schema",
    "parse_error", "parse_path", "parse_request", "parse_response", "parse_usage", "render_error", "render_request",
    "render_response", "render_stream_error", "render_usage", "request_path", "split_tool_id", "standard_json_schema",
]

# ---------------------------------------------------------------------------------------------
# The registry record (spoke.py states the contract; registry.py lists every record). Imported
# here, at the end, because the record holds this module: the package itself, named so that
# mypy checks it against spoke.Codec, and its wire facts.

from .. import gemini as _codec  # noqa: E402  (this package, complete by now)
from ..spoke import SpokeRecord, Surface  # noqa: E402
from . import count_tokens as _count_tokens  # noqa: E402
from . import embeddings as _embeddings  # noqa: E402
from . import models as _models  # noqa: E402
from . import wire  # noqa: E402

SPOKE = SpokeRecord(codec=_codec, wire=wire, surface=Surface(models=_models, count_tokens=_count_tokens, embeddings=_embeddings))
