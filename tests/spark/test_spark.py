"""obslib.spark on real Spark (local[2]): every function returns the pandas path's rows, on a
demo window read back from Parquet and on hand-built traces with orphans, skew, messaging
children, a broken trace and a 20,000-span trace; and the SLI counting rules on their own."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from obslib import load, schema, slo, traces
from obslib.errors import UsageError
from obslib.load import weights
from obslib.traces import sets as trace_sets

pyspark = pytest.importorskip("pyspark", reason="pyspark is not installed (extra [spark])")
if shutil.which("java") is None:
    pytest.skip(
        "no java on PATH: Spark needs a JVM (Debian openjdk-17-jre-headless)",
        allow_module_level=True,
    )

from obslib import spark as ospark  # noqa: E402  (after the skips: it needs pyspark)

# pyspark 4.3's own pandas conversions warn under pandas 3 (and pass ``copy=``, which pandas
# 3 deprecates): its warnings, not ours; the parity below checks the results.
pytestmark = [
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas"),
    pytest.mark.filterwarnings(
        "ignore:The copy keyword is deprecated:pandas.errors.Pandas4Warning"
    ),
]

T0 = pd.Timestamp("2026-11-14 14:00", tz="UTC")
US = 1e-3  # one microsecond, in ms: how close path and latency times must be


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    """One local Spark session for the module, stopped at its end."""
    session = ospark.local_session(2, partitions=4)
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


# -- data -----------------------------------------------------------------------------------


def frame(rows: list[dict]) -> pd.DataFrame:
    """Span dicts (times in ms after T0) typed as ``load.spans(json="text")`` types them."""
    out = pd.DataFrame(rows)
    for col in ("trace_id", "span_id", "parent_span_id", "service_name", "operation_name"):
        out[col] = out[col].astype("str")
    out["start_time"] = (T0 + pd.to_timedelta(out.pop("s"), unit="ms")).astype(
        "datetime64[us, UTC]"
    )
    out["end_time"] = (T0 + pd.to_timedelta(out.pop("e"), unit="ms")).astype("datetime64[us, UTC]")
    out["duration_ms"] = (out["end_time"] - out["start_time"]) / pd.Timedelta(milliseconds=1)
    out["tags"] = out["tags"].map(json.dumps).astype("str")
    out["logs"] = pd.Series("[]", index=out.index, dtype="str")
    return out[list(schema.SPAN_COLUMNS)]


def span(trace, sid, parent, service, op, s, e, kind="server", status="ok", **tags) -> dict:
    """One span row for ``frame``."""
    return {
        "trace_id": trace,
        "span_id": sid,
        "parent_span_id": parent,
        "service_name": service,
        "operation_name": op,
        "span_kind": kind,
        "s": s,
        "e": e,
        "status": status,
        "tags": tags,
    }


def big_trace(n: int = 20_000, seed: int = 3) -> list[dict]:
    """A 20,000-span trace: a random tree over 12 services, children inside or overflowing
    their parent, some producers and errors."""
    rng = np.random.default_rng(seed)
    rows = [span("big", "s0", None, "svc0", "root", 0.0, 60_000.0)]
    bounds = [(0.0, 60_000.0)]
    for i in range(1, n):
        p = int(rng.integers(0, i)) if i > 50 else int(rng.integers(0, max(i, 1)))
        lo, hi = bounds[p]
        s = lo + rng.random() * (hi - lo)
        e = s + rng.random() * (hi - s) * (1.3 if rng.random() < 0.05 else 1.0)
        kind = "producer" if rng.random() < 0.03 else "client"
        status = "error" if rng.random() < 0.02 else "ok"
        rows.append(
            span("big", f"s{i}", f"s{p}", f"svc{i % 12}", f"op{i % 40}", s, e, kind, status)
        )
        bounds.append((s, e))
    return rows


def hand_built() -> pd.DataFrame:
    """Traces with orphans, skew, producer/consumer/FOLLOWS_FROM children, a duplicate, a
    self-parent and a parent cycle (repairable), a span of no trace, and 20,000 spans."""
    rows = [
        # orphans: "o2" names a parent the window lacks; "o3" names itself
        span("orph", "o1", None, "gw", "GET /a", 0, 100),
        span("orph", "o2", "gone", "api", "work", 20, 180, "server", "error"),
        span("orph", "o3", "o3", "db", "q", 150, 190),
        span("orph", "o4", "o1", "api", "call", 10, 60, "client"),
        # skew: children outside their parent, on other hosts
        span("skew", "k1", None, "gw", "GET /b", 0, 100, **{"host.name": "h1"}),
        span("skew", "k2", "k1", "api", "call", -30, 40, "server", **{"host.name": "h2"}),
        span("skew", "k3", "k1", "db", "q", 70, 140, "server", "timeout", **{"host.name": "h3"}),
        span("skew", "k4", "k3", "db", "q", 75, 90, "internal", **{"host.name": "h3"}),
        # messaging: a producer, its consumer and a FOLLOWS_FROM child outlive the parent
        span("msg", "m1", None, "shop", "POST /order", 0, 50),
        span("msg", "m2", "m1", "shop", "publish", 5, 10, "producer"),
        span("msg", "m3", "m2", "worker", "consume", 30, 400, "consumer"),
        span("msg", "m4", "m1", "mail", "notify", 20, 300, "internal", ref_type="follows_from"),
        span("msg", "m5", "m1", "db", "insert", 10, 45, "client", "error"),
        # repairs: an exact duplicate and a two-span parent cycle
        span("rep", "r1", None, "gw", "GET /c", 0, 80),
        span("rep", "r2", "r1", "api", "x", 10, 70),
        span("rep", "r2", "r1", "api", "x", 10, 70),
        span("rep", "r3", "r4", "db", "q", 20, 30),
        span("rep", "r4", "r3", "db", "q", 25, 35),
        # a span id used twice with different contents: left out by both paths
        span("bad", "b1", None, "gw", "GET /d", 0, 10),
        span("bad", "b1", None, "gw", "GET /e", 0, 20),
        # a span of no trace: left out by both paths
        span(None, "n1", None, "gw", "GET /f", 0, 5),
    ]
    return frame(rows + big_trace())


# Statistics (self time) takes trees as they are: the traces that need no repair.
TREES = ("orph", "skew", "msg", "big")


@pytest.fixture(scope="module")
def built() -> pd.DataFrame:
    """The hand-built traces, made once."""
    return hand_built()


@pytest.fixture(scope="module")
def demo_window(demo_db, tmp_path_factory) -> tuple[str, pd.Timestamp, pd.Timestamp, str]:
    """Two hours of the demo around its incident, exported to Parquet with pyarrow:
    (url, start, end, parquet path)."""
    url, summary = demo_db
    start = summary.incident_start.floor("h") - pd.Timedelta(hours=1)
    end = start + pd.Timedelta(hours=2)
    spans = load.spans(start, end, json="text", url=url)
    path = tmp_path_factory.mktemp("parquet") / "spans.parquet"
    pq.write_table(pa.Table.from_pandas(spans, preserve_index=False), path)
    return url, start, end, str(path)


@pytest.fixture(scope="module")
def demo_spans(demo_window) -> pd.DataFrame:
    """The demo window's spans as the pandas path sees them."""
    url, start, end, _ = demo_window
    return load.spans(start, end, json="text", url=url)


