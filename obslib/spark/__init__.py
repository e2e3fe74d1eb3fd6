"""The window-wide trace views and SLI counts on Apache Spark, for spans past one machine.

Per-trace work is a function of one trace's spans, so each view runs the pandas functions of
``obslib.traces`` / ``obslib.traces.sets`` unchanged on whole traces (all of a trace's spans
in one partition, many traces per call) and only the cross-trace sums are Spark SQL: the
rows equal the pandas path's. Spans in: a Spark DataFrame with the columns of
``distributed_traces`` (``tags`` as JSON text), read from Parquet or over JDBC. pyspark is
the optional extra ``[spark]``; executors need obslib installed (the UDFs import it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from obslib import schema, traces
from obslib.errors import UsageError
from obslib.load import weights
from obslib.storage import db, jdbc
from obslib.traces import sets as trace_sets
from obslib.values import Moment, positive_duration, window

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "compare_critical_paths",
    "critical_path_time",
    "critical_path_totals",
    "in_window",
    "local_session",
    "read_spans",
    "self_time",
    "service_graph",
    "sli_counts",
    "span_and_trace_counts",
    "with_sampling_probability",
]

_SELF = ["self_total_ms", "self_max_ms"]
_ORIGIN_US = 946_684_800_000_000  # 2000-01-01 UTC, the origin load.sli_counts bins from


LOOPBACK = "127.0.0.1"
"""The address every Spark process of ``local_session`` binds to: nothing listens on the
machine's network interfaces."""


def local_session(cores: int = 2, *, partitions: int = 4) -> SparkSession:
    """A local Spark session that runs these functions right on one machine.

    Python workers run this interpreter (Spark otherwise starts ``python3`` from PATH, which
    lacks obslib); times are read as UTC; no UI and no progress bars; bound to 127.0.0.1
    (no network needed, nothing listening on the machine's interfaces); Debian's PostgreSQL
    JDBC jars on the class path when installed (``read_spans``). Everything is Spark
    configuration except what the JVM reads from its environment at launch: see
    ``_launch_environment``; the process environment is left as it was.
    """
    from pyspark.sql import SparkSession

    jars = ",".join(str(jar) for jar in jdbc.JDBC_JARS if jar.exists())
    builder = (
        SparkSession.builder.master(f"local[{int(cores)}]")
        .config("spark.jars", jars)
        .appName("obslib")
        .config("spark.sql.shuffle.partitions", str(int(partitions)))
        .config("spark.default.parallelism", str(int(partitions)))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", LOOPBACK)
        .config("spark.driver.bindAddress", LOOPBACK)
        .config("spark.sql.session.timeZone", "UTC")
    )
    with _launch_environment():
        return builder.getOrCreate()


