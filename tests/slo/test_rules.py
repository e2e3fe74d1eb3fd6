"""The burn-rate rule table of obslib.slo: factors, windows, which rules apply."""

from __future__ import annotations

import pandas as pd
import pytest

from obslib import slo
from tests.builders import slo_definitions

M = pd.Timedelta(minutes=1)
H = pd.Timedelta(hours=1)
D = pd.Timedelta(days=1)

# period in hours -> (severity, factor, long window, short window) per rule that applies;
# None where the rule is dropped. Windows: the 30-day ones x period / 30 days, rounded to
# whole minutes (Pyrra's Windows()); 28 days: Sloth's google-28d.
RULES = {
    "a 30-day SLO pages at 14.4x over 1h and 5m (the Workbook's table)": (
        720,
        [("page", 14.4, H, 5 * M), ("page", 6, 6 * H, 30 * M),
         ("ticket", 3, D, 2 * H), ("ticket", 1, 3 * D, 6 * H)],
    ),
    "a 28-day SLO pages at 13.44x over 1h and 5m (Sloth's google-28d, its 0.93x raised to 1)": (
        672,
        [("page", 13.44, H, 5 * M), ("page", 5.6, 6 * H, 30 * M),
         ("ticket", 2.8, D, 2 * H), ("ticket", 1, 3 * D, 6 * H)],
    ),
    "a 7-day SLO pages at 14.4x over 14 min and 1 min": (
        168,
        [("page", 14.4, 14 * M, M), ("page", 6, 84 * M, 7 * M),
         ("ticket", 3, 336 * M, 28 * M), ("ticket", 1, 1008 * M, 84 * M)],
    ),
    "a 1-day SLO drops its 14.4x page (a 10 s short window) and pages at 6x over 12m and 1m": (
        24,
        [None, ("page", 6, 12 * M, M), ("ticket", 3, 48 * M, 4 * M),
         ("ticket", 1, 144 * M, 12 * M)],
    ),
    "a 90-day SLO pages at 14.4x over 3h and 15m": (
        2160,
        [("page", 14.4, 3 * H, 15 * M), ("page", 6, 18 * H, 90 * M),
         ("ticket", 3, 3 * D, 6 * H), ("ticket", 1, 9 * D, 18 * H)],
    ),
    "a 1-hour SLO keeps only the 1x ticket over 6m and 1m": (
        1,
        [None, None, None, ("ticket", 1, 6 * M, M)],
    ),
}  # fmt: skip


@pytest.mark.parametrize(("hours", "expected"), RULES.values(), ids=RULES.keys())
def test_the_factors_stay_and_the_windows_scale_with_the_period(hours, expected) -> None:
    rules = slo.alert_rules(slo_definitions(measurement_window_hours=hours))
    got = [
        (r["severity"], r["burn_rate"], r["long_window"], r["short_window"])
        if r["applies"]
        else None
        for r in rules.to_dict("records")
    ]
    assert got == [None if e is None else (e[0], pytest.approx(e[1]), e[2], e[3]) for e in expected]


@pytest.mark.parametrize("hours", [1, 2, 6, 12, 24, 72, 168, 336, 672, 720, 2160, 8760])
def test_no_rule_has_a_factor_below_1_for_any_period(hours: int) -> None:
    """A burn below 1 cannot exhaust a budget: no rule of any period fires on one."""
    rules = slo.alert_rules(slo_definitions(measurement_window_hours=hours))
    assert (rules["burn_rate"] >= 1).all()


def test_every_window_that_applies_is_a_whole_number_of_minutes_and_at_least_one() -> None:
    for hours in range(1, 24 * 120, 7):
        rules = slo.alert_rules(slo_definitions(measurement_window_hours=hours))
        applies = rules[rules["applies"]]
        for window in [*applies["long_window"], *applies["short_window"]]:
            assert window >= M and window % M == pd.Timedelta(0), (hours, window)


def test_a_window_rounding_below_the_sli_bucket_drops_its_rule_and_says_why() -> None:
    rules = slo.alert_rules(slo_definitions(measurement_window_hours=24))
    skipped = rules[~rules["applies"]]
    assert skipped["severity"].tolist() == ["page"]
    assert skipped["reason"].tolist() == [
        "its short window (5m x 1d/30d = 10s) rounds below the 1m SLI bucket"
    ]


def test_a_throughput_slo_has_no_budget_and_no_rules() -> None:
    rules = slo.alert_rules(slo_definitions(slo_type="throughput", target_value=1.0))
    assert not rules["applies"].any()
    assert set(rules["reason"]) == {"a throughput SLO has no error budget"}
