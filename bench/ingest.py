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

Times are medians of ``--runs`` runs, the methods interleaved. With ``--breakdown`` it also
times the writer's stages one by one (frame -> Arrow, ADBC staging, merge, commit). The last
line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import tempfile
import time
from pathlib import Path

import _common as c
import pandas as pd
import psycopg

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
    """The writer's stages timed one by one, as ``Batch.spans`` and ``Batch._merge`` run them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from obslib.ingest.frames import to_arrow
    from obslib.ingest.writer import _MERGE, SPAN_SPEC
    from obslib.storage import db

    c.reset_table(url)
    stages: list[tuple[str, float]] = []
    t = time.perf_counter()

    def lap(label: str) -> None:
        nonlocal t
        now = time.perf_counter()
        stages.append((label, now - t))
        t = now

    table = to_arrow(frame, SPAN_SPEC, "spans")
    lap("frames.to_arrow (validation, text + JSON columns)")
    if pc.any(pc.less(table["end_time"], table["start_time"])).as_py():
        raise SystemExit("a span ends before it starts")
    micros = pc.subtract(
        table["end_time"].cast(pa.int64()), table["start_time"].cast(pa.int64())
    ).cast(pa.float64())
    duration = pc.coalesce(table["duration_ms"], pc.divide(micros, 1000.0))
    table = table.set_column(table.schema.get_field_index("duration_ms"), "duration_ms", duration)
    lap("end >= start check + duration default (Arrow)")
    with db.adbc_connection(url) as conn, conn.cursor() as cur:
        lap("ADBC connect")
        cur.adbc_ingest("obslib_stage", table, mode="create", temporary=True)
        lap("adbc_ingest into the temp table (binary COPY)")
        cur.execute(_MERGE["spans"])
        lap("merge INSERT ... SELECT ... ON CONFLICT")
        cur.execute("DROP TABLE IF EXISTS obslib_stage")
        conn.commit()
        lap("drop stage + commit")
    return stages


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000, help="rows to write")
    parser.add_argument("--runs", type=int, default=3, help="runs per method (median)")
    parser.add_argument("--sample", type=int, default=20_000, help="rows for executemany")
    parser.add_argument("--breakdown", action="store_true", help="time the writer's stages")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    c.setup_logging(args.verbose)
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

        ours, floor, many = [], [], []
        for run in range(args.runs):  # interleaved, so background load spreads over all three
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
    print(f"\ningest benchmark: {n:,} spans into an empty distributed_traces (4 indexes)")
    headers = ["method", "runs", "median s", "x \\copy", "rows/s", "all runs s"]
    print(
        c.table(
            headers,
            [
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
    print(
        json.dumps(
            {
                "spans": n,
                "ingest_vs_copy_floor": round(t_ours / t_floor, 3),
                "executemany_vs_ingest": round(t_many / t_ours, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
