"""write_spans (and ``Batch.spans``) hold spans to the importers' rules whoever builds the
frame: hex ids never all zero, times 1970..2262, tags an object and logs an array; bad rows
are refused naming the row, and nothing of the write is stored."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import psycopg
import pytest

from obslib import load
from obslib.errors import InputError
from obslib.ingest import batch, records, tables, write_spans

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
TRACE = "0af7651916cd43dd8448eb211c80319c"


def sid(i: int) -> str:
    """The i-th span id (never all zeros)."""
    return f"{i + 1:016x}"


def spans(n: int = 3, trace_id: str = TRACE) -> pd.DataFrame:
    """n valid spans of one trace, the first the parent of the others."""
    return pd.DataFrame(
        [
            dict(
                trace_id=trace_id,
                span_id=sid(i),
                parent_span_id=None if i == 0 else sid(0),
                service_name="api-gateway",
                operation_name=f"op {i}",
                start_time=T0 + timedelta(milliseconds=i),
                end_time=T0 + timedelta(milliseconds=10 + i),
                tags={"i": i},
            )
            for i in range(n)
        ]
    )


def count(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM distributed_traces").fetchone()[0]


# (what, column, bad value, the message after "spans row 1: ")
REFUSED = [
    ("a non-hex trace id", "trace_id", "t-1", "trace_id 't-1' has 3 characters, not 32 hex"),
    (
        "a trace id of hex and letters",
        "trace_id",
        "x" * 32,
        f"trace_id '{'x' * 32}' is not hexadecimal",
    ),
    ("an all-zero trace id", "trace_id", "0" * 32, "trace_id is all zeros"),
    ("a short span id", "span_id", "abc", "span_id 'abc' has 3 characters, not 16 hex digits"),
    ("an all-zero span id", "span_id", "0" * 16, "span_id is all zeros"),
    ("a base64 span id", "span_id", "AAECAwQFBgc=", "span_id 'AAECAwQFBgc=' has 12 characters"),
    ("a non-hex parent", "parent_span_id", "s0", "parent_span_id 's0' has 2 characters"),
    ("an all-zero parent", "parent_span_id", "0" * 16, "parent_span_id is all zeros"),
    (
        "a span in 1900",
        "start_time",
        datetime(1900, 1, 1, tzinfo=UTC),
        "start_time -2208988800000000000 is before 1970 (1900-01-01T00:00:00+00:00)",
    ),
    (
        "a span at the epoch",
        "start_time",
        datetime(1970, 1, 1, tzinfo=UTC),
        "start_time is 0 (unset)",
    ),
    ("tags that are a JSON array", "tags", [1, 2], "tags is a JSON array, not a JSON object"),
    ("tags as JSON text of an array", "tags", ' ["a"]', "tags is a JSON array, not a JSON"),
    ("tags that are a number", "tags", 7, "tags is a number, not a JSON object"),
    ("logs that are an object", "logs", {"a": 1}, "logs is a JSON object, not a JSON array"),
]


@pytest.mark.parametrize(
    ("column", "value", "message"), [pytest.param(c, v, m, id=w) for w, c, v, m in REFUSED]
)
def test_a_row_an_importer_would_refuse_is_refused_naming_the_row(
    migrated_db: str, column: str, value: object, message: str
) -> None:
    """The same rules as the OTLP/Jaeger decoders (records.hex_id, unix_ns, json_shape):
    an InputError naming the row and the column, and nothing of the write is stored."""
    frame = spans()
    frame["logs"] = [[] for _ in range(len(frame))]
    if column == "start_time":  # keep end after start: the time itself is what is wrong
        frame[column] = frame[column].astype(object)
        frame.loc[1, "end_time"] = value
    frame[column] = frame[column].astype(object)
    frame.at[1, column] = value
    with pytest.raises(InputError) as caught:
        write_spans(frame, url=migrated_db)
    assert str(caught.value).startswith(f"spans row 1: {message}"), str(caught.value)
    assert count(migrated_db) == 0


def test_a_year_3000_span_is_refused(migrated_db: str) -> None:
    """After 2262 is past what the loaders' nanosecond times hold: refused like an import."""
    frame = spans(1)
    frame["start_time"] = frame["end_time"] = pd.Timestamp("3000-01-01", tz="UTC").as_unit("us")
    with pytest.raises(InputError, match=r"^spans row 0: start_time \d+ is after 2262"):
        write_spans(frame, url=migrated_db)


