"""obslib.spark and the process environment: importing it changes nothing, and a local
session gets its workers' interpreter without leaving ``PYSPARK_PYTHON`` set behind it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

IMPORT = """
import json, os
before = dict(os.environ)
import obslib.spark
after = dict(os.environ)
print(json.dumps({k: [before.get(k), after.get(k)] for k in set(before) | set(after)
                  if before.get(k) != after.get(k)}))
"""

SESSION = """
import json, os, sys
from obslib import spark

def run():
    before = {k: os.environ.get(k) for k in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON")}
    session = spark.local_session(1, partitions=1)
    try:
        session.sparkContext.setLogLevel("ERROR")
        workers = session.sparkContext.parallelize([0], 1).map(
            lambda _: __import__("sys").executable).collect()
    finally:
        session.stop()
    after = {k: os.environ.get(k) for k in before}
    return {"before": before, "after": after, "workers": workers}

unset = run()
os.environ["PYSPARK_PYTHON"] = "/nonexistent/python-of-the-user"
users = run()
print(json.dumps({"unset": unset, "users": users, "driver": sys.executable}))
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_")}
    return env | extra


def test_importing_obslib_spark_leaves_the_environment_unchanged() -> None:
    """No variable is set, changed or removed by ``import obslib.spark``."""
    done = subprocess.run(
        [sys.executable, "-c", IMPORT], env=_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-800:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {}


def test_a_local_session_runs_workers_on_this_python_and_restores_the_environment() -> None:
    """Workers run the driver's interpreter (which has obslib), whatever ``python3`` is on
    PATH or in ``PYSPARK_PYTHON``; afterwards the environment is what it was: an unset
    ``PYSPARK_PYTHON`` stays unset, a user's is put back (one process, two sessions)."""
    pytest.importorskip("pyspark", reason="pyspark is not installed (extra [spark])")
    if shutil.which("java") is None:
        pytest.skip("no java on PATH: Spark needs a JVM (Debian openjdk-17-jre-headless)")
    done = subprocess.run(
        [sys.executable, "-c", SESSION], env=_env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    users = "/nonexistent/python-of-the-user"
    for case, value in (("unset", None), ("users", users)):
        run = seen[case]
        assert run["workers"] == [seen["driver"]], case
        want = {"PYSPARK_PYTHON": value, "PYSPARK_DRIVER_PYTHON": None}
        assert run["before"] == run["after"] == want, case
