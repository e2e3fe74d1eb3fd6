"""``obslib db retain``: days past the horizon archived, verified, dropped; hot days untouched;
a rerun does nothing; a day that does not verify is never dropped; a run killed at any step
is finished by the next with nothing lost; the loaders' frames equal before and after."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from obslib.ingest import write_spans
from obslib.jobs.retain import ENV_DIE_AT, ENV_STOP_AT
from obslib.load import archive, export
from obslib.storage import partitions
from tests.builders import span
from tests.conftest import run_cli
from tests.load.test_archive import NEW_DAYS, OLD_DAYS, TODAY, multi_day_dataset, the_frames

OLD = [(TODAY + pd.Timedelta(days=d)).date() for d in OLD_DAYS]
NEW = [(TODAY + pd.Timedelta(days=d)).date() for d in NEW_DAYS]


def retain(url: str, *args: str, env: dict[str, str] | None = None):
    return run_cli("db", "retain", *args, env={"OBSLIB_DATABASE_URL": url, **(env or {})})


def state(url: str) -> dict[str, object]:
    """Attached and detached days per table, and the catalog."""
    with psycopg.connect(url) as conn:
        out: dict[str, object] = {}
        for table in archive.TABLES.values():
            out[f"{table} attached"] = [d for d, _ in partitions.day_partitions(conn, table)]
            out[f"{table} detached"] = [d for d, _ in partitions.detached_days(conn, table)]
        out["catalog"] = conn.execute(
            "SELECT table_name, day, file, rows, detached_at IS NOT NULL,"
            " dropped_at IS NOT NULL FROM archived_days ORDER BY 1, 2"
        ).fetchall()
    return out


@pytest.fixture
def dataset(migrated_db) -> tuple[str, dict[str, pd.DataFrame]]:
    """Five days of spans and logs (three past a 5-day horizon) and their frames."""
    multi_day_dataset(migrated_db)
    return migrated_db, the_frames(migrated_db)


def assert_same_frames(url: str, before: dict[str, pd.DataFrame]) -> None:
    after = the_frames(url)
    for name, frame in before.items():
        pd.testing.assert_frame_equal(after[name], frame, obj=name)


def test_old_days_are_archived_verified_and_dropped_and_a_rerun_does_nothing(
    dataset, tmp_path
) -> None:
    url, before = dataset
    root = tmp_path / "archive"
    done = retain(url, "--keep", "5d", "--archive", str(root))
    assert done.returncode == 0, done.stderr
    for day in OLD:
        assert f"spans {day}  archived 12 rows, verified -> spans/day={day}/part-0.parquet" in (
            done.stdout
        )
        assert f"logs {day}  archived 8 rows, verified" in done.stdout
    assert "retained 6 days" in done.stdout and "bytes/span" in done.stdout
    assert " 0 B freed" not in done.stdout and "kB freed" in done.stdout
    print(done.stdout)  # the archive's bytes/span, for the record
    after = state(url)
    for table in archive.TABLES.values():
        attached = after[f"{table} attached"]
        assert not set(OLD) & set(attached) and set(NEW) <= set(attached)  # hot days untouched
        assert after[f"{table} detached"] == []
    assert [(t, d, n, det, drop) for t, d, _, n, det, drop in after["catalog"]] == [
        (t, d, n, True, True)
        for t, n in (("distributed_traces", 12), ("structured_logs", 8))
        for d in OLD
    ]
    for day in OLD:
        assert (root / "spans" / f"day={day}" / export.PART).is_file()
    assert_same_frames(url, before)

    overwrite = run_cli("export", "parquet", "--start", str(OLD[0]), "--end", str(OLD[1]),
                        "--out", str(root), env={"OBSLIB_DATABASE_URL": url})  # fmt: skip
    assert overwrite.returncode == 2 and "is an `obslib db retain` archive" in overwrite.stderr
    again = retain(url, "--keep", "5d", "--archive", str(root))
    assert again.returncode == 0, again.stderr
    assert "nothing to retain" in again.stdout
    assert state(url) == after


def test_a_dry_run_prints_the_plan_and_changes_nothing(dataset, tmp_path) -> None:
    url, _ = dataset
    before = state(url)
    plan = retain(url, "--keep", "5d", "--archive", str(tmp_path / "a"), "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert all(f"spans {d}  would archive" in plan.stdout for d in OLD)
    assert "dry run: 6 days would go" in plan.stdout
    assert state(url) == before
    assert not (tmp_path / "a").exists()


def test_no_archive_deletes_and_says_so(dataset) -> None:
    url, before = dataset
    gone = retain(url, "--keep", "5d", "--logs-keep", "9d", "--no-archive")
    assert gone.returncode == 0, gone.stderr
    assert gone.stdout.startswith("--no-archive: days past the horizon are DELETED")
    assert f"spans {OLD[0]}  DELETED without archive, 12 rows" in gone.stdout
    assert f"logs {OLD[0]}  DELETED" in gone.stdout and f"logs {OLD[1]}  DELETED" not in gone.stdout
    after = state(url)
    assert after["catalog"] == []
    assert not set(OLD) & set(after["distributed_traces attached"])
    lo = TODAY - pd.Timedelta(days=11)
    assert len(the_frames(url)["all spans, JSON as text"]) == 12 * len(NEW_DAYS)
    logs = the_frames(url)["all logs"]
    assert len(logs) == 8 * (len(NEW_DAYS) + 2) and logs["timestamp"].min() > lo + pd.Timedelta(
        days=1
    )
    del before


@pytest.mark.parametrize(
    "step",
    ["exported", "recorded", "detached", "dropped"],
    ids=[
        "killed after the export, before the catalog",
        "killed after the catalog, before the detach",
        "killed between detach and drop",
        "killed after the first drop",
    ],
)
def test_a_run_killed_at_any_step_is_finished_by_the_next(dataset, tmp_path, step) -> None:
    """SIGKILL right after the step commits: every row is still readable (in PostgreSQL or
    a verified file), and the rerun finishes with the same end state as an unbroken run."""
    url, before = dataset
    root = tmp_path / "archive"
    killed = retain(url, "--keep", "5d", "--archive", str(root), env={ENV_DIE_AT: step})
    assert killed.returncode == -9, killed.stdout + killed.stderr
    assert_same_frames(url, before)  # nothing lost, nothing doubled
    done = retain(url, "--keep", "5d", "--archive", str(root))
    assert done.returncode == 0, done.stderr
    if step == "detached":
        assert f"spans {OLD[0]}  dropped (archived earlier), 12 rows" in done.stdout
    after = state(url)
    assert [(t, d) for t, d, *_ in after["catalog"]] == [
        (t, d) for t in ("distributed_traces", "structured_logs") for d in OLD
    ]
    assert all(det and drop for *_, det, drop in after["catalog"])
    assert after["distributed_traces detached"] == after["structured_logs detached"] == []
    assert_same_frames(url, before)


@pytest.mark.parametrize(
    ("harm", "says"),
    [
        (lambda p: p.unlink(), "is missing"),
        (lambda p: p.write_bytes(b"PAR1" + p.read_bytes()[4:-9] + b"000000000"), "no longer"),
    ],
    ids=["a day whose archive file went missing", "a day whose archive file changed"],
)
def test_a_day_whose_archive_does_not_verify_is_never_dropped(dataset, tmp_path, harm, says):
    """Killed between detach and drop, then the file is harmed: the rerun keeps the detached
    table, names the day and exits 1."""
    url, _ = dataset
    root = tmp_path / "archive"
    retain(url, "--keep", "5d", "--archive", str(root), env={ENV_DIE_AT: "detached"})
    harm(root / "spans" / f"day={OLD[0]}" / export.PART)
    rerun = retain(url, "--keep", "5d", "--archive", str(root))
    assert rerun.returncode == 1, rerun.stdout + rerun.stderr
    last = rerun.stderr.strip().splitlines()[-1]
    assert last == f"obslib: error: 1 day not verified, kept: spans {OLD[0]}"
    assert says in rerun.stderr
    assert state(url)["distributed_traces detached"] == [OLD[0]]


def test_a_dropped_day_whose_partition_came_back_with_rows_is_kept_and_named(
    dataset, tmp_path
) -> None:
    url, before = dataset
    root = tmp_path / "archive"
    assert retain(url, "--keep", "5d", "--archive", str(root)).returncode == 0
    multi_day_dataset(url, offsets=(OLD_DAYS[0],))  # late writes recreate the day
    rerun = retain(url, "--keep", "5d", "--archive", str(root))
    assert rerun.returncode == 1
    assert f"kept: spans {OLD[0]}, logs {OLD[0]}" in rerun.stderr
    archived = root / "spans" / f"day={OLD[0]}" / export.PART
    assert archive.file_checksum(archived, "spans")[0] == 12  # the file was not overwritten
    del before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--keep", "7x", "--archive", "a"], "--keep must be a positive duration"),
        (["--keep", "0d", "--no-archive"], "--keep must be a positive duration"),
        (["--keep", "7d", "--logs-keep=-1d", "--no-archive"], "--logs-keep must be a positive"),
        (["--keep", "7d"], "one of the arguments --archive --no-archive is required"),
        (["--keep", "7d", "--archive", "a", "--no-archive"], "not allowed with argument"),
        (["--archive", "a"], "the following arguments are required: --keep"),
        (["--keep", "7d", "--archive", "a-file"], "cannot export into a-file: it is a file"),
    ],
    ids=[
        "a duration that is no duration",
        "a duration of nothing",
        "a negative logs duration",
        "neither archive nor no-archive",
        "both archive and no-archive",
        "no keep",
        "an archive that is a file",
    ],
)
def test_argument_errors_exit_2_with_one_line(args, message, migrated_db, tmp_path) -> None:
    (tmp_path / "a-file").write_text("x")
    result = subprocess.run(
        [sys.executable, "-m", "obslib", "db", "retain", *args],
        env={"OBSLIB_DATABASE_URL": migrated_db, "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert message in lines[-1]
    assert state(migrated_db)["catalog"] == []
    assert not list(Path(tmp_path).rglob("*.parquet"))


def test_the_trace_view_and_the_report_header_after_retain(dataset, tmp_path) -> None:
    """The trace investigation over a window of archived days loads the same window and
    rebuilds the same trace (spans, critical path); the report header names the archived
    days of its window, and says nothing for a window of hot days."""
    from obslib import reports
    from obslib.views.trace_investigation import investigate_trace

    url, _ = dataset
    lo, hi = TODAY - pd.Timedelta(days=10), TODAY - pd.Timedelta(days=7)

    def view():
        inv = investigate_trace("", lo, hi, url=url)
        picked = inv.selection.trace
        return inv.cleaning.spans, picked.trace_id, picked.spans, picked.path

    before = view()
    assert retain(url, "--keep", "5d", "--archive", str(tmp_path / "a")).returncode == 0
    after = view()
    assert after[1] == before[1]
    for got, expected in zip(after[::2] + after[3:], before[::2] + before[3:], strict=True):
        pd.testing.assert_frame_equal(got, expected)
    params = {"start": str(lo), "end": str(hi)}
    header = reports._archived_days("trace", params, None, url)
    days = f"{OLD[0]} .. {OLD[2]}"
    assert header == f"spans of {days}; logs of {days} (read from the Parquet archive)"
    markdown = reports.report_header("trace", "Trace", params, archived=header)
    assert f"| **From the archive** | spans of {OLD[0]}" in markdown
    hot = {"start": str(TODAY - pd.Timedelta(days=2)), "end": str(TODAY)}
    assert reports._archived_days("trace", hot, None, url) == ""
    assert "From the archive" not in reports.report_header("trace", "Trace", hot)


def test_a_database_without_day_partitions_is_told_to_migrate(fresh_db, tmp_path) -> None:
    from obslib.storage.migrate import Migrator
    from tests.conftest import MIGRATIONS

    Migrator(fresh_db, MIGRATIONS).up(to=11)
    refused = retain(fresh_db, "--keep", "5d", "--archive", str(tmp_path / "a"))
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1] == (
        "obslib: error: the database is not ready for retention (distributed_traces is not"
        " day-partitioned, structured_logs is not day-partitioned): run `obslib db up`"
    )
    assert not (tmp_path / "a").exists()


def _stopped(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "T"


@pytest.mark.parametrize(
    ("step", "says"),
    [
        ("exported", "does not verify (12 rows"),
        ("recorded", "rows arrived after the export (13 now, 12 archived)"),
    ],
    ids=[
        "a span written between the export and its verification",
        "a span written between the catalog and the detach",
    ],
)
def test_late_rows_keep_the_day_and_the_next_run_archives_them(dataset, tmp_path, step, says):
    """The run stops itself after the step; a late span of the oldest day is written; the
    day is kept (exit 1, named) and the next run archives all 13 spans."""
    url, _ = dataset
    root = tmp_path / "archive"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSLIB_")}
    env.update({"OBSLIB_DATABASE_URL": url, ENV_STOP_AT: step})
    args = ["db", "retain", "--keep", "5d", "--archive", str(root)]
    proc = subprocess.Popen([sys.executable, "-m", "obslib", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not _stopped(proc.pid):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        late = pd.Timestamp(OLD[0], tz="UTC") + pd.Timedelta(hours=23)
        write_spans(pd.DataFrame([span("late", "root", start=late)]), url=url)
        os.kill(proc.pid, signal.SIGCONT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, out + err
    assert says in err and f"kept: spans {OLD[0]}" in err.splitlines()[-1]
    assert OLD[0] in state(url)["distributed_traces attached"]
    again = retain(url, "--keep", "5d", "--archive", str(root))
    assert again.returncode == 0, again.stderr
    assert f"spans {OLD[0]}  archived 13 rows, verified" in again.stdout
    archived = root / "spans" / f"day={OLD[0]}" / export.PART
    assert archive.file_checksum(archived, "spans")[0] == 13


def _shown(notebook: Path) -> tuple[str, list[tuple[str, str, list[dict]]]]:
    """An executed report: its header's markdown, and every other cell's type, source and
    outputs (without execution counts and metadata: when it ran, not what it showed)."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    header = [c.source for c in nb.cells if HEADER_TAG in c.metadata.get("tags", [])]
    rest = [
        (
            c.cell_type,
            c.source,
            [
                {k: v for k, v in out.items() if k not in ("execution_count", "metadata")}
                for out in c.get("outputs", [])
            ],
        )
        for c in nb.cells
        if HEADER_TAG not in c.metadata.get("tags", [])
    ]
    assert len(header) == 1, notebook
    return header[0], rest


