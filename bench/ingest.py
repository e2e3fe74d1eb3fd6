"""How fast obslib's span writer stores a DataFrame, against psql's \\copy and executemany.

Why: ``obslib.ingest.write_spans`` validates the frame, stages it with ADBC's bulk ingest in a
temporary table and merges it with ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` in one
transaction. That buys idempotence and all-or-nothing batches; this script measures what it
costs against the fastest plain load PostgreSQL offers and against the naive row-by-row path.

What it does: generates N demo spans (seed 7, 14 days), writes them once to a CSV file (not
timed; tags/logs as JSON text, ISO timestamps, nulls empty), then times, each into an empty
``distributed_traces`` (TRUNCATE and CHECKPOINT before every run, indexes in place):

- ``write_spans(df, url=url)``: obslib's writer, from the DataFrame in memory.
- the floor: psql ``\\copy distributed_traces (<12 columns>) FROM '<file>' (FORMAT csv)``.
- psycopg ``executemany`` of ``INSERT ... ON CONFLICT DO NOTHING`` over a sample of rows
  (``--sample``, tuples prepared beforehand, not timed), extrapolated linearly to N.

Times are medians of ``--runs`` runs, the methods interleaved. With ``--baseline DIR``
``write_spans`` also runs with the obslib of another checkout (``git worktree add DIR main``
before a change), each writer in a fresh process given the same rows, interleaved with the
others: today's writer against the one before, measured in one run. With ``--breakdown`` it
also times the writer's stages one by one, as ``Batch.spans`` runs them (frame -> Arrow, day
partitions, ADBC staging, the tag-set statement, the insert, commit, ANALYZE). The last line
printed is one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import _common as c
import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc

logger = logging.getLogger("bench.ingest")

ISO_UTC = "%Y-%m-%dT%H:%M:%S.%f+00:00"
INSERT = (
    f"INSERT INTO {c.TABLE} ({c.COLUMN_LIST}) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb) "
    "ON CONFLICT DO NOTHING"  # the unique key holds the partition key too (migration 0012)
)


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """The rows as \\copy reads them: JSON text, ISO timestamps, empty for null."""
    out = frame.loc[:, list(c.COLUMNS)].copy()
    for col in ("start_time", "end_time"):
        out[col] = out[col].dt.strftime(ISO_UTC)
    out.to_csv(path, index=False, header=False, na_rep="")


def time_write_spans(frame: pd.DataFrame, url: str) -> float:
    from obslib.ingest import write_spans

    c.reset_table(url)
    start = time.perf_counter()
    written = write_spans(frame, url=url)
    seconds = time.perf_counter() - start
    if written != len(frame):
        raise SystemExit(f"write_spans stored {written} rows, expected {len(frame)}")
    return seconds


def time_child(frame_file: Path, url: str, expected: int, baseline: str | None = None) -> float:
    """``write_spans`` timed in a fresh process (``--child``) on the rows pickled in
    ``frame_file``: with ``baseline``, that checkout's obslib comes first on its path (the
    venv's is editable, so it would win otherwise)."""
    env = {"PYTHONPATH": baseline} if baseline else {}
    result = c.run_child(Path(__file__), ["--child", str(frame_file)], url, env=env)
    if result["written"] != expected:
        raise SystemExit(f"write_spans stored {result['written']} rows, expected {expected}")
    if baseline and not result["obslib"].startswith(str(Path(baseline).resolve())):
        raise SystemExit(f"the baseline child imported {result['obslib']}, not {baseline}")
    return result["seconds"]


def child(frame_file: Path) -> dict:
    """One timed ``write_spans`` of the pickled rows into an emptied table, after an untimed
    warm-up write of 100 rows (which loads the ADBC driver and pyarrow compute)."""
    import obslib
    from obslib.ingest import write_spans

    url = os.environ[c.URL_ENV]
    frame = pd.read_pickle(frame_file)  # our own file, written by this run
    c.reset_table(url)
    write_spans(frame.iloc[:100], url=url)
    c.reset_table(url)
    gc.collect()
    start = time.perf_counter()
    written = write_spans(frame, url=url)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "written": int(written), "obslib": obslib.__file__}


def time_copy(path: Path, url: str, expected: int) -> float:
    c.reset_table(url)
    command = f"\\copy {c.TABLE} ({c.COLUMN_LIST}) from '{path}' (format csv)"
    start = time.perf_counter()
    c.run_psql(url, command)
    seconds = time.perf_counter() - start
    stored = c.count_rows(url)
    if stored != expected:
        raise SystemExit(f"\\copy stored {stored} rows, expected {expected}")
    return seconds


