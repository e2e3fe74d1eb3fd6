"""Bulk writers: stage a batch in temporary tables with ADBC, merge it in one transaction.

Which row wins, and what is reported (never silent):

- A key already stored keeps its stored row (first stored wins). Writing the same row again
  is idempotent and quiet (0 new); a row with the same key but other content is a
  *conflict*: it is not written, it is counted with its key in ``Batch.conflicts`` and in the
  returned ``Written.conflicts``, and a warning is logged.
- Within one write, rows with the same key and the same content collapse into one; rows with
  the same key and different content are an InputError naming the key and both rows.

Rows are checked before PostgreSQL sees them (frames.py), so bad input fails with its row and
column named (InputError, exit 2); what the database itself fails at (lost connection, disk
full, a deadlock retries did not clear) is a DatabaseError (exit 1). Any failure rolls back
the whole batch.

Concurrent writers of the same rows cannot deadlock each other: every merge inserts in key
order (ORDER BY the key, bytewise), and a batch of several writes merges its spans and logs
when it commits, all its spans first and then all its logs (``DEFERRED``), whatever order
they were written in: two batches then take their row locks in one order. (Merged write by
write, a batch holding the spans another needs while waiting for logs that one holds was a
deadlock no retry could clear.) Until then a write's rows wait in a temporary table (with the
table's NOT NULL and CHECK constraints, so a row the table would refuse fails its write), and
what it returns is measured against the stored rows and the batch's earlier writes. If
another writer stores the same keys before the commit, first stored wins there too: the
commit corrects ``Batch.written`` / ``Batch.conflicts``, logs a warning and leaves the rows it
found late in ``Batch.late`` (identical ones, and each conflict with its key and the ``TAG``
it was written with), for the caller to report (``store.settle``). A deadlock or
serialization failure that happens anyway (with another program's writes) is retried in a
subtransaction, which is safe because the merge is idempotent.

ADBC's bulk ingest is the fastest path measured into PostgreSQL (when it was chosen, into the
plain table of then: 7.5 s per 1M spans direct, 13 s staged and merged, against 65 s for
DataFrame.to_sql; today's merge into day partitions, three indexes and tag sets:
``bench/ingest.py --breakdown``, README "Performance"); staging also sidesteps its type traps
(no float -> NUMERIC, no text -> JSONB) because PostgreSQL does those casts in the merge.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from obslib import schema
from obslib.errors import DatabaseError, InputError, ObslibError
from obslib.ingest import records, tables
from obslib.ingest.frames import JSON, check_number, json_default, to_arrow
from obslib.ingest.tables import (
    ALERT_SPEC,
    INCIDENT_SPEC,
    LOG_SPEC,
    MEASUREMENT_SPEC,
    SLO_SPEC,
    SPAN_SPEC,
    Target,
)
from obslib.schema import require_columns
from obslib.storage import db, partitions

logger = logging.getLogger(__name__)

# A given duration_ms must match end - start to the microsecond (the times' resolution).
DURATION_TOLERANCE_MS = 0.001 + 1e-9
# SQLSTATEs worth retrying: deadlock_detected, serialization_failure.
RETRY_STATES = {"40P01": "a deadlock", "40001": "a serialization failure"}
RETRIES = 5
# SQLSTATE classes that mean the rows were bad (data exception, integrity violation); the
# writer's own checks should catch these first, any other class is the database failing.
INPUT_CLASSES = ("22", "23")

# The merge statement of each kind (kept for the ingest benchmark's stage breakdown).
_MERGE = {kind: target.merge for kind, target in tables.TARGETS.items()}
# Kinds a batch merges at commit, in this order (nothing else refers to them, so nothing in
# the batch needs them stored earlier); the other kinds merge at once, as their writers
# (measurements name SLOs, incidents alerts) need what the batch wrote before.
DEFERRED = ("spans", "logs")


@dataclass(frozen=True)
class Conflicts:
    """Rows not written because their key was already stored with other content.

    ``keys`` lists the first few keys (as the frame spells them, in key order); ``count`` is
    the number of distinct conflicting keys of one write, summed over a batch's writes.
    """

    count: int = 0
    keys: tuple[tuple[Any, ...], ...] = ()

    def __bool__(self) -> bool:
        return self.count > 0

    def __add__(self, other: Conflicts) -> Conflicts:
        keys = (self.keys + other.keys)[: tables.MAX_KEYS]
        return Conflicts(self.count + other.count, keys)


NO_CONFLICTS = Conflicts()


@dataclass(frozen=True)
class Late:
    """A batch's rows of one kind that another writer stored between their write and the
    commit (first stored wins, so they were not written): ``count`` in all, of which
    ``conflicts`` had other content; the rest were identical. ``tags`` holds the ``TAG``
    each conflict's row was written with (None: none given), in the order of its keys."""

    count: int = 0
    conflicts: Conflicts = NO_CONFLICTS
    tags: tuple[str | None, ...] = ()

    @property
    def identical(self) -> int:
        return self.count - self.conflicts.count

    def __bool__(self) -> bool:
        return self.count > 0


