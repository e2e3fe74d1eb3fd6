"""Versioned schema migrations: up, down, status, force.

Files are ``NNNN_name.up.sql`` / ``NNNN_name.down.sql`` (golang-migrate's convention) and the
state lives in golang-migrate's ``schema_migrations(version, dirty)`` with its advisory-lock
key, so DomainFlow's Go tooling and obslib can take turns on one database. obslib adds a
checksum per applied file (an edited, already-applied file refuses to run) and a log of
every step.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg

from obslib.config import ENV_MIGRATIONS_DIR, shipped_dir
from obslib.errors import (
    ChecksumMismatch,
    DirtyDatabase,
    MigrationError,
    UsageError,
)
from obslib.storage import db
from obslib.storage.sqlsplit import Statement, split_statements

logger = logging.getLogger(__name__)

NO_TRANSACTION_MARKER = "-- obslib:no-transaction"
_FILE_RE = re.compile(r"^(\d+)_(\w[\w-]*)\.(up|down)\.sql$")

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version BIGINT NOT NULL PRIMARY KEY,
    dirty BOOLEAN NOT NULL
);
CREATE TABLE IF NOT EXISTS schema_migration_files (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS schema_migration_log (
    id BIGSERIAL PRIMARY KEY,
    version BIGINT NOT NULL,
    name TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('up', 'down', 'force')),
    checksum TEXT,
    at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
    backend_pid INTEGER NOT NULL DEFAULT pg_backend_pid()
);
"""

# golang-migrate (database/util.go GenerateAdvisoryLockId, called by the postgres driver's
# Lock) takes crc32-IEEE("<schema>\0schema_migrations\0<database>") times this salt, as a
# uint32 product. Using the same key makes the two runners wait for each other.
_GO_MIGRATE_SALT = 1486364155
_MIGRATIONS_TABLE = "schema_migrations"


def advisory_lock_key(database: str, schema: str = "public") -> int:
    """The advisory lock id golang-migrate takes for ``database`` (0 <= id < 2**32)."""
    ident = "\x00".join([schema, _MIGRATIONS_TABLE, database]).encode()
    return (zlib.crc32(ident) * _GO_MIGRATE_SALT) & 0xFFFFFFFF


def advisory_lock_keys(database: str, schema: str = "public") -> list[int]:
    """Every key golang-migrate may use for ``database``, in the order obslib takes them.

    golang-migrate names the database by how it was opened: ``current_database()`` when
    given a connection (``WithInstance``), but the URL's path, leading slash included, when
    given a URL (the ``migrate`` CLI, ``migrate.New``). obslib holds both, so it waits for
    either kind of Go runner.
    """
    return [advisory_lock_key(database, schema), advisory_lock_key("/" + database, schema)]


@dataclass(frozen=True)
class Migration:
    """One version: its up file and (optionally) its down file."""

    version: int
    name: str
    up: Path
    down: Path | None

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.up.read_bytes()).hexdigest()


@dataclass(frozen=True)
class State:
    """golang-migrate's state: the last version reached (None: nothing applied) and dirty."""

    version: int | None
    dirty: bool


@dataclass(frozen=True)
class StatusRow:
    """One migration file as ``db status`` shows it."""

    migration: Migration
    applied: bool
    applied_at: datetime | None
    changed: bool  # applied, and the file on disk differs from what was applied


@dataclass(frozen=True)
class Status:
    state: State
    rows: list[StatusRow]

    @property
    def pending(self) -> list[Migration]:
        return [r.migration for r in self.rows if not r.applied]


def migrations_dir() -> Path:
    """The migrations folder: $OBSLIB_MIGRATIONS_DIR, the wheel's copy, or the checkout's."""
    return shipped_dir(ENV_MIGRATIONS_DIR, "migrations")


def discover(directory: Path | None = None) -> list[Migration]:
    """Read and validate the folder: numbered pairs, one name per version, an up file each."""
    directory = directory or migrations_dir()
    if not directory.is_dir():
        raise UsageError(f"migrations folder does not exist: {directory}")
    found: dict[int, dict[str, Path]] = {}
    names: dict[int, str] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix != ".sql":
            continue
        m = _FILE_RE.match(path.name)
        if not m:
            raise MigrationError(f"{path.name}: not named NNNN_name.up.sql or NNNN_name.down.sql")
        version, name, direction = int(m.group(1)), m.group(2), m.group(3)
        if names.setdefault(version, name) != name:
            raise MigrationError(f"version {version} has two names: {names[version]} and {name}")
        found.setdefault(version, {})[direction] = path
    result = []
    for version in sorted(found):
        files = found[version]
        if "up" not in files:
            raise MigrationError(f"{files['down'].name}: no matching up file")
        result.append(Migration(version, names[version], files["up"], files.get("down")))
    return result