HEADER_TAG = "obslib-report-header"  # obslib.reports tags the header cell so


@pytest.mark.slow  # four report runs (~90 s with the 2 cores busy)
def test_a_report_before_and_after_retain_is_the_same_apart_from_its_header(
    migrated_db, tmp_path
) -> None:
    """The demo (20k spans over 2026-11-02 .. 11-15) with every day before 11-15 retired:
    the one-day trace report (its window in 11-14) and the 30-day SLO review, run with their
    defaults before and after, show the same cells and outputs; only the header changed,
    and by a row naming the days read from the archive."""
    from obslib import demo, reports
    from obslib.jobs import retain as retain_job

    demo.run(seed=7, spans=20_000, url=migrated_db)
    names = ("trace", "slo")

    def run(stage: str) -> dict[str, tuple[str, list]]:
        out = tmp_path / stage
        return {
            name: _shown(
                reports.run_report(name, {}, out / name, database_url=migrated_db).notebook
            )
            for name in names
        }

    before = run("before")
    first_kept = pd.Timestamp("2026-11-15").date()
    horizon = retain_job.Horizon(spans=first_kept, logs=first_kept)
    done = retain_job.retain(horizon, tmp_path / "archive", url=migrated_db)
    assert {r.action for r in done} == {"archived"} and len(done) == 26
    after = run("after")
    archived = {
        "trace": "spans of 2026-11-14; logs of 2026-11-14",
        "slo": "spans of 2026-11-02 .. 2026-11-14; logs of 2026-11-02 .. 2026-11-14",
    }
    for name in names:
        (head_before, cells_before), (head_after, cells_after) = before[name], after[name]
        assert cells_after == cells_before, name
        row = f"| **From the archive** | {archived[name]} (read from the Parquet archive) |"
        assert "From the archive" not in head_before and row in head_after.splitlines(), name

        def masked(header: str) -> list[str]:
            return [
                line
                for line in header.splitlines()
                if not line.startswith(("| **Generated**", "| **From the archive**"))
            ]

        assert masked(head_after) == masked(head_before), name
