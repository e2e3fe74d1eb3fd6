"""Writers: a batch lands whole or not at all, idempotent on natural keys, no 'nan' text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import psycopg
import pytest

from obslib import load
from obslib.errors import InputError, UsageError
from obslib.ingest import batch, write_logs, write_spans
from tests.ids import sid, tid

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def spans(trace: str = "t-1", n: int = 3) -> pd.DataFrame:
    """Trace ``tid(trace)``: a root s0 and n-1 children, with NaN (pandas' missing string)
    as the root's parent."""
    rows = [
        dict(
            trace_id=tid(trace),
            span_id=sid(f"s{i}"),
            parent_span_id=np.nan if i == 0 else sid("s0"),
            service_name="api-gateway" if i == 0 else "auth-service",
            operation_name="GET /" if i == 0 else "validate_token",
            span_kind="server",
            start_time=T0 + timedelta(milliseconds=i),
            end_time=T0 + timedelta(milliseconds=50 - i),
            tags={"i": i},
        )
        for i in range(n)
    ]
    return pd.DataFrame(rows)


def logs(n: int = 3, trace: str = "t-1") -> pd.DataFrame:
    """n log records of trace ``tid(trace)``."""
    return pd.DataFrame(
        dict(
            timestamp=[T0 + timedelta(seconds=i) for i in range(n)],
            level="INFO",
            service_name="auth-service",
            trace_id=tid(trace),
            span_id=None,
            message=[f"message {i}" for i in range(n)],
            fields=[{"n": i} for i in range(n)],
        )
    )


def test_missing_strings_are_stored_as_null_not_nan(migrated_db: str) -> None:
    """pandas 3 keeps missing text as NaN; the database gets NULL, never the text 'nan'."""
    write_spans(spans(), url=migrated_db)
    with psycopg.connect(migrated_db) as conn:
        parents = dict(
            conn.execute("SELECT span_id, parent_span_id FROM distributed_traces").fetchall()
        )
    assert parents == {sid("s0"): None, sid("s1"): sid("s0"), sid("s2"): sid("s0")}


def test_a_failure_later_in_a_batch_rolls_back_everything(migrated_db: str) -> None:
    """Spans written, then logs that fail validation: neither lands."""
    bad_logs = logs()
    bad_logs.loc[1, "level"] = "loud"
    with (
        pytest.raises(InputError, match="logs row 1: level 'loud' is not one of"),
        batch(migrated_db) as b,
    ):
        assert b.spans(spans()) == 3
        b.logs(bad_logs)
    assert load.trace(tid("t-1"), url=migrated_db).empty


def test_json_text_is_checked_before_the_merge_with_its_row(migrated_db: str) -> None:
    """JSON given as text that jsonb refuses fails the batch naming row and column."""
    broken = spans("t-2")
    broken["tags"] = ['{"ok": 1}', '{"ok": 2}', "{not json"]
    with (
        pytest.raises(
            InputError, match=r"^spans row 2: tags is not JSON \(invalid input syntax for type json"
        ),
        batch(migrated_db) as b,
    ):
        b.spans(broken)
    assert load.trace(tid("t-2"), url=migrated_db).empty


def test_unknown_references_are_named(migrated_db: str) -> None:
    """An incident naming no stored alert, a measurement naming no SLO: refused by name."""
    incident = pd.DataFrame(
        [dict(incident_id="I-1", alert_name="ghost-alert", severity="low", triggered_at=T0)]
    )
    with (
        pytest.raises(InputError, match="'ghost-alert' names no stored definition"),
        batch(migrated_db) as b,
    ):
        b.incidents(incident)
    measurement = pd.DataFrame(
        [
            dict(
                service_name="api-gateway",
                slo_name="ghost",
                measurement_timestamp=T0,
                actual_value=99.0,
                target_value=99.9,
                compliance_status="violated",
                measurement_period=pd.Timedelta(hours=1),
            )
        ]
    )
    with (
        pytest.raises(InputError, match="'api-gateway/ghost' names no stored"),
        batch(migrated_db) as b,
    ):
        b.slo_measurements(measurement)


def test_logs_are_idempotent_with_derived_ids(migrated_db: str) -> None:
    """Logs without ids get stable ones from their content: a second write adds nothing."""
    assert write_logs(logs(), url=migrated_db) == 3
    assert write_logs(logs(), url=migrated_db) == 0
    stored = load.logs(trace_id=tid("t-1"), url=migrated_db)
    assert stored["level"].tolist() == ["info"] * 3  # levels are normalised
    assert stored["fields"].tolist() == [{"n": 0}, {"n": 1}, {"n": 2}]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["span_id"]), "spans: missing column"),
        (lambda f: f.assign(status="meh"), "spans row 0: status 'meh' is not one of"),
        (lambda f: f.assign(trace_id=""), "spans row 0: trace_id is empty"),
        (lambda f: f.assign(end_time=T0 - timedelta(seconds=1)), "spans row 0: end_time is before"),
        (lambda f: f.assign(start_time="not a time"), "spans: column start_time is not time"),
        (lambda f: f.assign(tags=[{"x": object()}] * 3), "spans row 0: tags is not JSON"),
    ],
    ids=[
        "a missing column",
        "an unknown status",
        "an empty id",
        "time running backwards",
        "a time that is not a time",
        "tags that are not JSON",
    ],
)
def test_bad_spans_are_refused_with_row_and_column(migrated_db: str, change, message: str) -> None:
    """Each malformed input gets a message naming what and where, and nothing is stored."""
    with pytest.raises(InputError, match=message):
        write_spans(change(spans("t-bad")), url=migrated_db)
    assert load.trace(tid("t-bad"), url=migrated_db).empty


