"""Jaeger's JSON (the UI's "Download JSON", the query API's ``/api/traces``) as span rows.

The document is ``{"data": [trace, ...], ...}`` or one bare trace ``{"traceID", "spans",
"processes"}``. Each span becomes one row:

- ids: 1..32 hex digits for a trace id, 1..16 for a span id (Jaeger prints 64-bit trace
  ids as 16 digits, and some producers drop leading zeros), left-padded with zeros and
  lowercased; a trace id missing on the span is taken from its trace.
- ``service_name``: ``serviceName`` of the span's process (``processID`` in the trace's
  ``processes``, or an inline ``process`` object).
- ``tags``: process tags, then span tags (span tags win), typed by their ``type``
  (int64 -> int, float64 -> float, bool -> bool, string and base64 binary -> text).
- ``span_kind`` from the ``span.kind`` tag (missing or unknown: internal); ``status`` error
  when the ``error`` tag is true or ``otel.status_code`` is ERROR, else ok.
- parent: the first CHILD_OF reference to the same trace, else the first FOLLOWS_FROM one,
  stored with ``tags["ref_type"] = "follows_from"`` (so ``traces.critical_path`` keeps the
  child off the path); with no such reference, a legacy ``parentSpanID`` (zero: a root).
  References not taken as the parent go to ``tags["references"]``.
- times: ``startTime`` and ``duration`` are microseconds; ``logs`` become events
  ``{**fields, "timestamp": ISO-8601 UTC}`` (the event's own time wins over a field of
  that name). Span ``flags`` and ``warnings`` are not kept.
"""

from __future__ import annotations

from typing import Any

from obslib.errors import InputError
from obslib.ingest import records
from obslib.schema import SPAN_KINDS

_HEX = "0123456789abcdef"
TAG_TYPES = ("string", "bool", "int64", "float64", "binary")
REF_TYPES = ("CHILD_OF", "FOLLOWS_FROM")
_INT64 = (-(2**63), 2**63 - 1)


def decode(doc: Any, source: str, where: str) -> records.Decoded:
    """Span rows (and rejects) of one Jaeger JSON document.

    Raises ``InputError`` only when the document is not Jaeger's JSON at all (not an object,
    ``data`` or ``spans`` not lists, a span that is not an object); a span that is Jaeger's
    shape but wrong in a field is a ``Reject`` with its position. The query API's
    ``errors`` only matter when it sent no ``data``: they become the InputError's message.
    """

    def structure(path: str, problem: str) -> InputError:
        return InputError(f"{source}: {where + ': ' if where else ''}{path}: {problem}")

    if not isinstance(doc, dict):
        raise structure(
            "top level", f"is {records.kind_of(doc)}, not a Jaeger trace or {{data: [...]}}"
        )
    if "data" in doc:
        data = doc["data"]
        if data is None and doc.get("errors"):
            raise structure("data", f"is null; the query reported errors: {_errors(doc)}")
        if not isinstance(data, list):
            raise structure("data", f"is {records.kind_of(data)}, not a list of traces")
        traces = [(f"data[{i}]", trace) for i, trace in enumerate(data)]
    elif "spans" in doc:
        traces = [("", doc)]
    else:
        raise structure("top level", "has neither data nor spans: not Jaeger's JSON")

    out = records.Decoded()
    for path, trace in traces:
        if not isinstance(trace, dict):
            raise structure(path, f"is {records.kind_of(trace)}, not a trace object")
        prefix = path + "." if path else ""
        spans = trace.get("spans")
        if not isinstance(spans, list):
            raise structure(f"{prefix}spans", f"is {records.kind_of(spans)}, not a list of spans")
        processes = trace.get("processes", {})
        if processes is None:
            processes = {}
        if not isinstance(processes, dict):
            raise structure(f"{prefix}processes", f"is {records.kind_of(processes)}, not an object")
        for i, span in enumerate(spans):
            if not isinstance(span, dict):
                raise structure(
                    f"{prefix}spans[{i}]", f"is {records.kind_of(span)}, not a span object"
                )
        for i, span in enumerate(spans):
            position = f"{where + ': ' if where else ''}{prefix}spans[{i}]"
            try:
                out.spans.append(_span(span, trace.get("traceID"), processes, position))
            except records.RecordError as err:
                out.rejects.append(records.Reject(source, position, str(err), "span"))
    return out


