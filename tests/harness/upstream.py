"""A fake provider on loopback that replays recorded wire data and records what it received.

It stands in for api.openai.com / api.anthropic.com / Gemini, which tests cannot reach. Tests set
`upstream.script` to decide each reply (fixture, status, delay between events, connection reset);
the default replays a recorded response matching the path the request arrived on.
"""

from __future__ import annotations

import base64
import gzip
import json
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import fixtures

DEFAULT_FIXTURES = {
    ("openai-chat", False): "openai-chat/vercel-ai/openai-text.json",
    ("openai-chat", True): "openai-chat/openai-python/stream-tool-call-pydantic.sse",
    ("anthropic", False): "anthropic-messages/vercel-ai/anthropic-text.json",
    ("anthropic", True): "anthropic-messages/prism/stream-text-basic.sse",
    ("openai-responses", False): "openai-responses/prism/text-basic-2.json",
    ("openai-responses", True): "openai-responses/prism/stream-text-basic.sse",
    ("gemini", False): "gemini/vercel-ai/google-text.json",
    ("gemini", True): "gemini/prism/stream-text-followup.sse",
}


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def key(self) -> str | None:
        """The credential the upstream saw, in whichever carrier."""
        auth = self.headers.get("authorization")
        if auth and auth.lower().startswith("bearer "):
            return auth[7:]
        return self.headers.get("x-api-key") or self.headers.get("x-goog-api-key")


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    events: list[bytes] | None = None  # SSE events, sent one by one
    delay: float = 0.0  # seconds between events
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False  # close the connection without answering
    hold: float = 0.0  # wait before answering at all
    abort_after: int | None = None  # send this many events, then drop the connection mid-stream
    gzip: bool = False  # compress the body (whatever the request's accept-encoding said)

    @classmethod
    def fixture(cls, rel: str, **kw) -> Reply:
        if rel.endswith((".sse", ".jsonl")):
            return cls(events=fixtures.sse_events(rel), **kw)
        return cls(body=fixtures.body(rel), **kw)

    @classmethod
    def json(cls, status: int, obj: dict, **kw) -> Reply:
        return cls(status=status, body=json.dumps(obj).encode(), **kw)


def protocol_of(path: str) -> str:
    bare = path.split("?", 1)[0]
    if bare.endswith("/chat/completions"):
        return "openai-chat"
    if bare.endswith("/responses"):
        return "openai-responses"
    if ":generateContent" in bare or ":streamGenerateContent" in bare:
        return "gemini"
    return "anthropic"


def fake_token_count(payload: object) -> int:
    """The fake's count of a prompt's tokens: one per 4 characters of its JSON (deterministic, so a
    test can tell an upstream's count from llmitm's own estimate, which counts the app's body)."""
    return max(1, len(json.dumps(payload, sort_keys=True)) // 4) + 1000


def fake_vector(text: str, dimensions: int) -> list[float]:
    """A deterministic unit-scale vector for `text` (exactly representable in float32)."""
    seed = sum(text.encode()) or 1
    return [((seed * (i + 1)) % 17 - 8) / 8 for i in range(dimensions)]


FAKE_DIMENSIONS = 8  # a fake model's native embedding size


def _anthropic_invalid(message: str) -> Reply:
    return Reply.json(400, {"type": "error", "error": {"type": "invalid_request_error", "message": message}})


def _openai_invalid(message: str, param: str | None = None) -> Reply:
    return Reply.json(400, {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}})


def _gemini_invalid(message: str) -> Reply:
    return Reply.json(400, {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}})


def anthropic_count_tokens(req: Received) -> Reply:
    """POST /v1/messages/count_tokens (PROTOCOLS.md §1.3): only the prompt fields; `{input_tokens}`."""
    body = req.json
    extra = sorted(set(body) - {"model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers"})
    if extra:
        return _anthropic_invalid(f"{extra[0]}: Extra inputs are not permitted")
    if not isinstance(body.get("model"), str) or not isinstance(body.get("messages"), list):
        return _anthropic_invalid("model and messages: Field required")
    return Reply.json(200, {"input_tokens": fake_token_count([body.get("system"), body["messages"], body.get("tools")])})