def test_reading_an_unmigrated_database_says_what_to_do(fresh_db: str) -> None:
    """Without the schema, a loader says to run `obslib db up` instead of a driver error."""
    with pytest.raises(UsageError, match="obslib db up"):
        load.trace(tid("t-1"), url=fresh_db)


def test_an_error_caught_inside_a_batch_still_rolls_it_back(migrated_db: str) -> None:
    """Catching a failed write and carrying on cannot commit half a batch."""
    bad = logs()
    bad.loc[0, "level"] = "loud"
    with pytest.raises(InputError, match="batch rolled back: logs row 0"), batch(migrated_db) as b:
        b.spans(spans("t-caught"))
        with pytest.raises(InputError):
            b.logs(bad)
        with pytest.raises(InputError, match="this batch already failed"):
            b.spans(spans("t-after"))
    assert load.trace(tid("t-caught"), url=migrated_db).empty


def test_booleans_and_integers_are_parsed_strictly(migrated_db: str) -> None:
    """ "false" is false (not a truthy string) and 1.5 is no integer."""
    slos = pd.DataFrame(
        [
            dict(
                service_name="api-gateway",
                slo_name="availability",
                slo_type="availability",
                target_value=99.9,
                enabled="false",
            )
        ]
    )
    with batch(migrated_db) as b:
        b.slos(slos)
    assert not load.slos(url=migrated_db)["enabled"].iloc[0]
    with (
        pytest.raises(InputError, match="measurement_window_hours is not int"),
        batch(migrated_db) as b,
    ):
        b.slos(slos.assign(slo_name="x", measurement_window_hours=1.5))


def test_missing_log_ids_are_derived_row_by_row(migrated_db: str) -> None:
    """Some records carry ids, some do not: the missing ones are derived, the rest kept."""
    some = logs().assign(log_id=["given-0", None, None])
    assert write_logs(some, url=migrated_db) == 3
    ids = load.logs(trace_id=tid("t-1"), url=migrated_db)["log_id"].tolist()
    assert ids[0] == "given-0" and len(set(ids)) == 3


def _set(col: str, row: int, value):
    """A change that puts ``value`` into one cell (object dtype, so any value fits)."""

    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame[col] = frame[col].astype(object) if col in frame else None
        frame.at[row, col] = value
        return frame

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set("service_name", 1, "auth\x00service"), r"spans row 1: service_name contains a NUL"),
        (
            _set("tags", 2, {"k": "a\x00b"}),
            r"spans row 2: tags is not JSON \(unsupported Unicode escape sequence",
        ),
        (
            _set("tags", 1, '{"k": "\\u0000"}'),
            r"spans row 1: tags is not JSON \(unsupported Unicode escape sequence",
        ),
        (_set("tags", 0, {"ratio": float("nan")}), r"spans row 0: tags is not JSON"),
        (_set("logs", 1, '["a\x00"]'), r"spans row 1: logs contains a NUL character"),
        (_set("trace_id", 2, "t" * 101), r"spans row 2: trace_id is 101 characters long, more "),
        (_set("operation_name", 1, "o" * 201), r"spans row 1: operation_name is 201 characters"),
        (_set("span_id", 1, "   "), r"spans row 1: span_id is blank"),
        (_set("parent_span_id", 2, ""), r"spans row 2: parent_span_id is empty \(leave it null"),
        (_set("service_name", 0, " \t"), r"spans row 0: service_name is blank"),
        (
            _set("end_time", 1, T0 + timedelta(days=366 * 40)),
            r"spans row 1: duration_ms 126\d+\.0 does not fit its column \(NUMERIC\(15,3\)",
        ),
        (
            lambda f: f.assign(duration_ms=[50.0, 48.0, 12.5]),
            r"spans row 2: duration_ms 12.5 disagrees with end_time - start_time \(46.0 ms\)",
        ),
        (
            lambda f: f.assign(duration_ms=[50.0, 48.0, float("inf")]),
            r"spans row 2: duration_ms is inf, not a number",
        ),
    ],
    ids=[
        "a NUL in a text column",
        "a NUL in a tag value",
        "an escaped NUL in JSON text",
        "NaN inside tags",
        "a NUL in JSON text",
        "a trace id longer than its column",
        "an operation longer than its column",
        "a blank span id",
        "an empty parent id",
        "a blank service",
        "a span too long for duration_ms",
        "a duration that is not end minus start",
        "an infinite duration",
    ],
)
def test_values_postgres_would_refuse_are_named_first(
    migrated_db: str, change, message: str
) -> None:
    """What PostgreSQL refuses without naming a row or column is caught first, with both."""
    with pytest.raises(InputError, match=f"^{message}"):
        write_spans(change(spans("t-bad")), url=migrated_db)
    assert load.trace(tid("t-bad"), url=migrated_db).empty


