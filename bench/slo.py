"""How fast, and in how much memory, the 30-day SLO review runs as the stored spans grow.

Why: ``obslib.views.slo_review.review_slos`` claims to scale with time buckets, not spans:
it reads per-minute and hourly SLI counts aggregated in PostgreSQL (``load.slo_counts``),
evaluates every SLO at the end of the data (``slo_status.evaluate_at``) and replays the
burn-rate alert rules over the window (``slo_replay.replay``) in pandas. So its time should
grow only with the server's aggregation (linear in spans, fast) and its memory hardly at all.
Targets
(issue 9): peak memory at 3M spans ≤ 1.2x that at 1M, and under 10 s at 10M spans.

What it does, per size N (``--sizes``): a fresh database on one private embedded server,
``obslib.demo.run(spans=N)`` into it (deterministic: seed 7, 14 days), VACUUM ANALYZE and
CHECKPOINT, then one fresh interpreter (``--child``) that

- imports everything the review needs, takes its RSS as the baseline, runs the review once
  (the warm-up: connections, plans, caches) and records the peak RSS above the baseline:
  the review's peak memory at this size, untouched by any other size's allocations;
- times ``--runs`` more whole reviews (``review_slos("30d", url=url)``; median), each
  followed by the review's parts on their own (interleaved, median): the two SQL count
  queries it makes (``load.slo_counts`` per minute over the rule lookback and per hour over
  the longest SLO period, planned by ``slo.read_plan`` as the review plans them) and the
  pandas part on those counts (``slo_status.evaluate_at`` + ``slo_replay.replay``).

``--profile`` adds a cProfile of one more review per size (top functions by cumulative and
by own time). Public API only (``obslib.demo``, ``obslib.load``, ``obslib.slo``,
``obslib.slo.status``, ``obslib.slo.replay``, ``obslib.jobs.slo_evaluation``,
``obslib.views.slo_review``, ``obslib.storage``). The last line printed is one JSON object
with each target beside it.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import logging
import pstats
import time
from pathlib import Path

import _common as c

logger = logging.getLogger("bench.slo")

SCRIPT = Path(__file__).resolve()
WINDOW = "30d"
SEED = 7
TARGET_PEAK_RATIO = 1.2  # peak at 3M spans / peak at 1M spans
TARGET_10M_S = 10.0  # seconds for the whole review at 10M spans
TEN_M = 10_000_000
PROFILE_LINES = 18


# -- the child: one size, one fresh interpreter ------------------------------------------------


def review_parts(url: str) -> dict:
    """The review's inputs, planned as ``review_slos`` plans them (``slo.read_plan``), from
    public functions only: the SLOs (checked, with their rules) and the plan (the window,
    the minute counts' window and the hourly counts' one)."""
    from obslib import load, slo
    from obslib.values import duration

    stored = load.data_range(url=url)
    slos = slo.objectives(load.enabled_slos(None, url=url))
    plan = slo.read_plan(
        slos,
        load.data_end("", url=url),
        window=duration(WINDOW),
        data_start=None if stored is None else stored[0],
    )
    return {"slos": slos, "plan": plan}


def child(url: str, runs: int, profile: bool) -> dict:
    """Peak memory of a first review in this fresh interpreter, then the timed runs."""
    import adbc_driver_postgresql.dbapi  # noqa: F401  (loaded before the baseline)
    import numpy  # noqa: F401
    import orjson  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401

    from obslib import load, slo
    from obslib.slo import replay as slo_replay
    from obslib.slo import status as slo_status
    from obslib.views.slo_review import review_slos

    gc.collect()
    rss = c.PeakRss()
    start = time.perf_counter()
    review = review_slos(WINDOW, url=url)
    first_s = time.perf_counter() - start
    peak = rss.increase()
    minute_rows, hourly_rows = len(review.counts), len(review.hourly)
    counts_bytes = int(review.counts.memory_usage(deep=True).sum())
    counts_bytes += int(review.hourly.memory_usage(deep=True).sum())
    statuses = review.result.slos["compliance_status"].value_counts().to_dict()
    firings = len(review.replayed.firings)
    del review
    gc.collect()

    p = review_parts(url)
    slos, plan = p["slos"], p["plan"]
    review_s, sql_s, pandas_s = [], [], []
    for _ in range(runs):  # interleaved, so background load spreads over the three timings
        start = time.perf_counter()
        review_slos(WINDOW, url=url)
        review_s.append(time.perf_counter() - start)
        gc.collect()
        start = time.perf_counter()
        counts = load.slo_counts(slos.frame, plan.minutes_from, plan.end, bucket=slo.STEP, url=url)
        if plan.older_hours:  # the hours before the minutes (the review sums the minutes'
            # own hours in pandas)
            load.slo_counts(slos.frame, *plan.older_hours, bucket="1h", url=url)
        sql_s.append(time.perf_counter() - start)
        incidents = load.incidents(plan.start, plan.end, url=url)  # small; not timed
        start = time.perf_counter()
        slo_status.evaluate_at(counts, slos, plan.end, bucket=slo.STEP)
        slo_replay.replay(counts, slos, incidents, plan.start, plan.end, bucket=slo.STEP)
        pandas_s.append(time.perf_counter() - start)
        gc.collect()
    if len(counts) != minute_rows:
        raise SystemExit(f"parts read {len(counts)} minute rows, the review {minute_rows}")

    result = {
        "first_s": first_s,
        "review_s": review_s,
        "sql_s": sql_s,
        "pandas_s": pandas_s,
        "peak_bytes": peak,
        "peak_bytes_all_runs": rss.increase(),
        "minute_rows": minute_rows,
        "hourly_rows": hourly_rows,
        "counts_bytes": counts_bytes,
        "slos": len(slos.frame),
        "statuses": statuses,
        "firings": firings,
        "window": [str(plan.start), str(plan.end)],
    }
    if profile:
        result["profile"] = profile_review(url)
    return result


def profile_review(url: str) -> str:
    """One more review under cProfile: the top functions by cumulative and by own time."""
    from obslib.views.slo_review import review_slos

    prof = cProfile.Profile()
    prof.enable()
    review_slos(WINDOW, url=url)
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out).strip_dirs()
    stats.sort_stats("cumulative").print_stats(PROFILE_LINES)
    stats.sort_stats("tottime").print_stats(PROFILE_LINES)
    return out.getvalue()


# -- the server's side of one count query ---------------------------------------------------------

# A query shaped like one ``load.sli_counts`` call (its columns, grouping and filters; the
# values read back from session settings in sub-selects, as the loader binds them), for
# EXPLAIN. The review reads its counts in such scans, one per bucket size (per minute, and
# per hour for the hours before the minutes), each with one ``fast`` count per threshold.
COUNTS_SHAPED = """SELECT service_name,
       date_bin(make_interval(secs => (SELECT current_setting('obslib.p3')::float8)),
                start_time, TIMESTAMPTZ '2000-01-01') AS bucket,
       count(*) AS total,
       count(*) FILTER (WHERE status = 'ok') AS ok,
       count(*) FILTER (WHERE duration_ms <= (SELECT current_setting('obslib.p4')::float8))
         AS fast
