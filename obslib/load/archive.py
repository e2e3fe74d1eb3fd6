"""The Parquet archive of retired days (``obslib db retain``): key checksums, the catalog of
archived days, and the cold half of a window the loaders read.

A day is archived with ``obslib.load.export`` (same Hive layout: ``<archive>/spans/
day=YYYY-MM-DD/part-0.parquet``). Two checks guard it:

- the **key checksum** compares a file with the partition it came from: the row count and
  the sum, as an exact integer, of each key's first 64 bits of MD5 read as a signed
  big-endian integer (the key: ``trace_id || ' ' || span_id`` for spans, ``log_id`` for
  logs). PostgreSQL computes it with ``('x' || left(md5(key), 16))::bit(64)::bigint``,
  Python with ``hashlib``: the same number, whatever the row order, with no 1 GB string;
- the file's **SHA-256**, recorded in the catalog with it, is checked before every read of
  an archived day (once per file and process while its size and mtime stay), so a file that
  changed or went missing is named in a one-line error, never read as if whole.

The catalog (``archived_days``, migration 0013) says which days were detached from their
table: those, and only those, are read from the archive. A loader reads the catalog, then
the hot rows, then the catalog again, and starts over if a ``retain`` changed it in between:
the days it reads cold and the rows it reads hot are then one consistent state.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TypeVar

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from obslib.errors import ObslibError
from obslib.storage import db
from obslib.values import json_value

ENV_ARCHIVE = "OBSLIB_ARCHIVE"
# the export's table names -> PostgreSQL's, their keys and the column that places a row in
# its day
TABLES = {"spans": "distributed_traces", "logs": "structured_logs"}
KEYS = {"spans": ("trace_id", "span_id"), "logs": ("log_id",)}
DAY_COLUMN = {"spans": "start_time", "logs": "timestamp"}
T = TypeVar("T")
_KEY_SQL = {"spans": "trace_id || ' ' || span_id", "logs": "log_id"}


def checksum_sql(table: str, relation: str) -> str:
    """``SELECT count(*), checksum`` over ``relation`` (an identifier already quoted by the
    caller, from an allow-list) for the rows of one day: two parameters, the day's bounds."""
    key = _KEY_SQL[table]
    column = DAY_COLUMN[table]
    return (
        f"SELECT count(*), coalesce(sum(('x' || left(md5({key}), 16))::bit(64)::bigint), 0)"
        f" FROM {relation} WHERE {column} >= %s AND {column} < %s"
    )


def key_checksum(keys: pa.Table, table: str) -> int:
    """The key checksum of these rows (``checksum_sql``'s, computed in Python)."""
    if keys.num_rows == 0:
        return 0
    if table == "spans":
        texts = pc.binary_join_element_wise(keys["trace_id"], keys["span_id"], " ")
    else:
        texts = keys["log_id"]
    md5 = hashlib.md5
    from_bytes = int.from_bytes
    total = 0
    for text in texts.to_pylist():
        total += from_bytes(md5(text.encode()).digest()[:8], "big", signed=True)
    return total


def file_checksum(path: Path, table: str) -> tuple[int, int]:
    """Rows and key checksum of one archived file, read back from disk."""
    import pyarrow.parquet as pq

    keys = pq.read_table(path, columns=list(KEYS[table]))
    return keys.num_rows, key_checksum(keys, table)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ColdDay:
    """One archived day the loaders read from its file."""

    table: str  # spans | logs
    day: date
    path: Path
    rows: int
    sha256: str


class ArchiveUnreadable(ObslibError):
    """An archived day whose file is missing or no longer what was verified."""


# -- the catalog, as the loaders see it ------------------------------------------------------

_CATALOG = """SELECT day::text, archive, file, rows, sha256 FROM archived_days
WHERE table_name = $1 AND detached_at IS NOT NULL AND rows > 0
  AND day >= ($2::timestamptz AT TIME ZONE 'UTC')::date
  AND day < $3::timestamptz AT TIME ZONE 'UTC'
ORDER BY day"""
_FAR = ("0001-01-01T00:00:00+00", "9999-12-31T00:00:00+00")


