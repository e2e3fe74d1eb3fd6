"""obslib.slo.status for the SLO review: which SLOs are in trouble, the statuses counted,
a budget burn-down and the burn rates thinned for a chart of a long window."""

from __future__ import annotations

import pandas as pd
import pytest

from obslib import slo
from obslib.slo import status as slo_status
from tests.builders import T0, slo_definitions

H = pd.Timedelta(hours=1)


def _evaluated(*rows: tuple[str, str, float]) -> pd.DataFrame:
    """(slo_name, compliance_status, error_budget_remaining) rows of an evaluation."""
    return pd.DataFrame(
        rows, columns=["slo_name", "compliance_status", "error_budget_remaining"]
    ).assign(service_name="api")


@pytest.mark.parametrize(
    ("rows", "trouble"),
    [
        ([("a", "compliant", 50.0), ("b", "at_risk", 5.0), ("c", "violated", -3.0)], ["c", "b"]),
        ([("a", "at_risk", 9.0), ("b", "violated", -1.0), ("c", "at_risk", 2.0)], ["b", "c", "a"]),
        ([("a", "at_risk", 5.0), ("b", "at_risk", 5.0)], ["a", "b"]),
        ([("a", "compliant", 95.0), ("b", slo.NO_DATA, float("nan"))], []),
    ],
    ids=[
        "violated and at-risk SLOs are in trouble, compliant ones not",
        "the least budget left comes first, whatever the status",
        "equal budgets keep the evaluation's order",
        "compliant SLOs and SLOs without data are not in trouble",
    ],
)
def test_slos_in_trouble_come_least_budget_first(rows, trouble) -> None:
    assert slo_status.in_trouble(_evaluated(*rows))["slo_name"].tolist() == trouble


@pytest.mark.parametrize(
    ("statuses", "counts"),
    [
        (["compliant", "violated", "compliant"], {"violated": 1, "compliant": 2}),
        ([slo.NO_DATA, "at_risk", "violated"], {"violated": 1, "at_risk": 1, slo.NO_DATA: 1}),
        ([], {}),
    ],
    ids=[
        "statuses are counted worst first, absent ones left out",
        "no data is counted last",
        "no SLO counts nothing",
    ],
)
def test_status_counts_go_worst_first(statuses, counts) -> None:
    got = slo_status.status_counts(_evaluated(*((s, s, 0.0) for s in statuses)))
    assert got == counts and list(got) == list(counts)


def test_the_peak_burn_per_step_keeps_each_windows_highest() -> None:
    """Two windows' burns per minute, thinned to one point per hour: each hour's highest."""
    times = [T0 + pd.Timedelta(minutes=m) for m in (1, 30, 60, 61, 120)]
    burn = pd.DataFrame(
        {
            "window": ["1h"] * 5 + ["6h"] * 5,
            "time": times * 2,
            "burn_rate": [1.0, 9.0, 2.0, 4.0, 0.5, 0.1, 0.2, 0.3, 0.4, 0.5],
        }
    )
    got = slo_status.peak_burn(burn, "1h")
    assert got.values.tolist() == [
        ["1h", T0 + H, 9.0],  # minute 60 ends the first hour: max(1, 9, 2)
        ["1h", T0 + 2 * H, 4.0],  # minutes 61 and 120
        ["6h", T0 + H, 0.3],
        ["6h", T0 + 2 * H, 0.5],
    ]


@pytest.mark.parametrize(
    ("budgets", "step", "kept"),
    [
        ([50.0, 40.0, 45.0, 30.0], "2h", [40.0, 30.0]),
        ([50.0, 40.0, 45.0, 30.0], "1h", [50.0, 40.0, 45.0, 30.0]),
        ([50.0, -7.0, 45.0, 30.0, 20.0], "3h", [-7.0, 20.0]),
    ],
    ids=[
        "each step keeps its hour with the least budget left",
        "hourly steps keep every measurement",
        "an overspent hour stays visible in a coarser step",
    ],
)
def test_a_long_window_draws_the_worst_hour_of_each_step(budgets, step, kept) -> None:
    hours = [T0 + (i + 1) * H for i in range(len(budgets))]
    measured = pd.DataFrame({"measurement_timestamp": hours, "error_budget_remaining": budgets})
    assert slo_status.lowest_budget_per(measured, step)["error_budget_remaining"].tolist() == kept


def test_six_thousand_hours_keep_under_a_thousand_points_and_the_worst() -> None:
    hours = pd.date_range("2026-01-01", periods=6000, freq="h", tz="UTC")
    measured = pd.DataFrame({"measurement_timestamp": hours, "error_budget_remaining": 50.0})
    measured.loc[4321, "error_budget_remaining"] = -7.0
    thinned = slo_status.lowest_budget_per(measured, "7h")
    assert len(thinned) <= 1000 and -7.0 in thinned["error_budget_remaining"].tolist()


def _hourly(service: str, hours: int, bad: dict[int, int]) -> pd.DataFrame:
    """100 requests an hour from T0, ``bad[h]`` of hour h failing."""
    return pd.DataFrame(
        {
            "service_name": service,
            "bucket": [T0 + h * H for h in range(hours)],
            "total": 100,
            "ok": [100 - bad.get(h, 0) for h in range(hours)],
            "fast": 100,
            "threshold": float("nan"),
        }
    )


def test_the_burndown_leaves_out_the_first_day_and_what_is_outside_the_window() -> None:
    """A 2-day 99 % SLO over 4 days of 100 requests an hour, 10 of hour 30's failing: the
    window then holds 31 hours (a budget of 31 requests), so 67.7 % is left at its worst;
    another service's failures do not count."""
    d = slo_definitions(measurement_window_hours=48, target_value=99.0).iloc[0].to_dict()
    hourly = pd.concat([_hourly("api", 96, {30: 10}), _hourly("other", 96, {30: 100})])
    start, end = T0 + 12 * H, T0 + 90 * H
    got = slo_status.budget_burndown(hourly, d, start, end)
    at = got["measurement_timestamp"]
    assert at.min() == T0 + 25 * H  # the first day (warm-up) is not drawn
    assert at.max() == end
    assert set(got["service_name"]) == {"api"}
    worst = got.loc[got["error_budget_remaining"].idxmin()]
    assert worst["error_budget_remaining"] == pytest.approx(100 * (1 - 10 / 31), abs=0.01)
    assert worst["measurement_timestamp"] == T0 + 31 * H


def test_a_throughput_slo_has_no_burndown() -> None:
    d = slo_definitions(slo_type="throughput", target_value=1.0).iloc[0].to_dict()
    assert slo_status.budget_burndown(_hourly("api", 48, {}), d, T0, T0 + 48 * H).empty
