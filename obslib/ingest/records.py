"""Telemetry decoded from outside formats, before it is stored: rows for the writers, and
every record refused with where it was and why.

The OTLP, Jaeger and JSON-lines decoders and the OTLP receiver share this, so the rules of
what a valid record is live once. A decoder never lets one bad record spoil a file: the
record's check raises ``RecordError``, the decoder turns it into a ``Reject`` and carries on.
Only a file that cannot be read as its format at all (truncated JSON, a list where an
object must be) is an ``InputError`` for the whole file, and nothing of it is written.

Rows hold exactly what the writers' specs need (``tables.SPAN_SPEC``, ``tables.LOG_SPEC``),
with times as integer microseconds since the epoch (PostgreSQL's resolution; nanoseconds
are floored) and ``position`` saying where the record came from.
"""

from __future__ import annotations

import hashlib
import math
import re
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from obslib import schema
from obslib.ingest.tables import LOG_SPEC
from obslib.values import json_value

# Times a pandas datetime64[ns] holds: after 1970 (0 is OTLP's "unset") and before 2262.
MAX_NS = 2**63 - 1
MAX_DURATION_US = 10**15 - 1  # duration_ms is NUMERIC(15,3): under 10^12 ms
SERVICE_WIDTH = 100  # VARCHAR widths of the tables (tables.SPAN_SPEC / LOG_SPEC)
OPERATION_WIDTH = 200
UNNAMED = "(unnamed)"  # what a span with an empty name is stored as (the column needs text)
NO_MESSAGE = "(no message)"  # a log record without a body (the column needs text)
MAX_DEPTH = 64  # nested attribute values deeper than this are refused, not recursed into
LEVEL_BY_NAME = {
    **{level: level for level in schema.LOG_LEVELS},
    "warning": "warn",
    "critical": "fatal",
    "err": "error",
    "information": "info",
}


class RecordError(ValueError):
    """One record is invalid; the decoder rejects it and goes on with the next."""


@dataclass(frozen=True)
class Reject:
    """A record not stored: ``source`` (file or request), ``position`` in it, the ``reason``."""

    source: str
    position: str
    reason: str
    kind: str = "span"  # span | log

    def __str__(self) -> str:
        return f"{self.source}: {self.position}: {self.reason}"

    def as_dict(self) -> dict[str, str]:
        return {
            "source": self.source,
            "position": self.position,
            "kind": self.kind,
            "reason": self.reason,
        }


@dataclass
class Decoded:
    """What a decoder made of its input: span rows, log rows, rejected records.

    ``unlinked`` counts log records kept without their trace link because the ids they
    carried were malformed (they are stored, so they are not rejects).
    """

    spans: list[dict[str, Any]] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    unlinked: int = 0

    @property
    def records(self) -> int:
        """Every record seen: stored candidates plus rejects (the input of the count rule)."""
        return len(self.spans) + len(self.logs) + len(self.rejects)

    def extend(self, other: Decoded) -> None:
        self.spans.extend(other.spans)
        self.logs.extend(other.logs)
        self.rejects.extend(other.rejects)
        self.unlinked += other.unlinked


# -- values ---------------------------------------------------------------------------------


def hex_id(value: Any, nbytes: int, what: str) -> str:
    """A trace (16-byte) or span (8-byte) id as lowercase hex: the OTLP/JSON and W3C rule.
    Empty, all-zero, wrong-length and non-hex ids are refused (base64 is not hex)."""
    if not isinstance(value, str):
        raise RecordError(f"{what} is {kind_of(value)}, not a hex string")
    if value == "":
        raise RecordError(f"{what} is empty")
    if len(value) != 2 * nbytes:
        raise RecordError(
            f"{what} {show(value)} has {len(value)} characters, not {2 * nbytes} hex digits"
        )
    lower = value.lower()
    if lower.strip("0123456789abcdef"):
        raise RecordError(f"{what} {show(value)} is not hexadecimal")
    if lower.count("0") == len(lower):
        raise RecordError(f"{what} is all zeros")
    return lower


