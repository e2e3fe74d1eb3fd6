"""``obslib db retain`` on the demo: the archive's bytes per span, the PostgreSQL space freed,
the time to retire 7 days, and one archived day read back through ``load.spans`` (cold)
against the same day read before retention (hot). With ``--pack``: instead, the index bytes
per span (per log record) before and after retain packs the finished days, and the time
packing takes (the demo's last day, today's, stays as written: its baseline).

    .venv/bin/python bench/retain.py --spans 500000 [--days 7]
    .venv/bin/python bench/retain.py --spans 1000000 --pack

Last stdout line: one JSON object (targets: archive ≤ 40 bytes/span; the cold day's frame
equal to the hot one; packed: fewer index bytes, the same rows, every index valid).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common
import psycopg

from obslib import load
from obslib.jobs import pack, retain

ARCHIVE_TARGET = 40.0  # bytes per span (issue 24)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=500_000)
    parser.add_argument("--days", type=int, default=7, help="days to retire (default 7)")
    parser.add_argument("--pack", action="store_true", help="measure packing instead")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    _common.setup_logging(args.verbose)
    with _common.server() as server_url, _common.scratch_database(server_url) as url:
        started = time.perf_counter()
        _common.write_demo(url, args.spans)
        if args.pack:
            return measure_pack(url, args.spans, time.perf_counter() - started)
        first, _ = load.data_range(url=url)
        first_day = pd.Timestamp(first).floor("D")
        probe = (first_day + pd.Timedelta(days=1), first_day + pd.Timedelta(days=2))
        started = time.perf_counter()
        hot = load.spans(*probe, json="text", url=url)
        hot_s = time.perf_counter() - started
        kept = (first_day + pd.Timedelta(days=args.days)).date()
        with tempfile.TemporaryDirectory(prefix="obslib-archive-") as folder:
            started = time.perf_counter()
            results = retain.retain(retain.Horizon(kept, kept), folder, url=url)
            retain_s = time.perf_counter() - started
            spans = [r for r in results if r.table == "spans" and r.action == "archived"]
            rows = sum(r.rows or 0 for r in spans)
            archive_bytes = sum(r.file_bytes or 0 for r in spans)
            freed = sum(r.bytes_freed or 0 for r in spans)
            started = time.perf_counter()
            cold = load.spans(*probe, json="text", url=url)
            cold_s = time.perf_counter() - started
            same = cold.equals(hot)
    per_span = archive_bytes / rows if rows else float("nan")
    print(
        _common.table(
            ["days", "spans archived", "retain s", "archive B/span", "PostgreSQL B/span freed",
             "one day hot s", "one day cold s"],
            [[len(spans), rows, f"{retain_s:.1f}", f"{per_span:.1f}",
              f"{freed / rows if rows else float('nan'):.0f}", f"{hot_s:.2f}", f"{cold_s:.2f}"]],
        )
    )  # fmt: skip
    result = {
        "spans": args.spans,
        "days_retired": len(spans),
        "spans_archived": rows,
        "retain_s": round(retain_s, 2),
        "archive_bytes_per_span": round(per_span, 1),
        "archive_bytes_per_span_target": ARCHIVE_TARGET,
        "pg_bytes_freed_per_span": round(freed / rows, 1) if rows else None,
        "load_day_hot_s": round(hot_s, 3),
        "load_day_cold_s": round(cold_s, 3),
        "cold_equals_hot": bool(same),
        "met": bool(per_span <= ARCHIVE_TARGET and same),
    }
    print(json.dumps(result))
    return 0 if result["met"] else 1


# Per table and parent index: the index bytes of the finished days (packed or not) and of
# the others (today's), the rows of each, and whether every index is valid.
_INDEXES = """SELECT h.inhparent::regclass::text, coalesce(pi.inhparent::regclass::text, 'toast'),
       c.relname ~ '_p[0-9]{8}$' AND right(c.relname, 8) < %(day)s,
       sum(pg_relation_size(i.indexrelid)), bool_and(i.indisvalid)
FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
JOIN pg_index i ON i.indrelid IN (c.oid, c.reltoastrelid)
LEFT JOIN pg_inherits pi ON pi.inhrelid = i.indexrelid
WHERE h.inhparent::regclass::text IN ('distributed_traces', 'structured_logs')
GROUP BY 1, 2, 3"""
# Every byte of each table (heap, TOAST, indexes; the spans' tag sets counted with them).
_TOTAL = """SELECT h.inhparent::regclass::text, sum(pg_total_relation_size(h.inhrelid))
FROM pg_inherits h WHERE h.inhparent::regclass::text IN ('distributed_traces', 'structured_logs')
GROUP BY 1 UNION ALL SELECT 'span_tag_sets', pg_total_relation_size(to_regclass('span_tag_sets'))"""
_ROWS = """SELECT 'distributed_traces', start_time < %(midnight)s, count(*) FROM distributed_traces
GROUP BY 2 UNION ALL
SELECT 'structured_logs', timestamp < %(midnight)s, count(*) FROM structured_logs GROUP BY 2"""


def index_bytes(url: str, today) -> tuple[dict, dict, bool, dict]:
    """({(table, index, finished): bytes}, {(table, finished): rows}, every index valid,
    {table: every byte})."""
    params = {"day": f"{today:%Y%m%d}", "midnight": pd.Timestamp(today, tz="UTC")}
    with psycopg.connect(url) as conn:
        sizes = conn.execute(_INDEXES, params).fetchall()
        rows = conn.execute(_ROWS, params).fetchall()
        total = {t: int(n or 0) for t, n in conn.execute(_TOTAL).fetchall()}
    total["distributed_traces"] += total.pop("span_tag_sets", 0)
    valid = all(r[4] for r in sizes)
    out = {}
    for table, index, earlier, size, _ in sizes:
        key = (table, index.split(".")[-1], bool(earlier))
        out[key] = out.get(key, 0) + int(size)
    return out, {(t, bool(f)): int(n) for t, f, n in rows}, valid, total


def measure_pack(url: str, spans: int, write_s: float) -> int:
    """Pack the demo's finished days as ``retain`` does (every day kept) and print index
    bytes per span before and after; the last line JSON."""
    now = pd.Timestamp.now(tz="UTC").to_pydatetime()
    today = now.date()
    before, rows, _, total_before = index_bytes(url, today)
    first, _ = load.data_range(url=url)
    kept = pd.Timestamp(first).floor("D").date()
    started = time.perf_counter()
    results = pack.pack(retain.Horizon(kept, kept), now=now, url=url)
    pack_s = time.perf_counter() - started
    started = time.perf_counter()
    rerun = pack.pack(retain.Horizon(kept, kept), now=now, url=url)
    rerun_s = time.perf_counter() - started
    after, rows_after, valid, total_after = index_bytes(url, today)

    def per_row(sizes: dict, table: str, finished: bool | None = None, index: str | None = None):
        n = sum(v for (t, f), v in rows.items() if t == table and finished in (None, f))
        total = sum(v for (t, i, f), v in sizes.items()
                    if t == table and finished in (None, f) and index in (None, i))  # fmt: skip
        return round(total / n, 1) if n else None

    table_rows = []
    result: dict = {"spans": spans, "write_s": round(write_s, 1)}
    for table, short in (("distributed_traces", "spans"), ("structured_logs", "logs")):
        names = sorted({i for (t, i, _) in before if t == table})
        for index in [None, *names]:
            label = index or "all indexes"
            table_rows.append([f"{short}: {label}"] + [
                per_row(sizes, table, finished, index)
                for finished in (True, None) for sizes in (before, after)
            ])  # fmt: skip
        result[f"{short}_rows"] = n = sum(v for (t, _), v in rows.items() if t == table)
        result[f"{short}_total_bytes_before"] = round(total_before[table] / n, 1) if n else None
        result[f"{short}_total_bytes_after"] = round(total_after[table] / n, 1) if n else None
        result[f"{short}_index_bytes_before"] = per_row(before, table)
        result[f"{short}_index_bytes_after"] = per_row(after, table)
        result[f"{short}_finished_days_index_bytes_before"] = per_row(before, table, True)
        result[f"{short}_finished_days_index_bytes_after"] = per_row(after, table, True)
    print(
        _common.table(
            ["bytes per row", "finished days before", "after", "all days before", "after"],
            table_rows,
        )
    )
    packed = [r for r in results if not r.problem]
    freed = sum(r.bytes_before - (r.bytes_after or 0) for r in packed)
    print(f"packed {len(packed)} days in {pack_s:.1f} s ({freed / 2**20:.1f} MB of indexes freed);"
          f" a rerun packed {len(rerun)} in {rerun_s:.2f} s")  # fmt: skip
    result.update({
        "days_packed": len(packed),
        "days_failed": len(results) - len(packed),
        "pack_s": round(pack_s, 1),
        "rerun_days": len(rerun),
        "rerun_s": round(rerun_s, 2),
        "index_bytes_freed": freed,
        "rows_unchanged": rows_after == rows,
        "indexes_valid": valid,
    })  # fmt: skip
    result["met"] = bool(
        packed and not rerun and valid and rows_after == rows
        and result["spans_index_bytes_after"] < result["spans_index_bytes_before"]
    )  # fmt: skip
    print(json.dumps(result))
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
