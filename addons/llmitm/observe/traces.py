"""OpenTelemetry traces (the optional `otel` extra): one span per AI request, following the GenAI
semantic conventions, with each upstream attempt as a child span; exported over OTLP/HTTP.

Spans are written when a request is complete, with its real start and end times, so nothing is held
open across mitmproxy hooks. Prompt and answer content are not recorded unless asked for
(`capture_content`), and keys appear only by id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AttemptTrace:
    provider: str
    key: str
    start: float  # unix seconds
    end: float
    status: int | None
    error: str | None = None  # error.type when the attempt failed without an answer


@dataclass(frozen=True)
class RequestTrace:
    operation: str  # gen_ai.operation.name: "chat", "embeddings", …
    provider_name: str  # gen_ai.provider.name of the upstream: "openai", "anthropic", "gcp.gemini", …
    request_model: str | None
    response_model: str | None
    start: float
    end: float
    status: int | None
    route: str
    client: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    finish_reasons: tuple[str, ...] = ()
    time_to_first_chunk: float | None = None  # seconds
    translated_from: str | None = None  # the app's protocol when it differs from the upstream's
    attempts: tuple[AttemptTrace, ...] = ()
    prompt: str | None = None  # only with capture_content
    completion: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _ns(seconds: float) -> int:
    return int(seconds * 1_000_000_000)


class Tracer:
    def __init__(self, endpoint: str, *, service_name: str = "llmitm", capture_content: bool = False,
                 exporter: Any = None) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self.capture_content = capture_content
        self.provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        self.provider.add_span_processor(BatchSpanProcessor(exporter or OTLPSpanExporter(endpoint=endpoint, timeout=5)))
        self.tracer = self.provider.get_tracer("llmitm")

    def record(self, trace: RequestTrace) -> None:
        from opentelemetry import trace as otel
        from opentelemetry.trace import SpanKind, Status, StatusCode

        name = f"{trace.operation} {trace.request_model or ''}".strip()
        span = self.tracer.start_span(name, kind=SpanKind.CLIENT, start_time=_ns(trace.start))
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": trace.operation,
            "gen_ai.provider.name": trace.provider_name,
            "llmitm.route": trace.route,
            "llmitm.client": trace.client,
            "llmitm.attempts": len(trace.attempts),
        }
        optional = {
            "gen_ai.request.model": trace.request_model,
            "gen_ai.response.model": trace.response_model,
            "gen_ai.usage.input_tokens": trace.input_tokens,
            "gen_ai.usage.output_tokens": trace.output_tokens,
            "gen_ai.usage.cache_read.input_tokens": trace.cache_read_tokens,
            "gen_ai.response.finish_reasons": list(trace.finish_reasons) or None,
            "gen_ai.response.time_to_first_chunk": trace.time_to_first_chunk,
            "http.response.status_code": trace.status,
            "llmitm.translated_from": trace.translated_from,
        }
        if self.capture_content:
            optional.update({"gen_ai.input.messages": trace.prompt, "gen_ai.output.messages": trace.completion})
        attributes.update({k: v for k, v in optional.items() if v is not None})
        span.set_attributes(attributes)
        if trace.status is None or trace.status >= 400:
            span.set_status(Status(StatusCode.ERROR))
            span.set_attribute("error.type", str(trace.status) if trace.status else "no_response")
        context = otel.set_span_in_context(span)
        for n, attempt in enumerate(trace.attempts, 1):
            child = self.tracer.start_span(f"attempt {n}", context=context, kind=SpanKind.CLIENT, start_time=_ns(attempt.start))
            child.set_attributes({"llmitm.provider": attempt.provider, "llmitm.key_id": attempt.key})
            if attempt.status is not None:
                child.set_attribute("http.response.status_code", attempt.status)
            if attempt.error or (attempt.status or 500) >= 400:
                child.set_status(Status(StatusCode.ERROR))
                child.set_attribute("error.type", attempt.error or str(attempt.status))
            child.end(end_time=_ns(attempt.end))
        span.end(end_time=_ns(trace.end))

    def flush(self) -> None:
        self.provider.force_flush(timeout_millis=5000)

    def close(self) -> None:
        self.provider.shutdown()
