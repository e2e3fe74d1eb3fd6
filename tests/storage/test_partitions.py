"""Day partitions (migration 0012): the conversion keeps every row, writers make the days
they write, the natural keys stay unique across days, retention's detach/drop touch only day
partitions, and every index kept is one a query uses."""

from __future__ import annotations

import datetime as dt
import threading
from datetime import UTC, datetime, timedelta

import pandas as pd
import psycopg
import pytest

from obslib import demo
from obslib.errors import MigrationError, UsageError
from obslib.ingest import write_logs, write_spans
from obslib.ingest.tables import SPANS
from obslib.storage import partitions
from obslib.storage.migrate import Migrator
from tests.conftest import MIGRATIONS
from tests.ids import tid

SPANS_SUM = "SELECT count(*), md5(string_agg(t::text, '|' ORDER BY id)) FROM distributed_traces t"
LOGS_SUM = "SELECT count(*), md5(string_agg(t::text, '|' ORDER BY id)) FROM structured_logs t"
DAY = datetime(2031, 3, 4, 12, 0, tzinfo=UTC)


def spans(trace: str, start: datetime = DAY, n: int = 2) -> pd.DataFrame:
    return pd.DataFrame(
        [
            dict(
                trace_id=tid(trace),
                span_id=f"{i + 1:016x}",
                parent_span_id=None if i == 0 else f"{1:016x}",
                service_name="api",
                operation_name=f"op {i}",
                start_time=start + timedelta(milliseconds=i),
                end_time=start + timedelta(milliseconds=5 + i),
            )
            for i in range(n)
        ]
    )


def span_rows(url: str) -> tuple:
    """Count and checksum of the spans' columns as readers see them: from 0018 on, through
    the view that gives each span its tags whole (its own, else its tag set's)."""
    with psycopg.connect(url) as conn:
        tagged = conn.execute("SELECT to_regclass('distributed_traces_tagged')").fetchone()[0]
        return conn.execute(
            SPAN_ROWS.replace("distributed_traces", tagged or "distributed_traces")
        ).fetchone()


def checksums(url: str) -> tuple:
    with psycopg.connect(url) as conn:
        return conn.execute(SPANS_SUM).fetchone(), conn.execute(LOGS_SUM).fetchone()


def home(url: str, table: str, where: str) -> list[str]:
    """The partitions the rows of ``table`` matching ``where`` (fixed test text) live in."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(f"SELECT DISTINCT tableoid::regclass::text FROM {table} WHERE {where}")
        return sorted(r[0].removeprefix("obslib_partitions.") for r in rows)


@pytest.fixture
def populated_db(fresh_db: str) -> str:
    """A database at 0011 holding a small demo: written at the latest schema (the demo's
    writers know its columns and alert types), then migrated down to 0011 with its rows."""
    migrator = Migrator(fresh_db, MIGRATIONS)
    migrator.up()
    demo.run(seed=7, spans=3000, url=fresh_db)
    with psycopg.connect(fresh_db, autocommit=True) as conn:  # 0016's down refuses log rules
        conn.execute("DELETE FROM alert_definitions WHERE alert_type = 'log'")
    migrator.down(to=11)
    return fresh_db


def test_the_migration_keeps_every_row_and_id_and_the_down_migration_restores_them(
    populated_db: str,
) -> None:
    """0011 -> 0012 -> 0011 -> 0012 on data: same rows (checksums of every column, ids
    included) each way, one partition per day of data, and the sequences go on after."""
    before = checksums(populated_db)
    Migrator(populated_db, MIGRATIONS).up(to=12)  # later migrations add columns
    assert checksums(populated_db) == before
    with psycopg.connect(populated_db) as conn:
        days = partitions.day_partitions(conn, "distributed_traces")
        first, last = conn.execute(
            "SELECT min(start_time AT TIME ZONE 'UTC')::date, max(start_time AT TIME ZONE 'UTC')"
            "::date FROM distributed_traces"
        ).fetchone()
        assert [d for d, _ in days] == [
            first + timedelta(days=i) for i in range((last - first).days + 1)
        ]
        left = conn.execute("SELECT count(*) FROM obslib_partitions.distributed_traces_default")
        assert left.fetchone() == (0,)
        top = conn.execute("SELECT max(id) FROM distributed_traces").fetchone()[0]
    Migrator(populated_db, MIGRATIONS).down(to=11)
    assert checksums(populated_db) == before
    with psycopg.connect(populated_db) as conn:
        kind = conn.execute("SELECT relkind FROM pg_class WHERE relname = 'distributed_traces'")
        assert kind.fetchone() == ("r",)
    Migrator(populated_db, MIGRATIONS).up(to=12)
    assert checksums(populated_db) == before
    Migrator(populated_db, MIGRATIONS).up()  # the writers write today's columns
    write_spans(spans("after"), url=populated_db)
    with psycopg.connect(populated_db) as conn:
        ids = conn.execute(
            "SELECT min(id) FROM distributed_traces WHERE trace_id = %s", (tid("after"),)
        ).fetchone()[0]
    assert ids > top


# the columns 0013 has (0015 adds one, which a checksum of whole rows would count)
SPAN_ROWS = (
    "SELECT count(*), md5(string_agg(concat_ws('|', id, trace_id, span_id, parent_span_id,"
    " service_name, operation_name, span_kind, start_time, end_time, duration_ms, status,"
    " tags, logs), '|' ORDER BY id)) FROM distributed_traces"
)
SPAN_KEYS = """SELECT c.relname, c.relkind, i.indisunique FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = 'distributed_traces'::regclass
  AND c.relname NOT IN ('distributed_traces_pkey', 'distributed_traces_server_start_idx')
