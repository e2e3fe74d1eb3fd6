"""obslib.slo: the SLO definitions checked once (``objectives``), which counts an evaluation
reads (``read_plan``) and the hourly counts summed from the minutes (``hourly_counts``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from obslib import load, slo
from obslib.errors import InputError
from tests.builders import minute_counts, slo_definitions

END = pd.Timestamp("2026-11-16 00:00", tz="UTC")
H, D = pd.Timedelta(hours=1), pd.Timedelta(days=1)
MONTHLY = {"slo_name": "monthly", "measurement_window_hours": 720}  # every rule applies
DAILY = {"slo_name": "daily", "measurement_window_hours": 24}  # windows x 1/30; no 14.4x page


@pytest.mark.parametrize(
    ("definitions", "window", "end", "data_start", "plan"),
    [
        # (start, minutes_from, hours_from) as offsets from END
        ([MONTHLY], 30 * D, END, None, (-30 * D, -33 * D, -60 * D)),
        ([MONTHLY], pd.Timedelta(0), END, None, (pd.Timedelta(0), -30 * D, -30 * D)),
        ([DAILY], D, END, None, (-D, -D - 3 * H, -2 * D)),
        ([DAILY], 7 * D, END, None, (-7 * D, -7 * D - 3 * H, -8 * D)),
        ([DAILY, MONTHLY], 7 * D, END, None, (-7 * D, -30 * D, -37 * D)),
        ([MONTHLY], 30 * D, END, END - 14 * D + H / 2, (-14 * D, -30 * D, -44 * D)),
        ([MONTHLY], 30 * D, END, END - 40 * D, (-30 * D, -33 * D, -60 * D)),
        (
            [DAILY],
            pd.Timedelta(0),
            END + 90 * H / 60 + pd.Timedelta(seconds=30),
            None,
            (pd.Timedelta(minutes=90), -D + H, -D + H),
        ),
    ],
    ids=[
        "a 30-day review of a 30-day SLO reads minutes from its 3-day rule before the start",
        "an evaluation at an instant reads the SLO's whole period per minute and no hours",
        "a daily SLO reads minutes from its longest rule (2h24m) before the start, whole hours",
        "a week of a daily SLO sums every hour it needs from the minutes",
        "the longest period sets how far back the minutes and the hours before them reach",
        "a window before the data starts at the data's first hour",
        "data older than the window leaves the window as asked",
        "an end inside a minute is floored to it, the reads to whole hours",
    ],
)
def test_the_read_plan_covers_every_window_the_evaluation_sums(
    definitions, window, end, data_start, plan
) -> None:
    planned = slo.read_plan(
        slo_definitions(*definitions), end, window=window, data_start=data_start
    )
    start, minutes_from, hours_from = (END + offset for offset in plan)
    assert (planned.start, planned.minutes_from, planned.hours_from) == (
        start,
        minutes_from,
        hours_from,
    )
    assert planned.end == end.floor("min")
    older = planned.older_hours
    assert older == ((hours_from, minutes_from) if hours_from < minutes_from else None)


def test_without_an_slo_the_plan_reads_the_window_and_an_hour_before_it() -> None:
    planned = slo.read_plan(slo_definitions().iloc[:0], END, window=7 * D)
    assert planned.minutes_from == END - 7 * D - H and planned.older_hours is None


def test_objectives_check_the_definitions_once_and_refuse_a_bad_one() -> None:
    """A checked set passes through unchanged (the same object); a bad row is refused."""
    checked = slo.objectives(slo_definitions(MONTHLY, DAILY))
    assert slo.objectives(checked) is checked
    assert len(checked.definitions) == 2 and len(checked.rules) == 8
    daily = checked.applicable(checked.definitions[1])
    minutes = pd.Timedelta(minutes=1)
    assert daily["long_window"].tolist() == [12 * minutes, 48 * minutes, 144 * minutes]
    pd.testing.assert_frame_equal(slo.alert_rules(checked), checked.rules)
    with pytest.raises(InputError, match="unknown slo_type 'speed'"):
        slo.objectives(slo_definitions(slo_type="speed"))


def test_alert_rules_of_a_checked_set_are_a_copy() -> None:
    """Changing the rules one caller got does not change what the next one gets."""
    checked = slo.objectives(slo_definitions())
    rules = slo.alert_rules(checked)
    rules["burn_rate"] = 0.0
    assert checked.rules["burn_rate"].tolist() == pytest.approx([14.4, 6.0, 3.0, 1.0])


T0 = pd.Timestamp("2026-11-01 00:00", tz="UTC")


@pytest.mark.parametrize(
    ("minutes", "hours"),
    [
        ({0: (10, 9), 59: (5, 5)}, {0: (15, 14)}),
        ({59: (5, 5), 60: (7, 6)}, {0: (5, 5), 1: (7, 6)}),
        ({m: (1, 1) for m in range(180)}, {h: (60, 60) for h in range(3)}),
    ],
    ids=[
        "the minutes of one hour sum into that hour",
        "a minute past the hour starts the next one",
        "three hours of minutes make three hours",
    ],
)
def test_hourly_counts_sum_the_minutes_of_each_hour(minutes, hours) -> None:
    counts = minute_counts("api", minutes)
    got = slo.hourly_counts(counts)
    assert list(got.columns) == list(slo.COUNT_COLUMNS)
    expected = {T0 + h * H: totals for h, totals in hours.items()}
    assert dict(zip(got["bucket"], zip(got["total"], got["ok"], strict=True), strict=True)) == (
        expected
    )


def test_hourly_counts_keep_services_and_thresholds_apart_and_older_hours_first() -> None:
    slow = minute_counts("api", {0: (10, 10)}, fast=4).assign(threshold=300.0)
    counts = pd.concat([minute_counts("api", {0: (10, 9)}), slow, minute_counts("db", {1: (3, 3)})])
    older = slo.hourly_counts(minute_counts("api", {0: (1, 1)}, start=T0 - D))
    got = slo.hourly_counts(counts, older)
    assert got["bucket"].iloc[0] == T0 - D  # the older hours come first
    rows = got.iloc[1:]
    assert rows[["service_name", "total", "ok", "fast"]].values.tolist() == [
        ["api", 10, 9, 9],
        ["api", 10, 10, 4],
        ["db", 3, 3, 3],
    ]
    assert np.isnan(rows["threshold"].iloc[0]) and rows["threshold"].iloc[1] == 300.0


def test_hours_summed_from_minutes_equal_hourly_buckets(demo_db) -> None:
    """The hours ``hourly_counts`` sums equal those PostgreSQL counts per hour (the review
    reads the minutes once and sums them rather than scanning the same hours twice)."""
    url, _ = demo_db
    slos = load.slos(url=url)
    start, end = "2026-11-13T00:00:00Z", "2026-11-15T00:00:00Z"
    keys = ["service_name", "threshold", "bucket"]
    derived = slo.hourly_counts(load.slo_counts(slos, start, end, url=url))
    scanned = load.slo_counts(slos, start, end, bucket="1h", url=url)
    pd.testing.assert_frame_equal(
        derived.sort_values(keys).reset_index(drop=True),
        scanned.sort_values(keys).reset_index(drop=True),
        check_dtype=False,
    )
