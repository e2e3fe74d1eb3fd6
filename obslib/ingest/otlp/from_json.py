"""OTLP/JSON documents (``ExportTraceServiceRequest`` / ``ExportLogsServiceRequest``) into
rows: the walk over the document, AnyValue in its JSON spelling, camelCase or snake_case."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from obslib.errors import InputError
from obslib.ingest import records
from obslib.ingest.otlp.mapping import (
    KIND_NAMES,
    KINDS,
    SEVERITY_NAMES,
    STATUS_ERROR,
    STATUS_NAMES,
    UNKNOWN_SERVICE,
    enum_value,
    log_row,
    service_of,
)
from obslib.ingest.records import Decoded, RecordError, Reject


def decode_json(doc: Any, source: str, where: str = "") -> Decoded:
    """One OTLP/JSON document (``ExportTraceServiceRequest`` and/or
    ``ExportLogsServiceRequest``): rows and rejects; an InputError when it is not OTLP."""
    prefix = f"{where}: " if where else ""
    if not isinstance(doc, dict):
        raise InputError(f"{source}: {prefix}not an OTLP/JSON object ({records.kind_of(doc)})")
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
        raise RecordError(f"span is {records.kind_of(span)}, not an object")
    trace_id = records.hex_id(_get(span, "traceId", ""), 16, "traceId")
    span_id = records.hex_id(_get(span, "spanId", ""), 8, "spanId")
    parent = _get(span, "parentSpanId", "")
    parent_id = records.hex_id(parent, 8, "parentSpanId") if parent not in ("", None) else None
    tags = {**base, **_attributes(_get(span, "attributes", []), "attributes")}
    status = _get(span, "status") or {}
    if not isinstance(status, dict):
        raise RecordError(f"status is {records.kind_of(status)}, not an object")
    code = enum_value(_get(status, "code", 0), STATUS_NAMES, "status code")
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
    kind = enum_value(_get(span, "kind", 0), KIND_NAMES, "span kind")
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
                raise RecordError(f"log record is {records.kind_of(log)}, not an object")
            body = _get(log, "body")
            fields = _attributes(_get(log, "attributes", []), "attributes")
            out.logs.append(
                log_row(
                    out,
                    time=_get(log, "timeUnixNano", 0),
                    observed=_get(log, "observedTimeUnixNano", 0),
                    number=enum_value(_get(log, "severityNumber", 0), SEVERITY_NAMES, "severity"),
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


def _resource_json(container: dict) -> tuple[dict, str]:
    resource = _get(container, "resource") or {}
    if not isinstance(resource, dict):
        raise RecordError(f"resource is {records.kind_of(resource)}, not an object")
    attributes = _attributes(_get(resource, "attributes", []), "resource attributes")
    return attributes, service_of(attributes)


def _scope_json(scope: Any) -> dict:
    if not scope:
        return {}
    if not isinstance(scope, dict):
        raise RecordError(f"scope is {records.kind_of(scope)}, not an object")
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
            raise RecordError(f"{what}: a key is {records.kind_of(key)}, not a string")
        value = kv.get("value")
        out[key] = None if value is None else _any_json(value, f"{what} {records.show(key)}", 0)
    return out


def _any_json(value: Any, what: str, depth: int) -> Any:
    """An OTLP/JSON AnyValue as plain JSON (int64 strings as ints, bytes as base64 text)."""
    if depth > records.MAX_DEPTH:
        raise RecordError(f"{what} is nested more than {records.MAX_DEPTH} levels deep")
    if not isinstance(value, dict):
        raise RecordError(f"{what} is {records.kind_of(value)}, not an AnyValue object")
    for key, convert in _ANY_JSON:
        if key in value or _SNAKE[key] in value:
            return convert(_get(value, key), what, depth)
    return None  # an empty AnyValue: the attribute is present with no value


def _int_value(v: Any, what: str, depth: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int | str):
        raise RecordError(f"{what}: intValue is {records.kind_of(v)}")
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
        raise RecordError(f"{what}: doubleValue is {records.kind_of(v)}")
    return float(v)


def _typed(kind: type, name: str) -> Callable[[Any, str, int], Any]:
    def check(v: Any, what: str, depth: int) -> Any:
        if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
            raise RecordError(f"{what}: {name} is {records.kind_of(v)}")
        return v

    return check


def _bytes_value(v: Any, what: str, depth: int) -> str:
    if not isinstance(v, str):
        raise RecordError(f"{what}: bytesValue is {records.kind_of(v)}")
    try:
        base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError):
        raise RecordError(f"{what}: bytesValue is not base64") from None
    return v


def _array_value(v: Any, what: str, depth: int) -> list:
    if not isinstance(v, dict):
        raise RecordError(f"{what}: arrayValue is {records.kind_of(v)}")
    values = _get(v, "values", [])
    if not isinstance(values, list):
        raise RecordError(f"{what}: arrayValue.values is {records.kind_of(values)}")
    return [_any_json(x, what, depth + 1) for x in values]


def _kvlist_value(v: Any, what: str, depth: int) -> dict:
    if not isinstance(v, dict):
        raise RecordError(f"{what}: kvlistValue is {records.kind_of(v)}")
    out = {}
    for kv in _records_list(_get(v, "values", []), what):
        key = kv.get("key")
        if not isinstance(key, str):
            raise RecordError(f"{what}: a key is {records.kind_of(key)}, not a string")
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
        raise RecordError(f"{what} is {records.kind_of(value)}, not a list")
    for item in value:
        if not isinstance(item, dict):
            raise RecordError(f"{what} holds {records.kind_of(item)}, not objects")
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
                raise InputError(f"{source}: {prefix}{key} is {records.kind_of(value)}, not a list")
            return value
    return []


def _obj(value: Any, source: str, prefix: str, path: str) -> dict:
    if not isinstance(value, dict):
        raise InputError(f"{source}: {prefix}{path} is {records.kind_of(value)}, not an object")
    return value
