"""The OTLP data model's mapping onto obslib's rows, shared by the JSON and protobuf
decoders: enums, severities, log records and their trace links, the service name."""

from __future__ import annotations

from typing import Any

import orjson

from obslib.ingest import records
from obslib.ingest.records import Decoded, RecordError

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


SEVERITY_NAMES = {"SEVERITY_NUMBER_UNSPECIFIED": 0} | {
    f"SEVERITY_NUMBER_{name.upper()}{'' if i % 4 == 0 else i % 4 + 1}": i + 1
    for i, name in enumerate(
        n for n in ("trace", "debug", "info", "warn", "error", "fatal") for _ in range(4)
    )
}


def log_row(
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


def service_of(resource: dict) -> str:
    service = resource.get("service.name")
    if service in (None, ""):
        return UNKNOWN_SERVICE
    if not isinstance(service, str):
        raise RecordError(f"resource service.name is {records.kind_of(service)}, not a string")
    return service


def enum_value(value: Any, names: dict[str, int], what: str) -> int:
    """An OTLP enum: an integer (the spec), its name or its decimal string (tolerated)."""
    if isinstance(value, str):
        if value in names:
            return names[value]
        if value.isdigit() and value.isascii() and len(value) <= 10:
            return int(value)
        raise RecordError(f"{what} {records.show(value)} is not a known value")
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(f"{what} is {records.kind_of(value)}, not an integer")
    if value < 0:
        raise RecordError(f"{what} {value} is negative")
    return value
