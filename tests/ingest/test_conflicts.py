"""Writers lose nothing silently: key conflicts are reported, duplicates in a batch are
refused or collapsed, concurrent writers do not deadlock, database failures are not input."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import orjson
import pandas as pd
import psycopg
import pytest

from obslib import load
from obslib.errors import DatabaseError, InputError
from obslib.ingest import batch, otlp, records, write_logs, write_spans
from obslib.ingest.records import Reject
from obslib.ingest.store import settle, store
from obslib.ingest.writer import Conflicts, Late
from tests.conftest import run_cli
from tests.ids import tid

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
WRITER = "obslib.ingest.writer"


def sid(i: int) -> str:
    """The id of span ``s<i>``: hex, never all zeros, and in the order of ``i`` (conflicts
    are listed in key order; ``stored`` reads ``i`` back)."""
    return f"{i + 1:016x}"


def spans(trace: str = "t-1", n: int = 3) -> pd.DataFrame:
    """n spans of trace ``tid(trace)``, s0 the root of the others."""
    return pd.DataFrame(
        [
            dict(
                trace_id=tid(trace),
                span_id=sid(i),
                parent_span_id=None if i == 0 else sid(0),
                service_name="api-gateway",
                operation_name=f"op {i}",
                start_time=T0 + timedelta(milliseconds=i),
                end_time=T0 + timedelta(milliseconds=10 + i),
                tags={"i": i, "zone": "eu"},
            )
            for i in range(n)
        ]
    )


def stored(url: str, trace: str) -> dict[str, str]:
    """s<i> -> operation_name of what is stored."""
    frame = load.trace(tid(trace), url=url)
    names = [f"s{int(s, 16) - 1}" for s in frame["span_id"]]
    return dict(zip(names, frame["operation_name"], strict=True))


def test_rewriting_identical_rows_is_quiet(migrated_db: str, caplog) -> None:
    """Re-ingesting the same rows (tags spelled in another key order) adds nothing, reports
    no conflict and logs no warning."""
    assert write_spans(spans(), url=migrated_db) == 3
    again = spans().assign(tags=[{"zone": "eu", "i": i} for i in range(3)])
    with caplog.at_level(logging.WARNING, logger=WRITER):
        written = write_spans(again, url=migrated_db)
    assert (written, written.conflicts) == (0, Conflicts())
    assert not caplog.records


def test_a_conflicting_rewrite_is_counted_named_and_the_stored_row_kept(
    migrated_db: str, caplog
) -> None:
    """Same key, other content: not written (first stored wins), counted with its key,
    and a warning says so."""
    write_spans(spans(), url=migrated_db)
    changed = spans(n=4)
    changed.loc[1, "operation_name"] = "renamed"
    changed.at[2, "tags"] = {"i": 2, "zone": "us"}
    with caplog.at_level(logging.WARNING, logger=WRITER):
        written = write_spans(changed, url=migrated_db)
    assert written == 1  # s3 is new
    assert written.conflicts == Conflicts(2, ((tid("t-1"), sid(1)), (tid("t-1"), sid(2))))
    assert stored(migrated_db, "t-1") == {"s0": "op 0", "s1": "op 1", "s2": "op 2", "s3": "op 3"}
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert (
        "spans: 2 row(s) not written" in caplog.text
        and f"('{tid('t-1')}', '{sid(1)}')" in caplog.text
    )


def test_a_batch_adds_up_conflicts_over_its_writes(migrated_db: str) -> None:
    """Two writes in one batch: the second conflicts with the first (already stored in the
    same transaction); ``Batch.conflicts`` keeps the count per kind."""
    changed = spans().assign(status="error")
    with batch(migrated_db) as b:
        b.spans(spans())
        b.spans(changed)
        b.spans(changed.iloc[[0]])
    assert b.conflicts == {"spans": Conflicts(4, tuple((tid("t-1"), sid(i)) for i in (0, 1, 2, 0)))}
    assert load.trace(tid("t-1"), url=migrated_db)["status"].tolist() == ["ok"] * 3


def test_identical_duplicates_in_one_write_collapse(migrated_db: str) -> None:
    """The same row twice in one frame is stored once and counted once."""
    frame = spans()
    twice = pd.concat([frame, frame.iloc[[1, 1]]], ignore_index=True)
    written = write_spans(twice, url=migrated_db)
    assert (written, written.conflicts) == (3, Conflicts())
    assert stored(migrated_db, "t-1") == {"s0": "op 0", "s1": "op 1", "s2": "op 2"}


def test_different_rows_with_one_key_in_one_write_are_refused(migrated_db: str) -> None:
    """Which of two different rows is meant is the caller's to say: both rows are named."""
    frame = spans(n=4)
    frame.loc[3, "span_id"] = sid(1)
    with pytest.raises(
        InputError,
        match=rf"^spans rows 1 and 3 have the same key \(trace_id='{tid('t-1')}',"
        rf" span_id='{sid(1)}'\)"
        r" but different operation_name$",
    ):
        write_spans(frame, url=migrated_db)
    assert load.trace(tid("t-1"), url=migrated_db).empty