@contextmanager
def _launch_environment() -> Iterator[None]:
    """``PYSPARK_PYTHON`` set to this interpreter and ``SPARK_LOCAL_IP`` to 127.0.0.1 while
    a SparkContext is created, then both put back as they were.

    pyspark reads its workers' interpreter from ``PYSPARK_PYTHON`` once, when the context
    starts (``SparkContext.pythonExec``); a driver started from Python ignores the
    configuration ``spark.pyspark.python`` (measured: workers ran PATH's ``python3``). The
    JVM it launches picks its own address before reading any configuration: without
    ``SPARK_LOCAL_IP`` it warns "Your hostname, vm, resolves to a loopback address: 127.0.0.1;
    using 192.0.2.2 instead" and binds its block manager to that interface (Spark's
    ``Utils.findLocalInetAddress``). So both are set for that moment only (not at import,
    not for the rest of the process; the JVM launched meanwhile keeps its copy). Not for
    threads creating contexts concurrently."""
    wanted = {"PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": LOOPBACK}
    before = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def read_spans(
    spark: SparkSession,
    start: Moment,
    end: Moment,
    *,
    url: str | None = None,
    partitions: int | None = None,
) -> DataFrame:
    """Spans starting in ``[start, end)`` read by Spark's executors over JDBC, typed as the
    Parquet export's (``duration_ms`` double, ``tags``/``logs`` JSON text) and, like it,
    with each span's ``sampling_probability`` (a float), which ``sli_counts`` weighs by.

    ``partitions`` (default: the session's parallelism) queries split the window by
    ``start_time``, each streamed 10,000 rows at a time; Spark writes the SQL from the
    constant table name and the typed bounds. ``url`` defaults to obslib's database (the
    embedded server's socket folder works through junixsocket); the session needs the JDBC
    jars (``local_session`` adds Debian's; on a cluster, ``spark-submit --jars``).
    """
    from pyspark.sql import functions as F

    lo, hi = window(start, end)
    count = spark.sparkContext.defaultParallelism if partitions is None else int(partitions)
    if count < 1:
        raise UsageError(f"partitions must be at least 1, not {partitions}")
    target = jdbc.jdbc_target(url or db.database_url())
    reader = (
        spark.read.format("jdbc")
        .option("url", target.url)
        .option("driver", "org.postgresql.Driver")
        .option("dbtable", schema.SPANS_TAGGED)
        .option("partitionColumn", "start_time")
        .option("lowerBound", lo.strftime("%Y-%m-%d %H:%M:%S.%fZ"))
        .option("upperBound", hi.strftime("%Y-%m-%d %H:%M:%S.%fZ"))
        .option("numPartitions", str(count))
        .option("fetchsize", "10000")
        .options(**target.properties)
    )
    return in_window(reader.load(), lo, hi).select(
        *[
            F.col(c).cast("double").alias(c) if c == "duration_ms" else F.col(c)
            for c in (*schema.SPAN_COLUMNS, weights.COLUMN)
        ]
    )


def in_window(spans_df: DataFrame, start: Moment, end: Moment) -> DataFrame:
    """Spans starting in ``[start, end)``, as ``load.spans`` picks a window.

    A ``day`` column (the export's ``day=YYYY-MM-DD`` folders) is filtered first, so Spark
    reads only those days' files, then dropped: the columns are the spans' again.
    """
    from pyspark.sql import functions as F

    lo, hi = window(start, end)
    schema.require_columns(spans_df, ["start_time"], "spans")
    if "day" in spans_df.columns:
        last = (hi - pd.Timedelta(microseconds=1)).date()
        days = F.col("day").between(F.lit(lo.date()), F.lit(last))
        spans_df = spans_df.where(days).drop("day")
    start_time = F.col("start_time")
    return spans_df.where(
        (start_time >= F.lit(lo.to_pydatetime())) & (start_time < F.lit(hi.to_pydatetime()))
    )


# -- per trace: the pandas functions on whole traces, many at a time ----------------------

CHUNK_SPANS = 20_000
"""Spans a worker gathers before it runs the pandas function once on their whole traces.

One call per trace (``groupBy("trace_id").applyInPandas``) costs ~45 ms of fixed overhead a
trace, 100x the work itself; one call on all of a partition's traces holds them all in
memory. Whole traces gathered to ~this many spans keep both small (bench/spark.py)."""


def span_and_trace_counts(spans_df: DataFrame) -> tuple[int, int]:
    """How many spans and distinct traces ``spans_df`` holds (one Spark job)."""
    from pyspark.sql import functions as F

    row = spans_df.agg(
        F.count(F.lit(1)).alias("spans"), F.count_distinct("trace_id").alias("traces")
    ).first()
    return int(row["spans"]), int(row["traces"])


