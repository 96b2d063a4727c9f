"""Per-flow state between hooks: where the request went, with which key, through which translation."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from mitmproxy import http

from .endpoints import FALLBACK_PROTOCOL
from .flowinfo import FlowRecord
from .metering import UsageMeter
from .protocols.errors import render_error
from .protocols.registry import REGISTRY
from .routing import RouteDecision

log = logging.getLogger(__name__)


class Refused(Exception):
    """A request llmitm answers itself with an error in the client's protocol."""

    def __init__(self, status: int, message: str, param: str | None = None):
        super().__init__(message)
        self.status, self.param = status, param


def upstream_url(base_url: str, path: str) -> str:
    """base_url + the app's path; a base_url ending in /v1 (as SDK base URLs do) is not doubled."""
    parts = urlsplit(base_url)
    prefix = parts.path.rstrip("/")
    for version in ("/v1", "/v1beta", "/v1alpha"):
        if prefix.endswith(version) and (path == version or path.startswith(version + "/")):
            prefix = prefix[: -len(version)]
            break
    return f"{parts.scheme}://{parts.netloc}{prefix}{path}"


@dataclass
class Exchange:
    record: FlowRecord
    client_protocol: str | None
    upstream_protocol: str
    decision: RouteDecision
    translation: Any = None  # protocols.Translation when client and upstream protocols differ
    job: Any = None  # relay.RelayJob when the provider has a pool
    upstream_path: str = ""  # that URL's path relative to the provider's base_url (for fallbacks)
    client_request: Any = None  # the app's own request, kept for mitmweb when it is translated
    upstream_response: Any = None  # the upstream's status and headers before translation (mitmweb)
    usage: tuple[int, int] = (0, 0)  # (input, output) tokens, when known
    finished: bool = field(default=False)
    meter: UsageMeter = field(init=False)

    def __post_init__(self) -> None:
        self.meter = UsageMeter(self.client_protocol if self.client_protocol == self.upstream_protocol else None)

    @property
    def lease(self) -> Any:
        return self.job.lease if self.job is not None else None

    def relayed(self, flow: http.HTTPFlow) -> None:
        """Copy what the relay did onto the flow: which key served, what was retried, the real URL."""
        job = self.job
        if job is None:
            return
        self.record.attempts = list(job.attempts)
        if job.served is not None:
            self.record.provider = job.served.provider
            flow.request.url = job.served.url
        elif self.upstream_path:  # nothing served: show where the main provider was to be called
            flow.request.url = upstream_url(self.decision.provider.base_url, self.upstream_path)
        if job.lease is not None:
            self.record.key_id, self.record.key_masked = job.lease.key_id, job.lease.masked

    def retarget(self, flow: http.HTTPFlow, path: str) -> None:
        self.upstream_path = path
        flow.request.url = upstream_url(self.decision.provider.base_url, path)

    def start_translation(self, flow: http.HTTPFlow, body: dict, keep_client_request: bool) -> None:
        from .protocols import Translation, TranslationError

        assert self.client_protocol is not None
        if keep_client_request:
            self.client_request = flow.request.copy()
        provider = self.decision.provider
        self.translation = Translation(self.client_protocol, self.upstream_protocol,
                                       max_tokens_default=provider.max_tokens_default, local_model=provider.local_model)
        try:
            upstream = self.translation.request(body, upstream_model=self.decision.upstream_model, client_path=flow.request.path)
        except TranslationError as e:
            raise Refused(e.status, e.message, e.param) from None
        self.record.translated = True
        self.record.warnings.extend(self.translation.warnings)
        self.retarget(flow, upstream.path)
        # Headers of the app's protocol mean nothing (or something else) to the upstream's.
        for name in REGISTRY.foreign_vendor_headers(self.upstream_protocol, list(flow.request.headers)):
            flow.request.headers.pop(name, None)
        for name, value in upstream.headers.items():
            flow.request.headers[name] = value
        # The stream translator reads plain bytes; compressed SSE would need a decoder per chunk.
        flow.request.headers["accept-encoding"] = "identity"
        flow.request.headers.pop("content-encoding", None)  # the translated body goes out plain
        flow.request.content = upstream.body

    def translate_whole(self, flow: http.HTTPFlow, raw: bytes) -> None:
        """A buffered upstream answer (any status) into the client's protocol."""
        response = flow.response
        assert response is not None and self.translation is not None
        # A client that asked for a stream gets one even when the upstream answered in one piece.
        as_stream = bool(self.translation.canonical_request and self.translation.canonical_request.stream)
        try:
            status, body = self.translation.response(
                response.status_code, raw, as_stream=as_stream, content_encoding=response.headers.get("content-encoding"))
        except Exception as e:  # never let a translation bug pass the untranslated body through
            log.exception("llmitm: translating the response of %s failed", flow.request.pretty_url)
            as_stream = False
            message = f"llmitm could not translate the upstream response: {e}"
            status, body = 502, render_error(self.client_protocol or FALLBACK_PROTOCOL, 502, message)
        response.status_code = status
        response.headers.pop("content-encoding", None)
        response.headers["content-type"] = "text/event-stream" if as_stream and 200 <= status < 300 else "application/json"
        response.content = body

    def finish(self, flow: http.HTTPFlow) -> None:
        """Return the key lease exactly once, with what the upstream said about it."""
        if self.finished:
            return
        self.finished = True
        if self.translation is not None:  # streams may add warnings after the request was sent
            self.record.warnings = list(self.translation.warnings)
        usage = self.translation.usage if self.translation is not None else self.meter.usage
        if usage is not None:
            self.usage = (usage.input_total, usage.output_total)
            self.record.usage = {"input": usage.input_total, "cached": usage.cached_read, "output": usage.output_total}
        lease = self.lease
        if lease is None or lease.released:
            return
        response = flow.response
        if flow.error is not None or response is None:
            lease.release(status=None, error=flow.error.msg if flow.error else "no response")
        else:
            lease.release(status=response.status_code, headers=dict(response.headers),
                          input_tokens=self.usage[0], output_tokens=self.usage[1])