def bytes_id(value: bytes, nbytes: int, what: str) -> str:
    """A protobuf id (raw bytes) as lowercase hex, with the same rules as ``hex_id``."""
    if not value:
        raise RecordError(f"{what} is empty")
    if len(value) != nbytes:
        raise RecordError(f"{what} has {len(value)} bytes, not {nbytes}")
    if not any(value):
        raise RecordError(f"{what} is all zeros")
    return value.hex()


def unix_ns(value: Any, what: str) -> int:
    """Nanoseconds since the epoch: an integer, or its decimal string (OTLP/JSON spells 64-bit
    integers either way). 0 is OTLP's "unset"; outside 1970..2262 is refused."""
    if isinstance(value, bool) or value is None:
        raise RecordError(f"{what} is {kind_of(value)}, not an integer")
    if isinstance(value, str):
        number = integer(value)
        if number is None:
            raise RecordError(f"{what} {show(value)} is not an integer of at most 20 digits")
        value = number
    elif isinstance(value, float):
        if not value.is_integer():
            raise RecordError(f"{what} {value!r} is not an integer")
        value = int(value)
    elif not isinstance(value, int):
        raise RecordError(f"{what} is {kind_of(value)}, not an integer")
    if value == 0:
        raise RecordError(f"{what} is 0 (unset)")
    if value < 0:
        raise RecordError(f"{what} {value} is before 1970")
    if value > MAX_NS:
        raise RecordError(f"{what} {value} is after 2262 (out of range)")
    return value


_INTEGER = re.compile(r"-?[0-9]{1,20}")


def integer(text: str) -> int | None:
    """Decimal text of at most 20 digits as an int, else None: longer is past 64 bits anyway,
    and ``int()`` of thousands of digits raises (and costs quadratic time)."""
    text = text.strip()
    return int(text) if _INTEGER.fullmatch(text) else None


def text(value: Any, what: str, width: int | None = None) -> str:
    """A string the tables can hold: no NUL character, at most ``width`` characters."""
    if not isinstance(value, str):
        raise RecordError(f"{what} is {kind_of(value)}, not a string")
    if "\x00" in value:
        raise RecordError(f"{what} contains a NUL character")
    if width is not None and len(value) > width:
        raise RecordError(f"{what} is {len(value)} characters long, more than {width}")
    return value


def clean_json(value: Any, what: str) -> Any:
    """``value`` if PostgreSQL's jsonb can store it: JSON-encodable (string keys, integers
    within 64 bits, at most orjson's nesting) and no NUL character anywhere (jsonb refuses
    \\u0000). One orjson encoding checks it all (a walk in Python cost more than the rest of
    the decoding). Decoders turn non-finite floats into text first: JSON has no NaN."""
    try:
        encoded = orjson.dumps(value)
    except orjson.JSONEncodeError as err:
        raise RecordError(f"{what} cannot be stored as JSON: {err}") from None
    if b"\\u0000" in encoded and _NUL.search(encoded):
        raise RecordError(f"{what} contains a NUL character")
    return value


# an escaped NUL: \u0000 after an even number of backslashes (so not the text "\\u0000")
_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def json_shape(value: Any, shape: type, what: str) -> Any:
    """``value`` if it is the JSON container its column holds: a span's attributes (tags) are
    an object, its events (logs) an array, as every decoder builds them."""
    if not isinstance(value, shape):
        want = "a JSON object" if shape is dict else "a JSON array"
        raise RecordError(f"{what} is {kind_of(value)}, not {want}")
    return value


def same_json(a: Any, b: Any) -> bool:
    """Whether two JSON values are equal as PostgreSQL's jsonb compares them, the equality the
    writers' conflict check uses: object keys in any order, numbers by value (1 = 1.0), and
    true is not 1 (Python's == says it is). Used wherever two records must be told apart as
    "identical" (a duplicate) or "other content" (a conflict), so both agree with the table."""
    return _jsonb(a) == _jsonb(b)


def _jsonb(value: Any) -> Any:
    """A JSON value with its type kept where Python's equality would blur it."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", value)  # 1 == 1.0 and -0.0 == 0, as numeric compares
    if isinstance(value, dict):
        return ("object", {k: _jsonb(v) for k, v in value.items()})
    if isinstance(value, list):
        return ("array", [_jsonb(v) for v in value])
    return value


def finite(value: float) -> float | str:
    """A float JSON can hold: non-finite ones as the text protobuf's JSON mapping uses."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def iso_ns(ns: int) -> str:
    """An instant as ISO-8601 UTC keeping its nanoseconds (span events keep their precision)."""
    seconds, frac = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{frac:09d}+00:00"