def _table_exists(conn: psycopg.Connection, name: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
    return bool(row and row[0])


def _is_transactional(path: Path) -> bool:
    with path.open(encoding="utf-8") as fh:
        first = fh.readline().strip()
    return first.lower() != NO_TRANSACTION_MARKER


class Migrator:
    """Applies migration files to one database, holding the advisory lock while it works."""

    def __init__(
        self,
        url: str | None = None,
        directory: Path | None = None,
        *,
        lock_timeout_s: float = 120.0,
    ) -> None:
        self.url = db.libpq_url(url) if url else db.database_url()
        self.migrations = discover(directory)
        self.lock_timeout_s = lock_timeout_s
        self._by_version = {m.version: m for m in self.migrations}

    # -- public operations -------------------------------------------------------------

    def status(self) -> Status:
        with self._session(lock=False) as conn:
            return self._status(conn)

    def up(self, to: int | None = None) -> list[Migration]:
        """Apply pending migrations in order, up to and including version ``to``."""
        if to is not None:
            self._known(to)
        with self._session() as conn:
            state = self._checked_state(conn)
            current = state.version or 0
            if to is not None and to < current:
                raise UsageError(f"database is at version {current}; use `db down --to {to}`")
            todo = [
                m
                for m in self.migrations
                if m.version > current and (to is None or m.version <= to)
            ]
            # every file is read and split before the first one runs
            plans = [(m, self._plan(m, "up")) for m in todo]
            for m, plan in plans:
                self._apply(conn, m, "up", plan)
            return todo

    def down(self, to: int = 0) -> list[Migration]:
        """Revert applied migrations, newest first, until version ``to`` (0: all) is current."""
        if to:
            self._known(to)
        with self._session() as conn:
            state = self._checked_state(conn)
            current = state.version or 0
            if to > current:
                raise UsageError(f"database is at version {current}; use `db up --to {to}`")
            todo = [m for m in reversed(self.migrations) if to < m.version <= current]
            plans = [(m, self._plan(m, "down")) for m in todo]
            for m, plan in plans:
                self._apply(conn, m, "down", plan)
            return todo

    def force(self, version: int) -> None:
        """Record ``version`` as current and clean, after a person repaired a failed step.

        Touches no schema object: like golang-migrate's ``force``, it only fixes the record.
        """
        if version:
            self._known(version)
        with self._session() as conn, conn.transaction():
            self._set_state(conn, version or None, dirty=False)
            conn.execute("DELETE FROM schema_migration_files WHERE version > %s", (version,))
            for m in self.migrations:
                if m.version <= version:
                    conn.execute(
                        "INSERT INTO schema_migration_files (version, name, checksum)"
                        " VALUES (%s, %s, %s) ON CONFLICT (version) DO NOTHING",
                        (m.version, m.name, m.checksum),
                    )
            name = self._by_version[version].name if version else "none"
            self._log(conn, version, name, "force", None)

    # -- internals ----------------------------------------------------------------------

    def _known(self, version: int) -> Migration:
        try:
            return self._by_version[version]
        except KeyError:
            known = ", ".join(str(m.version) for m in self.migrations)
            raise UsageError(f"no migration with version {version} (known: {known})") from None

    @contextmanager
    def _session(self, *, lock: bool = True) -> Iterator[psycopg.Connection]:
        with db.connection(self.url, autocommit=True) as conn:
            held: list[int] = []
            try:
                if lock:
                    row = conn.execute("SELECT current_schema()").fetchone()
                    schema = row[0] if row and row[0] else "public"
                    for key in advisory_lock_keys(conn.info.dbname, schema):
                        self._acquire(conn, key)
                        held.append(key)
                    # created under the lock: concurrent CREATE IF NOT EXISTS can collide
                    conn.execute(_BOOKKEEPING)
                yield conn
            except (
                psycopg.errors.ReadOnlySqlTransaction,
                psycopg.errors.InsufficientPrivilege,
            ) as err:
                # e.g. the read-only role of `db grant-reader`: a clear refusal, not a crash
                raise MigrationError(
                    f"user {conn.info.user} may not change the schema of database"
                    f" {conn.info.dbname}: {db.first_line(err)}"
                ) from err
            finally:
                if not conn.closed:
                    for key in reversed(held):
                        conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def _acquire(self, conn: psycopg.Connection, key: int) -> None:
        deadline = time.monotonic() + self.lock_timeout_s
        while True:
            got = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            if got and got[0]:
                return
            if time.monotonic() > deadline:
                raise MigrationError(
                    f"another migration runner holds the lock on database {conn.info.dbname}"
                    f" (waited {self.lock_timeout_s:.0f} s)"
                )
            time.sleep(0.05)

    def _state(self, conn: psycopg.Connection) -> State:
        if not _table_exists(conn, "schema_migrations"):
            return State(None, False)
        row = conn.execute("SELECT version, dirty FROM schema_migrations LIMIT 1").fetchone()
        return State(None, False) if row is None else State(int(row[0]), bool(row[1]))

    def _applied_files(self, conn: psycopg.Connection) -> dict[int, tuple[str, datetime]]:
        if not _table_exists(conn, "schema_migration_files"):
            return {}
        rows = conn.execute("SELECT version, checksum, applied_at FROM schema_migration_files")
        return {int(v): (c, at) for v, c, at in rows}

    def _status(self, conn: psycopg.Connection) -> Status:
        state = self._state(conn)
        recorded = self._applied_files(conn)
        rows = []
        for m in self.migrations:
            applied = state.version is not None and m.version <= state.version
            checksum, at = recorded.get(m.version, (None, None))
            changed = applied and checksum is not None and checksum != m.checksum
            rows.append(StatusRow(m, applied, at if applied else None, changed))
        return Status(state, rows)

    def _checked_state(self, conn: psycopg.Connection) -> State:
        """The current state, refusing to go on from a dirty or tampered database."""
        status = self._status(conn)
        state = status.state
        if state.dirty:
            raise DirtyDatabase(
                f"database is dirty at version {state.version}: the last migration step (up to"
                " it, or down from the version after it) did not finish; repair the schema,"
                " then `obslib db force VERSION` with the version it is really at"
            )
        if state.version is not None and state.version not in self._by_version:
            raise MigrationError(
                f"database is at version {state.version}, which has no file in"
                f" {self.migrations[0].up.parent if self.migrations else 'the migrations folder'}"
            )
        for row in status.rows:
            if row.changed:
                raise ChecksumMismatch(
                    f"{row.migration.up.name} changed after it was applied (checksum differs);"
                    " add a new migration instead of editing an applied one",
                    file=row.migration.up.name,
                )
        return state

    def _plan(self, m: Migration, direction: str) -> tuple[Path, list[Statement]]:
        """The file for ``direction`` and its statements, or a MigrationError naming it.

        Called before anything is recorded: a file that cannot be read or split has run
        nothing, so the database stays clean.
        """
        path = m.up if direction == "up" else m.down
        if path is None:
            raise MigrationError(f"{m.label} has no down file; cannot revert it", file=m.label)
        try:
            return path, split_statements(path.read_text(encoding="utf-8"))
        except (ValueError, OSError) as err:  # UnicodeDecodeError is a ValueError
            raise MigrationError(
                f"{path.name}: not valid SQL text: {err}; nothing was applied",
                file=path.name,
            ) from err

    def _apply(
        self,
        conn: psycopg.Connection,
        m: Migration,
        direction: str,
        plan: tuple[Path, list[Statement]],
    ) -> None:
        path, statements = plan
        previous = [v.version for v in self.migrations if v.version < m.version]
        target = m.version if direction == "up" else (previous[-1] if previous else None)
        logger.info("%s %s", direction, path.name)
        # golang-migrate's protocol: mark the target version dirty, run, then mark it clean.
        self._set_state(conn, target, dirty=True, record_none=True)
        if _is_transactional(path):
            with conn.transaction():
                self._run(conn, path, statements)
                self._finish(conn, m, direction, target)
        else:
            self._run(conn, path, statements)
            with conn.transaction():
                self._finish(conn, m, direction, target)

    def _run(self, conn: psycopg.Connection, path: Path, statements: list[Statement]) -> None:
        for i, stmt in enumerate(statements, start=1):
            try:
                conn.execute(stmt.sql.encode())  # bytes: the file's text, never a template
            except psycopg.Error as err:
                first = (str(err).strip().splitlines() or [type(err).__name__])[0]
                raise MigrationError(
                    f"{path.name}: statement {i} (line {stmt.line}) failed: {first};"
                    " the database is marked dirty",
                    file=path.name,
                    statement=i,
                ) from err

    def _finish(self, conn: psycopg.Connection, m: Migration, direction: str, target: int | None):
        self._set_state(conn, target, dirty=False)
        if direction == "up":
            conn.execute(
                "INSERT INTO schema_migration_files (version, name, checksum) VALUES (%s, %s, %s)",
                (m.version, m.name, m.checksum),
            )
        else:
            conn.execute("DELETE FROM schema_migration_files WHERE version = %s", (m.version,))
        self._log(conn, m.version, m.name, direction, m.checksum)

    def _set_state(
        self,
        conn: psycopg.Connection,
        version: int | None,
        *,
        dirty: bool,
        record_none: bool = False,
    ) -> None:
        # golang-migrate keeps one row; "no version" is an empty table, or -1 while dirty.
        with conn.transaction():
            conn.execute("TRUNCATE schema_migrations")
            if version is not None:
                conn.execute("INSERT INTO schema_migrations VALUES (%s, %s)", (version, dirty))
            elif dirty and record_none:
                conn.execute("INSERT INTO schema_migrations VALUES (-1, true)")

    def _log(self, conn, version: int, name: str, direction: str, checksum: str | None) -> None:
        conn.execute(
            "INSERT INTO schema_migration_log (version, name, direction, checksum)"
            " VALUES (%s, %s, %s, %s)",
            (version, name, direction, checksum),
        )
