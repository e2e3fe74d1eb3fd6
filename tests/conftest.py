"""Shared fixtures: one real PostgreSQL per test run (see tests/pg.py), a fresh database
per test (empty, or migrated: a copy of a template migrated once), the demo database shared
read-only, and the CLI run for real."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from obslib.storage.migrate import discover
from tests.pg import (
    DEMO_SPANS,
    MIGRATIONS,
    POSTGRES,
    REPO,
    migrated_database,
    scratch_database,
    with_database,
)

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "DEMO_SPANS",
    "LATEST",
    "MIGRATIONS",
    "REPO",
    "migrated_database",
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


# The test files that take longest, with their seconds alone on a worker (measured on two
# cores: `--durations`, summed per file). `pytest -n auto --dist loadfile` hands files to the
# workers in collection order (with --no-loadscope-reorder, set in pyproject.toml: xdist's
# default sorts files by their number of tests, which sent the four-test Spark cluster and
# the two-test browser file last, each a minute alone at the end of the run). These go
# first, longest first (the longest-processing-time rule), and the many short files fill
# in behind them, so the workers finish together. A file missing here only runs later.
SLOWEST_FILES = {
    "tests/jobs/test_triage.py": 148,
    "tests/spark/test_cluster.py": 130,
    "tests/spark/test_spark.py": 75,
    "tests/jobs/test_triage_hostile.py": 60,
    "tests/test_readme_commands.py": 56,
    "tests/cli/test_cli.py": 55,
    "tests/views/test_lab_browser.py": 52,
    "tests/jobs/test_retain.py": 44,
    "tests/reports/test_injection.py": 43,
    "tests/storage/test_pgserver.py": 40,
    "tests/load/test_export.py": 38,
    "tests/reports/test_reports.py": 38,
    "tests/reports/test_report_text.py": 33,
    "tests/ingest/test_limits.py": 24,
    "tests/slo/test_prometheus.py": 22,
    "tests/ingest/test_openslo.py": 21,
    "tests/spark/test_environment.py": 20,
    "tests/jobs/test_slo_record.py": 20,
    "tests/reports/test_import_cost.py": 20,
    "tests/test_demo.py": 20,
    "tests/ingest/test_receiver_hostile.py": 20,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files of SLOWEST_FILES first, longest first; every other file after them in
    collection order; the tests of a file in their own order (a stable sort)."""
    items.sort(key=lambda item: -SLOWEST_FILES.get(item.nodeid.split("::", 1)[0], 0))


@pytest.fixture(scope="session")
def server_url() -> str:
    """Admin URL of the PostgreSQL server this test run uses."""
    return POSTGRES.server_url()


@pytest.fixture
def fresh_db(request: pytest.FixtureRequest, server_url: str) -> Iterator[str]:
    """URL of a new, empty database, dropped after the test. When the test (or a fixture
    of it) also asks for ``migrated_db``, both are this one database, already migrated."""
    if "migrated_db" in request.fixturenames:
        with migrated_database() as url:
            yield url
    else:
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
    """``fresh_db`` with every migration applied: a copy of the run's migrated template
    (``tests.pg.migrated_database``), the same as migrating an empty database, 5-10x faster."""
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