def padded_id(value: Any, nbytes: int, what: str) -> str:
    """A Jaeger id as ``records.hex_id`` wants it: 1..2*nbytes hex digits, left-padded with
    zeros (Jaeger and some of its clients print ids without leading zeros)."""
    width = 2 * nbytes
    if isinstance(value, str) and 0 < len(value) < width:
        if value.lower().strip(_HEX):
            raise records.RecordError(f"{what} {value!r} is not hexadecimal")
        value = value.rjust(width, "0")
    return records.hex_id(value, nbytes, what)


def _span(span: dict, trace_id: Any, processes: dict, position: str) -> dict[str, Any]:
    """One span as a row; a RecordError says why it cannot be one."""
    trace_id = padded_id(span.get("traceID", trace_id), 16, "trace id")
    span_id = padded_id(span.get("spanID"), 8, "span id")
    process = _process(span, processes)
    tags = _tags(process.get("tags"), "process tags")
    tags.update(_tags(span.get("tags"), "tags"))
    parent, ref_type, others = _parent(span, trace_id)
    if ref_type == "FOLLOWS_FROM":
        tags["ref_type"] = "follows_from"
    if others:
        tags["references"] = others
    kind = tags.get("span.kind")
    kind = kind.lower() if isinstance(kind, str) else ""
    error = tags.get("error")
    failed = error is True or (isinstance(error, str) and error.lower() == "true")
    start_ns = _micros(span.get("startTime"), "startTime")
    duration = _integer(span.get("duration"), "duration")
    end_ns = start_ns + duration * 1000
    if end_ns > records.MAX_NS:
        raise records.RecordError("span ends after 2262 (out of range)")
    return records.span_row(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        service_name=process.get("serviceName"),
        operation_name=span.get("operationName"),
        span_kind=kind if kind in SPAN_KINDS else "internal",
        start_ns=start_ns,
        end_ns=end_ns,
        status="error" if failed or tags.get("otel.status_code") == "ERROR" else "ok",
        tags=tags,
        events=_events(span.get("logs")),
        position=position,
    )


def _process(span: dict, processes: dict) -> dict:
    """The span's process: inline, or named by ``processID`` in the trace's processes."""
    process = span.get("process")
    if process is None:
        pid = span.get("processID")
        if pid is None:
            raise records.RecordError("span has no processID and no process")
        process = processes.get(pid) if isinstance(pid, str) else None
        if process is None:
            raise records.RecordError(
                f"processID {records.brief(pid)} names no process of the trace"
            )
    if not isinstance(process, dict):
        raise records.RecordError(f"process is {records.kind_of(process)}, not an object")
    if "serviceName" not in process:
        raise records.RecordError("process has no serviceName")
    return process


def _parent(span: dict, trace_id: str) -> tuple[str | None, str | None, list[dict[str, str]]]:
    """(parent span id, its reference type, the other references) of a span."""
    refs = span.get("references")
    if refs is None:
        refs = []
    if not isinstance(refs, list):
        raise records.RecordError(f"references is {records.kind_of(refs)}, not a list")
    found = []
    for i, ref in enumerate(refs):
        if not isinstance(ref, dict):
            raise records.RecordError(f"references[{i}] is {records.kind_of(ref)}, not an object")
        ref_type = ref.get("refType")
        if ref_type not in REF_TYPES:
            raise records.RecordError(
                f"references[{i}] refType {records.brief(ref_type)} is not CHILD_OF or FOLLOWS_FROM"
            )
        found.append(
            {
                "ref_type": ref_type.lower(),
                "trace_id": padded_id(ref.get("traceID"), 16, f"references[{i}] trace id"),
                "span_id": padded_id(ref.get("spanID"), 8, f"references[{i}] span id"),
            }
        )
    for wanted in ("child_of", "follows_from"):
        for i, ref in enumerate(found):
            if ref["ref_type"] == wanted and ref["trace_id"] == trace_id:
                return ref["span_id"], wanted.upper(), found[:i] + found[i + 1 :]
    legacy = span.get("parentSpanID")
    if legacy is None or (isinstance(legacy, str) and legacy.strip("0") == ""):
        return None, None, found
    return padded_id(legacy, 8, "parentSpanID"), "CHILD_OF", found