def test_measurement_conflicts_name_the_slo(migrated_db: str) -> None:
    """A joined table reports its conflicts with the frame's key (service, SLO, time)."""
    slo = pd.DataFrame(
        [dict(service_name="api", slo_name="avail", slo_type="availability", target_value=99.9)]
    )
    measurement = dict(
        service_name="api",
        slo_name="avail",
        measurement_timestamp=T0,
        actual_value=99.95,
        target_value=99.9,
        compliance_status="compliant",
        measurement_period=pd.Timedelta(hours=1),
    )
    with batch(migrated_db) as b:
        b.slos(slo)
        assert b.slo_measurements(pd.DataFrame([measurement])) == 1
        assert b.slo_measurements(pd.DataFrame([measurement])) == 0  # identical: quiet
        late = b.slo_measurements(pd.DataFrame([{**measurement, "actual_value": 98.0}]))
    assert late == 0
    assert late.conflicts == Conflicts(1, (("api", "avail", pd.Timestamp(T0)),))
    assert load.slo_measurements(url=migrated_db)["actual_value"].tolist() == [99.95]


def _terminate_others(url: str) -> int:
    """End every other session on this test's private database (the writer's)."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()[0]


def test_a_lost_connection_is_a_database_error_not_bad_input(migrated_db: str) -> None:
    """The server ending the writer's session is the database failing (exit 1), and the
    batch still lands nothing."""
    with pytest.raises(DatabaseError) as caught, batch(migrated_db) as b:
        b.spans(spans("t-lost"))
        assert _terminate_others(migrated_db) == 1
        b.spans(spans("t-after"))
    assert not isinstance(caught.value, InputError)
    assert caught.value.exit_code == 1
    assert str(caught.value).startswith("spans: the database failed the write")
    assert load.trace(tid("t-lost"), url=migrated_db).empty


def _with_deadlock_timeout(url: str, timeout: str) -> str:
    """The URL with a session setting for the writer's connections."""
    return f"{url}&options=-cdeadlock_timeout%3D{timeout}"


def _wait_for_lock_waiters(url: str, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'"
            ).fetchone()[0]
            if waiting >= count:
                return
            time.sleep(0.01)
    raise AssertionError(f"no {count} session(s) waiting for a lock after {timeout} s")


def test_a_deadlock_is_retried_and_the_write_lands(migrated_db: str, caplog) -> None:
    """Another session holds s1 and then asks for s0, which the writer holds: PostgreSQL
    aborts the writer's merge (it checks first); the writer retries from its savepoint,
    the other session commits, and the retry finds both rows stored, identical."""
    frame = spans("t-dl", n=2)
    result: dict[str, object] = {}

    def writer() -> None:
        try:
            result["written"] = write_spans(frame, url=_with_deadlock_timeout(migrated_db, "300ms"))
        except Exception as err:  # reported by the assertion below
            result["error"] = err

    insert = (
        "INSERT INTO distributed_traces (trace_id, span_id, parent_span_id, service_name,"
        " operation_name, start_time, end_time, duration_ms, status, tags)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'ok', %s::jsonb)"
    )
    rows = [
        (
            r.trace_id,
            r.span_id,
            None if pd.isna(r.parent_span_id) else r.parent_span_id,
            r.service_name,
            r.operation_name,
            r.start_time,
            r.end_time,
            10.0,
            psycopg.types.json.Jsonb(r.tags),
        )
        for r in frame.itertuples()
    ]
    with caplog.at_level(logging.WARNING, logger=WRITER):
        with psycopg.connect(_with_deadlock_timeout(migrated_db, "30s")) as other:
            other.execute(insert, rows[1])  # holds s1
            thread = threading.Thread(target=writer)
            thread.start()
            _wait_for_lock_waiters(migrated_db, 1)  # the writer inserted s0, waits for s1
            other.execute(insert, rows[0])  # waits for the writer: a cycle
            other.commit()
        thread.join(timeout=60)
    assert "error" not in result, result.get("error")
    assert result["written"] == 0 and not result["written"].conflicts
    assert "spans: the merge was retried 1 time(s) after a deadlock" in caplog.text
    assert stored(migrated_db, "t-dl") == {"s0": "op 0", "s1": "op 1"}


