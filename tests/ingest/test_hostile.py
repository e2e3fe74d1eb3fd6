"""Hostile OTLP/JSON files: each bad record is refused with its file, position and reason; a
file that is not OTLP/JSON stores nothing (whatever chunks went before); ids are lowered;
re-imports change nothing; and fuzzed documents only ever raise obslib's InputError."""

from __future__ import annotations

import base64
import copy
import gzip
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from obslib import schema
from obslib.errors import InputError
from obslib.ingest import importer
from obslib.ingest.importer import FileReport
from obslib.storage.migrate import Migrator
from tests.conftest import MIGRATIONS, run_cli, scratch_database

TRACE = "0af7651916cd43dd8448eb211c80319c"
TRACE2 = "4bf92f3577b34da6a3ce929d0e0e4736"
ROOT = "00f067aa0ba902b7"
T0 = 1_763_629_200_000_000_000  # 2025-11-20T09:00:00Z, in ns
MS = 1_000_000
POS = "resourceSpans[0].scopeSpans[0].spans[{}]"
LOG_POS = "resourceLogs[0].scopeLogs[0].logRecords[{}]"
STORED_ELSEWHERE = (
    "its trace and span id is stored already with other content (kept, not overwritten)"
)


# -- documents ------------------------------------------------------------------------------


def sid(i: int) -> str:
    """The i-th span id (never all zeros)."""
    return f"{i + 1:016x}"


def span(i: int = 0, **changes: Any) -> dict[str, Any]:
    """A valid OTLP/JSON span of TRACE, child of ROOT; a change to ``None`` drops the key."""
    out: dict[str, Any] = {
        "traceId": TRACE,
        "spanId": sid(i),
        "parentSpanId": ROOT,
        "name": f"op {i}",
        "kind": 2,
        "startTimeUnixNano": str(T0 + i * MS),
        "endTimeUnixNano": str(T0 + i * MS + 5 * MS),
        "attributes": [{"key": "http.route", "value": {"stringValue": f"/r/{i}"}}],
        "status": {},
    }
    out.update(changes)
    return {k: v for k, v in out.items() if v is not None}


def log(i: int = 0, **changes: Any) -> dict[str, Any]:
    """A valid OTLP/JSON log record (INFO, linked to span i); ``None`` drops a key."""
    out: dict[str, Any] = {
        "timeUnixNano": str(T0 + i * MS),
        "severityNumber": 9,
        "severityText": "INFO",
        "body": {"stringValue": f"message {i}"},
        "traceId": TRACE,
        "spanId": sid(i),
    }
    out.update(changes)
    return {k: v for k, v in out.items() if v is not None}


def resource(service: str) -> dict[str, Any]:
    return {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}


def traces(*spans: dict, service: str = "checkout") -> dict[str, Any]:
    """An ExportTraceServiceRequest holding ``spans`` in one resource and scope."""
    scope = {"scope": {"name": "tests"}, "spans": list(spans)}
    return {"resourceSpans": [{"resource": resource(service), "scopeSpans": [scope]}]}


def logs(*records: dict, service: str = "checkout") -> dict[str, Any]:
    """An ExportLogsServiceRequest holding ``records`` in one resource and scope."""
    scope = {"scope": {"name": "tests"}, "logRecords": list(records)}
    return {"resourceLogs": [{"resource": resource(service), "scopeLogs": [scope]}]}


def write(path: Path, *docs: Any, lines: bool = False) -> Path:
    """One pretty-printed document, or JSON lines (one document per line)."""
    if lines:
        path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    else:
        (doc,) = docs
        path.write_text(json.dumps(doc, indent=2))  # json, not orjson: integers past 64 bits
    return path


def ingest(path: Path, url: str, chunk: int = importer.CHUNK_RECORDS) -> FileReport:
    return importer.import_file(path, "otlp", url=url, chunk=chunk)


def refused(report: FileReport) -> list[tuple[str, str, str]]:
    """(position, kind, reason) of every reject, checking each names the file."""
    assert all(r.source == report.path for r in report.rejects)
    return [(r.position, r.kind, r.reason) for r in report.rejects]


def tally(report: FileReport) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(input, accepted, duplicate, rejected) for spans, then logs."""
    o = report.outcome
    return tuple((c.input, c.accepted, c.duplicate, c.rejected) for c in (o.spans, o.logs))


# -- the database ---------------------------------------------------------------------------


def rows(url: str) -> tuple[list[tuple], list[tuple]]:
    """Every stored span and log row, in key order: the tables' whole content."""
    with psycopg.connect(url) as conn:
        spans = conn.execute(f"SELECT * FROM {schema.SPANS} ORDER BY trace_id, span_id")
        span_rows = spans.fetchall()
        log_rows = conn.execute(f"SELECT * FROM {schema.LOGS} ORDER BY log_id").fetchall()
    return span_rows, log_rows


def counts(db: str | psycopg.Connection) -> tuple[int, int]:
    """Stored spans and logs, through a kept connection or a new one for a URL."""
    if isinstance(db, str):
        with psycopg.connect(db, autocommit=True) as conn:
            return counts(conn)
    sql = f"SELECT (SELECT count(*) FROM {schema.SPANS}), (SELECT count(*) FROM {schema.LOGS})"
    n_spans, n_logs = db.execute(sql).fetchone()
    return int(n_spans), int(n_logs)


