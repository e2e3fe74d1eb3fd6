"""A Spark standalone cluster on loopback from pyspark's wheel: a master and its workers,
started as processes of their own and stopped by their pids (tests, benchmarks, a laptop).

pyspark's wheel ships ``bin/spark-class`` and ``bin/spark-submit``, enough for Spark's
standalone cluster manager (https://spark.apache.org/docs/latest/spark-standalone.html):
``spark-class org.apache.spark.deploy.master.Master`` and one
``org.apache.spark.deploy.worker.Worker spark://…`` per worker. Everything binds to
127.0.0.1 (``SPARK_LOCAL_IP``; without it Spark picks the machine's network interface), every
port is chosen by the system (``--port 0``, ``--webui-port 0``; the master's REST submission
server, fixed at 6066, is off), and every file (worker dirs, executor logs, shuffle files,
each process's log) stays in one folder. Each process leads its own process group, so
stopping a worker stops the executors and Python workers it started too.

``python -m obslib.spark.standalone [--workers 2] [--cores 1] [--memory 1g]`` starts one,
prints its master URL and keeps it up until interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from obslib.errors import ObslibError

__all__ = [
    "Cluster",
    "ClusterError",
    "spark_home",
    "start",
    "start_connect",
    "submit_command",
    "submit_options",
]

LOOPBACK = "127.0.0.1"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
_MASTER_URL = re.compile(r"Starting Spark master at (spark://\S+)")
_WEB_URL = re.compile(r"Bound MasterWebUI to \S+, and started at (http://\S+)")
_CONNECT = re.compile(r"Spark Connect server started at: (\S+)")


class ClusterError(ObslibError):
    """The cluster did not come up (the message carries the end of the failing log)."""


def spark_home() -> Path:
    """The Spark distribution inside pyspark's wheel (its ``bin/`` and ``jars/``)."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def environment(folder: Path, **extra: str) -> dict[str, str]:
    """This process's environment for a Spark process on loopback: ``SPARK_HOME`` the
    wheel's, ``SPARK_LOCAL_IP`` 127.0.0.1, scratch space under ``folder``, the master's
    REST server off; pyspark's interpreter variables removed (what the workers' Python is
    comes from the application: ``spark.pyspark.python``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_")}
    env |= {
        "SPARK_HOME": str(spark_home()),
        "SPARK_LOCAL_IP": LOOPBACK,
        "SPARK_LOCAL_DIRS": str(folder / "local"),
        "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false",
    }
    return env | extra


@dataclass
class Cluster:
    """A running master and its workers; ``stop()`` ends every process they started."""

    folder: Path
    master_url: str = ""
    web_url: str = ""
    processes: list[subprocess.Popen] = field(default_factory=list)

    def state(self) -> dict:
        """The master's view of the cluster (its web UI's ``/json/``): workers, apps."""
        with urllib.request.urlopen(f"{self.web_url}/json/", timeout=10) as answer:
            return json.load(answer)

    def launch(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        """``argv`` as a process of the cluster (its own process group, output in
        ``folder/name.log``), stopped with the cluster."""
        log = open(self.folder / f"{name}.log", "wb")  # noqa: SIM115  (the child holds it)
        try:
            proc = subprocess.Popen(
                argv,
                env=env,
                cwd=self.folder,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        self.processes.append(proc)
        return proc

    def log(self, name: str) -> str:
        """A process's output so far (empty if it has none)."""
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def end(self, proc: subprocess.Popen, grace: float = 20.0) -> None:
        """Stop one process the cluster started (and its group), as ``stop`` does."""
        _stop_groups([proc], grace)
        self.processes.remove(proc)

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM to each process group, newest first (workers stop their executors), then
        SIGKILL to any group still there after ``grace`` seconds. Safe to call twice."""
        _stop_groups(list(reversed(self.processes)), grace)
        self.processes.clear()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _stop_groups(procs: list[subprocess.Popen], grace: float) -> None:
    """SIGTERM to each process group, then SIGKILL to what is left after ``grace`` s."""
    for proc in procs:
        _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.1, deadline - time.monotonic()))
        _signal_group(proc, signal.SIGKILL)  # stragglers of the group, or the leader
        proc.wait()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    """``sig`` to the process group ``proc`` leads (its pid), if any of it is left."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def start(
    folder: Path | None = None,
    *,
    workers: int = 2,
    cores: int = 1,
    memory: str = "1g",
    timeout: float = 180.0,
) -> Cluster:
    """A master and ``workers`` workers (``cores`` and ``memory`` each) on loopback, returned
    once every worker has registered with the master (its ``aliveworkers``). On failure
    everything started is stopped and ``ClusterError`` says which log shows why."""
    if workers < 1 or cores < 1:
        raise ClusterError(f"a cluster needs at least one worker and one core each, not {workers}")
    folder = Path(folder or tempfile.mkdtemp(prefix="obslib-spark-"))
    folder.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(folder=folder)
    spark_class = str(spark_home() / "bin" / "spark-class")
    deadline = time.monotonic() + timeout
    try:
        master = cluster.launch(
            "master",
            [spark_class, MASTER_CLASS, "--host", LOOPBACK, "--port", "0", "--webui-port", "0"],
            environment(folder),
        )
        urls = _wait_for(cluster, "master", master, deadline, _MASTER_URL, _WEB_URL)
        cluster.master_url = urls[0]
        cluster.web_url = urls[1].replace("//localhost:", f"//{LOOPBACK}:")
        for i in range(1, workers + 1):
            work = folder / f"worker-{i}"
            argv = [spark_class, WORKER_CLASS, cluster.master_url, "--host", LOOPBACK]
            argv += ["--port", "0", "--webui-port", "0", "--cores", str(cores)]
            argv += ["--memory", memory, "--work-dir", str(work)]
            env = environment(folder, SPARK_LOCAL_DIRS=str(work / "local"))
            cluster.launch(f"worker-{i}", argv, env)
        _wait_for_workers(cluster, workers, deadline)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _wait_for(
    cluster: Cluster,
    name: str,
    proc: subprocess.Popen,
    deadline: float,
    *patterns: re.Pattern[str],
) -> list[str]:
    """The first group of each pattern in ``name``'s log, once all have appeared."""
    while True:
        text = cluster.log(name)
        found = [p.search(text) for p in patterns]
        if all(found):
            return [m.group(1) for m in found if m]
        if proc.poll() is not None:
            raise ClusterError(f"{name} exited ({proc.returncode}): {_tail(text)}")
        if time.monotonic() > deadline:
            raise ClusterError(f"{name} did not start in time: {_tail(text)}")
        time.sleep(0.2)