# -- comparing ------------------------------------------------------------------------------


def same_rows(
    got, want: pd.DataFrame, keys: list[str], exact: list[str], close: dict[str, float]
) -> None:
    """Spark rows equal pandas rows: keys and counts exactly, times within ``close``."""
    got = got.toPandas() if hasattr(got, "toPandas") else got
    assert sorted(got.columns) == sorted(want.columns)
    assert len(got) == len(want) > 0

    def norm(f: pd.DataFrame) -> pd.DataFrame:
        f = f.copy()
        for k in keys:
            f[k] = f[k].astype(object).where(f[k].notna(), "<null>").astype(str)
        return f.sort_values(keys, ignore_index=True)

    got, want = norm(got), norm(want)
    assert got[keys].values.tolist() == want[keys].values.tolist()
    for col in exact:
        assert got[col].astype("int64").tolist() == want[col].astype("int64").tolist(), col
    for col, tol in close.items():
        np.testing.assert_allclose(got[col].to_numpy(float), want[col].to_numpy(float), 0, tol)


def test_critical_path_time_matches_pandas_on_the_demo_from_parquet(spark, demo_window) -> None:
    """Critical-path ms per service/operation over a demo window read from Parquet equal
    the pandas path's to 1 µs, with the same section and trace counts."""
    url, start, end, path = demo_window
    want = trace_sets.critical_path_time(load.spans(start, end, json="text", url=url))
    got = ospark.critical_path_time(spark.read.parquet(path))
    keys = ["service_name", "operation_name"]
    same_rows(got, want, keys, ["sections", "traces"], {"path_ms": US, "share": 1e-9})


