"""The burn-rate rule table of obslib.slo: factors, windows, which rules apply."""

from __future__ import annotations

import pandas as pd
import pytest

from obslib import slo
from tests.builders import slo_definitions


@pytest.mark.parametrize(
    ("hours", "factors"),
    [
        (720, [14.4, 6.0, 3.0, 1.0]),
        (168, [3.36, 1.4, 0.7, 0.233333333]),
        (24, [0.48, 0.2, 0.1, None]),
    ],
    ids=["30d", "7d", "1d"],
)
def test_other_periods_scale_burn_by_budget_share_times_period_over_long_window(
    hours: int, factors: list[float | None]
) -> None:
    rules = slo.alert_rules(slo_definitions(measurement_window_hours=hours))
    got = [r["burn_rate"] if r["applies"] else None for r in rules.to_dict("records")]
    assert got == pytest.approx(factors)


def test_a_rule_longer_than_the_period_does_not_apply_and_says_why() -> None:
    rules = slo.alert_rules(slo_definitions(measurement_window_hours=24))
    skipped = rules[~rules["applies"]]
    assert skipped["long_window"].tolist() == [pd.Timedelta(days=3)]
    assert skipped["reason"].tolist() == ["the long window is longer than the 1d period"]


def test_a_throughput_slo_has_no_budget_and_no_rules() -> None:
    rules = slo.alert_rules(slo_definitions(slo_type="throughput", target_value=1.0))
    assert not rules["applies"].any()
    assert set(rules["reason"]) == {"a throughput SLO has no error budget"}
