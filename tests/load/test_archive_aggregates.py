"""The SQL aggregates read archived days too: every count, range and root the SLO review,
the health report and the postmortem take is the same before and after ``retain`` moves
old days to the Parquet archive (same columns, dtypes, rows and order)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pandas as pd
import psycopg
import pytest

from obslib import load
from obslib.ingest import write_logs, write_spans
from obslib.jobs import retain as retain_job
from obslib.load import archive
from obslib.load.telemetry import trace_roots
from tests.builders import slo_definitions, span
from tests.ids import tid
from tests.load.test_archive import NEW_DAYS, OLD_DAYS, TODAY, multi_day_dataset

HOT_NEIGHBOUR = (-7,)  # the first kept day, right after the archived ones
LO, HI = TODAY - pd.Timedelta(days=11), TODAY + pd.Timedelta(days=1)
# a window that starts inside an archived day and ends inside a kept one
KEPT = TODAY + pd.Timedelta(days=HOT_NEIGHBOUR[0])  # the first kept day
CUT = (LO + pd.Timedelta(days=2, hours=4), TODAY + pd.Timedelta(days=-7, hours=9))
SLOS = slo_definitions(
    {},
    {"slo_name": "latency", "slo_type": "latency", "latency_threshold_ms": 30.0},
    {"slo_name": "fast", "slo_type": "latency", "latency_threshold_ms": 5.0},  # = a duration,
    {"service_name": "db", "slo_name": "availability"},
)


def crossing_traces() -> list[dict]:
    """Traces over midnight: archived root, kept child; archived child starting before its
    kept root (skew: the child is no root); both halves archived (day -10 into -9), and a
    span whose parent was never stored."""
    kept = TODAY + pd.Timedelta(days=HOT_NEIGHBOUR[0])
    ms = pd.Timedelta(milliseconds=1)
    older = TODAY + pd.Timedelta(days=OLD_DAYS[1])
    return [
        span("midnight", "root", start=kept - 100 * ms, duration_ms=400, operation="GET /m"),
        span("midnight", "child", "root", service="db", start=kept + 100 * ms, duration_ms=250.5),
        span("skewed", "child", "root", service="db", start=kept - 1000 * ms, duration_ms=3),
        span("skewed", "root", start=kept + 1000 * ms, duration_ms=7.25, operation="GET /s"),
        span("archived twice", "root", start=older - 1000 * ms, duration_ms=2500),
        span("archived twice", "child", "root", service="db", start=older + 1000 * ms),
        span("orphan", "lost", "never", start=older + pd.Timedelta(hours=2), duration_ms=1),
        span("call", "root", start=kept + ms, duration_ms=30, operation="GET /c"),
        span("call", "call", "root", kind="client", operation="query", start=kept + 5 * ms),
        span("call", "served", "call", service="db", start=kept - 5 * ms),  # skewed back
    ]


def crossing_log() -> pd.DataFrame:
    """The only log record of trace "call" (all kept), written the day before (archived)."""
    at = TODAY + pd.Timedelta(days=HOT_NEIGHBOUR[0], hours=-1)
    return pd.DataFrame([{"timestamp": at, "level": "info", "service_name": "api",
                          "trace_id": tid("call"), "message": "queued"}])  # fmt: skip


Aggregate = Callable[[str], object]
AGGREGATES: dict[str, Aggregate] = {
    "SLI counts per hour": lambda url: load.sli_counts(LO, HI, url=url),
    "SLI counts per minute with a latency threshold": lambda url: load.sli_counts(
        LO, HI, bucket="1min", latency_threshold_ms=30, url=url
    ),
    "SLI counts of one service over a cut window": lambda url: load.sli_counts(
        *CUT, services=["api"], bucket="5min", latency_threshold_ms=40, url=url
    ),
    "SLI counts in 7-hour buckets that cross midnight": lambda url: load.sli_counts(
        LO, HI, bucket="7h", url=url
    ),
    "SLI counts in 2-day buckets that hold an archived and a kept day": lambda url: load.sli_counts(
        LO, HI, bucket="2d", latency_threshold_ms=30, url=url
    ),
    "SLO counts with two latency thresholds": lambda url: load.slo_counts(SLOS, LO, HI, url=url),
    "SLO counts over a cut window": lambda url: load.slo_counts(SLOS, *CUT, bucket="1h", url=url),
    "the data range": lambda url: load.data_range(url=url),
    "the log range": lambda url: load.log_range(url=url),
    "the data end": lambda url: load.data_end(url=url),
    "services": lambda url: load.services(LO, HI, url=url),
    "services of a cut window": lambda url: load.services(*CUT, url=url),
    "operation counts": lambda url: load.operation_counts(LO, HI, url=url),
    "operation counts with a threshold over a cut window": lambda url: load.operation_counts(
        *CUT, services=["api"], latency_threshold_ms=30, url=url
    ),
    "client coverage": lambda url: load.client_coverage(LO, HI, url=url),
    "client coverage of a cut window": lambda url: load.client_coverage(*CUT, url=url),
    "client coverage of the kept days only": lambda url: load.client_coverage(KEPT, HI, url=url),
    "log correlation": lambda url: load.log_correlation(LO, HI, url=url),
    "log correlation of a cut window": lambda url: load.log_correlation(*CUT, url=url),
    "log correlation of the kept days only": lambda url: load.log_correlation(KEPT, HI, url=url),
    "service edges": lambda url: load.service_edges(LO, HI, url=url),
    "service edges of a cut window": lambda url: load.service_edges(*CUT, url=url),
    "service edges of the kept days only": lambda url: load.service_edges(KEPT, HI, url=url),
    "incident evidence": lambda url: {
        k: [f.reset_index(drop=True) for f in v]
        for k, v in load.incident_evidence(
            [("INC-1", "api", LO, HI), ("INC-2", "api", *CUT)], url=url
        ).items()
    },
    "trace roots": lambda url: trace_roots(LO, HI, url=url),
    "trace roots of a cut window": lambda url: trace_roots(*CUT, url=url),
    "trace roots of a window cut at midnight between archived days": lambda url: trace_roots(
        TODAY + pd.Timedelta(days=OLD_DAYS[1]), HI, url=url
    ),
}


def retire(url: str, root) -> None:
    """``retain --keep 7d``: the days before TODAY - 7 go to the archive."""
    results = retain_job.retain(retain_job.horizon(timedelta(days=7), None), root, url=url)
    assert {r.action for r in results} == {"archived"}, results
    assert len(results) == 2 * len(OLD_DAYS)


@pytest.fixture(scope="module")
def before_and_after(tmp_path_factory, server_url) -> dict[str, tuple[object, object]]:
    """Each aggregate over the dataset read hot, then again once its old days are archived."""
    from obslib.storage.migrate import Migrator
    from tests.conftest import MIGRATIONS, scratch_database

    with scratch_database(server_url) as url:
        Migrator(url, MIGRATIONS).up()
        multi_day_dataset(url, OLD_DAYS + HOT_NEIGHBOUR + NEW_DAYS)
        extra = crossing_traces()
        write_spans(pd.DataFrame(extra), url=url)
        write_logs(crossing_log(), url=url)
        first_kept = TODAY + pd.Timedelta(days=HOT_NEIGHBOUR[0])
        kept = 3 * 4 * len(HOT_NEIGHBOUR + NEW_DAYS) + sum(
            s["start_time"] >= first_kept for s in extra
        )
        before = {name: read(url) for name, read in AGGREGATES.items()}
        retire(url, tmp_path_factory.mktemp("archive"))
        with psycopg.connect(url) as conn:
            (left,) = conn.execute("SELECT count(*) FROM distributed_traces").fetchone()
        assert left == kept  # the old days left PostgreSQL
        assert len(archive.cold_days("spans", LO, HI, url=url)) == len(OLD_DAYS)
        after = {name: read(url) for name, read in AGGREGATES.items()}
    return {name: (before[name], after[name]) for name in AGGREGATES}


@pytest.mark.parametrize("name", list(AGGREGATES), ids=lambda name: f"{name} are the same")
def test_an_aggregate_is_the_same_after_its_old_days_move_to_the_archive(
    before_and_after, name
) -> None:
    before, after = before_and_after[name]
    if isinstance(before, pd.DataFrame):
        assert len(before) > 0
        pd.testing.assert_frame_equal(after, before, obj=name)
    elif isinstance(before, dict):  # incident evidence: spans and logs per incident
        assert before.keys() == after.keys()
        for key, frames in before.items():
            for frame, again in zip(frames, after[key], strict=True):
                assert len(frame) > 0
                pd.testing.assert_frame_equal(again, frame, obj=f"{name} of {key}")
    else:
        assert before is not None
        assert after == before


def test_a_trace_over_midnight_has_one_root_and_its_whole_extent(before_and_after) -> None:
    """Its spans in an archived and a kept day make one trace: the skewed child that starts
    before its root (in the archived day) is no root, and the extent spans both days."""
    _, roots = before_and_after["trace roots"]
    rows = roots.set_index("trace_id")
    ids = {name: tid(name) for name in ("midnight", "skewed", "archived twice", "orphan")}
    assert rows.loc[ids["midnight"], "operation_name"] == "GET /m"
    assert rows.loc[ids["midnight"], "duration_ms"] == 450.5  # -100 ms to +350.5 ms
    assert rows.loc[ids["skewed"], "operation_name"] == "GET /s"
    assert rows.loc[ids["skewed"], "duration_ms"] == 2007.25
    assert rows.loc[ids["archived twice"], "duration_ms"] == 2500
    assert ids["orphan"] in rows.index
    _, cut = before_and_after["trace roots of a window cut at midnight between archived days"]
    assert cut.set_index("trace_id").loc[ids["archived twice"], "service_name"] == "db"


def test_the_data_range_starts_in_the_archive(before_and_after) -> None:
    """The first span lives in an archived day: PostgreSQL alone would start later."""
    (first, _), _ = before_and_after["the data range"]
    assert first.floor("D") == TODAY + pd.Timedelta(days=OLD_DAYS[0])


def test_the_log_range_starts_in_the_archive(before_and_after) -> None:
    """The first log record lives in an archived day (the log rules' "new" judges from it)."""
    (first, _), _ = before_and_after["the log range"]
    assert first.floor("D") == TODAY + pd.Timedelta(days=OLD_DAYS[0])


def review_and_health(url: str) -> dict[str, object]:
    """What the SLO review and the health view show of the demo: their tables and headlines."""
    from obslib.views import observability_health, slo_review

    review = slo_review.review_slos("30d", DEMO_END, url=url)
    health = observability_health.observability_health("14d", DEMO_END, url=url)
    return {
        "SLO review counts": review.counts,
        "SLO review hourly counts": review.hourly,
        "SLO review rows": review.rows,
        "SLO review headline": review.headline().text,
        "health scorecard": health.scorecard_rows,
        "health outages": health.outages,
        "health detections": health.detections,
        "health groups": health.groups,
        "health headline": health.headline().text,
    }


DEMO_END = "2026-11-16T00:00:00Z"  # the demo's data ends there (tests/views)


def test_the_slo_review_and_the_health_view_are_the_same_after_retain(
    migrated_db, tmp_path
) -> None:
    """The demo (days 2026-11-02 to 11-15) with its first week archived: every table the
    two views show and their headlines are unchanged."""
    from obslib import demo

    demo.run(seed=7, spans=20_000, url=migrated_db)
    before = review_and_health(migrated_db)
    first_kept = date(2026, 11, 9)
    horizon = retain_job.Horizon(spans=first_kept, logs=first_kept)
    done = retain_job.retain(horizon, tmp_path / "archive", url=migrated_db)
    assert len(done) == 14 and {r.action for r in done} == {"archived"}
    after = review_and_health(migrated_db)
    for name, shown in before.items():
        if isinstance(shown, pd.DataFrame):
            pd.testing.assert_frame_equal(after[name], shown, obj=name)
        else:
            assert after[name] == shown, name