def test_critical_path_time_matches_pandas_on_hard_traces(spark, built) -> None:
    """Orphans, skew, non-blocking children, repairs, a broken trace and a 20,000-span
    trace: the same path time per operation, and per service alone."""
    df = spark.createDataFrame(built)
    for by in (None, "service_name"):
        want = trace_sets.critical_path_time(built, by)
        keys = ["service_name", "operation_name"] if by is None else [by]
        exact = ["sections", "traces"]
        same_rows(ospark.critical_path_time(df, by), want, keys, exact, {"path_ms": US})


def test_traces_cut_across_arrow_batches_are_put_back_whole(spark, built, monkeypatch) -> None:
    """Workers read Arrow batches of 2 spans and gather 3 before calling pandas, in one
    partition, rows of traces interleaved on the way in: every trace is cut across batches,
    every call holds several traces, and
    each view still equals the pandas path's (a trace split in two would count twice)."""
    small = built[built["trace_id"] != "big"].sample(frac=1, random_state=7)  # traces mixed
    small = small.reset_index(drop=True)
    monkeypatch.setattr(ospark, "CHUNK_SPANS", 3)
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "2")
    spark.conf.set("spark.sql.shuffle.partitions", "1")
    try:
        df = spark.createDataFrame(small)
        want = trace_sets.critical_path_time(small)
        got = ospark.critical_path_time(df).toPandas()
        keys = ["service_name", "operation_name"]
        same_rows(got, want, keys, ["sections", "traces"], {"path_ms": US, "share": 1e-9})
        graph = ospark.service_graph(df)
        same_rows(graph, trace_sets.service_graph(small), ["caller", "callee"], ["calls"], {})
        trees = small[small["trace_id"].isin(TREES)].reset_index(drop=True)
        stats = ospark.self_time(spark.createDataFrame(trees)).toPandas()
        want_stats = traces.statistics(trees)
        same_rows(stats, want_stats, ["service_name"], ["count"], {"self_total_ms": US})
    finally:
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "10000")
        spark.conf.set("spark.sql.shuffle.partitions", "4")


def test_times_cross_to_python_as_instants_in_any_session_time_zone(spark) -> None:
    """In a session time zone whose clocks go back (New York, 2026-11-01 06:00 UTC), a
    trace across the repeated hour keeps its length: path time equals the pandas path's."""
    back = pd.Timestamp("2026-11-01 06:00", tz="UTC")
    ms = (back - T0) / pd.Timedelta(milliseconds=1)
    spans = frame(
        [
            span("dst", "a", None, "gw", "GET", ms - 40 * 60_000, ms + 40 * 60_000),
            span("dst", "b", "a", "db", "q", ms - 30 * 60_000, ms + 30 * 60_000, "client"),
        ]
    )
    want = trace_sets.critical_path_time(spans)
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    try:
        got = ospark.critical_path_time(spark.createDataFrame(spans)).toPandas()
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")
    keys = ["service_name", "operation_name"]
    same_rows(got, want, keys, ["sections", "traces"], {"path_ms": US})
    assert got["path_ms"].sum() == 80 * 60_000


def test_service_graph_matches_pandas(spark, built, demo_spans) -> None:
    """Calls and errors per edge are equal; p50/p99 callee latency equal to 1 µs."""
    keys = ["caller", "callee"]
    close = {"p50_ms": US, "p99_ms": US, "error_rate": 1e-12}
    for spans in (built, demo_spans):
        want = trace_sets.service_graph(spans)
        got = ospark.service_graph(spark.createDataFrame(spans))
        same_rows(got, want, keys, ["calls", "errors"], close)


