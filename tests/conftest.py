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


# The test files that take longest, in seconds: their tests' `--durations` summed, from one
# whole run of `pytest -n auto --dist loadfile` on two cores that other work shared (load ~6,
# so about twice an idle machine's; the ratios are what count here). The workers take files
# in collection order (with --no-loadscope-reorder, set in pyproject.toml: xdist's default
# sorts files by their number of tests, which sent the four-test Spark cluster and the
# two-test browser file last, each a minute alone at the end of the run). These go first,
# longest first (the longest-processing-time rule), and the many short files fill in behind
# them: in that run the two workers' sums came within 20 s of each other (1,479 s, 1,460 s).
# A file missing here only runs later; add one that grows past the last entry.
SLOWEST_FILES = {
    "tests/jobs/test_triage.py": 293,
    "tests/jobs/test_retain.py": 199,
    "tests/spark/test_spark.py": 190,
    "tests/storage/test_pgserver.py": 134,
    "tests/test_readme_commands.py": 126,
    "tests/load/test_export.py": 123,
    "tests/spark/test_cluster.py": 120,
    "tests/cli/test_cli.py": 120,
    "tests/reports/test_reports.py": 96,
    "tests/jobs/test_triage_hostile.py": 91,
    "tests/reports/test_injection.py": 90,
    "tests/views/test_lab_browser.py": 82,
    "tests/test_demo.py": 62,
    "tests/ingest/test_limits.py": 62,
    "tests/reports/test_report_text.py": 57,
    "tests/reports/test_import_cost.py": 54,
    "tests/slo/test_prometheus.py": 50,
    "tests/ingest/test_hostile.py": 47,
    "tests/ingest/test_openslo.py": 46,
    "tests/spark/test_environment.py": 41,
    "tests/traces/test_traces.py": 38,
    "tests/jobs/test_slo_record.py": 36,
    "tests/reports/test_bundle.py": 36,
    "tests/reports/test_spare_kernel.py": 36,
}


# Every JVM the tests start (Spark's local sessions, the loopback cluster's master, workers,
# drivers and executors: all inherit the environment) compiles with C1 only and collects with
# the serial collector. Each lives a minute or two over a few thousand rows, where C2's
# compiler threads and the parallel collector cost more than they win back. Measured alone,
# the same load on two cores: tests/spark/test_spark.py with test_environment.py 140.7 s ->
# 86.9 s wall; tests/spark/test_cluster.py 128.5 s -> 70.6 s CPU (user+sys). Nothing a test
# proves depends on the JIT; bench/ times Spark with the JVM's defaults.
JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def pytest_configure(config: pytest.Config) -> None:
    """JVM_OPTIONS for every JVM of the run, after any JAVA_TOOL_OPTIONS of the caller's."""
    own = os.environ.get("JAVA_TOOL_OPTIONS", "")
    if JVM_OPTIONS not in own:
        os.environ["JAVA_TOOL_OPTIONS"] = f"{own} {JVM_OPTIONS}".strip()


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
