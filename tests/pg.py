"""The PostgreSQL a test run uses, shared by the fixtures and the notebook tests.

$OBSLIB_DATABASE_URL when set, else an embedded server started for this run in a temporary
OBSLIB_HOME (never the user's own), stopped when the run ends. The demo database is made
once, on first need: notebooks (nbval) need it before their kernels start.

A migrated database is a copy of a template migrated once per run (``migrated_database``):
``CREATE DATABASE ... TEMPLATE`` copies it in ~0.1 s where running the migrations took
~0.6-1.3 s (measured on this machine, ~90 tests per run ask for one).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from obslib.config import ENV_DATABASE_URL, ENV_HOME
from obslib.storage import db, pgserver
from obslib.storage.migrate import Migrator

REPO = Path(__file__).resolve().parent.parent
MIGRATIONS = REPO / "migrations"
DEMO_SPANS = 150_000  # the same story at 3/10 of the default traffic
DEMO_SEED = 7


def with_database(url: str, name: str) -> str:
    """The same server, another database."""
    return make_url(url).set(database=name).render_as_string(hide_password=False)


class TestPostgres:
    """Lazily started server and demo database for one pytest session."""

    def __init__(self) -> None:
        self._url: str | None = None
        self._server: pgserver.ScratchServer | None = None
        self._saved_home: str | None = None
        self._demo: tuple[str, object] | None = None
        self._template: str | None = None  # name of the migrated template database
        self._external = os.environ.get(ENV_DATABASE_URL, "").strip() or None

    def server_url(self) -> str:
        if self._url is None:
            if self._external:
                self._url = db.libpq_url(self._external)
            else:
                self._server = pgserver.ScratchServer(prefix="obt-")
                self._saved_home = os.environ.get(ENV_HOME)
                os.environ[ENV_HOME] = str(self._server.home)
                self._url = self._server.url
                # library calls without a URL must land on this server, never a user's own
                os.environ[ENV_DATABASE_URL] = self._url
        return self._url

    def template(self) -> str:
        """Name of a database migrated to the newest version, made on first need and never
        connected to afterwards (PostgreSQL copies a template only while nobody is in it)."""
        if self._template is None:
            name = f"obslib_tmpl_{uuid.uuid4().hex[:8]}"
            _create(self.server_url(), name)
            Migrator(with_database(self.server_url(), name), MIGRATIONS).up()
            self._template = name
        return self._template

    def demo(self) -> tuple[str, object]:
        """(URL, DemoSummary) of a migrated database holding the demo; read-only for tests."""
        if self._demo is None:
            from obslib import demo

            name = f"obslib_demo_{uuid.uuid4().hex[:8]}"
            _create(self.server_url(), name, template=self.template())
            url = with_database(self.server_url(), name)
            self._demo = (url, demo.run(seed=DEMO_SEED, spans=DEMO_SPANS, url=url))
        return self._demo

    def close(self) -> None:
        db.close_adbc_reads()  # the loaders' kept sessions, before their databases go
        if self._demo is not None and self._url is not None:
            _drop(self._url, make_url(self._demo[0]).database)
        if self._template is not None and self._url is not None:
            _drop(self._url, self._template)
        self._demo = self._template = None
        if self._server is not None:
            os.environ.pop(ENV_DATABASE_URL, None)
            self._server.close()
            if self._saved_home is None:
                os.environ.pop(ENV_HOME, None)
            else:
                os.environ[ENV_HOME] = self._saved_home


def _create(server_url: str, name: str, template: str | None = None) -> None:
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(statement)


def _drop(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """A new empty database on the server, dropped afterwards."""
    name = f"obslib_t_{uuid.uuid4().hex[:10]}"
    _create(server_url, name)
    try:
        yield with_database(server_url, name)
    finally:
        _drop(server_url, name)


@contextmanager
def migrated_database() -> Iterator[str]:
    """A new database at the newest migration (a copy of ``POSTGRES.template()``, the same
    as running every migration on an empty one), dropped afterwards."""
    server_url = POSTGRES.server_url()
    name = f"obslib_t_{uuid.uuid4().hex[:10]}"
    _create(server_url, name, template=POSTGRES.template())
    try:
        yield with_database(server_url, name)
    finally:
        _drop(server_url, name)


POSTGRES = TestPostgres()
