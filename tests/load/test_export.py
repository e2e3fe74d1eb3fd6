"""Parquet export: what goes out equals what the loaders read, re-exports replace, an
interrupted export leaves every partition whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psycopg
import pyarrow.parquet as pq
import pytest

from obslib import load
from obslib.errors import UsageError
from obslib.load import export
from tests.conftest import run_cli

T1, T2 = "1" * 32, "2" * 32  # trace and span ids are hex, as every writer requires
SPAN_A, SPAN_B, SPAN_C = "a" * 16, "b" * 16, "c" * 16


def _day_window(summary) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Two whole UTC days around the demo incident."""
    day = pd.Timestamp(summary.incident_start).floor("D")
    return day - pd.Timedelta(days=1), day + pd.Timedelta(days=1)


def _read(root: Path, table: str) -> pd.DataFrame:
    frame = pd.read_parquet(root / table)
    return frame.drop(columns="day")


def test_the_export_reads_back_as_the_loaders_read_the_window(demo_db, tmp_path) -> None:
    """Same rows, same column types as ``load.spans``/``load.logs`` with JSON as text; a
    window inside a day widens to the whole day; one partition per day."""
    url, summary = demo_db
    lo, hi = _day_window(summary)
    parts = export.export_parquet(lo + pd.Timedelta(hours=3), hi - pd.Timedelta(hours=1),
                                  tmp_path, url=url)  # fmt: skip
    assert [(p.table, p.day) for p in parts] == [
        ("spans", f"{lo:%Y-%m-%d}"),
        ("spans", f"{lo + pd.Timedelta(days=1):%Y-%m-%d}"),
        ("logs", f"{lo:%Y-%m-%d}"),
        ("logs", f"{lo + pd.Timedelta(days=1):%Y-%m-%d}"),
    ]
    keys = {"spans": ["trace_id", "span_id"], "logs": ["log_id"]}
    for table, loaded in (
        ("spans", load.spans(lo, hi, json="text", url=url)),
        ("logs", load.logs(lo, hi, json="text", url=url)),
    ):
        back = _read(tmp_path, table).sort_values(keys[table]).reset_index(drop=True)
        if table == "spans":  # the export carries each span's sampling probability (0015)
            assert (back.pop("sampling_probability") == 1.0).all()
        loaded = loaded.sort_values(keys[table]).reset_index(drop=True)
        assert len(back) == sum(p.rows for p in parts if p.table == table) > 0
        pd.testing.assert_frame_equal(back, loaded[back.columns], check_dtype=True)
        assert list(back.columns) == list(loaded.columns)