def gemini_count_tokens(req: Received) -> Reply:
    """models/{m}:countTokens (PROTOCOLS.md §1.4): `{contents}` or `{generateContentRequest}`, not both."""
    body = req.json
    inner = body.get("generateContentRequest")
    if inner is not None and "contents" in body:
        return _gemini_invalid("contents and generateContentRequest cannot both be set")
    prompt = inner if inner is not None else body
    if not isinstance(prompt.get("contents"), list):
        return _gemini_invalid("* CountTokensRequest.contents: contents is not specified")
    if inner is not None and not str(inner.get("model", "")).startswith("models/"):
        return _gemini_invalid("* GenerateContentRequest.model: unexpected model name format")
    n = fake_token_count([prompt.get("systemInstruction"), prompt["contents"], prompt.get("tools")])
    return Reply.json(200, {"totalTokens": n, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": n}]})


def responses_input_tokens(req: Received) -> Reply:
    """POST /v1/responses/input_tokens (PROTOCOLS.md §1.2): `{object: "response.input_tokens", input_tokens}`."""
    body = req.json
    known = {"model", "input", "instructions", "tools", "tool_choice", "reasoning", "text", "parallel_tool_calls",
             "conversation", "previous_response_id", "truncation"}
    extra = sorted(set(body) - known)
    if extra:
        return _openai_invalid(f"Unknown parameter: '{extra[0]}'.", extra[0])
    n = fake_token_count([body.get("instructions"), body.get("input"), body.get("tools")])
    return Reply.json(200, {"object": "response.input_tokens", "input_tokens": n})


def openai_embeddings(req: Received) -> Reply:
    """POST /v1/embeddings (PROTOCOLS.md §1.1; openai.types.CreateEmbeddingResponse)."""
    body = req.json
    raw = body.get("input")
    inputs = [raw] if isinstance(raw, str) else raw
    if not isinstance(inputs, list) or not inputs or not all(isinstance(t, str) and t for t in inputs):
        return _openai_invalid("'input' must be a non-empty string or array of strings", "input")
    if body.get("encoding_format", "float") not in ("float", "base64"):
        return _openai_invalid("invalid encoding_format", "encoding_format")
    dimensions = body.get("dimensions") or FAKE_DIMENSIONS
    data = []
    for i, text in enumerate(inputs):
        vector: object = fake_vector(text, dimensions)
        if body.get("encoding_format") == "base64":
            vector = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
        data.append({"object": "embedding", "index": i, "embedding": vector})
    tokens = sum(len(t) // 4 + 1 for t in inputs)
    return Reply.json(200, {"object": "list", "data": data, "model": body.get("model"),
                            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


def gemini_embeddings(req: Received) -> Reply:
    """models/{m}:embedContent → `{embedding: {values}}`; :batchEmbedContents → `{embeddings: [...]}`,
    each request naming the path's model (PROTOCOLS.md §1.4)."""
    body, bare = req.json, req.path.split("?", 1)[0]
    model = "models/" + bare.rsplit("/models/", 1)[1].split(":", 1)[0]
    batch = bare.endswith(":batchEmbedContents")
    items = body.get("requests") if batch else [body]
    if not isinstance(items, list) or not items:
        return _gemini_invalid("* BatchEmbedContentsRequest.requests: requests is empty")
    vectors = []
    for item in items:
        if batch and item.get("model") != model:
            return _gemini_invalid(f"Model name of a request ({item.get('model')}) does not match the batch's ({model})")
        parts = (item.get("content") or {}).get("parts") or []
        text = "".join(p.get("text", "") for p in parts)
        if not text:
            return _gemini_invalid("* EmbedContentRequest.content: contents is not specified")
        vectors.append({"values": fake_vector(text, item.get("outputDimensionality") or FAKE_DIMENSIONS)})
    return Reply.json(200, {"embeddings": vectors} if batch else {"embedding": vectors[0]})


# The limits the fake states for every model: unlike any real model's, so a test can tell the
# upstream's metadata from llmitm's price-table fallback.
FAKE_MODEL_LIMITS = (123456, 4321)


def model_info(req: Received) -> Reply:
    """GET a model's info in the protocol the path and headers say (PROTOCOLS.md §1.1, §1.3, §1.4)."""
    bare = req.path.split("?", 1)[0]
    name = bare.rsplit("/models/", 1)[1]
    limit_in, limit_out = FAKE_MODEL_LIMITS
    if "/v1beta/" in bare:
        return Reply.json(200, {"name": f"models/{name}", "version": "001", "displayName": name,
                                "inputTokenLimit": limit_in, "outputTokenLimit": limit_out,
                                "supportedGenerationMethods": ["generateContent", "countTokens"]})
    if "anthropic-version" in req.headers:
        return Reply.json(200, {"type": "model", "id": name, "display_name": name, "created_at": "2025-09-29T00:00:00Z",
                                "max_input_tokens": limit_in, "max_tokens": limit_out})
    return Reply.json(200, {"id": name, "object": "model", "created": 1715367049, "owned_by": "system"})


# The endpoints beside generation, by the end of the path.
SIDE_ENDPOINTS: dict[str, Callable[[Received], Reply]] = {
    "/v1/messages/count_tokens": anthropic_count_tokens,
    ":countTokens": gemini_count_tokens,
    "/responses/input_tokens": responses_input_tokens,
    "/embeddings": openai_embeddings,
    ":embedContent": gemini_embeddings,
    ":batchEmbedContents": gemini_embeddings,
}


def default_script(req: Received) -> Reply:
    bare = req.path.split("?", 1)[0]
    if req.method == "GET" and "/models/" in bare and ":" not in bare.rsplit("/", 1)[1]:
        return model_info(req)
    for suffix, answer in SIDE_ENDPOINTS.items():
        if bare.endswith(suffix):
            try:
                return answer(req)
            except (ValueError, AttributeError, TypeError):
                return Reply.json(400, {"error": {"message": "malformed request"}})
    protocol = protocol_of(req.path)
    if protocol == "gemini":
        stream = ":streamGenerateContent" in req.path
    else:
        try:
            stream = bool(req.json.get("stream"))
        except ValueError:
            return Reply.json(400, {"error": {"message": "bad json"}})
    return Reply.fixture(DEFAULT_FIXTURES[(protocol, stream)])


def key_rate_limited(key: str, retry_after: int, message: str = "x"):
    """A script under which the pooled `key` gets OpenAI's per-key 429 (`rate_limit_exceeded` with a
    Retry-After); every other key is answered as default_script answers."""

    def script(req: Received) -> Reply:
        if req.key == key:
            return Reply.json(429, {"error": {"message": message, "type": "requests", "code": "rate_limit_exceeded"}},
                              headers={"retry-after": str(retry_after)})
        return default_script(req)

    return script


class FakeUpstream:
    def __init__(self) -> None:
        self.script: Callable[[Received], Reply] = default_script
        self.received: list[Received] = []
        self.last_event_sent_at: float = 0.0
        self.in_flight: dict[str | None, int] = {}
        self.max_in_flight: dict[str | None, int] = {}
        self._lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def setup(self) -> None:
                super().setup()
                # Headers and body go out as separate writes: without NODELAY, Nagle and the peer's
                # delayed ACK add ~40 ms to every response.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
                upstream._enter(req)
                try:
                    upstream._answer(self, upstream.script(req))
                finally:
                    upstream._leave(req)

            do_GET = do_POST = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.script = default_script
            self.received.clear()
            self.max_in_flight.clear()

    def _enter(self, req: Received) -> None:
        with self._lock:
            self.received.append(req)
            n = self.in_flight.get(req.key, 0) + 1
            self.in_flight[req.key] = n
            self.max_in_flight[req.key] = max(n, self.max_in_flight.get(req.key, 0))

    def _leave(self, req: Received) -> None:
        with self._lock:
            self.in_flight[req.key] -= 1

    def _answer(self, h: BaseHTTPRequestHandler, reply: Reply) -> None:
        if reply.hold:
            time.sleep(reply.hold)
        if reply.reset:
            # RST instead of FIN: the proxy sees a connection error, not a clean close.
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            h.close_connection = True
            h.connection.close()
            return
        h.send_response(reply.status)
        for k, v in reply.headers.items():
            h.send_header(k, v)
        if reply.gzip:
            h.send_header("content-encoding", "gzip")
        if reply.events is None:
            body = gzip.compress(reply.body) if reply.gzip else reply.body
            h.send_header("content-type", reply.headers.get("content-type", "application/json"))
            h.send_header("content-length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
            return
        h.send_header("content-type", "text/event-stream")
        h.send_header("transfer-encoding", "chunked")
        h.end_headers()
        compressor = zlib.compressobj(wbits=31) if reply.gzip else None
        for i, event in enumerate(reply.events):
            if i and reply.delay:
                time.sleep(reply.delay)
            if reply.abort_after is not None and i >= reply.abort_after:
                h.close_connection = True
                h.connection.shutdown(socket.SHUT_RDWR)
                return
            if compressor is not None:
                event = compressor.compress(event) + compressor.flush(zlib.Z_SYNC_FLUSH)
            h.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            h.wfile.flush()
        if compressor is not None:
            tail = compressor.flush()
            h.wfile.write(b"%x\r\n%s\r\n" % (len(tail), tail))
        self.last_event_sent_at = time.monotonic()
        h.wfile.write(b"0\r\n\r\n")
        h.wfile.flush()
