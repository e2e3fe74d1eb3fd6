"""Spans and logs of a window to Parquet, one Hive-style partition per UTC day: the hand-off
to Spark (``obslib.spark``) or a data lake.

Bounded memory: each day is streamed from PostgreSQL's COPY output through ADBC as Arrow
record batches of ~16 MB straight into a Parquet writer, never the whole window (nor the
whole day) in memory. The columns have the loaders' types (``load.spans(json="text")``,
``load.logs(json="text")``): UTC timestamps in microseconds, JSON as text.

Whole days only: the window is widened to UTC midnights, so a partition always holds its
whole day and a later export of that day replaces it like for like. Each day's file is
written under a hidden name in its folder and renamed into place (an atomic rename), so a
reader never sees half a file and an export interrupted midway leaves each partition as it
was: the old file or the new one. All days are read in one repeatable-read transaction: one
snapshot.

One export at a time per folder: an export holds an exclusive ``flock`` on the ``out`` folder
itself (no lock file to leave behind) from before it connects until its last rename, and a
second export into the same folder waits for it. So a hidden ``.part-*.tmp`` found under the
lock is provably a leftover of an export that died (the kernel releases a dead process's
lock), and only then is it removed; two exports never delete each other's files.

An archive of ``obslib db retain`` has the same layout, but its days may exist nowhere else:
it is marked (a hidden ``.obslib-archive`` file), and a plain export into it is refused, as
re-exporting a day PostgreSQL no longer holds would remove that day's file.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa

from obslib.errors import ObslibError, UsageError
from obslib.load import weights
from obslib.load._core import _window
from obslib.load.telemetry import _LOGS, _SPANS
from obslib.schema import SPANS_TAGGED
from obslib.storage import db
from obslib.values import Moment

logger = logging.getLogger(__name__)

PART = "part-0.parquet"  # the one file of a day's partition
HIDDEN = ".part-"  # Spark and pyarrow skip names starting with "." or "_"
ARCHIVE_MARK = ".obslib-archive"  # in the root of a retain archive (hidden: readers skip it)
BATCH_BYTES = 16 * 2**20  # ADBC record batch size hint: the export's memory per table
# the day's bounds, bound to session settings and read back once per query: ADBC streams a
# result through COPY only for a statement without parameters
_LO = "(SELECT current_setting('obslib.export_lo')::timestamptz)"
_HI = "(SELECT current_setting('obslib.export_hi')::timestamptz)"
# table -> the query of one day (rows placed in their day by start time / timestamp); spans
# carry their sampling probability (REAL, 1 = not sampled), which the counts of archived
# days weigh by (``weights``; a file written before it existed counts each span once)
TABLES = {
    "spans": _SPANS
    + f", {weights.COLUMN}"
    + f"\nFROM {SPANS_TAGGED} WHERE start_time >= {_LO} AND start_time < {_HI}",
    "logs": _LOGS + f"\nWHERE timestamp >= {_LO} AND timestamp < {_HI}",
}


@dataclass(frozen=True)
class Partition:
    """One day of one table as written: ``rows`` 0 means the day had none (no file)."""

    table: str
    day: str
    rows: int
    path: Path | None


def days_of(start: Moment, end: Moment) -> list[pd.Timestamp]:
    """The UTC midnights of every day the window ``[start, end)`` touches."""
    lo, hi = _window(start, end)
    first = pd.Timestamp(lo).floor("D")
    last = pd.Timestamp(hi).ceil("D")
    return list(pd.date_range(first, last, freq="D", inclusive="left"))


def check_tables(tables: tuple[str, ...]) -> None:
    """A UsageError unless ``tables`` names at least one exportable table, all known."""
    unknown = [t for t in tables if t not in TABLES]
    if unknown or not tables:
        named = ", ".join(unknown) or "nothing"
        raise UsageError(f"cannot export {named}: choose from {', '.join(TABLES)}")


def export_parquet(
    start: Moment,
    end: Moment,
    out: str | Path,
    *,
    tables: tuple[str, ...] = ("spans", "logs"),
    url: str | None = None,
    on_partition: Callable[[Partition], None] | None = None,
    archive: bool = False,
) -> list[Partition]:
    """Write ``out/<table>/day=YYYY-MM-DD/part-0.parquet`` for every day of the window.

    Re-exporting a day replaces its file atomically; a day without rows loses its old file.
    ``archive=True``: ``out`` is (or becomes) a retain archive (``obslib.jobs.retain``).
    """
    import adbc_driver_manager

    check_tables(tables)
    days = days_of(start, end)
    root = prepare_out(out, archive=archive)
    written: list[Partition] = []
    try:
        with _exclusive(root), db.adbc_connection(url) as conn, conn.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            for table in tables:
                for day in days:
                    part = _export_day(cur, table, day, root)
                    written.append(part)
                    if on_partition is not None:
                        on_partition(part)
            conn.rollback()  # read only: nothing to keep
    except adbc_driver_manager.Error as err:
        if getattr(err, "sqlstate", None) == "42P01":
            raise UsageError("the database has no obslib schema yet: run `obslib db up`") from err
        raise ObslibError(f"export failed: {db.first_line(err)}") from err
    return written


def prepare_out(out: str | Path, *, archive: bool = False) -> Path:
    """The export's folder, created if missing; a UsageError (one line) when ``out`` or one of
    its parents is a file, the folder cannot be created, or it is a retain archive and
    ``archive`` is False. ``archive=True`` marks the folder as one."""
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise UsageError(f"cannot export into {out}: it is a file, not a folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UsageError(f"cannot export into {out}: part of its path is a file") from None
    except OSError as err:
        raise UsageError(f"cannot export into {out}: {err.strerror or err}") from None
    mark = root / ARCHIVE_MARK
    if archive and not mark.exists():
        mark.write_text("obslib db retain archive: its days may exist nowhere else\n")
    elif not archive and mark.exists():
        raise UsageError(
            f"cannot export into {out}: it is an `obslib db retain` archive, whose days may"
            " exist nowhere else; export into another folder"
        )
    return root


@contextmanager
def _exclusive(root: Path) -> Iterator[None]:
    """Hold an exclusive flock on the folder: one export into it at a time (the next one
    waits), released when the export ends or its process dies."""
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no lock (one export at a time is then yours)
        yield
        return
    fd = os.open(root, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.warning("another export is writing into %s: waiting for it to finish", root)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _export_day(cur, table: str, day: pd.Timestamp, root: Path) -> Partition:
    folder = root / table / f"day={day:%Y-%m-%d}"
    cur.execute(
        "SELECT set_config('obslib.export_lo', $1, true), set_config('obslib.export_hi', $2, true)",
        parameters=(day.isoformat(), (day + timedelta(days=1)).isoformat()),
    )
    cur.fetchall()
    cur.adbc_statement.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(BATCH_BYTES)})
    cur.execute(TABLES[table])
    reader = cur.fetch_record_batch()
    folder.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(folder)
    hidden = folder / f"{HIDDEN}{uuid.uuid4().hex}.tmp"
    rows = 0
    try:
        rows = _write(reader, hidden)
        final = folder / PART
        if rows:
            os.replace(hidden, final)  # atomic: readers see the old file or the new one
            return Partition(table, f"{day:%Y-%m-%d}", rows, final)
        hidden.unlink()
        final.unlink(missing_ok=True)
        _rmdir_if_empty(folder)
        return Partition(table, f"{day:%Y-%m-%d}", 0, None)
    except BaseException:
        hidden.unlink(missing_ok=True)
        raise


def _write(reader: pa.RecordBatchReader, path: Path) -> int:
    """Stream the batches into one Parquet file; returns the rows written."""
    import pyarrow.parquet as pq

    schema = _loader_schema(reader.schema)
    rows = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for batch in reader:
            if batch.num_rows:
                writer.write_batch(batch.cast(schema) if batch.schema != schema else batch)
                rows += batch.num_rows
    return rows


def _loader_schema(schema: pa.Schema) -> pa.Schema:
    """The loaders' types: timestamps as UTC microseconds, text as string."""
    fields = []
    for f in schema:
        kind = f.type
        if pa.types.is_timestamp(kind):
            kind = pa.timestamp("us", tz="UTC")
        elif pa.types.is_large_string(kind):
            kind = pa.string()
        fields.append(pa.field(f.name, kind, nullable=f.nullable))
    return pa.schema(fields)


def _remove_leftovers(folder: Path) -> None:
    """Hidden files an export that died left behind (never a reader's concern). Called only
    under the folder's lock, so no live export is writing any of them."""
    for stale in folder.glob(f"{HIDDEN}*.tmp"):
        stale.unlink(missing_ok=True)


def _rmdir_if_empty(folder: Path) -> None:
    with suppress(OSError):  # something else lives there: leave it
        folder.rmdir()
