"""How fast obslib's span loader reads, against the wire floor and pandas.read_sql.

Why: ``obslib.load.spans`` claims to read through ADBC at close to the speed PostgreSQL can
stream the rows (binary COPY), far faster than ``pandas.read_sql``, and without needing much
more memory than the DataFrame it returns. This script checks those claims on the same rows.

What it does: writes N demo spans (seed 7, 14 days) once with ``write_spans`` into a scratch
database, then times, each run in a fresh interpreter so peak RSS is per method:

- ``copy floor``: psql ``\\copy (SELECT <12 columns> FROM distributed_traces) TO '/dev/null'
  (FORMAT binary)``: the server producing the rows and a C client receiving them.
- ``copy, psycopg``: the same COPY read block by block with psycopg's ``cursor.copy()`` and
  discarded (the floor seen from Python).
- ``copy, loader query``: psql ``\\copy`` of the loader's own SELECT (casts, window, ORDER BY),
  to separate the server's share of the loader's time from the client's.
- ``load.spans json=text`` / ``json=dict``: obslib's loader, all spans, full window.
- ``pandas.read_sql``: the floor's SELECT through a SQLAlchemy engine with psycopg 3
  (run once when the first run takes over 30 s).

With ``--breakdown`` it also takes ``load.spans`` apart stage by stage (ADBC execute, fetch,
``to_pandas``, the type layer, JSON parsing), shows the server's plan for the loader's query,
and times what-ifs built from obslib's own query text and type layer: the same query without
bind parameters (window as quoted literals, or through ``set_config``), which lets ADBC use
its COPY path, and the literal form without ``ORDER BY``.

Times are medians of ``--runs`` runs; peak memory is the largest increase of the child's peak
RSS over its RSS after imports (see ``_common.PeakRss`` for why not plain ``ru_maxrss``).
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import time
from pathlib import Path

import _common as c

logger = logging.getLogger("bench.load")

SCRIPT = Path(__file__).resolve()
READ_SQL_ONCE_S = 30.0

# The loader's query (obslib/load.py, _SPANS + the window + its ORDER BY) with the window as
# literals, for the server-side floor. The two timestamps are formatted by this script.
LOADER_COPY = (
    "SELECT trace_id, span_id, parent_span_id, service_name, operation_name, span_kind, "
    "start_time, end_time, duration_ms::float8 AS duration_ms, status, "
    "tags::text AS tags, logs::text AS logs FROM distributed_traces "
    "WHERE start_time >= '{lo}' AND start_time < '{hi}' "
    "ORDER BY start_time, trace_id, span_id"
)

PSQL = ("floor", "floor_loader_query")
METHODS = {
    "floor": "copy floor (psql \\copy binary -> /dev/null)",
    "floor_psycopg": "copy, psycopg cursor.copy() binary, discarded",
    "floor_loader_query": "copy, loader's query (casts + ORDER BY), psql",
    "load_text": "load.spans(json='text')",
    "load_dict": "load.spans(json='dict')",
    "read_sql": "pandas.read_sql (SQLAlchemy + psycopg 3)",
}
WHAT_IFS = {
    "whatif_literal": "what-if: loader SQL, window as quoted literals",
    "whatif_set_config": "what-if: loader SQL, window via set_config",
    "whatif_literal_unordered": "what-if: quoted literals, no ORDER BY",
}


# -- the child: one method, one run ----------------------------------------------------------


def child(method: str, lo: str, hi: str) -> dict:
    """Run one method in this (fresh) interpreter; returns seconds, rows and memory."""
    import adbc_driver_postgresql.dbapi  # noqa: F401  (loaded before the baseline)
    import pandas as pd
    import psycopg
    import pyarrow  # noqa: F401

    from obslib.storage import db, load

    url = os.environ[c.URL_ENV]
    engine = db.engine(url) if method == "read_sql" else None
    gc.collect()
    rss = c.PeakRss()
    rows = frame_bytes = None
    start = time.perf_counter()
    if method == "floor":
        c.run_psql(url, f"\\copy ({c.SELECT_ALL}) to '/dev/null' (format binary)")
    elif method == "floor_loader_query":
        query = LOADER_COPY.format(lo=lo, hi=hi)
        c.run_psql(url, f"\\copy ({query}) to '/dev/null' (format binary)")
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
    elif method in WHAT_IFS:
        frame = what_if(url, lo, hi, method.removeprefix("whatif_"))
        rows = len(frame)
    elif method == "read_sql":
        frame = pd.read_sql(c.SELECT_ALL, engine)
        rows = len(frame)
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


def breakdown(mode: str, lo: str, hi: str) -> dict:
    """load.spans taken apart: the stages of ``_fetch``, ``_typed`` and ``_spans_frame``.

    The same calls in the same order as obslib/load.py makes them, each timed, with the RSS
    after it and the peak so far (both over the post-import RSS).
    """
    import adbc_driver_postgresql.dbapi  # noqa: F401
    import pandas as pd
    import pyarrow as pa

    from obslib.storage import db, load

    url = os.environ[c.URL_ENV]
    query = (
        load._SPANS + "\nFROM distributed_traces\nWHERE start_time >= $1 AND start_time < $2"
        "\nORDER BY start_time, trace_id, span_id"
    )
    params = (load._utc(lo, "start"), load._utc(hi, "end"))
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

    with db.adbc_connection(url) as conn, conn.cursor() as cur:
        cur.execute(query, parameters=params)
        lap("ADBC connect + execute (server runs the query)")
        table = cur.fetch_arrow_table()
        lap("ADBC fetch_arrow_table")
    arrow_bytes = table.nbytes
    frame = table.to_pandas(types_mapper=load._INTS.get)
    lap("Table.to_pandas")
    for col in frame.columns:
        kind = table.schema.field(col).type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            frame[col] = frame[col].astype("str")
    lap('astype("str") of the 8 text columns')
    for col in ("start_time", "end_time"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    lap("pd.to_datetime(utc=True) of the 2 time columns")
    if mode == "dict":
        for col in ("tags", "logs"):
            frame[col] = load.parse_json(frame[col])
        lap("parse_json of tags and logs")
    frame["duration_ms"] = frame["duration_ms"].astype("float64")
    lap('duration_ms.astype("float64")')
    del table
    gc.collect()
    lap("Arrow table released")
    return {
        "mode": mode,
        "stages": stages,
        "arrow_bytes": arrow_bytes,
        "frame_bytes": int(frame.memory_usage(deep=True).sum()),
        "dtypes": {k: str(v) for k, v in frame.dtypes.items()},
    }


def explain(url: str, lo: str, hi: str) -> list[str]:
    """The server's side of the loader's query: its plan and sort, at the default work_mem."""
    import psycopg

    from obslib import load

    query = (
        load._SPANS + " FROM distributed_traces WHERE start_time >= %s AND start_time < %s"
        " ORDER BY start_time, trace_id, span_id"
    )
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
    print(f"\nload.spans(json={result['mode']!r}) taken apart (one run):")
    rows = [[s["stage"], s["seconds"], s["rss"] / c.MB, s["peak"] / c.MB] for s in result["stages"]]
    rows.append(["total", sum(s["seconds"] for s in result["stages"]), None, None])
    print(c.table(["stage", "s", "RSS +MB after", "peak +MB so far"], rows))
    print(
        f"  Arrow table {result['arrow_bytes'] / c.MB:,.0f} MB,"
        f" DataFrame {result['frame_bytes'] / c.MB:,.0f} MB;"
        f" dtypes: {', '.join(f'{k} {v}' for k, v in result['dtypes'].items())}"
    )


def what_if(url: str, lo: str, hi: str, variant: str):
    """load.spans(json="text") with its query free of bind parameters, so ADBC can COPY.

    ADBC's PostgreSQL driver streams a query through binary COPY only when it has no bind
    parameters; with parameters it runs a prepared statement whose whole result libpq buffers
    before converting it. Two ways to pass the window without $n:

    - ``literal``: psycopg renders the two datetimes as quoted SQL literals (``sql.Literal``,
      the driver's own quoting, no hand-made string), so the planner sees constants;
    - ``set_config``: a parameterised ``set_config`` call stores them for the transaction and
      the query reads them with ``current_setting``: values stay bound, but the planner only
      sees a stable expression and guesses the window's selectivity.
    """
    from psycopg import sql

    from obslib.storage import db, load

    where = "\nFROM distributed_traces\nWHERE start_time >= {} AND start_time < {}"
    if variant == "set_config":
        query = load._SPANS + where.format(
            "current_setting('obslib_bench.lo')::timestamptz",
            "current_setting('obslib_bench.hi')::timestamptz",
        )
    else:
        window = (sql.Literal(load._utc(lo, "start")), sql.Literal(load._utc(hi, "end")))
        query = sql.SQL(load._SPANS + where).format(*window).as_string(None)
    if variant != "literal_unordered":
        query += "\nORDER BY start_time, trace_id, span_id"
    with db.adbc_connection(url) as conn, conn.cursor() as cur:
        if variant == "set_config":
            cur.execute(
                "SELECT set_config('obslib_bench.lo', $1, true),"
                " set_config('obslib_bench.hi', $2, true)",
                parameters=(lo, hi),
            )
            cur.fetchall()
        cur.execute(query)
        table = cur.fetch_arrow_table()
        conn.rollback()
    return load._spans_frame(table, "text")


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


def measure(url: str, spans: int, runs: int, methods: list[str]) -> dict[str, list[dict]]:
    lo, hi = window(url)
    logger.info("window %s .. %s", lo, hi)
    results: dict[str, list[dict]] = {m: [] for m in methods}
    for run in range(runs):  # interleaved, so background load spreads over every method
        for method in methods:
            if method == "read_sql" and run > 0 and results[method][0]["seconds"] > READ_SQL_ONCE_S:
                continue
            result = c.run_child(SCRIPT, ["--child", method, "--lo", lo, "--hi", hi], url)
            if result["rows"] is not None and result["rows"] != spans:
                raise SystemExit(f"{method} read {result['rows']} rows, expected {spans}")
            logger.info("run %d %-18s %7.2f s", run + 1, method, result["seconds"])
            results[method].append(result)
    return results


def report(spans: int, n_runs: int, results: dict[str, list[dict]]) -> dict:
    def secs(m: str) -> float:
        return c.median([r["seconds"] for r in results[m]])

    def peak(m: str) -> int:
        return max(r["peak_rss_increase"] for r in results[m])

    rows = []
    for method, label in {**METHODS, **WHAT_IFS}.items():
        if method not in results:
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
    text_frame = results["load_text"][0]["frame_bytes"]
    return {
        "spans": spans,
        "load_vs_floor": round(secs("load_text") / secs("floor"), 3),
        "load_dict_vs_floor": round(secs("load_dict") / secs("floor"), 3),
        "read_sql_vs_load": round(secs("read_sql") / secs("load_text"), 3),
        "peak_mem_vs_frame": round(peak("load_text") / text_frame, 3),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000, help="rows to load")
    parser.add_argument("--runs", type=int, default=3, help="runs per method (median)")
    parser.add_argument(
        "--breakdown", action="store_true", help="also time load.spans' stages, show the plan"
    )
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument(
        "--child",
        choices=[*sorted(METHODS), *sorted(WHAT_IFS), "breakdown_text", "breakdown_dict"],
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
        methods = [*METHODS, *(WHAT_IFS if args.breakdown else ())]
        results = measure(url, args.spans, args.runs, methods)
        details = []
        if args.breakdown:
            lo, hi = window(url)
            plan = explain(url, lo, hi)
            for mode in ("text", "dict"):
                details.append(
                    c.run_child(SCRIPT, [f"--child=breakdown_{mode}", "--lo", lo, "--hi", hi], url)
                )
    summary = report(args.spans, args.runs, results)
    for result in details:
        print_breakdown(result)
    if args.breakdown:
        print("\nthe loader's query on the server (EXPLAIN ANALYZE):")
        print("\n".join("  " + line for line in plan))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
