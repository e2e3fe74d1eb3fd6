"""How fast obslib's loaders read, against the wire floor and pandas.read_sql.

Why: ``obslib.load.spans`` claims to read through ADBC at close to the speed PostgreSQL can
stream the rows (binary COPY), far faster than ``pandas.read_sql``, without needing much
more memory than the DataFrame it returns; and small loads (one trace) claim to be cheap
because the connection stays open. This script checks those claims on the same rows.

What it does: writes N demo spans (seed 7, 14 days) once with ``write_spans`` into a scratch
database, then times, each run in a fresh interpreter so peak RSS is per method:

- ``copy floor``: psql ``\\copy (SELECT <12 columns> FROM distributed_traces_tagged) TO '/dev/null'
  (FORMAT binary)``: the server producing the rows and a C client receiving them.
- ``copy, psycopg``: the same COPY read block by block with psycopg's ``cursor.copy()`` and
  discarded (the floor seen from Python).
- ``copy, loader's query``: psql ``\\copy`` of a query shaped like the loader's (its casts
  and window), to separate the server's share of the loader's time from the client's.
- ``server COPY, loader's query``: the server itself writing that query's rows to its
  ``/dev/null`` (``COPY (...) TO '/dev/null' (FORMAT binary)``, superuser): producing the
  rows with no client at all, the floor for any loader that decodes rows.
- ``load.spans json=text`` / ``json=dict``: obslib's loader, all spans, full window.
- ``pandas.read_sql``: the floor's SELECT through a SQLAlchemy engine with psycopg 3
  (run once when the first run takes over 30 s).
- ``load.trace x 200``: 200 consecutive ``load.trace`` calls for different traces in one
  process, connection included (the loader keeps one connection per URL).

With ``--baseline DIR`` the three loader methods also run with the obslib of another
checkout (``git worktree add DIR main`` before a change), interleaved with today's on the
same rows, and are printed side by side: "no slower than before" measured in one run.

With ``--breakdown`` it also takes a spans load apart stage by stage, rebuilt from public
parts only (ADBC's DB-API, pyarrow, pandas, ``load.parse_json``) the way the loader does it:
the server's COPY into Arrow, the Arrow sort, the column-by-column reorder, Arrow to pandas,
JSON parsing; and shows the server's plan.

``--realtime`` runs every timed child, and the server processes that serve it, in the
real-time FIFO class (``_common.realtime_fifo``): first in line for a CPU, so a machine
busy with other work measures close to an idle one, both sides of each ratio alike. It
needs root and the embedded server (its postmaster's new backends inherit the class).

Uses obslib's public API only (``obslib.load``, ``obslib.ingest``, ``obslib.storage.db``,
``obslib.storage.pgserver``). Times are medians of ``--runs`` runs; peak memory is the
largest increase of the child's peak RSS over its RSS after imports (see
``_common.PeakRss`` for why not plain ``ru_maxrss``). The last line printed is one JSON
object with each ratio and its target beside it.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import _common as c

logger = logging.getLogger("bench.load")

SCRIPT = Path(__file__).resolve()
READ_SQL_ONCE_S = 30.0
REALTIME_ENV = "OBSLIB_BENCH_REALTIME"  # set for the children of a --realtime run
SMALL_LOADS = 200
BATCH_HINT = "adbc.postgresql.batch_size_hint_bytes"  # an ADBC PostgreSQL statement option

# A query shaped like load.spans' (its columns and casts, the window), for the server-side
# floor; the two timestamps are ISO texts this script formats itself from min/max().
LOADER_SHAPED = (
    "SELECT trace_id, span_id, parent_span_id, service_name, operation_name, span_kind, "
    "start_time, end_time, duration_ms::float8 AS duration_ms, status, "
    "tags::text AS tags, logs::text AS logs FROM distributed_traces_tagged "
    "WHERE start_time >= '{lo}' AND start_time < '{hi}'"
)
SORT_KEYS = [("start_time", "ascending"), ("trace_id", "ascending"), ("span_id", "ascending")]

TARGETS = {  # (comparison, bound) per ratio, from the issue
    "load_vs_floor": ("<=", 1.5),
    "read_sql_vs_load": (">=", 12.0),
    "peak_mem_vs_frame": ("<=", 2.0),
    "load_dict_vs_floor": ("<=", 2.5),
    "loads_per_second": (">=", 100.0),
}

PSQL = ("floor", "floor_loader_query", "floor_server")
METHODS = {
    "floor": "copy floor (psql \\copy binary -> /dev/null)",
    "floor_psycopg": "copy, psycopg cursor.copy() binary, discarded",
    "floor_loader_query": "copy, loader-shaped query (casts + window), psql",
    "floor_server": "server COPY of the loader-shaped query -> /dev/null",
    "load_text": "load.spans(json='text')",
    "load_dict": "load.spans(json='dict')",
    "read_sql": "pandas.read_sql (SQLAlchemy + psycopg 3)",
    "small_loads": f"load.trace x {SMALL_LOADS} (one process)",
}


# -- the child: one method, one run ----------------------------------------------------------


def child(method: str, lo: str, hi: str) -> dict:
    """Run one method in this (fresh) interpreter; returns seconds, rows and memory."""
    import adbc_driver_postgresql.dbapi  # noqa: F401  (loaded before the baseline)
    import orjson  # noqa: F401
    import pandas as pd
    import psycopg
    import pyarrow  # noqa: F401

    from obslib import load
    from obslib.storage import db

    if os.environ.get(REALTIME_ENV):
        c.realtime_fifo()  # psql, started from here, inherits it
    url = os.environ[c.URL_ENV]
    engine = db.engine(url) if method == "read_sql" else None
    trace_ids = sample_traces(url, SMALL_LOADS) if method == "small_loads" else []
    gc.collect()
    rss = c.PeakRss()
    rows = frame_bytes = None
    start = time.perf_counter()
    if method == "floor":
        c.run_psql(url, f"\\copy ({c.SELECT_ALL}) to '/dev/null' (format binary)")
    elif method == "floor_loader_query":
        query = LOADER_SHAPED.format(lo=lo, hi=hi)
        c.run_psql(url, f"\\copy ({query}) to '/dev/null' (format binary)")
    elif method == "floor_server":
        query = LOADER_SHAPED.format(lo=lo, hi=hi)
        c.run_psql(url, f"COPY ({query}) TO '/dev/null' (FORMAT binary)")
    elif method == "floor_psycopg":
        copied = 0
        with (
            psycopg.connect(url) as conn,
            conn.cursor() as cur,
            cur.copy(f"COPY ({c.SELECT_ALL}) TO STDOUT (FORMAT binary)") as copy,
        ):
            for block in copy:
                copied += len(block)
        frame_bytes = copied  # bytes on the wire, for the table
    elif method in ("load_text", "load_dict"):
        mode = "text" if method == "load_text" else "dict"
        frame = load.spans(pd.Timestamp(lo), pd.Timestamp(hi), url=url, json=mode)
        rows = len(frame)
    elif method == "read_sql":
        frame = pd.read_sql(c.SELECT_ALL, engine)
        rows = len(frame)
    elif method == "small_loads":
        spans = 0
        for trace_id in trace_ids:
            spans += len(load.trace(trace_id, url=url))
        frame_bytes = spans  # spans read, for the log
    else:
        raise SystemExit(f"unknown method {method}")
    seconds = time.perf_counter() - start
    peak = rss.increase()
    if rows is not None:
        frame_bytes = int(frame.memory_usage(deep=True).sum())
    return {
        "method": method,
        "seconds": seconds,
        "rows": rows,
        "peak_rss_increase": peak,
        "frame_bytes": frame_bytes,
    }


def sample_traces(url: str, n: int) -> list[str]:
    """``n`` trace ids spread over the table (every k-th in id order), read with psycopg."""
    import psycopg

    with psycopg.connect(url) as conn:
        ids = [r[0] for r in conn.execute("SELECT DISTINCT trace_id FROM distributed_traces")]
    ids.sort()
    step = max(1, len(ids) // n)
    return ids[::step][:n]


def breakdown(mode: str, lo: str, hi: str) -> dict:
    """A spans load rebuilt stage by stage from public parts, each stage timed, with the RSS
    after it and the peak so far (both over the post-import RSS).

    The stages are the loader's documented ones: one parameterless SELECT streamed by ADBC
    (binary COPY) into Arrow, a sort in Arrow by (start_time, trace_id, span_id), the
    reorder column by column (text as ``large_string``, each old column released once its
    copy is made), Arrow to pandas (``str`` from ``large_string`` as it is, UTC timestamps),
    then (``dict``) ``load.parse_json`` over tags and logs (each distinct text parsed once).
    """
    import adbc_driver_postgresql.dbapi as adbc
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    from obslib import load

    if os.environ.get(REALTIME_ENV):
        c.realtime_fifo()
    url = os.environ[c.URL_ENV]
    query = LOADER_SHAPED.format(lo=lo, hi=hi)
    gc.collect()
    rss = c.PeakRss()
    stages: list[dict] = []
    t = time.perf_counter()

    def lap(label: str) -> None:
        nonlocal t
        now = time.perf_counter()
        current = c.current_rss() - rss.baseline
        stages.append({"stage": label, "seconds": now - t, "rss": current, "peak": rss.increase()})
        t = time.perf_counter()

    with adbc.connect(url, autocommit=True) as conn:
        lap("ADBC connect")
        with conn.cursor() as cur:
            # as the loader does: one large Arrow chunk, so the reorder needs no concatenation
            cur.adbc_statement.set_options(**{BATCH_HINT: str(1 << 30)})
            cur.execute(query)
            table = cur.fetch_arrow_table()
        lap("ADBC execute + fetch_arrow_table (server, wire, Arrow)")
    arrow_bytes = table.nbytes
    indices = pc.sort_indices(table, sort_keys=SORT_KEYS)
    lap("pc.sort_indices (start_time, trace_id, span_id)")
    names = table.column_names
    columns = table.columns
    del table
    for i, column in enumerate(columns):
        columns[i] = None
        if pa.types.is_string(column.type):
            column = column.cast(pa.large_string())
        columns[i] = column.take(indices)
        del column
    lap("reorder, column by column (old ones released)")
    frame = pa.table(dict(zip(names, columns, strict=True))).to_pandas(
        types_mapper={pa.large_string(): pd.StringDtype(na_value=float("nan"))}.get
    )
    del columns
    lap("Arrow -> pandas (str, UTC timestamps)")
    if mode == "dict":
        for col in ("tags", "logs"):
            frame[col] = load.parse_json(frame[col])
        lap("load.parse_json of tags and logs")
    gc.collect()
    lap("Arrow columns released")
    return {
        "mode": mode,
        "stages": stages,
        "arrow_bytes": arrow_bytes,
        "frame_bytes": int(frame.memory_usage(deep=True).sum()),
    }


def explain(url: str, lo: str, hi: str) -> list[str]:
    """The server's side of a loader-shaped query: its plan, at the default work_mem."""
    import psycopg

    query = LOADER_SHAPED.replace("'{lo}'", "%s").replace("'{hi}'", "%s")
    with psycopg.connect(url, autocommit=True) as conn:
        work_mem = conn.execute("SHOW work_mem").fetchone()
        try:  # SERIALIZE (PostgreSQL 17+) also counts turning the rows into wire format
            options = "ANALYZE, BUFFERS, TIMING OFF, SERIALIZE BINARY"
            plan = [r[0] for r in conn.execute(f"EXPLAIN ({options}) {query}", (lo, hi))]
        except psycopg.errors.SyntaxError:
            options = "ANALYZE, BUFFERS, TIMING OFF"
            plan = [r[0] for r in conn.execute(f"EXPLAIN ({options}) {query}", (lo, hi))]
    return [f"EXPLAIN ({options}), work_mem = {work_mem[0] if work_mem else '?'}", *plan]


