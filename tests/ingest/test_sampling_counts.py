"""The sampling weight in every SLI count (obslib.load.weights): spans stored with a sampling
probability count 1 / p in ``sli_counts``, ``slo_counts``, ``operation_counts``,
``client_coverage``, ``log_correlation``, ``services`` and ``service_edges``' calls, hot and
archived alike; a day archived before
migration 0015 counts each span once; 0015 itself rewrites nothing."""

from __future__ import annotations

import pandas as pd
import psycopg
import pyarrow.parquet as pq
import pytest

from obslib import load
from obslib.ingest import write_logs, write_spans
from obslib.jobs import retain as retain_job
from obslib.load import archive
from obslib.storage.migrate import Migrator, discover
from tests.builders import slo_definitions, span
from tests.ids import sid, tid
from tests.pg import MIGRATIONS, scratch_database

TODAY = pd.Timestamp.now(tz="UTC").floor("D")
OLD, NEW = TODAY - pd.Timedelta(days=9), TODAY - pd.Timedelta(days=1)
LO, HI = OLD, TODAY + pd.Timedelta(days=1)
P = 0.4  # stored as REAL: 1 / p is 2.4999999627, not 2.5
W = 1 / float(pd.Series([P], dtype="float32").astype("float64").iloc[0])
SLOS = slo_definitions(
    {"slo_name": "latency", "slo_type": "latency", "latency_threshold_ms": 10.0},
    {"service_name": "db", "slo_name": "availability"},
)


def day(at: pd.Timestamp, tag: str) -> list[dict]:
    """Three traces of a server root (api), a client call and its server child (db): kept
    with p = 0.4 (a fast root), 0.25 (a failing one) and 1 (a slow one)."""
    rows = []
    for name, p, status, ms in (("half", P, "ok", 5.0), ("quarter", 0.25, "error", 5.0),
                                ("whole", None, "ok", 50.0)):  # fmt: skip
        extra = {} if p is None else {"sampling_probability": p}
        trace = f"{tag} {name}"
        start = at + pd.Timedelta(hours=10)
        rows += [
            span(trace, "root", start=start, duration_ms=ms, status=status, **extra),
            span(trace, "call", "root", kind="client", operation="query", start=start, **extra),
            span(trace, "served", "call", service="db", start=start, **extra),
        ]
    return rows


def logs(at: pd.Timestamp, tag: str) -> pd.DataFrame:
    """One log record of the p = 0.4 trace."""
    return pd.DataFrame(
        [
            {
                "timestamp": at + pd.Timedelta(hours=10),
                "level": "info",
                "service_name": "api",
                "trace_id": tid(f"{tag} half"),
                "span_id": sid("root"),
                "message": "handled",
            }
        ]
    )


def counts(url: str) -> dict[str, object]:
    return {
        "sli": load.sli_counts(LO, HI, bucket="1d", latency_threshold_ms=10.0, url=url),
        "slo": load.slo_counts(SLOS, LO, HI, bucket="1d", url=url),
        "operations": load.operation_counts(LO, HI, url=url),
        "coverage": load.client_coverage(LO, HI, url=url),
        "correlation": load.log_correlation(LO, HI, url=url),
        "services": load.services(LO, HI, url=url),
        "edges": load.service_edges(LO, HI, url=url).rename(columns={"caller": "service_name"}),
    }


@pytest.fixture(scope="module")
def stored(server_url: str, tmp_path_factory):
    """The counts with both days hot, then with the old day archived, then with the old
    day's file as one written before 0015 (no probability column)."""
    with scratch_database(server_url) as url:
        Migrator(url, MIGRATIONS).up()
        write_spans(pd.DataFrame(day(OLD, "old") + day(NEW, "new")), url=url)
        write_logs(pd.concat([logs(OLD, "old"), logs(NEW, "new")]), url=url)
        hot = counts(url)
        horizon = retain_job.Horizon(spans=NEW.date(), logs=NEW.date())
        done = retain_job.retain(horizon, tmp_path_factory.mktemp("archive"), url=url)
        assert {r.action for r in done} == {"archived"}
        cold = counts(url)
        (old_day,) = archive.cold_days("spans", LO, HI, url=url)
        table = pq.read_table(old_day.path)
        assert table.schema.field("sampling_probability").type == "float"
        pq.write_table(table.drop(["sampling_probability"]), old_day.path)
        with psycopg.connect(url) as conn:
            conn.execute(
                "UPDATE archived_days SET sha256 = %s WHERE table_name = 'distributed_traces'",
                (archive.sha256_of(old_day.path),),
            )
        before_0015 = counts(url)
        yield hot, cold, before_0015


