"""obslib.spark and the process environment: importing it changes nothing, and a local
session gets its workers' interpreter and its loopback address without leaving
``PYSPARK_PYTHON`` or ``SPARK_LOCAL_IP`` set behind it, and listens on loopback only."""

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

NAMES = ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "SPARK_LOCAL_IP")

def listening(pid):
    # the local addresses of the TCP sockets process pid listens on (hex, as in /proc)
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:  # 0A: LISTEN
                found.append(f[1].split(":")[0])
    return found

def run():
    before = {k: os.environ.get(k) for k in NAMES}
    session = spark.local_session(1, partitions=1)
    try:
        session.sparkContext.setLogLevel("ERROR")
        workers = session.sparkContext.parallelize([0], 1).map(
            lambda _: __import__("sys").executable).collect()
        jvm = session.sparkContext._gateway.proc.pid
        sockets = listening(jvm)
    finally:
        session.stop()
    after = {k: os.environ.get(k) for k in before}
    return {"before": before, "after": after, "workers": workers, "listening": sockets}

unset = run()
os.environ["PYSPARK_PYTHON"] = "/nonexistent/python-of-the-user"
os.environ["SPARK_LOCAL_IP"] = "127.0.0.2"  # the user's: put back after the session
users = run()
print(json.dumps({"unset": unset, "users": users, "driver": sys.executable}))
"""


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PYSPARK_") and k != "SPARK_LOCAL_IP"
    }
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
    PATH or in ``PYSPARK_PYTHON``; the JVM listens on 127.0.0.1 only; afterwards the
    environment is what it was: an unset ``PYSPARK_PYTHON`` or ``SPARK_LOCAL_IP`` stays
    unset, a user's is put back (one process, two sessions)."""
    pytest.importorskip("pyspark", reason="pyspark is not installed (extra [spark])")
    if shutil.which("java") is None:
        pytest.skip("no java on PATH: Spark needs a JVM (Debian openjdk-17-jre-headless)")
    done = subprocess.run(
        [sys.executable, "-c", SESSION], env=_env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # without SPARK_LOCAL_IP the JVM picks the machine's interface and says so on stderr
    assert "resolves to a loopback address" not in done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    users = "/nonexistent/python-of-the-user"
    loopback = {"0100007F", "0000000000000000FFFF00000100007F"}  # 127.0.0.1, v4 and v6-mapped
    for case, value, ip in (("unset", None, None), ("users", users, "127.0.0.2")):
        run = seen[case]
        assert run["workers"] == [seen["driver"]], case
        want = {"PYSPARK_PYTHON": value, "PYSPARK_DRIVER_PYTHON": None, "SPARK_LOCAL_IP": ip}
        assert run["before"] == run["after"] == want, case
        assert run["listening"], case  # the driver's RPC and block manager at least
        assert set(run["listening"]) <= loopback, (case, run["listening"])