def _wait_for_workers(cluster: Cluster, workers: int, deadline: float) -> None:
    """Until the master counts ``workers`` alive (a worker that exits fails at once)."""
    while True:
        for i, proc in enumerate(cluster.processes[1:], start=1):
            if proc.poll() is not None:
                text = cluster.log(f"worker-{i}")
                raise ClusterError(f"worker-{i} exited ({proc.returncode}): {_tail(text)}")
        with contextlib.suppress(OSError, ValueError):
            if cluster.state().get("aliveworkers", 0) >= workers:
                return
        if time.monotonic() > deadline:
            raise ClusterError(
                f"{workers} workers did not register in time: {_tail(cluster.log('master'))}"
            )
        time.sleep(0.5)


def _tail(text: str, lines: int = 8) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])


def submit_options(master_url: str, conf: dict[str, str] | None = None) -> list[str]:
    """``spark-submit`` options for an application of ``master_url`` with the settings a
    cluster's executors need to run obslib: ``spark.pyspark.python`` this interpreter (the
    documented setting for the driver's and the executors' Python, which must have obslib
    installed), UTC session times, no UI, no progress bar; ``conf`` adds to or overrides
    them."""
    settings = {
        "spark.pyspark.python": sys.executable,
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    } | (conf or {})
    options = ["--master", master_url]
    for key, value in settings.items():
        options += ["--conf", f"{key}={value}"]
    return options


def submit_command(
    master_url: str, script: str | Path, *args: str, conf: dict[str, str] | None = None
) -> list[str]:
    """``spark-submit`` of a Python ``script`` (with ``args``) with ``submit_options``."""
    submit = str(spark_home() / "bin" / "spark-submit")
    return [submit, *submit_options(master_url, conf), str(script), *args]


def start_connect(
    cluster: Cluster, *, port: int = 0, timeout: float = 240.0
) -> tuple[subprocess.Popen, str]:
    """A Spark Connect server (the wheel's ``sbin/start-connect-server.sh --wait``) as an
    application of ``cluster``, on 127.0.0.1 (``port`` 0: one the system picks); its
    process (stopped with ``cluster.end``) and its ``sc://`` address for
    ``SparkSession.builder.remote``.

    Its executors run this interpreter: for the Python functions of a Connect client the
    server takes the interpreter from its own ``PYSPARK_PYTHON`` (measured: with only
    ``spark.pyspark.python`` set, they ran PATH's ``python3`` and failed on ``import
    obslib``), so both are set."""
    env = environment(
        cluster.folder,
        PYSPARK_PYTHON=sys.executable,
        SPARK_LOG_DIR=str(cluster.folder / "logs"),
        SPARK_PID_DIR=str(cluster.folder),
    )
    grpc = {
        "spark.connect.grpc.binding.address": LOOPBACK,
        "spark.connect.grpc.binding.port": str(int(port)),
    }
    script = str(spark_home() / "sbin" / "start-connect-server.sh")
    argv = [script, "--wait", *submit_options(cluster.master_url, grpc)]
    proc = cluster.launch("connect", argv, env)
    try:
        (address,) = _wait_for(cluster, "connect", proc, time.monotonic() + timeout, _CONNECT)
    except BaseException:
        cluster.end(proc)
        raise
    return proc, f"sc://{address}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cores", type=int, default=1, help="cores per worker")
    parser.add_argument("--memory", default="1g", help="memory per worker (Spark's 1g, 512m)")
    parser.add_argument("--folder", type=Path, help="logs and work dirs (default: a new tmp)")
    opts = parser.parse_args(argv)
    try:
        cluster = start(opts.folder, workers=opts.workers, cores=opts.cores, memory=opts.memory)
    except ClusterError as err:
        print(f"obslib.spark.standalone: {err}", file=sys.stderr)
        return 2
    with cluster:
        print(cluster.master_url, flush=True)
        print(f"web UI {cluster.web_url}, logs in {cluster.folder}; Ctrl-C stops it", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())
