"""``obslib db retain``'s second part: pack the indexes of the finished days it keeps.

The writers insert in hash and random time order, so a day's B-trees split pages as they
fill and grow about a third empty (at 3M demo spans 92.6 bytes per span of indexes, 72.7
with every day rebuilt). A day that has ended receives almost no writes, so rebuilding its
indexes once keeps them packed. For each **finished day** (``finished``: a whole UTC day
that ended at or before now) that the horizon keeps, spans and logs, not packed yet:

1. drop what an interrupted ``REINDEX CONCURRENTLY`` left on the day (``leftovers``: its
   invalid ``*_ccnew``/``*_ccold`` copies, the partition's or its TOAST table's);
2. ``REINDEX TABLE CONCURRENTLY`` the day's partition (autocommit: it cannot run in a
   transaction block; writers and readers of the day go on meanwhile, PostgreSQL's
   documentation, "Rebuilding Indexes Concurrently");
3. record it in ``packed_days`` (migration 0019) with the index bytes before and after.

A packed day is packed again only when its indexes have grown by more than
``REPACK_GROWTH`` since (``needs_pack``): late or backfilled rows, known from
``pg_indexes_size`` (file sizes, no scan). A day whose REINDEX fails (a lock not granted
within ``LOCK_TIMEOUT``, say) is named and left as it was, its leftovers dropped; retention
is done by then and its exit code is unchanged. One run at a time: retain's advisory lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import psycopg
from psycopg import sql

from obslib import schema
from obslib.errors import UsageError
from obslib.jobs.retain import LOCK_KEY, Horizon
from obslib.jobs.retain import check_schema as check_schema_for_retention
from obslib.load import archive as arch
from obslib.storage import db, partitions

logger = logging.getLogger(__name__)

# A packed day is packed again once its indexes hold this much more than right after its
# REINDEX: late rows split the packed pages, and a quarter is worth a rebuild of the day.
REPACK_GROWTH = 0.25
# How long each wait for a lock (REINDEX CONCURRENTLY waits for the transactions using
# the day, and for older snapshots) may last before the day is left for the next run.
LOCK_TIMEOUT = "60s"

# Each attached day partition of a table with its index bytes.
_SIZES = """SELECT c.relname, pg_indexes_size(c.oid) FROM pg_inherits h
JOIN pg_class c ON c.oid = h.inhrelid WHERE h.inhparent = %s::regclass"""
# What an interrupted REINDEX CONCURRENTLY leaves on a partition (or its TOAST table): an
# invalid index named <index>_ccnew (the copy being built) or _ccold (the one it replaced),
# with a number when the name was taken.
_LEFTOVERS = """SELECT c.relname, n.nspname, ic.relname FROM pg_inherits h
JOIN pg_class c ON c.oid = h.inhrelid
JOIN pg_index i ON i.indrelid = c.oid OR i.indrelid = c.reltoastrelid
JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
WHERE h.inhparent = %s::regclass AND NOT i.indisvalid AND ic.relname ~ '_cc(new|old)[0-9]*$'"""
_RECORD = """INSERT INTO packed_days (table_name, day, packed_at, bytes_before, bytes_after)
VALUES (%s, %s, now(), %s, %s) ON CONFLICT (table_name, day) DO UPDATE SET
packed_at = EXCLUDED.packed_at, bytes_before = EXCLUDED.bytes_before,
bytes_after = EXCLUDED.bytes_after"""


@dataclass(frozen=True)
class PackResult:
    """What happened (or, in a dry run, would happen) to one day's indexes."""

    table: str  # spans | logs
    day: date
    action: str  # packed | repacked | would pack | would repack
    bytes_before: int  # the day's index bytes (pg_indexes_size), leftovers included
    bytes_after: int | None = None
    leftovers: int = 0  # invalid indexes of an interrupted REINDEX, dropped first
    problem: str | None = None  # set: the day was not packed, and why


def finished(day: date, now: datetime) -> bool:
    """Whether ``day`` is a whole UTC day that ended at or before ``now``."""
    return day < now.astimezone(UTC).date()


def needs_pack(index_bytes: int, packed_bytes: int | None) -> bool:
    """Whether a finished day's indexes are worth rebuilding: never packed
    (``packed_bytes`` None), or grown by more than ``REPACK_GROWTH`` since."""
    return packed_bytes is None or index_bytes > packed_bytes * (1 + REPACK_GROWTH)