def test_re_export_replaces_a_day_and_a_day_without_rows_loses_its_file(
    migrated_db, tmp_path
) -> None:
    rows = pd.DataFrame(
        {
            "trace_id": [T1, T1, T2],
            "span_id": [SPAN_A, SPAN_B, SPAN_C],
            "parent_span_id": [None, SPAN_A, None],
            "service_name": "api",
            "operation_name": "GET /",
            "start_time": pd.to_datetime(
                ["2026-11-20T10:00Z", "2026-11-20T10:00:01Z", "2026-11-21T23:59:59.999999Z"],
                format="ISO8601",
            ),
            "end_time": pd.to_datetime(
                ["2026-11-20T10:00:02Z", "2026-11-20T10:00:01.5Z", "2026-11-22T00:00:01Z"],
                format="ISO8601",
            ),
        }
    )
    from obslib.ingest import write_spans

    write_spans(rows, url=migrated_db)
    first = export.export_parquet("2026-11-20", "2026-11-22", tmp_path, url=migrated_db)
    assert [(p.table, p.day, p.rows) for p in first] == [
        ("spans", "2026-11-20", 2),
        ("spans", "2026-11-21", 1),  # by start time: the span ending after midnight stays
        ("logs", "2026-11-20", 0),
        ("logs", "2026-11-21", 0),
    ]
    before = _read(tmp_path, "spans").sort_values("span_id").reset_index(drop=True)
    again = export.export_parquet("2026-11-20", "2026-11-22", tmp_path, url=migrated_db)
    assert [p.rows for p in again] == [p.rows for p in first]
    after = _read(tmp_path, "spans").sort_values("span_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(after, before)  # idempotent, nothing doubled
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute("DELETE FROM distributed_traces WHERE trace_id = %s", (T2,))
    export.export_parquet("2026-11-21T12:00Z", "2026-11-21T13:00Z", tmp_path, url=migrated_db)
    assert not (tmp_path / "spans" / "day=2026-11-21").exists()
    assert sorted(_read(tmp_path, "spans")["span_id"]) == [SPAN_A, SPAN_B]
    assert not list(tmp_path.rglob(".*"))  # no hidden leftovers


@pytest.mark.slow
def test_an_interrupted_export_leaves_every_partition_whole(demo_db, tmp_path) -> None:
    """Killed at several moments (SIGKILL: no cleanup runs), the dataset only ever holds
    complete files: each visible file reads back whole with its day's row count, and the
    next export removes the hidden leftovers."""
    url, summary = demo_db
    lo, hi = _day_window(summary)
    lo -= pd.Timedelta(days=5)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSLIB_")}
    env["OBSLIB_DATABASE_URL"] = url
    # the real command, with record batches of 4 KB instead of 16 MB: a day then takes long
    # enough to write that the kill lands inside a file, not between two
    script = (
        "import sys; from obslib import cli; from obslib.load import export;"
        " export.BATCH_BYTES = 4096; sys.exit(cli.main(sys.argv[1:]))"
    )
    command = [sys.executable, "-c", script, "export", "parquet", "--start", lo.isoformat(),
               "--end", hi.isoformat(), "--out", str(tmp_path)]  # fmt: skip
    complete = export.export_parquet(lo, hi, tmp_path / "whole", url=url)
    expected = {(p.table, p.day): p.rows for p in complete}
    cut_midway = 0
    for _ in range(3):
        child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE)
        assert child.stdout is not None
        child.stdout.readline()  # the first day is written: the next one is under way
        time.sleep(0.2)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        cut_midway += bool(list(tmp_path.glob("*/day=*/" + export.HIDDEN + "*")))
        for part in tmp_path.glob("*/day=*/" + export.PART):
            table, day = part.parent.parent.name, part.parent.name.removeprefix("day=")
            assert pq.read_metadata(part).num_rows == expected[(table, day)]
    assert cut_midway  # at least one kill interrupted a file being written
    export.export_parquet(lo, hi, tmp_path, url=url)
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]
    for (table, day), n in expected.items():
        part = tmp_path / table / f"day={day}" / export.PART
        assert (pq.read_metadata(part).num_rows if part.exists() else 0) == n


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--start", "2026-11-14T10:00Z", "--end", "2026-11-14T09:00Z"), "empty time window"),
        (("--start", "2026-11-14", "--end", "2026-11-15", "--tables", "spans,metrics"),
         "cannot export metrics: choose from spans, logs"),
        (("--start", "yesterday-ish", "--end", "2026-11-15"), "--start"),
    ],
)  # fmt: skip
def test_bad_export_arguments_exit_2_before_connecting(args, says, tmp_path) -> None:
    done = run_cli(
        "export", "parquet", *args, "--out", str(tmp_path),
        env={"OBSLIB_DATABASE_URL": "postgresql://obslib@127.0.0.1:1/nowhere"},
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("obslib: error: ") and says in done.stderr
    assert not list(tmp_path.iterdir())


def test_check_tables() -> None:
    with pytest.raises(UsageError, match="cannot export nothing"):
        export.check_tables(())


def _export_command(url: str, lo: pd.Timestamp, hi: pd.Timestamp, out: Path) -> subprocess.Popen:
    """The real ``obslib export parquet``, with 4 KB record batches so a day takes a while."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSLIB_")}
    env["OBSLIB_DATABASE_URL"] = url
    script = (
        "import sys; from obslib import cli; from obslib.load import export;"
        " export.BATCH_BYTES = 4096; sys.exit(cli.main(sys.argv[1:]))"
    )
    command = [sys.executable, "-c", script, "export", "parquet", "--start", lo.isoformat(),
               "--end", hi.isoformat(), "--out", str(out)]  # fmt: skip
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.slow
def test_two_exports_into_one_folder_at_once_both_finish_whole(demo_db, tmp_path) -> None:
    """Two exports of the same days started together (each used to delete the other's hidden
    file as a "leftover": FileNotFoundError): the second waits for the folder's lock, both
    exit 0, and the dataset is the complete export with no hidden files. Three rounds, as
    two processes do not always overlap on a shared machine."""
    url, summary = demo_db
    lo, hi = _day_window(summary)
    lo -= pd.Timedelta(days=2)
    whole = export.export_parquet(lo, hi, tmp_path / "whole", url=url)
    expected = {(p.table, p.day): p.rows for p in whole}
    for round_ in range(3):
        out = tmp_path / f"shared-{round_}"
        children = [_export_command(url, lo, hi, out) for _ in range(2)]
        for child in children:
            _, err = child.communicate(timeout=300)
            assert child.returncode == 0, err
        assert not [p for p in out.rglob("*") if p.name.startswith(".")]
        for (table, day), n in expected.items():
            part = out / table / f"day={day}" / export.PART
            assert (pq.read_metadata(part).num_rows if part.exists() else 0) == n


def test_a_leftover_is_removed_only_when_no_export_holds_the_folder(migrated_db, tmp_path) -> None:
    """A hidden file in a day folder is stale only if no export holds the folder's lock:
    while one does, the next export waits instead of touching it."""
    import fcntl
    import threading

    day = tmp_path / "spans" / "day=2026-11-20"
    day.mkdir(parents=True)
    other = day / f"{export.HIDDEN}being-written.tmp"
    other.write_bytes(b"another export's file")
    holder = os.open(tmp_path, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)  # a live export holds the folder
    done = threading.Event()
    worker = threading.Thread(
        target=lambda: (
            export.export_parquet("2026-11-20", "2026-11-21", tmp_path, url=migrated_db),
            done.set(),
        )
    )
    worker.start()
    try:
        assert not done.wait(2.0)  # waiting for the lock
        assert other.exists()
    finally:
        os.close(holder)  # the other export ends (or dies): its file is now a leftover
    worker.join(timeout=60)
    assert done.is_set() and not other.exists()


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_out_being_a_file_is_a_usage_error(migrated_db, tmp_path, where) -> None:
    """--out naming a file (or a path through one) is one line, exit 2, and the file stays."""
    existing = tmp_path / "dataset.parquet"
    existing.write_bytes(b"not a folder")
    out = existing if where == "a file" else existing / "sub"
    done = run_cli(
        "export", "parquet", "--start", "2026-11-20", "--end", "2026-11-21", "--out", str(out),
        env={"OBSLIB_DATABASE_URL": migrated_db},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"obslib: error: cannot export into {out}: ")
    assert done.stderr.count("\n") == 1 and "internal error" not in done.stderr
    assert existing.read_bytes() == b"not a folder"
