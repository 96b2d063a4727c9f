"""Flows built from recorded provider traffic (../shared/fixtures) and a way to render them through
mitmproxy's own contentview entry point on either line (11: lines; 12: text)."""

from __future__ import annotations

import base64
import json

from mitmproxy import contentviews, http
from mitmproxy.test import tflow, tutils

from llmitm.protocols import Translation
from tests.harness import fixtures

RECORDED_TOOL_LOOP = "anthropic-messages/anthropic-sdk-python/tool-runner-stream-1.exchange.json"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(92)).decode()  # 100 bytes decoded
PATHS = {
    "openai-chat": "/v1/chat/completions",
    "openai-responses": "/v1/responses",
    "anthropic": "/v1/messages",
}


def recorded_request() -> dict:
    """The Anthropic SDK's second request of a recorded tool loop (a tool call and its result), with a
    system prompt and an image added so every part kind is present."""
    body = json.loads(fixtures.body(RECORDED_TOOL_LOOP))[1]["request"]["body"]
    body["system"] = "You are a weather assistant."
    body["messages"][0]["content"] = [
        {"type": "text", "text": "What is the weather in SF? Here is the sky:"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
    ]
    return body


def request_in(protocol: str) -> tuple[str, bytes]:
    """(path, body) of the recorded request as an app speaking `protocol` would send it."""
    body = recorded_request()
    if protocol == "anthropic":
        return PATHS[protocol], json.dumps(body).encode()
    up = Translation("anthropic", protocol).request(body)
    return up.path, up.body


def flow_for(path: str, request_body: bytes, response_body: bytes | None = None, content_type: str = "application/json",
             status: int = 200) -> http.HTTPFlow:
    req = tutils.treq(method=b"POST", host="api.example.com", port=443, path=path.encode(), content=request_body)
    resp: http.Response | bool = False
    if response_body is not None:
        resp = tutils.tresp(status_code=status, content=response_body)
        resp.headers["content-type"] = content_type
    return tflow.tflow(req=req, resp=resp)


def fixture_response(rel: str) -> tuple[bytes, str]:
    """(body, content type) of a recorded response, SSE framed as the provider sends it."""
    if rel.endswith((".sse", ".jsonl")):
        return b"".join(fixtures.sse_events(rel)), "text/event-stream"
    return fixtures.body(rel), "application/json"


def render(flow: http.HTTPFlow, message: http.Message, view_name: str = "llmitm") -> tuple[str, str]:
    """(name of the view mitmproxy chose, its text) through mitmproxy's own entry point."""
    if hasattr(contentviews, "prettify_message"):  # mitmproxy 12
        result = contentviews.prettify_message(message, flow, view_name)
        return result.view_name, result.text
    description, lines, error = contentviews.get_message_content_view(view_name, message, flow)
    assert error is None, error
    text = "\n".join("".join(t for _, t in line) for line in lines)
    return description, text
