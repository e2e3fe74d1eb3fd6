"""The embedded PostgreSQL: started on first use, reused, stopped on request, per user."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

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