def cold_days(
    table: str,
    lo: datetime | None,
    hi: datetime | None,
    *,
    archive: str | Path | None = None,
    url: str | None = None,
) -> list[ColdDay]:
    """The detached days of ``table`` the window ``[lo, hi)`` touches (None: open), each with
    its file under ``archive`` (default ``$OBSLIB_ARCHIVE``, else the folder the catalog
    recorded). A database without the catalog (before migration 0013) has none."""
    import adbc_driver_manager

    params = (
        TABLES[table],
        _FAR[0] if lo is None else lo.isoformat(),
        _FAR[1] if hi is None else hi.isoformat(),
    )

    def read(conn) -> list[tuple]:
        with conn.cursor() as cur:
            cur.execute(_CATALOG, parameters=params)
            return cur.fetchall()

    try:
        rows = db.adbc_read(read, url)
    except adbc_driver_manager.Error as err:
        if getattr(err, "sqlstate", None) == "42P01":  # no catalog: nothing was archived
            return []
        raise ObslibError(f"reading the archive catalog failed: {db.first_line(err)}") from err
    root = archive if archive is not None else os.environ.get(ENV_ARCHIVE, "").strip() or None
    return [
        ColdDay(table, date.fromisoformat(day), Path(root or folder) / file, n, sha)
        for day, folder, file, n, sha in rows
    ]


def consistent(
    table: str,
    lo: datetime | None,
    hi: datetime | None,
    read: Callable[[list[ColdDay]], T],
    *,
    archive: str | Path | None,
    url: str | None,
) -> tuple[T, list[ColdDay]]:
    """``read(days)`` (the hot rows, and whatever it takes from the cold ``days``) as one
    consistent state: the catalog read before and after it must agree, else it is read once
    more (a ``retain`` detached a day in between)."""
    before = cold_days(table, lo, hi, archive=archive, url=url)
    for _ in range(5):
        result = read(before)
        after = cold_days(table, lo, hi, archive=archive, url=url)
        if after == before:
            return result, before
        before = after
    raise ObslibError(f"the archive catalog of {table} kept changing while it was read")


def with_cold(
    table: str,
    lo: datetime | None,
    hi: datetime | None,
    hot: Callable[[], pa.Table],
    cold: Callable[[list[ColdDay]], pa.Table | None],
    *,
    archive: str | Path | None,
    url: str | None,
) -> tuple[pa.Table, list[ColdDay]]:
    """The hot rows (``hot()``) and the cold ones (``cold(days)``) as one consistent state
    (``consistent``), the cold ones cast to the hot ones' schema and appended."""
    rows, days = consistent(table, lo, hi, lambda _: hot(), archive=archive, url=url)
    extra = cold(days) if days else None
    if extra is None or extra.num_rows == 0:
        return rows, days
    return pa.concat_tables([rows, extra.select(rows.column_names).cast(rows.schema)]), days


def each_day(
    days: Sequence[ColdDay],
    columns: Sequence[str],
    condition: pc.Expression | None,
    optional: Sequence[str] = (),
) -> Iterator[pa.Table]:
    """The ``columns`` of each cold day's rows that meet ``condition``, one day at a time (an
    aggregate over a long window never holds more than a day of a few columns), plus those
    of ``optional`` the day's file has (a column added since the day was archived, such as
    0015's sampling probability, is left out of an older file's rows)."""
    import pyarrow.parquet as pq

    for day in days:
        path = checked_path(day)
        wanted = list(columns)
        if optional:
            present = set(pq.read_schema(path).names)
            wanted += [c for c in optional if c in present and c not in wanted]
        yield pq.read_table(path, columns=wanted, filters=condition)


def regroup(table: pa.Table, keys: Sequence[str], how: Mapping[str, str]) -> pa.Table:
    """Rows with equal ``keys`` as one row, each other column combined by its ``how``
    (``sum``, ``min`` or ``max``): partial aggregates (the hot rows', each cold day's) merged
    as one GROUP BY over all their rows would give them; columns in ``table``'s order."""
    out = table.group_by(list(keys), use_threads=False).aggregate(list(how.items()))
    named = {f"{column}_{fn}": column for column, fn in how.items()}
    out = out.rename_columns([named.get(c, c) for c in out.column_names])
    return out.select(table.column_names).cast(table.schema)


_verified: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> its SHA-256


def checked_path(day: ColdDay) -> Path:
    """The day's file, after checking it is there and still the file that was verified."""
    what = f"archived {day.table} day {day.day} ({day.path})"
    try:
        info = day.path.stat()
    except OSError:
        raise ArchiveUnreadable(
            f"{what} is missing: set OBSLIB_ARCHIVE or archive= to the archive folder"
        ) from None
    stamp = (str(day.path), info.st_size, info.st_mtime_ns)
    digest = _verified.get(stamp) or sha256_of(day.path)
    if digest != day.sha256:
        raise ArchiveUnreadable(f"{what} no longer matches its checksum: it changed since retain")
    _verified[stamp] = digest
    return day.path