def _tags(tags: Any, what: str) -> dict[str, Any]:
    """Jaeger's typed key-value list as a flat dict (later keys win)."""
    if tags is None:
        return {}
    if not isinstance(tags, list):
        raise records.RecordError(f"{what} is {records.kind_of(tags)}, not a list")
    out: dict[str, Any] = {}
    for i, tag in enumerate(tags):
        if not isinstance(tag, dict):
            raise records.RecordError(f"{what}[{i}] is {records.kind_of(tag)}, not an object")
        key = tag.get("key")
        if not isinstance(key, str):
            raise records.RecordError(f"{what}[{i}] key is {records.kind_of(key)}, not a string")
        out[key] = _tag_value(tag.get("type"), tag.get("value"), f"{what} {key[:40]!r}")
    return out


def _tag_value(kind: Any, value: Any, what: str) -> Any:
    """A tag's value as its ``type`` says (Jaeger writes some bools and ints as text).
    Without a type the JSON value is kept as it is."""
    if kind is None and isinstance(value, str | bool | int | float):
        return value
    if kind in ("string", "binary") and isinstance(value, str):
        return value  # binary is base64 text in Jaeger's JSON: kept as that text
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    if kind == "int64":
        number = _integer(value, what)
        if not _INT64[0] <= number <= _INT64[1]:
            raise records.RecordError(f"{what} {number} does not fit in int64")
        return number
    if kind == "float64" and not isinstance(value, bool):
        if isinstance(value, int | float):
            return records.finite(float(value))
        if isinstance(value, str):
            try:
                return records.finite(float(value))
            except ValueError:
                pass
    if kind not in TAG_TYPES:
        raise records.RecordError(
            f"{what} type {records.brief(kind)} is not one of {', '.join(TAG_TYPES)}"
        )
    raise records.RecordError(
        f"{what} of type {kind} has {records.kind_of(value)} value {records.brief(value)}"
    )


def _events(logs: Any) -> list[dict[str, Any]]:
    """Span logs as events: their fields plus the time as ISO-8601 UTC."""
    if logs is None:
        return []
    if not isinstance(logs, list):
        raise records.RecordError(f"logs is {records.kind_of(logs)}, not a list")
    events = []
    for i, log in enumerate(logs):
        if not isinstance(log, dict):
            raise records.RecordError(f"logs[{i}] is {records.kind_of(log)}, not an object")
        ns = _micros(log.get("timestamp"), f"logs[{i}] timestamp")
        events.append(
            {**_tags(log.get("fields"), f"logs[{i}] fields"), "timestamp": records.iso_ns(ns)}
        )
    return events


def _micros(value: Any, what: str) -> int:
    """Microseconds since the epoch as nanoseconds, with ``records.unix_ns``'s range rules."""
    micros = records.unix_ns(value, what)
    if micros > records.MAX_NS // 1000:
        raise records.RecordError(f"{what} {micros} µs is after 2262 (out of range)")
    return micros * 1000


def _integer(value: Any, what: str) -> int:
    """An integer, its decimal text or an integral float (JSON producers differ)."""
    if isinstance(value, bool) or value is None:
        raise records.RecordError(f"{what} is {records.kind_of(value)}, not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        number = records.integer(value)
        if number is not None:
            return number
    raise records.RecordError(f"{what} {records.brief(value)} is not an integer")


def _errors(doc: dict) -> str:
    """The query API's ``errors`` list as one line."""
    errors = doc.get("errors")
    items = errors if isinstance(errors, list) else [errors]
    return "; ".join(
        e["msg"] if isinstance(e, dict) and isinstance(e.get("msg"), str) else records.brief(e)
        for e in items
    ).replace("\n", " ")[:200]
