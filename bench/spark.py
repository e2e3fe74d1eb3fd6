"""Critical-path time over the demo's spans: pandas in one process against Spark from Parquet.

Why (issue 12): ``obslib.spark.critical_path_time`` runs the pandas per-trace code on whole
traces, many at a time (``mapInPandas`` over partitions sorted by trace), and sums in Spark
SQL, so the driver never holds the spans. On two cores Spark will not beat pandas by much;
what matters is that the driver's memory stays flat as the spans grow while pandas' grows
with them.

What it does, per size N (``--sizes``): a fresh database on one private embedded server,
``obslib.demo.run(spans=N)`` into it (seed 7, 14 days), ``export_parquet`` of its whole
window (``tables=("spans",)``, timed) into a temporary folder, then two fresh interpreters:

- pandas: ``pd.read_parquet(folder / "spans")`` + ``trace_sets.critical_path_time``;
  peak: the child's VmHWM above its RSS after imports (``_common.PeakRss``);
- Spark: ``local_session(2)``, ``spark.read.parquet``, ``spark.critical_path_time(df)
  .toPandas()``; the session start is timed apart. Peaks: the Python driver's VmHWM above its
  RSS after imports, and the JVM's own VmHWM (absolute: it is a child process started with
  the session), read from ``/proc/<pid>/status`` before the session stops. The Python
  workers (children of the JVM) are executors, not the driver: their summed VmHWM is
  reported apart (``spark_workers_peak_mb``; sum of per-worker peaks, an upper bound).

``--master spark://HOST:PORT`` runs the Spark side as a driver of that standalone cluster
instead (e.g. two 1-core workers from ``python -m obslib.spark.standalone``): the executors
are the workers' JVMs and their Python workers, so only the driver's peaks are reported.

``--methods pandas`` (or ``spark``) runs one side alone. Both results must agree: same
groups, same sections and traces, path_ms to 1 µs per group and in total, else the script
exits non-zero. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import _common as c

logger = logging.getLogger("bench.spark")

SCRIPT = Path(__file__).resolve()
SEED = 7
CORES = 2
TOLERANCE_MS = 1e-3  # 1 µs
KEYS = ["service_name", "operation_name"]


# -- the children: one method, one fresh interpreter ---------------------------------------------


def _result(frame, elapsed: float, peak: int, **extra) -> dict:
    rows = frame[[*KEYS, "path_ms", "sections", "traces"]].to_dict("records")
    for r in rows:
        r["sections"], r["traces"] = int(r["sections"]), int(r["traces"])
    return {"seconds": elapsed, "peak_bytes": peak, "rows": rows, **extra}


def child_pandas(folder: Path) -> dict:
    import numpy  # noqa: F401
    import pandas as pd
    import pyarrow.parquet  # noqa: F401

    from obslib.traces import sets as trace_sets

    gc.collect()
    rss = c.PeakRss()
    start = time.perf_counter()
    spans = pd.read_parquet(folder / "spans")
    read_s = time.perf_counter() - start
    frame = trace_sets.critical_path_time(spans)
    elapsed = time.perf_counter() - start
    peak = rss.increase()
    return _result(frame, elapsed, peak, read_s=read_s, spans=len(spans))


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            out.extend(int(k) for k in (task / "children").read_text().split())
    except FileNotFoundError:  # gone meanwhile
        pass
    return out


def _status(pid: int, field: str) -> int:
    """A /proc/<pid>/status field in bytes (0 if the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except FileNotFoundError:
        return 0
    return 0


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def _jvm_pid() -> int:
    """The session's JVM: the process below this one running java."""
    found, todo = [], _children(os.getpid())
    while todo:
        pid = todo.pop()
        if _cmdline(pid).split(" ")[0].endswith("java"):
            found.append(pid)
        else:
            todo.extend(_children(pid))
    if len(found) != 1:
        raise SystemExit(f"expected one java child, found {found}")
    return found[0]


def _worker_peaks(jvm: int) -> int:
    """Summed VmHWM of the Python processes below the JVM (the daemon and its workers)."""
    total, todo = 0, _children(jvm)
    while todo:
        pid = todo.pop()
        if "python" in _cmdline(pid):
            total += _status(pid, "VmHWM")
        todo.extend(_children(pid))
    return total


def _cluster_session(master: str):
    """A driver of ``master`` (a standalone cluster's ``spark://`` URL) from this Python:
    its executors run this interpreter (``PYSPARK_PYTHON``, read when the context starts),
    everything on loopback, the settings ``standalone.submit_options`` gives spark-submit."""
    from pyspark.sql import SparkSession

    from obslib.spark import standalone

    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["SPARK_LOCAL_IP"] = standalone.LOOPBACK
    options = standalone.submit_options(master, {"spark.sql.shuffle.partitions": "4"})
    builder = SparkSession.builder.master(master).appName("bench-spark")
    for pair in options[3::2]:  # after "--master URL": "--conf", "k=v", ...
        key, value = pair.split("=", 1)
        builder = builder.config(key, value)
    return builder.getOrCreate()


def child_spark(folder: Path, master: str | None = None) -> dict:
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401
    import pyspark.sql  # noqa: F401

    from obslib import spark as ospark

    gc.collect()
    rss = c.PeakRss()
    start = time.perf_counter()
    session = _cluster_session(master) if master else ospark.local_session(CORES)
    session_s = time.perf_counter() - start
    jvm = _jvm_pid()
    try:
        session.sparkContext.setLogLevel("ERROR")
        start = time.perf_counter()
        df = session.read.parquet(str(folder / "spans"))
        frame = ospark.critical_path_time(df).toPandas()
        elapsed = time.perf_counter() - start
        peak = rss.increase()
        jvm_peak = _status(jvm, "VmHWM")
        # on a cluster the Python workers belong to the executors, not to this driver
        workers_peak = None if master else _worker_peaks(jvm)
    finally:
        session.stop()
    return _result(
        frame,
        elapsed,
        peak,
        session_s=session_s,
        jvm_peak_bytes=jvm_peak,
        workers_peak_bytes=workers_peak,
    )


# -- the parent: data per size, children, report -----------------------------------------------


def run_child(method: str, folder: Path, master: str | None = None) -> dict:
    import subprocess

    extra = ["--master", master] if master else []
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--child", method, str(folder), *extra],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
        timeout=3600,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_agree(n: int, pandas_rows: list[dict], spark_rows: list[dict]) -> float:
    """Exit unless both methods found the same groups, counts and path_ms (to 1 µs)."""
    a = {tuple(r[k] for k in KEYS): r for r in pandas_rows}
    b = {tuple(r[k] for k in KEYS): r for r in spark_rows}
    if a.keys() != b.keys():
        raise SystemExit(f"{n:,}: groups differ: {sorted(set(a) ^ set(b), key=str)[:5]}")
    for key, ra in a.items():
        rb = b[key]
        if (ra["sections"], ra["traces"]) != (rb["sections"], rb["traces"]):
            raise SystemExit(f"{n:,}: {key}: pandas {ra} != spark {rb}")
        if abs(ra["path_ms"] - rb["path_ms"]) > TOLERANCE_MS:
            raise SystemExit(f"{n:,}: {key}: path_ms {ra['path_ms']} != {rb['path_ms']}")
    total_a = sum(r["path_ms"] for r in pandas_rows)
    total_b = sum(r["path_ms"] for r in spark_rows)
    if abs(total_a - total_b) > TOLERANCE_MS:
        raise SystemExit(f"{n:,}: total path_ms: pandas {total_a!r} != spark {total_b!r}")
    return total_a


def measure_size(server_url: str, spans: int, methods: list[str], master: str | None) -> dict:
    import pandas as pd

    from obslib import load
    from obslib.load.export import export_parquet

    with c.scratch_database(server_url) as url:
        summary = c.write_demo(url, spans, SEED)
        first, last = load.data_range(url=url)
        folder = Path(tempfile.mkdtemp(prefix="obb-parquet-"))
        try:
            start = time.perf_counter()
            parts = export_parquet(first, last + pd.Timedelta(seconds=1), folder,
                                   tables=("spans",), url=url)  # fmt: skip
            export_s = time.perf_counter() - start
            exported = sum(p.rows for p in parts)
            size = sum(f.stat().st_size for f in folder.rglob("*.parquet"))
            logger.info("export: %d spans, %.0f MB in %.1f s", exported, size / c.MB, export_s)
            if exported != summary.spans:
                raise SystemExit(f"exported {exported} spans of {summary.spans}")
            pandas_r = spark_r = None
            if "pandas" in methods:
                pandas_r = run_child("pandas", folder)
                logger.info("pandas: %.1f s, peak +%.0f MB", pandas_r["seconds"],
                            pandas_r["peak_bytes"] / c.MB)  # fmt: skip
            if "spark" in methods:
                spark_r = run_child("spark", folder, master)
                logger.info(
                "spark: %.1f s, driver peak +%.0f MB, JVM peak %.0f MB", spark_r["seconds"],
                spark_r["peak_bytes"] / c.MB, spark_r["jvm_peak_bytes"] / c.MB,
                )  # fmt: skip
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    total = None
    if pandas_r and spark_r:
        total = check_agree(spans, pandas_r["rows"], spark_r["rows"])
    return {
        "spans": summary.spans,
        "traces": summary.traces,
        "export_s": export_s,
        "parquet_bytes": size,
        "pandas": pandas_r,
        "spark": spark_r,
        "total_path_ms": total,
        "groups": len((pandas_r or spark_r)["rows"]),
    }


def _mb(value: int | None) -> float | None:
    return None if value is None else value / c.MB


def report(results: dict[int, dict], master: str | None = None) -> dict:
    sizes = sorted(results)
    empty = dict.fromkeys(["seconds", "read_s", "session_s", "peak_bytes", "jvm_peak_bytes",
                           "workers_peak_bytes"])  # fmt: skip
    rows = []
    for n in sizes:
        r = results[n]
        p, s = r["pandas"] or empty, r["spark"] or empty
        rows.append(
            [f"{n:,}", r["export_s"], _mb(r["parquet_bytes"]), p["seconds"], p["read_s"],
             _mb(p["peak_bytes"]), s["seconds"], s["session_s"], _mb(s["peak_bytes"]),
             _mb(s["jvm_peak_bytes"]), _mb(s["workers_peak_bytes"])]
        )  # fmt: skip
    headers = ["spans", "export s", "parquet MB", "pandas s", "(read s)", "pandas +MB"]
    headers += ["spark s", "(session s)", "driver +MB", "JVM MB", "workers MB"]
    where = master or f"local[{CORES}]"
    print(f"\ncritical_path_time: pandas vs Spark {where} from Parquet")
    print(c.table(headers, rows))
    print(
        "  pandas s: read_parquet + critical_path_time; spark s: read.parquet +"
        " critical_path_time + toPandas\n  (session start apart). +MB: the fresh child's"
        " VmHWM over its RSS after imports. JVM MB: the JVM's\n  own VmHWM (absolute)."
        " workers MB: summed VmHWM of the Python workers (executors, not the driver)."
    )
    for n in sizes:
        r = results[n]
        agree = (
            ""
            if r["total_path_ms"] is None
            else (f", total path {r['total_path_ms']:,.3f} ms (pandas = spark to 1 µs)")
        )
        print(f"  {n:,}: {r['traces']:,} traces, {r['groups']} groups{agree}")

    def col(method: str, key: str, scale: float = 1.0, digits: int = 2) -> list:
        out = []
        for n in sizes:
            part = results[n][method]
            value = None if part is None else part[key]
            out.append(None if value is None else round(value / scale, digits))
        return out

    return {
        "master": where,
        "sizes": sizes,
        "spans": [results[n]["spans"] for n in sizes],
        "traces": [results[n]["traces"] for n in sizes],
        "pandas_s": col("pandas", "seconds"),
        "pandas_peak_mb": col("pandas", "peak_bytes", c.MB, 1),
        "spark_s": col("spark", "seconds"),
        "spark_session_s": col("spark", "session_s"),
        "spark_driver_peak_mb": col("spark", "peak_bytes", c.MB, 1),
        "spark_jvm_peak_mb": col("spark", "jvm_peak_bytes", c.MB, 1),
        "spark_workers_peak_mb": col("spark", "workers_peak_bytes", c.MB, 1),
        "export_s": [round(results[n]["export_s"], 2) for n in sizes],
        "agree": all(results[n]["total_path_ms"] is not None for n in sizes) or None,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default="1000000,3000000",
        help="demo span counts, comma-separated (each its own database)",
    )
    parser.add_argument(
        "--methods",
        default="pandas,spark",
        help="which to run, comma-separated: pandas, spark (both: results checked equal)",
    )
    parser.add_argument(
        "--master",
        help="a standalone cluster's spark://host:port (default: local[2] in the child);"
        " e.g. one from python -m obslib.spark.standalone",
    )
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    c.setup_logging(args.verbose)
    if args.child is not None:
        method, folder = args.child
        work = {"pandas": child_pandas, "spark": child_spark}[method]
        extra = {"master": args.master} if method == "spark" else {}
        print(json.dumps(work(Path(folder), **extra)))
        return
    try:
        sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        parser.error(f"--sizes must be whole numbers separated by commas, not {args.sizes!r}")
    if not sizes or min(sizes) <= 0:
        parser.error("--sizes needs positive span counts")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods or set(methods) - {"pandas", "spark"}:
        parser.error(f"--methods takes pandas and/or spark, not {args.methods!r}")

    results: dict[int, dict] = {}
    with c.server() as server_url:
        for n in sizes:
            results[n] = measure_size(server_url, n, methods, args.master)
    print(json.dumps(report(results, args.master)))


if __name__ == "__main__":
    main()
