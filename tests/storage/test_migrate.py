"""The migration runner against a real PostgreSQL: order, reversibility, locking, safety."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from obslib import schema
from obslib.errors import ChecksumMismatch, DirtyDatabase, MigrationError, UsageError
from obslib.storage.migrate import Migrator, advisory_lock_key, advisory_lock_keys, discover
from tests.conftest import LATEST, MIGRATIONS, run_cli

CATALOG_QUERIES = {
    "columns": """
        SELECT table_name, column_name, data_type, character_maximum_length,
               numeric_precision, numeric_scale, is_nullable, column_default
        FROM information_schema.columns WHERE table_schema = 'public'
        ORDER BY 1, 2""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = 'public'::regnamespace
        ORDER BY 1, 2""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = 'public' ORDER BY 1, 2""",
    "invalid_indexes": """
        SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid""",
    "comments": """
        SELECT c.relname, a.attname, d.description FROM pg_description d
        JOIN pg_class c ON c.oid = d.objoid
        LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid
        WHERE c.relnamespace = 'public'::regnamespace ORDER BY 1, 2""",
}
BOOKKEEPING = ("schema_migrations", "schema_migration_files", "schema_migration_log")


def catalog(url: str) -> dict[str, list[tuple]]:
    """Everything that defines the schema, without the runner's own bookkeeping tables."""
    with psycopg.connect(url) as conn:
        snap = {k: conn.execute(q).fetchall() for k, q in CATALOG_QUERIES.items()}
    return {
        k: [r for r in rows if not any(str(r[0]).startswith(b) for b in BOOKKEEPING)]
        for k, rows in snap.items()
    }


def user_tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {r[0] for r in rows} - set(BOOKKEEPING)


def log_rows(url: str) -> list[tuple[int, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT version, direction FROM schema_migration_log ORDER BY id"
        ).fetchall()


def test_folder_holds_numbered_pairs() -> None:
    """Every shipped migration has an up and a down file and versions are 1..N."""
    found = discover(MIGRATIONS)
    assert [m.version for m in found] == list(range(1, len(found) + 1))
    assert all(m.down is not None for m in found)


def test_up_applies_every_version_and_records_it(fresh_db: str) -> None:
    """A fresh database goes to the newest version, clean, with every table of the plan."""
    migrator = Migrator(fresh_db, MIGRATIONS)
    applied = migrator.up()
    assert [m.version for m in applied] == [m.version for m in discover(MIGRATIONS)]
    status = migrator.status()
    assert status.state.version == applied[-1].version and not status.state.dirty
    assert status.pending == []
    assert user_tables(fresh_db) == set(schema.TABLES)
    assert migrator.up() == []  # a second run has nothing to do


def test_up_down_all_up_leaves_an_identical_schema(fresh_db: str) -> None:
    """Reverting everything and re-applying rebuilds exactly the same catalog."""
    migrator = Migrator(fresh_db, MIGRATIONS)
    migrator.up()
    first = catalog(fresh_db)
    assert first["invalid_indexes"] == []
    migrator.down(to=0)
    migrator.up()
    assert catalog(fresh_db) == first


def test_down_all_drops_every_table(fresh_db: str) -> None:
    """The plan's rollback: after down --all no table of obslib's is left."""
    migrator = Migrator(fresh_db, MIGRATIONS)
    migrator.up()
    reverted = migrator.down(to=0)
    assert [m.version for m in reverted] == sorted((m.version for m in reverted), reverse=True)
    assert user_tables(fresh_db) == set()
    assert migrator.status().state.version is None


def test_up_to_and_down_to_stop_at_the_version(fresh_db: str) -> None:
    """--to N applies or reverts exactly as far as version N."""
    migrator = Migrator(fresh_db, MIGRATIONS)
    assert [m.version for m in migrator.up(to=3)] == [1, 2, 3]
    assert migrator.status().state.version == 3
    assert schema.LOGS in user_tables(fresh_db)
    assert [m.version for m in migrator.down(to=2)] == [3]
    assert schema.LOGS not in user_tables(fresh_db)
    with pytest.raises(UsageError, match="at version 2"):
        migrator.up(to=1)
    with pytest.raises(UsageError, match="no migration with version 99"):
        migrator.up(to=99)


def test_two_runners_at_once_apply_each_version_once(fresh_db: str, migrations_copy: Path) -> None:
    """Two `obslib db up` started together: one applies, the other waits, nothing runs twice."""
    # A slow first migration makes the two runs overlap for sure.
    slow = migrations_copy / "0001_monitoring_observability.up.sql"
    slow.write_text("SELECT pg_sleep(1.5);\n" + slow.read_text())
    env = {"OBSLIB_DATABASE_URL": fresh_db, "OBSLIB_MIGRATIONS_DIR": str(migrations_copy)}
    full_env = {**os.environ, **env}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "obslib", "db", "up"],
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    ups = [v for v, d in log_rows(fresh_db) if d == "up"]
    assert sorted(ups) == [m.version for m in discover(migrations_copy)]
    applied_lines = sum(len(re.findall(r"^applied \d{4}_", out, re.M)) for out, _ in outputs)
    assert applied_lines == len(ups)