def level_of(name: str) -> str | None:
    """A log level from a severity or level name ("WARNING" -> warn), None when unknown."""
    return LEVEL_BY_NAME.get(name.strip().lower()) if isinstance(name, str) else None


# -- rows -----------------------------------------------------------------------------------


def span_row(
    *,
    trace_id: str,
    span_id: str,
    parent_span_id: str | None,
    service_name: Any,
    operation_name: Any,
    span_kind: str,
    start_ns: int,
    end_ns: int,
    status: str,
    tags: dict[str, Any],
    events: list[Any],
    position: str,
) -> dict[str, Any]:
    """A row for ``Batch.spans`` from checked ids and times; refuses what the table would.

    A span ending before it starts is refused, not clipped: its times are wrong and a
    clipped span would pass for a real zero-length one."""
    if end_ns < start_ns:
        raise RecordError(f"span ends {start_ns - end_ns} ns before it starts")
    start_us, end_us = start_ns // 1000, end_ns // 1000
    if end_us - start_us > MAX_DURATION_US:
        raise RecordError("span lasts longer than the duration column holds (31 years)")
    if span_kind not in schema.SPAN_KINDS:
        raise RecordError(f"span kind {span_kind!r} is not one of {', '.join(schema.SPAN_KINDS)}")
    return {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent_span_id,
        "service_name": name(service_name, "service name", SERVICE_WIDTH),
        "operation_name": name(operation_name, "span name", OPERATION_WIDTH, blank=UNNAMED),
        "span_kind": span_kind,
        "start_time": start_us,
        "end_time": end_us,
        "status": status,
        "tags": clean_json(json_shape(tags, dict, "attributes"), "attributes"),
        "logs": clean_json(json_shape(events, list, "events"), "events"),
        "position": position,
    }