FROM distributed_traces
WHERE start_time >= (SELECT current_setting('obslib.p1')::timestamptz)
  AND start_time < (SELECT current_setting('obslib.p2')::timestamptz)
  AND span_kind = 'server'
  AND service_name = ANY(ARRAY(SELECT jsonb_array_elements_text(
        current_setting('obslib.p5')::jsonb)))
GROUP BY 1, 2"""


def explain(url: str) -> list[str]:
    """EXPLAIN ANALYZE of one per-minute count query over the review's minute window."""
    import psycopg

    p = review_parts(url)
    services = sorted(set(p["slos"].frame["service_name"]))
    values = [p["plan"].minutes_from.isoformat(), p["plan"].end.isoformat(), "60", "500",
              json.dumps(services)]  # fmt: skip
    with psycopg.connect(url, autocommit=True) as conn:
        for i, value in enumerate(values, start=1):
            conn.execute("SELECT set_config(%s, %s, false)", (f"obslib.p{i}", value))
        options = "ANALYZE, BUFFERS"
        plan = [r[0] for r in conn.execute(f"EXPLAIN ({options}) {COUNTS_SHAPED}")]
        total = conn.execute("SELECT count(*) FROM distributed_traces").fetchone()
        server = conn.execute(
            "SELECT count(*) FROM distributed_traces WHERE span_kind = 'server'"
        ).fetchone()
    head = f"{total[0]:,} spans, {server[0]:,} server spans; EXPLAIN ({options}):"
    return [head, *plan]