def test_edited_applied_migration_is_refused(fresh_db: str, migrations_copy: Path) -> None:
    """Changing a file after it was applied stops the runner with a checksum error."""
    Migrator(fresh_db, migrations_copy).up(to=3)
    edited = migrations_copy / "0003_structured_logs.up.sql"
    edited.write_text(edited.read_text() + "\n-- a harmless-looking edit\n")
    migrator = Migrator(fresh_db, migrations_copy)
    with pytest.raises(ChecksumMismatch, match=r"0003_structured_logs\.up\.sql changed"):
        migrator.up()
    assert migrator.status().state.version == 3  # nothing else was applied
    assert [r.changed for r in migrator.status().rows][:3] == [False, False, True]


def test_broken_migration_marks_dirty_and_names_file_and_statement(
    fresh_db: str, migrations_copy: Path
) -> None:
    """A failing statement rolls its file back, leaves the state dirty and says where."""
    nxt = LATEST + 1
    broken = migrations_copy / f"{nxt:04d}_broken.up.sql"
    broken.write_text(
        "CREATE TABLE half_done (x int);\n\n"
        "-- second statement is wrong\n"
        "ALTER TABLE nowhere ADD y int;\n"
    )
    (migrations_copy / f"{nxt:04d}_broken.down.sql").write_text("DROP TABLE IF EXISTS half_done;\n")
    migrator = Migrator(fresh_db, migrations_copy)
    with pytest.raises(MigrationError) as info:
        migrator.up()
    message = str(info.value)
    assert f"{nxt:04d}_broken.up.sql: statement 2 (line 4)" in message
    assert 'relation "nowhere" does not exist' in message
    assert info.value.file == f"{nxt:04d}_broken.up.sql" and info.value.statement == 2
    state = migrator.status().state
    assert (state.version, state.dirty) == (nxt, True)
    assert "half_done" not in user_tables(fresh_db)  # the file's transaction was rolled back
    assert set(schema.TABLES) <= user_tables(fresh_db)  # earlier versions stay applied

    with pytest.raises(DirtyDatabase, match=f"dirty at version {nxt}"):
        migrator.up()
    # the repair path: fix the file, record the real version, run again
    broken.write_text("CREATE TABLE half_done (x int);\n")
    migrator = Migrator(fresh_db, migrations_copy)
    migrator.force(LATEST)
    assert [m.version for m in migrator.up()] == [nxt]
    assert "half_done" in user_tables(fresh_db)


