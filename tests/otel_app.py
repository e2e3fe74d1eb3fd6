"""A small shop instrumented with the real OpenTelemetry Python SDK, for the receiver's
end-to-end test: three HTTP services on loopback (frontend -> checkout -> payments)
propagating W3C trace context, one declined payment (error status) and one log record
emitted in the failing span.

Run as ``python -m tests.otel_app OUT_DIR`` with ``OTEL_EXPORTER_OTLP_ENDPOINT`` set: the
OTLP/HTTP exporters are built with no arguments, so the environment alone points them at
the receiver. It writes ``OUT_DIR/recorded.json`` (each finished span as the SDK recorded
it, and the log's trace context) and ``OUT_DIR/spans.otlp.json`` (the same spans encoded
by the SDK's own OTLP encoder, as OTLP/JSON with hex ids).
"""

from __future__ import annotations

import base64
import json
import logging
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

HOSTS = {"frontend": "web-1", "checkout": "app-1", "payments": "pay-1"}
ID_KEYS = ("traceId", "spanId", "parentSpanId")


class Service:
    """One service: its own resource (service.name, host.name), tracer and HTTP server."""

    def __init__(self, name: str, memory: InMemorySpanExporter) -> None:
        self.name = name
        resource = Resource.create({"service.name": name, "host.name": HOSTS[name]})
        self.provider = TracerProvider(resource=resource)
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self.provider.add_span_processor(SimpleSpanProcessor(memory))
        self.tracer = self.provider.get_tracer("tests.otel_app", "1.0")
        self.downstream: str | None = None
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status = service.handle(self.path, {k.lower(): v for k, v in self.headers.items()})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, path: str, headers: dict[str, str]) -> int:
        """A SERVER span under the caller's context; calls downstream in a CLIENT span."""
        route, _, query = path.partition("?")
        with self.tracer.start_as_current_span(
            f"GET {route}", context=extract(headers), kind=SpanKind.SERVER
        ) as span:
            span.set_attribute("http.route", route)
            if self.downstream is None:
                status = self.charge(query)
            else:
                status = call(self.tracer, f"{self.downstream}?{query}")
                status = 502 if status >= 500 else status
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR, f"answered {status}"))
            return status

    def charge(self, query: str) -> int:
        with self.tracer.start_as_current_span("charge card") as inner:
            if "card=declined" in query:
                logging.getLogger("payments").error("card declined for order 7")
                inner.set_status(Status(StatusCode.ERROR, "card declined"))
                return 500
        return 200


def call(tracer: Any, url: str) -> int:
    """A CLIENT span around an HTTP GET carrying the W3C traceparent header."""
    route = url.split("/", 3)[3].split("?")[0]
    with tracer.start_as_current_span(f"GET /{route}", kind=SpanKind.CLIENT) as span:
        headers: dict[str, str] = {}
        inject(headers)
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as resp:
                status = resp.status
        except urllib.error.HTTPError as err:
            status = err.code
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        return status


def recorded(span: Any) -> dict[str, Any]:
    """What the SDK recorded of a span, in the terms the test compares."""
    ctx = span.get_span_context()
    return {
        "trace_id": f"{ctx.trace_id:032x}",
        "span_id": f"{ctx.span_id:016x}",
        "parent_span_id": f"{span.parent.span_id:016x}" if span.parent else None,
        "service_name": span.resource.attributes["service.name"],
        "host_name": span.resource.attributes["host.name"],
        "operation_name": span.name,
        "span_kind": span.kind.name.lower(),
        "status": span.status.status_code.name.lower(),
        "start_ns": span.start_time,
        "end_ns": span.end_time,
    }


def otlp_json(spans: list[Any]) -> dict[str, Any]:
    """The SDK's own OTLP encoding of ``spans`` as OTLP/JSON: protobuf's JSON mapping spells
    bytes in base64, OTLP/JSON wants ids in hex."""
    doc = MessageToDict(encode_spans(spans), use_integers_for_enums=True)

    def hexed(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: base64.b64decode(v).hex() if k in ID_KEYS else hexed(v) for k, v in node.items()
            }
        if isinstance(node, list):
            return [hexed(v) for v in node]
        return node

    return hexed(doc)


def main(out_dir: str) -> None:
    memory = InMemorySpanExporter()
    frontend, checkout, payments = (
        Service(n, memory) for n in ("frontend", "checkout", "payments")
    )
    frontend.downstream, checkout.downstream = checkout.url + "/orders", payments.url + "/charge"
    logs = LoggerProvider(resource=payments.provider.resource)
    logs.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
    logging.getLogger("payments").addHandler(LoggingHandler(logger_provider=logs))
    for card in ("ok", "declined"):  # an outside caller, not traced: the frontend span is root
        try:
            urllib.request.urlopen(f"{frontend.url}/checkout?card={card}").close()
        except urllib.error.HTTPError as err:
            assert card == "declined" and err.code == 502, err
    for service in (frontend, checkout, payments):
        service.server.shutdown()
        service.provider.shutdown()  # exports what is left, through the OTLP exporter
    logs.shutdown()
    finished = list(memory.get_finished_spans())
    failing = next(s for s in finished if s.name == "charge card" and not s.status.is_ok)
    ctx = failing.get_span_context()
    log_context = {"trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}"}
    out = Path(out_dir)
    out.joinpath("recorded.json").write_text(
        json.dumps({"spans": [recorded(s) for s in finished], "log": log_context})
    )
    out.joinpath("spans.otlp.json").write_text(json.dumps(otlp_json(finished)))


if __name__ == "__main__":
    main(sys.argv[1])
