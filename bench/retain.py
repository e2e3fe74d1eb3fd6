"""``obslib db retain`` on the demo: the archive's bytes per span, the PostgreSQL space freed,
the time to retire 7 days, and one archived day read back through ``load.spans`` (cold)
against the same day read before retention (hot).

    .venv/bin/python bench/retain.py --spans 500000 [--days 7]

Last stdout line: one JSON object (targets: archive ≤ 40 bytes/span; the cold day's frame
equal to the hot one).
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

from obslib import load
from obslib.jobs import retain

ARCHIVE_TARGET = 40.0  # bytes per span (issue 24)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=500_000)
    parser.add_argument("--days", type=int, default=7, help="days to retire (default 7)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    _common.setup_logging(args.verbose)
    with _common.server() as server_url, _common.scratch_database(server_url) as url:
        _common.write_demo(url, args.spans)
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


if __name__ == "__main__":
    sys.exit(main())
