"""Per-flow state between hooks, and the flow edits that carry out a plan (plan.py).

One `Exchange` per flow the planner forwards: created in `request`, consulted in `responseheaders`,
finished (key lease returned, flow annotated) in `response` or `error`. One `PassThroughCall` per
intercepted flow no route serves: sent where the app sent it, restored for display in
`responseheaders` (or `error`).

Every request llmitm lets out goes through the relay's own client (relay.py), pooled or not: were
mitmproxy to send it, an upstream it cannot reach would get the app mitmproxy's own HTML 502 page,
which no hook can replace; through the relay it is a 502 with Retry-After in the app's protocol.
"""

from __future__ import annotations

import inspect
import ipaddress
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

from mitmproxy import ctx, http

from . import credentials, flowinfo, sideflows
from .clients import PIN_HEADER
from .endpoints import FALLBACK_PROTOCOL
from .flowinfo import FlowRecord
from .metering import UsageMeter
from .observe.observer import client_label
from .plan import Forward, LocalAnswer, PassThrough, Refuse, protocol_of, upstream_url
from .protocols import Translation
from .protocols.canonical import MalformedUpstream
from .protocols.errors import render_error
from .relay import HOP_BY_HOP, Relay, RelayJob, Upstream, upstreams_for
from .streaming import PassTap, StreamTap, sse_headers

log = logging.getLogger(__name__)

ERROR_HEADERS = {"content-type": "application/json", "x-llmitm-error": "1"}

__all__ = ["Bodies", "Exchange", "PIN_HEADER", "PassThroughCall", "answer", "upstream_url"]


def answer(flow: http.HTTPFlow, plan: Refuse | LocalAnswer) -> None:
    """Carry out a plan that sends nothing upstream."""
    credentials.redact(flow.request)  # answered here, but the app's key is still not for display
    if isinstance(plan, LocalAnswer):
        flow.response = http.Response.make(plan.status, plan.body, {"content-type": "application/json"})
        flowinfo.publish(flow, plan.record)
        return
    flow.response = http.Response.make(plan.status, plan.body(), ERROR_HEADERS)
    if plan.retry_after is not None:
        flow.response.headers["retry-after"] = str(max(1, math.ceil(plan.retry_after)))
    flow.comment = f"llmitm: {plan.status}: {plan.message}"


@dataclass
class Bodies:
    """The four bodies of one AI exchange, for mitmweb (`sideflows.publish_bodies` stores them on the
    flow where the llmitm views read them side by side).

    `app_request`: what the app sent (content-encoding undone); `upstream_request`: what went upstream
    (the translation, or the app's bytes with the model rewritten); `upstream_response`: the upstream's
    answer as received (for a translated stream, only when kept for a view); `app_response`: what the
    app got. All are references to bytes the flow holds anyway: keeping them costs no copy. The
    upstream's status, content type and content encoding say how to read its answer (no other header
    is kept: headers may carry secrets)."""

    app_request: bytes | None = None
    upstream_request: bytes | None = None
    upstream_response: bytes | None = None
    app_response: bytes | None = None
    upstream_status: int | None = None
    upstream_content_type: str | None = None
    upstream_content_encoding: str | None = None
    app_host: str | None = None  # the host the app called (the route matched it)
    app_path: str | None = None  # the path the app called (Gemini names model and streaming there)

    def note_upstream(self, response: http.Response) -> None:
        """The upstream's status line facts, before llmitm rewrites the response for the app."""
        self.upstream_status = response.status_code
        self.upstream_content_type = response.headers.get("content-type")
        self.upstream_content_encoding = response.headers.get("content-encoding")


