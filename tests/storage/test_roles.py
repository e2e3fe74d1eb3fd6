"""The read-only role: reads every obslib table (also tables of later migrations), writes
none, and is enough to run a report."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import quote

import nbformat
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from obslib import demo, schema
from obslib.errors import UsageError
from obslib.storage import db, roles
from obslib.storage.migrate import Migrator
from obslib.storage.roles import check_role_name, grant_reader
from tests.conftest import MIGRATIONS, run_cli

WRITES = {
    "insert": "INSERT INTO alert_definitions (alert_name, alert_type, service_name, severity)"
    " VALUES ('x', 'threshold', 'api-gateway', 'low')",
    "update": "UPDATE distributed_traces SET status = 'ok'",
    "delete": "DELETE FROM structured_logs",
    "truncate": "TRUNCATE slo_measurements",
}


def drop_role(url: str, role: str) -> None:
    """Remove ``role`` and what it was granted in the database at ``url`` (roles outlive
    the test's database: they belong to the whole server)."""
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture
def role(fresh_db: str) -> Iterator[str]:
    """A role name of this test's own, dropped afterwards."""
    name = f"obslib_reader_{uuid.uuid4().hex[:8]}"
    yield name
    drop_role(fresh_db, name)


def as_role(url: str, role: str) -> psycopg.Connection:
    return psycopg.connect(url, user=role, password="pw-for-tests", autocommit=True)


def test_reader_reads_every_table_also_those_created_later(fresh_db: str, role: str) -> None:
    """Granted at version 2, the role still reads structured_logs, which 0003 creates."""
    migrator = Migrator(fresh_db, MIGRATIONS)
    migrator.up(to=2)
    grant_reader(role, url=fresh_db, password="pw-for-tests")
    migrator.up()
    with psycopg.connect(fresh_db, autocommit=True) as admin:
        admin.execute(
            "INSERT INTO structured_logs (log_id, timestamp, level, service_name, message)"
            " VALUES ('l-1', now(), 'error', 'api', 'written after the grant')"
        )
        expected = {
            table: admin.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
            ).fetchone()[0]
            for table in (*schema.TABLES, schema.SPANS_TAGGED, "schema_migrations")
        }
    with as_role(fresh_db, role) as conn:
        seen = {
            table: conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
            ).fetchone()[0]
            for table in expected
        }
        message = conn.execute("SELECT message FROM structured_logs").fetchone()[0]
    assert seen == expected and expected["structured_logs"] == 1
    assert message == "written after the grant"


@pytest.mark.parametrize("statement", list(WRITES.values()), ids=list(WRITES))
def test_reader_cannot_write(migrated_db: str, role: str, statement: str) -> None:
    """A write fails twice over: the session is read-only, and asking for read-write still
    meets "permission denied"."""
    grant_reader(role, url=migrated_db, password="pw-for-tests")
    with as_role(migrated_db, role) as conn:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute(statement)
        conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
            conn.execute(statement)


def test_grant_again_updates_and_stores_no_clear_password(migrated_db: str, role: str) -> None:
    """Granting twice is fine; the server keeps a SCRAM verifier, never the password."""
    grant_reader(role, url=migrated_db)
    url = grant_reader(role, url=migrated_db, password="s3cret pw")
    assert f"//{role}:s3cret%20pw@" in url  # encoded, so libpq takes it
    with psycopg.connect(migrated_db) as conn:
        row = conn.execute(
            "SELECT rolpassword, rolcanlogin, rolsuper FROM pg_authid WHERE rolname = %s",
            (role,),
        ).fetchone()
    assert row[0].startswith("SCRAM-SHA-256$") and "s3cret" not in row[0]
    assert row[1:] == (True, False)


def test_an_admin_is_never_made_read_only(migrated_db: str, role: str) -> None:
    """The current user, a superuser or a table owner is refused, so no one locks out the
    account that runs the migrations."""
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        me = conn.execute("SELECT current_user").fetchone()[0]
        conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("CREATE TABLE owned (x int)"))
        conn.execute(sql.SQL("ALTER TABLE owned OWNER TO {}").format(sql.Identifier(role)))
    with pytest.raises(UsageError, match=rf"role {me!r} is (a superuser|you): choose another name"):
        grant_reader(me, url=migrated_db)
    with pytest.raises(UsageError, match=f"role '{role}' is an owner of tables here"):
        grant_reader(role, url=migrated_db)


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("notebooks", True),
        ("_r2", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("Reader", False),
        ("2reader", False),
        ('x"; DROP TABLE y; --', False),
        ("pg_monitor", False),
        ("public", False),
    ],
    ids=[
        "a plain name",
        "underscore first",
        "63 characters",
        "64 characters",
        "an upper-case letter",
        "a digit first",
        "an injection",
        "a pg_ name",
        "public",
    ],
)
def test_role_names_are_plain_identifiers(name: str, ok: bool) -> None:
    """Only plain lowercase identifiers pass, before any SQL is built."""
    if ok:
        assert check_role_name(name) == name
    else:
        with pytest.raises(UsageError, match="role name"):
            check_role_name(name)


