"""JSON-lines log decoding (obslib.ingest.logfile): exact rows, nanosecond times, every
reject reason, the unlinked-id rule and the log id."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obslib.ingest import logfile, records

T = 1_709_633_472  # 2024-03-05T10:11:12Z in seconds (date -u -d @1709633472)
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def entry(**changes: Any) -> dict[str, Any]:
    """A full valid entry, with ``changes`` applied (a value of ``...`` removes the key)."""
    doc = {
        "timestamp": "2024-03-05T10:11:12.123456789Z",
        "level": "WARNING",
        "service_name": "checkout",
        "trace_id": TRACE.upper(),
        "span_id": SPAN.upper(),
        "message": "payment slow",
        "fields": {"attempt": 2, "user": {"id": "u1"}},
        "error": "deadline exceeded",
    }
    for key, value in changes.items():
        if value is ...:
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc


def row_of(doc: Any, where: str = "line 1") -> dict[str, Any]:
    """The one row of ``doc``; fails the test when it was rejected."""
    out = logfile.decode(doc, "app.jsonl", where)
    assert not out.rejects, out.rejects
    return out.logs[0]


def reason_of(doc: Any) -> str:
    """The reject reason of ``doc``; fails the test when it was kept."""
    out = logfile.decode(doc, "app.jsonl", "line 7")
    assert out.logs == [] and out.unlinked == 0
    [reject] = out.rejects
    assert (reject.source, reject.position, reject.kind) == ("app.jsonl", "line 7", "log")
    return reject.reason


def test_a_full_entry_becomes_an_exact_row() -> None:
    """Time floored to µs, level normalised, ids lowercased, fields and error kept."""
    row = row_of(entry(extra="ignored"))
    assert len(row["log_id"]) == 32 and int(row["log_id"], 16) >= 0
    assert row == {
        "log_id": row["log_id"],
        "timestamp": T * 1_000_000 + 123_456,
        "level": "warn",
        "service_name": "checkout",
        "trace_id": TRACE,
        "span_id": SPAN,
        "message": "payment slow",
        "fields": {"attempt": 2, "user": {"id": "u1"}},
        "error": "deadline exceeded",
        "position": "line 1",
    }


def test_a_single_document_is_positioned_as_the_document() -> None:
    """Without a line (a single-document file) the position still says where."""
    assert row_of(entry(), where="")["position"] == "document"
    assert logfile.decode([], "app.json", "").rejects[0].position == "document"


@pytest.mark.parametrize(
    "absent",
    [..., None, ""],
    ids=["optional keys left out", "optional keys null", "optional keys empty"],
)
def test_optional_keys_may_be_absent(absent: Any) -> None:
    """trace_id, span_id, fields and error are optional (Go's omitempty drops them)."""
    doc = entry(trace_id=absent, span_id=absent, error=absent)
    doc["fields"] = ... if absent == "" else absent
    if doc["fields"] is ...:
        del doc["fields"]
    out = logfile.decode(doc, "app.jsonl", "line 1")
    [row] = out.logs
    assert (row["trace_id"], row["span_id"], row["fields"], row["error"]) == (None, None, {}, None)
    assert out.unlinked == 0


def test_a_trace_id_without_a_span_id_links_to_the_trace() -> None:
    """A log may belong to a trace and no particular span."""
    row = row_of(entry(span_id=...))
    assert (row["trace_id"], row["span_id"]) == (TRACE, None)


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2024-03-05T10:11:12Z", T * 10**9),
        ("2024-03-05T10:11:12.5Z", T * 10**9 + 500_000_000),
        ("2024-03-05T10:11:12.000000001Z", T * 10**9 + 1),
        ("2024-03-05T10:11:12.123456789Z", T * 10**9 + 123_456_789),
        ("2024-03-05T12:11:12.25+02:00", T * 10**9 + 250_000_000),
        ("2024-03-05T04:41:12-05:30", T * 10**9),
        ("2024-03-05T10:11:12", T * 10**9),
        ("2024-03-05t10:11:12z", T * 10**9),
        ("1970-01-01T00:00:00.000000001Z", 1),
        ("2262-04-11T23:47:16.854775807Z", 2**63 - 1),
    ],
    ids=[
        "whole seconds in UTC",
        "one fraction digit is tenths",
        "nanoseconds are kept exactly",
        "nine fraction digits",
        "a positive offset is subtracted",
        "a negative half-hour offset is added",
        "no offset is UTC",
        "lowercase t and z",
        "the first nanosecond after the epoch",
        "the last nanosecond pandas holds",
    ],
)
def test_rfc3339_times_parse_to_exact_nanoseconds(text: str, ns: int) -> None:
    """Go's time.Time JSON to integer ns with no float on the way."""
    assert logfile.timestamp_ns(text) == ns


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (["a"], "entry is a JSON array, not an object"),
        ("text", "entry is a string, not an object"),
        (None, "entry is missing, not an object"),
        (entry(timestamp=...), "timestamp is missing, not an RFC 3339 string"),
        (entry(timestamp=1709633472), "timestamp is a number, not an RFC 3339 string"),
        (entry(timestamp="yesterday"), "timestamp 'yesterday' is not an RFC 3339 time"),
        (
            entry(timestamp="2024-03-05T10:11:12.1234567891Z"),
            "timestamp '2024-03-05T10:11:12.1234567891Z' is not an RFC 3339 time",
        ),
        (
            entry(timestamp="2024-02-30T10:11:12Z"),
            "timestamp '2024-02-30T10:11:12Z' is not a valid time: day is out of range for month",
        ),
        (
            entry(timestamp="2024-03-05T10:11:12+24:00"),
            "timestamp '2024-03-05T10:11:12+24:00' has an invalid UTC offset",
        ),
        (
            entry(timestamp="1969-12-31T23:59:59.999999999Z"),
            "timestamp '1969-12-31T23:59:59.999999999Z' is before 1970",
        ),
        (
            entry(timestamp="1970-01-01T01:00:00+01:00"),
            "timestamp '1970-01-01T01:00:00+01:00' is the epoch itself (0, unset)",
        ),
        (
            entry(timestamp="2262-04-11T23:47:16.854775808Z"),
            "timestamp '2262-04-11T23:47:16.854775808Z' is after 2262 (out of range)",
        ),
        (
            entry(level="notice"),
            "level 'notice' is unknown: one of trace, debug, info, warn, error, fatal"
            " (or warning, critical, err, information)",
        ),
        (
            entry(level=...),
            "level is missing: one of trace, debug, info, warn, error, fatal"
            " (or warning, critical, err, information)",
        ),
        (entry(fields=["a"]), "fields is a JSON array, not an object"),
        (entry(fields={"k": "a\x00"}), "attributes contains a NUL character"),
        (entry(service_name=...), "service name is missing, not a string"),
        (entry(service_name=" "), "service name is blank"),
        (entry(service_name="s" * 101), "service name is 101 characters long, more than 100"),
        (entry(message=...), "message is missing, not a string"),
        (entry(error=5), "error is a number, not a string"),
    ],
    ids=[
        "a line that is an array",
        "a line that is a string",
        "a line that is null",
        "a missing timestamp",
        "a numeric timestamp",
        "an unparseable timestamp",
        "ten fraction digits",
        "a date that does not exist",
        "an offset of 24 hours",
        "a time before 1970",
        "the epoch itself",
        "a time after 2262",
        "an unknown level",
        "a missing level",
        "fields that are not an object",
        "fields with a NUL",
        "a missing service name",
        "a blank service name",
        "a service name too long",
        "a missing message",
        "an error that is not text",
    ],
)
def test_a_bad_entry_is_rejected_with_its_reason(doc: Any, reason: str) -> None:
    """One reject for the line, saying what is wrong; nothing is stored."""
    assert reason_of(doc) == reason


