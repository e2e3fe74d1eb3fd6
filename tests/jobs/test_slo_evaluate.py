"""The rolling-window SLO evaluator: counts and definitions in, measurements out.

Exact values on hand-built hourly counts; the demo and `obslib slo evaluate` share it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from obslib import slo
from obslib.errors import InputError

T0 = pd.Timestamp("2026-11-01 00:00", tz="UTC")


def _counts(service: str, rows: list[tuple[int, int, int]], threshold: float | None = None):
    """Hourly buckets from T0: (total, ok, fast) per hour."""
    return pd.DataFrame(
        {
            "service_name": service,
            "bucket": [T0 + pd.Timedelta(hours=h) for h in range(len(rows))],
            "total": [r[0] for r in rows],
            "ok": [r[1] for r in rows],
            "fast": [r[2] for r in rows],
            "threshold": np.nan if threshold is None else threshold,
        }
    )


def _slo(**overrides) -> pd.DataFrame:
    row = {
        "service_name": "api",
        "slo_name": "api-availability",
        "slo_type": "availability",
        "target_value": 99.0,
        "measurement_window_hours": 2,
        "latency_threshold_ms": np.nan,
        "alert_threshold_percent": 90.0,
    }
    row.update(overrides)
    return pd.DataFrame([row])


def test_each_measurement_sums_the_window_before_it() -> None:
    """A 2-hour window at 99 %: hour 1 alone, then hours 1+2, then hours 2+3."""
    counts = _counts("api", [(100, 100, 0), (100, 99, 0), (100, 98, 0)])
    out = slo.evaluate(counts, _slo())
    assert out["measurement_timestamp"].tolist() == [T0 + pd.Timedelta(hours=h) for h in (1, 2, 3)]
    assert out["actual_value"].tolist() == [100.0, 99.5, 98.5]
    # budget 1 %: 0 bad of 100 -> 100 % left; 1 of 200 -> 50 %; 3 of 200 -> -50 %
    assert out["error_budget_remaining"].tolist() == [100.0, 50.0, -50.0]
    assert out["compliance_status"].tolist() == ["compliant", "compliant", "violated"]
    assert out["measurement_period_s"].tolist() == [7200.0] * 3


def test_latency_slos_count_fast_spans_at_their_own_threshold() -> None:
    """A latency SLO reads ``fast`` from the counts made with its threshold, not another's."""
    counts = pd.concat(
        [
            _counts("api", [(100, 100, 0)]),  # no threshold: fast is meaningless
            _counts("api", [(100, 100, 95)], threshold=300.0),
            _counts("api", [(100, 100, 50)], threshold=100.0),
        ]
    )
    definition = _slo(slo_name="api-latency", slo_type="latency", latency_threshold_ms=300.0)
    out = slo.evaluate(counts, definition)
    assert out["actual_value"].tolist() == [95.0]


def test_the_warm_up_is_not_recorded() -> None:
    """Measurements start once the evaluator has run for ``warm_up``."""
    counts = _counts("api", [(10, 10, 0)] * 5)
    out = slo.evaluate(counts, _slo(), warm_up="2h")
    assert out["measurement_timestamp"].min() == T0 + pd.Timedelta(hours=3)
    assert len(out) == 3


def test_the_slos_own_alert_threshold_decides_at_risk() -> None:
    """60 % of the budget spent: at risk for an SLO alerting at 50 %, compliant at 90 %."""
    counts = _counts("api", [(1000, 994, 0)])  # 6 bad of 1000 at a 1 % budget: 60 % spent
    assert slo.evaluate(counts, _slo(alert_threshold_percent=50.0))[
        "compliance_status"
    ].tolist() == ["at_risk"]
    assert slo.evaluate(counts, _slo(alert_threshold_percent=90.0))[
        "compliance_status"
    ].tolist() == ["compliant"]


def test_a_missing_alert_threshold_means_the_plans_90_percent() -> None:
    """Without ``alert_threshold_percent`` (NULL), 90 % spent is at risk and 89 % is not."""
    definition = _slo(alert_threshold_percent=np.nan)
    at_90 = _counts("api", [(1000, 991, 0)])  # 9 bad of 1000: 90 % of the budget spent
    at_89 = _counts("api", [(10000, 9911, 0)])  # 89 of 10000: 89 %
    assert slo.evaluate(at_90, definition)["compliance_status"].tolist() == ["at_risk"]
    assert slo.evaluate(at_89, definition)["compliance_status"].tolist() == ["compliant"]


@pytest.mark.parametrize(
    ("remaining", "status"),
    [(10.0, "at_risk"), (10.000001, "compliant"), (0.0, "at_risk"), (-0.01, "violated")],
    ids=[
        "90 % spent is at risk by default",
        "just under 90 % spent is compliant",
        "a budget spent exactly is at risk, not violated",
        "an overspent budget is violated",
    ],
)
def test_the_default_alert_threshold_is_90_percent(remaining: float, status: str) -> None:
    """``compliance_status`` without a threshold uses the plan's default of 90 % spent."""
    assert slo.compliance_status(remaining).tolist() == status


def test_services_without_counts_and_no_slos_give_an_empty_frame() -> None:
    """An SLO whose service has no traffic gives no rows; nothing at all keeps the columns."""
    out = slo.evaluate(_counts("other", [(10, 10, 0)]), _slo())
    assert out.empty
    assert "compliance_status" in out.columns


def test_missing_columns_are_named() -> None:
    """A counts frame without ``threshold`` is refused naming the column, not a KeyError."""
    counts = _counts("api", [(10, 10, 0)]).drop(columns="threshold")
    with pytest.raises(InputError, match=r"SLI counts frame lacks column.*threshold"):
        slo.evaluate(counts, _slo())