ORDER BY 1"""


def test_0014_swaps_the_natural_key_for_two_smaller_indexes_in_place_and_back(
    migrated_db: str,
) -> None:
    """head -> 0013 -> head on a populated database: same rows (every column, ids included)
    each way; 0013 has the unique (trace_id, span_id, start_time), 0014 the unique hashed key
    with start_time and a B-tree on trace_id; first stored wins on (trace_id, span_id) after,
    and an identical copy inserted with plain SQL is refused."""
    # spans over three days (not the demo: its log alert rules stop 0016's down migration)
    for n, day in enumerate(range(3)):
        write_spans(spans(f"day {day}", DAY + timedelta(days=day), n=50 + n), url=migrated_db)
    before = span_rows(migrated_db)
    lean = [
        ("distributed_traces_span_key_idx", "I", True),
        ("distributed_traces_trace_idx", "I", False),
    ]
    with psycopg.connect(migrated_db) as conn:
        assert conn.execute(SPAN_KEYS).fetchall() == lean
    Migrator(migrated_db, MIGRATIONS).down(to=13)
    assert span_rows(migrated_db) == before
    with psycopg.connect(migrated_db) as conn:
        keys = conn.execute(SPAN_KEYS).fetchall()
        assert keys == [("distributed_traces_trace_span_key", "I", True)]
    Migrator(migrated_db, MIGRATIONS).up()
    assert span_rows(migrated_db) == before
    with psycopg.connect(migrated_db) as conn:
        assert conn.execute(SPAN_KEYS).fetchall() == lean
    first = spans("lean")
    write_spans(first, url=migrated_db)
    later = first.assign(
        start_time=first.start_time + timedelta(hours=1),
        end_time=first.end_time + timedelta(hours=1),
    )
    again = write_spans(later, url=migrated_db)
    assert (int(again), again.conflicts.count) == (0, 2)
    row = first.iloc[0]
    with psycopg.connect(migrated_db) as conn, pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(
            "INSERT INTO distributed_traces (trace_id, span_id, service_name, operation_name,"
            " start_time, end_time, duration_ms, status) VALUES (%s, %s, 'api', 'op', %s, %s,"
            " 5, 'ok')",
            (row.trace_id, row.span_id, row.start_time, row.end_time),
        )


@pytest.mark.parametrize(
    ("write", "table", "where"),
    [
        pytest.param("writer", "distributed_traces", "true", id="a span written by obslib"),
        pytest.param("sql", "distributed_traces", "true", id="a span inserted with plain SQL"),
    ],
)
def test_a_write_to_a_day_nobody_created_lands_in_its_own_day(
    migrated_db: str, write: str, table: str, where: str
) -> None:
    """obslib's writer makes the day first; plain SQL lands in the default partition, and
    making the day later moves it there."""
    frame = spans("new-day")
    if write == "writer":
        assert write_spans(frame, url=migrated_db) == 2
    else:
        with psycopg.connect(migrated_db) as conn:
            for r in frame.itertuples():
                conn.execute(
                    "INSERT INTO distributed_traces (trace_id, span_id, service_name,"
                    " operation_name, start_time, end_time, duration_ms, status)"
                    " VALUES (%s, %s, 'api', 'op', %s, %s, 5, 'ok')",
                    (r.trace_id, r.span_id, r.start_time, r.end_time),
                )
        assert home(migrated_db, table, where) == ["distributed_traces_default"]
        with psycopg.connect(migrated_db) as conn:
            assert partitions.ensure_days(conn, table, [DAY.date()]) == 1
    assert home(migrated_db, table, where) == ["distributed_traces_p20310304"]


def test_two_writers_racing_for_the_same_new_day_both_succeed(migrated_db: str) -> None:
    """Four threads write other traces of one new day at once: every write lands, one day
    partition exists, nothing is left in the default partition."""
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def writer(k: int) -> None:
        try:
            start.wait()
            write_spans(spans(f"race-{k}"), url=migrated_db)
            write_logs(
                pd.DataFrame(
                    [dict(timestamp=DAY, level="info", service_name="api", message=f"m{k}")]
                ),
                url=migrated_db,
            )
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    with psycopg.connect(migrated_db) as conn:
        assert conn.execute("SELECT count(*) FROM distributed_traces").fetchone() == (8,)
        assert conn.execute("SELECT count(*) FROM structured_logs").fetchone() == (4,)
        assert partitions.day_partitions(conn, "distributed_traces") == [
            (DAY.date(), "distributed_traces_p20310304")
        ]
    # a writer that found the default partition busy left its rows there: a later call moves
    # them; either way every row is stored once
    with psycopg.connect(migrated_db) as conn:
        partitions.ensure_days(conn, "distributed_traces", [DAY.date()])


@pytest.mark.parametrize(
    ("resend", "written", "conflicts"),
    [
        pytest.param(
            lambda f: f.assign(start_time=f.start_time + timedelta(days=1),
                               end_time=f.end_time + timedelta(days=1)),
            0, 2, id="the same spans a day later are conflicts, not second rows",
        ),
        pytest.param(
            lambda f: f.assign(start_time=f.start_time + timedelta(seconds=1),
                               end_time=f.end_time + timedelta(seconds=1)),
            0, 2, id="the same spans a second later are conflicts, not second rows",
        ),
        pytest.param(lambda f: f, 0, 0, id="an identical re-send is a quiet duplicate"),
    ],
)  # fmt: skip
def test_the_natural_key_stays_unique_across_start_times(
    migrated_db: str, resend, written: int, conflicts: int
) -> None:
    """First stored wins on (trace_id, span_id), whatever the start time of the copy."""
    first = spans("key")
    write_spans(first, url=migrated_db)
    result = write_spans(resend(first), url=migrated_db)
    assert (int(result), result.conflicts.count) == (written, conflicts)
    with psycopg.connect(migrated_db) as conn:
        rows = conn.execute("SELECT start_time FROM distributed_traces ORDER BY span_id").fetchall()
    assert [r[0] for r in rows] == list(first.start_time)


def test_detach_list_and_drop_do_what_they_say_and_nothing_else(migrated_db: str) -> None:
    """A detached day keeps its name, is listed as detached until dropped; a drop refuses
    any name outside the pattern, and a partition still attached."""
    day = dt.date(2031, 3, 4)
    write_spans(spans("kept"), url=migrated_db)
    with psycopg.connect(migrated_db) as conn:
        assert partitions.detach_day(conn, "distributed_traces", day + timedelta(days=1)) is None
        name = partitions.detach_day(conn, "distributed_traces", day)
        assert name == "distributed_traces_p20310304"
        assert partitions.day_partitions(conn, "distributed_traces") == []
        assert partitions.detached_days(conn, "distributed_traces") == [(day, name)]
    with psycopg.connect(migrated_db) as conn:
        for bad in ("distributed_traces", "slo_measurements", "distributed_traces_default"):
            with pytest.raises(UsageError):
                partitions.drop_detached(conn, bad)
        partitions.drop_detached(conn, name)
        assert partitions.detached_days(conn, "distributed_traces") == []
        partitions.ensure_days(conn, "distributed_traces", [day])
    with psycopg.connect(migrated_db) as conn, pytest.raises(UsageError, match="still attached"):
        partitions.drop_detached(conn, "distributed_traces_p20310304")
    with pytest.raises(UsageError):
        partitions.day_partitions(None, "pg_class")


# Each query a loader or job runs on these tables, with the index it must use: an index no
# query uses is not kept (migration 0012 dropped the others).
PLANS = [
    pytest.param(
        "SELECT * FROM distributed_traces WHERE trace_id = %(trace)s",
        "distributed_traces_trace_idx",
        id="one trace's spans use the trace id index",
    ),
    pytest.param(
        "SELECT 1 FROM distributed_traces t WHERE t.trace_id = %(trace)s"
        " AND t.span_id = %(span)s AND "
        + SPANS.probe.format(a="t")
        + " = "
        + SPANS.probe.replace("{a}.span_id", "%(span)s").replace("{a}.trace_id", "%(trace)s"),
        "distributed_traces_span_key_idx",
        id="the writers' anti-join on (trace_id, span_id) probes the hashed key",
    ),
    pytest.param(
        "SELECT c.span_id FROM distributed_traces c JOIN distributed_traces p"
        " ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id"
        " WHERE c.trace_id = %(trace)s",
        "distributed_traces_trace_idx",
        id="a trace's parent join uses the trace id index",
    ),
    pytest.param(
        "SELECT service_name, count(*) FILTER (WHERE status = 'ok') FROM distributed_traces"
        " WHERE start_time >= %(lo)s AND start_time < %(hi)s AND span_kind = 'server'"
        " GROUP BY 1",
        "distributed_traces_server_start_idx",
        id="SLI counts over an hour read the server-span index only",
    ),
    pytest.param(
        "SELECT * FROM structured_logs WHERE trace_id = %(trace)s",
        "structured_logs_trace_span_idx",
        id="a trace's logs use the logs' trace index",
    ),
    pytest.param(
        "SELECT 1 FROM structured_logs WHERE log_id = %(log)s",
        "structured_logs_log_id_key",
        id="the log writers' anti-join on log_id uses the natural key",
    ),
]


@pytest.mark.parametrize(("query", "index"), PLANS)
def test_every_index_kept_is_used_by_a_query(demo_db, query: str, index: str) -> None:
    """EXPLAIN on the demo: the plan reads the index (a day partition's copy of it)."""
    url, _ = demo_db
    with psycopg.connect(url) as conn:
        trace, span, start = conn.execute(
            "SELECT trace_id, span_id, start_time FROM distributed_traces"
            " WHERE span_kind = 'server' LIMIT 1"
        ).fetchone()
        log = conn.execute("SELECT log_id FROM structured_logs LIMIT 1").fetchone()[0]
        params = dict(trace=trace, span=span, log=log, lo=start, hi=start + timedelta(hours=1))
        plan = conn.execute("EXPLAIN (FORMAT JSON) " + query, params).fetchone()[0]
        used = set(_index_names(plan))
        parents = {
            r[0]
            for r in conn.execute(
                "SELECT coalesce(p.inhparent, i.oid)::regclass::text FROM pg_class i"
                " LEFT JOIN pg_inherits p ON p.inhrelid = i.oid WHERE i.relname = ANY(%s)",
                (list(used),),
            )
        }
    assert index in parents, plan


def _index_names(node) -> list[str]:
    if isinstance(node, list):
        return [n for x in node for n in _index_names(x)]
    if isinstance(node, dict):
        own = [node["Index Name"]] if "Index Name" in node else []
        return own + [n for v in node.values() for n in _index_names(v)]
    return []


def test_only_the_justified_indexes_remain(migrated_db: str) -> None:
    """The time indexes and the duration index are gone (0012), the natural-key constraint
    of spans too (0014), the primary keys too (0017): every index left is one of PLANS."""
    with psycopg.connect(migrated_db) as conn:
        names = {
            r[0]
            for r in conn.execute(
                "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid IN"
                " ('distributed_traces'::regclass, 'structured_logs'::regclass)"
            )
        }
    assert names == {p.values[1] for p in PLANS}


PKEYS = """SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint
WHERE contype = 'p' AND conrelid IN ('distributed_traces'::regclass, 'structured_logs'::regclass)
ORDER BY 1"""
FILES = """SELECT c.relname, c.relfilenode FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent IN ('distributed_traces'::regclass, 'structured_logs'::regclass) ORDER BY 1"""


def test_0017_drops_the_primary_keys_in_place_and_the_down_migration_builds_them_again(
    migrated_db: str,
) -> None:
    """head -> 0016 -> head on spans and logs over three days: same rows (every column, ids
    included) each way, no partition rewritten; 0016 has the primary keys, head none; ids
    still come from the sequences after; a down migration meeting an explicit id stored
    twice fails, its transaction rolled back."""
    for n, day in enumerate(range(3)):
        write_spans(spans(f"day {day}", DAY + timedelta(days=day), n=20 + n), url=migrated_db)
        logs = [dict(timestamp=DAY + timedelta(days=day), level="info", service_name="api",
                     message=f"m{day}")]  # fmt: skip
        write_logs(pd.DataFrame(logs), url=migrated_db)
    before = span_rows(migrated_db), checksums(migrated_db)[1]
    migrator = Migrator(migrated_db, MIGRATIONS)
    migrator.down(to=16)
    with psycopg.connect(migrated_db) as conn:
        assert conn.execute(PKEYS).fetchall() == [
            ("distributed_traces", "PRIMARY KEY (id, start_time)"),
            ("structured_logs", 'PRIMARY KEY (id, "timestamp")'),
        ]
    assert (span_rows(migrated_db), checksums(migrated_db)[1]) == before
    with psycopg.connect(migrated_db) as conn:
        files = conn.execute(FILES).fetchall()
    migrator.up()
    assert (span_rows(migrated_db), checksums(migrated_db)[1]) == before
    with psycopg.connect(migrated_db) as conn:
        assert conn.execute(PKEYS).fetchall() == []
        assert conn.execute(FILES).fetchall() == files  # no partition rewritten
        top, at = conn.execute(
            "SELECT id, start_time FROM distributed_traces ORDER BY id DESC LIMIT 1"
        ).fetchone()
    write_spans(spans("after"), url=migrated_db)
    with psycopg.connect(migrated_db) as conn:
        ids = conn.execute(
            "SELECT id FROM distributed_traces WHERE trace_id = %s", (tid("after"),)
        ).fetchall()
        assert min(i for (i,) in ids) > top and len(set(ids)) == 2
        conn.execute(
            "INSERT INTO distributed_traces (id, trace_id, span_id, service_name, operation_name,"
            " start_time, end_time, duration_ms, status) VALUES (%s, 'twice', '1', 'api', 'op',"
            " %s, %s, 5, 'ok')",
            (top, at, at),
        )
    with pytest.raises(
        MigrationError, match=r"0017_drop_unused_primary_keys\.down\.sql: statement 1"
    ):
        migrator.down(to=16)
    with psycopg.connect(migrated_db) as conn:
        assert conn.execute(PKEYS).fetchall() == []
        state = conn.execute("SELECT version, dirty FROM schema_migrations").fetchone()
        assert state == (16, True)  # as any failed step (golang-migrate's way): to repair
