"""The embedded PostgreSQL: started on first use, reused, stopped on request, per user."""

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from pathlib import Path

import psycopg
import pytest

from obslib.config import Settings
from obslib.storage import pgserver
from tests.conftest import LATEST, REPO, run_cli

OTHER_USER = "obslibtest"


@pytest.fixture
def home() -> Path:
    """A short OBSLIB_HOME of its own (the server's socket lives inside it)."""
    path = Path(tempfile.mkdtemp(prefix="obh-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    pgserver.stop(Settings(database_url=None, home=path))
    shutil.rmtree(path, ignore_errors=True)


def test_started_on_first_use_reused_then_stopped(home: Path) -> None:
    """`db up` starts the server, later commands reuse it, `db stop` stops it."""
    env = {"OBSLIB_HOME": str(home)}
    first = run_cli("db", "up", env=env)
    assert first.returncode == 0, first.stderr
    assert f"(embedded, data in {home}/pgdata)" in first.stdout
    cfg = Settings(database_url=None, home=home)
    running = pgserver.state(cfg)
    assert running.running and running.pid
    again = run_cli("db", "status", env=env)
    assert f"version   {LATEST}, clean" in again.stdout
    assert pgserver.state(cfg).pid == running.pid  # the same server, not a new one
    url = run_cli("db", "url", env=env).stdout.strip()
    assert url == f"postgresql://postgres:@/obslib?host={home}/pgdata"
    stopped = run_cli("db", "stop", env=env)
    assert stopped.returncode == 0 and f"pid {running.pid}" in stopped.stdout
    assert not pgserver.state(cfg).running
    assert "not running" in run_cli("db", "stop", env=env).stdout
    # data survives a restart
    assert f"version   {LATEST}, clean" in run_cli("db", "status", env=env).stdout


def _python_for(user: str) -> str | None:
    """An interpreter of this Python version that ``user`` may execute, or None."""
    candidates = [
        sys.executable,
        f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}",
    ]
    for exe in candidates:
        probe = subprocess.run(
            ["runuser", "-u", user, "--", exe, "-c", "import sys; print(sys.version_info[:2])"],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0 and probe.stdout.strip() == str(tuple(sys.version_info[:2])):
            return exe
    return None


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("runuser"), reason="needs root to add a user"
)
def test_a_second_unix_user_starts_its_own_server(home: Path, server_url: str) -> None:
    """After root has started servers (and left the package's shared /tmp/.lockfile behind),
    another Unix user still starts an embedded server of their own."""
    # The trap from shared machines: the package's fallback lock file, created by root.
    shared_lock = Path(tempfile.gettempdir()) / ".lockfile"
    created_lock = not shared_lock.exists()
    if created_lock:
        shared_lock.touch(mode=0o644)
    try:
        pwd.getpwnam(OTHER_USER)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", OTHER_USER], check=True)
    user = pwd.getpwnam(OTHER_USER)
    os.chown(home, user.pw_uid, user.pw_gid)
    python = _python_for(OTHER_USER)
    if python is None:
        pytest.skip(f"no Python {sys.version_info[:2]} that {OTHER_USER} may execute")
    site = [p for p in sys.path if p.endswith("site-packages")]
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "OBSLIB_HOME": str(home / "obslib"),
        "PYTHONPATH": os.pathsep.join([str(REPO), *site]),
    }
    script = (
        "from obslib import config\nfrom obslib.storage import db, migrate, pgserver\n"
        "url = db.database_url()\n"
        "migrate.Migrator(url).up()\n"
        "print(db.mask_url(url))\n"
        "print(pgserver.stop(config.settings()).pid)\n"
    )
    result = subprocess.run(
        [
            "runuser",
            "-u",
            OTHER_USER,
            "--",
            "env",
            "-i",
            *(f"{k}={v}" for k, v in env.items()),
            python,
            "-c",
            script,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    try:
        assert result.returncode == 0, result.stderr
        url, pid = result.stdout.split()
        assert url == f"postgresql://postgres:@/obslib?host={home}/obslib/pgdata"
        assert int(pid) > 0
        assert (
            home / "obslib" / "pgdata"
        ).stat().st_uid == user.pw_uid  # their server, their files
        lock_dir = home / "obslib" / "run"
        assert lock_dir.stat().st_mode & 0o777 == 0o700
    finally:
        if created_lock:
            shared_lock.unlink(missing_ok=True)


def test_the_reader_role_on_the_embedded_server_needs_no_password(home: Path) -> None:
    """The embedded server listens on its socket only, with trust for local users (its folder
    is mode 700, so only this Unix user reaches it): the reader's URL is the admin's URL with
    another user name, and it reads but cannot write."""
    env = {"OBSLIB_HOME": str(home)}
    assert run_cli("db", "up", env=env).returncode == 0
    granted = run_cli("db", "grant-reader", "notebooks", env=env)
    assert granted.returncode == 0, granted.stderr
    url = f"postgresql://notebooks@/obslib?host={home}/pgdata"
    assert granted.stdout.splitlines()[-1] == f"reader URL  {url}"
    hba = (home / "pgdata" / "pg_hba.conf").read_text().splitlines()
    assert next(r.split() for r in hba if r.startswith("local")) == ["local", "all", "all", "trust"]
    reader = {"OBSLIB_DATABASE_URL": url}
    assert f"version   {LATEST}, clean" in run_cli("db", "status", env=reader).stdout
    refused = run_cli("db", "down", env=reader)
    assert refused.returncode == 1, refused.stderr
    assert "may not change the schema" in refused.stderr  # (the user name reads ***)


HOTROD = REPO / "tests" / "data" / "jaeger" / "hotrod_trace.json"
READ_BACK = (
    "import pandas as pd\nimport obslib\nfrom obslib.storage import db\n"
    "spans = obslib.load.spans('2000-01-01', '2100-01-01')\n"  # ADBC, COPY
    "print(len(spans), len(obslib.load.trace(spans.trace_id[0])))\n"  # ADBC, bound
    "print(pd.read_sql('SELECT count(*) AS n FROM distributed_traces', db.engine()).n[0])\n"
)  # the Jaeger file's one trace has 8 spans


@pytest.mark.parametrize(
    ("folder", "socket_in_pgdata"),
    [
        pytest.param(
            'Application Support/Bob\'s "data" $HOME `id` hé 日本',
            True,
            id="a space, non-ASCII "
            "letters and shell quotes keep the socket in pgdata (quoted for pg_ctl -o)",
        ),
        pytest.param(
            "sre, team", False, id="a comma (libpq's host list) moves the socket to a short folder"
        ),
        pytest.param(
            "x" * 90 + "/é obslib", False, id="a home too long for a socket path moves it too"
        ),
    ],
)
def test_an_awkward_home_starts_migrates_writes_reads_and_stops(
    home: Path, folder: str, socket_in_pgdata: bool
) -> None:
    """The embedded server works in any OBSLIB_HOME (macOS's default has a space): `db up`,
    an import, reads through ADBC and SQLAlchemy, the URL `db url` prints, `db stop`."""
    awkward = home / folder
    cfg = Settings(database_url=None, home=awkward)
    env = {"OBSLIB_HOME": str(awkward)}
    try:
        up = run_cli("db", "up", env=env)
        assert up.returncode == 0, up.stderr
        assert f"(embedded, data in {awkward}/pgdata)" in up.stdout
        assert f"version   {LATEST}, clean" in up.stdout
        printed = run_cli("db", "url", env=env).stdout.strip()
        with psycopg.connect(printed) as conn:  # what `db url` prints is a working URL
            socket_dir = Path(conn.info.host)
        assert (socket_dir == awkward / "pgdata") is socket_in_pgdata
        assert stat.S_IMODE(socket_dir.stat().st_mode) == 0o700  # private: local trust auth
        imported = run_cli("ingest", "jaeger", str(HOTROD), env=env)
        assert imported.returncode == 0, imported.stderr
        read = subprocess.run(
            [sys.executable, "-c", READ_BACK],
            env={**{k: v for k, v in os.environ.items() if not k.startswith("OBSLIB_")}, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert read.returncode == 0, read.stderr
        assert read.stdout.split() == ["8", "8", "8"]
        stopped = run_cli("db", "stop", env=env)
        assert stopped.returncode == 0, stopped.stderr
        assert not pgserver.state(cfg).running
        assert socket_in_pgdata or not socket_dir.exists()  # our short folder is removed
    finally:
        pgserver.stop(cfg)


def _modes(path: Path) -> dict[Path, int]:
    return {p: stat.S_IMODE(p.stat().st_mode) for p in [path, *path.parents]}


@pytest.mark.skipif(os.geteuid() != 0, reason="the server runs as another user only under root")
def test_run_as_root_a_closed_parent_stays_closed_and_the_error_says_what_to_do() -> None:
    """Under root the server runs as `pgserver`, which must pass through every folder above
    the data. A mode-700 parent obslib did not create is left as it is, after start and after
    stop: `db up` exits 2 with one line naming the folder and the fix, and creates nothing."""
    parent = Path(tempfile.mkdtemp(prefix="obp-", dir="/tmp"))  # mode 700, not obslib's
    home = parent / "obslib"
    env = {"OBSLIB_HOME": str(home)}
    before = _modes(parent)
    try:
        up = run_cli("db", "up", env=env)
        assert up.returncode == 2, up.stdout + up.stderr
        assert up.stderr == (
            f"obslib: error: postgres runs as user pgserver and cannot reach {parent}: give it"
            f" search permission (chmod o+x {parent}) or set OBSLIB_HOME elsewhere\n"
        )
        assert _modes(parent) == before and before[parent] == 0o700
        assert not home.exists()
        stopped = run_cli("db", "stop", env=env)
        assert stopped.returncode == 0, stopped.stderr
        assert _modes(parent) == before
    finally:
        pgserver.stop(Settings(database_url=None, home=home))
        shutil.rmtree(parent, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="the server runs as another user only under root")
def test_run_as_root_only_the_folders_obslib_creates_are_opened_and_only_for_search() -> None:
    """A parent that lets others search but not list (mode 701) stays so; the folders obslib
    creates for OBSLIB_HOME (here under umask 077) get search permission only (711)."""
    parent = Path(tempfile.mkdtemp(prefix="obp-", dir="/tmp"))
    parent.chmod(0o701)
    home = parent / "made" / "by_obslib"
    cfg = Settings(database_url=None, home=home)
    before = _modes(parent)
    umask = os.umask(0o077)
    try:
        url = pgserver.url(cfg)
        os.umask(umask)
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("obslib",)
        assert _modes(parent) == before
        assert _modes(home)[home] == _modes(home)[home.parent] == 0o711
        assert pgserver.stop(cfg).running
        assert _modes(parent) == before
    finally:
        os.umask(umask)
        pgserver.stop(cfg)
        shutil.rmtree(parent, ignore_errors=True)


def _cli(*args: str, home: Path, **popen: object) -> subprocess.Popen[str]:
    """Start the real ``obslib`` command without waiting (as run_cli runs it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSLIB_")}
    env["OBSLIB_HOME"] = str(home)
    return subprocess.Popen(
        [sys.executable, "-m", "obslib", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def _blocked_on(lock: Path) -> set[int]:
    """Processes waiting for a flock on ``lock`` (Linux's /proc/locks marks a waiter ``->``)."""
    inode = f":{lock.stat().st_ino} "
    rows = Path("/proc/locks").read_text().splitlines()
    return {int(r.split()[5]) for r in rows if "->" in r and "FLOCK" in r and inode in r}


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux's /proc/locks")
def test_several_processes_starting_a_fresh_server_at_once_all_succeed(home: Path) -> None:
    """On a new install `obslib collect` and `obslib db up` may start together: each sees no
    data folder yet, but only the first to take the start lock runs initdb; the others find
    the cluster made meanwhile and share the one server. (The test holds the start lock until
    all three wait for it, so each has looked at the data folder before any initdb ran.)"""
    cfg = Settings(database_url=None, home=home)
    cfg.runtime_dir.mkdir(mode=0o700)
    lock = cfg.runtime_dir / "start.lock"
    runs: list[subprocess.Popen[str]] = []
    try:
        with lock.open("a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            runs = [_cli("db", "up", home=home) for _ in range(3)]
            deadline = time.monotonic() + 120
            while not {r.pid for r in runs} <= _blocked_on(lock):
                assert all(r.poll() is None for r in runs), [r.communicate() for r in runs]
                assert time.monotonic() < deadline, "the processes never waited for the lock"
                time.sleep(0.05)
            assert not (cfg.pgdata / "PG_VERSION").exists()
        results = [(run.wait(timeout=180), *run.communicate()) for run in runs]
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
                run.communicate()
    for code, out, err in results:
        assert code == 0, out + err
    running = pgserver.state(cfg)
    assert running.running and running.pid
    status = run_cli("db", "status", env={"OBSLIB_HOME": str(home)})
    assert f"version   {LATEST}, clean" in status.stdout
    assert pgserver.stop(cfg).pid == running.pid  # one server, the one all three reached
    assert not pgserver.state(cfg).running


def _group_members(pgid: int) -> list[int]:
    """The live processes of process group ``pgid``."""
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError):
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(stat_file.parent.name))
    return found


@pytest.mark.parametrize(
    "whole_group",
    [
        pytest.param(True, id="obslib and initdb killed"),
        pytest.param(False, id="obslib killed, initdb runs on orphaned"),
    ],
)
def test_an_initdb_killed_midway_does_not_break_later_starts(home: Path, whole_group: bool) -> None:
    """initdb writes PG_VERSION early: killed then (a timeout, SIGKILL), it leaves a half-made
    cluster. It works in a temporary folder beside pgdata, renamed into place only when
    initdb succeeded, so the next start removes the leftover and sets the server up. An
    initdb outliving obslib holds the start lock, so the next start waits for it to end."""
    run = _cli("db", "up", home=home, start_new_session=True)  # its own process group
    try:
        deadline = time.monotonic() + 120
        while not list(home.glob("*/PG_VERSION")):  # initdb is under way
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline, "initdb never started"
            time.sleep(0.005)
        if whole_group:
            os.killpg(run.pid, signal.SIGKILL)  # obslib, initdb and its single-user postgres
        else:
            run.kill()
            run.wait()
            # the orphaned initdb holds the start lock while it lives
            with (home / "run" / "start.lock").open("a") as lock:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    pass
                else:
                    fcntl.flock(lock, fcntl.LOCK_UN)
                    assert not _group_members(run.pid), "the lock is free while initdb runs"
    except BaseException:
        with suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)
        raise
    finally:
        run.communicate()
    assert run.returncode == -signal.SIGKILL
    cfg = Settings(database_url=None, home=home)
    assert not pgserver.state(cfg).running
    env = {"OBSLIB_HOME": str(home)}
    up = run_cli("db", "up", env=env)
    assert up.returncode == 0, up.stdout + up.stderr
    assert f"version   {LATEST}, clean" in up.stdout
    assert sorted(p.name for p in home.iterdir()) == ["pgdata", "run"]  # no leftover
    assert run_cli("db", "stop", env=env).returncode == 0
    assert not pgserver.state(cfg).running


def test_a_leftover_temporary_initdb_folder_is_removed_on_the_next_start(home: Path) -> None:
    """What a killed run leaves (a partial cluster in the temporary folder, no pgdata) is
    removed under the start lock; initdb then makes the cluster afresh."""
    leftover = home / pgserver.INITDB_DIR
    (leftover / "base").mkdir(parents=True, mode=0o700)
    (leftover / "PG_VERSION").write_text("16\n")
    cfg = Settings(database_url=None, home=home)
    url = pgserver.url(cfg)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("obslib",)
    assert not leftover.exists()
    assert (cfg.pgdata / "PG_VERSION").is_file()
    assert stat.S_IMODE(cfg.pgdata.stat().st_mode) == 0o700
    owner = os.geteuid() if os.geteuid() != 0 else pwd.getpwnam(pgserver.SERVER_USER).pw_uid
    assert cfg.pgdata.stat().st_uid == owner
    assert pgserver.stop(cfg).running
