"""``obslib db retain`` packs the finished days it keeps: their partitions' indexes rebuilt
once (REINDEX CONCURRENTLY), recorded in packed_days; today's day never; a rerun nothing;
``--no-pack`` and ``--dry-run`` change nothing; rows unchanged and every index valid; a
REINDEX that fails is named and left, and its invalid leftovers are dropped by the next run.

The tests of the database share one module database and run in file order (each starts
from the state the one before left)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone

import pandas as pd
import psycopg
import pytest
from psycopg import sql

from obslib.ingest import write_logs, write_spans
from obslib.jobs import pack, retain
from obslib.storage import partitions
from tests.builders import span
from tests.conftest import run_cli
from tests.pg import migrated_database

NOW = datetime.now(UTC)
TODAY = NOW.date()
OFFSETS = (-2, -1, 0)  # two finished days and today
FINISHED = [TODAY + timedelta(days=d) for d in OFFSETS if d < 0]
TABLES = ("distributed_traces", "structured_logs")
NEW_YORK = timezone(-timedelta(hours=5))  # in December
SHORT = {"distributed_traces": "spans", "structured_logs": "logs"}


def day_rows(offset: int, traces: int = 40, prefix: str = "") -> tuple[list, list]:
    """``traces`` traces of 3 spans on the day ``offset`` from today, and a log per trace."""
    day = pd.Timestamp(TODAY + timedelta(days=offset), tz="UTC")
    spans, logs = [], []
    for t in range(traces):
        trace = f"{prefix}p{offset + 10}t{t}"
        start = day + pd.Timedelta(minutes=7 * t + 1)
        tags = {"http.route": f"/r{t % 5}", "n": t % 3}
        spans += [
            span(trace, "root", start=start, duration_ms=40, tags=tags),
            span(trace, "db", "root", service="db", operation="SELECT", kind="client",
                 start=start + pd.Timedelta(milliseconds=5), duration_ms=20),
            span(trace, "late", "root", start=start + pd.Timedelta(milliseconds=30),
                 duration_ms=5, status="error" if t % 7 == 0 else "ok"),
        ]  # fmt: skip
        logs.append({
            "timestamp": start, "level": "info", "service_name": "api",
            "trace_id": spans[-3]["trace_id"], "span_id": spans[-3]["span_id"],
            "message": f"handled {trace}",
        })  # fmt: skip
    return spans, logs


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """One database for the module: 360 spans and 120 logs over two finished days and
    today."""
    with migrated_database() as url:
        spans, logs = [], []
        for offset in OFFSETS:
            s, g = day_rows(offset)
            spans += s
            logs += g
        write_spans(pd.DataFrame(spans), url=url)
        write_logs(pd.DataFrame(logs), url=url)
        yield url


def run(url: str, *args: str):
    done = run_cli("db", "retain", "--keep", "30d", "--no-archive", *args,
                   env={"OBSLIB_DATABASE_URL": url})  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


def indexes(url: str) -> dict[tuple[str, str], tuple[int, bool]]:
    """Every index of every day partition (and of its TOAST table): (partition, index) ->
    (relfilenode, valid). A REINDEX gives an index a new relfilenode."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """SELECT c.relname, ic.relname, ic.relfilenode, i.indisvalid
               FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
               JOIN pg_index i ON i.indrelid IN (c.oid, c.reltoastrelid)
               JOIN pg_class ic ON ic.oid = i.indexrelid
               WHERE h.inhparent::regclass::text = ANY(%s)""",
            (list(TABLES),),
        ).fetchall()
    # a TOAST index is named after its table's oid: key it by the partition
    return {(p, "toast" if i.startswith("pg_toast") else i): (f, v) for p, i, f, v in rows}


def contents(url: str) -> dict[str, tuple[int, str]]:
    """Rows and a checksum of every row's text, per table (spans as readers see them)."""
    out = {}
    with psycopg.connect(url) as conn:
        for table, key in (("distributed_traces_tagged", "trace_id, span_id"),
                           ("structured_logs", "log_id")):  # fmt: skip
            query = sql.SQL("SELECT count(*), md5(string_agg(t::text, '|' ORDER BY {}))"
                            " FROM {} t").format(sql.SQL(key), sql.Identifier(table))  # fmt: skip
            out[table] = conn.execute(query).fetchone()
    return out


