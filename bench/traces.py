"""Trace analysis speed: one 100,000-span trace, and the critical paths of a million spans.

Prints the timings and, as the last line, one JSON object:
{"trace_spans": N, "reconstruct_s": ..., "critical_path_s": ..., "path_target_met": bool,
 "window_spans": M, "window_traces": T, "critical_paths_s": ..., "per_trace_loop_vs_batched": ...}
The baseline in the same run is the obvious way: critical_path called trace by trace.
"""

from __future__ import annotations

import argparse
import json
import logging
import time

import numpy as np
import pandas as pd

from obslib import demo, traces

logger = logging.getLogger(__name__)
T0 = pd.Timestamp("2026-11-14", tz="UTC")


def random_trace(n: int, seed: int = 1) -> pd.DataFrame:
    """A random tree of n spans, each child inside its parent, some fan-out, some depth."""
    rng = np.random.default_rng(seed)
    parent = np.r_[-1, rng.integers(np.maximum(0, np.arange(1, n) - 50), np.arange(1, n))]
    start = np.zeros(n)
    end = np.zeros(n)
    end[0] = 10_000_000.0
    for i in range(1, n):  # setup only, not timed
        p = parent[i]
        start[i] = rng.uniform(start[p], end[p])
        end[i] = rng.uniform(start[i], end[p])
    ids = np.array([f"s{i}" for i in range(n)], dtype=object)
    return pd.DataFrame(
        {
            "trace_id": "big",
            "span_id": ids,
            "parent_span_id": np.where(parent >= 0, ids[np.maximum(parent, 0)], None),
            "service_name": "svc",
            "operation_name": "op",
            "span_kind": "internal",
            "status": "ok",
            "start_time": T0 + pd.to_timedelta(start, unit="us"),
            "end_time": T0 + pd.to_timedelta(end, unit="us"),
        }
    )


def window(spans: int) -> pd.DataFrame:
    per_day = demo.traces_per_day(spans)
    days = [demo.generate_day(d, 7, per_day)[0] for d in range(14)]
    return pd.concat(days, ignore_index=True)


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace-spans", type=int, default=100_000)
    parser.add_argument("--window-spans", type=int, default=1_000_000)
    parser.add_argument(
        "--loop-traces",
        type=int,
        default=2_000,
        help="traces for the trace-by-trace baseline (extrapolated)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    big = random_trace(args.trace_spans)
    rebuilt, t_rebuild = timed(traces.reconstruct, big)
    path, t_path = timed(traces.critical_path, rebuilt.spans)
    print(
        f"one trace of {len(big):,} spans: reconstruct {t_rebuild:.3f} s,"
        f" critical path {t_path:.3f} s ({len(path)} sections)"
    )

    logger.info("generating %s demo spans", f"{args.window_spans:,}")
    spans = window(args.window_spans)
    n_traces = spans["trace_id"].nunique()
    _, t_batched = timed(traces.critical_paths, spans)
    sample_ids = spans["trace_id"].drop_duplicates().head(args.loop_traces)
    sample = spans[spans["trace_id"].isin(sample_ids)]
    _, t_loop = timed(lambda f: [traces.critical_path(g) for _, g in f.groupby("trace_id")], sample)
    loop_all = t_loop * n_traces / len(sample_ids)
    print(
        f"critical paths of {n_traces:,} traces ({len(spans):,} spans): {t_batched:.2f} s"
        f" batched; trace by trace {loop_all:.1f} s (extrapolated from {len(sample_ids):,})"
    )
    print(
        json.dumps(
            {
                "trace_spans": len(big),
                "reconstruct_s": round(t_rebuild, 3),
                "critical_path_s": round(t_path, 3),
                "path_target_met": t_rebuild + t_path < 1.0,
                "window_spans": len(spans),
                "window_traces": int(n_traces),
                "critical_paths_s": round(t_batched, 2),
                "per_trace_loop_vs_batched": round(loop_all / t_batched, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