def sample_rows(frame: pd.DataFrame) -> list[tuple]:
    """Plain Python tuples for executemany: datetimes, floats, str, None for missing."""
    out = frame.loc[:, list(c.COLUMNS)].astype(object)
    out = out.where(out.notna(), None)
    for col in ("start_time", "end_time"):
        out[col] = [t.to_pydatetime() for t in frame[col]]
    return list(out.itertuples(index=False, name=None))


def time_executemany(rows: list[tuple], url: str) -> float:
    c.reset_table(url)
    with psycopg.connect(url) as conn:
        start = time.perf_counter()
        with conn.cursor() as cur:
            cur.executemany(INSERT, rows)
        conn.commit()
        seconds = time.perf_counter() - start
    stored = c.count_rows(url)
    if stored != len(rows):
        raise SystemExit(f"executemany stored {stored} rows, expected {len(rows)}")
    return seconds


def breakdown(frame: pd.DataFrame, url: str) -> list[tuple[str, float]]:
    """The writer's stages timed one by one, as ``Batch.spans`` and ``Batch._write`` run them
    for ``write_spans`` (one write, merged at once), each merge statement on its own."""
    from obslib.ingest import records
    from obslib.ingest.frames import to_arrow
    from obslib.ingest.writer import _MERGE, SPAN_SPEC, tables
    from obslib.storage import db, partitions

    c.reset_table(url)
    stages: list[tuple[str, float]] = []
    t = time.perf_counter()

    def lap(label: str) -> None:
        nonlocal t
        now = time.perf_counter()
        stages.append((label, now - t))
        t = now

    table = records.check_span_table(to_arrow(frame, SPAN_SPEC, "spans"))
    lap("frames.to_arrow + records.check_span_table (validation)")
    table = table.append_column(tables.ROW, pa.array(np.arange(table.num_rows)))
    table = table.append_column(tables.TAG, pa.nulls(table.num_rows, pa.string()))
    days = pc.unique(table["start_time"].cast(pa.timestamp("us", "UTC")).cast(pa.date32()))
    with psycopg.connect(url, autocommit=True) as side:
        partitions.ensure_days(side, c.TABLE, sorted(days.to_pylist()))
    lap("day partitions (ensure_days, own connection)")
    with db.adbc_connection(url) as conn, conn.cursor() as cur:
        lap("ADBC connect")
        cur.adbc_ingest(tables.STAGE, table, mode="create", temporary=True)
        lap("adbc_ingest into the temp table (binary COPY)")
        cur.execute(tables.SPANS.lock)
        cur.fetchall()
        lap("advisory lock")
        *prelude, merge = _MERGE["spans"].split(";\n")  # tag sets first (0018), if any
        for statement in prelude:
            cur.execute(statement)
            lap("tag sets: INSERT INTO span_tag_sets ... GROUP BY")
        cur.execute(merge)
        lap("merge: INSERT ... SELECT, anti-join, ON CONFLICT")
        cur.execute(f"DROP TABLE IF EXISTS {tables.STAGE}")
        conn.commit()
        lap("drop stage + commit")
        cur.execute(f"ANALYZE {c.TABLE}")
        conn.commit()
        lap("ANALYZE distributed_traces (writer._analyze)")
    return stages


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000, help="rows to write")
    parser.add_argument("--runs", type=int, default=3, help="runs per method (median)")
    parser.add_argument("--sample", type=int, default=20_000, help="rows for executemany")
    parser.add_argument("--breakdown", action="store_true", help="time the writer's stages")
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="also run write_spans with the obslib of this checkout (e.g. a git worktree of"
        " main), interleaved with today's, each in a fresh process, and print both",
    )
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    c.setup_logging(args.verbose)
    if args.child:
        print(json.dumps(child(args.child)))
        return
    if args.baseline and not (Path(args.baseline) / "obslib" / "__init__.py").is_file():
        raise SystemExit(f"--baseline {args.baseline}: no obslib checkout there")
    sample_n = min(args.sample, args.spans)

    with (
        tempfile.TemporaryDirectory(prefix="obb-csv-") as tmp,
        c.server() as server_url,
        c.scratch_database(server_url) as url,
    ):
        frame = c.generate_spans(args.spans)
        csv = Path(tmp) / "spans.csv"
        write_csv(frame, csv)
        logger.info("CSV written: %s (%.0f MB)", csv, csv.stat().st_size / c.MB)
        rows = sample_rows(frame.iloc[:sample_n])
        # warm-up, untimed: the first write_spans loads the ADBC driver and pyarrow compute
        time_write_spans(frame.iloc[:100], url)
        time_executemany(rows[:100], url)
        gc.collect()
        frame_file = Path(tmp) / "spans.pkl"
        if args.baseline:  # both writers in fresh processes, on these rows
            frame.to_pickle(frame_file)

        ours, floor, many, base = [], [], [], []
        for run in range(args.runs):  # interleaved, so background load spreads over all
            if args.baseline:
                base.append(time_child(frame_file, url, args.spans, args.baseline))
                logger.info("run %d baseline      %7.2f s", run + 1, base[-1])
                ours.append(time_child(frame_file, url, args.spans))
            else:
                ours.append(time_write_spans(frame, url))
            logger.info("run %d write_spans   %7.2f s", run + 1, ours[-1])
            floor.append(time_copy(csv, url, args.spans))
            logger.info("run %d psql \\copy    %7.2f s", run + 1, floor[-1])
            many.append(time_executemany(rows, url))
            logger.info("run %d executemany   %7.2f s (%d rows)", run + 1, many[-1], sample_n)
        stages = breakdown(frame, url) if args.breakdown else []
        csv_mb = csv.stat().st_size / c.MB

    n = args.spans
    t_ours, t_floor = c.median(ours), c.median(floor)
    t_many = c.median(many) * n / sample_n
    load = os.getloadavg()
    print(f"\ningest benchmark: {n:,} spans into an empty distributed_traces (3 indexes)")
    headers = ["method", "runs", "median s", "x \\copy", "rows/s", "all runs s"]
    rows: list[list[object]] = []
    if base:
        t_base = c.median(base)
        rows.append(
            [
                f"write_spans(df), baseline {args.baseline}",
                len(base),
                t_base,
                t_base / t_floor,
                f"{n / t_base:,.0f}",
                " ".join(f"{s:.2f}" for s in base),
            ]
        )
    print(
        c.table(
            headers,
            [
                *rows,
                [
                    "write_spans(df) (ADBC stage + merge)",
                    len(ours),
                    t_ours,
                    t_ours / t_floor,
                    f"{n / t_ours:,.0f}",
                    " ".join(f"{s:.2f}" for s in ours),
                ],
                [
                    f"psql \\copy from CSV ({csv_mb:.0f} MB, floor)",
                    len(floor),
                    t_floor,
                    1.0,
                    f"{n / t_floor:,.0f}",
                    " ".join(f"{s:.2f}" for s in floor),
                ],
                [
                    f"psycopg executemany, {sample_n:,} rows x {n / sample_n:g}",
                    len(many),
                    t_many,
                    t_many / t_floor,
                    f"{n / t_many:,.0f}",
                    " ".join(f"{s:.2f}" for s in many) + " (sample)",
                ],
            ],
        )
    )
    print(
        f"  executemany: measured on the first {sample_n:,} rows (tuples prepared untimed)"
        " and extrapolated linearly to all rows."
    )
    if stages:
        print("\nwrite_spans stages (one run, same rows):")
        total = sum(s for _, s in stages)
        print(
            c.table(
                ["stage", "s", "share"],
                [[label, s, f"{s / total:.0%}"] for label, s in stages] + [["total", total, ""]],
            )
        )
    print(f"  load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    summary = {
        "spans": n,
        "ingest_vs_copy_floor": round(t_ours / t_floor, 3),
        "executemany_vs_ingest": round(t_many / t_ours, 3),
        "load_average": [round(x, 2) for x in load],
    }
    if base:
        # each run's pair was timed back to back: their ratios shed load that comes and goes
        pairs = [now / then for now, then in zip(ours, base, strict=True)]
        print("  write_spans / baseline, run by run: " + " ".join(f"{r:.2f}" for r in pairs))
        summary["baseline_vs_copy_floor"] = round(c.median(base) / t_floor, 3)
        summary["ingest_vs_baseline"] = round(t_ours / c.median(base), 3)
        summary["ingest_vs_baseline_median_of_runs"] = round(c.median(pairs), 3)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