def log_row(
    *,
    timestamp_ns: int,
    level: str,
    service_name: Any,
    trace_id: str | None,
    span_id: str | None,
    message: Any,
    fields: dict[str, Any],
    error: str | None,
    position: str,
) -> dict[str, Any]:
    """A row for ``Batch.logs``. ``log_id`` hashes the whole record (nanosecond time
    included), so re-importing stores nothing twice and two different records never merge."""
    row = {
        "timestamp": timestamp_ns // 1000,
        "level": level,
        "service_name": name(service_name, "service name", SERVICE_WIDTH),
        "trace_id": trace_id,
        "span_id": span_id,
        "message": name(message, "message", blank=NO_MESSAGE),
        "fields": clean_json(fields, "attributes"),
        "error": None if error is None else text(error, "error"),
    }
    identity = {**row, "timestamp": timestamp_ns}
    digest = hashlib.sha256(orjson.dumps(identity, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return {"log_id": digest[:32], **row, "position": position}


def name(value: Any, what: str, width: int | None = None, blank: str | None = None) -> str:
    """A required text column: blank (empty or spaces) becomes ``blank`` when given (a span
    without a name is still a span), else the record is refused."""
    value = text(value, what, width)
    if value.strip():
        return value
    if blank is None:
        raise RecordError(f"{what} is {'empty' if value == '' else 'blank'}")
    return blank


# -- rows from elsewhere --------------------------------------------------------------------

# The ids of a staged span (tables.SPAN_SPEC) and their size in bytes (a parent may be null).
SPAN_IDS = (("trace_id", 16), ("span_id", 8), ("parent_span_id", 8))
SPAN_TIMES = ("start_time", "end_time")
SPAN_JSON = (("tags", dict), ("logs", list))


def check_span_table(table: pa.Table) -> pa.Table:
    """Staged spans (``Batch.spans``: a frame from ``write_spans`` or a notebook, not only
    decoder rows) held to the decoders' rules, ids lowercased as they store them.

    The rule functions above decide (``hex_id``, ``unix_ns``, ``json_shape``); Arrow only
    screens the table for the rows that could break one (a million spans cost ~0.1 s, where
    calling the rules on every value cost seconds), so each rule still lives once. Raises
    RecordError("row N: reason") for the first offending row of the first rule it breaks."""
    for column, nbytes in SPAN_IDS:
        ids = table[column]
        maybe = pc.or_(
            pc.invert(pc.match_substring_regex(ids, f"^[0-9a-fA-F]{{{2 * nbytes}}}$")),
            pc.match_substring_regex(ids, "^0*$"),
        )
        _decide(maybe, lambda i, c=column, n=nbytes, v=ids: hex_id(v[i].as_py(), n, c))
        where = table.schema.get_field_index(column)
        table = table.set_column(where, column, pc.utf8_lower(ids))
    for column in SPAN_TIMES:
        stamps = table[column]
        micros = stamps.cast(pa.int64())
        maybe = pc.or_(pc.less_equal(micros, 0), pc.greater(micros, MAX_NS // 1000))
        _decide(maybe, lambda i, c=column, m=micros, t=stamps: _time(m[i].as_py(), t[i], c))
    for column, shape in SPAN_JSON:
        text = table[column]
        opening = "{" if shape is dict else "["
        maybe = pc.invert(pc.starts_with(pc.utf8_ltrim_whitespace(text), opening))
        _decide(maybe, lambda i, c=column, t=text, k=shape: _shape(t[i].as_py(), k, c))
    return table


def _decide(maybe: pa.ChunkedArray | pa.Array, rule: Any) -> None:
    """Run ``rule(row)`` on each row the screen flagged, in order; the first refusal wins."""
    flagged = pc.fill_null(maybe, False).to_numpy(zero_copy_only=False)
    for row in flagged.nonzero()[0]:
        try:
            rule(int(row))
        except RecordError as err:
            raise RecordError(f"row {int(row)}: {err}") from None


def _time(micros: int, stamp: pa.Scalar, column: str) -> None:
    try:
        unix_ns(micros * 1000, column)
    except RecordError as err:
        with suppress(ValueError, OverflowError):  # past year 9999: the number says it
            err = RecordError(f"{err} ({stamp.as_py().isoformat()})")
        raise err from None


def _shape(text: str, shape: type, column: str) -> None:
    try:
        value = json_value(text)
    except ValueError:
        return  # not JSON at all: jsonb refuses it in the merge, naming the row
    json_shape(value, shape, column)


# -- frames for the writers -----------------------------------------------------------------

# what the decoders fill: the table's columns but the duration, which the writer derives
SPAN_ROW_COLUMNS = (
    *(c for c in schema.SPAN_COLUMNS if c != "duration_ms"),
    schema.SAMPLING_PROBABILITY,  # set by the collector's sampler only (missing: 1)
)
LOG_ROW_COLUMNS = tuple(c.name for c in LOG_SPEC)


def spans_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Span rows as the frame ``Batch.spans`` takes (times as UTC datetimes)."""
    frame = pd.DataFrame.from_records(rows, columns=list(SPAN_ROW_COLUMNS))
    for c in ("start_time", "end_time"):
        frame[c] = pd.to_datetime(frame[c].astype("int64"), unit="us", utc=True)
    return frame


def logs_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Log rows as the frame ``Batch.logs`` takes."""
    frame = pd.DataFrame.from_records(rows, columns=list(LOG_ROW_COLUMNS))
    frame["timestamp"] = pd.to_datetime(frame["timestamp"].astype("int64"), unit="us", utc=True)
    return frame


def kind_of(value: Any) -> str:
    """What a JSON value is, for a message ("a number", "a JSON array", "missing"): the one
    wording of every decoder's (OTLP, Jaeger, log files) and the writer's refusals."""
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return f"a JSON {'object' if isinstance(value, dict) else 'array'}"


def brief(value: Any) -> str:
    """Any value for a message: short, one line, and never the repr of a nested value (a
    deeply nested one would overflow the stack)."""
    if isinstance(value, dict | list):
        return "{...}" if isinstance(value, dict) else "[...]"
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def show(value: str) -> str:
    """A string for a message: quoted, cut at 40 characters (input may be huge)."""
    return repr(value if len(value) <= 40 else value[:40] + "...")
