"""OTLP protobuf requests (the receiver's usual body) into rows, through the same mapping
as OTLP/JSON; the ``opentelemetry-proto`` package decodes the bytes."""

from __future__ import annotations

import base64
from typing import Any

from obslib.errors import InputError
from obslib.ingest import records
from obslib.ingest.otlp.mapping import KINDS, STATUS_ERROR, log_row, service_of
from obslib.ingest.records import Decoded, RecordError, Reject


def decode_traces_proto(body: bytes, source: str) -> Decoded:
    """An ``ExportTraceServiceRequest`` in protobuf: rows and rejects; an InputError when
    the bytes are not one."""
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    try:
        request = ExportTraceServiceRequest.FromString(body)
    except (DecodeError, RecursionError) as err:
        raise InputError(f"{source}: not an OTLP protobuf trace request ({err})") from None
    out = Decoded()
    for i, rs in enumerate(request.resource_spans):
        resource, problem = _resource_proto(rs.resource)
        service = service_of(resource)
        for j, ss in enumerate(rs.scope_spans):
            base = {**resource, **_scope_proto(ss.scope)}
            for k, span in enumerate(ss.spans):
                position = f"resourceSpans[{i}].scopeSpans[{j}].spans[{k}]"
                try:
                    if problem:
                        raise RecordError(problem)
                    out.spans.append(_span_proto(span, base, service, position))
                except RecordError as err:
                    out.rejects.append(Reject(source, position, str(err), "span"))
    return out


def _span_proto(span: Any, base: dict, service: str, position: str) -> dict:
    tags = {**base, **_attributes_proto(span.attributes, "attributes")}
    if span.status.message:
        tags["otel.status_description"] = records.text(span.status.message, "status message")
    if span.trace_state:
        tags["w3c.tracestate"] = records.text(span.trace_state, "traceState")
    if span.links:
        tags["otel.links"] = [
            {
                "trace_id": records.bytes_id(link.trace_id, 16, "link traceId"),
                "span_id": records.bytes_id(link.span_id, 8, "link spanId"),
                **(
                    {"attributes": _attributes_proto(link.attributes, "link attributes")}
                    if link.attributes
                    else {}
                ),
            }
            for link in span.links
        ]
    events = []
    for e in span.events:
        event = {
            "timestamp": records.iso_ns(records.unix_ns(e.time_unix_nano, "event timeUnixNano")),
            "event": records.text(e.name, "event name"),
        }
        if e.attributes:
            event["attributes"] = _attributes_proto(e.attributes, "event attributes")
        events.append(event)
    if span.kind >= len(KINDS):
        raise RecordError(f"span kind {span.kind} is not an OTLP span kind (0..5)")
    return records.span_row(
        trace_id=records.bytes_id(span.trace_id, 16, "traceId"),
        span_id=records.bytes_id(span.span_id, 8, "spanId"),
        parent_span_id=(
            records.bytes_id(span.parent_span_id, 8, "parentSpanId")
            if span.parent_span_id
            else None
        ),
        service_name=service,
        operation_name=span.name,
        span_kind=KINDS[span.kind],
        start_ns=records.unix_ns(span.start_time_unix_nano, "startTimeUnixNano"),
        end_ns=records.unix_ns(span.end_time_unix_nano, "endTimeUnixNano"),
        status="error" if span.status.code == STATUS_ERROR else "ok",
        tags=tags,
        events=events,
        position=position,
    )


def decode_logs_proto(body: bytes, source: str) -> Decoded:
    """An ``ExportLogsServiceRequest`` in protobuf: rows and rejects."""
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    try:
        request = ExportLogsServiceRequest.FromString(body)
    except (DecodeError, RecursionError) as err:
        raise InputError(f"{source}: not an OTLP protobuf logs request ({err})") from None
    out = Decoded()
    for i, rl in enumerate(request.resource_logs):
        resource, problem = _resource_proto(rl.resource)
        service = service_of(resource)
        for j, sl in enumerate(rl.scope_logs):
            scope = _scope_proto(sl.scope)
            for k, log in enumerate(sl.log_records):
                position = f"resourceLogs[{i}].scopeLogs[{j}].logRecords[{k}]"
                try:
                    if problem:
                        raise RecordError(problem)
                    body_value = _any_proto(log.body, "body", 0) if log.HasField("body") else None
                    out.logs.append(
                        log_row(
                            out,
                            time=log.time_unix_nano,
                            observed=log.observed_time_unix_nano,
                            number=log.severity_number,
                            severity_text=log.severity_text,
                            body=body_value,
                            fields=_attributes_proto(log.attributes, "attributes"),
                            resource=resource,
                            scope=scope,
                            service=service,
                            trace_id=log.trace_id,
                            span_id=log.span_id,
                            event_name=getattr(log, "event_name", ""),
                            position=position,
                            hexed=False,
                        )
                    )
                except RecordError as err:
                    out.rejects.append(Reject(source, position, str(err), "log"))
    return out


def _resource_proto(resource: Any) -> tuple[dict, str | None]:
    """The resource's attributes, or none and the problem that rejects all its records."""
    try:
        return _attributes_proto(resource.attributes, "resource attributes"), None
    except RecordError as err:
        return {}, f"resource: {err}"


def _scope_proto(scope: Any) -> dict:
    tags = {}
    if scope.name:
        tags["otel.scope.name"] = records.text(scope.name, "scope name")
    if scope.version:
        tags["otel.scope.version"] = records.text(scope.version, "scope version")
    return tags


def _attributes_proto(items: Any, what: str) -> dict[str, Any]:
    return {kv.key: _any_proto(kv.value, f"{what} {records.show(kv.key)}", 0) for kv in items}


def _any_proto(value: Any, what: str, depth: int) -> Any:
    if depth > records.MAX_DEPTH:
        raise RecordError(f"{what} is nested more than {records.MAX_DEPTH} levels deep")
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_any_proto(v, what, depth + 1) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _any_proto(kv.value, what, depth + 1) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if which == "double_value":
        return records.finite(value.double_value)
    return getattr(value, which)