def test_values_at_the_column_limits_are_stored(migrated_db: str) -> None:
    """A 200-character operation and a given duration that agrees. Ids are 32 (trace) or 16
    (span) hex digits, inside their VARCHAR(100): a 100-character id is refused by that rule."""
    too_long = spans("t-limits").assign(trace_id="a" * 100)
    with pytest.raises(InputError, match=r"^spans row 0: trace_id 'a{40}\.\.\.' has 100 char"):
        write_spans(too_long, url=migrated_db)
    frame = spans("t-limits")
    frame.loc[0, "operation_name"] = "o" * 200
    frame["duration_ms"] = [50.0, 48.0, 46.0005]  # within a microsecond of end - start
    assert write_spans(frame, url=migrated_db) == 3
    stored = load.trace(tid("t-limits"), url=migrated_db)
    assert stored["duration_ms"].tolist() == [50.0, 48.0, 46.0]  # derived from the times
    assert stored["operation_name"].str.len().max() == 200


def test_a_zero_length_span_is_legal(migrated_db: str) -> None:
    """end_time == start_time (an instant event, a cache hit under the clock's resolution)."""
    frame = spans("t-zero", n=1)
    frame["end_time"] = frame["start_time"]
    assert write_spans(frame, url=migrated_db) == 1
    assert load.trace(tid("t-zero"), url=migrated_db)["duration_ms"].tolist() == [0.0]


def test_derived_log_ids_include_the_timestamp(migrated_db: str) -> None:
    """The same message at two times is two records; the same instant spelled twice is one."""
    same_text = logs(2).assign(message="retrying", fields=[{}, {}])
    assert write_logs(same_text, url=migrated_db) == 2
    respelled = same_text.assign(
        timestamp=["2026-11-20T10:00:00+01:00", "2026-11-20T09:00:01.000000Z"]
    )
    assert write_logs(respelled, url=migrated_db) == 0
    assert len(load.logs(trace_id=tid("t-1"), url=migrated_db)) == 2


def test_numbers_that_overflow_their_column_are_named(migrated_db: str) -> None:
    """An SLO target past NUMERIC(10,4) and a window past INTEGER: row and column named."""
    slo = dict(service_name="api", slo_name="a", slo_type="availability", target_value=99.9)
    too_big = pd.DataFrame([slo, {**slo, "slo_name": "b", "target_value": 1e6}])
    with (
        pytest.raises(InputError, match=r"^slos row 1: target_value 1000000.0 does not fit"),
        batch(migrated_db) as b,
    ):
        b.slos(too_big)
    long_window = pd.DataFrame([{**slo, "measurement_window_hours": 2**31}])
    with (
        pytest.raises(InputError, match=r"^slos row 0: measurement_window_hours 2147483648 is"),
        batch(migrated_db) as b,
    ):
        b.slos(long_window)
    assert load.slos(url=migrated_db).empty


def test_a_bulk_load_refreshes_the_planners_statistics_and_a_small_one_does_not(
    migrated_db: str,
) -> None:
    """9,999 new log records leave the statistics to autovacuum; 10,000 spans get ANALYZE
    at once (a fresh table planned as empty made a 1-second coverage query take minutes)."""
    from obslib.ingest.writer import ANALYZE_AFTER_ROWS

    def analyzed(table: str) -> bool:
        with psycopg.connect(migrated_db) as conn:
            row = conn.execute(
                "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = %s", [table]
            ).fetchone()
        return row[0] is not None

    write_logs(logs(n=ANALYZE_AFTER_ROWS - 1), url=migrated_db)
    many = spans(n=ANALYZE_AFTER_ROWS)
    many["end_time"] = many["start_time"] + timedelta(milliseconds=5)
    write_spans(many, url=migrated_db)
    assert analyzed("distributed_traces") and not analyzed("structured_logs")