def print_breakdown(result: dict) -> None:
    print(f"\nspans load (json={result['mode']!r}) taken apart (one run, public parts):")
    rows = [[s["stage"], s["seconds"], s["rss"] / c.MB, s["peak"] / c.MB] for s in result["stages"]]
    rows.append(["total", sum(s["seconds"] for s in result["stages"]), None, None])
    print(c.table(["stage", "s", "RSS +MB after", "peak +MB so far"], rows))
    print(
        f"  Arrow table {result['arrow_bytes'] / c.MB:,.0f} MB,"
        f" DataFrame {result['frame_bytes'] / c.MB:,.0f} MB"
    )


# -- the parent: data, runs, report ---------------------------------------------------------


def window(url: str) -> tuple[str, str]:
    """The full window of the stored spans, as ISO text: [min start, max start + 1 us)."""
    import psycopg

    with psycopg.connect(url, options="-c TimeZone=UTC") as conn:
        row = conn.execute(
            "SELECT min(start_time), max(start_time) + interval '1 microsecond'"
            " FROM distributed_traces"
        ).fetchone()
    assert row is not None
    return row[0].isoformat(), row[1].isoformat()


@contextmanager
def realtime_server(url: str, on: bool) -> Iterator[None]:
    """With ``on``: the server's postmaster in the real-time FIFO class, so the backends it
    starts for the timed children (and only those: nothing else uses a bench server) are
    first in line too, and the children told to switch themselves; restored at the end."""
    if not on:
        yield
        return
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW data_directory").fetchone()
    assert row is not None
    pid_file = Path(row[0]) / "postmaster.pid"
    if not pid_file.exists():
        raise SystemExit("--realtime needs the embedded server (no postmaster.pid readable)")
    pid = int(pid_file.read_text().splitlines()[0])
    os.sched_setscheduler(pid, os.SCHED_FIFO, os.sched_param(10))
    os.environ[REALTIME_ENV] = "1"
    logger.info("postmaster %d and the timed children in the real-time FIFO class", pid)
    try:
        yield
    finally:
        del os.environ[REALTIME_ENV]
        os.sched_setscheduler(pid, os.SCHED_OTHER, os.sched_param(0))