def test_failed_no_transaction_migration_can_be_rerun(fresh_db: str, migrations_copy: Path) -> None:
    """A concurrent index build that fails part-way is rebuilt cleanly on the next run."""
    Migrator(fresh_db, migrations_copy).up(to=1)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        # two incidents of one severity make a unique index on severity fail
        for _ in range(2):
            conn.execute(
                "INSERT INTO alert_incidents (incident_id, severity, status) VALUES"
                " (gen_random_uuid()::text, 'low', 'open')"
            )
    concurrent = migrations_copy / "0002_monitoring_indexes_concurrently.up.sql"
    original = concurrent.read_text()
    concurrent.write_text(
        original + "\nCREATE UNIQUE INDEX CONCURRENTLY boom ON alert_incidents (severity);\n"
    )
    migrator = Migrator(fresh_db, migrations_copy)
    with pytest.raises(MigrationError, match=r"concurrently\.up\.sql: statement 7"):
        migrator.up()
    assert migrator.status().state.dirty
    concurrent.write_text(original + "\nDROP INDEX CONCURRENTLY IF EXISTS boom;\n")
    migrator = Migrator(fresh_db, migrations_copy)
    migrator.force(1)
    migrator.up()
    snapshot = catalog(fresh_db)
    assert snapshot["invalid_indexes"] == []
    names = {row[1] for row in snapshot["indexes"]}
    assert {"idx_slo_measurements_compliance", "idx_incidents_open"} <= names
    assert migrator.status().state == migrator.status().state.__class__(LATEST, False)


def test_status_reads_without_creating_anything(fresh_db: str) -> None:
    """Looking at an empty database changes nothing in it."""
    status = Migrator(fresh_db, MIGRATIONS).status()
    assert status.state.version is None and len(status.pending) == len(discover(MIGRATIONS))
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname='public'"
        ).fetchone() == (0,)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("1_x.sideways.sql", "not named NNNN_name.up.sql"),
        ("0009_only_down.down.sql", "no matching up file"),
    ],
    ids=["a badly named file", "a down file without its up file"],
)
def test_bad_folder_is_refused(tmp_path: Path, name: str, message: str) -> None:
    """Misnamed or unpaired files are reported before anything runs."""
    (tmp_path / "0001_ok.up.sql").write_text("SELECT 1;")
    (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=message):
        discover(tmp_path)


# golang-migrate v4 (database/util.go GenerateAdvisoryLockId, from database/postgres Lock):
# crc32.ChecksumIEEE("public\x00schema_migrations\x00" + name) * uint32(1486364155), as a
# uint32. The literals were computed outside Python, by a bitwise CRC-32 in C.
GO_MIGRATE_KEYS = [
    ("domainflow", 2896588217),  # WithInstance: current_database()
    ("/domainflow", 4252662691),  # the CLI and migrate.New: the URL's path, slash included
]


@pytest.mark.parametrize(
    ("name", "key"),
    GO_MIGRATE_KEYS,
    ids=["a Go program's connection", "the migrate CLI's URL"],
)
def test_advisory_lock_key_is_the_one_golang_migrate_takes(name: str, key: int) -> None:
    """The key for a database name equals golang-migrate's own, pinned as a literal."""
    assert advisory_lock_key(name) == key


def test_runner_takes_both_of_golang_migrates_keys() -> None:
    """obslib holds the key of either way Go names the database."""
    assert advisory_lock_keys("domainflow") == [key for _, key in GO_MIGRATE_KEYS]