class Written(int):
    """How many rows a write stored new (an int), with the ``conflicts`` it kept out."""

    conflicts: Conflicts

    def __new__(cls, new: int, conflicts: Conflicts = NO_CONFLICTS) -> Written:
        written = super().__new__(cls, new)
        written.conflicts = conflicts
        return written


def _all_or_nothing(
    write: Callable[[Batch, pd.DataFrame], Written],
) -> Callable[[Batch, pd.DataFrame], Written]:
    """A failed write poisons its batch: later writes are refused and nothing commits, even
    when the caller catches the error and carries on."""

    @functools.wraps(write)
    def guarded(self: Batch, frame: pd.DataFrame) -> Written:
        if self.failed:
            raise self.failure_class(f"this batch already failed ({self.failed}); start a new one")
        try:
            return write(self, frame)
        except Exception as err:
            self.failed = str(err)
            self.failure = err
            raise

    return guarded


class Batch:
    """Writes of one transaction: everything in a ``with batch()`` block lands, or nothing.

    ``written`` counts new rows per kind; ``conflicts`` holds, per kind, the rows kept out
    because their key was already stored with other content; ``late``, once committed, the
    rows of the kinds merged at commit that another writer stored first (``Late``).

    A frame given to ``spans`` or ``logs`` may carry a text column ``TAG`` naming each row
    (where it came from): a row the commit finds late is reported with it.
    """

    def __init__(
        self,
        conn,
        *,
        every_conflict: bool = False,
        one_write: bool = False,
        url: str | None = None,
    ) -> None:
        self._conn = conn
        self._conflict_limit = None if every_conflict else tables.MAX_KEYS
        # one write holds no lock before it, so it cannot close a cycle: it merges at once
        self._defer = () if one_write else DEFERRED
        self._pending: dict[str, int] = {}  # kind -> rows waiting for the commit
        self.written: dict[str, int] = {}
        self.conflicts: dict[str, Conflicts] = {}
        self.late: dict[str, Late] = {}
        self.failed: str | None = None  # once a write failed, the transaction is lost
        self.failure: Exception | None = None
        self._targets: dict[str, Target] = {}  # kind -> target as this database has it
        self._days: dict[str, set[dt.date]] = {}  # table -> days known to have a partition
        self._touched: set[str] = set()  # partitioned tables this batch has read
        self._url = url  # for a connection of its own that makes day partitions

    @property
    def failure_class(self) -> type[ObslibError]:
        """A batch lost to the database stays a database failure, not bad input."""
        return DatabaseError if isinstance(self.failure, DatabaseError) else InputError

    @_all_or_nothing
    def spans(self, frame: pd.DataFrame) -> Written:
        """Stage and merge spans. ``duration_ms`` is end - start: derived when missing,
        checked against the times when given; zero-length spans are legal.

        Spans meet the importers' rules whoever writes them (``records.check_span_table``):
        hex ids of 16 (trace) and 8 (span, parent) bytes, never all zeros, stored lowercase;
        times after 1970 and before 2262; tags a JSON object and logs a JSON array."""
        table = to_arrow(frame, SPAN_SPEC, "spans")
        try:
            table = records.check_span_table(table)
        except records.RecordError as err:
            raise InputError(f"spans {err}") from None
        start, end = table["start_time"], table["end_time"]
        before = pc.fill_null(pc.less(end, start), False).to_numpy(zero_copy_only=False)
        if before.any():
            raise InputError(
                f"spans row {int(before.nonzero()[0][0])}: end_time is before start_time"
            )
        micros = pc.subtract(end.cast(pa.int64()), start.cast(pa.int64())).cast(pa.float64())
        derived = pc.divide(micros, 1000.0)
        given = table["duration_ms"]
        off = pc.greater(pc.abs(pc.subtract(given, derived)), DURATION_TOLERANCE_MS)
        off = pc.fill_null(off, False).to_numpy(zero_copy_only=False)
        if off.any():
            row = int(off.nonzero()[0][0])
            raise InputError(
                f"spans row {row}: duration_ms {given[row].as_py()} disagrees with"
                f" end_time - start_time ({derived[row].as_py()} ms)"
            )
        kept = table[schema.SAMPLING_PROBABILITY]
        odd = pc.invert(pc.and_(pc.greater(kept, 0.0), pc.less_equal(kept, 1.0)))
        odd = pc.fill_null(odd, False).to_numpy(zero_copy_only=False)
        if odd.any():
            row = int(odd.nonzero()[0][0])
            raise InputError(
                f"spans row {row}: {schema.SAMPLING_PROBABILITY} {kept[row].as_py()} is not"
                " a probability in (0, 1]"
            )
        duration_col = next(c for c in SPAN_SPEC if c.name == "duration_ms")
        check_number(derived, duration_col, "spans")  # a span too long for NUMERIC(15,3)
        table = table.set_column(
            table.schema.get_field_index("duration_ms"), "duration_ms", derived
        )
        return self._write(tables.SPANS, table, frame)

    @_all_or_nothing
    def logs(self, frame: pd.DataFrame) -> Written:
        """Stage and merge log records; a missing ``log_id`` is a hash of the whole record."""
        if "level" in frame.columns:
            frame = frame.assign(
                level=frame["level"]
                .astype("string")
                .str.lower()
                .replace({"warning": "warn", "critical": "fatal"})
            )
        if "log_id" not in frame.columns or frame["log_id"].isna().any():
            derived = pd.Series(_log_ids(frame), index=frame.index, dtype=object)
            given = frame["log_id"] if "log_id" in frame.columns else None
            frame = frame.assign(log_id=derived if given is None else given.fillna(derived))
        return self._write(tables.LOGS, to_arrow(frame, LOG_SPEC, "logs"), frame)

    @_all_or_nothing
    def slos(self, frame: pd.DataFrame) -> Written:
        """Stage and merge SLO definitions, keyed by (service_name, slo_name)."""
        return self._write(tables.SLOS, to_arrow(frame, SLO_SPEC, "slos"))

    @_all_or_nothing
    def slo_measurements(self, frame: pd.DataFrame) -> Written:
        """Measurements name their SLO by (service_name, slo_name); the period is in seconds."""
        if "measurement_period" in frame.columns and "measurement_period_s" not in frame.columns:
            seconds = pd.to_timedelta(frame["measurement_period"]).dt.total_seconds()
            frame = frame.assign(measurement_period_s=seconds)
        return self._write(
            tables.MEASUREMENTS, to_arrow(frame, MEASUREMENT_SPEC, "slo_measurements")
        )

    @_all_or_nothing
    def alert_definitions(self, frame: pd.DataFrame) -> Written:
        """Stage and merge alert definitions, keyed by ``alert_name``."""
        return self._write(tables.ALERTS, to_arrow(frame, ALERT_SPEC, "alert_definitions"))

    @_all_or_nothing
    def incidents(self, frame: pd.DataFrame) -> Written:
        """Incidents name their alert by ``alert_name`` (resolved to ``alert_id``)."""
        return self._write(tables.INCIDENTS, to_arrow(frame, INCIDENT_SPEC, "incidents"))

    @_all_or_nothing
    def resolve_incidents(self, frame: pd.DataFrame) -> Written:
        """Close still-open incidents (``incident_id``, ``resolved_at``, ``resolved_by``) as
        ``auto_resolved``: what an evaluator does when the condition it opened them for has
        ended. An incident already resolved or acknowledged-and-resolved stays as it is."""
        import adbc_driver_manager

        require_columns(frame, ("incident_id", "resolved_at", "resolved_by"), "resolutions")
        done = 0
        with self._conn.cursor() as cur:
            try:
                for row in frame.to_dict("records"):
                    cur.execute(
                        _RESOLVE, (row["incident_id"], row["resolved_at"], row["resolved_by"])
                    )
                    done += int(cur.rowcount or 0)
            except adbc_driver_manager.Error as err:
                raise database_error("incidents", err) from err
        self.written["resolved"] = self.written.get("resolved", 0) + done
        return Written(done)

    def _write(self, target: Target, table: pa.Table, frame: pd.DataFrame | None = None) -> Written:
        import adbc_driver_manager

        if table.num_rows == 0:
            return Written(0)
        table = table.append_column(tables.ROW, pa.array(np.arange(table.num_rows)))
        table = table.append_column(tables.TAG, _tags(frame, table.num_rows, target.kind))
        kind = target.kind
        # On any error the caller's batch rolls back, which also drops the staging table.
        with self._conn.cursor() as cur:
            try:
                target = self._target(cur, target)
                if target.partition_key:
                    self._ensure_days(cur, target, table[target.partition_key])
                cur.adbc_ingest(tables.STAGE, table, mode="create", temporary=True)
                if target.unresolved:
                    cur.execute(target.unresolved)
                    row = cur.fetchone()
                    if row:
                        raise InputError(f"{kind}: {row[0]!r} names no stored definition")
                deferred = kind in self._defer
                if deferred and kind not in self._pending:
                    cur.execute(target.create_pending)
                    self._pending[kind] = 0
                statement = target.hold if deferred else target.merge
                if target.lock and not deferred:
                    cur.execute(target.lock)
                inserted = _merge(cur, target, statement)
                conflicts = NO_CONFLICTS
                if inserted < table.num_rows:  # fewer new rows than given: say why
                    refuse_differing_duplicates(table, target)
                    listing = (
                        target.pending_conflicts(self._conflict_limit)
                        if deferred
                        else target.conflicts_listing(self._conflict_limit)
                    )
                    conflicts = _conflicts(cur, listing)
                if deferred:
                    self._pending[kind] += inserted
                cur.execute(f"DROP TABLE {tables.STAGE}")
            except adbc_driver_manager.Error as err:
                raise database_error(kind, err) from err
        self.written[kind] = self.written.get(kind, 0) + inserted
        if conflicts:
            self.conflicts[kind] = self.conflicts.get(kind, NO_CONFLICTS) + conflicts
            logger.warning(
                "%s: %d row(s) not written: their key is stored with other content"
                " (first stored wins), e.g. %s",
                kind,
                conflicts.count,
                ", ".join(map(str, conflicts.keys[: tables.MAX_KEYS])),
            )
        logger.info("%s: %d of %d rows new", kind, inserted, table.num_rows)
        return Written(inserted, conflicts)

    def _target(self, cur, target: Target) -> Target:
        """``target`` as this database has its table: day-partitioned (migration 0012) or
        not yet (the merge then names the natural key in ON CONFLICT, as before); with its
        shared values' table (0018) or not yet (values stay in the rows)."""
        if target.kind not in self._targets:
            if target.partition_key:
                cur.execute(
                    f"SELECT relkind FROM pg_class WHERE oid = to_regclass('{target.table}')"
                )
                row = cur.fetchone()
                if not (row and row[0] == "p"):
                    target = target.unpartitioned
            if target.shared:
                cur.execute(f"SELECT to_regclass('{target.shared.table}') IS NOT NULL")
                if not cur.fetchone()[0]:
                    target = target.unshared
            self._targets[target.kind] = target
        return self._targets[target.kind]

    def _ensure_days(self, cur, target: Target, times: pa.ChunkedArray) -> None:
        """Create the missing day partitions of the UTC days of ``times`` before the write
        reads the table (``partitions.ENSURE``; a day it cannot make now stays in the
        default partition, which a later call moves into the day: never a failed write).

        Made on a connection of its own, committed at once, so that no lock outlives it;
        once this batch has read the table, though, its own lock on the default partition
        stops that, and the days are made in this transaction, only if it can take the
        writers' merge locks (spans, then logs, as the merges take them) without waiting:
        the merges of others then wait for this commit instead of deadlocking with it."""
        days = pc.unique(pc.drop_null(times.cast(pa.timestamp("us", "UTC")).cast(pa.date32())))
        known = self._days.setdefault(target.table, set())
        wanted = set(days.to_pylist()) - known
        if not wanted:
            return
        known.update(self._attached(cur, target.table))
        missing = sorted(wanted - known)
        if missing and self._url and target.table not in self._touched:
            with db.connection(self._url, autocommit=True) as side:
                partitions.ensure_days(side, target.table, missing)
            known.update(self._attached(cur, target.table))
            missing = sorted(wanted - known)
        if missing:
            cur.execute(
                "SELECT " + " AND ".join(tables.TARGETS[k].lock_try for k in DEFERRED)  # type: ignore[arg-type]
            )
            if cur.fetchone()[0]:
                for first, last in partitions.day_runs(missing):
                    cur.execute(partitions.ensure_sql(target.table, first, last))
                    cur.fetchone()
                known.update(self._attached(cur, target.table))
        self._touched.add(target.table)
        known.update(wanted)  # a day left in the default partition is not retried per write

    @staticmethod
    def _attached(cur, table: str) -> set[dt.date]:
        cur.execute(partitions.attached_sql(table))
        return {p[1] for (name,) in cur.fetchall() if (p := partitions.parse_name(name))}

    def merge_pending(self) -> dict[str, Late]:
        """Merge the rows of the deferred kinds, in ``DEFERRED`` order (the commit calls it).
        Rows another writer stored since their write are not written (first stored wins):
        they are taken off ``written``, the conflicts among them added to ``conflicts``, a
        warning logged, and all of them returned per kind (also kept in ``late``)."""
        import adbc_driver_manager

        for kind in DEFERRED:
            held = self._pending.pop(kind, 0)
            if not held:
                continue
            target = self._targets[kind]
            with self._conn.cursor() as cur:
                try:
                    if target.lock:
                        cur.execute(target.lock)
                    inserted = _merge(cur, target, target.merge_pending, staged=False)
                    late = Late()
                    if inserted < held:
                        cur.execute(target.late_conflicts(self._conflict_limit))
                        rows = cur.fetchall()
                        count = int(rows[0][-1]) if rows else 0
                        keys = tuple(tuple(r[:-2]) for r in rows)
                        tags = tuple(r[-2] for r in rows)
                        late = Late(held - inserted, Conflicts(count, keys), tags)
                except adbc_driver_manager.Error as err:
                    raise database_error(kind, err, at_commit=True) from err
            if not late:
                continue
            self.late[kind] = late
            self.written[kind] -= late.count
            if late.conflicts:
                self.conflicts[kind] = self.conflicts.get(kind, NO_CONFLICTS) + late.conflicts
            logger.warning(
                "%s: %d row(s) were stored by another writer between their write and the"
                " commit: %d identical, %d with other content (first stored wins), e.g. %s",
                kind,
                late.count,
                late.identical,
                late.conflicts.count,
                ", ".join(map(str, late.conflicts.keys[: tables.MAX_KEYS])) or "-",
            )
        return self.late