def check_schema(url: str | None = None) -> None:
    """A UsageError (exit 2) unless the database is ready for retention (``retain``'s check,
    first) and has the packing catalog (0019)."""
    with db.connection(url) as conn:
        check_schema_for_retention(conn)
        (ready,) = conn.execute(
            "SELECT to_regclass(%s) IS NOT NULL", (schema.PACKED_DAYS,)
        ).fetchone()
    if not ready:
        raise UsageError(
            "the database is not ready for packing (no packed_days): run `obslib db up`,"
            " or retain with --no-pack"
        )


def pack(
    horizon: Horizon,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    url: str | None = None,
    on_day: Callable[[PackResult], None] | None = None,
    lock_timeout: str = LOCK_TIMEOUT,
) -> list[PackResult]:
    """Pack every finished day the horizon keeps that needs it (see the module docstring);
    one result per day, in table then day order."""
    now = now or datetime.now(UTC)
    results: list[PackResult] = []
    with db.connection(url, autocommit=True) as conn:
        conn.execute("SELECT set_config('lock_timeout', %s, false)", (lock_timeout,))
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            for table, pg_table in arch.TABLES.items():
                if conn.broken:
                    break  # the session was lost (terminated, say): the next run goes on
                for result in _pack_table(conn, table, pg_table, horizon.of(table), now, dry_run):
                    results.append(result)
                    if on_day is not None:
                        on_day(result)
        finally:
            if not conn.broken:  # else the lock went with the session
                conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return results


def _pack_table(conn, table, pg_table, first_kept, now, dry_run):
    packed = dict(
        conn.execute(
            "SELECT day, bytes_after FROM packed_days WHERE table_name = %s", (pg_table,)
        ).fetchall()
    )
    sizes = dict(conn.execute(_SIZES, (pg_table,)).fetchall())
    leftovers: dict[str, list[tuple[str, str]]] = {}
    for name, nsp, index in conn.execute(_LEFTOVERS, (pg_table,)).fetchall():
        leftovers.setdefault(name, []).append((nsp, index))
    for day, name in partitions.day_partitions(conn, pg_table):
        if day < first_kept or not finished(day, now):
            continue  # retention's, or a day still being written
        left = leftovers.get(name, [])
        before = int(sizes.get(name) or 0)
        if not left and not needs_pack(before, packed.get(day)):
            continue
        again = day in packed
        if dry_run:
            yield PackResult(table, day, "would repack" if again else "would pack", before,
                             leftovers=len(left))  # fmt: skip
            continue
        yield _pack_day(conn, table, pg_table, day, name, left, before, again)
        if conn.broken:
            return


def _pack_day(conn, table, pg_table, day, name, left, before, again) -> PackResult:
    try:
        _drop_leftovers(conn, left)
        conn.execute(sql.SQL("REINDEX TABLE CONCURRENTLY {}").format(partitions.qualified(name)))
    except psycopg.Error as err:
        problem = f"{table} {day}: REINDEX failed ({db.first_line(err)}); left as it was"
        if conn.broken:  # the session was lost: nothing more to do in it
            problem += " (the session was lost: packing stopped)"
        else:  # what the failed REINDEX left, if anything; else the next run drops it
            try:
                _drop_leftovers(conn, conn.execute(_LEFTOVERS, (pg_table,)).fetchall(), name)
            except psycopg.Error as again:
                logger.warning("%s %s: leftovers not dropped: %s", table, day,
                               db.first_line(again))  # fmt: skip
        logger.warning("%s", problem)
        return PackResult(table, day, "not packed", before, leftovers=len(left), problem=problem)
    (after,) = conn.execute(
        "SELECT pg_indexes_size(to_regclass(%s))", (partitions.qualified(name).as_string(conn),)
    ).fetchone()
    conn.execute(_RECORD, (pg_table, day, before, int(after)))
    action = "repacked" if again else "packed"
    return PackResult(table, day, action, before, int(after), leftovers=len(left))


def _drop_leftovers(conn, indexes, of: str | None = None) -> None:
    """Drop invalid REINDEX copies: (schema, index) pairs, or the rows of ``_LEFTOVERS``
    of the partition ``of``."""
    if of is not None:
        indexes = [(nsp, index) for name, nsp, index in indexes if name == of]
    for nsp, index in indexes:
        conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(
            sql.Identifier(nsp, index)))  # fmt: skip