BASE = "@baseline"  # a method run with the baseline checkout's obslib (--baseline)
COMPARED = ("load_text", "load_dict", "small_loads")


def measure(
    url: str, spans: int, runs: int, methods: list[str], baseline: str | None = None
) -> dict[str, list[dict]]:
    lo, hi = window(url)
    logger.info("window %s .. %s", lo, hi)
    if baseline:
        methods = [*methods, *(m + BASE for m in COMPARED)]
    results: dict[str, list[dict]] = {m: [] for m in methods}
    for run in range(runs):  # interleaved, so background load spreads over every method
        for method in methods:
            if method == "read_sql" and run > 0 and results[method][0]["seconds"] > READ_SQL_ONCE_S:
                continue
            own = method.removesuffix(BASE)
            # the baseline's obslib comes first on the child's path (the venv's is editable)
            path = {"PYTHONPATH": baseline} if method.endswith(BASE) else {}
            result = c.run_child(SCRIPT, ["--child", own, "--lo", lo, "--hi", hi], url, env=path)
            if result["rows"] is not None and result["rows"] != spans:
                raise SystemExit(f"{method} read {result['rows']} rows, expected {spans}")
            logger.info("run %d %-18s %7.2f s", run + 1, method, result["seconds"])
            results[method].append(result)
    return results


