"""The `obslib` command as a user meets it: help, exit codes, one-line errors."""

from __future__ import annotations

from pathlib import Path

from obslib.storage.migrate import discover
from tests.conftest import LATEST, MIGRATIONS, run_cli


def test_help_lists_every_command() -> None:
    """`obslib --help` names every command a user can run."""
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("db up", "db down", "db status", "db force", "db url", "db stop"):
        assert f"obslib {command}" in result.stdout


def test_bad_usage_is_one_line_and_exit_2() -> None:
    """An unknown command is one line on stderr, exit code 2, no traceback."""
    result = run_cli("db", "sideways")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "invalid choice: 'sideways'" in result.stderr


def test_unreachable_database_names_host_and_port_but_not_the_password() -> None:
    """A server that is not there: one line with host and port, no secret, exit 2."""
    url = "postgresql+psycopg://alice:s3cret-pw@127.0.0.1:1/domainflow"
    result = run_cli("db", "status", env={"OBSLIB_DATABASE_URL": url})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "cannot reach PostgreSQL at 127.0.0.1:1" in lines[0]
    assert "s3cret-pw" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_non_postgres_url_is_a_usage_error() -> None:
    """A URL of another database kind is refused before any connection."""
    result = run_cli("db", "status", env={"OBSLIB_DATABASE_URL": "mysql://u:p@h/db"})
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "obslib: error: OBSLIB_DATABASE_URL must be a postgresql:// URL, not mysql://"
    )


def test_db_url_masks_the_password() -> None:
    """`db url` shows where the database is without its password."""
    url = "postgresql://alice:s3cret-pw@db.example:6543/domainflow"
    result = run_cli("db", "url", env={"OBSLIB_DATABASE_URL": url})
    assert result.returncode == 0
    assert result.stdout.strip() == "postgresql://alice:***@db.example:6543/domainflow"


def test_a_password_in_the_query_string_is_masked_too() -> None:
    """libpq also takes ?password=…: `db url` hides it as well."""
    url = "postgresql://alice@db.example/domainflow?password=s3cret-pw&sslmode=require"
    result = run_cli("db", "url", env={"OBSLIB_DATABASE_URL": url})
    assert "s3cret-pw" not in result.stdout
    assert (
        result.stdout.strip()
        == "postgresql://alice@db.example/domainflow?password=***&sslmode=require"
    )


def test_a_bad_url_option_is_a_usage_error() -> None:
    """An option libpq does not know is bad input (exit 2), not an internal error."""
    result = run_cli(
        "db", "status", env={"OBSLIB_DATABASE_URL": "postgresql://u@127.0.0.1:1/x?bogus=1"}
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("obslib: error: OBSLIB_DATABASE_URL is not usable")


def test_up_status_down_through_the_cli(fresh_db: str) -> None:
    """The migration commands work end to end and report what they did."""
    env = {"OBSLIB_DATABASE_URL": fresh_db}
    up = run_cli("db", "up", env=env)
    assert up.returncode == 0, up.stderr
    assert "applied 0001_monitoring_observability" in up.stdout
    assert f"version   {LATEST}, clean" in up.stdout
    down = run_cli("db", "down", env=env)
    assert down.returncode == 0, down.stderr
    assert f"reverted {discover(MIGRATIONS)[-1].label}" in down.stdout
    assert f"version   {LATEST - 1}, clean" in down.stdout
    everything = run_cli("db", "down", "--all", env=env)
    assert "version   none, clean" in everything.stdout
    bad = run_cli("db", "down", "--to", "3", "--all", env=env)
    assert bad.returncode == 2


def test_broken_migration_exits_1_naming_the_file(fresh_db: str, migrations_copy: Path) -> None:
    """A migration failure is an operation failure: exit 1, the file and statement named."""
    (migrations_copy / f"{LATEST + 1:04d}_oops.up.sql").write_text("SELEC 1;\n")
    env = {"OBSLIB_DATABASE_URL": fresh_db, "OBSLIB_MIGRATIONS_DIR": str(migrations_copy)}
    result = run_cli("db", "up", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"obslib: error: {LATEST + 1:04d}_oops.up.sql: statement 1 (line 1) failed:"
    )
    assert len(result.stderr.strip().splitlines()) == 1
    status = run_cli("db", "status", env=env)
    assert f"version   {LATEST + 1} DIRTY" in status.stdout
    debug = run_cli("--debug", "db", "up", env=env)
    assert "Traceback" in debug.stderr and debug.returncode == 1


def test_demo_through_the_cli(fresh_db: str) -> None:
    """`obslib demo` migrates, writes, summarises; a second run adds nothing."""
    env = {"OBSLIB_DATABASE_URL": fresh_db}
    first = run_cli("demo", "--spans", "5000", env=env)
    assert first.returncode == 0, first.stderr
    assert "applied 0001_monitoring_observability" in first.stdout
    assert "INC-20261114-0001: deploy of domain-service at 2026-11-14 14:05 UTC" in first.stdout
    assert "window     2026-11-02 00:00 UTC .. 2026-11-16 00:00 UTC" in first.stdout
    again = run_cli("demo", "--spans", "5000", env=env)
    assert "nothing new (already stored)" in again.stdout
    spans_line = next(line for line in first.stdout.splitlines() if "spans " in line)
    assert spans_line in again.stdout  # the same data, counted the same


def test_demo_refuses_a_silly_size() -> None:
    """A non-positive span count is bad usage: exit 2, one line."""
    result = run_cli("demo", "--spans", "0")
    assert result.returncode == 2
    assert "must be at least 1" in result.stderr and len(result.stderr.strip().splitlines()) == 1
