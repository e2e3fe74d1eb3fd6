"""OpenTelemetry OTLP traces and logs, as JSON or protobuf, into span and log rows.

The same mapping serves the file importer (OTLP/JSON, as the Collector's file exporter
writes it) and the receiver (OTLP/HTTP, protobuf or JSON bodies):

- resource ``service.name`` -> ``service_name`` (the spec's ``unknown_service`` when absent);
  span name -> ``operation_name``; kind -> ``span_kind`` (unspecified -> internal);
  status ERROR -> ``error``, else ``ok``;
- ``tags``: resource attributes, then ``otel.scope.name``/``otel.scope.version``, then the
  span's attributes (the span's win), plus ``otel.status_description``, ``w3c.tracestate``
  and ``otel.links`` when present; host attributes stay as they are (the clock-skew
  adjuster reads ``host.id``, ``host.ip``, ``host.name``);
- span events -> ``logs``: ``{"timestamp", "event", "attributes"}`` with nanosecond time;
- log severity number -> level (1-4 trace ... 21-24 fatal); 0 is unspecified: the
  severity text decides when it names a level, else ``info``; above 24 is refused. The
  body becomes the message (non-text bodies as JSON), attributes the fields (resource
  attributes under ``resource``), ``exception.type``/``exception.message`` the error.

OTLP/JSON's rules: ids are hex (16-byte trace, 8-byte span, never all zero; uppercase is
accepted and lowered), enums are integers (their names are accepted too, as the Collector
does), 64-bit integers may be strings, unknown fields are ignored, and lowerCamelCase keys
are the spec's while snake_case ones are accepted as protobuf's own JSON parser does.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

import orjson

from obslib.errors import InputError
from obslib.ingest import records
from obslib.ingest.records import Decoded, RecordError, Reject

UNKNOWN_SERVICE = "unknown_service"  # the OpenTelemetry spec's default service.name
KINDS = ("internal", "internal", "server", "client", "producer", "consumer")
KIND_NAMES = {f"SPAN_KIND_{k.upper()}": i for i, k in enumerate(KINDS)} | {
    "SPAN_KIND_UNSPECIFIED": 0
}
STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
STATUS_ERROR = 2
MAX_SEVERITY = 24
# severity number ranges of the log data model, 1-4 TRACE ... 21-24 FATAL
SEVERITY_LEVELS = ("trace", "debug", "info", "warn", "error", "fatal")


def severity_level(number: int, severity_text: str) -> str:
    """A level for a severity number; 0 (unspecified) asks the severity text, else info."""
    if number == 0:
        return records.level_of(severity_text) or "info"
    if not 1 <= number <= MAX_SEVERITY:
        raise RecordError(f"severity number {number} is outside 0..{MAX_SEVERITY}")
    return SEVERITY_LEVELS[(number - 1) // 4]


# -- JSON -----------------------------------------------------------------------------------


def decode_json(doc: Any, source: str, where: str = "") -> Decoded:
    """One OTLP/JSON document (``ExportTraceServiceRequest`` and/or
    ``ExportLogsServiceRequest``): rows and rejects; an InputError when it is not OTLP."""
    prefix = f"{where}: " if where else ""
    if not isinstance(doc, dict):
        raise InputError(f"{source}: {prefix}not an OTLP/JSON object ({_what(doc)})")
    out = Decoded()
    for i, rs in enumerate(_list(doc, source, prefix, "resourceSpans", "resource_spans")):
        path = f"resourceSpans[{i}]"
        resource = _obj(rs, source, prefix, path)
        scopes = _list(resource, source, prefix + path + ".", "scopeSpans", "scope_spans")
        scopes += _list(
            resource,
            source,
            prefix + path + ".",
            "instrumentationLibrarySpans",
            "instrumentation_library_spans",
        )
        for j, ss in enumerate(scopes):
            spath = f"{path}.scopeSpans[{j}]"
            scope = _obj(ss, source, prefix, spath)
            spans = _list(scope, source, prefix + spath + ".", "spans")
            _spans_json(out, rs, scope, spans, source, prefix + spath)
    for i, rl in enumerate(_list(doc, source, prefix, "resourceLogs", "resource_logs")):
        path = f"resourceLogs[{i}]"
        resource = _obj(rl, source, prefix, path)
        scopes = _list(resource, source, prefix + path + ".", "scopeLogs", "scope_logs")
        for j, sl in enumerate(scopes):
            spath = f"{path}.scopeLogs[{j}]"
            scope = _obj(sl, source, prefix, spath)
            logs = _list(scope, source, prefix + spath + ".", "logRecords", "log_records")
            _logs_json(out, rl, scope, logs, source, prefix + spath)
    return out


def _spans_json(out: Decoded, rs: dict, scope: dict, spans: list, source: str, path: str) -> None:
    try:
        resource, service = _resource_json(rs)
        scope_tags = _scope_json(_get(scope, "scope") or _get(scope, "instrumentationLibrary"))
        base = {**resource, **scope_tags}
        problem = None
    except RecordError as err:
        problem, base, service = f"resource: {err}", {}, UNKNOWN_SERVICE
    for k, span in enumerate(spans):
        position = f"{path}.spans[{k}]"
        try:
            if problem:
                raise RecordError(problem)
            out.spans.append(_span_json(span, base, service, position))
        except RecordError as err:
            out.rejects.append(Reject(source, position, str(err), "span"))


def _span_json(span: Any, base: dict, service: str, position: str) -> dict:
    if not isinstance(span, dict):
        raise RecordError(f"span is {_what(span)}, not an object")
    trace_id = records.hex_id(_get(span, "traceId", ""), 16, "traceId")
    span_id = records.hex_id(_get(span, "spanId", ""), 8, "spanId")
    parent = _get(span, "parentSpanId", "")
    parent_id = records.hex_id(parent, 8, "parentSpanId") if parent not in ("", None) else None
    tags = {**base, **_attributes(_get(span, "attributes", []), "attributes")}
    status = _get(span, "status") or {}
    if not isinstance(status, dict):
        raise RecordError(f"status is {_what(status)}, not an object")
    code = _enum(_get(status, "code", 0), STATUS_NAMES, "status code")
    message = _get(status, "message", "")
    if message:
        tags["otel.status_description"] = records.text(message, "status message")
    state = _get(span, "traceState", "")
    if state:
        tags["w3c.tracestate"] = records.text(state, "traceState")
    links = _get(span, "links", [])
    if links:
        tags["otel.links"] = [_link_json(link) for link in _records_list(links, "links")]
    events = [_event_json(e) for e in _records_list(_get(span, "events", []), "events")]
    kind = _enum(_get(span, "kind", 0), KIND_NAMES, "span kind")
    if kind >= len(KINDS):
        raise RecordError(f"span kind {kind} is not an OTLP span kind (0..5)")
    return records.span_row(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_id,
        service_name=service,
        operation_name=_get(span, "name", ""),
        span_kind=KINDS[kind],
        start_ns=records.unix_ns(_get(span, "startTimeUnixNano"), "startTimeUnixNano"),
        end_ns=records.unix_ns(_get(span, "endTimeUnixNano"), "endTimeUnixNano"),
        status="error" if code == STATUS_ERROR else "ok",
        tags=tags,
        events=events,
        position=position,
    )


def _event_json(event: dict) -> dict:
    at = records.unix_ns(_get(event, "timeUnixNano"), "event timeUnixNano")
    out = {
        "timestamp": records.iso_ns(at),
        "event": records.text(_get(event, "name", ""), "event name"),
    }
    attributes = _attributes(_get(event, "attributes", []), "event attributes")
    if attributes:
        out["attributes"] = attributes
    return out


def _link_json(link: dict) -> dict:
    out = {
        "trace_id": records.hex_id(_get(link, "traceId", ""), 16, "link traceId"),
        "span_id": records.hex_id(_get(link, "spanId", ""), 8, "link spanId"),
    }
    attributes = _attributes(_get(link, "attributes", []), "link attributes")
    if attributes:
        out["attributes"] = attributes
    return out


def _logs_json(out: Decoded, rl: dict, scope: dict, logs: list, source: str, path: str) -> None:
    try:
        resource, service = _resource_json(rl)
        scope_tags = _scope_json(_get(scope, "scope"))
        problem = None
    except RecordError as err:
        problem, resource, scope_tags, service = f"resource: {err}", {}, {}, UNKNOWN_SERVICE
    for k, log in enumerate(logs):
        position = f"{path}.logRecords[{k}]"
        try:
            if problem:
                raise RecordError(problem)
            if not isinstance(log, dict):
                raise RecordError(f"log record is {_what(log)}, not an object")
            body = _get(log, "body")
            fields = _attributes(_get(log, "attributes", []), "attributes")
            out.logs.append(
                _log_row(
                    out,
                    time=_get(log, "timeUnixNano", 0),
                    observed=_get(log, "observedTimeUnixNano", 0),
                    number=_enum(_get(log, "severityNumber", 0), _SEVERITY_NAMES, "severity"),
                    severity_text=_get(log, "severityText", ""),
                    body=None if body is None else _any_json(body, "body", 0),
                    fields=fields,
                    resource=resource,
                    scope=scope_tags,
                    service=service,
                    trace_id=_get(log, "traceId", ""),
                    span_id=_get(log, "spanId", ""),
                    event_name=_get(log, "eventName", ""),
                    position=position,
                    hexed=True,
                )
            )
        except RecordError as err:
            out.rejects.append(Reject(source, position, str(err), "log"))


_SEVERITY_NAMES = {"SEVERITY_NUMBER_UNSPECIFIED": 0} | {
    f"SEVERITY_NUMBER_{name.upper()}{'' if i % 4 == 0 else i % 4 + 1}": i + 1
    for i, name in enumerate(
        n for n in ("trace", "debug", "info", "warn", "error", "fatal") for _ in range(4)
    )
}


def _resource_json(container: dict) -> tuple[dict, str]:
    resource = _get(container, "resource") or {}
    if not isinstance(resource, dict):
        raise RecordError(f"resource is {_what(resource)}, not an object")
    attributes = _attributes(_get(resource, "attributes", []), "resource attributes")
    return attributes, _service(attributes)


def _scope_json(scope: Any) -> dict:
    if not scope:
        return {}
    if not isinstance(scope, dict):
        raise RecordError(f"scope is {_what(scope)}, not an object")
    tags = {}
    for key, name in (("name", "otel.scope.name"), ("version", "otel.scope.version")):
        value = _get(scope, key, "")
        if value:
            tags[name] = records.text(value, f"scope {key}")
    return tags


def _attributes(items: Any, what: str) -> dict[str, Any]:
    """A KeyValue list as a dict; a later duplicate key wins (as the SDKs do)."""
    out = {}
    for kv in _records_list(items, what):
        key = kv.get("key")
        if not isinstance(key, str):
            raise RecordError(f"{what}: a key is {_what(key)}, not a string")
        value = kv.get("value")
        out[key] = None if value is None else _any_json(value, f"{what} {records.show(key)}", 0)
    return out


def _any_json(value: Any, what: str, depth: int) -> Any:
    """An OTLP/JSON AnyValue as plain JSON (int64 strings as ints, bytes as base64 text)."""
    if depth > records.MAX_DEPTH:
        raise RecordError(f"{what} is nested more than {records.MAX_DEPTH} levels deep")
    if not isinstance(value, dict):
        raise RecordError(f"{what} is {_what(value)}, not an AnyValue object")
    for key, convert in _ANY_JSON:
        if key in value or _SNAKE[key] in value:
            return convert(_get(value, key), what, depth)
    return None  # an empty AnyValue: the attribute is present with no value


def _int_value(v: Any, what: str, depth: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int | str):
        raise RecordError(f"{what}: intValue is {_what(v)}")
    number = v if isinstance(v, int) else records.integer(v)  # not "1_000", as protobuf
    if number is None:
        raise RecordError(f"{what}: intValue {records.show(v)} is not an integer")
    if not -(2**63) <= number < 2**63:
        raise RecordError(f"{what}: intValue {number} is outside 64 bits")
    return number


def _double_value(v: Any, what: str, depth: int) -> float | str:
    if isinstance(v, str) and v in ("NaN", "Infinity", "-Infinity"):
        return v
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise RecordError(f"{what}: doubleValue is {_what(v)}")
    return float(v)


def _typed(kind: type, name: str) -> Callable[[Any, str, int], Any]:
    def check(v: Any, what: str, depth: int) -> Any:
        if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
            raise RecordError(f"{what}: {name} is {_what(v)}")
        return v

    return check


def _bytes_value(v: Any, what: str, depth: int) -> str:
    if not isinstance(v, str):
        raise RecordError(f"{what}: bytesValue is {_what(v)}")
    try:
        base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError):
        raise RecordError(f"{what}: bytesValue is not base64") from None
    return v


def _array_value(v: Any, what: str, depth: int) -> list:
    if not isinstance(v, dict):
        raise RecordError(f"{what}: arrayValue is {_what(v)}")
    values = _get(v, "values", [])
    if not isinstance(values, list):
        raise RecordError(f"{what}: arrayValue.values is {_what(values)}")
    return [_any_json(x, what, depth + 1) for x in values]


def _kvlist_value(v: Any, what: str, depth: int) -> dict:
    if not isinstance(v, dict):
        raise RecordError(f"{what}: kvlistValue is {_what(v)}")
    out = {}
    for kv in _records_list(_get(v, "values", []), what):
        key = kv.get("key")
        if not isinstance(key, str):
            raise RecordError(f"{what}: a key is {_what(key)}, not a string")
        value = kv.get("value")
        out[key] = None if value is None else _any_json(value, what, depth + 1)
    return out


_ANY_JSON: tuple[tuple[str, Callable[[Any, str, int], Any]], ...] = (
    ("stringValue", _typed(str, "stringValue")),
    ("boolValue", _typed(bool, "boolValue")),
    ("intValue", _int_value),
    ("doubleValue", _double_value),
    ("arrayValue", _array_value),
    ("kvlistValue", _kvlist_value),
    ("bytesValue", _bytes_value),
)
_SNAKE = {
    "stringValue": "string_value",
    "boolValue": "bool_value",
    "intValue": "int_value",
    "doubleValue": "double_value",
    "arrayValue": "array_value",
    "kvlistValue": "kvlist_value",
    "bytesValue": "bytes_value",
}


# -- protobuf -------------------------------------------------------------------------------


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
        try:
            resource = _attributes_proto(rs.resource.attributes, "resource attributes")
            problem = None
        except RecordError as err:
            resource, problem = {}, f"resource: {err}"
        service = _service(resource)
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
        try:
            resource = _attributes_proto(rl.resource.attributes, "resource attributes")
            problem = None
        except RecordError as err:
            resource, problem = {}, f"resource: {err}"
        service = _service(resource)
        for j, sl in enumerate(rl.scope_logs):
            scope = _scope_proto(sl.scope)
            for k, log in enumerate(sl.log_records):
                position = f"resourceLogs[{i}].scopeLogs[{j}].logRecords[{k}]"
                try:
                    if problem:
                        raise RecordError(problem)
                    body_value = _any_proto(log.body, "body", 0) if log.HasField("body") else None
                    out.logs.append(
                        _log_row(
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


# -- shared ---------------------------------------------------------------------------------


def _log_row(
    out: Decoded,
    *,
    time: Any,
    observed: Any,
    number: int,
    severity_text: Any,
    body: Any,
    fields: dict,
    resource: dict,
    scope: dict,
    service: str,
    trace_id: Any,
    span_id: Any,
    event_name: Any,
    position: str,
    hexed: bool,
) -> dict:
    """One log record; a malformed trace or span id keeps the record but not the link
    (``Decoded.unlinked`` counts it, ``fields`` keeps the raw id)."""
    severity_text = records.text(severity_text or "", "severityText")
    use_observed = time in (0, "0", None, "")
    stamp = records.unix_ns(observed if use_observed else time, "timeUnixNano")
    level = severity_level(number, severity_text)
    fields = dict(fields)
    if severity_text:
        fields["otel.severity_text"] = severity_text
    fields["otel.severity_number"] = number
    if event_name:
        fields["otel.event_name"] = records.text(event_name, "eventName")
    if scope:
        fields.update(scope)
    if resource:
        fields["resource"] = resource
    trace, span = _log_ids(out, trace_id, span_id, fields, hexed)
    error = _error_text(fields)
    if body is None or body == "":
        message = event_name or ""
    elif isinstance(body, str):
        message = body
    else:
        message = orjson.dumps(records.clean_json(body, "body")).decode()
    return records.log_row(
        timestamp_ns=stamp,
        level=level,
        service_name=service,
        trace_id=trace,
        span_id=span,
        message=message,
        fields=fields,
        error=error,
        position=position,
    )


def _log_ids(
    out: Decoded, trace_id: Any, span_id: Any, fields: dict, hexed: bool
) -> tuple[str | None, str | None]:
    if trace_id in ("", b"", None) and span_id in ("", b"", None):
        return None, None
    check = records.hex_id if hexed else records.bytes_id
    try:
        trace = check(trace_id, 16, "traceId")
        span = check(span_id, 8, "spanId") if span_id not in ("", b"", None) else None
    except RecordError:
        out.unlinked += 1
        for key, raw in (("trace_id", trace_id), ("span_id", span_id)):
            shown = raw.hex() if isinstance(raw, bytes) else raw
            if isinstance(shown, str) and shown and "\x00" not in shown:
                fields[f"obslib.unlinked_{key}"] = shown
        return None, None
    return trace, span


def _error_text(fields: dict) -> str | None:
    kind, message = fields.get("exception.type"), fields.get("exception.message")
    parts = [str(p) for p in (kind, message) if p not in (None, "")]
    return ": ".join(parts) if parts else None


def _service(resource: dict) -> str:
    service = resource.get("service.name")
    if service in (None, ""):
        return UNKNOWN_SERVICE
    if not isinstance(service, str):
        raise RecordError(f"resource service.name is {_what(service)}, not a string")
    return service


def _enum(value: Any, names: dict[str, int], what: str) -> int:
    """An OTLP enum: an integer (the spec), its name or its decimal string (tolerated)."""
    if isinstance(value, str):
        if value in names:
            return names[value]
        if value.isdigit() and value.isascii() and len(value) <= 10:
            return int(value)
        raise RecordError(f"{what} {records.show(value)} is not a known value")
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(f"{what} is {_what(value)}, not an integer")
    if value < 0:
        raise RecordError(f"{what} {value} is negative")
    return value


def _get(obj: dict, key: str, default: Any = None) -> Any:
    """A field by its lowerCamelCase name, or its snake_case one."""
    if key in obj:
        return obj[key]
    snake = _snake(key)
    return obj.get(snake, default) if snake != key else default


def _snake(key: str) -> str:
    cached = _SNAKE_KEYS.get(key)
    if cached is None:
        cached = "".join(f"_{c.lower()}" if c.isupper() else c for c in key)
        _SNAKE_KEYS[key] = cached
    return cached


_SNAKE_KEYS: dict[str, str] = {}


def _records_list(value: Any, what: str) -> list[dict]:
    """A list of objects inside a record (attributes, events, links): bad -> the record."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordError(f"{what} is {_what(value)}, not a list")
    for item in value:
        if not isinstance(item, dict):
            raise RecordError(f"{what} holds {_what(item)}, not objects")
    return value


def _list(obj: dict, source: str, prefix: str, *keys: str) -> list:
    """A container list of the document (resourceSpans, scopeSpans, spans): its shape is
    the file's, so a wrong one refuses the file."""
    for key in keys:
        if key in obj:
            value = obj[key]
            if value is None:
                return []
            if not isinstance(value, list):
                raise InputError(f"{source}: {prefix}{key} is {_what(value)}, not a list")
            return value
    return []


def _obj(value: Any, source: str, prefix: str, path: str) -> dict:
    if not isinstance(value, dict):
        raise InputError(f"{source}: {prefix}{path} is {_what(value)}, not an object")
    return value


def _what(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "a string"
