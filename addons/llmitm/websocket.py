"""WebSocket upgrades to an AI host: answered at once with 426 Upgrade Required, in the app's protocol.

Codex CLI (0.17x) first tries the Responses WebSocket transport (`GET wss://api.openai.com/v1/responses`
with `Upgrade: websocket`; PROTOCOLS.md §6) and falls back to HTTPS after failures. llmitm makes pooled
calls with its own HTTP client (relay.py), which strips hop-by-hop headers and cannot carry an upgrade:
the upgrade went upstream as a plain GET with a pooled key, the upstream answered 404, and Codex tried
five times (about 6 s per run) before falling back. A 426 is HTTP's own "not over this protocol": Codex
falls back to `POST /v1/responses` at once, which llmitm routes, translates and pools as usual.

The request never leaves llmitm: no pooled key is spent on it and the app's own key goes nowhere.
Serving the WebSocket mode itself (each `response.create` message as one upstream call) is not done.
"""

from __future__ import annotations

from mitmproxy import http

from . import credentials
from .plan import protocol_of
from .protocols.errors import render_error

UPGRADE_REQUIRED = 426
MESSAGE = ("llmitm does not serve WebSocket transports to AI providers; use HTTPS "
           "(for the Responses API: POST /v1/responses with \"stream\": true)")


def is_upgrade(request: http.Request) -> bool:
    """A WebSocket handshake (RFC 6455 §4.1: `Upgrade: websocket`, any case)."""
    return "websocket" in request.headers.get("upgrade", "").lower()


def refuse(flow: http.HTTPFlow) -> None:
    """Answer the handshake with 426 in the protocol of the endpoint it names (POST's, as its HTTP
    twin), and mark the flow so mitmweb says why."""
    protocol = protocol_of("POST", flow.request.path)
    body = render_error(protocol, UPGRADE_REQUIRED, MESSAGE, code="websocket_not_supported")
    flow.response = http.Response.make(UPGRADE_REQUIRED, body, {"content-type": "application/json", "x-llmitm-error": "1"})
    credentials.redact(flow.request)
    flow.comment = f"llmitm: {UPGRADE_REQUIRED}: WebSocket upgrade refused; the app falls back to HTTPS"