# -- the parent: data per size, children, report -----------------------------------------------


def measure_size(server_url: str, spans: int, runs: int, profile: bool, with_plan: bool) -> dict:
    """The demo at ``spans`` into a new database, then one fresh child measuring the review."""
    with c.scratch_database(server_url) as url:
        summary = c.write_demo(url, spans, SEED)
        plan = explain(url) if with_plan else None
        args = ["--child", str(runs)] + (["--profile"] if profile else [])
        result = c.run_child(SCRIPT, args, url, timeout=7200)
    result["spans"] = summary.spans
    if plan:
        result["plan"] = plan
    logger.info(
        "%d spans: first review %.2f s, peak +%.0f MB; reviews %s s",
        summary.spans, result["first_s"], result["peak_bytes"] / c.MB,
        " ".join(f"{s:.2f}" for s in result["review_s"]),
    )  # fmt: skip
    return result


def report(results: dict[int, dict], runs: int) -> dict:
    sizes = sorted(results)
    med = {n: {k: c.median(results[n][k]) for k in ("review_s", "sql_s", "pandas_s")}
           for n in sizes}  # fmt: skip
    rows = []
    for n in sizes:
        r, m = results[n], med[n]
        rows.append(
            [
                f"{n:,}",
                r["spans"],
                m["review_s"],
                m["sql_s"],
                m["pandas_s"],
                m["review_s"] - m["sql_s"] - m["pandas_s"],
                f"{r['spans'] / m['review_s']:,.0f}",
                r["peak_bytes"] / c.MB,
                r["counts_bytes"] / c.MB,
                r["minute_rows"],
                " ".join(f"{s:.2f}" for s in r["review_s"]),
            ]
        )
    headers = ["size", "spans stored", "review s", "SQL s", "pandas s", "rest s", "spans/s"]
    headers += ["peak +MB", "counts MB", "minute rows", "review runs s"]
    print(f"\nSLO review ({WINDOW}) benchmark, median of {runs} runs after a warm-up")
    print(c.table(headers, rows))
    print(
        "  SQL: the review's two load.slo_counts queries (1min over the rule lookback, 1h over"
        " the longest period).\n  pandas: slo_status.evaluate_at + slo_replay.replay on the"
        " minute counts. rest: review - SQL - pandas\n  (data_range, SLO and incident loads, the"
        " selection). peak: the first review's peak RSS (VmHWM)\n  over the fresh child's RSS"
        " after imports. counts MB: the minute + hourly count frames."
    )
    for n in sizes:
        r = results[n]
        print(
            f"  {n:,}: {r['slos']} SLOs, window {r['window'][0]} .. {r['window'][1]},"
            f" statuses {r['statuses']}, {r['firings']} replayed firings,"
            f" peak over all runs +{r['peak_bytes_all_runs'] / c.MB:,.0f} MB"
        )

    summary: dict[str, object] = {
        "review_s": {str(n): round(med[n]["review_s"], 3) for n in sizes},
        "sql_s": {str(n): round(med[n]["sql_s"], 3) for n in sizes},
        "pandas_s": {str(n): round(med[n]["pandas_s"], 3) for n in sizes},
        "peak_mb": {str(n): round(results[n]["peak_bytes"] / c.MB, 1) for n in sizes},
        "spans_per_s": {str(n): round(results[n]["spans"] / med[n]["review_s"]) for n in sizes},
    }
    met: dict[str, bool] = {}
    if 1_000_000 in results and 3_000_000 in results:
        ratio = results[3_000_000]["peak_bytes"] / results[1_000_000]["peak_bytes"]
        summary["peak_ratio_3m_1m"] = round(ratio, 3)
        met["peak_ratio_3m_1m"] = ratio <= TARGET_PEAK_RATIO
        print(f"\npeak memory 3M / 1M: {ratio:.3f} (target ≤ {TARGET_PEAK_RATIO})")
    summary["target_peak_ratio"] = TARGET_PEAK_RATIO
    # the rate of the largest size below 10M (its fixed costs included: conservative)
    below = [n for n in sizes if n < TEN_M] or sizes
    base = max(below)
    rate = results[base]["spans"] / med[base]["review_s"]
    extrapolated = TEN_M / rate
    summary["extrapolated_10m_s"] = round(extrapolated, 2)
    summary["extrapolated_from"] = base
    met["extrapolated_10m_s"] = extrapolated < TARGET_10M_S
    print(
        f"review at 10M spans, extrapolated from {base:,} spans at {rate:,.0f} spans/s:"
        f" {extrapolated:.2f} s (target < {TARGET_10M_S:g} s)"
    )
    if len(below) >= 2:  # fixed + per-span cost through the two largest sizes below 10M
        lo, hi = below[-2], below[-1]
        per_span = (med[hi]["review_s"] - med[lo]["review_s"]) / (
            results[hi]["spans"] - results[lo]["spans"]
        )
        fixed = med[hi]["review_s"] - per_span * results[hi]["spans"]
        linear = fixed + per_span * TEN_M
        summary["linear_fit_10m_s"] = round(linear, 2)
        print(
            f"  linear fit through {lo:,} and {hi:,}: {fixed:.2f} s fixed +"
            f" {per_span * 1e6:.3f} s per 1M spans -> {linear:.2f} s at 10M"
        )
    if TEN_M in results:
        measured = med[TEN_M]["review_s"]
        summary["measured_10m_s"] = round(measured, 3)
        met["measured_10m_s"] = measured < TARGET_10M_S
        print(f"review at 10M spans, measured: {measured:.2f} s (target < {TARGET_10M_S:g} s)")
    summary["target_10m_s"] = TARGET_10M_S
    summary["met"] = met
    for n in sizes:
        if "plan" in results[n]:
            print(f"\none per-minute count query at {n:,} spans, on the server:")
            print("\n".join("  " + line for line in results[n]["plan"]))
        if "profile" in results[n]:
            print(f"\ncProfile of one review at {n:,} spans:\n{results[n]['profile']}")
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default="1000000,3000000",
        help="demo span counts, comma-separated (each its own database)",
    )
    parser.add_argument("--runs", type=int, default=3, help="timed reviews per size (median)")
    parser.add_argument("--profile", action="store_true", help="cProfile one review per size")
    parser.add_argument(
        "--explain", action="store_true", help="EXPLAIN ANALYZE one count query per size"
    )
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--child", type=int, metavar="RUNS", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    c.setup_logging(args.verbose)
    if args.child is not None:
        import os

        print(json.dumps(child(os.environ[c.URL_ENV], args.child, args.profile)))
        return
    try:
        sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        parser.error(f"--sizes must be whole numbers separated by commas, not {args.sizes!r}")
    if not sizes or min(sizes) <= 0 or args.runs < 1:
        parser.error("--sizes needs positive span counts and --runs at least 1")

    results: dict[int, dict] = {}
    with c.server() as server_url:
        for n in sizes:
            results[n] = measure_size(server_url, n, args.runs, args.profile, args.explain)
    print(json.dumps(report(results, args.runs)))


if __name__ == "__main__":
    main()
