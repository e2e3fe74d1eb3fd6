"""SLO arithmetic: the SRE Workbook's burn-rate table, budgets and the compliance rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from obslib import slo, values
from obslib.errors import UsageError


def test_30_day_windows_are_the_workbooks() -> None:
    """30-day SLO pages at 14.4x (1h/5m) and 6x (6h/30m), tickets at 3x (1d/2h) and 1x (3d/6h)."""
    table = slo.burn_rate_windows("30d")
    assert list(table.columns) == [
        "severity",
        "long_window",
        "short_window",
        "burn_rate",
        "budget_share",
        "reason",
    ]
    expected = [
        ("page", "1h", "5min", 14.4, 0.02),
        ("page", "6h", "30min", 6.0, 0.05),
        ("ticket", "1d", "2h", 3.0, 0.10),
        ("ticket", "3d", "6h", 1.0, 0.10),
    ]
    for row, (severity, long_w, short_w, burn, share) in zip(
        table.itertuples(), expected, strict=True
    ):
        assert (row.severity, row.long_window, row.short_window) == (
            severity,
            values.duration(long_w),
            values.duration(short_w),
        )
        assert row.burn_rate == pytest.approx(burn)
        assert row.budget_share == share


def test_other_periods_keep_the_factors_and_scale_the_windows() -> None:
    """A 7-day SLO keeps 14.4, 6, 3 and 1; its windows are the 30-day ones x 7/30."""
    table = slo.burn_rate_windows("7d")
    assert table["burn_rate"].tolist() == [14.4, 6.0, 3.0, 1.0]
    assert table["long_window"].tolist() == [
        values.duration(w) for w in ("14m", "84m", "336m", "1008m")
    ]


@pytest.mark.parametrize("period", ["soon", "0d", "-3d"])
def test_bad_periods_are_usage_errors(period: str) -> None:
    """A period that is not a positive duration is refused with its value named."""
    with pytest.raises(UsageError, match="period"):
        slo.burn_rate_windows(period)


@pytest.mark.parametrize(
    ("good", "total", "target", "remaining"),
    [
        (1000, 1000, 99.9, 100.0),
        (999, 1000, 99.9, 0.0),
        (9995, 10000, 99.9, 50.0),
        (990, 1000, 99.9, -900.0),
        (0, 0, 99.9, 100.0),
    ],
    ids=[
        "no errors keeps the whole budget",
        "exactly the budget spends it",
        "half the budget",
        "ten times the budget overspends 900 %",
        "no traffic spends nothing",
    ],
)
def test_budget_remaining(good: int, total: int, target: float, remaining: float) -> None:
    """Budget remaining in percent of the budget, from good and total event counts."""
    assert slo.budget_remaining_percent(good, total, target) == pytest.approx(remaining)


@pytest.mark.parametrize(
    ("remaining", "threshold", "status"),
    [
        (100.0, 90.0, "compliant"),
        (10.01, 90.0, "compliant"),
        (10.0, 90.0, "at_risk"),
        (0.0, 90.0, "at_risk"),
        (-0.01, 90.0, "violated"),
        (40.0, 50.0, "at_risk"),
    ],
    ids=[
        "untouched",
        "just under the threshold",
        "threshold reached",
        "budget exactly spent",
        "overspent",
        "a stricter threshold",
    ],
)
def test_compliance_rule(remaining: float, threshold: float, status: str) -> None:
    """violated below zero, at_risk once the alert threshold share is spent, else compliant."""
    assert slo.compliance_status(remaining, threshold) == status


@given(
    total=st.integers(1, 10**5),
    target_milli=st.integers(90_000, 99_999),
    near=st.booleans(),
    offset=st.integers(-2, 2),
    bad_share=st.floats(0, 1),
)
def test_remaining_falls_as_errors_rise(
    total: int, target_milli: int, near: bool, offset: int, bad_share: float
) -> None:
    """More bad events never leave more budget; violated exactly when the SLI misses target.

    The target is a whole number of thousandths of a percent (99.9 % is 99_900), so "misses"
    is decided in integers: good / total < target_milli / 100_000. Half the cases sit within
    two events of the budget's edge. Up to 10^5 events the nearest miss leaves the budget at
    least 1e-7 % below zero, far from float noise, so no tolerance is needed.
    """
    target = target_milli / 1000
    edge = total * (100_000 - target_milli) // 100_000  # most bad events the budget allows
    bad = min(total, max(0, edge + offset)) if near else int(total * bad_share)
    now = slo.budget_remaining_percent(total - bad, total, target)
    worse = slo.budget_remaining_percent(total - min(total, bad + 1), total, target)
    assert worse <= now <= 100.0
    misses = (total - bad) * 100_000 < target_milli * total
    assert (slo.compliance_status(now) == "violated") == misses
