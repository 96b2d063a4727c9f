"""OpenTelemetry: spans with the GenAI attributes reach a loopback OTLP/HTTP receiver, attempts as children."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from llmitm.observe.traces import AttemptTrace, RequestTrace, Tracer


class Receiver:
    """A loopback OTLP/HTTP trace endpoint that decodes what it is sent."""

    def __init__(self) -> None:
        self.spans: list = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource in request.resource_spans:
                    for scope in resource.scope_spans:
                        receiver.spans.extend(scope.spans)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"


def attrs(span) -> dict:
    out = {}
    for kv in span.attributes:
        v = kv.value
        out[kv.key] = (v.string_value or v.int_value or v.double_value or list(x.string_value for x in v.array_value.values))
    return out


def test_a_retried_request_becomes_a_span_with_attempt_children():
    receiver = Receiver()
    tracer = Tracer(receiver.url)
    t = time.time()
    tracer.record(RequestTrace(
        operation="chat", provider_name="anthropic", request_model="claude-sonnet-4-5", response_model="claude-sonnet-4-5-20250929",
        start=t, end=t + 1.5, status=200, route="#0", client="ci", input_tokens=1300, output_tokens=50,
        finish_reasons=("end_turn",), time_to_first_chunk=0.4, translated_from="openai-chat",
        attempts=(AttemptTrace("claude", "a1", t, t + 0.2, 429), AttemptTrace("claude", "b2", t + 0.2, t + 1.5, 200)),
        prompt="secret prompt"))
    tracer.flush()
    tracer.close()
    receiver.server.shutdown()
    (parent,) = [s for s in receiver.spans if not s.parent_span_id]
    children = [s for s in receiver.spans if s.parent_span_id == parent.span_id]
    a = attrs(parent)
    assert parent.name == "chat claude-sonnet-4-5"
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "anthropic"
    assert a["gen_ai.request.model"] == "claude-sonnet-4-5" and a["gen_ai.response.model"] == "claude-sonnet-4-5-20250929"
    assert a["gen_ai.usage.input_tokens"] == 1300 and a["gen_ai.usage.output_tokens"] == 50
    assert a["gen_ai.response.finish_reasons"] == ["end_turn"] and a["gen_ai.response.time_to_first_chunk"] == 0.4
    assert "gen_ai.input.messages" not in a  # content is off by default
    assert sorted(attrs(c)["llmitm.key_id"] for c in children) == ["a1", "b2"]
    assert abs(parent.end_time_unix_nano - parent.start_time_unix_nano - 1_500_000_000) < 10_000
