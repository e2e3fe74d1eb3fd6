"""``obslib db retain``: days past the horizon to the verified Parquet archive, then out of
PostgreSQL.

For each whole UTC day of spans (logs) that ended before ``now - keep``, per table:

1. **export** the day with ``obslib.load.export`` into the archive (same Hive layout,
   atomic rename) and **verify** the file read back from disk against the partition: row
   count and key checksum (``obslib.load.archive``);
2. **record** it in ``archived_days`` (file, rows, checksum, SHA-256, verified_at);
3. **detach** the partition, in one transaction that first locks it against writers and
   checks its rows once more against the record, and sets ``detached_at``;
4. **drop** the detached table, in one transaction with ``dropped_at`` and its size.

Each step commits with its catalog update, so a run killed anywhere leaves a state the
next run finishes: an attached day is exported and verified again; a detached one is
dropped once its file still matches its SHA-256. Every row is at all times in PostgreSQL
or in a verified file. A day that does not verify is never detached: the run goes on with
the other days and ends with exit 1 naming it.

``--no-archive`` (``archive=None``) detaches and drops without a copy and no catalog row.
Then the command packs the finished days kept (``obslib.jobs.pack``, under the same lock).
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from psycopg import sql

from obslib.errors import UsageError
from obslib.load import archive as arch
from obslib.load import export
from obslib.storage import db, partitions

logger = logging.getLogger(__name__)

# Tests only: the process kills itself (SIGKILL, no cleanup) right after the named step
# commits, to prove a rerun finishes the job: exported, recorded, detached, dropped; or
# stops itself (SIGSTOP, until a SIGCONT) there the first time, so a test can write late
# rows meanwhile.
ENV_DIE_AT = "OBSLIB_RETAIN_DIE_AT"
ENV_STOP_AT = "OBSLIB_RETAIN_STOP_AT"
LOCK_KEY = 0x0B5_2E7A1  # one retain at a time per database (a session advisory lock)


@dataclass(frozen=True)
class DayResult:
    """What happened (or, in a dry run, would happen) to one day of one table."""

    table: str  # spans | logs
    day: date
    action: str  # archived | dropped | deleted | would archive | would drop | would delete
    rows: int | None = None
    file: str | None = None  # relative to the archive folder
    file_bytes: int | None = None
    bytes_freed: int | None = None
    problem: str | None = None  # set: the day was not dropped, and why


@dataclass(frozen=True)
class Horizon:
    """The first day each table keeps: every earlier whole day is retired."""

    spans: date
    logs: date

    def of(self, table: str) -> date:
        return self.spans if table == "spans" else self.logs


def horizon(keep: timedelta, logs_keep: timedelta | None, now: datetime | None = None) -> Horizon:
    """Days that ended at or before ``now - keep`` go: the first kept day is that instant's
    UTC date."""
    now = now or datetime.now(UTC)
    logs_keep = keep if logs_keep is None else logs_keep
    return Horizon((now - keep).astimezone(UTC).date(), (now - logs_keep).astimezone(UTC).date())


def retain(
    horizon: Horizon,
    archive: str | Path | None,
    *,
    dry_run: bool = False,
    url: str | None = None,
    on_day: Callable[[DayResult], None] | None = None,
) -> list[DayResult]:
    """Retire every day before the horizon (see the module docstring); one result per day
    touched, in table then day order. ``archive=None``: delete without a copy."""
    root = None if archive is None else Path(archive).resolve()
    if root is not None and root.exists() and not root.is_dir():
        raise UsageError(f"cannot export into {archive}: it is a file, not a folder")
    results: list[DayResult] = []

    def report(result: DayResult) -> None:
        results.append(result)
        if on_day is not None:
            on_day(result)

    with db.connection(url) as conn:
        check_schema(conn)
        if archive is not None and not dry_run:
            export.prepare_out(archive, archive=True)  # created and marked as an archive
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        conn.commit()
        try:
            for table in arch.TABLES:
                _retain_table(conn, table, horizon.of(table), root, dry_run, url, report)
        finally:
            conn.rollback()
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
            conn.commit()
    return results


def check_schema(conn) -> None:
    """A UsageError (exit 2) unless the database has the catalog and day partitions."""
    (catalog,) = conn.execute("SELECT to_regclass('archived_days') IS NOT NULL").fetchone()
    flat = [t for t in arch.TABLES.values() if not partitions.is_partitioned(conn, t)]
    conn.rollback()
    if flat or not catalog:
        missing = ", ".join(f"{t} is not day-partitioned" for t in flat) or "no archived_days"
        raise UsageError(f"the database is not ready for retention ({missing}): run `obslib db up`")


def _retain_table(conn, table, first_kept, root, dry_run, url, report) -> None:
    pg_table = arch.TABLES[table]
    catalog = _catalog(conn, pg_table)
    conn.commit()
    # a run killed between detach and drop: finish those first
    for day, name in partitions.detached_days(conn, pg_table):
        entry = catalog.get(day)
        if entry is not None and entry["detached_at"] is not None:
            report(_drop_detached(conn, table, day, name, entry, dry_run))
        elif root is None and day < first_kept:
            report(_drop_detached(conn, table, day, name, None, dry_run))
        else:
            logger.warning("%s: detached table %s is not in the archive catalog: left alone",
                           pg_table, name)  # fmt: skip
    conn.commit()
    for day, name in partitions.day_partitions(conn, pg_table):
        if day >= first_kept:
            break
        entry = catalog.get(day)
        if root is None:
            report(_delete_day(conn, table, day, name, dry_run))
        elif entry is not None and entry["detached_at"] is not None:
            report(_recreated(conn, table, day, name, entry, dry_run))
        elif dry_run:
            size = _size(conn, name)
            report(DayResult(table, day, "would archive", bytes_freed=size))
        else:
            report(_archive_day(conn, table, day, name, root, url))
        conn.commit()


def _catalog(conn, pg_table: str) -> dict[date, dict]:
    rows = conn.execute(
        "SELECT day, archive, file, rows, checksum, sha256, detached_at FROM archived_days"
        " WHERE table_name = %s",
        (pg_table,),
    ).fetchall()
    keys = ("archive", "file", "rows", "checksum", "sha256", "detached_at")
    return {r[0]: dict(zip(keys, r[1:], strict=True)) for r in rows}


def _bounds(day: date) -> tuple[datetime, datetime]:
    lo = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return lo, lo + timedelta(days=1)


def _pg_checksum(conn, table: str, day: date) -> tuple[int, int]:
    relation = sql.Identifier(arch.TABLES[table]).as_string(conn)
    rows, total = conn.execute(arch.checksum_sql(table, relation), _bounds(day)).fetchone()
    return int(rows), int(total)


def _archive_day(conn, table: str, day: date, name: str, root: Path, url) -> DayResult:
    lo, hi = _bounds(day)
    (part,) = export.export_parquet(lo, hi, root, tables=(table,), url=url, archive=True)
    relative = f"{table}/day={day:%Y-%m-%d}/{export.PART}"
    path = root / relative
    if part.rows:
        rows, total = arch.file_checksum(path, table)
        digest = arch.sha256_of(path)
        size = path.stat().st_size
    else:  # an empty day: no file (the export removes one), nothing to read back
        rows, total, digest, size, relative = 0, 0, "", 0, ""
    _die_after("exported")
    in_pg = _pg_checksum(conn, table, day)
    if (rows, total) != in_pg:
        return DayResult(table, day, "not dropped", in_pg[0], relative, problem=(
            f"{table} {day}: the archive file {path} does not verify ({rows} rows, key"
            f" checksum {total}; PostgreSQL holds {in_pg[0]} rows, checksum {in_pg[1]})"
        ))  # fmt: skip
    conn.execute(
        """INSERT INTO archived_days
               (table_name, day, archive, file, rows, checksum, sha256, verified_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, now())
           ON CONFLICT (table_name, day) DO UPDATE SET
               archive = EXCLUDED.archive, file = EXCLUDED.file, rows = EXCLUDED.rows,
               checksum = EXCLUDED.checksum, sha256 = EXCLUDED.sha256,
               verified_at = EXCLUDED.verified_at
           WHERE archived_days.detached_at IS NULL""",
        (arch.TABLES[table], day, str(root), relative, rows, total, digest),
    )
    conn.commit()
    _die_after("recorded")
    # Writers may still add late rows to the day: block them (a SHARE lock on the table, which
    # the detach then raises to the ACCESS EXCLUSIVE it needs; taking the partition's first
    # could deadlock with a writer holding the table), then check the rows once more against
    # what was verified before the partition leaves the table.
    conn.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(sql.Identifier(arch.TABLES[table])))
    now_in_pg = _pg_checksum(conn, table, day)
    if now_in_pg != (rows, total):
        conn.rollback()
        return DayResult(table, day, "not dropped", rows, relative, problem=(
            f"{table} {day}: rows arrived after the export ({now_in_pg[0]} now, {rows}"
            " archived): the next run archives the day again"))  # fmt: skip
    detached = partitions.detach_day(conn, arch.TABLES[table], day) or name
    conn.execute(
        "UPDATE archived_days SET detached_at = now() WHERE table_name = %s AND day = %s",
        (arch.TABLES[table], day),
    )
    conn.commit()
    _die_after("detached")
    freed = _drop(conn, table, day, detached, catalogued=True)
    return DayResult(table, day, "archived", rows, relative, size, freed)


def _recreated(conn, table, day, name, entry, dry_run) -> DayResult:
    """A day archived and dropped before whose partition a writer created again: dropped
    when it is empty (nothing to keep), else kept and named (its file holds the old rows
    only, and is never overwritten)."""
    lock = sql.SQL("LOCK TABLE {} IN SHARE MODE").format(sql.Identifier(arch.TABLES[table]))
    conn.execute(lock)
    rows = _pg_checksum(conn, table, day)[0]
    if rows:
        conn.rollback()
        return DayResult(table, day, "not dropped", rows, problem=(
            f"{table} {day} was archived to {entry['file']} and dropped before, and a writer"
            f" created its partition again with {rows} rows: keep it (the loaders read both)"
            " or merge them into the archive by hand"
        ))  # fmt: skip
    if dry_run:
        conn.rollback()
        return DayResult(table, day, "would drop", 0, bytes_freed=_size(conn, name))
    detached = partitions.detach_day(conn, arch.TABLES[table], day) or name
    conn.commit()
    return DayResult(table, day, "dropped", 0, entry["file"],
                     bytes_freed=_drop(conn, table, day, detached, catalogued=False))  # fmt: skip


def _drop_detached(conn, table, day, name, entry, dry_run) -> DayResult:
    """Finish a day a killed run detached: drop it once its file is still the verified one."""
    if entry is not None and entry["rows"]:
        path = Path(entry["archive"]) / entry["file"]
        cold = arch.ColdDay(table, day, path, entry["rows"], entry["sha256"])
        try:
            arch.checked_path(cold)
        except arch.ArchiveUnreadable as err:
            return DayResult(table, day, "not dropped", entry["rows"], entry["file"],
                             problem=str(err))  # fmt: skip
    if dry_run:
        return DayResult(table, day, "would drop", bytes_freed=_size(conn, name))
    freed = _drop(conn, table, day, name, catalogued=entry is not None)
    rows = None if entry is None else entry["rows"]
    return DayResult(table, day, "dropped" if entry else "deleted", rows,
                     None if entry is None else entry["file"], bytes_freed=freed)  # fmt: skip


def _delete_day(conn, table, day, name, dry_run) -> DayResult:
    """--no-archive: detach and drop with no copy."""
    size = _size(conn, name)
    if dry_run:
        return DayResult(table, day, "would delete", bytes_freed=size)
    rows = _pg_checksum(conn, table, day)[0]
    detached = partitions.detach_day(conn, arch.TABLES[table], day) or name
    conn.commit()
    _die_after("detached")
    freed = _drop(conn, table, day, detached, catalogued=False)
    return DayResult(table, day, "deleted", rows, bytes_freed=freed)


def _drop(conn, table: str, day: date, name: str, *, catalogued: bool) -> int:
    size = _size(conn, name)
    partitions.drop_detached(conn, name)
    if catalogued:
        conn.execute(
            "UPDATE archived_days SET dropped_at = now(), bytes_freed = %s"
            " WHERE table_name = %s AND day = %s",
            (size, arch.TABLES[table], day),
        )
    conn.commit()
    _die_after("dropped")
    return size


def _size(conn, name: str) -> int:
    (size,) = conn.execute(
        "SELECT pg_total_relation_size(to_regclass(%s))",
        (partitions.qualified(name).as_string(conn),),
    ).fetchone()
    return int(size or 0)


def _die_after(step: str) -> None:
    if os.environ.get(ENV_DIE_AT) == step:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get(ENV_STOP_AT) == step and step not in _stopped:
        _stopped.add(step)  # the first time only
        os.kill(os.getpid(), signal.SIGSTOP)


_stopped: set[str] = set()