@pytest.mark.parametrize(
    ("trace_id", "span_id", "carried"),
    [
        (
            "4bf92f35",
            SPAN,
            {"obslib.unlinked_trace_id": "4bf92f35", "obslib.unlinked_span_id": SPAN},
        ),
        (TRACE, "zz", {"obslib.unlinked_trace_id": TRACE, "obslib.unlinked_span_id": "zz"}),
        ("0" * 32, ..., {"obslib.unlinked_trace_id": "0" * 32}),
        (..., SPAN, {"obslib.unlinked_span_id": SPAN}),
        (12345, ..., {"obslib.unlinked_trace_id": "12345"}),
        ("bad\x00id", ..., {}),
    ],
    ids=[
        "a short trace id",
        "a non-hex span id",
        "an all-zero trace id",
        "a span id without a trace id",
        "a numeric trace id is kept as its JSON text",
        "an id with a NUL is dropped",
    ],
)
def test_a_malformed_id_keeps_the_log_unlinked(trace_id: Any, span_id: Any, carried: dict) -> None:
    """The log is stored without ids, counted as unlinked, the ids it carried in fields."""
    out = logfile.decode(entry(trace_id=trace_id, span_id=span_id), "app.jsonl", "line 1")
    assert out.rejects == [] and out.unlinked == 1
    [row] = out.logs
    assert (row["trace_id"], row["span_id"]) == (None, None)
    assert row["fields"] == {"attempt": 2, "user": {"id": "u1"}, **carried}


