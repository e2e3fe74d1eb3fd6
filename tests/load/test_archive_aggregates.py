"""The SQL aggregates read archived days too: every count, range and root the SLO review,
the health report and the postmortem take is the same before and after ``retain`` moves
old days to the Parquet archive (same columns, dtypes, rows and order)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pandas as pd
import psycopg
import pytest

from obslib import load
from obslib.jobs import retain as retain_job
from obslib.load import archive
from tests.builders import slo_definitions
from tests.load.test_archive import NEW_DAYS, OLD_DAYS, TODAY, multi_day_dataset

HOT_NEIGHBOUR = (-7,)  # the first kept day, right after the archived ones
LO, HI = TODAY - pd.Timedelta(days=11), TODAY + pd.Timedelta(days=1)
# a window that starts inside an archived day and ends inside a kept one
CUT = (LO + pd.Timedelta(days=2, hours=4), TODAY + pd.Timedelta(days=-7, hours=9))
SLOS = slo_definitions(
    {},
    {"slo_name": "latency", "slo_type": "latency", "latency_threshold_ms": 30.0},
    {"slo_name": "fast", "slo_type": "latency", "latency_threshold_ms": 5.0},  # = a duration,
    {"service_name": "db", "slo_name": "availability"},
)

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
    "the data end": lambda url: load.data_end(url=url),
    "services": lambda url: load.services(LO, HI, url=url),
    "services of a cut window": lambda url: load.services(*CUT, url=url),
    "operation counts": lambda url: load.operation_counts(LO, HI, url=url),
    "operation counts with a threshold over a cut window": lambda url: load.operation_counts(
        *CUT, services=["api"], latency_threshold_ms=30, url=url
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
        before = {name: read(url) for name, read in AGGREGATES.items()}
        retire(url, tmp_path_factory.mktemp("archive"))
        with psycopg.connect(url) as conn:
            (left,) = conn.execute("SELECT count(*) FROM distributed_traces").fetchone()
        assert left == 3 * 4 * len(HOT_NEIGHBOUR + NEW_DAYS)  # the old days left PostgreSQL
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
    else:
        assert before is not None
        assert after == before


def test_the_data_range_starts_in_the_archive(before_and_after) -> None:
    """The first span lives in an archived day: PostgreSQL alone would start later."""
    (first, _), _ = before_and_after["the data range"]
    assert first.floor("D") == TODAY + pd.Timedelta(days=OLD_DAYS[0])