def test_a_report_runs_through_the_reader_url(migrated_db: str, role: str, tmp_path) -> None:
    """The README's setup: a report through the reader's URL succeeds and finds the data."""
    demo.run(seed=7, spans=5_000, url=migrated_db)
    url = grant_reader(role, url=migrated_db, password="pw-for-tests")
    result = run_cli(
        "report", "trace", "--out", str(tmp_path), env={"OBSLIB_DATABASE_URL": url}, timeout=300
    )
    assert result.returncode == 0, result.stderr
    nb = nbformat.read(str(tmp_path / "trace_investigation.ipynb"), as_version=4)
    texts = [str(o.get("data", {})) for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert any("Investigating trace " in t for t in texts)


def test_an_existing_role_loses_its_write_grants(migrated_db: str, role: str) -> None:
    """A role that could insert before ``grant-reader`` cannot afterwards."""
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute(
            sql.SQL("GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(
                sql.Identifier(role)
            )
        )
    grant_reader(role, url=migrated_db)
    with as_role(migrated_db, role) as conn:
        conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
            conn.execute(WRITES["delete"])


def test_a_member_of_another_role_is_refused(migrated_db: str, role: str) -> None:
    """Membership in a writing role would let the reader SET ROLE and write."""
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role + "_writers")))
        conn.execute(
            sql.SQL("GRANT {} TO {}").format(
                sql.Identifier(role + "_writers"), sql.Identifier(role)
            )
        )
    try:
        with pytest.raises(UsageError, match=f"member of {role}_writers"):
            grant_reader(role, url=migrated_db)
    finally:
        drop_role(migrated_db, role + "_writers")


def test_writes_stay_refused_after_the_reader_makes_itself_read_write(
    migrated_db: str, role: str
) -> None:
    """The read-only default guards against accidents only: the role may switch it off for
    good (ALTER ROLE on itself needs no privilege). The missing grants still refuse every
    table write."""
    grant_reader(role, url=migrated_db, password="pw-for-tests")
    with as_role(migrated_db, role) as conn:
        conn.execute("SET default_transaction_read_only = off")
        conn.execute(
            sql.SQL("ALTER ROLE {} SET default_transaction_read_only = off").format(
                sql.Identifier(role)
            )
        )
    with as_role(migrated_db, role) as conn:  # a new session starts read-write now
        assert conn.execute("SHOW transaction_read_only").fetchone()[0] == "off"
        for statement in WRITES.values():
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                conn.execute(statement)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE mine (x int)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT setval('alert_incidents_id_seq', 1)")


def test_what_every_role_keeps_the_reader_keeps_too(migrated_db: str, role: str) -> None:
    """The limits the README states, pinned: PostgreSQL grants NOTIFY (no privilege exists)
    and the lo_* functions to every role and has no per-role deny. A notification even goes
    out from a read-only session; a large object only once the session asks for read-write."""
    grant_reader(role, url=migrated_db, password="pw-for-tests")
    with as_role(migrated_db, role) as conn:
        assert conn.execute("SHOW transaction_read_only").fetchone()[0] == "on"
        conn.execute("SELECT pg_notify('obslib_incidents', 'INC-hint')")  # allowed
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("SELECT lo_from_bytea(0, 'x')")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TEMP TABLE scratch (x int)")
        grants = conn.execute(
            "SELECT has_function_privilege(current_user, 'lo_from_bytea(oid, bytea)', 'EXECUTE'),"
            " has_function_privilege(current_user, 'pg_notify(text, text)', 'EXECUTE')"
        ).fetchone()
        assert grants == (True, True)  # through PUBLIC: a REVOKE ... FROM role changes nothing


@pytest.mark.parametrize(
    ("grant", "shown"),
    [
        ("GRANT INSERT ON alert_incidents TO PUBLIC", "INSERT on alert_incidents"),
        ("GRANT UPDATE (incident_data) ON alert_incidents TO PUBLIC", "UPDATE on alert_incidents"),
        ("GRANT CREATE ON SCHEMA public TO PUBLIC", "CREATE on schema public"),
    ],
    ids=["a table write", "a column update", "creating in the schema"],
)
def test_a_write_granted_to_public_is_refused(
    migrated_db: str, role: str, grant: str, shown: str
) -> None:
    """What PUBLIC may do the reader may do: grant-reader names it instead of printing a URL
    for a role that can write, and leaves no role behind."""
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute(grant)
    with pytest.raises(UsageError, match=f"could still write through grants to PUBLIC.*{shown}"):
        grant_reader(role, url=migrated_db, password="pw-for-tests")
    with psycopg.connect(migrated_db) as conn:
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None


@pytest.mark.parametrize(
    "folder",
    ["/tmp/a b/pgdata", "/Users/me/Library/Application Support/obslib/pgdata", "/tmp/x+y/é"],
    ids=["a space", "macOS's default home", "a plus and a non-ASCII letter"],
)
def test_the_reader_url_keeps_a_socket_folder_as_libpq_reads_it(folder: str) -> None:
    """libpq decodes %20 but keeps "+" as a plus: the reader's URL must name the same folder."""
    admin = f"postgresql+psycopg://admin@/obslib?host={quote(folder, safe='/')}"
    url = roles.reader_url(admin, "notebooks", "p w")
    parsed = conninfo_to_dict(db.libpq_url(url))
    assert (parsed["host"], parsed["user"], parsed["password"]) == (folder, "notebooks", "p w")