def test_two_writers_of_the_same_rows_in_opposite_orders_do_not_deadlock(
    migrated_db: str, caplog
) -> None:
    """Two threads write the same spans at once, one frame reversed: both succeed without a
    single deadlock (merges insert in key order), and every span is stored once. Three
    rounds, because two threads do not always overlap on a shared machine."""
    total = 0
    for round_ in range(3):
        rows = pd.concat(
            [spans(f"r{round_}-trace-{k:04d}", n=4) for k in range(1500)], ignore_index=True
        )
        orders = [rows, rows.iloc[::-1].reset_index(drop=True)]
        results: list[object] = [None, None]
        start = threading.Barrier(2)

        def write(i: int, orders=orders, results=results, start=start) -> None:
            start.wait()
            try:
                results[i] = write_spans(orders[i], url=migrated_db)
            except Exception as err:  # reported by the assertion below
                results[i] = err

        with caplog.at_level(logging.WARNING, logger=WRITER):
            threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=120)
        assert all(isinstance(r, int) for r in results), results
        assert sum(results) == len(rows)
        total += len(rows)
    assert "retried" not in caplog.text
    with psycopg.connect(migrated_db) as conn:
        assert conn.execute("SELECT count(*) FROM distributed_traces").fetchone()[0] == total


def _logs_of(trace: str, n: int = 3) -> pd.DataFrame:
    return pd.DataFrame(
        dict(
            log_id=[f"{trace}-log-{i}" for i in range(n)],
            timestamp=[T0 + timedelta(milliseconds=i) for i in range(n)],
            level="info",
            service_name="api-gateway",
            trace_id=tid(trace),
            span_id=[sid(i) for i in range(n)],
            message=[f"message {i}" for i in range(n)],
        )
    )


def test_two_batches_writing_spans_and_logs_in_opposite_orders_do_not_deadlock(
    migrated_db: str, caplog
) -> None:
    """One batch writes spans then logs, the other the same logs then the same spans, each
    holding its first write while the other makes its second: a batch merges its spans and
    logs at commit, spans first, each sorted by key, so both land without a deadlock (it
    failed one writer after 5 retries)."""
    frames = {"spans": spans("t-both", n=200), "logs": _logs_of("t-both", n=200)}
    orders = [("spans", "logs"), ("logs", "spans")]
    both_wrote_once = threading.Barrier(2, timeout=30)
    results: list[object] = [None, None]

    def write(i: int) -> None:
        try:
            with batch(migrated_db) as b:
                first, second = orders[i]
                getattr(b, first)(frames[first])
                both_wrote_once.wait()
                getattr(b, second)(frames[second])
            results[i] = dict(b.written)
        except Exception as err:  # reported by the assertion below
            results[i] = err

    with caplog.at_level(logging.WARNING, logger=WRITER):
        threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert all(isinstance(r, dict) for r in results), results
    assert "retried" not in caplog.text and "not written" not in caplog.text
    assert sum(r["spans"] for r in results) == sum(r["logs"] for r in results) == 200
    with psycopg.connect(migrated_db) as conn:
        assert conn.execute("SELECT count(*) FROM distributed_traces").fetchone()[0] == 200
        assert conn.execute("SELECT count(*) FROM structured_logs").fetchone()[0] == 200


def test_rows_another_writer_stores_before_the_commit_are_counted_at_the_commit(
    migrated_db: str, caplog
) -> None:
    """A batch's spans wait for its commit; another writer storing the same keys meanwhile
    wins (first stored), and the commit says so: identical rows are no longer new, a
    different one is a conflict in ``Batch.conflicts``, with a warning. Never silent."""
    mine = spans("t-race", n=3)
    theirs = mine.copy()
    theirs.loc[2, "operation_name"] = "theirs"
    with caplog.at_level(logging.WARNING, logger=WRITER), batch(migrated_db) as b:
        assert b.spans(mine) == 3  # new as of the write
        assert write_spans(theirs, url=migrated_db) == 3  # commits first
    assert b.written["spans"] == 0
    assert b.conflicts["spans"] == Conflicts(1, ((tid("t-race"), sid(2)),))
    assert b.late == {"spans": Late(3, Conflicts(1, ((tid("t-race"), sid(2)),)), (None,))}
    assert stored(migrated_db, "t-race") == {"s0": "op 0", "s1": "op 1", "s2": "theirs"}
    assert "3 row(s) were stored by another writer" in caplog.text
    assert "2 identical, 1 with other content" in caplog.text


# -- records another writer stores between an import's write and its commit -----------------