def test_self_time_matches_trace_statistics(spark, built, demo_spans) -> None:
    """Count, duration and self-time ms per service (and per host tag) equal
    ``traces.statistics``, self_pct included."""
    trees = built[built["trace_id"].isin(TREES)].reset_index(drop=True)
    close = {
        c: US for c in ("total_ms", "avg_ms", "min_ms", "max_ms", "self_total_ms", "self_avg_ms")
    }
    close |= {"self_max_ms": US, "self_pct": 1e-6}
    for spans, by in ((trees, "service_name"), (trees, "tag:host.name"), (demo_spans, None)):
        key = by or "service_name"
        want = traces.statistics(spans, by=key)
        got = ospark.self_time(spark.createDataFrame(spans), by=key)
        same_rows(got, want, [key], ["count"], close)


def test_sli_counts_match_postgres_and_evaluate_the_same(spark, demo_window) -> None:
    """Server-span counts per service and 5-minute bucket equal ``load.sli_counts``, with
    and without a latency threshold, and ``slo.evaluate`` over them records the same."""
    url, start, end, path = demo_window
    df = spark.read.parquet(path)
    for threshold in (None, 250.0):
        want = load.sli_counts(start, end, bucket="5min", latency_threshold_ms=threshold, url=url)
        got = ospark.sli_counts(df, bucket="5min", latency_threshold_ms=threshold).toPandas()
        got["bucket"] = pd.to_datetime(got["bucket"]).dt.tz_localize("UTC")
        keys = ["service_name", "bucket"]
        g = got.sort_values(keys, ignore_index=True)
        w = want.sort_values(keys, ignore_index=True)
        pd.testing.assert_frame_equal(g, w, check_dtype=False, check_index_type=False)
    slos = load.slos(url=url)
    slos = slos[slos["slo_type"].isin(["availability", "latency"])]
    counts = load.slo_counts(slos, start, end, bucket="5min", url=url)
    spark_counts = []
    for threshold in [None, *sorted(slos["latency_threshold_ms"].dropna().unique())]:
        part = ospark.sli_counts(df, bucket="5min", latency_threshold_ms=threshold).toPandas()
        part["bucket"] = pd.to_datetime(part["bucket"]).dt.tz_localize("UTC")
        spark_counts.append(part.assign(threshold=np.nan if threshold is None else threshold))
    got = slo.evaluate(pd.concat(spark_counts, ignore_index=True), slos, bucket="5min")
    want = slo.evaluate(counts, slos, bucket="5min")
    assert len(want) > 0
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


@pytest.fixture(scope="module")
def sampled_window(demo_spans, demo_window, tmp_path_factory) -> Iterator[tuple]:
    """The demo window as the adaptive sampler would store it, in a database of its own:
    traces with a failing span kept whole (p = 1), the others one in ten (p = 0.1, a REAL).
    Yields (url, start, end, the Parquet export of its days)."""
    from obslib.ingest import write_spans
    from obslib.load import export
    from tests.pg import migrated_database

    _, start, end, _ = demo_window
    spans = demo_spans.copy()
    failing = set(spans.loc[spans["status"] != "ok", "trace_id"])
    ranks = spans["trace_id"].map(lambda t: int(str(t)[-4:], 16) % 10)
    sampled = ~spans["trace_id"].isin(failing)
    spans = spans[~sampled | (ranks == 0)].copy()
    spans["sampling_probability"] = np.where(spans["trace_id"].isin(failing), 1.0, 0.1)
    spans["tags"] = spans["tags"].map(json.loads)
    spans["logs"] = spans["logs"].map(json.loads)
    with migrated_database() as url:
        write_spans(spans.drop(columns="duration_ms"), url=url)
        lake = tmp_path_factory.mktemp("sampled")
        export.export_parquet(start, end, lake, tables=("spans",), url=url)
        yield url, start, end, str(lake / "spans")


