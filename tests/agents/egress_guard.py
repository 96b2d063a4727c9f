"""A mitmproxy script the agent tests load beside llmitm: no agent traffic leaves this machine.

llmitm tunnels every host it does not intercept untouched (that is its job), so an agent that phones
home (telemetry, update checks, feature flags) would reach the internet through the test's proxy. This
script refuses any destination but the AI hosts llmitm intercepts and routes to the loopback fake, and
logs each refusal as `agent-egress refused: HOST` for the test to report.
"""

from __future__ import annotations

import logging

from mitmproxy import http

AI_HOSTS = frozenset({"api.anthropic.com", "api.openai.com", "generativelanguage.googleapis.com"})
log = logging.getLogger(__name__)


def _refuse(flow: http.HTTPFlow) -> None:
    log.warning("agent-egress refused: %s", flow.request.pretty_host)
    flow.response = http.Response.make(403, b"agent tests: no traffic beyond the AI hosts", {"content-type": "text/plain"})


def http_connect(flow: http.HTTPFlow) -> None:
    if flow.request.host not in AI_HOSTS:
        _refuse(flow)


def requestheaders(flow: http.HTTPFlow) -> None:
    # Plain-HTTP proxy requests name their destination here (a CONNECT was checked above).
    if flow.request.pretty_host not in AI_HOSTS and not flow.request.host.startswith("127."):
        _refuse(flow)
