"""The archive's cold days, read by the loaders: the same frames whether a day lives in
PostgreSQL or in the verified Parquet archive, the key checksum computed alike in SQL and
Python, and a missing or changed file named in one line."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import psycopg
import pyarrow as pa
import pytest

from obslib import load
from obslib.ingest import write_logs, write_spans
from obslib.load import archive, export
from tests.builders import span
from tests.ids import sid, tid

TODAY = pd.Timestamp(datetime.now(UTC).date(), tz="UTC")
OLD_DAYS = (-10, -9, -8)  # past a 5-day horizon
NEW_DAYS = (-2, -1)


def multi_day_dataset(url: str, offsets=OLD_DAYS + NEW_DAYS) -> None:
    """Per day (offsets from today, UTC): 4 traces of 3 spans over two services, one trace
    in error, tags with a string, a number and an object; two logs per trace (one carries
    the trace id, one does not)."""
    spans, logs = [], []
    for offset in offsets:
        day = TODAY + pd.Timedelta(days=offset)
        for t in range(4):
            trace = f"d{offset + 100}t{t}"
            start = day + pd.Timedelta(hours=3 + 5 * t, minutes=offset + 20)
            status = "error" if t == 1 else "ok"
            tags = {"http.route": f"/r{t}", "n": t, "obj": {"a": t}}
            spans += [
                span(trace, "root", start=start, duration_ms=40, status=status, tags=tags),
                span(trace, "db", "root", service="db", operation="SELECT", kind="client",
                     start=start + pd.Timedelta(milliseconds=5), duration_ms=20,
                     tags={"http.route": None}),
                span(trace, "late", "root", start=start + pd.Timedelta(milliseconds=30),
                     duration_ms=5, status=status),
            ]  # fmt: skip
            traced = spans[-3]
            logs += [
                {
                    "timestamp": start,
                    "level": "error" if t == 1 else "info",
                    "service_name": "api",
                    "trace_id": traced["trace_id"],
                    "span_id": traced["span_id"],
                    "message": f"handled {trace}",
                    "fields": {"k": t},
                },
                {
                    "timestamp": start + pd.Timedelta(seconds=1),
                    "level": "warn",
                    "service_name": "db",
                    "message": f"pool é {trace}",
                },
            ]
    write_spans(pd.DataFrame(spans), url=url)
    write_logs(pd.DataFrame(logs), url=url)


def window() -> tuple[pd.Timestamp, pd.Timestamp]:
    return TODAY - pd.Timedelta(days=11), TODAY + pd.Timedelta(days=1)


def the_frames(url: str, **kw) -> dict[str, pd.DataFrame]:
    """What the loaders give for the whole dataset, narrowed as the reports narrow it."""
    lo, hi = window()
    trace = load.spans(lo, hi, url=url, **kw)["trace_id"].iloc[0]
    return {
        "all spans, JSON as text": load.spans(lo, hi, json="text", url=url, **kw),
        "all spans, JSON as dicts": load.spans(lo, hi, url=url, **kw),
        "spans of a window cutting two old days": load.spans(
            lo + pd.Timedelta(days=1, hours=10), lo + pd.Timedelta(days=3, hours=9), url=url, **kw
        ),
        "error spans of the api": load.spans(
            lo, hi, services=["api"], statuses=["error"], url=url, **kw
        ),
        "client spans by operation": load.spans(
            lo, hi, kinds=["client"], operations=["SELECT"], url=url, **kw
        ),
        "spans of two traces": load.spans(lo, hi, trace_ids=[trace, "f" * 32], url=url, **kw),
        "spans with tag columns": load.spans(
            lo, hi, tag_columns=["http.route", "n", "obj"], json="text", url=url, **kw
        ),
        "one trace": load.trace(trace, url=url, **kw),
        "all logs": load.logs(lo, hi, url=url, **kw),
        "logs of every time": load.logs(json="text", url=url, **kw),
        "untraced logs of the db": load.logs(lo, hi, services=["db"], untraced=True, url=url, **kw),
        "logs of one trace": load.logs(trace_id=trace, url=url, **kw),
        "error logs": load.logs(lo, hi, levels=["error"], url=url, **kw),
    }


def retire_by_hand(url: str, root: Path, offsets=OLD_DAYS) -> None:
    """What retain does, without partitions: export, catalog as detached, delete the rows."""
    with psycopg.connect(url, autocommit=True) as conn:
        for offset in offsets:
            day = TODAY + pd.Timedelta(days=offset)
            for table, pg_table in archive.TABLES.items():
                (part,) = export.export_parquet(day, day + pd.Timedelta(days=1), root,
                                                tables=(table,), url=url)  # fmt: skip
                rows, total = archive.file_checksum(part.path, table)
                conn.execute(
                    "INSERT INTO archived_days (table_name, day, archive, file, rows, checksum,"
                    " sha256, verified_at, detached_at) VALUES (%s,%s,%s,%s,%s,%s,%s,now(),now())",
                    (pg_table, day.date(), str(root), str(part.path.relative_to(root)), rows,
                     total, archive.sha256_of(part.path)),
                )  # fmt: skip
                column = archive.DAY_COLUMN[table]
                conn.execute(
                    f"DELETE FROM {pg_table} WHERE {column} >= %s AND {column} < %s",
                    (day.to_pydatetime(), (day + pd.Timedelta(days=1)).to_pydatetime()),
                )


@pytest.fixture
def retired(migrated_db, tmp_path) -> tuple[str, Path, dict[str, pd.DataFrame]]:
    """The dataset's frames read hot, then its old days moved to the archive by hand."""
    multi_day_dataset(migrated_db)
    before = the_frames(migrated_db)
    retire_by_hand(migrated_db, tmp_path / "archive")
    return migrated_db, tmp_path / "archive", before