def report_baseline(results: dict[str, list[dict]], summary: dict) -> None:
    """The loaders now against the baseline checkout, side by side (same rows, same run)."""
    if not any(m.endswith(BASE) for m in results):
        return
    rows, ratios = [], {}
    for method in COMPARED:
        now, then = results[method], results[method + BASE]
        s_now = c.median([r["seconds"] for r in now])
        s_then = c.median([r["seconds"] for r in then])
        p_now = max(r["peak_rss_increase"] for r in now) / c.MB
        p_then = max(r["peak_rss_increase"] for r in then) / c.MB
        rows.append([METHODS[method], s_then, s_now, s_now / s_then, p_then, p_now])
        ratios[method] = {"time_vs_baseline": round(s_now / s_then, 3),
                          "peak_mb": [round(p_then, 1), round(p_now, 1)]}  # fmt: skip
    print("\nthe loaders against the baseline checkout (--baseline), medians:")
    headers = ["method", "baseline s", "now s", "now / baseline", "peak +MB base", "peak +MB now"]
    print(c.table(headers, rows))
    summary["vs_baseline"] = ratios


def report(spans: int, n_runs: int, results: dict[str, list[dict]]) -> dict:
    def secs(m: str) -> float:
        return c.median([r["seconds"] for r in results[m]])

    def peak(m: str) -> int:
        return max(r["peak_rss_increase"] for r in results[m])

    rows = []
    for method, label in METHODS.items():
        if method not in results or method == "small_loads":
            continue
        runs = results[method]
        frame = runs[0]["frame_bytes"]
        rows.append(
            [
                label,
                len(runs),
                secs(method),
                secs(method) / secs("floor"),
                f"{spans / secs(method):,.0f}",
                None if method in PSQL else peak(method) / c.MB,
                None if frame is None else frame / c.MB,
                " ".join(f"{r['seconds']:.2f}" for r in runs),
            ]
        )
    headers = ["method", "runs", "median s", "x floor", "rows/s", "peak RSS +MB", "frame MB"]
    headers.append("all runs s")
    print(f"\nload benchmark: {spans:,} spans, all columns, full window")
    print(c.table(headers, rows))
    print(
        "  peak RSS: largest increase of the child's peak RSS (VmHWM) over its RSS after"
        " imports, over the runs\n  (psql's own memory is not counted).\n"
        "  frame MB: DataFrame.memory_usage(deep=True); for 'copy, psycopg' the bytes copied."
    )
    if n_runs > 1 and len(results.get("read_sql", [])) == 1:
        print(f"  read_sql ran once: its first run took over {READ_SQL_ONCE_S:.0f} s.")
    small = " ".join(f"{r['seconds']:.2f}" for r in results["small_loads"])
    per_second = SMALL_LOADS / secs("small_loads")
    print(
        f"\n{SMALL_LOADS} consecutive load.trace calls (connection included): median"
        f" {secs('small_loads'):.2f} s = {per_second:,.0f} loads/s; runs {small} s"
    )
    text_frame = results["load_text"][0]["frame_bytes"]
    values = {
        "load_vs_floor": round(secs("load_text") / secs("floor"), 3),
        "read_sql_vs_load": round(secs("read_sql") / secs("load_text"), 3),
        "peak_mem_vs_frame": round(peak("load_text") / text_frame, 3),
        "load_dict_vs_floor": round(secs("load_dict") / secs("floor"), 3),
        "loads_per_second": round(per_second, 1),
    }
    summary: dict[str, object] = {"spans": spans}
    missed = []
    for key, value in values.items():
        op, bound = TARGETS[key]
        summary[key] = value
        summary[f"{key}_target"] = f"{op} {bound:g}"
        if not (value <= bound if op == "<=" else value >= bound):
            missed.append(key)
    summary["targets_missed"] = missed
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000, help="rows to load")
    parser.add_argument("--runs", type=int, default=3, help="runs per method (median)")
    parser.add_argument(
        "--breakdown", action="store_true", help="also time a spans load's stages, show the plan"
    )
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="timed children and their server processes in the real-time FIFO class (root)",
    )
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="also run the loaders with the obslib of this checkout (e.g. a git worktree of"
        " main), interleaved with today's, and print them side by side",
    )
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument(
        "--child",
        choices=[*sorted(METHODS), "breakdown_text", "breakdown_dict"],
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--lo", help=argparse.SUPPRESS)
    parser.add_argument("--hi", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    c.setup_logging(args.verbose)
    if args.child:
        if args.child.startswith("breakdown_"):
            mode = args.child.removeprefix("breakdown_")
            print(json.dumps(breakdown(mode, args.lo, args.hi)))
        else:
            print(json.dumps(child(args.child, args.lo, args.hi)))
        return

    from obslib.ingest import write_spans

    with c.server() as server_url, c.scratch_database(server_url) as url:
        frame = c.generate_spans(args.spans)
        start = time.perf_counter()
        written = write_spans(frame, url=url)
        logger.info("wrote %d spans in %.1f s", written, time.perf_counter() - start)
        del frame
        gc.collect()
        if written != args.spans:
            raise SystemExit(f"wrote {written} spans, expected {args.spans}")
        c.settle(url)
        with realtime_server(url, args.realtime):
            results = measure(url, args.spans, args.runs, list(METHODS), args.baseline)
            details = []
            if args.breakdown:
                lo, hi = window(url)
                plan = explain(url, lo, hi)
                for mode in ("text", "dict"):
                    details.append(
                        c.run_child(
                            SCRIPT, [f"--child=breakdown_{mode}", "--lo", lo, "--hi", hi], url
                        )
                    )
    summary = report(args.spans, args.runs, results)
    report_baseline(results, summary)
    summary["realtime"] = args.realtime
    for result in details:
        print_breakdown(result)
    if args.breakdown:
        print("\nthe loader-shaped query on the server (EXPLAIN ANALYZE):")
        print("\n".join("  " + line for line in plan))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