def _per_trace(spans_df: DataFrame, work: Callable[[pd.DataFrame], pd.DataFrame], out: str):
    """``work`` on whole traces, as pandas spans frames (times tz-aware UTC, in µs).

    Each trace's spans go to one partition (``repartition`` by ``trace_id``) and arrive
    sorted by ``trace_id``, so a worker reads Arrow batches in order and runs ``work`` on
    every trace complete so far once it has ``CHUNK_SPANS`` spans, carrying the last
    (maybe unfinished) trace over to the next batch. ``work`` is a window function that
    treats each trace on its own (as the pandas views are), so the rows it returns for
    many traces are the rows of each trace's call, concatenated; the sums above are the
    same. Worker memory stays about ``CHUNK_SPANS`` spans plus the largest trace.

    Times cross to Python as microseconds since the epoch: Spark would hand them over as
    naive wall-clock times of the session time zone, which repeat in the hour a DST change
    goes back. Spans without a trace id belong to no trace and are left out
    (``trace_sets.clean_window`` does the same).
    """
    from pyspark.sql import functions as F

    times = [f.name for f in spans_df.schema.fields if f.dataType.typeName() == "timestamp"]
    cols = [
        F.unix_micros(F.col(f"`{c}`")).alias(c) if c in times else F.col(f"`{c}`")
        for c in spans_df.columns
    ]
    chunk = CHUNK_SPANS  # read here, on the driver: workers see the value the call had

    def run(spans: pd.DataFrame) -> pd.DataFrame:
        for col in times:
            micros = spans[col]  # int64, or float64 with NaN when a time is missing
            stamps = micros.fillna(0).astype("int64").to_numpy().astype("datetime64[us]")
            spans[col] = pd.Series(stamps, index=spans.index).where(micros.notna())
            spans[col] = spans[col].dt.tz_localize("UTC")
        result = work(spans.reset_index(drop=True))
        # pyspark 4.3 cannot send pandas 3's Arrow-backed text once it spans several chunks
        # ("Cannot convert ChunkedArray to Array"): hand text back as plain objects
        text = [c for c in result.columns if isinstance(result[c].dtype, pd.StringDtype)]
        return result.astype(dict.fromkeys(text, object)) if text else result

    def whole_traces(batches: Iterable[pd.DataFrame]) -> Iterable[pd.DataFrame]:
        held: list[pd.DataFrame] = []
        count = 0
        for batch in batches:
            if batch.empty:
                continue
            held.append(batch)
            count += len(batch)
            if count < chunk:
                continue
            spans = pd.concat(held, ignore_index=True)
            last = spans["trace_id"].to_numpy()[-1]
            done = (spans["trace_id"] != last).to_numpy()
            held = [spans[~done]]  # the last trace may go on in the next batch
            count = len(held[0])
            if done.any():
                yield run(spans[done].copy())
        if count:
            yield run(pd.concat(held, ignore_index=True))

    traced = spans_df.where(F.col("trace_id").isNotNull()).select(*cols)
    ordered = traced.repartition("trace_id").sortWithinPartitions(
        "trace_id", "start_time", "span_id"
    )
    return ordered.mapInPandas(whole_traces, out)


def _ddl(spans_df: DataFrame, keys: list[str]) -> str:
    """Key columns as a DDL fragment with their input types (tag keys are text)."""
    fields = {f.name: f.dataType.simpleString() for f in spans_df.schema.fields}
    return ", ".join(f"`{k}` {fields.get(k, 'string')}" for k in keys)


def _path_parts(spans_df: DataFrame, keys: list[str]) -> DataFrame:
    """Per batch of whole traces: path ms, sections and traces per group (``tally`` false),
    and one ``tally`` row counting the traces used (repaired or as stored, not skipped)."""
    schema.require_columns(spans_df, [*traces.REQUIRED, *keys], "spans")

    def per_trace(spans: pd.DataFrame) -> pd.DataFrame:
        clean = trace_sets.clean_window(spans)
        part = trace_sets.critical_path_time(clean, keys)[[*keys, "path_ms", "sections", "traces"]]
        used = {"path_ms": 0.0, "sections": 0, "traces": clean.spans["trace_id"].nunique()}
        tally = pd.DataFrame([{**dict.fromkeys(keys), **used, "tally": True}])
        part = pd.concat([part.assign(tally=False), tally], ignore_index=True)
        return part.astype(
            {"path_ms": "float64", "sections": "int64", "traces": "int64", "tally": "bool"}
        )

    out = f"{_ddl(spans_df, keys)}, path_ms double, sections long, traces long, tally boolean"
    return _per_trace(spans_df, per_trace, out)