@pytest.mark.parametrize(
    ("column", "value", "nbytes"),
    [("trace_id", "t-1", 16), ("span_id", "0" * 16, 8), ("span_id", "xyz" * 5 + "a", 8)],
)
def test_the_rules_are_the_importers_own_functions(column: str, value: str, nbytes: int) -> None:
    """One rule, one function: the writer's refusal is the decoders' hex_id's, word for word
    (the writer only screens which rows to ask it about)."""
    from obslib.ingest.frames import to_arrow
    from obslib.ingest.tables import SPAN_SPEC

    with pytest.raises(records.RecordError) as decoder:
        records.hex_id(value, nbytes, column)
    table = to_arrow(spans(1).assign(**{column: value}), SPAN_SPEC, "spans")
    with pytest.raises(records.RecordError) as writer:
        records.check_span_table(table)
    assert str(writer.value) == f"row 0: {decoder.value}"


def test_uppercase_ids_are_stored_lowercase_as_importers_store_them(migrated_db: str) -> None:
    """A re-import of the same span in lowercase (what OTLP/JSON decoders store) is then a
    duplicate, not a second span."""
    frame = spans()
    upper = frame.assign(
        trace_id=frame["trace_id"].str.upper(),
        span_id=frame["span_id"].str.upper(),
        parent_span_id=frame["parent_span_id"].str.upper(),
    )
    assert write_spans(upper, url=migrated_db) == 3
    assert write_spans(frame, url=migrated_db) == 0
    assert set(load.trace(TRACE, url=migrated_db)["span_id"]) == {sid(0), sid(1), sid(2)}


def test_a_batch_refuses_a_bad_span_too(migrated_db: str) -> None:
    """``obslib.batch().spans`` is the same path: no way around the rules."""
    with (
        pytest.raises(InputError, match=r"^spans row 0: trace_id is all zeros"),
        batch(migrated_db) as b,
    ):
        b.spans(spans(1, trace_id="0" * 32))
    assert count(migrated_db) == 0


def test_valid_json_text_tags_and_logs_pass(migrated_db: str) -> None:
    """Tags and logs given as JSON text of the right shape (spaces first) are stored."""
    frame = spans().assign(
        tags=[f"  {json.dumps({'i': i})}" for i in range(3)], logs=["[]", " []", "[{}]"]
    )
    assert write_spans(frame, url=migrated_db) == 3


# -- conflicts -------------------------------------------------------------------------------


@pytest.mark.parametrize("stored_first", ["null", "a value"])
def test_a_rewrite_differing_only_as_null_versus_a_value_is_a_conflict(
    migrated_db: str, stored_first: str
) -> None:
    """Pinned: NULL vs a value is a difference (IS DISTINCT FROM, not =, which is unknown
    for NULL and would drop the rewrite silently as if it were identical)."""
    with_parent = spans(2)
    without = with_parent.assign(parent_span_id=None)
    first, second = (without, with_parent) if stored_first == "null" else (with_parent, without)
    assert write_spans(first, url=migrated_db) == 2
    written = write_spans(second, url=migrated_db)
    assert written == 0
    assert written.conflicts.count == 1
    assert written.conflicts.keys == ((TRACE, sid(1)),)


# -- duplicate or conflict: one notion of "identical" ----------------------------------------


def _row(tags: dict, position: str) -> dict:
    """A decoder's span row (records.span_row), as the importers and the receiver store."""
    ns = int(T0.timestamp()) * 10**9
    return records.span_row(
        trace_id=TRACE,
        span_id=sid(0),
        parent_span_id=None,
        service_name="api",
        operation_name="GET /",
        span_kind="server",
        start_ns=ns,
        end_ns=ns + 5_000_000,
        status="ok",
        tags=tags,
        events=[],
        position=position,
    )


def _store(url: str, *rows: dict) -> tuple[int, int, int, list[str]]:
    from obslib.ingest.store import store

    with batch(url, every_conflict=True) as b:
        out = store(b, records.Decoded(spans=list(rows)), "input.json")
    return (
        out.spans.accepted,
        out.spans.duplicate,
        out.spans.rejected,
        [str(r) for r in out.rejects],
    )


