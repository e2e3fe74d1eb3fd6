"""obslib.spark on a real standalone cluster on loopback: a master and two workers from
pyspark's wheel, the README's ``window_report.py`` submitted to it over the Parquet export of
a demo day, and its tables equal to the pandas path's. No ``local`` master anywhere here:
the executors are separate JVMs that start the project's Python on their own."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from obslib import load
from obslib.spark import standalone
from obslib.traces import sets as trace_sets
from tests.conftest import REPO

pytest.importorskip("pyspark", reason="pyspark is not installed (extra [spark])")
if shutil.which("java") is None:
    pytest.skip(
        "no java on PATH: Spark needs a JVM (Debian openjdk-17-jre-headless)",
        allow_module_level=True,
    )

US = 1e-3  # one microsecond, in ms
SUBMIT_TIMEOUT = 420  # seconds; a run here takes ~40 s on two idle cores
_SCRIPT = re.compile(r"this `window_report\.py`:\n\n```python\n(.*?)^```", re.S | re.M)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[standalone.Cluster]:
    """A master and two workers (1 core, 1g each) on loopback, every process stopped by its
    pid at the end of the module, whatever happened (``Cluster.stop`` in a finalizer); its
    JVMs, and the applications', run with tests.conftest.JVM_OPTIONS."""
    running = standalone.start(tmp_path_factory.mktemp("cluster"), workers=2, cores=1)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def demo_day(demo_db, tmp_path_factory) -> tuple[str, pd.Timestamp, pd.Timestamp, Path]:
    """The demo's incident day exported to Parquet as ``obslib export parquet`` does it:
    (url, start, end, the dataset's spans folder)."""
    from obslib.load import export

    url, summary = demo_db
    start = pd.Timestamp(summary.incident_start).floor("D")
    end = start + pd.Timedelta(days=1)
    lake = tmp_path_factory.mktemp("lake")
    export.export_parquet(start, end, lake, tables=("spans",), url=url)
    return url, start, end, lake / "spans"


def readme_script(folder: Path) -> Path:
    """The README's ``window_report.py``, written into ``folder`` as the README shows it."""
    found = _SCRIPT.search((REPO / "README.md").read_text())
    assert found, "README.md no longer shows window_report.py"
    script = folder / "window_report.py"
    script.write_text(found.group(1))
    return script