def test_sli_counts_weigh_sampled_spans_as_postgres_does(spark, sampled_window) -> None:
    """A window stored sampled (1 in 10 ok traces at p = 0.1, failing ones whole): Spark's
    counts per service and 5-minute bucket over the Parquet export and over JDBC equal
    ``load.sli_counts`` (each span counts 1 / p), not the spans stored."""
    url, start, end, lake = sampled_window
    parquet = ospark.in_window(spark.read.parquet(lake), start, end)
    assert dict(parquet.dtypes)["sampling_probability"] == "float"  # the export carries it
    jdbc = ospark.read_spans(spark, start, end, url=url, partitions=2)
    keys = ["service_name", "bucket"]
    want = load.sli_counts(start, end, bucket="5min", latency_threshold_ms=250.0, url=url)
    want = want.sort_values(keys, ignore_index=True)
    stored = ospark.sli_counts(parquet.drop("sampling_probability"), latency_threshold_ms=250.0)
    assert stored.toPandas()["total"].sum() < 0.5 * want["total"].sum()  # weights matter here
    for df in (parquet, jdbc):
        got = ospark.sli_counts(df, bucket="5min", latency_threshold_ms=250.0)
        got = weights.whole(got.toPandas(), ("total", "ok", "fast"))
        got["bucket"] = pd.to_datetime(got["bucket"]).dt.tz_localize("UTC")
        got = got.sort_values(keys, ignore_index=True)
        assert got[keys].equals(want[keys])
        for col in ("total", "ok", "fast"):
            assert got[col].dtype == want[col].dtype, col
            np.testing.assert_allclose(got[col], want[col], rtol=1e-12, err_msg=col)


@pytest.mark.parametrize(
    ("probability", "counts"),
    [(None, 1.0), (0.25, 4.0), (float("nan"), 1.0)],
    ids=[
        "a span exported before migration 0015 (no column) counts once",
        "a span kept with p = 0.25 counts 4",
        "a span whose probability is missing (NULL) counts once",
    ],
)
def test_a_server_span_counts_by_its_sampling_weight(spark, probability, counts) -> None:
    spans = SLI_RULES.iloc[[0]].copy()
    if probability is not None:
        spans["sampling_probability"] = pd.Series([probability], dtype="float32")
    got = ospark.sli_counts(spark.createDataFrame(spans), latency_threshold_ms=250.0).first()
    assert (got["total"], got["ok"], got["fast"]) == (counts, counts, counts)


SLI_RULES = frame(
    [
        span("t", "a", None, "api", "GET", 0, 250),  # exactly at the threshold: fast
        span("t", "b", "a", "api", "GET", 1, 251.5),  # over it: slow
        span("t", "c", "a", "api", "GET", 2, 3, "server", "timeout"),  # not ok
        span("t", "d", "a", "api", "GET", 4, 5, "client"),  # not a server span
        span("t", "e", "a", "db", "q", 9 * 60_000, 9 * 60_000 + 1),  # 14:09, a bucket start
    ]
)


@pytest.mark.parametrize(
    ("service", "bucket", "total", "ok", "fast"),
    [
        ("api", "13:58", 3, 2, 2),
        ("db", "14:09", 1, 1, 1),
    ],
    ids=[
        "a server span at the threshold is fast, a timeout is not ok, a client is not counted",
        "11-minute buckets are binned from 2000-01-01, not from the hour",
    ],
)
def test_sli_counting_rules(spark, service, bucket, total, ok, fast) -> None:
    """The counting rules of ``load.sli_counts``, stated on a hand-built trace at 14:00."""
    got = ospark.sli_counts(
        spark.createDataFrame(SLI_RULES), bucket="11min", latency_threshold_ms=250.0
    ).toPandas()
    row = got[got["service_name"] == service].iloc[0]
    assert pd.Timestamp(row["bucket"]).strftime("%H:%M") == bucket
    assert (row["total"], row["ok"], row["fast"]) == (total, ok, fast)


def test_the_parquet_export_feeds_spark_as_it_is(spark, demo_db, tmp_path) -> None:
    """`obslib export parquet`'s day partitions read straight into Spark (the day column
    comes from the folder names) and give the pandas path's service graph for those days."""
    from obslib.load import export

    url, summary = demo_db
    day = pd.Timestamp(summary.incident_start).floor("D")
    export.export_parquet(day, day + pd.Timedelta(hours=1), tmp_path, tables=("spans",), url=url)
    df = spark.read.parquet(str(tmp_path / "spans"))
    assert [r["day"] for r in df.select("day").distinct().collect()] == [day.date()]
    want = trace_sets.service_graph(load.spans(day, day + pd.Timedelta(days=1), url=url))
    got = ospark.service_graph(df.drop("day"))
    same_rows(got, want, ["caller", "callee"], ["calls", "errors"], {"p50_ms": US})