def test_a_record_identical_as_stored_is_a_duplicate_in_the_input_as_in_the_table(
    migrated_db: str,
) -> None:
    """1 and 1.0 are the same number to jsonb: the table calls the second copy identical, and
    so does the in-input check (it called it "other content" and rejected it); the same
    record against the stored copy is a duplicate too."""
    one, one_point_oh = _row({"n": 1}, "line 1"), _row({"n": 1.0}, "line 2")
    assert _store(migrated_db, one, one_point_oh) == (1, 1, 0, [])
    assert _store(migrated_db, one_point_oh) == (0, 1, 0, [])


def test_true_and_1_are_other_content_in_the_input_and_in_one_write(migrated_db: str) -> None:
    """jsonb tells true from 1 (Python's == does not): a conflict in the input, refused
    rows in one write, never one of them dropped as an identical copy."""
    flag, number = _row({"on": True}, "line 1"), _row({"on": 1}, "line 2")
    assert _store(migrated_db, flag, number) == (
        1,
        0,
        1,
        [
            "input.json: line 2: same trace and span id as the record at line 1 with other"
            " content (the first is kept)"
        ],
    )
    frame = spans(1)
    frame = pd.concat([frame, frame.assign(tags=[{"i": True}])], ignore_index=True)
    frame.at[0, "tags"] = {"i": 1}
    with pytest.raises(
        InputError, match=r"^spans rows 0 and 1 have the same key .* but different tags$"
    ):
        write_spans(frame.assign(span_id=sid(5)), url=migrated_db)


# -- the commit's merge: rows wait in a temporary table until then -------------------------


def _on_the_batch(b, statement: str) -> list[tuple]:
    """Run ``statement`` on the batch's own connection (its pending tables are temporary)."""
    with b._conn.cursor() as cur:
        cur.execute(statement)
        return cur.fetchall() if cur.description else []


def _constraints(b, table: str, columns: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """The CHECK constraints' names and the NOT NULL columns (of ``columns``) of ``table``."""
    checks = _on_the_batch(
        b,
        f"SELECT conname FROM pg_constraint WHERE conrelid = '{table}'::regclass"
        " AND contype = 'c' ORDER BY conname",
    )
    not_null = _on_the_batch(
        b,
        f"SELECT attname FROM pg_attribute WHERE attrelid = '{table}'::regclass"
        " AND attnum > 0 AND NOT attisdropped AND attnotnull ORDER BY attname",
    )
    return [c for (c,) in checks], [c for (c,) in not_null if c in columns]


def test_the_pending_tables_have_the_tables_not_null_and_check_constraints(
    migrated_db: str,
) -> None:
    """A batch's spans and logs wait for the commit in temporary tables; those hold the
    table's NOT NULL and CHECK constraints (CREATE TABLE AS copied none), so a row the table
    would refuse fails at its write, not at the commit."""
    logs = pd.DataFrame(
        [dict(timestamp=T0, level="info", service_name="api", message="hello", log_id="l-1")]
    )
    with batch(migrated_db) as b:
        b.spans(spans(2))
        b.logs(logs)
        for target in (tables.SPANS, tables.LOGS):
            table = _constraints(b, target.table, target.columns)
            assert table[0] and table[1], target.kind
            assert _constraints(b, target.pending, target.columns) == table, target.kind
    assert count(migrated_db) == 2


def test_a_data_error_at_the_commit_names_postgresqls_reason(migrated_db: str) -> None:
    """A value PostgreSQL refuses in the commit's merge (here a trace id longer than the
    column, put into the pending table behind the writer's back) is bad input with
    PostgreSQL's reason, and nothing lands. It was "relation obslib_stage does not exist":
    the error path looked for the row in the write's staging table, dropped long before."""
    with pytest.raises(InputError) as caught, batch(migrated_db) as b:
        b.spans(spans(2))
        _on_the_batch(b, f"UPDATE {tables.SPANS.pending} SET trace_id = repeat('a', 101)")
    assert str(caught.value) == (
        "spans: PostgreSQL refused the batch at its commit:"
        " value too long for type character varying(100)"
    )
    assert count(migrated_db) == 0
