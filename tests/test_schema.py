"""The migrated schema keeps the upstream plan's tables and fixes what was not valid."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pandas as pd
import psycopg
import pytest

from obslib import load, schema
from obslib.errors import InputError
from obslib.ingest import write_spans
from tests.ids import sid, tid

# Every column of the plan's SQL with the information_schema type it must have. Widened
# numerics (duration_ms, error_budget_remaining) are still numeric.
PLAN_COLUMNS = {
    "service_level_objectives": {
        "id": "bigint",
        "service_name": "character varying",
        "slo_name": "character varying",
        "slo_type": "character varying",
        "target_value": "numeric",
        "measurement_window_hours": "integer",
        "error_budget_percent": "numeric",
        "alert_threshold_percent": "numeric",
        "enabled": "boolean",
        "created_at": "timestamp with time zone",
        "updated_at": "timestamp with time zone",
    },
    "slo_measurements": {
        "id": "bigint",
        "slo_id": "bigint",
        "measurement_timestamp": "timestamp with time zone",
        "actual_value": "numeric",
        "target_value": "numeric",
        "compliance_status": "character varying",
        "error_budget_remaining": "numeric",
        "measurement_period": "interval",
    },
    "distributed_traces": {
        "id": "bigint",
        "trace_id": "character varying",
        "span_id": "character varying",
        "parent_span_id": "character varying",
        "service_name": "character varying",
        "operation_name": "character varying",
        "start_time": "timestamp with time zone",
        "end_time": "timestamp with time zone",
        "duration_ms": "numeric",
        "status": "character varying",
        "tags": "jsonb",
        "logs": "jsonb",
    },
    "alert_definitions": {
        "id": "bigint",
        "alert_name": "character varying",
        "service_name": "character varying",
        "alert_type": "character varying",
        "metric_name": "character varying",
        "condition_expression": "text",
        "severity": "character varying",
        "notification_channels": "ARRAY",
        "enabled": "boolean",
        "created_at": "timestamp with time zone",
        "updated_at": "timestamp with time zone",
    },
    "alert_incidents": {
        "id": "bigint",
        "incident_id": "character varying",
        "alert_id": "bigint",
        "status": "character varying",
        "severity": "character varying",
        "triggered_at": "timestamp with time zone",
        "acknowledged_at": "timestamp with time zone",
        "resolved_at": "timestamp with time zone",
        "acknowledged_by": "character varying",
        "resolved_by": "character varying",
        "escalation_level": "integer",
        "incident_data": "jsonb",
    },
}


def columns(url: str, table: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name = %s",
            (table,),
        ).fetchall()
    return dict(rows)


@pytest.mark.parametrize("table", list(PLAN_COLUMNS))
def test_every_plan_column_exists_with_a_compatible_type(migrated_db: str, table: str) -> None:
    """Nothing of the plan is renamed or retyped: its columns are all there."""
    actual = columns(migrated_db, table)
    expected = PLAN_COLUMNS[table]
    assert {c: actual.get(c) for c in expected} == expected


def test_additions_exist(migrated_db: str) -> None:
    """span_kind on spans, a latency threshold on SLOs and the structured logs table."""
    assert columns(migrated_db, "distributed_traces")["span_kind"] == "character varying"
    assert columns(migrated_db, "service_level_objectives")["latency_threshold_ms"] == "numeric"
    assert set(columns(migrated_db, "structured_logs")) >= {
        "timestamp",
        "level",
        "service_name",
        "trace_id",
        "span_id",
        "message",
        "fields",
        "error",
    }


def check_lists(url: str) -> dict[tuple[str, str], set[str]]:
    """(table, column) -> the values each `column IN (...)` CHECK constraint allows."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint
               WHERE connamespace = 'public'::regnamespace AND contype = 'c'"""
        ).fetchall()
    found = {}
    for table, definition in rows:
        m = re.fullmatch(
            r"CHECK \(\(\((\w+)\)::text = ANY \(\(ARRAY\[(.*)\]\)::text\[\]\)\)\)", definition
        )
        if m:
            found[(table, m.group(1))] = set(re.findall(r"'([^']*)'::", m.group(2)))
    return found


def test_check_lists_match_the_library_constants(migrated_db: str) -> None:
    """Every status-like CHECK allows exactly the values obslib.schema names, and no other."""
    expected = {key: set(values) for key, values in schema.CHECKED_VALUES.items()}
    assert check_lists(migrated_db) == expected


def test_unique_span_key_rejects_a_duplicate(migrated_db: str) -> None:
    """The same (trace_id, span_id) cannot be stored twice."""
    insert = (
        "INSERT INTO distributed_traces (trace_id, span_id, service_name, operation_name,"
        " start_time, end_time, duration_ms, status)"
        " VALUES ('t', 's', 'svc', 'op', now(), now(), 0, 'ok')"
    )
    with psycopg.connect(migrated_db) as conn:
        conn.execute(insert)
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(insert)


def test_latency_slo_needs_a_threshold(migrated_db: str) -> None:
    """A latency SLO without the threshold that defines a good request is refused."""
    with psycopg.connect(migrated_db) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO service_level_objectives (service_name, slo_name, slo_type, target_value)"
            " VALUES ('api-gateway', 'p99', 'latency', 99)"
        )


T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _spans(trace: str = "test-trace-123") -> pd.DataFrame:
    """The plan's integration test: one api-gateway root with two children (trace
    ``tid(trace)``, spans ``sid("span-1")`` ...)."""
    ms = timedelta(milliseconds=1)
    trace_id = tid(trace)
    return pd.DataFrame(
        [
            (
                trace_id,
                sid("span-1"),
                None,
                "api-gateway",
                "http_request",
                "server",
                T0,
                T0 + 120 * ms,
            ),
            (
                trace_id,
                sid("span-2"),
                sid("span-1"),
                "auth-service",
                "validate_token",
                "server",
                T0 + 5 * ms,
                T0 + 25 * ms,
            ),
            (
                trace_id,
                sid("span-3"),
                sid("span-1"),
                "domain-service",
                "generate_domains",
                "server",
                T0 + 30 * ms,
                T0 + 110 * ms,
            ),
        ],
        columns=[
            "trace_id",
            "span_id",
            "parent_span_id",
            "service_name",
            "operation_name",
            "span_kind",
            "start_time",
            "end_time",
        ],
    )


def test_plan_integration_trace_round_trip(migrated_db: str) -> None:
    """Record 3 spans of one trace, read the trace back: 3 spans with the right parents."""
    assert write_spans(_spans(), url=migrated_db) == 3
    trace = load.trace(tid("test-trace-123"), url=migrated_db)
    assert len(trace) == 3
    parents = trace.set_index("span_id")["parent_span_id"]
    assert pd.isna(parents[sid("span-1")])
    assert (parents[sid("span-2")], parents[sid("span-3")]) == (sid("span-1"), sid("span-1"))
    assert list(trace["duration_ms"]) == [120.0, 20.0, 80.0]
    assert str(trace["start_time"].dt.tz) == "UTC"
    assert trace["start_time"].tolist() == list(_spans()["start_time"])
    assert trace["tags"].tolist() == [{}, {}, {}]


def test_writing_the_same_spans_twice_stores_them_once(migrated_db: str) -> None:
    """Re-ingesting a batch is idempotent on (trace_id, span_id)."""
    write_spans(_spans(), url=migrated_db)
    assert write_spans(_spans(), url=migrated_db) == 0
    assert len(load.trace(tid("test-trace-123"), url=migrated_db)) == 3


def test_a_five_hour_span_stores_without_overflow(migrated_db: str) -> None:
    """DECIMAL(10,3) would overflow past ~2.8 h; a 5 h batch job span stores exactly."""
    span = _spans("long").iloc[[0]].copy()
    span["end_time"] = T0 + timedelta(hours=5)
    write_spans(span, url=migrated_db)
    assert load.trace(tid("long"), url=migrated_db)["duration_ms"].tolist() == [5 * 3600 * 1000.0]


def test_a_bad_row_rejects_the_whole_batch(migrated_db: str) -> None:
    """Invalid input names the row and column and stores nothing of the batch."""
    spans = _spans("bad-batch")
    spans.loc[2, "span_kind"] = "sideways"
    with pytest.raises(InputError, match="spans row 2: span_kind 'sideways' is not one of"):
        write_spans(spans, url=migrated_db)
    assert load.trace(tid("bad-batch"), url=migrated_db).empty


def test_unknown_trace_is_an_empty_frame_with_the_same_columns(migrated_db: str) -> None:
    """An unknown id reads as no rows, not an error, and a hostile id is just a value."""
    write_spans(_spans(), url=migrated_db)
    empty = load.trace("x'; DROP TABLE distributed_traces;--", url=migrated_db)
    assert empty.empty
    assert list(empty.columns) == list(schema.SPAN_COLUMNS)
    assert len(load.trace(tid("test-trace-123"), url=migrated_db)) == 3


# Spec columns that name a row of another table instead of landing in their own.
REFERENCES = {
    ("slo_measurements", "service_name"): schema.SLOS,
    ("slo_measurements", "slo_name"): schema.SLOS,
    ("incidents", "alert_name"): schema.ALERT_DEFINITIONS,
}


def column_types(url: str, table: str) -> dict[str, tuple]:
    """column -> (data_type, varchar length, numeric precision, numeric scale)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT column_name, data_type, character_maximum_length, numeric_precision,"
            " numeric_scale FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name = %s",
            (table,),
        ).fetchall()
    return {name: rest for name, *rest in rows}


def test_writer_widths_match_the_migrated_columns(migrated_db: str) -> None:
    """Every width the writer checks (VARCHAR length, NUMERIC digits, INTEGER range) is the
    migrated column's, so the checks and the schema cannot drift apart."""
    from obslib.ingest.frames import FLOAT, INT, TEXT
    from obslib.ingest.tables import TARGETS

    checked = 0
    for target in TARGETS.values():
        for col in target.spec:
            table = REFERENCES.get((target.kind, col.name), target.table)
            db_type = column_types(migrated_db, table).get(col.name)
            if db_type is None:  # a value the merge converts (measurement_period_s)
                continue
            data_type, length, precision, scale = db_type
            where = f"{target.kind}.{col.name} -> {table}.{col.name} ({data_type})"
            if col.kind == TEXT:
                assert col.width == length, where
            elif col.kind == FLOAT:
                digits = (precision, scale) if data_type == "numeric" and precision else None
                assert col.digits == digits, where
            elif col.kind == INT:
                assert data_type == "integer", where
            checked += 1
    assert checked > 50