def test_read_spans_over_jdbc_equals_the_window(spark, demo_window) -> None:
    """Executors read the window straight from PostgreSQL (the embedded server's socket,
    through junixsocket) in 3 range queries: the same rows and column types as the
    Parquet of that window, nothing from outside it, and the same critical-path time."""
    from obslib.storage import jdbc

    missing = [str(jar) for jar in jdbc.JDBC_JARS if not jar.exists()]  # local_session's jars
    if missing:
        pytest.skip(f"JDBC jars missing: {', '.join(missing)}")
    url, start, end, path = demo_window
    df = ospark.read_spans(spark, start, end, url=url, partitions=3)
    parquet = spark.read.parquet(path)
    assert df.rdd.getNumPartitions() == 3
    assert [(f.name, f.dataType) for f in df.schema.fields] == [
        (f.name, f.dataType) for f in parquet.schema.fields
    ] + [(weights.COLUMN, pyspark.sql.types.FloatType())]
    probabilities = df.select(weights.COLUMN).distinct().collect()
    assert [r[0] for r in probabilities] == [1.0]  # the demo is stored unsampled
    order = ["trace_id", "span_id"]
    got = df.drop(weights.COLUMN).toPandas().sort_values(order, ignore_index=True)
    want = parquet.toPandas().sort_values(order, ignore_index=True)
    assert len(got) == len(want) > 0
    pd.testing.assert_frame_equal(got, want)
    wider = load.spans(start - pd.Timedelta(minutes=5), end, url=url)
    assert len(wider) > len(want)  # the 5 minutes before hold spans the read left out
    same_rows(
        ospark.critical_path_time(df),
        trace_sets.critical_path_time(load.spans(start, end, json="text", url=url)),
        ["service_name", "operation_name"],
        ["sections", "traces"],
        {"path_ms": US},
    )


def test_read_spans_refuses_an_empty_window_before_connecting(spark) -> None:
    with pytest.raises(UsageError, match="empty time window"):
        ospark.read_spans(spark, T0, T0, url="postgresql://nobody@/x?host=/nonexistent")
    with pytest.raises(UsageError, match="partitions"):
        ospark.read_spans(
            spark, T0, T0 + pd.Timedelta(hours=1), url="postgresql://h/d", partitions=0
        )


def test_the_trace_notebooks_window_views_on_spark_equal_the_loaded_ones(
    spark, demo_db, tmp_path
) -> None:
    """`spark_window` over the export of the window's days and the day before gives the
    tables `investigate_trace` shows (window against the day before, service graph) and a
    drawable chart of each; a window the day before lacks says so, an empty one says so."""
    from obslib.load import export
    from obslib.views.spark_window import spark_window
    from obslib.views.trace_investigation import investigate_trace

    url, summary = demo_db
    start = summary.incident_start.floor("h")
    end = start + pd.Timedelta(minutes=40)
    day = pd.Timedelta(days=1)
    export.export_parquet(start - day, end, tmp_path, tables=("spans",), url=url)
    lake = spark.read.parquet(str(tmp_path / "spans"))
    big = spark_window(lake, start, end)
    inv = investigate_trace("", start, end, url=url)

    want = inv.window_versus_day_before().data
    got = big.window_versus_day_before().data
    keys = ["service_name", "operation_name"]
    assert got["delta_ms"].is_monotonic_decreasing
    got, want = got.sort_values(keys), want.sort_values(keys)  # the same 12 largest increases
    assert got[keys].values.tolist() == want[keys].values.tolist()
    for col in ("per_trace_ms", "per_trace_ms_baseline", "delta_ms", "share"):
        np.testing.assert_allclose(got[col].to_numpy(float), want[col].to_numpy(float), 0, US)
    pd.testing.assert_frame_equal(
        big.service_graph().data.reset_index(drop=True),
        inv.service_graph().data.reset_index(drop=True),
        check_dtype=False,
    )
    for chart in (big.window_versus_day_before_chart(), big.service_graph_chart()):
        assert chart.to_dict()["$schema"].startswith("https://vega.github.io/schema/vega-lite")
    spans, traces_ = inv.window["trace_id"].size, inv.window["trace_id"].nunique()
    assert f"{spans:,} spans of {traces_:,} traces" in str(big.window_summary())

    first = pd.Timestamp(lake.agg({"start_time": "min"}).first()[0]).tz_localize("UTC")
    early = spark_window(lake, first, first + pd.Timedelta(hours=1))
    assert "(the day before) to compare with" in str(early.window_versus_day_before())
    empty = spark_window(lake, end + 2 * day, end + 3 * day)
    assert str(empty.service_graph()).startswith("No spans between")
    assert str(empty.window_versus_day_before_chart()).startswith("No spans between")