def run_group(argv: list[str], env: dict[str, str], cwd: Path, timeout: float):
    """``argv`` in its own process group, which is killed (by its pid) if it outlives
    ``timeout`` or the test is interrupted."""
    proc = subprocess.Popen(
        argv,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


@pytest.fixture(scope="module")
def window_report(cluster, demo_day, tmp_path_factory) -> Path:
    """The README's ``window_report.py`` submitted to the cluster over the demo day; the
    folder of the CSV tables it wrote."""
    _, start, end, lake = demo_day
    work = tmp_path_factory.mktemp("submit")
    script = readme_script(work)
    out = work / "out"
    argv = standalone.submit_command(
        cluster.master_url,
        script,
        *("--lake", str(lake), "--start", start.isoformat(), "--end", end.isoformat()),
        *("--out", str(out)),
        # four trace partitions, kept four (adaptive execution would merge the demo day's
        # few rows into one task): both executors get per-trace work
        conf={
            "spark.sql.shuffle.partitions": "4",
            "spark.sql.adaptive.coalescePartitions.enabled": "false",
        },
    )
    assert not any("local" in word for word in argv if not word.startswith("/"))
    done = run_group(argv, standalone.environment(work), work, SUBMIT_TIMEOUT)
    (work / "submit.log").write_text(done.stderr)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _rows(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    frame = frame.copy()
    for key in keys:
        frame[key] = frame[key].astype(object).where(frame[key].notna(), "<null>").astype(str)
    return frame.sort_values(keys, ignore_index=True)


def same_table(got: pd.DataFrame, want: pd.DataFrame, keys, exact, close) -> None:
    """The same groups; counts equal; measures within ``close`` (ms or ratio)."""
    assert sorted(got.columns) == sorted(want.columns)
    assert len(got) == len(want) > 0
    got, want = _rows(got, keys), _rows(want, keys)
    assert got[keys].values.tolist() == want[keys].values.tolist()
    for col in exact:
        assert got[col].astype("int64").tolist() == want[col].astype("int64").tolist(), col
    for col, tol in close.items():
        np.testing.assert_allclose(got[col].to_numpy(float), want[col].to_numpy(float), 0, tol)


def test_both_workers_register_on_loopback_ports(cluster) -> None:
    """The master counts two alive workers of one core each, all at 127.0.0.1."""
    state = cluster.state()
    assert state["aliveworkers"] == 2
    assert cluster.master_url.startswith("spark://127.0.0.1:")
    assert {(w["host"], w["cores"], w["state"]) for w in state["workers"]} == {
        ("127.0.0.1", 1, "ALIVE")
    }


def same_as_pandas(out: Path, demo_day) -> None:
    """The tables ``window_report.py`` wrote to ``out`` equal the pandas path's and
    PostgreSQL's for the same day: critical-path time per operation to 1 µs (sections and
    traces exactly), the service graph (calls and errors exactly, percentiles to 1 µs) and
    the SLI counts per service and hour."""
    url, start, end, _ = demo_day
    spans = load.spans(start, end, json="text", url=url)

    paths = pd.read_csv(out / "critical_path.csv", keep_default_na=False, na_values=[])
    keys = ["service_name", "operation_name"]
    want = trace_sets.critical_path_time(spans)
    same_table(paths, want, keys, ["sections", "traces"], {"path_ms": US, "share": 1e-9})

    graph = pd.read_csv(out / "service_graph.csv", keep_default_na=False)
    close = {"p50_ms": US, "p99_ms": US, "error_rate": 1e-12}
    want = trace_sets.service_graph(spans)
    same_table(graph, want, ["caller", "callee"], ["calls", "errors"], close)

    sli = pd.read_csv(out / "sli_counts.csv")
    sli["bucket"] = pd.to_datetime(sli["bucket"], utc=True)
    want = load.sli_counts(start, end, bucket="1h", latency_threshold_ms=300, url=url)
    want["bucket"] = pd.to_datetime(want["bucket"], utc=True)
    same_table(sli, want, ["service_name", "bucket"], ["total", "ok", "fast"], {})


def test_the_readme_window_report_on_the_cluster_equals_pandas(demo_day, window_report) -> None:
    """``spark-submit --master spark://127.0.0.1:…`` of the README's script: its critical
    path, service graph and SLI counts equal the pandas path's."""
    same_as_pandas(window_report, demo_day)


def test_per_trace_work_ran_on_both_executors_with_the_projects_python(
    cluster, window_report
) -> None:
    """Each worker started an executor for the script and each executor ran tasks. Their
    Python workers import obslib (the per-trace functions), which PATH's ``python3`` here
    lacks: only ``spark.pyspark.python`` (this interpreter) makes the script pass."""
    ran = {}
    for worker in ("worker-1", "worker-2"):
        logs = list((cluster.folder / worker).glob("app-*/*/stderr"))
        assert logs, f"{worker} started no executor"
        ran[worker] = sum(log.read_text().count("Starting Python task") for log in logs)
    assert all(ran.values()), ran
    path_python = shutil.which("python3")
    if path_python and Path(path_python).resolve() != Path(sys.executable).resolve():
        # from the executors' folder: a checkout's cwd would put obslib on the path itself
        found = subprocess.run(
            [path_python, "-c", "import obslib"], cwd=cluster.folder, capture_output=True
        )
        assert found.returncode != 0, f"{path_python} has obslib: this test proves less"


def test_the_same_script_through_spark_connect_equals_pandas(cluster, demo_day, tmp_path) -> None:
    """A Spark Connect server (the wheel's ``sbin/start-connect-server.sh``) runs as an
    application of the cluster; the README's script, run by plain Python as a thin client
    (``SPARK_REMOTE=sc://127.0.0.1:…``: no JVM on its side), writes the same tables."""
    pytest.importorskip("grpc", reason="Spark Connect's client needs pyspark[connect] (grpcio)")
    _, start, end, lake = demo_day
    server, address = standalone.start_connect(cluster)
    try:
        script = readme_script(tmp_path)
        argv = [sys.executable, str(script), "--lake", str(lake)]
        argv += ["--start", start.isoformat(), "--end", end.isoformat(), "--out", "out"]
        env = standalone.environment(tmp_path, SPARK_REMOTE=address)
        done = run_group(argv, env, tmp_path, SUBMIT_TIMEOUT)
        assert done.returncode == 0, done.stderr[-3000:] + cluster.log("connect")[-2000:]
    finally:
        cluster.end(server)
    same_as_pandas(tmp_path / "out", demo_day)