def catalog(url: str) -> list[tuple[str, date]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT table_name, day FROM packed_days ORDER BY 1, 2").fetchall()


def changed(before: dict, after: dict) -> set[str]:
    """The partitions whose indexes were rebuilt (or appeared, or went)."""
    keys = set(before) | set(after)
    return {p for p, i in keys if before.get((p, i), (None,))[0] != after.get((p, i), (None,))[0]}


def day_name(table: str, day: date) -> str:
    return partitions.partition_name(table, day)


@pytest.mark.parametrize(
    ("day", "now", "expected"),
    [
        (date(2026, 12, 7), datetime(2026, 12, 8, 0, 0, tzinfo=UTC), True),
        (date(2026, 12, 7), datetime(2026, 12, 7, 23, 59, 59, 999999, tzinfo=UTC), False),
        (date(2026, 12, 8), datetime(2026, 12, 8, 12, 0, tzinfo=UTC), False),
        (date(2026, 12, 9), datetime(2026, 12, 8, 12, 0, tzinfo=UTC), False),
        (date(2026, 12, 7), datetime(2026, 12, 7, 20, 0, tzinfo=NEW_YORK), True),
    ],
    ids=[
        "a day is finished at the midnight that ends it",
        "a day is not finished a microsecond before its midnight",
        "today is not finished",
        "a day to come is not finished",
        "now in another time zone counts in UTC",
    ],
)
def test_finished_days(day, now, expected) -> None:
    assert pack.finished(day, now) is expected


@pytest.mark.parametrize(
    ("now", "packed", "expected"),
    [
        (100_000, None, True),
        (125_000, 100_000, False),
        (125_001, 100_000, True),
        (90_000, 100_000, False),
    ],
    ids=[
        "a day never packed needs packing",
        "a packed day grown by a quarter exactly does not",
        "a packed day grown by more than a quarter does",
        "a packed day that shrank does not",
    ],
)
def test_needs_pack(now, packed, expected) -> None:
    assert pack.needs_pack(now, packed) is expected


def test_dry_run_lists_the_finished_days_with_their_bytes_and_changes_nothing(url) -> None:
    before, rows = indexes(url), contents(url)
    done = run(url, "--dry-run")
    for table in TABLES:
        for day in FINISHED:
            assert f"{SHORT[table]} {day}  would pack (indexes " in done.stdout
        assert f"{SHORT[table]} {TODAY}" not in done.stdout
    assert "dry run: 4 days would be packed, indexes " in done.stdout
    shorter = run(url, "--keep", "1d", "--dry-run")  # day -2 is retention's, not packed
    assert f"spans {FINISHED[0]}  would delete" in shorter.stdout
    assert f"spans {FINISHED[0]}  would pack" not in shorter.stdout
    assert f"spans {FINISHED[1]}  would pack" in shorter.stdout
    assert indexes(url) == before and contents(url) == rows and catalog(url) == []


def test_no_pack_packs_nothing(url) -> None:
    before = indexes(url)
    done = run(url, "--no-pack")
    assert "pack" not in done.stdout
    assert indexes(url) == before and catalog(url) == []


def test_finished_days_are_packed_once_and_todays_stays(url) -> None:
    before, rows = indexes(url), contents(url)
    done = run(url)
    print(done.stdout)
    for table in TABLES:
        for day in FINISHED:
            assert f"{SHORT[table]} {day}  packed: indexes " in done.stdout
    assert "packed 4 days: " in done.stdout and "of indexes freed" in done.stdout
    after = indexes(url)
    finished = {day_name(t, d) for t in TABLES for d in FINISHED}
    assert changed(before, after) == finished  # today's indexes untouched
    assert all(valid for _, valid in after.values()) and len(after) == len(before)
    assert contents(url) == rows
    assert catalog(url) == [(t, d) for t in sorted(TABLES) for d in FINISHED]
    rerun = run(url)
    assert "nothing to pack: every finished day kept is packed" in rerun.stdout
    assert indexes(url) == after


def test_a_day_written_again_is_repacked_only_once_its_indexes_grew_by_a_quarter(url) -> None:
    day = FINISHED[0]
    spans, _ = day_rows(-2, traces=4, prefix="few")  # a few late spans: not worth it
    write_spans(pd.DataFrame(spans), url=url)
    assert "nothing to pack" in run(url).stdout
    spans, _ = day_rows(-2, traces=200, prefix="many")  # a backfill: 600 spans
    write_spans(pd.DataFrame(spans), url=url)
    before = indexes(url)
    done = run(url)
    assert f"spans {day}  repacked: indexes " in done.stdout and "packed 1 day:" in done.stdout
    assert changed(before, indexes(url)) == {day_name("distributed_traces", day)}


def test_a_failed_reindex_is_named_and_left_and_the_next_run_drops_its_leftovers(url) -> None:
    """A REINDEX cut short (here: a writer holds the day past the lock timeout; a killed
    run alike) leaves invalid *_ccnew copies; the day is named, the other days packed, and
    the next run drops the copies and packs the day."""
    day = FINISHED[1]
    name = day_name("distributed_traces", day)
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM packed_days")  # every finished day to pack again
    rows = contents(url)
    with psycopg.connect(url) as writer:  # an open write transaction on the day
        writer.execute(
            sql.SQL("LOCK TABLE {} IN ROW EXCLUSIVE MODE").format(partitions.qualified(name))
        )
        horizon = retain.Horizon(TODAY - timedelta(days=30), TODAY - timedelta(days=30))
        results = pack.pack(horizon, url=url, lock_timeout="300ms")
        writer.rollback()
    failed = [r for r in results if r.problem]
    assert [(r.table, r.day) for r in failed] == [("spans", day)]
    assert "REINDEX failed" in failed[0].problem and "left as it was" in failed[0].problem
    assert len([r for r in results if r.action == "packed"]) == 3
    left = {i for (p, i), (_, valid) in indexes(url).items() if not valid}
    assert left and all(p == name for p, _ in _invalid(url))  # the leftovers, this day's
    done = run(url)
    assert f"spans {day}  packed: indexes " in done.stdout
    assert "of a cut REINDEX dropped" in done.stdout and "packed 1 day:" in done.stdout
    after = indexes(url)
    assert all(valid for _, valid in after.values()), after
    assert not any(i.endswith(("_ccnew", "_ccold")) or "_ccnew" in i for _, i in after)
    assert contents(url) == rows


def readers_and_writers_go_on(url: str, name: str, day: date) -> None:
    """While the REINDEX CONCURRENTLY of partition ``name`` waits, the day is read and
    written without waiting (a writer is refused a lock after 2 s; rolled back)."""
    with psycopg.connect(url) as other:
        other.execute("SET lock_timeout = '2s'")
        other.execute(sql.SQL("SELECT count(*) FROM {}").format(partitions.qualified(name)))
        other.execute(
            "INSERT INTO structured_logs (log_id, timestamp, level, service_name, message)"
            " VALUES ('written-while-packing', %s, 'info', 'api', 'late')",
            (datetime(day.year, day.month, day.day, 12, tzinfo=UTC),),
        )
        other.rollback()


def _invalid(url: str) -> set[tuple[str, str]]:
    return {k for k, (_, valid) in indexes(url).items() if not valid}


def test_a_reindex_whose_session_is_killed_leaves_copies_the_next_run_drops(url) -> None:
    """The REINDEX's server session terminated mid-way (as a kill or a crash would): the
    run names the day, keeps exit 0, and the next run drops the invalid copies and packs."""
    day = FINISHED[0]
    name = day_name("structured_logs", day)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM packed_days WHERE table_name = 'structured_logs'")
    rows = contents(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSLIB_")}
    env["OBSLIB_DATABASE_URL"] = url
    with psycopg.connect(url) as writer, psycopg.connect(url, autocommit=True) as admin:
        writer.execute(
            sql.SQL("LOCK TABLE {} IN ROW EXCLUSIVE MODE").format(partitions.qualified(name))
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "obslib", "db", "retain", "--keep", "30d", "--no-archive"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            for _ in range(300):  # the REINDEX waits for the writer: end its session there
                pid = admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    " AND query LIKE 'REINDEX TABLE CONCURRENTLY %%' AND wait_event_type = 'Lock'"
                ).fetchone()
                if pid:
                    readers_and_writers_go_on(url, name, day)
                    admin.execute("SELECT pg_terminate_backend(%s)", pid)
                    break
                time.sleep(0.1)
            else:
                pytest.fail("the REINDEX never waited for the writer")
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        writer.rollback()
    assert proc.returncode == 0, err
    assert f"logs {day}  NOT PACKED" in out and f"not packed: logs {day}: REINDEX failed" in err
    assert "the session was lost" in err
    assert {p for p, _ in _invalid(url)} == {name}
    done = run(url)
    assert (
        f"logs {day}  packed: indexes " in done.stdout and "of a cut REINDEX dropped" in done.stdout
    )
    assert _invalid(url) == set() and contents(url) == rows