def test_in_window_keeps_the_start_drops_the_end_and_reads_whole_utc_days(spark) -> None:
    """Start times in [start, end); with a ``day`` column only the window's UTC days are
    read (rows filed under the wrong day show which folders were), and the column goes."""

    def at(text: str) -> object:
        return pd.Timestamp(text, tz="UTC").to_pydatetime()

    rows = [
        ("before", at("2026-11-13 23:59:59.999999"), date(2026, 11, 13)),
        ("at_start", at("2026-11-14 00:00"), date(2026, 11, 14)),
        ("last_us", at("2026-11-14 23:59:59.999999"), date(2026, 11, 14)),
        ("at_end", at("2026-11-15 00:00"), date(2026, 11, 15)),
        ("prev_folder", at("2026-11-14 12:00"), date(2026, 11, 13)),
        ("next_folder", at("2026-11-14 12:00"), date(2026, 11, 15)),
    ]
    df = spark.createDataFrame(rows, "trace_id string, start_time timestamp, day date")

    def ids(frame, start: str, end: str) -> list[str]:
        got = ospark.in_window(frame, start, end)
        assert "day" not in got.columns
        return sorted(r["trace_id"] for r in got.collect())

    assert ids(df, "2026-11-14", "2026-11-15") == ["at_start", "last_us"]
    assert ids(df, "2026-11-14", "2026-11-15 00:00:00.000001") == [
        "at_end", "at_start", "last_us", "next_folder",
    ]  # fmt: skip
    assert ids(df.drop("day"), "2026-11-14", "2026-11-15") == [
        "at_start", "last_us", "next_folder", "prev_folder",
    ]  # fmt: skip


def test_compare_critical_paths_matches_pandas_on_hard_traces(spark, built) -> None:
    """The window against a baseline of some of its traces: the same rows, per-trace ms
    divided by the traces each side used (the broken trace counts in neither)."""
    window = built[built["trace_id"] != "big"].reset_index(drop=True)
    baseline = window[window["trace_id"].isin(["orph", "msg", "bad"])].reset_index(drop=True)
    want = trace_sets.compare_critical_paths(window, baseline)
    got = ospark.compare_critical_paths(
        spark.createDataFrame(window), spark.createDataFrame(baseline)
    )
    keys = ["service_name", "operation_name"]
    assert got[keys].values.tolist() == want[keys].values.tolist()
    for col in ("per_trace_ms", "per_trace_ms_baseline", "delta_ms", "share", "share_baseline"):
        np.testing.assert_allclose(got[col].to_numpy(float), want[col].to_numpy(float), 0, US)


def test_span_and_trace_counts_count_rows_and_distinct_traces(spark) -> None:
    """Three spans in two traces; an empty frame counts (0, 0)."""
    df = spark.createDataFrame([("a", "1"), ("a", "2"), ("b", "3")], "trace_id string, s string")
    assert ospark.span_and_trace_counts(df) == (3, 2)
    assert ospark.span_and_trace_counts(df.limit(0)) == (0, 0)


def test_spark_window_notes_match_the_loaded_views(spark, built) -> None:
    """A day before holding only an unusable trace is no baseline (as after cleaning in
    pandas), and a window of one service has no calls: each says so."""
    from obslib.views.spark_window import spark_window
    from obslib.views.trace_window import NO_CALLS, no_day_before

    one = frame([span("t1", "a", None, "svc", "op", 0, 10)])
    broken = built[built["trace_id"] == "bad"].assign(
        start_time=lambda f: f["start_time"] - pd.Timedelta(days=1),
        end_time=lambda f: f["end_time"] - pd.Timedelta(days=1),
    )
    start = T0 - pd.Timedelta(minutes=1)
    end = start + pd.Timedelta(hours=1)
    big = spark_window(spark.createDataFrame(pd.concat([one, broken])), start, end)
    assert str(big.window_versus_day_before()) == str(no_day_before(start, end))
    assert str(big.service_graph()) == str(NO_CALLS)