def _tags(frame: pd.DataFrame | None, n: int, kind: str) -> pa.Array:
    """The frame's ``TAG`` column as text (all missing when it has none)."""
    if frame is None or tables.TAG not in frame.columns:
        return pa.nulls(n, pa.string())
    values = frame[tables.TAG].astype(object)
    try:
        return pa.array(values.where(values.notna(), None).tolist(), pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise InputError(f"{kind}: column {tables.TAG} is not text ({err})") from None


def refuse_differing_duplicates(table: pa.Table, target: Target) -> None:
    """Rows of one write that share a key must share their content (they then collapse into
    one row in the merge); otherwise which one is meant is the caller's to say.

    Runs only when a merge stored fewer rows than it was given: sorting a million keys costs
    about a second.
    """
    keys = table.select(list(target.stage_key))
    order = pc.sort_indices(keys, sort_keys=[(k, "ascending") for k in target.stage_key])
    keys = keys.take(order)
    n = table.num_rows
    same = np.ones(n - 1, dtype=bool)
    for k in target.stage_key:
        same &= _equal(keys[k].slice(1), keys[k].slice(0, n - 1))
    if not same.any():
        return
    second = np.flatnonzero(same) + 1
    order = order.to_numpy()
    first, later = table.take(order[second - 1]), table.take(order[second])
    for col in target.spec:
        if col.name in target.stage_key:
            continue
        a, b = first[col.name], later[col.name]
        if col.digits:
            a, b = pc.round(a, col.digits[1]), pc.round(b, col.digits[1])
        differs = np.flatnonzero(~_equal(a, b))
        if col.kind == JSON:  # same JSON as jsonb compares it (key order, 1.0 = 1) is the same
            differs = [
                i
                for i in differs
                if not records.same_json(json.loads(a[i].as_py()), json.loads(b[i].as_py()))
            ]
        if len(differs):
            i = int(differs[0])
            key = ", ".join(f"{k}={first[k][i].as_py()!r}" for k in target.stage_key)
            rows = first[tables.ROW][i].as_py(), later[tables.ROW][i].as_py()
            raise InputError(
                f"{target.kind} rows {min(rows)} and {max(rows)} have the same key ({key})"
                f" but different {col.name}"
            )


def _equal(a: pa.ChunkedArray | pa.Array, b: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Element-wise equality where two missing values are equal."""
    eq = pc.fill_null(pc.equal(a, b), False).to_numpy(zero_copy_only=False)
    both = pc.and_(pc.is_null(a), pc.is_null(b)).to_numpy(zero_copy_only=False)
    return eq | both


def _refused_data(cur, target: Target, reason: str) -> InputError:
    """The merge stopped at a value PostgreSQL refused: find the JSON text at fault, by row."""
    for col in target.spec:
        if col.kind == JSON:
            cur.execute(tables.json_check(col.name))
            bad = cur.fetchone()
            if bad:
                return InputError(f"{target.kind} row {bad[0]}: {col.name} is not JSON ({bad[1]})")
    return InputError(f"{target.kind}: PostgreSQL refused the batch: {reason}")


def _merge(cur, target: Target, statement: str, *, staged: bool = True) -> int:
    """Run the merge, which retries deadlocks and serialization failures itself.

    A data error stops it: with the write's rows ``staged``, the row at fault is looked for
    there; at the commit (nothing staged any more) PostgreSQL's reason is reported as it is.

    The retry runs server-side (``tables.retried``): the ADBC driver refuses every
    statement after an error until the whole transaction rolls back, so a client-side
    ROLLBACK TO SAVEPOINT is not possible.
    """
    import adbc_driver_manager

    try:
        cur.execute(tables.retried(statement, RETRIES))
    except adbc_driver_manager.Error as err:
        what = RETRY_STATES.get(getattr(err, "sqlstate", None) or "")
        if what is None:
            raise
        raise DatabaseError(
            f"{target.kind}: {what} persisted through {RETRIES} attempts: {db.first_line(err)}"
        ) from err
    cur.execute(tables.MERGE_RESULT)
    inserted, retries, refused = cur.fetchone()
    if refused:
        if not staged:
            raise InputError(
                f"{target.kind}: PostgreSQL refused the batch at its commit: {refused}"
            )
        raise _refused_data(cur, target, refused)
    if retries:
        logger.warning(
            "%s: the merge was retried %d time(s) after a deadlock or serialization failure",
            target.kind,
            retries,
        )
    return int(inserted)


def _conflicts(cur, listing: str) -> Conflicts:
    cur.execute(listing)
    rows = cur.fetchall()
    if not rows:
        return NO_CONFLICTS
    return Conflicts(int(rows[0][-1]), tuple(tuple(r[:-1]) for r in rows))


def database_error(kind: str, err: Exception, *, at_commit: bool = False) -> ObslibError:
    """A driver error as obslib's: bad rows (SQLSTATE class 22, 23) are input, the rest is the
    database failing (connection lost, disk full, out of memory, shut down)."""
    state = getattr(err, "sqlstate", None) or ""
    if state[:2] in INPUT_CLASSES:
        when = " at its commit" if at_commit else ""
        return InputError(f"{kind}: PostgreSQL refused the batch{when}: {db.first_line(err)}")
    code = f" [SQLSTATE {state}]" if state else ""
    return DatabaseError(f"{kind}: the database failed the write{code}: {db.first_line(err)}")


_RESOLVE = f"""UPDATE {schema.ALERT_INCIDENTS}
SET status = 'auto_resolved', resolved_at = $2, resolved_by = $3
WHERE incident_id = $1 AND status IN ('open', 'acknowledged') AND triggered_at <= $2"""


@contextmanager
def batch(
    url: str | None = None, *, every_conflict: bool = False, one_write: bool = False
) -> Iterator[Batch]:
    """One transaction for several writes: commit at the end, roll back on any error.
    ``every_conflict`` lists every conflicting key, not only the first few; ``one_write``
    (write_spans, write_logs) merges at once instead of at the commit."""
    with (
        db.adbc_connection(url) as conn,
        transaction(
            conn,
            every_conflict=every_conflict,
            one_write=one_write,
            url=db.database_url() if url is None else db.libpq_url(url),
        ) as b,
    ):
        yield b


@contextmanager
def transaction(
    conn: Any, *, every_conflict: bool = False, one_write: bool = False, url: str | None = None
) -> Iterator[Batch]:
    """A batch on a connection the caller keeps open (a long-running receiver writes many
    batches on one connection instead of connecting for each). ``url``, the connection's
    database, lets the batch make day partitions on a short connection of its own."""
    import adbc_driver_postgresql.dbapi as adbc

    writes = Batch(conn, every_conflict=every_conflict, one_write=one_write, url=url)
    try:
        yield writes
    except BaseException:
        with suppress(adbc.Error):  # a lost connection cannot roll back; the error stands
            conn.rollback()
        raise
    if writes.failed:  # an error was caught inside the block: nothing of it may land
        with suppress(adbc.Error):
            conn.rollback()
        raise writes.failure_class(f"batch rolled back: {writes.failed}")
    try:
        writes.merge_pending()
    except BaseException:
        with suppress(adbc.Error):
            conn.rollback()
        raise
    try:
        conn.commit()
    except adbc.Error as err:
        raise database_error("batch", err) from err
    _analyze(conn, writes.written)


ANALYZE_AFTER_ROWS = 10_000  # a batch adding this many rows to a table refreshes its stats


def _analyze(conn: Any, written: dict[str, int]) -> None:
    """ANALYZE the tables a batch grew by ``ANALYZE_AFTER_ROWS`` or more, as PostgreSQL's
    manual advises after a bulk load: until autovacuum gets to it, the planner sees a fresh
    table as empty and may nest-loop over 150k spans (a 1-second query took minutes).
    Statistics are an optimisation: failing to gather them loses nothing written."""
    import adbc_driver_postgresql.dbapi as adbc

    grown = [
        tables.TARGETS[k].table
        for k, n in written.items()
        if k in tables.TARGETS and n >= ANALYZE_AFTER_ROWS
    ]
    if not grown:
        return
    try:
        with conn.cursor() as cur:
            for table in grown:  # identifiers from our own table specs, never user text
                cur.execute(f"ANALYZE {table}")
        conn.commit()
    except adbc.Error as err:
        logger.warning("could not refresh planner statistics after the load: %s", err)


def write_spans(spans: pd.DataFrame, *, url: str | None = None) -> Written:
    """Store spans (columns of ``distributed_traces``); returns how many were new, with the
    conflicts (keys stored with other content) it kept out."""
    with batch(url, one_write=True) as b:
        return b.spans(spans)


def write_logs(logs: pd.DataFrame, *, url: str | None = None) -> Written:
    """Store structured log records; returns how many were new, with any conflicts."""
    with batch(url, one_write=True) as b:
        return b.logs(logs)


_LOG_ID_PARTS = ("timestamp", "level", "service_name", "trace_id", "span_id", "message", "error")


def _log_ids(frame: pd.DataFrame) -> list[str]:
    """A stable id from the whole record, for sources that carry none.

    The time is hashed as its UTC instant, so the same record spelled "09:00Z" or
    "10:00+01:00" gets one id; records that differ in anything (time, level, fields) get two.
    """
    parts = pd.DataFrame(index=frame.index)
    for c in _LOG_ID_PARTS:
        if c in frame.columns:
            parts[c] = frame[c].astype(object)
    if "timestamp" in frame.columns:
        with suppress(ValueError, TypeError, OverflowError):  # to_arrow names the bad row
            stamps = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
            parts["timestamp"] = stamps.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").astype(object)
    if "fields" in frame.columns:
        parts["fields"] = [_canonical_json(v) for v in frame["fields"]]
    parts = parts.where(parts.notna(), "")
    rows = parts.itertuples(index=False, name=None)
    return [hashlib.sha256("\x1f".join(map(str, r)).encode()).hexdigest()[:32] for r in rows]


def _canonical_json(value: Any) -> str:
    if value is None or isinstance(value, str) or (isinstance(value, float) and value != value):
        return "" if value is None or isinstance(value, float) else value
    try:
        return json.dumps(value, sort_keys=True, default=json_default)
    except (TypeError, ValueError):
        return repr(value)  # to_arrow refuses it with its row