@dataclass
class Exchange:
    plan: Forward
    job: RelayJob | None = None  # when the provider has a pool
    client_request: http.Request | None = None  # the app's own request, kept for mitmweb when translated
    upstream_response: http.Response | None = None  # the upstream's status and headers before translation
    bodies: Bodies = field(default_factory=Bodies)
    usage: tuple[int, int] = (0, 0)  # (input, output) tokens, when known
    finished: bool = False
    meter: UsageMeter = field(init=False)
    # For observe/ (usage ledger, metrics, traces): who asked, and when things happened (wall clock).
    client_name: str | None = None  # the configured client that sent it, once clients are identified
    client_fingerprint: str | None = None  # else the app credential's fingerprint (observer.client_label)
    sent_at: float = 0.0  # when llmitm was done with the request
    first_chunk_at: float | None = None  # the first streamed chunk of the answer
    overhead: float | None = None  # seconds llmitm itself added before the answer's headers went out

    def __post_init__(self) -> None:
        same = self.plan.client_protocol == self.plan.upstream_protocol
        self.meter = UsageMeter(self.plan.client_protocol if same else None)

    @property
    def record(self) -> flowinfo.FlowRecord:
        return self.plan.record

    @property
    def client_protocol(self) -> str | None:
        return self.plan.client_protocol

    @property
    def translation(self) -> Translation | None:
        return self.plan.translation

    @property
    def lease(self) -> Any:
        return self.job.lease if self.job is not None else None

    # -- request ------------------------------------------------------------------------------

    async def send(self, flow: http.HTTPFlow, relay: Relay, pools: Any, config: Any, keep_client_request: bool) -> None:
        """Rewrite the flow as planned, then the credential, and hand the call to the relay, which
        adds the provider's configured headers: pooled calls get a key from the pool (drawn and
        retried by the relay); keyless ones keep the app's own credential, in the upstream's carrier."""
        plan, request = self.plan, flow.request
        self.bodies.app_request = request.get_content(strict=False)
        self.bodies.app_host, self.bodies.app_path = request.pretty_host, request.path
        if keep_client_request and plan.translation is not None:
            self.client_request = request.copy()
        for name in plan.drop_headers:
            request.headers.pop(name, None)
        for name, value in plan.set_headers.items():
            request.headers[name] = value
        request.url = plan.url
        if plan.body is not None:
            request.content = plan.body
        self.bodies.upstream_request = plan.body if plan.body is not None else self.bodies.app_request
        pin = request.headers.pop(PIN_HEADER, None)
        client_secret = credentials.take_client_credential(request)
        self.client_fingerprint = client_label(client_secret)
        if plan.pooled:
            # The relay draws the key and retries on another; the flow never holds the pooled key.
            self.record.credential = "pooled"
        elif client_secret and plan.forward_app_credential:
            credentials.put_credential(request, plan.upstream_protocol, client_secret)
        candidates, warnings = upstreams_for(plan, config, pools)
        if not plan.pooled:
            candidates[0].verify_tls = keyless_tls_verified()
        self.record.warnings.extend(warnings)
        self.job = RelayJob(candidates, pin=pin, max_response_bytes=config.max_response_bytes)
        if plan.streams:
            request.url = await relay.submit(self.job)
        else:
            await self._fetch(flow, relay)
        flowinfo.publish(flow, self.record)
        self.sent_at = time.time()

    async def _fetch(self, flow: http.HTTPFlow, relay: Relay) -> None:
        """A request that does not stream: llmitm calls upstream itself and answers the flow whole."""
        assert self.job is not None
        headers = [(k, v) for k, v in flow.request.headers.items(multi=True) if k.lower() not in HOP_BY_HOP]
        reply = await relay.fetch(self.job, flow.request.method, headers, flow.request.raw_content or b"")
        response = http.Response.make(reply.status, b"", http.Headers([(k.encode(), v.encode()) for k, v in reply.headers]))
        response.raw_content = reply.body  # as the upstream sent it (content-encoding kept)
        response.headers["content-length"] = str(len(reply.body))
        flow.response = response
        self.relayed(flow)

    def redact(self, flow: http.HTTPFlow) -> None:
        """The request is on the wire: no credential may remain readable (configured headers are the
        relay's alone: the flow never holds them)."""
        credentials.redact(flow.request)

    # -- response -----------------------------------------------------------------------------

    def on_response_headers(self, flow: http.HTTPFlow) -> None:
        """Choose how the body travels: passed through or translated, streamed or buffered."""
        self.redact(flow)
        self.relayed(flow)
        response = flow.response
        assert response is not None
        self.bodies.note_upstream(response)
        is_sse = response.headers.get("content-type", "").startswith("text/event-stream")
        if self.translation is not None:
            if self.client_request is not None:
                self.upstream_response = response.copy()
            if is_sse and 200 <= response.status_code < 300:
                keep_raw = self.upstream_response is not None
                encoding = response.headers.get("content-encoding")
                sse_headers(flow)  # drops content-encoding: the translated stream goes out plain
                translator = self.translation.stream(content_encoding=encoding)
                response.stream = StreamTap(flow, self, translator, keep_raw)
            else:
                response.stream = False  # translated whole in `on_response`
        elif is_sse:
            self.meter.content_encoding = response.headers.get("content-encoding")
            response.stream = StreamTap(flow, self, None)

    def on_response(self, flow: http.HTTPFlow) -> None:
        response = flow.response
        assert response is not None
        tap = response.stream if isinstance(response.stream, StreamTap) else None
        if self.bodies.upstream_status is None:  # the relay fetched it whole: no responseheaders hook
            self.bodies.note_upstream(response)
        upstream_body = b""
        if tap is not None:
            upstream_body = b"".join(tap.raw) if tap.raw is not None else b""
            self.bodies.upstream_response = upstream_body if tap.raw is not None else None
            self.bodies.app_response = b"".join(tap.sent)
        elif self.translation is not None:
            upstream_body = response.raw_content or b""
            self.translate_whole(flow, upstream_body)
        else:
            self.bodies.upstream_response = response.raw_content
            try:
                self.meter.read_body(response.get_content() or b"")
            except ValueError:  # undecodable content-encoding: passed on as it came
                pass
        self.finish(flow)
        flowinfo.publish(flow, self.record)
        if self.upstream_response is not None and self.client_request is not None:
            sideflows.publish_upstream_side(flow, self.client_request, self.upstream_response, upstream_body)
        sideflows.publish_bodies(flow, self.bodies, self.plan)

    def on_error(self, flow: http.HTTPFlow, relay: Relay) -> None:
        self.redact(flow)
        if self.job is not None:
            relay.forget(flow.request.url)
            self.relayed(flow)
        self.record.error = flow.error.msg if flow.error else "unknown error"
        self.finish(flow)
        flowinfo.publish(flow, self.record)

    def relayed(self, flow: http.HTTPFlow) -> None:
        """Copy what the relay did onto the flow: which key served, what was retried, the real URL."""
        job = self.job
        if job is None:
            return
        self.record.attempts = list(job.attempts)
        if job.served is not None:
            self.record.provider = job.served.provider
            flow.request.url = job.served.url
        elif self.plan.upstream_path:  # nothing served: show where the main provider was to be called
            flow.request.url = upstream_url(self.plan.decision.provider.base_url, self.plan.upstream_path)
        if job.served is None and not self.plan.pooled and job.attempts:
            self.record.error = job.attempts[-1]  # a keyless call's one attempt: why no answer came
        if job.lease is not None:
            self.record.key_id, self.record.key_masked = job.lease.key_id, job.lease.masked

    def translate_whole(self, flow: http.HTTPFlow, raw: bytes) -> None:
        """A buffered upstream answer (any status) into the client's protocol."""
        response = flow.response
        assert response is not None and self.translation is not None
        self.bodies.upstream_response = raw
        # A client that asked for a stream gets one even when the upstream answered in one piece.
        as_stream = bool(self.translation.canonical_request and self.translation.canonical_request.stream)
        client = self.client_protocol or FALLBACK_PROTOCOL
        try:
            status, body = self.translation.response(
                response.status_code, raw, as_stream=as_stream, content_encoding=response.headers.get("content-encoding"))
        except MalformedUpstream as e:  # the provider's fault: say what it sent
            as_stream = False
            status, body = e.status, render_error(client, e.status, str(e))
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
        response = flow.response
        if response is not None and self.bodies.app_response is None and not response.stream:
            self.bodies.app_response = response.raw_content
        lease = self.lease
        if lease is None or lease.released:
            return
        if flow.error is not None or response is None:
            # Between the relay and the app only the app can go away (the relay ends a broken upstream
            # stream cleanly itself): not the key's fault, so its health is not judged.
            release_aborted(lease)
        else:
            lease.release(status=response.status_code, headers=header_map(response.headers),
                          input_tokens=self.usage[0], output_tokens=self.usage[1])

    def abandon(self, relay: Relay, flow: http.HTTPFlow) -> None:
        """After a bug in llmitm: forget the relay job and free the key without judging it."""
        self.finished = True
        if self.job is not None:
            relay.forget(flow.request.url)
        lease = self.lease
        if lease is not None and not lease.released:
            release_aborted(lease)