def read_days(
    days: Sequence[ColdDay],
    condition: pc.Expression | None,
    tag_columns: Sequence[str] = (),
) -> pa.Table | None:
    """The rows of the cold days that meet ``condition`` (the loaders' filters), with one
    ``tag_<i>`` text column per tag key as ``tags ->> key`` gives it."""
    import pyarrow.parquet as pq

    tables = [pq.read_table(checked_path(d), filters=condition) for d in days]
    if not tables:
        return None
    out = pa.concat_tables(tables, promote_options="permissive")
    for i, key in enumerate(tag_columns):
        out = out.append_column(f"tag_{i}", pa.array(_tag_texts(out["tags"], key), pa.string()))
    return out


def _tag_texts(tags: pa.ChunkedArray, key: str) -> list[str | None]:
    """``tags ->> key`` in Python: a string as itself, JSON null or absent as None, anything
    else as its JSON text in jsonb's spelling (``", "`` and ``": "``; the stored text is
    jsonb's, so key order is kept). One difference is left: a number jsonb keeps as written
    (``1.50``, ``1e3``) reads back as Python spells it (``1.5``, ``1000.0``)."""
    import json

    out: list[str | None] = []
    for text in tags.to_pylist():
        value = json_value(text) if text else None
        value = value.get(key) if isinstance(value, dict) else None
        if value is None or isinstance(value, str):
            out.append(value)
        else:
            out.append(json.dumps(value, ensure_ascii=False))
    return out


def condition(
    window: tuple[str, datetime | None, datetime | None],
    members: Iterable[tuple[str, list[str] | None]] = (),
    equal: Iterable[tuple[str, str | None]] = (),
    null: str | None = None,
) -> pc.Expression | None:
    """The loaders' WHERE clause as an Arrow filter: ``column`` within ``[lo, hi)``, each
    column in its list (None: no condition), equal to its value, and ``null`` missing."""
    column, lo, hi = window
    parts: list[pc.Expression] = []
    field = pc.field
    if lo is not None:
        parts.append(field(column) >= pa.scalar(lo, pa.timestamp("us", tz="UTC")))
    if hi is not None:
        parts.append(field(column) < pa.scalar(hi, pa.timestamp("us", tz="UTC")))
    for name, values in members:
        if values is not None:
            parts.append(field(name).isin(pa.array(values, pa.string())))
    for name, value in equal:
        if value is not None:
            parts.append(field(name) == value)
    if null is not None:
        parts.append(field(null).is_null())
    if not parts:
        return None
    out = parts[0]
    for part in parts[1:]:
        out = out & part
    return out


# -- one trace: the catalog in the trace's own statement, and each day's trace ids ----------


def catalog_json(table: str) -> str:
    """A scalar sub-select giving the detached days of ``table`` (every day, as for a trace)
    as ``_CATALOG`` reads them, in one JSON text: a loader puts it in its own statement, so
    the hot rows and the catalog are read in one snapshot and one round trip. (The table's
    name comes from ``TABLES``, never from a caller's text.)"""
    return (
        "SELECT coalesce(json_agg(json_build_array(day::text, archive, file, rows, sha256)"
        " ORDER BY day), '[]')::text FROM archived_days"
        f" WHERE table_name = '{TABLES[table]}' AND detached_at IS NOT NULL AND rows > 0"
    )


def days_from_json(
    table: str, text: str | None, *, archive: str | Path | None = None
) -> list[ColdDay]:
    """``catalog_json``'s days as ``cold_days`` gives them (the same folder rule)."""
    root = archive if archive is not None else os.environ.get(ENV_ARCHIVE, "").strip() or None
    return [
        ColdDay(table, date.fromisoformat(day), Path(root or folder) / file, n, sha)
        for day, folder, file, n, sha in orjson.loads(text or "[]")
    ]


_trace_ids: dict[tuple[str, int, int], pa.Array] = {}  # (path, size, mtime_ns) -> trace ids


def days_with_trace(days: Sequence[ColdDay], trace_id: str) -> list[ColdDay]:
    """The cold ``days`` whose file holds a span of ``trace_id``: each file's distinct trace
    ids are read once per process (its ``trace_id`` column only, kept while its size and time
    stay, like its checked SHA-256), so a trace lookup reads only the days it is in."""
    import pyarrow.parquet as pq

    out = []
    for day in days:
        path = checked_path(day)
        info = path.stat()
        stamp = (str(path), info.st_size, info.st_mtime_ns)
        ids = _trace_ids.get(stamp)
        if ids is None:
            column = pq.read_table(path, columns=["trace_id"])["trace_id"]
            ids = _trace_ids[stamp] = pc.unique(column.combine_chunks().cast(pa.string()))
        if pc.index(ids, pa.scalar(trace_id, pa.string())).as_py() >= 0:
            out.append(day)
    return out
