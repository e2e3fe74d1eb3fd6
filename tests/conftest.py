"""Shared fixtures: one real PostgreSQL per test run (see tests/pg.py), a fresh database
per test, the demo database shared read-only, and the CLI run for real."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from obslib.storage.migrate import Migrator, discover
from tests.pg import DEMO_SPANS, MIGRATIONS, POSTGRES, REPO, scratch_database, with_database

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "DEMO_SPANS",
    "LATEST",
    "MIGRATIONS",
    "REPO",
    "run_cli",
    "scratch_database",
    "with_database",
]

LATEST = discover(MIGRATIONS)[-1].version  # the newest shipped schema version
# Test runbooks are notebooks the triage tests run with an incident id; nbval must not
# collect them as notebooks of their own.
collect_ignore = ["data"]

# Debian's Chromium (.ci/run installs it as root), with the flags that work on a machine
# with no network: no background connections, no updates, no sandbox as root.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def server_url() -> str:
    """Admin URL of the PostgreSQL server this test run uses."""
    return POSTGRES.server_url()


@pytest.fixture
def fresh_db(server_url: str) -> Iterator[str]:
    """URL of a new, empty database, dropped after the test."""
    with scratch_database(server_url) as url:
        yield url


@pytest.fixture(scope="session")
def demo_db() -> tuple[str, object]:
    """A migrated database holding the demo (seed 7, DEMO_SPANS spans) and its summary.

    Shared by the whole run: tests must only read it.
    """
    return POSTGRES.demo()


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