def query(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture(scope="module")
def shared_db(server_url: str) -> Iterator[str]:
    """One migrated database for the whole module (a fresh one per test or per fuzz example
    is too slow); tests that need empty tables take ``empty_db``."""
    with scratch_database(server_url) as url:
        Migrator(url, MIGRATIONS).up()
        yield url


@pytest.fixture
def empty_db(shared_db: str) -> str:
    """The module's database with its span and log tables emptied."""
    with psycopg.connect(shared_db, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {schema.SPANS}, {schema.LOGS}")
    return shared_db


# -- ids ------------------------------------------------------------------------------------


def b64(hex_id: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode()


BAD_IDS = [  # (field, value, reason); value None: the key is absent
    ("traceId", "", "traceId is empty"),
    ("traceId", None, "traceId is empty"),
    ("traceId", "0" * 32, "traceId is all zeros"),
    ("traceId", TRACE[:30], f"traceId '{TRACE[:30]}' has 30 characters, not 32 hex digits"),
    ("traceId", b64(TRACE), f"traceId '{b64(TRACE)}' has 24 characters, not 32 hex digits"),
    ("traceId", "g" + TRACE[1:], f"traceId 'g{TRACE[1:]}' is not hexadecimal"),
    ("traceId", 42, "traceId is a number, not a hex string"),
    ("spanId", "", "spanId is empty"),
    ("spanId", "0" * 16, "spanId is all zeros"),
    ("spanId", TRACE, f"spanId '{TRACE}' has 32 characters, not 16 hex digits"),
    ("spanId", b64(ROOT), f"spanId '{b64(ROOT)}' has 12 characters, not 16 hex digits"),
    ("spanId", "x" * 16, f"spanId '{'x' * 16}' is not hexadecimal"),
    ("parentSpanId", "0" * 16, "parentSpanId is all zeros"),
    ("parentSpanId", ROOT[:15], f"parentSpanId '{ROOT[:15]}' has 15 characters, not 16 hex digits"),
    ("parentSpanId", b64(ROOT), f"parentSpanId '{b64(ROOT)}' has 12 characters, not 16 hex digits"),
    ("parentSpanId", "-" + ROOT[1:], f"parentSpanId '-{ROOT[1:]}' is not hexadecimal"),
]


def test_every_bad_id_kind_is_rejected_with_its_position_and_reason(
    empty_db: str, tmp_path: Path
) -> None:
    """Empty, absent, all-zero, short, base64 (24 characters for 16 bytes) and non-hex ids in
    traceId, spanId and parentSpanId each reject their span, named by position; the one
    good span of the file is stored."""
    bad = []
    for i, (field, value, _) in enumerate(BAD_IDS):
        s = span(i)
        if value is None:
            del s[field]
        else:
            s[field] = value
        bad.append(s)
    good = span(len(BAD_IDS))
    report = ingest(write(tmp_path / "ids.json", traces(*bad, good)), empty_db)
    assert refused(report) == [
        (POS.format(i), "span", reason) for i, (_, _, reason) in enumerate(BAD_IDS)
    ]
    assert tally(report) == ((len(BAD_IDS) + 1, 1, 0, len(BAD_IDS)), (0, 0, 0, 0))
    assert query(empty_db, f"SELECT span_id FROM {schema.SPANS}") == [(good["spanId"],)]


def test_an_empty_parent_span_id_is_a_root_span(empty_db: str, tmp_path: Path) -> None:
    """OTLP spells "no parent" as an empty parentSpanId (or none at all): a root, not a reject."""
    report = ingest(
        write(
            tmp_path / "roots.json", traces(span(0, parentSpanId=""), span(1, parentSpanId=None))
        ),
        empty_db,
    )
    assert tally(report)[0] == (2, 2, 0, 0)
    assert query(empty_db, f"SELECT parent_span_id FROM {schema.SPANS}") == [(None,), (None,)]


def test_uppercase_ids_are_stored_lowercase(empty_db: str, tmp_path: Path) -> None:
    """Trace, span, parent and link ids of spans, and a log's trace link, are lowered."""
    link = {"traceId": TRACE2.upper(), "spanId": sid(7).upper()}
    upper = span(0, traceId=TRACE.upper(), spanId="ABCDEF0123456789", parentSpanId=ROOT.upper())
    upper["links"] = [link]
    path = write(
        tmp_path / "upper.json",
        {**traces(upper), **logs(log(0, traceId=TRACE.upper(), spanId="ABCDEF0123456789"))},
    )
    report = ingest(path, empty_db)
    assert tally(report) == ((1, 1, 0, 0), (1, 1, 0, 0))
    ((trace_id, span_id, parent, tags),) = query(
        empty_db, f"SELECT trace_id, span_id, parent_span_id, tags FROM {schema.SPANS_TAGGED}"
    )
    assert (trace_id, span_id, parent) == (TRACE, "abcdef0123456789", ROOT)
    assert tags["otel.links"] == [{"trace_id": TRACE2, "span_id": sid(7)}]
    assert query(empty_db, f"SELECT trace_id, span_id FROM {schema.LOGS}") == [
        (TRACE, "abcdef0123456789")
    ]


# -- spellings the spec allows --------------------------------------------------------------


def camel_doc() -> dict[str, Any]:
    """The spec's spelling: lowerCamelCase, enums as integers, 64-bit integers as strings."""
    s0 = span(0, kind=2, status={"code": 2, "message": "boom"})
    s0["attributes"].append({"key": "retries", "value": {"intValue": "42"}})
    s0["events"] = [{"timeUnixNano": str(T0 + MS), "name": "retry"}]
    s1 = span(1, kind=3)
    doc = {**traces(s0, s1), **logs(log(0, severityNumber=13, severityText="WARN"))}
    return doc


def snake_doc() -> dict[str, Any]:
    """The same telemetry as ``camel_doc`` in protobuf's field names, enum names, 64-bit
    integers as JSON numbers, and unknown fields at every level."""

    def snake_span(i: int, kind: str, status: dict) -> dict[str, Any]:
        return {
            "trace_id": TRACE,
            "span_id": sid(i),
            "parent_span_id": ROOT,
            "name": f"op {i}",
            "kind": kind,
            "start_time_unix_nano": T0 + i * MS,
            "end_time_unix_nano": T0 + i * MS + 5 * MS,
            "attributes": [{"key": "http.route", "value": {"string_value": f"/r/{i}"}}],
            "status": status,
            "dropped_attributes_count": 0,
            "someFutureField": {"nested": [1, 2]},
        }

    s0 = snake_span(0, "SPAN_KIND_SERVER", {"code": "STATUS_CODE_ERROR", "message": "boom"})
    s0["attributes"].append({"key": "retries", "value": {"int_value": 42}})
    s0["events"] = [{"time_unix_nano": T0 + MS, "name": "retry", "unknown": True}]
    s1 = snake_span(1, "SPAN_KIND_CLIENT", {})
    record = {
        "time_unix_nano": T0,
        "severity_number": "SEVERITY_NUMBER_WARN",
        "severity_text": "WARN",
        "body": {"string_value": "message 0"},
        "trace_id": TRACE,
        "span_id": sid(0),
        "flags": 1,
    }
    res = {**resource("checkout"), "dropped_attributes_count": 0}
    return {
        "resource_spans": [
            {
                "resource": res,
                "scope_spans": [{"scope": {"name": "tests"}, "spans": [s0, s1], "x": 1}],
                "schema_url": "https://opentelemetry.io/schemas/1.21.0",
            }
        ],
        "resource_logs": [
            {"resource": res, "scope_logs": [{"scope": {"name": "tests"}, "log_records": [record]}]}
        ],
        "partialSuccess": {},
    }


def test_snake_case_keys_enum_names_and_int64_numbers_decode_like_the_spec(
    empty_db: str, tmp_path: Path
) -> None:
    """The spec's spelling stores two spans and a log; the same telemetry in snake_case keys,
    enum names and int64 numbers (with unknown fields) is then exactly a duplicate of it."""
    first = ingest(write(tmp_path / "camel.json", camel_doc()), empty_db)
    assert tally(first) == ((2, 2, 0, 0), (1, 1, 0, 0))
    before = rows(empty_db)
    again = ingest(write(tmp_path / "snake.json", snake_doc()), empty_db)
    assert refused(again) == []
    assert tally(again) == ((2, 0, 2, 0), (1, 0, 1, 0))
    assert rows(empty_db) == before
    stored = query(
        empty_db, f"SELECT span_id, span_kind, status, tags FROM {schema.SPANS_TAGGED} ORDER BY 1"
    )
    assert [(s, k, st) for s, k, st, _ in stored] == [
        (sid(0), "server", "error"),
        (sid(1), "client", "ok"),
    ]
    assert stored[0][3]["retries"] == 42
    assert stored[0][3]["otel.status_description"] == "boom"
    assert query(empty_db, f"SELECT level FROM {schema.LOGS}") == [("warn",)]


# -- files that are not OTLP/JSON -----------------------------------------------------------


def test_a_truncated_document_is_refused_whole(empty_db: str, tmp_path: Path) -> None:
    """A single document cut in half is an InputError naming the file; nothing is stored."""
    whole = orjson.dumps(traces(*(span(i) for i in range(4))), option=orjson.OPT_INDENT_2)
    path = tmp_path / "cut.json"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}: not valid JSON: "):
        ingest(path, empty_db)
    assert counts(empty_db) == (0, 0)


def test_a_truncated_last_line_rolls_back_the_chunks_written_before_it(
    empty_db: str, tmp_path: Path
) -> None:
    """JSON lines imported two records at a time: four lines' chunks are written in the
    file's transaction before the fifth line turns out cut; the table stays empty."""
    path = write(
        tmp_path / "lines.json",
        *(traces(span(2 * n), span(2 * n + 1)) for n in range(5)),
        lines=True,
    )
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}: line 5: not valid JSON: "):
        ingest(path, empty_db, chunk=2)
    assert counts(empty_db) == (0, 0)
    full = write(tmp_path / "full.json", *(traces(span(i)) for i in range(4)), lines=True)
    assert tally(ingest(full, empty_db, chunk=2))[0] == (4, 4, 0, 0)  # chunks do land


def test_a_gzip_file_cut_midway_is_refused_whole(empty_db: str, tmp_path: Path) -> None:
    """A gzip stream that ends early (after many lines decompressed and chunks written) is an
    InputError and stores nothing."""
    docs = [
        traces(*(span(i, name=f"op {i} {'x' * (i % 97)}") for i in range(n, n + 10)))
        for n in range(0, 2000, 10)
    ]
    plain = b"".join(orjson.dumps(d) + b"\n" for d in docs)
    packed = gzip.compress(plain)
    path = tmp_path / "cut.json.gz"
    path.write_bytes(packed[: len(packed) * 3 // 4])
    with pytest.raises(
        InputError, match=rf"^{re.escape(str(path))}: (cannot decompress|line \d+: not valid JSON)"
    ):
        ingest(path, empty_db, chunk=100)
    assert counts(empty_db) == (0, 0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{}", "no spans or log records in it (is it OTLP/JSON?)"),
        (b'{"resourceSpans": []}', "no spans or log records in it (is it OTLP/JSON?)"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": []}]}]}', "no spans or log records"),
        (b'{"partialSuccess": {}}\n{}\n', "no spans or log records in it (is it OTLP/JSON?)"),
        (b"[]", "not an OTLP/JSON object (a JSON array)"),
        (b'{"resourceSpans": {}}', "resourceSpans is a JSON object, not a list"),
        (b"\x00\x01garbage", "not valid JSON"),
    ],
    ids=[
        "an empty object",
        "no resourceSpans",
        "empty spans",
        "JSON lines of empty requests",
        "a list",
        "an object where the list goes",
        "binary garbage",
    ],
)
def test_a_non_empty_file_without_records_is_an_error_not_silence(
    shared_db: str, tmp_path: Path, content: bytes, message: str
) -> None:
    """A file with content that decodes to no span and no log is refused, saying so."""
    path = tmp_path / "none.json"
    path.write_bytes(content)
    before = counts(shared_db)
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}: .*{re.escape(message)}"):
        ingest(path, shared_db)
    assert counts(shared_db) == before


def test_a_blank_file_is_empty_not_an_error(empty_db: str, tmp_path: Path) -> None:
    """Zero bytes, whitespace and a gzip of nothing are empty files: reported, no error."""
    for name, content in [("zero", b""), ("space", b" \n\n\t\n"), ("gz", gzip.compress(b""))]:
        path = tmp_path / f"{name}.json"
        path.write_bytes(content)
        report = ingest(path, empty_db)
        assert report.empty, name
        assert report.outcome.input == 0
    assert counts(empty_db) == (0, 0)


# -- the record rules -----------------------------------------------------------------------


@pytest.mark.slow
def test_a_50000_span_trace_in_one_document_is_stored_whole(empty_db: str, tmp_path: Path) -> None:
    """One trace of 50,000 spans (a root and its children) in a single document is stored
    in full, quickly: decoding is linear, not per-trace quadratic."""
    n = 50_000
    spans = [span(0, parentSpanId=None, endTimeUnixNano=str(T0 + (n + 10) * MS))]
    spans += [span(i, parentSpanId=sid(0)) for i in range(1, n)]
    path = write(tmp_path / "big.json", traces(*spans))
    start = time.perf_counter()
    report = ingest(path, empty_db)
    seconds = time.perf_counter() - start
    assert tally(report) == ((n, n, 0, 0), (0, 0, 0, 0))
    assert counts(empty_db) == (n, 0)
    assert query(
        empty_db, f"SELECT count(DISTINCT trace_id), count(parent_span_id) FROM {schema.SPANS}"
    ) == [(1, n - 1)]
    assert seconds < 40, f"50,000 spans took {seconds:.1f} s"


def test_log_severity_zero_is_unspecified_and_above_24_is_rejected(
    empty_db: str, tmp_path: Path
) -> None:
    """Severity 0 takes the level its text names, else info; 1..24 map by fours; enum names
    count as their numbers; 25 and negatives reject the record with its position."""
    cases = [  # (severityNumber, severityText, level or the reject's reason)
        (0, "WARNING", "warn"),
        (0, "", "info"),
        (0, "loud", "info"),
        ("SEVERITY_NUMBER_UNSPECIFIED", "error", "error"),
        (1, "", "trace"),
        (8, "", "debug"),
        (17, "", "error"),
        (24, "", "fatal"),
        ("SEVERITY_NUMBER_FATAL4", "", "fatal"),
        (25, "", "severity number 25 is outside 0..24"),
        (-1, "", "severity -1 is negative"),
    ]
    records = [
        log(i, severityNumber=number, severityText=text or None, body={"stringValue": f"m{i}"})
        for i, (number, text, _) in enumerate(cases)
    ]
    report = ingest(write(tmp_path / "severity.json", logs(*records)), empty_db)
    assert refused(report) == [
        (LOG_POS.format(i), "log", expected)
        for i, (_, _, expected) in enumerate(cases)
        if " " in expected
    ]
    stored = dict(query(empty_db, f"SELECT message, level FROM {schema.LOGS}"))
    assert stored == {
        f"m{i}": expected for i, (_, _, expected) in enumerate(cases) if " " not in expected
    }


def test_times_outside_1970_to_2262_are_rejected_with_their_position(
    empty_db: str, tmp_path: Path
) -> None:
    """Span and log times before 1970, after 2262 or unset are refused, each with where it
    was; the last nanosecond a datetime64 holds (2262-04-11) is still accepted."""
    last = 2**63 - 1
    spans = [
        span(0, startTimeUnixNano=str(-(10**9))),
        span(1, endTimeUnixNano=2**63),
        span(2, startTimeUnixNano="0"),
        span(3, startTimeUnixNano=str(last), endTimeUnixNano=str(last)),
        span(4, startTimeUnixNano="12:00"),
    ]
    records = [
        log(0, timeUnixNano="-1"),
        log(1, timeUnixNano=str(2**63 + 5)),
        log(2, timeUnixNano="0", observedTimeUnixNano="0"),
        log(3, timeUnixNano=None, observedTimeUnixNano=str(T0)),  # unset: the observed time
    ]
    report = ingest(write(tmp_path / "times.json", {**traces(*spans), **logs(*records)}), empty_db)
    assert refused(report) == [
        (POS.format(0), "span", "startTimeUnixNano -1000000000 is before 1970"),
        (POS.format(1), "span", f"endTimeUnixNano {2**63} is after 2262 (out of range)"),
        (POS.format(2), "span", "startTimeUnixNano is 0 (unset)"),
        (POS.format(4), "span", "startTimeUnixNano '12:00' is not an integer of at most 20 digits"),
        (LOG_POS.format(0), "log", "timeUnixNano -1 is before 1970"),
        (LOG_POS.format(1), "log", f"timeUnixNano {2**63 + 5} is after 2262 (out of range)"),
        (LOG_POS.format(2), "log", "timeUnixNano is 0 (unset)"),
    ]
    assert tally(report) == ((5, 1, 0, 4), (4, 1, 0, 3))
    ((start,),) = query(empty_db, f"SELECT start_time::text FROM {schema.SPANS}")
    assert start.startswith("2262-04-11 23:47:16.854775")


def test_a_span_ending_before_it_starts_is_rejected_not_clipped(
    empty_db: str, tmp_path: Path
) -> None:
    """End 1 ns before start: refused with its position, nothing stored for it (a clipped
    zero-length copy would pass for real); a true zero-length span is legal."""
    backwards = span(0, endTimeUnixNano=str(T0 - 1))
    instant = span(1, endTimeUnixNano=str(T0 + MS))
    report = ingest(write(tmp_path / "backwards.json", traces(backwards, instant)), empty_db)
    assert refused(report) == [(POS.format(0), "span", "span ends 1 ns before it starts")]
    assert query(empty_db, f"SELECT span_id, duration_ms FROM {schema.SPANS}") == [(sid(1), 0)]


def test_a_log_with_a_malformed_trace_id_is_kept_unlinked_and_counted(
    empty_db: str, tmp_path: Path
) -> None:
    """A log whose trace or span id is malformed is stored without the link (the raw id kept
    in its fields), counted as unlinked, not rejected."""
    records = [
        log(0, traceId="not-a-trace-id"),
        log(1, spanId="0" * 16),
        log(2),
        log(3, traceId=None, spanId=None),  # no link at all is not "unlinked"
    ]
    report = ingest(write(tmp_path / "unlinked.json", logs(*records)), empty_db)
    assert refused(report) == []
    assert tally(report)[1] == (4, 4, 0, 0)
    assert report.outcome.unlinked == 2
    stored = query(
        empty_db,
        f"SELECT message, trace_id, span_id, fields->>'obslib.unlinked_trace_id'"
        f" FROM {schema.LOGS} ORDER BY message",
    )
    assert stored == [
        ("message 0", None, None, "not-a-trace-id"),
        ("message 1", None, None, TRACE),
        ("message 2", TRACE, sid(2), None),
        ("message 3", None, None, None),
    ]


# -- idempotence and conflicts --------------------------------------------------------------


def test_reimporting_a_file_changes_nothing(empty_db: str, tmp_path: Path) -> None:
    """The second import of a file (spans, logs, a reject, an unlinked log) counts every
    stored record as a duplicate, refuses the same record again, and leaves the tables
    byte-for-byte as they were."""
    doc = {
        **traces(span(0), span(1), span(2, spanId="")),
        **logs(log(0), log(1, traceId="zz")),
    }
    path = write(tmp_path / "mixed.json", doc)
    first = ingest(path, empty_db)
    assert tally(first) == ((3, 2, 0, 1), (2, 2, 0, 0))
    before = rows(empty_db)
    second = ingest(path, empty_db)
    assert tally(second) == ((3, 0, 2, 1), (2, 0, 2, 0))
    assert refused(second) == refused(first) == [(POS.format(2), "span", "spanId is empty")]
    assert second.outcome.unlinked == first.outcome.unlinked == 1
    assert rows(empty_db) == before


def test_a_conflicting_duplicate_is_reported_not_overwritten(empty_db: str, tmp_path: Path) -> None:
    """Same ids, other content: against a stored row, within one chunk and across two
    chunks of one file, the later record is rejected with its position and the first kept."""
    ingest(write(tmp_path / "a.json", traces(span(0), span(1))), empty_db)
    before = rows(empty_db)
    renamed = ingest(write(tmp_path / "b.json", traces(span(1), span(0, name="renamed"))), empty_db)
    assert refused(renamed) == [(POS.format(1), "span", STORED_ELSEWHERE)]
    assert tally(renamed)[0] == (2, 0, 1, 1)
    assert rows(empty_db) == before

    twice = ingest(
        write(tmp_path / "c.json", traces(span(5), span(5, name="other"), span(5))), empty_db
    )
    assert refused(twice) == [
        (
            POS.format(1),
            "span",
            f"same trace and span id as the record at {POS.format(0)} with other content"
            " (the first is kept)",
        )
    ]
    assert tally(twice)[0] == (3, 1, 1, 1)

    lines = write(
        tmp_path / "d.json", traces(span(9)), traces(span(9, kind=3)), lines=True
    )  # chunk=1: the second line's write meets the first's row in the same transaction
    across = ingest(lines, empty_db, chunk=1)
    assert refused(across) == [(f"line 2: {POS.format(0)}", "span", STORED_ELSEWHERE)]
    assert query(
        empty_db,
        f"SELECT operation_name, span_kind FROM {schema.SPANS} WHERE span_id IN"
        f" ('{sid(0)}', '{sid(5)}', '{sid(9)}') ORDER BY span_id",
    ) == [("op 0", "server"), ("op 5", "server"), ("op 9", "server")]


# -- the command ----------------------------------------------------------------------------


def test_the_command_exits_0_or_2_and_lists_rejects_as_json_lines(
    empty_db: str, tmp_path: Path
) -> None:
    """A clean file exits 0 (and again, as duplicates); a record rejected or a file refused
    exits 2 with one line each, the rejects also written with --rejects as JSON lines."""
    env = {"OBSLIB_DATABASE_URL": empty_db}
    clean = write(tmp_path / "clean.json", traces(span(0), span(1)))
    first = run_cli("ingest", "otlp", "--quiet", str(clean), env=env)
    assert (first.returncode, first.stderr) == (0, "")
    assert first.stdout.splitlines()[-1] == (
        "total, 1 file(s): 2 records: 2 accepted, 0 duplicate, 0 rejected"
    )
    bad = write(tmp_path / "bad.json", traces(span(2), span(3, traceId=b64(TRACE))))
    cut = tmp_path / "cut.json"
    cut.write_text('{"resourceSpans": [')
    out = tmp_path / "rejects.jsonl"
    result = run_cli(
        "ingest", "otlp", str(clean), str(bad), str(cut), "--rejects", str(out), env=env
    )
    assert result.returncode == 2, result.stderr
    reason = f"traceId '{b64(TRACE)}' has 24 characters, not 32 hex digits"
    assert result.stdout.splitlines() == [
        f"{clean}: 2 spans: 0 accepted, 2 duplicate, 0 rejected",
        f"{bad}: 2 spans: 1 accepted, 0 duplicate, 1 rejected",
        "total, 3 file(s), 1 refused whole: 4 records: 1 accepted, 2 duplicate, 1 rejected",
    ]
    err = [line for line in result.stderr.splitlines() if line.strip()]
    assert err[0] == f"rejected span: {bad}: {POS.format(1)}: {reason}"
    assert err[1].startswith(f"obslib: error: {cut}: not valid JSON: ")
    assert err[1].endswith("(nothing of it stored)")
    assert len(err) == 2
    assert [json.loads(line) for line in out.read_text().splitlines()] == [
        {"source": str(bad), "position": POS.format(1), "kind": "span", "reason": reason}
    ]
    assert counts(empty_db) == (3, 0)


# -- Jaeger JSON and JSON-lines logs: the same file rules through the same importer ---------


def jaeger_span(i: int = 0, **changes: Any) -> dict[str, Any]:
    """A valid Jaeger span of TRACE in process p1; a change to ``None`` drops the key."""
    out: dict[str, Any] = {
        "traceID": TRACE,
        "spanID": sid(i),
        "operationName": f"op {i}",
        "references": [],
        "startTime": T0 // 1000 + i * 1000,
        "duration": 5000,
        "tags": [{"key": "span.kind", "type": "string", "value": "server"}],
        "logs": [],
        "processID": "p1",
    }
    out.update(changes)
    return {k: v for k, v in out.items() if v is not None}


def jaeger_doc(*spans: dict) -> dict[str, Any]:
    process = {"serviceName": "checkout", "tags": []}
    return {"data": [{"traceID": TRACE, "spans": list(spans), "processes": {"p1": process}}]}


def log_entry(i: int = 0, **changes: Any) -> dict[str, Any]:
    """A valid StructuredLogEntry line; a change to ``None`` drops the key."""
    out: dict[str, Any] = {
        "timestamp": f"2025-11-20T09:00:00.{i:09d}Z",
        "level": "info",
        "service_name": "checkout",
        "message": f"entry {i}",
        "trace_id": TRACE,
        "span_id": sid(i),
    }
    out.update(changes)
    return {k: v for k, v in out.items() if v is not None}


def test_jaeger_and_log_files_cut_in_their_last_line_store_nothing(
    empty_db: str, tmp_path: Path
) -> None:
    """Jaeger JSON lines and JSON-lines logs imported one record at a time, the last line
    cut: InputError naming the line, and the records already written are rolled back."""
    for kind, docs in [
        ("jaeger", [jaeger_doc(jaeger_span(i)) for i in range(4)]),
        ("logs", [log_entry(i) for i in range(4)]),
    ]:
        path = write(tmp_path / f"{kind}.json", *docs, lines=True)
        path.write_bytes(path.read_bytes()[:-20])
        with pytest.raises(InputError, match=rf"^{re.escape(str(path))}: line 4: not valid JSON"):
            importer.import_file(path, kind, url=empty_db, chunk=1)
        assert counts(empty_db) == (0, 0), kind


def test_jaeger_and_log_ids_are_lowered_bad_ones_rejected_or_unlinked(
    empty_db: str, tmp_path: Path
) -> None:
    """Uppercase ids are stored lowercase; a Jaeger span with a bad id is rejected with its
    line and position; a log line with one is kept unlinked; re-importing both files
    changes nothing."""
    spans = jaeger_doc(
        jaeger_span(0, traceID=TRACE.upper(), spanID="ABCDEF0123456789"),
        jaeger_span(1, spanID="0" * 16),
        jaeger_span(2, spanID="xyz"),
    )
    jaeger = write(tmp_path / "jaeger.json", spans, lines=True)
    entries = [log_entry(0, trace_id=TRACE.upper()), log_entry(1, trace_id=b64(TRACE))]
    logfile = write(tmp_path / "logs.json", *entries, lines=True)
    first = importer.import_file(jaeger, "jaeger", url=empty_db)
    assert refused(first) == [
        ("line 1: data[0].spans[1]", "span", "span id is all zeros"),
        ("line 1: data[0].spans[2]", "span", "span id 'xyz' is not hexadecimal"),
    ]
    logs_report = importer.import_file(logfile, "logs", url=empty_db)
    assert (tally(logs_report)[1], logs_report.outcome.unlinked) == ((2, 2, 0, 0), 1)
    assert query(empty_db, f"SELECT trace_id, span_id FROM {schema.SPANS}") == [
        (TRACE, "abcdef0123456789")
    ]
    assert query(empty_db, f"SELECT trace_id FROM {schema.LOGS} ORDER BY message") == [
        (TRACE,),
        (None,),
    ]
    before = rows(empty_db)
    assert tally(importer.import_file(jaeger, "jaeger", url=empty_db))[0] == (3, 0, 1, 2)
    assert tally(importer.import_file(logfile, "logs", url=empty_db))[1] == (2, 0, 2, 0)
    assert rows(empty_db) == before


def test_an_integer_past_64_bits_is_rejected_with_its_line_not_stored_rounded(
    empty_db: str, tmp_path: Path
) -> None:
    """JSON holds integers of any size and orjson reads one past 64 bits as a rounded float
    (3.13): a log line whose fields hold one is refused with its line and reason (jsonb could
    store it, our 64-bit rule refuses it), never stored as 1.2345678901234568e+29; a long
    digit run inside a string is text and is kept as written."""
    big = 123456789012345678901234567890
    entries = [
        log_entry(0, fields={"order": big}),
        log_entry(1, fields={"order": str(big)}),
        log_entry(2, fields={"order": 2**63 - 1}),
    ]
    report = importer.import_file(write(tmp_path / "logs.json", *entries, lines=True), "logs",
                                  url=empty_db)  # fmt: skip
    [(position, kind, reason)] = refused(report)
    assert (position, kind) == ("line 1", "log") and "64-bit" in reason, reason
    assert query(empty_db, f"SELECT fields->>'order' FROM {schema.LOGS} ORDER BY timestamp") == [
        (str(big),),
        (str(2**63 - 1),),
    ]


JAEGER_FIELDS = ["traceID", "spanID", "operationName", "references", "startTime", "duration"]
JAEGER_FIELDS += ["tags", "logs", "processID", "process", "flags", "warnings"]
LOG_ENTRY_FIELDS = ["timestamp", "level", "service_name", "message", "trace_id", "span_id"]
LOG_ENTRY_FIELDS += ["fields", "error"]


def test_jaeger_and_log_fields_with_odd_values_reject_or_store_never_crash(
    shared_db: str, tmp_path: Path
) -> None:
    """Every Jaeger span field and every log entry field, set in turn to each odd value:
    both files import, every record accounted for (a reject or a row, no other error)."""
    spans, entries = [], []
    for value in ODD_VALUES:
        for field in JAEGER_FIELDS:
            spans.append({**jaeger_span(len(spans)), field: value})
        for field in LOG_ENTRY_FIELDS:
            entries.append({**log_entry(len(entries)), field: value})
    before = counts(shared_db)
    jaeger = importer.import_file(
        write(tmp_path / "odd-jaeger.json", jaeger_doc(*spans)), "jaeger", url=shared_db
    )
    logfile = importer.import_file(
        write(tmp_path / "odd-logs.json", *entries, lines=True), "logs", url=shared_db
    )
    assert (jaeger.outcome.spans.input, logfile.outcome.logs.input) == (len(spans), len(entries))
    for o in (jaeger.outcome, logfile.outcome):
        assert o.spans.balanced and o.logs.balanced and len(o.rejects) == o.rejected
    grown = (jaeger.outcome.spans.accepted, logfile.outcome.logs.accepted)
    assert counts(shared_db) == (before[0] + grown[0], before[1] + grown[1])


# -- fuzzing --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_conn(shared_db: str) -> Iterator[psycopg.Connection]:
    """A kept connection for counting rows between fuzz examples (connecting costs more)."""
    with psycopg.connect(shared_db, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


HOSTILE_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "NaN",
    "Infinity",
    "-Infinity",
    "-0",
    "1e400",
    "0x10",
    "--5",
    "+5",
    "٣",  # an Arabic-Indic digit: isdigit() but not ASCII
    "9" * 30,
    "1" * 5000,  # past Python's int-from-text limit
    "SPAN_KIND_SERVER",
    "STATUS_CODE_ERROR",
    "SEVERITY_NUMBER_WARN",
    TRACE.upper(),
    b64(TRACE),
    "é" * 120,
    "🙂" * 3,
]
HOSTILE_NUMBERS = [0, -1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 10**30, 25, 6, 1.5, -0.0, 1e300]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from(HOSTILE_NUMBERS)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(HOSTILE_TEXT)
)
field_values = st.sampled_from(HOSTILE_TEXT + HOSTILE_NUMBERS) | scalars
hostile = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
DEEP = "<1100 nested lists>"  # json.dumps would hit Python's recursion limit on the real thing
trace_ids = st.sampled_from([TRACE, TRACE2, TRACE.upper()])
span_ids = st.sampled_from([sid(i) for i in range(6)] + [sid(0).upper()])


@st.composite
def any_value(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    """A valid OTLP AnyValue, sometimes nested."""
    kinds = ["stringValue", "intValue", "doubleValue", "boolValue", "bytesValue"]
    if depth < 1:
        kinds += ["arrayValue", "kvlistValue"]
    kind = draw(st.sampled_from(kinds))
    if kind == "stringValue":
        return {kind: draw(st.text(max_size=8))}
    if kind == "intValue":
        number = draw(st.integers(min_value=-(2**63), max_value=2**63 - 1))
        return {kind: draw(st.sampled_from([number, str(number)]))}
    if kind == "doubleValue":
        return {kind: draw(st.floats(allow_nan=False, allow_infinity=False) | st.just("NaN"))}
    if kind == "boolValue":
        return {kind: draw(st.booleans())}
    if kind == "bytesValue":
        return {kind: base64.b64encode(draw(st.binary(max_size=6))).decode()}
    if kind == "arrayValue":
        return {kind: {"values": draw(st.lists(any_value(depth + 1), max_size=2))}}
    pairs = draw(st.lists(st.tuples(st.text(max_size=4), any_value(depth + 1)), max_size=2))
    return {kind: {"values": [{"key": k, "value": v} for k, v in pairs]}}


attributes = st.lists(
    st.builds(lambda k, v: {"key": k, "value": v}, st.text(max_size=6), any_value()), max_size=2
)


@st.composite
def valid_span(draw: st.DrawFn) -> dict[str, Any]:
    start = draw(st.integers(min_value=T0, max_value=T0 + 10**12))
    end = start + draw(st.integers(min_value=0, max_value=10**10))
    out = {
        "traceId": draw(trace_ids),
        "spanId": draw(span_ids),
        "name": draw(st.sampled_from(["GET /", "SELECT", ""])),
        "kind": draw(st.integers(0, 5)),
        "startTimeUnixNano": draw(st.sampled_from([start, str(start)])),
        "endTimeUnixNano": draw(st.sampled_from([end, str(end)])),
        "attributes": draw(attributes),
        "status": {"code": draw(st.integers(0, 2))},
    }
    if draw(st.booleans()):
        out["parentSpanId"] = draw(span_ids)
    if draw(st.booleans()):
        out["events"] = [{"timeUnixNano": str(start), "name": "e", "attributes": draw(attributes)}]
    return out


@st.composite
def valid_log(draw: st.DrawFn) -> dict[str, Any]:
    out = {
        "timeUnixNano": str(draw(st.integers(min_value=T0, max_value=T0 + 10**12))),
        "severityNumber": draw(st.integers(0, 24)),
        "body": draw(any_value()),
        "attributes": draw(attributes),
    }
    if draw(st.booleans()):
        out["traceId"], out["spanId"] = draw(trace_ids), draw(span_ids)
    return out


@st.composite
def otlp_documents(draw: st.DrawFn) -> list[dict[str, Any]]:
    """One to three mostly valid requests (one per JSON line when written as lines)."""
    docs = []
    for _ in range(draw(st.integers(1, 3))):
        doc: dict[str, Any] = {}
        service = draw(st.sampled_from(["checkout", "api", ""]))
        doc.update(traces(*draw(st.lists(valid_span(), min_size=1, max_size=3)), service=service))
        if draw(st.booleans()):
            doc.update(logs(*draw(st.lists(valid_log(), max_size=2))))
        docs.append(doc)
    return docs


def _slots(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) inside ``value``: the places a mutation can hit."""
    out: list[tuple[Any, Any]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in items:
        out.append((value, key))
        if isinstance(child, dict | list):
            out.extend(_slots(child))
    return out


def _snake(key: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)


_RECORD_KEYS = {
    *("traceId", "spanId", "parentSpanId", "name", "kind", "status", "startTimeUnixNano"),
    *("endTimeUnixNano", "timeUnixNano", "observedTimeUnixNano", "severityNumber"),
    *("severityText", "body", "attributes", "events", "links", "eventName"),
}


MUTATIONS = ("field", "field", "field", "field", "value", "drop", "snake", "wrap", "nest")
MUTATIONS += ("deep", "copy", "rename", "nul")


def mutate(data: st.DataObject, docs: list[dict[str, Any]]) -> None:
    """One to four random mutations, most aimed at a field the decoder reads, the rest
    anywhere: another value (wrong types, NUL, huge numbers), a key dropped or spelled
    snake_case, a value wrapped in a list or nested deep, a record duplicated (as is, or
    with another name: a conflict)."""
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        slots = _slots(docs)
        op = data.draw(st.sampled_from(MUTATIONS), label="mutation")
        if op == "field":  # aim at a field the decoder reads: ids, times, enums, names
            records = [c for c, _ in slots if isinstance(c, dict) and _RECORD_KEYS & c.keys()]
            if records:
                record = data.draw(st.sampled_from(records), label="record")
                field = data.draw(st.sampled_from(sorted(_RECORD_KEYS)), label="field")
                record[field] = data.draw(field_values, label="value")
            continue
        container, key = data.draw(st.sampled_from(slots), label="where")
        old = container[key]
        if op == "value":
            container[key] = data.draw(hostile, label="value")
        elif op == "drop" and container is not docs:  # a file keeps at least one document
            del container[key]
        elif op == "snake" and isinstance(key, str):
            container[_snake(key)] = container.pop(key)
        elif op == "wrap":
            container[key] = [old]
        elif op == "nest":  # AnyValues past the decoder's depth limit
            for _ in range(data.draw(st.sampled_from([3, 70]), label="depth")):
                old = {"kvlistValue": {"values": [{"key": "k", "value": old}]}}
            container[key] = old
        elif op == "deep":  # past orjson's nesting limit: written as text by _serialise
            container[key] = DEEP
        elif op in ("copy", "rename") and isinstance(container, list):
            twin = copy.deepcopy(old)
            if op == "rename" and isinstance(twin, dict):
                twin["name"] = "renamed"
            container.insert(key + 1, twin)
        elif op == "nul" and isinstance(old, str):
            container[key] = old[:1] + "\x00" + old[1:]


def _records(doc: Any) -> tuple[int, int]:
    """The span and log records a decodable document holds, read as the decoder reads it."""

    def first(obj: dict, *keys: str) -> list:
        for k in keys:
            if k in obj:
                return obj[k] or []
        return []

    n_spans = n_logs = 0
    for rs in first(doc, "resourceSpans", "resource_spans"):
        scopes = first(rs, "scopeSpans", "scope_spans")
        scopes = scopes + first(rs, "instrumentationLibrarySpans", "instrumentation_library_spans")
        n_spans += sum(len(first(ss, "spans")) for ss in scopes)
    for rl in first(doc, "resourceLogs", "resource_logs"):
        n_logs += sum(
            len(first(sl, "logRecords", "log_records"))
            for sl in first(rl, "scopeLogs", "scope_logs")
        )
    return n_spans, n_logs


def _serialise(data: st.DataObject, docs: list[Any], path: Path) -> bool:
    """Write ``docs`` as one document or as JSON lines, maybe gzip'd, maybe cut short;
    True when the bytes were cut."""
    as_lines = len(docs) > 1 or data.draw(st.booleans(), label="lines")
    if as_lines:
        text = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs)
    else:
        text = json.dumps(docs[0], indent=data.draw(st.sampled_from([None, 2])))
    raw = text.replace(json.dumps(DEEP), "[" * 1100 + "]" * 1100).encode("utf-8")
    cut = data.draw(st.integers(0, 3), label="cut") == 0 and len(raw) > 2  # one in four
    if cut:  # JSON lines are mostly cut in their last line: earlier lines were stored by then
        last = raw.rstrip(b"\n").rfind(b"\n") + 1 if as_lines and data.draw(st.booleans()) else 0
        low = min(last + 1, len(raw) - 1)
        raw = raw[: data.draw(st.integers(low, len(raw) - 1), label="cut at")]
    if data.draw(st.integers(0, 3), label="gzip") == 0:
        raw = gzip.compress(raw)
    path.write_bytes(raw)
    return cut


SPAN_FIELDS = ["traceId", "spanId", "parentSpanId", "name", "kind", "startTimeUnixNano"]
SPAN_FIELDS += ["endTimeUnixNano", "status", "status.code", "traceState", "attributes", "events"]
SPAN_FIELDS += ["links", "events.timeUnixNano", "attributes.value"]
LOG_FIELDS = ["timeUnixNano", "observedTimeUnixNano", "severityNumber", "severityText", "body"]
LOG_FIELDS += ["traceId", "spanId", "eventName", "attributes"]
ODD_VALUES = [*HOSTILE_TEXT, *HOSTILE_NUMBERS, None, True, [], {}, [1], {"a": "b"}]


def _set(record: dict[str, Any], field: str, value: Any) -> None:
    """Set ``field`` ("status.code": inside the status; "events.x": inside an event)."""
    if field == "status.code":
        record["status"] = {"code": value}
    elif field == "events.timeUnixNano":
        record["events"] = [{"timeUnixNano": value, "name": "e"}]
    elif field == "attributes.value":
        record["attributes"] = [{"key": "k", "value": {"intValue": value}}]
    else:
        record[field] = value


def test_every_field_with_every_odd_value_rejects_or_stores_never_crashes(
    shared_db: str, tmp_path: Path
) -> None:
    """Each field the decoder reads, set in turn to each odd value (wrong types, huge and
    negative numbers, "--5", 5,000 digits, NaN as text, NUL, base64...): the file imports,
    every record is accounted for, and nothing but a reject or a row comes of it."""
    spans, records = [], []
    for value in ODD_VALUES:
        for field in SPAN_FIELDS:
            s = span(len(spans))
            _set(s, field, value)
            spans.append(s)
        for field in LOG_FIELDS:
            r = log(len(records), body={"stringValue": f"odd {len(records)}"})
            _set(r, field, value)
            records.append(r)
    path = write(tmp_path / "odd.json", {**traces(*spans), **logs(*records)})
    before = counts(shared_db)
    report = ingest(path, shared_db)
    o = report.outcome
    assert (o.spans.input, o.logs.input) == (len(spans), len(records))
    assert o.spans.balanced and o.logs.balanced and len(o.rejects) == o.rejected
    assert counts(shared_db) == (before[0] + o.spans.accepted, before[1] + o.logs.accepted)


@pytest.mark.slow
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_fuzzed_documents_import_whole_or_raise_input_error_and_store_nothing(
    shared_db: str, shared_conn: psycopg.Connection, fuzz_dir: Path, data: st.DataObject
) -> None:
    """Mostly valid OTLP/JSON with random damage either imports with counts that add up (per
    kind accepted + duplicate + rejected == the records in the file; the tables grew by
    exactly what was accepted; a re-import is all duplicates) or raises InputError with the
    tables unchanged. Any other exception is a bug."""
    docs = data.draw(otlp_documents(), label="documents")
    mutate(data, docs)
    path = fuzz_dir / "fuzz.json"
    cut = _serialise(data, docs, path)
    chunk = data.draw(st.sampled_from([1, 3, importer.CHUNK_RECORDS]), label="chunk")
    before = counts(shared_conn)
    try:
        report = ingest(path, shared_db, chunk=chunk)
    except InputError:
        assert counts(shared_conn) == before
        return
    o = report.outcome
    assert o.spans.balanced and o.logs.balanced
    assert len(o.rejects) == o.rejected
    assert all(r.source == str(path) and r.position and r.reason for r in o.rejects)
    if not cut and not report.empty:
        expected = [_records(d) for d in docs]
        assert (o.spans.input, o.logs.input) == tuple(map(sum, zip(*expected, strict=True)))
    assert counts(shared_conn) == (before[0] + o.spans.accepted, before[1] + o.logs.accepted)
    again = ingest(path, shared_db, chunk=chunk).outcome
    assert (again.accepted, again.rejected) == (0, o.rejected)
    assert again.duplicate == o.accepted + o.duplicate
    assert counts(shared_conn) == (before[0] + o.spans.accepted, before[1] + o.logs.accepted)