def _path_sums(spans_df: DataFrame, keys: list[str]) -> DataFrame:
    """``_path_parts`` summed per group, the tally rows kept apart (``tally`` true)."""
    from pyspark.sql import functions as F

    groups = _path_parts(spans_df, keys).groupBy(*[F.col(f"`{k}`") for k in keys], "tally")
    return groups.agg(*[F.sum(c).alias(c) for c in ("path_ms", "sections", "traces")])


def critical_path_time(spans_df: DataFrame, by: str | list[str] | None = None) -> DataFrame:
    """``trace_sets.critical_path_time`` on Spark: path ms per group summed over traces.

    Each trace is repaired and walked by the pandas code (one bad trace is left out, as
    there); the sums and ``share`` are Spark SQL. Same columns: keys, ``path_ms``,
    ``sections``, ``traces``, ``share``; ordered by ``path_ms``, largest first.
    """
    from pyspark.sql import functions as F

    keys = trace_sets.path_keys(by)
    total = _path_sums(spans_df, keys).where(~F.col("tally")).drop("tally")
    # the share needs the grand total beside every group: the few grouped rows are gathered
    # into one array with their sum, then unfolded again (one pass over the traces). A
    # window over no partition does the same but makes Spark warn "No Partition Defined for
    # Window operation"; a join with the total as its own aggregate walks the traces twice.
    whole = total.groupBy().agg(
        F.collect_list(F.struct(*[F.col(f"`{c}`") for c in total.columns])).alias("_rows"),
        F.sum("path_ms").alias("_grand"),
    )
    rows = whole.select(F.explode("_rows").alias("_row"), "_grand").select("_row.*", "_grand")
    share = F.when(F.col("_grand") > 0, F.col("path_ms") / F.col("_grand")).otherwise(0.0)
    shared = rows.withColumn("share", share).drop("_grand")
    return shared.orderBy(F.desc("path_ms"))


def critical_path_totals(
    spans_df: DataFrame, by: str | list[str] | None = None
) -> tuple[pd.DataFrame, int]:
    """``critical_path_time``'s rows as a pandas frame (one row per group: small) and the
    number of traces they come from (repaired or as stored; skipped ones not): what
    ``trace_sets.path_change`` compares, and what says whether a window had any usable trace.
    """
    rows = _path_sums(spans_df, trace_sets.path_keys(by)).toPandas()
    tally = rows["tally"].astype(bool)
    used = int(rows.loc[tally, "traces"].sum())
    paths = rows.loc[~tally].drop(columns="tally").reset_index(drop=True)
    grand = paths["path_ms"].sum()
    paths["share"] = paths["path_ms"] / grand if grand > 0 else 0.0
    return paths, used


def compare_critical_paths(
    window_df: DataFrame, baseline_df: DataFrame, by: str | list[str] | None = None
) -> pd.DataFrame:
    """``trace_sets.compare_critical_paths`` on Spark: path ms per trace and group in
    ``window_df`` against ``baseline_df`` (e.g. the day before), the same rows.

    A pandas frame (one row per group, small): what a report shows.
    """
    keys = trace_sets.path_keys(by)
    now, before = critical_path_totals(window_df, keys), critical_path_totals(baseline_df, keys)
    return trace_sets.path_change(*now, *before, keys)


