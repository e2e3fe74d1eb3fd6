"""Day partitions of spans and logs (migration 0012): list, create, detach and drop them.

``distributed_traces`` (by ``start_time``) and ``structured_logs`` (by ``timestamp``) hold
one partition per UTC day, named ``<table>_pYYYYMMDD``, in the schema ``obslib_partitions``
(``SCHEMA``; names given and returned here are without it). Days are created by the SQL function
``obslib_ensure_day_partitions`` the migration installs (an advisory lock makes racing
writers safe; it runs as the tables' owner, so a writer role need not own them). Retention
detaches a day in its own transaction, keeping the detached table's name, so a rerun after a
crash finds what is left (``detached_days``) and drops it (``drop_detached``).

Every function takes a psycopg connection and runs in its transaction; table names come
from ``TABLES`` (an allow-list) and partition names are checked against their pattern, so no
statement is built from a caller's text.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from psycopg import sql

from obslib import schema
from obslib.errors import UsageError

# the partitioned tables and the column each is partitioned by
TABLES = {schema.SPANS: "start_time", schema.LOGS: "timestamp"}
ENSURE = "obslib_ensure_day_partitions"
SCHEMA = "obslib_partitions"  # where partitions live, apart from the tables people query
_NAME = re.compile(r"^(distributed_traces|structured_logs)_p(\d{4})(\d{2})(\d{2})$")

# The attached partitions of a table, with the schema the table is in.
_ATTACHED = """SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = %s::regclass"""
# Tables in the partitions' schema named like a table's partitions and attached to nothing.
_LOOSE = f"""SELECT c.relname FROM pg_class c
WHERE c.relnamespace = to_regnamespace('{SCHEMA}') AND c.relkind = 'r'
  AND NOT c.relispartition AND c.relname LIKE %s"""


def _checked(table: str) -> str:
    if table not in TABLES:
        raise UsageError(f"{table!r} is not a day-partitioned table ({', '.join(TABLES)})")
    return table


def partition_name(table: str, day: dt.date) -> str:
    """The partition of ``table`` holding ``day``: ``<table>_pYYYYMMDD``."""
    return f"{_checked(table)}_p{day:%Y%m%d}"


def parse_name(name: str) -> tuple[str, dt.date] | None:
    """(table, day) of a partition name, None for any other name."""
    m = _NAME.match(name)
    if not m:
        return None
    try:
        return m.group(1), dt.date(int(m.group(2)), int(m.group(3)), int(m.group(4)))
    except ValueError:  # p20261399: the pattern, not a day
        return None


def qualified(name: str) -> sql.Identifier:
    """The partition ``name`` (a day partition's, checked) with its schema, for a statement
    that names the partition itself (its size, say): ``obslib_partitions.<name>``."""
    if parse_name(name) is None:
        raise UsageError(f"{name!r} is not a day partition's name (<table>_pYYYYMMDD)")
    return sql.Identifier(SCHEMA, name)


def is_partitioned(conn, table: str) -> bool:
    """Whether ``table`` is day-partitioned yet (migration 0012 applied)."""
    row = conn.execute(
        "SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass(%s)", (_checked(table),)
    ).fetchone()
    return bool(row and row[0])


def _days(names: Iterable[str], table: str) -> list[tuple[dt.date, str]]:
    days = []
    for name in names:
        parsed = parse_name(name)
        if parsed and parsed[0] == table:
            days.append((parsed[1], name))
    return sorted(days)


def day_partitions(conn, table: str) -> list[tuple[dt.date, str]]:
    """The attached day partitions of ``table``, oldest first, each with its table name."""
    _checked(table)
    rows = conn.execute(_ATTACHED, (table,)).fetchall()
    return _days((r[0] for r in rows), table)


def ensure_days(conn, table: str, days: Iterable[dt.date]) -> int:
    """Create the missing day partitions of ``table`` for ``days``; returns how many were
    created. Idempotent; two connections racing for the same day both succeed (the second
    waits for the first's transaction and finds the day made)."""
    _checked(table)
    wanted = sorted(set(days))
    if not wanted:
        return 0
    have = {d for d, _ in day_partitions(conn, table)}
    created = 0
    for first, last in day_runs([d for d in wanted if d not in have]):
        row = conn.execute(
            sql.SQL("SELECT {}(%s::regclass, %s, %s)").format(sql.Identifier(ENSURE)),
            (table, first, last),
        ).fetchone()
        created += int(row[0])
    return created


def ensure_sql(table: str, first: dt.date, last: dt.date) -> str:
    """The statement creating ``table``'s missing days ``first``..``last`` (for a
    connection that is not psycopg's, an ADBC writer's): fixed text, the dates as ISO."""
    return (
        f"SELECT {ENSURE}('{_checked(table)}'::regclass,"
        f" '{first.isoformat()}'::date, '{last.isoformat()}'::date)"
    )


def attached_sql(table: str) -> str:
    """``day_partitions``' query as fixed text (for an ADBC writer's connection)."""
    return _ATTACHED.replace("%s", f"'{_checked(table)}'")


def day_runs(days: list[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Sorted days as runs of consecutive days, (first, last) each."""
    runs: list[tuple[dt.date, dt.date]] = []
    for day in days:
        if runs and day - runs[-1][1] == dt.timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def detach_day(conn, table: str, day: dt.date) -> str | None:
    """Detach ``day``'s partition of ``table`` in the caller's transaction (it takes an
    ACCESS EXCLUSIVE lock on ``table`` until the commit); return the detached table's name,
    which it keeps, or None when there is no such partition."""
    name = partition_name(table, day)
    if all(n != name for _, n in day_partitions(conn, table)):
        return None
    conn.execute(
        sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(
            sql.Identifier(table), sql.Identifier(SCHEMA, name)
        )
    )
    return name


def detached_days(conn, table: str) -> list[tuple[dt.date, str]]:
    """Partitions of ``table`` detached and not yet dropped (a retention run cut short),
    oldest first: tables named like its partitions that are attached to nothing."""
    _checked(table)
    rows = conn.execute(_LOOSE, (f"{table}\\_p%",)).fetchall()
    return _days((r[0] for r in rows), table)


def drop_detached(conn, name: str) -> None:
    """Drop the detached partition table ``name``. Refuses any name that is not a day
    partition's, and a partition still attached (detach it first)."""
    parsed = parse_name(name)
    if parsed is None:
        raise UsageError(f"{name!r} is not a day partition's name (<table>_pYYYYMMDD)")
    table = parsed[0]
    if name not in {n for _, n in detached_days(conn, table)}:
        attached = name in {n for _, n in day_partitions(conn, table)}
        state = "still attached" if attached else "no detached partition"
        raise UsageError(f"{name}: {state}; nothing dropped")
    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(SCHEMA, name)))
