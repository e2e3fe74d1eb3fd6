"""JSON-lines logs in the plan's ``StructuredLogEntry`` shape as log rows.

One object per line: ``timestamp`` (RFC 3339 text, as Go's ``time.Time`` writes it, with up
to nanosecond fractions and a Z or +hh:mm offset; no offset means UTC, as in
``values.utc``), ``level`` (``records.level_of``: WARNING -> warn), ``service_name``,
``message``, and optionally ``trace_id``, ``span_id``, ``fields`` (an object) and ``error``.
Absent, null and empty optional values are the same (Go's ``omitempty`` leaves them out).
Other keys are ignored.

A malformed trace or span id does not lose the log: it is kept without a trace link (both
ids empty), counted in ``Decoded.unlinked``, and the ids it carried are kept as text in
``fields["obslib.unlinked_trace_id"]`` / ``fields["obslib.unlinked_span_id"]``. A span id
without a trace id cannot be linked either. Anything else wrong rejects the line.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from obslib.ingest import records
from obslib.schema import LOG_LEVELS

UNLINKED_TRACE_ID = "obslib.unlinked_trace_id"
UNLINKED_SPAN_ID = "obslib.unlinked_span_id"
_ALIASES = [name for name in records.LEVEL_BY_NAME if name not in LOG_LEVELS]
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))?"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def decode(doc: Any, source: str, where: str) -> records.Decoded:
    """The log row of one line (``doc``, its parsed JSON), or its reject.

    Every line is one record, so nothing here is an ``InputError``: a line that is not an
    object is rejected like any other bad record."""
    out = records.Decoded()
    position = where or "document"
    try:
        row, unlinked = _entry(doc, position)
    except records.RecordError as err:
        out.rejects.append(records.Reject(source, position, str(err), "log"))
        return out
    out.logs.append(row)
    out.unlinked += unlinked
    return out


def timestamp_ns(value: Any) -> int:
    """Nanoseconds since the epoch of an RFC 3339 time, exactly (no float on the way);
    times outside 1970..2262 are refused like ``records.unix_ns`` refuses them."""
    if not isinstance(value, str):
        raise records.RecordError(f"timestamp is {records.kind_of(value)}, not an RFC 3339 string")
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise records.RecordError(f"timestamp {records.brief(value)} is not an RFC 3339 time")
    year, month, day, hour, minute, second, fraction, _z, sign, oh, om = match.groups()
    try:
        moment = datetime(*map(int, (year, month, day, hour, minute, second)), tzinfo=UTC)
    except ValueError as err:
        raise records.RecordError(
            f"timestamp {records.brief(value)} is not a valid time: {err}"
        ) from None
    if int(oh or 0) > 23 or int(om or 0) > 59:
        raise records.RecordError(f"timestamp {records.brief(value)} has an invalid UTC offset")
    offset = (int(oh or 0) * 3600 + int(om or 0) * 60) * (-1 if sign == "-" else 1)
    seconds = (moment - _EPOCH) // timedelta(seconds=1) - offset
    ns = seconds * 1_000_000_000 + int((fraction or "").ljust(9, "0"))
    if ns < 0:
        raise records.RecordError(f"timestamp {records.brief(value)} is before 1970")
    if ns == 0:
        raise records.RecordError(
            f"timestamp {records.brief(value)} is the epoch itself (0, unset)"
        )
    if ns > records.MAX_NS:
        raise records.RecordError(f"timestamp {records.brief(value)} is after 2262 (out of range)")
    return ns


def _entry(doc: Any, position: str) -> tuple[dict[str, Any], int]:
    """(row, 1 if its trace link was dropped else 0) of one entry."""
    if not isinstance(doc, dict):
        raise records.RecordError(f"entry is {records.kind_of(doc)}, not an object")
    ns = timestamp_ns(doc.get("timestamp"))
    given = doc.get("level")
    level = records.level_of(given)
    if level is None:
        raise records.RecordError(
            f"level {'is missing' if given is None else records.brief(given) + ' is unknown'}:"
            f" one of {', '.join(LOG_LEVELS)} (or {', '.join(_ALIASES)})"
        )
    fields = doc.get("fields")
    if fields is None:
        fields = {}
    if not isinstance(fields, dict):
        raise records.RecordError(f"fields is {records.kind_of(fields)}, not an object")
    error = doc.get("error")
    error = None if error == "" else error
    trace_id, span_id, carried = _link(doc.get("trace_id"), doc.get("span_id"))
    if carried:
        fields = {**fields, **carried}
    row = records.log_row(
        timestamp_ns=ns,
        level=level,
        service_name=doc.get("service_name"),
        trace_id=trace_id,
        span_id=span_id,
        message=doc.get("message"),
        fields=fields,
        error=error,
        position=position,
    )
    return row, 1 if carried is not None else 0


def _link(trace: Any, span: Any) -> tuple[str | None, str | None, dict[str, str] | None]:
    """(trace id, span id, None) when the ids link the log to a span or trace, else
    (None, None, the raw ids as fields): a bad id must not lose the log."""
    trace = None if trace == "" else trace
    span = None if span == "" else span
    if trace is None and span is None:
        return None, None, None
    try:
        if trace is None:
            raise records.RecordError("span id without trace id")
        trace_id = records.hex_id(trace, 16, "trace id")
        span_id = None if span is None else records.hex_id(span, 8, "span id")
        return trace_id, span_id, None
    except records.RecordError:
        carried = {UNLINKED_TRACE_ID: _raw(trace), UNLINKED_SPAN_ID: _raw(span)}
        return None, None, {k: v for k, v in carried.items() if v is not None}


def _raw(value: Any) -> str | None:
    """An id as the text it was (JSON for a non-string); None when absent or unstorable."""
    if value is None:
        return None
    if not isinstance(value, str):
        try:
            value = orjson.dumps(value).decode()
        except orjson.JSONEncodeError:
            return None
    return None if "\x00" in value else value
