"""Loaders keep one connection per URL, survive a server restart, and find the embedded
server without connecting to it again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from obslib import load
from obslib.config import ENV_DATABASE_URL, ENV_HOME, Settings
from obslib.errors import UsageError
from obslib.storage import db, pgserver
from obslib.storage.migrate import Migrator
from tests.conftest import MIGRATIONS

OTHERS = """SELECT pid, backend_start FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
ORDER BY pid"""


def _others(url: str) -> list[tuple]:
    """The client sessions on the URL's database other than this query's own."""
    with psycopg.connect(url) as conn:
        return conn.execute(OTHERS).fetchall()


def test_many_small_loads_use_one_connection(migrated_db: str) -> None:
    """200 load.trace calls on one URL run on one session, still open afterwards."""
    assert load.trace("t-none", url=migrated_db).empty
    first = _others(migrated_db)
    assert len(first) == 1  # the kept connection, idle
    for i in range(199):
        load.trace(f"t-{i}", url=migrated_db)
    assert _others(migrated_db) == first  # the same backend, started once


def test_a_broken_kept_connection_is_replaced_once(migrated_db: str) -> None:
    """When the server ends the kept session (as a restart does), the next load reconnects
    and succeeds; a query error is not retried and does not poison the next call."""
    load.trace("t-none", url=migrated_db)
    (old_pid, _), *_ = _others(migrated_db)
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (old_pid,))
    for _ in range(50):  # the session is gone once its backend has exited
        if not _others(migrated_db):
            break
        time.sleep(0.05)
    assert load.trace("t-none", url=migrated_db).empty
    (new_pid, _), *_ = _others(migrated_db)
    assert new_pid != old_pid
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute("DROP TABLE structured_logs")
    with pytest.raises(UsageError, match="no obslib schema"):
        load.logs(url=migrated_db)
    assert load.trace("t-none", url=migrated_db).empty


def _connections_logged(log: Path) -> int:
    return log.read_text(errors="replace").count("connection received")


@pytest.fixture
def embedded(server_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A scratch embedded server that library calls without a URL use, logging connections.

    ``server_url`` comes first so the session's server (whose home outlives this one) is the
    one that fixed the embedded package's lock folder.
    """
    with pgserver.ScratchServer(prefix="obl-") as server:
        monkeypatch.delenv(ENV_DATABASE_URL, raising=False)
        monkeypatch.setenv(ENV_HOME, str(server.home))
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET log_connections = 'on'")
            conn.execute("SELECT pg_reload_conf()")
        Migrator(server.url, MIGRATIONS).up()
        yield server.settings


def _settle(url: str, log: Path, before: int) -> int:
    """Connections logged since ``before``, once a marker connection of ours shows up."""
    psycopg.connect(url).close()
    for _ in range(100):
        now = _connections_logged(log)
        if now > before:
            return now - before - 1  # not counting the marker
        time.sleep(0.05)
    raise AssertionError("the marker connection never reached the server log")


def test_the_embedded_url_is_found_without_connecting(embedded: Settings) -> None:
    """Once the embedded server is up, database_url() and loads without a URL open no new
    connection: not for the server check, not for each query."""
    url = db.database_url()
    load.trace("t-none")  # the kept connection opens here
    log = embedded.pgdata / "log"
    before = _connections_logged(log)
    for _ in range(200):
        assert db.database_url() == url
        load.trace("t-none")
    assert _settle(url, log, before) == 0


def test_a_stopped_embedded_server_is_started_again(embedded: Settings) -> None:
    """After `db stop`, the next load without a URL starts the server and reads from it."""
    assert load.trace("t-none").empty
    before = pgserver.state(embedded)
    assert pgserver.stop(embedded).running
    assert not pgserver.state(embedded).running
    assert load.trace("t-none").empty  # noticed, restarted, reconnected
    after = pgserver.state(embedded)
    assert after.running and after.pid != before.pid
    assert load.trace("t-none").empty
