"""Shared fixtures: one real PostgreSQL per test run, and a fresh database per test.

The server is $OBSLIB_DATABASE_URL when set, else an embedded one started for this run in a
temporary OBSLIB_HOME (never the user's own) and stopped at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from obslib import db, embedded
from obslib.config import ENV_DATABASE_URL, ENV_HOME, settings
from obslib.migrate import Migrator, discover

REPO = Path(__file__).resolve().parent.parent
MIGRATIONS = REPO / "migrations"
LATEST = discover(MIGRATIONS)[-1].version  # the newest shipped schema version


def with_database(url: str, name: str) -> str:
    """The same server, another database."""
    return make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """Admin URL of the PostgreSQL server this test run uses."""
    external = os.environ.get(ENV_DATABASE_URL, "").strip()
    if external:
        yield db.libpq_url(external)
        return
    home = Path(tempfile.mkdtemp(prefix="obt-", dir="/tmp"))  # short: the socket lives inside
    saved = os.environ.get(ENV_HOME)
    os.environ[ENV_HOME] = str(home)
    try:
        cfg = settings()
        url = embedded.start(cfg)
        # Library calls without an explicit URL must land on this server, never a user's own.
        os.environ[ENV_DATABASE_URL] = url
        yield url
    finally:
        os.environ.pop(ENV_DATABASE_URL, None)
        embedded.stop(settings())
        if saved is None:
            os.environ.pop(ENV_HOME, None)
        else:
            os.environ[ENV_HOME] = saved
        shutil.rmtree(home, ignore_errors=True)


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    name = f"obslib_t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def fresh_db(server_url: str) -> Iterator[str]:
    """URL of a new, empty database, dropped after the test."""
    with scratch_database(server_url) as url:
        yield url


DEMO_SPANS = 150_000  # the same story at 3/10 of the default traffic


@pytest.fixture(scope="session")
def demo_db(server_url: str) -> Iterator[tuple[str, object]]:
    """A migrated database holding the demo (seed 7, DEMO_SPANS spans) and its summary.

    Shared by the whole run: tests must only read it.
    """
    from obslib import demo

    with scratch_database(server_url) as url:
        Migrator(url, MIGRATIONS).up()
        summary = demo.run(seed=7, spans=DEMO_SPANS, url=url)
        yield url, summary


@pytest.fixture
def migrated_db(fresh_db: str) -> str:
    """A fresh database with every migration applied."""
    Migrator(fresh_db, MIGRATIONS).up()
    return fresh_db


@pytest.fixture
def migrations_copy(tmp_path: Path) -> Path:
    """A private copy of the migrations folder that a test may edit."""
    target = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, target)
    return target


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120):
    """Run the real ``obslib`` command in a subprocess and return the CompletedProcess."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OBSLIB_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "obslib", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