def test_unlinked_counts_add_up_over_a_mixed_file() -> None:
    """Every line is one record: stored, unlinked (also stored) or rejected."""
    docs = [
        entry(),
        entry(trace_id="nothex"),
        entry(level="loud"),
        7,
        entry(span_id="1"),
        entry(trace_id=..., span_id=...),
        {},
    ]
    total = records.Decoded()
    for n, doc in enumerate(docs, 1):
        total.extend(logfile.decode(doc, "app.jsonl", f"line {n}"))
    assert total.records == len(docs)
    assert [r["position"] for r in total.logs] == ["line 1", "line 2", "line 5", "line 6"]
    assert [r.position for r in total.rejects] == ["line 3", "line 4", "line 7"]
    assert total.unlinked == 2


def test_the_log_id_tells_nanoseconds_apart_and_repeats_for_identical_entries() -> None:
    """Re-importing stores nothing twice; entries 1 ns apart are two records."""
    first = row_of(entry(timestamp="2024-03-05T10:11:12.123456789Z"))
    again = row_of(entry(timestamp="2024-03-05T10:11:12.123456789Z"), where="line 9")
    later = row_of(entry(timestamp="2024-03-05T10:11:12.123456788Z"))
    assert first["timestamp"] == later["timestamp"]  # the same µs in the table
    assert first["log_id"] == again["log_id"]
    assert first["log_id"] != later["log_id"]


DEEP = orjson.loads(b"[" * 1000 + b"]" * 1000)  # as deep as orjson parses


@pytest.mark.parametrize("key", list(entry()))
def test_a_deeply_nested_value_in_any_key_is_one_record_without_a_crash(key: str) -> None:
    """No message quotes a value so deep its repr would overflow the stack."""
    out = logfile.decode(entry(**{key: DEEP}), "app.jsonl", "line 1")
    assert out.records == 1


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            k: JSON | st.just(v) for k, v in entry(timestamp="2024-03-05T10:11:12.5+01:00").items()
        },
    )
    | JSON
)
def test_any_line_is_one_row_or_one_reject(doc: Any) -> None:
    """Fuzzed lines never raise; each is exactly one record."""
    out = logfile.decode(doc, "app.jsonl", "line 1")
    assert out.records == 1 and out.unlinked <= len(out.logs)