@pytest.mark.parametrize("prefix", ["", "/"], ids=["Go with a connection", "the Go CLI"])
def test_a_lock_held_by_golang_migrate_makes_the_runner_wait(fresh_db: str, prefix: str) -> None:
    """While a Go runner holds its lock on this database, obslib does not apply anything."""
    with psycopg.connect(fresh_db, autocommit=True) as go:
        name = go.info.dbname
        go.execute("SELECT pg_advisory_lock(%s)", (advisory_lock_key(prefix + name),))
        migrator = Migrator(fresh_db, MIGRATIONS, lock_timeout_s=0.3)
        with pytest.raises(MigrationError, match=f"holds the lock on database {name}"):
            migrator.up()
    assert migrator.status().state.version is None
    assert [m.version for m in migrator.up(to=1)] == [1]  # released: the runner goes on


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("CREATE TABLE t (x text DEFAULT 'open);\n", "unterminated ' quote opened at line 1"),
        ("SELECT 1;\n\nDO $$ BEGIN\n", "unterminated $$ quote opened at line 3"),
        ("SELECT 1;\n/* never closed\n", "unterminated block comment opened at line 2"),
    ],
    ids=["an unterminated string", "an unterminated dollar quote", "an open comment"],
)
def test_a_file_that_cannot_be_split_runs_nothing_and_stays_clean(
    fresh_db: str, migrations_copy: Path, text: str, where: str
) -> None:
    """A split error names the file and line; no pending file ran; the state is clean."""
    Migrator(fresh_db, migrations_copy).up(to=LATEST - 1)
    nxt = LATEST + 1
    bad = migrations_copy / f"{nxt:04d}_unterminated.up.sql"
    bad.write_text(text)
    (migrations_copy / f"{nxt:04d}_unterminated.down.sql").write_text("SELECT 1;\n")
    migrator = Migrator(fresh_db, migrations_copy)
    with pytest.raises(MigrationError) as info:
        migrator.up()
    assert str(info.value).startswith(f"{bad.name}: not valid SQL text: {where}")
    assert info.value.file == bad.name
    state = migrator.status().state
    assert (state.version, state.dirty) == (LATEST - 1, False)  # not even LATEST was applied
    assert [v for v, d in log_rows(fresh_db) if d == "up"] == list(range(1, LATEST))


def _gapped_folder(tmp_path: Path) -> Path:
    """Versions 1, 2 and 5 (3 and 4 were never written, or were squashed), one table each."""
    folder = tmp_path / "gapped"
    folder.mkdir()
    for version in (1, 2, 5):
        (folder / f"{version:04d}_t{version}.up.sql").write_text(
            f"CREATE TABLE t{version} (x int);\n"
        )
        (folder / f"{version:04d}_t{version}.down.sql").write_text(f"DROP TABLE t{version};\n")
    return folder


@pytest.mark.parametrize(
    "args",
    [("--to", "2"), ()],
    ids=["down --to 2 records version 2", "one step down from 5 records 2, the file before it"],
)
def test_down_in_a_folder_with_gaps_records_the_previous_files_version(
    fresh_db: str, tmp_path: Path, args: tuple[str, ...]
) -> None:
    """Versions 1, 2, 5 at 5: stepping down reverts 5 and records 2 (not 4, which has no
    file, nor N - 1), clean, so the next `db up` knows where it is and applies 5 again."""
    folder = _gapped_folder(tmp_path)
    env = {"OBSLIB_DATABASE_URL": fresh_db, "OBSLIB_MIGRATIONS_DIR": str(folder)}
    assert run_cli("db", "up", env=env).returncode == 0
    done = run_cli("db", "down", *args, env=env)
    assert done.returncode == 0, done.stderr
    assert "reverted 0005_t5" in done.stdout
    state = Migrator(fresh_db, folder).status().state
    assert (state.version, state.dirty) == (2, False)
    assert user_tables(fresh_db) == {"t1", "t2"}
    again = run_cli("db", "up", env=env)
    assert again.returncode == 0, again.stderr
    assert Migrator(fresh_db, folder).status().state.version == 5
    assert user_tables(fresh_db) == {"t1", "t2", "t5"}


@pytest.mark.parametrize(
    ("down_to", "recorded", "reverted"),
    [(2, 2, [5]), (1, 1, [5, 2]), (0, None, [5, 2, 1])],
    ids=[
        "down to 2 from 5 over the gap records 2",
        "down to 1 records 1",
        "down to 0 records nothing applied",
    ],
)
def test_down_to_a_version_over_a_gap_records_that_version_and_up_works(
    fresh_db: str, tmp_path: Path, down_to: int, recorded: int | None, reverted: list[int]
) -> None:
    folder = _gapped_folder(tmp_path)
    migrator = Migrator(fresh_db, folder)
    migrator.up()
    assert [m.version for m in migrator.down(to=down_to)] == reverted
    state = migrator.status().state
    assert (state.version, state.dirty) == (recorded, False)
    assert [m.version for m in migrator.up()] == reverted[::-1]
    assert migrator.status().state.version == 5