EXPECTED = {  # per day: the weights of the three traces, W (p = 0.4), 4 and 1
    "api server spans count 1 / p": ("sli", "api", "total", W + 4 + 1),
    "api spans with status ok count 1 / p": ("sli", "api", "ok", W + 1),
    "api spans within 10 ms count 1 / p": ("sli", "api", "fast", W + 4),
    "db server spans count 1 / p": ("sli", "db", "total", W + 4 + 1),
    "client calls count 1 / p": ("coverage", "api", "client_spans", W + 4 + 1),
    "served client calls count 1 / p": ("coverage", "api", "served", W + 4 + 1),
    "an operation's server spans count 1 / p": ("operations", "api", "total", W + 4 + 1),
    "a service's spans count 1 / p (traffic)": ("services", "api", "spans", 2 * (W + 4 + 1)),
    "a service's server spans count 1 / p": ("services", "db", "server_spans", W + 4 + 1),
    "calls between services count 1 / p (traffic)": ("edges", "api", "calls", W + 4 + 1),
}


@pytest.mark.parametrize("case", list(EXPECTED), ids=list(EXPECTED))
def test_a_count_weighs_each_span_by_its_sampling_probability(stored, case: str) -> None:
    """Hot, and again with the old day read from the archive: two days of the same traffic."""
    hot, cold, _ = stored
    frame, service, column, per_day = EXPECTED[case]
    for got in (hot, cold):
        rows = got[frame][got[frame]["service_name"] == service]
        assert rows[column].sum() == pytest.approx(2 * per_day, rel=1e-12)
        assert rows[column].dtype == "float64"  # 1 / REAL 0.4 is no whole number


def test_traces_count_by_their_weight_in_the_log_correlation(stored) -> None:
    for got in stored[:2]:
        row = got["correlation"].iloc[0]
        assert row["traces"] == pytest.approx(2 * (W + 4 + 1), rel=1e-12)
        assert row["logged"] == pytest.approx(2 * W, rel=1e-12)


def test_slo_counts_are_sli_counts_at_each_threshold(stored) -> None:
    hot, cold, _ = stored
    for got in (hot, cold):
        slo = got["slo"]
        latency = slo[(slo["service_name"] == "api") & (slo["threshold"] == 10.0)]
        assert latency["fast"].sum() == pytest.approx(2 * (W + 4), rel=1e-12)


def test_a_day_archived_before_0015_counts_each_span_once(stored) -> None:
    """Its file has no probability column: weight 1 for its spans, the hot day's weighted."""
    *_, before_0015 = stored
    sli = before_0015["sli"]
    api = sli[sli["service_name"] == "api"].set_index("bucket")
    assert api.loc[OLD, "total"] == 3 and api.loc[NEW, "total"] == pytest.approx(W + 5)


def test_whole_counts_stay_integers(migrated_db: str) -> None:
    """Unsampled spans weigh exactly 1: the counts are the int64 count(*) gives."""
    write_spans(
        pd.DataFrame(day(NEW, "plain")).drop(columns=["sampling_probability"]), url=migrated_db
    )
    sli = load.sli_counts(LO, HI, bucket="1d", url=migrated_db)
    assert sli["total"].dtype == "int64" and sli["total"].tolist() == [3, 3]
    services = load.services(LO, HI, url=migrated_db)
    assert services["spans"].dtype == "int64" and services["spans"].tolist() == [6, 3]
    edges = load.service_edges(LO, HI, url=migrated_db)
    assert edges["calls"].dtype == "int64" and edges["calls"].tolist() == [3]


def test_0015_adds_the_column_without_rewriting_a_partition(migrated_db: str) -> None:
    """Down and up again on a populated table: same relfilenode for every partition (no
    rewrite), the stored spans read back with probability 1."""
    write_spans(pd.DataFrame(day(NEW, "x")).drop(columns=["sampling_probability"]), url=migrated_db)
    files = (
        "SELECT c.relname, c.relfilenode FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'distributed_traces'::regclass ORDER BY 1"
    )
    migrator = Migrator(migrated_db, MIGRATIONS)
    migrator.down(to=max(m.version for m in discover(MIGRATIONS) if m.version < 15))
    with psycopg.connect(migrated_db) as conn:
        before = conn.execute(files).fetchall()
    migrator.up()
    with psycopg.connect(migrated_db) as conn:
        assert conn.execute(files).fetchall() == before
        (values,) = conn.execute(
            "SELECT array_agg(DISTINCT sampling_probability) FROM distributed_traces"
        ).fetchone()
    assert values == [1.0]


def test_a_probability_outside_zero_to_one_is_refused(migrated_db: str) -> None:
    from obslib.errors import InputError

    rows = pd.DataFrame(day(NEW, "bad")).assign(sampling_probability=1.5)
    with pytest.raises(InputError, match=r"sampling_probability 1\.5 is not a probability"):
        write_spans(rows, url=migrated_db)