def test_every_loader_frame_is_the_same_after_old_days_move_to_the_archive(retired) -> None:
    """Same rows, columns, dtypes and order for every filter the loaders take."""
    url, _, before = retired
    with psycopg.connect(url) as conn:
        left = conn.execute("SELECT count(*) FROM distributed_traces").fetchone()[0]
    assert left == 3 * 4 * len(NEW_DAYS)  # the old days really left PostgreSQL
    after = the_frames(url)
    for name, frame in before.items():
        assert len(frame) > 0, name
        pd.testing.assert_frame_equal(after[name], frame, obj=name)


def test_the_archive_folder_can_be_named_when_it_moved(retired, tmp_path, monkeypatch) -> None:
    """``archive=`` and ``$OBSLIB_ARCHIVE`` override the folder the catalog recorded."""
    url, root, before = retired
    moved = tmp_path / "moved"
    root.rename(moved)
    with pytest.raises(archive.ArchiveUnreadable):
        load.spans(*window(), url=url)
    lo, hi = window()
    pd.testing.assert_frame_equal(load.spans(lo, hi, url=url, archive=moved),
                                  before["all spans, JSON as dicts"])  # fmt: skip
    monkeypatch.setenv(archive.ENV_ARCHIVE, str(moved))
    pd.testing.assert_frame_equal(load.logs(lo, hi, url=url), before["all logs"])


@pytest.mark.parametrize(
    ("harm", "says"),
    [
        (lambda p: p.unlink(), "is missing"),
        (lambda p: p.write_bytes(p.read_bytes()[:-9] + b"000000000"), "no longer matches"),
    ],
    ids=["a cold day whose file is gone is named", "a cold day whose file changed is named"],
)
def test_an_unreadable_cold_day_is_one_line_naming_day_and_file(retired, harm, says) -> None:
    url, root, _ = retired
    day = (TODAY + pd.Timedelta(days=OLD_DAYS[1])).date()
    path = root / "spans" / f"day={day}" / export.PART
    harm(path)
    with pytest.raises(archive.ArchiveUnreadable) as err:
        load.spans(*window(), url=url)
    message = str(err.value)
    assert "\n" not in message and says in message
    assert f"day {day}" in message and str(path) in message
    # a window that does not reach the day is not concerned
    assert len(load.spans(TODAY - pd.Timedelta(days=2), TODAY, url=url)) == 24


@pytest.mark.parametrize(
    ("table", "keys"),
    [
        ("spans", {"trace_id": ["ab" * 16, "cd" * 16], "span_id": ["01" * 8, "02" * 8]}),
        ("logs", {"log_id": ["é-1", "plain", "x" * 100]}),
        ("logs", {"log_id": []}),
    ],
    ids=["span keys sum alike", "log ids with non-ASCII text sum alike", "no rows sum to 0"],
)
def test_the_key_checksum_is_the_same_in_sql_and_python(migrated_db, table, keys) -> None:
    frame = pa.table({k: pa.array(v, pa.string()) for k, v in keys.items()})
    expected = 0
    for row in frame.to_pylist():
        text = " ".join(row[k] for k in archive.KEYS[table])
        expected += int.from_bytes(hashlib.md5(text.encode()).digest()[:8], "big", signed=True)
    column = archive.DAY_COLUMN[table]
    with psycopg.connect(migrated_db) as conn:
        cols = ", ".join(f"{k} text" for k in keys)
        conn.execute(f"CREATE TEMP TABLE r ({cols}, {column} timestamptz)")
        for row in frame.to_pylist():
            conn.execute(
                f"INSERT INTO r VALUES ({', '.join(['%s'] * (len(keys) + 1))})",
                [*row.values(), datetime(2026, 1, 1, tzinfo=UTC)],
            )
        day = datetime(2026, 1, 1, tzinfo=UTC)
        got = conn.execute(archive.checksum_sql(table, "r"), (day, day + timedelta(days=1)))
        rows, total = got.fetchone()
    assert (rows, int(total)) == (frame.num_rows, expected)
    assert archive.key_checksum(frame, table) == expected


def test_a_trace_is_read_from_the_archived_days_holding_it_and_from_postgresql(retired) -> None:
    """One statement gives the hot rows and the catalog; of the archived days only the one
    holding the trace is read (each file's trace ids, indexed once); a span of the same
    trace still in PostgreSQL is merged in time order, the same dtypes as a hot trace."""
    url, _, before = retired
    days = archive.cold_days("spans", None, None, url=url)
    assert len(days) == len(OLD_DAYS)
    trace = tid(f"d{OLD_DAYS[1] + 100}t2")
    assert [d.day for d in archive.days_with_trace(days, trace)] == [days[1].day]
    assert archive.days_with_trace(days, tid("nowhere")) == []
    late = TODAY + pd.Timedelta(days=NEW_DAYS[0], hours=1)
    write_spans(pd.DataFrame([span(f"d{OLD_DAYS[1] + 100}t2", "retry", "root", start=late)]),
                url=url)  # fmt: skip
    frame = load.trace(trace, url=url)
    assert list(frame["span_id"]) == [sid("root"), sid("db"), sid("late"), sid("retry")]
    assert frame["start_time"].is_monotonic_increasing
    assert dict(frame.dtypes) == dict(before["one trace"].dtypes)
    assert load.trace(tid("nowhere"), url=url).empty