def _otlp_doc(trace: str, n: int, *, logs: int = 0) -> dict:
    """An OTLP/JSON request: ``n`` spans s0.. of trace ``tid(trace)``, ``logs`` log records."""
    ns = int(T0.timestamp()) * 10**9
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]}
    doc: dict = {
        "resourceSpans": [
            {
                "resource": resource,
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": tid(trace),
                                "spanId": sid(i),
                                "name": f"op {i}",
                                "kind": 2,
                                "startTimeUnixNano": str(ns + i),
                                "endTimeUnixNano": str(ns + 1_000_000 + i),
                            }
                            for i in range(n)
                        ]
                    }
                ],
            }
        ]
    }
    if logs:
        log_records = [
            {"timeUnixNano": str(ns + i), "severityNumber": 9, "body": {"stringValue": f"m{i}"}}
            for i in range(logs)
        ]
        doc["resourceLogs"] = [{"resource": resource, "scopeLogs": [{"logRecords": log_records}]}]
    return doc


LATE = (
    "its trace and span id is stored already with other content: another writer stored it"
    " before this batch committed (kept, not overwritten)"
)


def test_records_another_writer_stores_before_the_commit_are_reported_by_store(
    migrated_db: str,
) -> None:
    """A batch's spans and logs wait for its commit; another writer storing some of their
    keys meanwhile wins (first stored). ``settle`` folds what the commit found into the
    outcome: identical records are duplicates, others rejected with their position and a
    reason, so accepted counts only what this batch stored (it counted all 5 accepted,
    silently dropping the conflicting span)."""
    decoded = otlp.decode_json(_otlp_doc("t-late", 3, logs=2), "late.json", "line 1")
    their_spans = records.spans_frame(decoded.spans[:2])  # s0 as the batch has it
    their_spans.loc[1, "operation_name"] = "theirs"  # s1 with other content
    their_log = records.logs_frame(decoded.logs[:1])
    with batch(migrated_db, every_conflict=True) as b:
        out = store(b, decoded, "late.json")
        assert (out.spans.accepted, out.logs.accepted) == (3, 2)  # as of the writes
        # another writer commits first: the batch's rows wait for its commit, not stored
        assert write_spans(their_spans, url=migrated_db) == 2
        assert write_logs(their_log, url=migrated_db) == 1
    settle(out, b, "late.json")
    s, lg = out.spans, out.logs
    assert (s.input, s.accepted, s.duplicate, s.rejected) == (3, 1, 1, 1)
    assert (lg.input, lg.accepted, lg.duplicate, lg.rejected) == (2, 1, 1, 0)
    assert s.balanced and lg.balanced
    assert out.rejects == [
        Reject("late.json", "line 1: resourceSpans[0].scopeSpans[0].spans[1]", LATE, "span")
    ]
    assert stored(migrated_db, "t-late") == {"s0": "op 0", "s1": "theirs", "s2": "op 2"}
    assert (b.written["spans"], b.written["logs"]) == (1, 1)


def test_obslib_ingest_reports_a_record_another_writer_stored_before_its_commit(
    migrated_db: str, tmp_path
) -> None:
    """The race through the real command: another writer holds s0 (identical) and s1 (other
    content) stored but uncommitted, so the import's commit waits for it, then finds them
    taken. The file's counts say so, s1 is rejected on stderr and in --rejects, exit 2 (it
    said 3 accepted, exit 0, and --rejects stayed empty)."""
    path = tmp_path / "late.json"
    doc = _otlp_doc("t-cli", 3)
    path.write_bytes(orjson.dumps(doc) + b"\n")
    theirs = records.spans_frame(otlp.decode_json(doc, str(path)).spans[:2])
    theirs.loc[1, "operation_name"] = "theirs"
    out = tmp_path / "rejects.jsonl"
    env = {"OBSLIB_DATABASE_URL": migrated_db}
    with ThreadPoolExecutor(1) as pool:
        with batch(migrated_db, one_write=True) as other:
            assert other.spans(theirs) == 2  # stored, not committed: it holds their keys
            importing = pool.submit(
                run_cli, "ingest", "otlp", str(path), "--rejects", str(out), env=env
            )
            _wait_for_lock_waiters(migrated_db, 1, timeout=60)  # the import's commit waits
        done = importing.result(timeout=120)
    assert done.returncode == 2, done.stderr
    assert f"{path}: 3 spans: 1 accepted, 1 duplicate, 1 rejected" in done.stdout
    position = "line 1: resourceSpans[0].scopeSpans[0].spans[1]"
    assert f"rejected span: {path}: {position}: {LATE}" in done.stderr
    assert [orjson.loads(line) for line in out.read_bytes().splitlines()] == [
        {"source": str(path), "position": position, "kind": "span", "reason": LATE}
    ]
    assert stored(migrated_db, "t-cli") == {"s0": "op 0", "s1": "theirs", "s2": "op 2"}