def service_graph(spans_df: DataFrame) -> DataFrame:
    """``trace_sets.service_graph`` on Spark: calls, errors, error rate and p50/p99 callee
    ms per caller -> callee edge. Edges are found per trace in pandas; the counts and exact
    percentiles (linear interpolation, as numpy's) are Spark SQL. Ordered by calls, caller,
    callee.
    """
    from pyspark.sql import functions as F

    schema.require_columns(spans_df, (*traces.REQUIRED, "service_name", "status"), "spans")
    out = "caller string, callee string, duration_ms double, error long"
    edges = _per_trace(spans_df, trace_sets.service_edges, out)
    graph = edges.groupBy("caller", "callee").agg(
        F.count(F.lit(1)).alias("calls"),
        F.sum("error").alias("errors"),
        F.percentile("duration_ms", F.lit(0.5)).alias("p50_ms"),
        F.percentile("duration_ms", F.lit(0.99)).alias("p99_ms"),
    )
    graph = graph.withColumn("error_rate", F.col("errors") / F.col("calls"))
    return graph.orderBy(F.desc("calls"), F.asc("caller"), F.asc("callee"))


def self_time(spans_df: DataFrame, by: str | list[str] = "service_name") -> DataFrame:
    """``traces.statistics`` on Spark: span count, duration and self-time ms per group.

    Self time is computed per trace by the pandas code; sums, means, extremes and
    ``self_pct`` (share of the summed trace durations) are Spark SQL. Tag keys
    (``"tag:http.route"``) group by the tag's value as text. Ordered by ``self_total_ms``.
    """
    from pyspark.sql import functions as F

    keys = [by] if isinstance(by, str) else list(by)
    if not keys:
        raise UsageError("by must name at least one column or tag to group by")
    schema.require_columns(spans_df, traces.REQUIRED, "spans")
    tag_keys = [k for k in keys if k.startswith("tag:") and k not in spans_df.columns]
    schema.require_columns(spans_df, [k for k in keys if k not in tag_keys], "spans")
    if tag_keys:
        schema.require_columns(spans_df, ["tags"], "spans")

    def per_trace(spans: pd.DataFrame) -> pd.DataFrame:
        stats = traces.statistics(spans, by=keys)
        for key in tag_keys:  # tag values may be numbers or booleans: grouped as text
            stats[key] = stats[key].map(_tag_text)
        return stats[[*keys, "count", "total_ms", "min_ms", "max_ms", *_SELF]]

    out = (
        f"{_ddl(spans_df, keys)}, count long, total_ms double, min_ms double, max_ms double,"
        " self_total_ms double, self_max_ms double"
    )
    parts = _per_trace(spans_df, per_trace, out)
    cols = [F.col(f"`{k}`") for k in keys]  # names like "tag:http.route" hold dots
    stats = parts.groupBy(*cols).agg(
        F.sum("count").alias("count"),
        F.sum("total_ms").alias("total_ms"),
        F.min("min_ms").alias("min_ms"),
        F.max("max_ms").alias("max_ms"),
        F.sum("self_total_ms").alias("self_total_ms"),
        F.max("self_max_ms").alias("self_max_ms"),
    )
    # every trace's length, end to end, summed: what self times add up to (~100 %)
    lengths = spans_df.where(F.col("trace_id").isNotNull()).groupBy("trace_id")
    lengths = lengths.agg(
        ((F.unix_micros(F.max("end_time")) - F.unix_micros(F.min("start_time"))) / 1e3).alias(
            "trace_ms"
        )
    )
    trace_ms = lengths.agg(F.coalesce(F.sum("trace_ms"), F.lit(0.0)).alias("all_trace_ms"))
    pct = F.when(F.col("all_trace_ms") > 0, 100.0 * F.col("self_total_ms") / F.col("all_trace_ms"))
    stats = stats.crossJoin(trace_ms).select(
        *cols,
        "count",
        "total_ms",
        (F.col("total_ms") / F.col("count")).alias("avg_ms"),
        "min_ms",
        "max_ms",
        "self_total_ms",
        (F.col("self_total_ms") / F.col("count")).alias("self_avg_ms"),
        "self_max_ms",
        pct.otherwise(F.lit(0.0)).alias("self_pct"),
    )
    return stats.orderBy(F.desc("self_total_ms"))


