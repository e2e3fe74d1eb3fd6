"""What the sampling weight costs Spark's SLI counts: ``obslib.spark.sli_counts`` (each span
by 1 / sampling_probability, ``weights.weighted_count_sql(dialect="spark")``) against the
same grouping counted with ``count(*)``, the baseline, timed in the same session.

Why (issue 26): the weighted sums replace counts; PostgreSQL's cost 1.07x (README,
"The counts stay right"). Here the same question on Spark, local mode.

What it does: N synthetic server spans (``--spans``, default 1,000,000: 12 services, 24 h,
a tenth failing, a third sampled at p = 0.1) written once to Parquet with pyarrow, read by
``local_session(2)``; then ``--runs`` times each (alternating, after one warm-up of each):
the weighted ``sli_counts(df, bucket="5min", latency_threshold_ms=250)`` collected to
pandas, and the unweighted baseline (the same filter, bins and three counts with
``count``/``count_if``). Prints the medians and their ratio; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SERVICES = 12


def spans_table(n: int, seed: int = 7) -> pa.Table:
    """``n`` server spans with the export's column types."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2026-11-14T00:00:00", "us") + rng.integers(0, 86_400_000_000, n)
    duration = rng.gamma(2.0, 80.0, n)
    sampled = rng.random(n) < 1 / 3
    return pa.table(
        {
            "service_name": pa.array([f"svc{i}" for i in rng.integers(0, SERVICES, n)]),
            "span_kind": pa.array(np.full(n, "server", dtype=object)),
            "start_time": pa.array(start, pa.timestamp("us", tz="UTC")),
            "duration_ms": pa.array(duration),
            "status": pa.array(np.where(rng.random(n) < 0.1, "error", "ok").astype(object)),
            "sampling_probability": pa.array(np.where(sampled, 0.1, 1.0), pa.float32()),
        }
    )


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--spans", type=int, default=1_000_000)
    args.add_argument("--runs", type=int, default=5)
    opts = args.parse_args()

    from pyspark.sql import functions as F

    from obslib import spark
    from obslib.values import positive_duration

    session = spark.local_session(2)
    session.sparkContext.setLogLevel("ERROR")
    try:
        with tempfile.TemporaryDirectory(prefix="obslib-bench-") as folder:
            path = Path(folder) / "spans.parquet"
            pq.write_table(spans_table(opts.spans), path)
            df = session.read.parquet(str(path)).cache()
            df.count()  # read once: both sides then aggregate the same cached rows

            def weighted():
                return spark.sli_counts(df, bucket="5min", latency_threshold_ms=250.0).toPandas()

            stride = round(positive_duration("5min", "bucket").total_seconds() * 1e6)

            def baseline():
                since = F.unix_micros("start_time") - F.lit(spark._ORIGIN_US)
                binned = F.lit(spark._ORIGIN_US) + since - F.pmod(since, F.lit(stride))
                rows = df.where(F.col("span_kind") == "server")
                rows = rows.withColumn("bucket", F.timestamp_micros(binned))
                counts = rows.groupBy("service_name", "bucket").agg(
                    F.count(F.lit(1)).alias("total"),
                    F.count_if(F.col("status") == "ok").alias("ok"),
                    F.count_if(F.col("duration_ms") <= F.lit(250.0)).alias("fast"),
                )
                return counts.orderBy("service_name", "bucket").toPandas()

            times: dict[str, list[float]] = {"weighted": [], "count": []}
            for run in range(opts.runs + 1):
                for name, work in (("weighted", weighted), ("count", baseline)):
                    began = time.perf_counter()
                    rows = work()
                    if run:  # the first of each is a warm-up
                        times[name].append(time.perf_counter() - began)
            assert len(rows) == len(weighted()) > 0
    finally:
        session.stop()
    medians = {k: statistics.median(v) for k, v in times.items()}
    ratio = medians["weighted"] / medians["count"]
    print(f"{opts.spans:,} server spans, {opts.runs} runs each, medians:")
    print(f"  weighted sli_counts {medians['weighted']:.3f} s, count(*) {medians['count']:.3f} s")
    print(json.dumps({"spans": opts.spans, **medians, "weighted_vs_count": round(ratio, 3)}))


if __name__ == "__main__":
    main()