def release_aborted(lease: Any) -> None:
    """Free a lease whose attempt the app abandoned. The pool's `aborted=True` says so where the pool
    knows it; otherwise status and error both None free the slot without judging the key."""
    if "aborted" in inspect.signature(lease.release).parameters:
        lease.release(status=None, error=None, aborted=True)
    else:
        lease.release(status=None, error=None)


@dataclass
class PassThroughCall:
    """An intercepted request no route serves: it goes where the app sent it, headers, credential and
    body untouched, but through the relay's client (keyless, one attempt) and back through its
    loopback server, whole or streamed (see the module docstring for why). The flow points at the
    relay until the answer's headers are in; then it shows the app's URL again (credentials masked)."""

    record: FlowRecord
    job: RelayJob
    url: str  # where mitmproxy itself would have sent it
    host_header: str | None  # the app's Host (or :authority), sent and shown as it was

    @classmethod
    async def send(cls, flow: http.HTTPFlow, plan: PassThrough, relay: Relay, config: Any) -> PassThroughCall:
        request = flow.request
        protocol = plan.record.client_protocol or protocol_of(request.method, request.path)
        target = Upstream(request.pretty_host, protocol, request.url, pool=None, verify_tls=keyless_tls_verified())
        if request.host_header:
            target.headers["Host"] = request.host_header
        if request.scheme == "https" and _is_ip(request.host) and not _is_ip(request.pretty_host):
            target.sni = request.pretty_host  # transparent modes: the address is an IP, the certificate names the host
        job = RelayJob([target], max_response_bytes=config.max_response_bytes)
        call = cls(plan.record, job, request.url, request.host_header)
        flowinfo.publish(flow, plan.record)
        request.url = await relay.submit(job)
        return call

    def on_response_headers(self, flow: http.HTTPFlow) -> None:
        self.restore(flow)
        response = flow.response
        if response is not None and response.headers.get("content-type", "").startswith("text/event-stream"):
            response.stream = PassTap(flow)  # event by event, and still shown in mitmweb afterwards

    def restore(self, flow: http.HTTPFlow, relay: Relay | None = None) -> None:
        """The flow shows the app's request again, its credential masked, and what the relay did."""
        if relay is not None:
            relay.forget(flow.request.url)
        flow.request.url = self.url
        if self.host_header:
            flow.request.host_header = self.host_header
        credentials.redact(flow.request)
        self.record.attempts = list(self.job.attempts)
        if self.job.served is None and self.job.attempts:
            self.record.error = self.job.attempts[-1]
        flowinfo.publish(flow, self.record)


def keyless_tls_verified() -> bool:
    """Whether a keyless call checks the upstream's certificate. mitmproxy's `ssl_insecure` governed
    these calls when mitmproxy made them (a local server with a self-signed certificate), so it still
    does; pooled calls always check: they carry llmitm's keys."""
    options = getattr(ctx, "options", None)
    return not (options is not None and "ssl_insecure" in options and options.ssl_insecure)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def header_map(headers: http.Headers) -> dict[str, str]:
    """{lower-case name: value}, a repeated field folded with ", " as mitmproxy's `headers[name]` folds
    it, in one pass over the raw fields. mitmproxy's `dict(headers)` and `items()` rescan every field for
    each name: the profile showed them as llmitm's largest costs per request (the planner reading the
    app's headers, the pool reading the upstream's rate-limit headers)."""
    folded: dict[str, str] = {}
    for raw_name, raw_value in headers.fields:
        name = raw_name.decode("utf-8", "surrogateescape").lower()
        value = raw_value.decode("utf-8", "surrogateescape")
        folded[name] = f"{folded[name]}, {value}" if name in folded else value
    return folded