def _tag_text(value: object) -> str | None:
    """A tag value as the text Spark groups by; a missing tag (None, or NaN once grouped)
    stays missing."""
    missing = value is None or (isinstance(value, float) and np.isnan(value))
    return None if missing else str(value)


# -- SLI counts: Spark SQL, the same rules as load.sli_counts -------------------------------


def sli_counts(
    spans_df: DataFrame,
    *,
    start: Moment | None = None,
    end: Moment | None = None,
    services: Iterable[str] | None = None,
    bucket: str = "1h",
    latency_threshold_ms: float | None = None,
) -> DataFrame:
    """``load.sli_counts`` as Spark SQL, so SLO evaluation above it runs unchanged.

    Server spans per service and ``bucket`` (start times binned from 2000-01-01 UTC, as
    PostgreSQL's ``date_bin``): ``total``, ``ok`` (status ok) and ``fast`` (``duration_ms``
    no more than ``latency_threshold_ms``; 0 without one). ``start``/``end`` narrow to start
    times in ``[start, end)``; without them the whole frame counts.

    Each span counts by its sampling weight, 1 / ``sampling_probability``, with the SQL
    aggregate PostgreSQL runs (``load.weights.weighted_count_sql``): the counts are float64
    sums (whole numbers without sampling); ``weights.whole`` on the collected frame gives
    them ``load.sli_counts``' types. Spans without the column (a Parquet day exported before
    migration 0015) or with it NULL count once, as ``weights.weights_of`` counts them.
    """
    from pyspark.sql import functions as F

    schema.require_columns(
        spans_df, ("service_name", "span_kind", "start_time", "status", "duration_ms"), "spans"
    )
    seconds = positive_duration(bucket, "bucket").total_seconds()
    stride = max(1, round(seconds * 1e6))  # PostgreSQL intervals hold microseconds
    lo, hi = window(start, end)
    rows = with_sampling_probability(spans_df).where(F.col("span_kind") == "server")
    if lo is not None:
        rows = rows.where(F.col("start_time") >= F.lit(lo.to_pydatetime()))
    if hi is not None:
        rows = rows.where(F.col("start_time") < F.lit(hi.to_pydatetime()))
    if services is not None:
        names = [services] if isinstance(services, str) else [str(s) for s in services]
        rows = rows.where(F.col("service_name").isin(names))
    since = F.unix_micros("start_time") - F.lit(_ORIGIN_US)
    binned = F.lit(_ORIGIN_US) + since - F.pmod(since, F.lit(stride))  # floor, also pre-2000
    rows = rows.withColumn("bucket", F.timestamp_micros(binned))

    def count(condition: str | None = None):
        return F.expr(weights.weighted_count_sql(condition, dialect="spark"))

    if latency_threshold_ms is None:
        fast = F.lit(0.0)
    else:  # the threshold as a bound literal: the SQL text is ours alone
        rows = rows.withColumn(_FAST, F.col("duration_ms") <= F.lit(float(latency_threshold_ms)))
        fast = count(_FAST)
    counts = rows.groupBy("service_name", "bucket").agg(
        count().alias("total"), count("status = 'ok'").alias("ok"), fast.alias("fast")
    )
    return counts.orderBy("service_name", "bucket")


_FAST = "_obslib_fast"  # sli_counts' "no slower than the threshold" flag, a column of its own


def with_sampling_probability(spans_df: DataFrame) -> DataFrame:
    """``spans_df`` with ``sampling_probability`` as PostgreSQL stores it (a REAL: Spark's
    float), 1 where the column is missing or NULL (spans exported before migration 0015)."""
    from pyspark.sql import functions as F

    one = F.lit(1.0).cast("float")
    if weights.COLUMN not in spans_df.columns:
        return spans_df.withColumn(weights.COLUMN, one)
    return spans_df.withColumn(weights.COLUMN, F.coalesce(F.col(weights.COLUMN).cast("float"), one))
