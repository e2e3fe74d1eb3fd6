"""obslib.slo.status: an SLO evaluated at an instant (SLI, budget, burn, firing rules), coverage
and contributors. Exact values from hand-built per-minute counts."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obslib import config, slo
from obslib.errors import InputError
from obslib.slo import status as slo_status
from tests.builders import MIN, T0, minute_counts, slo_definitions


def _rule(evaluation: slo_status.Evaluation, long_window: str) -> dict:
    rules = evaluation.rules
    return rules[rules["long_window"] == pd.Timedelta(long_window)].iloc[0].to_dict()


def test_30_day_slo_at_99_9_pages_at_14_4x_over_1h_and_5m() -> None:
    """125 events a minute for an hour (7,500); 108 bad in the last minute is a burn of
    exactly 14.4 over the hour, which does not exceed 14.4; 109 bad does."""
    at = T0 + 60 * MIN
    at_factor = slo_status.evaluate_at(
        minute_counts("api", range(60), 125, {59: 108}), slo_definitions(), at
    )
    over = slo_status.evaluate_at(
        minute_counts("api", range(60), 125, {59: 109}), slo_definitions(), at
    )
    rule = _rule(at_factor, "1h")
    assert (rule["severity"], rule["short_window"], rule["threshold"]) == (
        "page",
        pd.Timedelta("5min"),
        14.4,
    )
    assert rule["long_burn"] == 14.4 and rule["short_burn"] > 14.4
    assert not rule["firing"]
    assert _rule(over, "1h")["firing"]
    assert over.slos.iloc[0]["firing"] == "page"


def test_a_rule_needs_both_windows_above_the_factor() -> None:
    """Bad minutes an hour ago keep the 1h window burning but the 5m window is clean: no
    page from that rule (the short window is what lets an alert reset)."""
    counts = minute_counts("api", range(60), 125, {30: 120})
    rule = _rule(slo_status.evaluate_at(counts, slo_definitions(), T0 + 60 * MIN), "1h")
    assert rule["long_burn"] > 14.4 and rule["short_burn"] == 0.0
    assert not rule["firing"]


def test_the_minimum_traffic_guard_holds_back_a_rule_below_n_events() -> None:
    """9 events in the hour, all failing: a burn of 1000, but under 10 events: quiet. With
    10 (or a guard of 9) it fires."""
    nine = minute_counts("api", {59: (9, 0)})
    ten = minute_counts("api", {59: (10, 0)})
    at = T0 + 60 * MIN
    assert slo_status.evaluate_at(nine, slo_definitions(), at).slos.iloc[0]["firing"] == ""
    assert slo_status.evaluate_at(ten, slo_definitions(), at).slos.iloc[0]["firing"] == "page"
    assert (
        slo_status.evaluate_at(nine, slo_definitions(), at, min_events=9).slos.iloc[0]["firing"]
        == "page"
    )


LADDERS = {
    "the Workbook's 1h page: 5m doubled while under 1h, then 1h": (
        "5min", "1h", ("5min", "10min", "20min", "40min", "1h"),
    ),
    "the 6h page": ("30min", "6h", ("30min", "1h", "2h", "4h", "6h")),
    "the 1d ticket": ("2h", "1D", ("2h", "4h", "8h", "16h", "1D")),
    "the 3d ticket": ("6h", "3D", ("6h", "12h", "1D", "2D", "3D")),
    "a 7-day SLO's 14m page over 1m (long not 12 x short)": (
        "1min", "14min", ("1min", "2min", "4min", "8min", "14min"),
    ),
    "a long window a power of two of the short: no rung twice": (
        "1min", "4min", ("1min", "2min", "4min"),
    ),
    "a short window as long as the long one: the long window alone": ("1h", "1h", ("1h",)),
}  # fmt: skip


@pytest.mark.parametrize(("short", "long", "want"), LADDERS.values(), ids=LADDERS.keys())
def test_the_guard_ladder_doubles_the_short_window_then_ends_at_the_long_one(
    short, long, want
) -> None:
    """The windows a quiet service's short window may be read over, shortest first."""
    got = slo_status.guard_ladder(pd.Timedelta(short), pd.Timedelta(long))
    assert got == tuple(pd.Timedelta(w) for w in want)


def test_a_quiet_short_window_is_read_on_the_first_rung_holding_min_events() -> None:
    """1h page, guard 10: minutes 50..53 hold one failing event each, minute 54 five good
    ones, 55..59 one good one each. The 5m window holds 5 events, the 10m rung 14 (4 bad):
    the short window is read over 10 minutes, burns at 286x and the page fires. The last 10
    events alone (minutes 54..59) are all good: the rule is the ladder's, not theirs."""
    minutes = {m: (1, 0) for m in range(50, 54)} | {54: (5, 5)}
    minutes |= {m: (1, 1) for m in range(55, 60)}
    counts = minute_counts("api", minutes)
    evaluation = slo_status.evaluate_at(counts, slo_definitions(), T0 + 60 * MIN)
    rule = _rule(evaluation, "1h")
    assert rule["short_burn"] == pytest.approx(4 / 14 / 0.001)
    assert rule["firing"] and evaluation.slos.iloc[0]["firing"] == "page"


def test_guarded_sums_read_each_instant_on_its_own_rung() -> None:
    """One event a minute for 20 minutes, then 10 in one minute: before the burst the 5m
    window holds 5 and the 10m rung 10 (read over 10 minutes); from the burst on the 5m
    window holds 10 or more (read over 5). A guard of 0 always reads the short window."""
    minutes = {m: (1, 1) for m in range(20)} | {20: (10, 10)}
    series = slo.sli_series(minute_counts("api", minutes), slo_definitions().iloc[0].to_dict())
    start, end, hour = T0 + 15 * MIN, T0 + 21 * MIN, pd.Timedelta("1h")
    grid = slo_status.burn_grid(series, start, end, step=MIN, lookback=hour)
    short, long = pd.Timedelta("5min"), pd.Timedelta("1h")
    _, total, lo = grid.guarded_sums(short, long, 10)
    assert total.tolist() == [10] * 5 + [14]
    widths = (np.arange(grid.first, len(grid.times)) + 1 - lo).tolist()
    assert widths == [10] * 5 + [5]
    assert grid.guarded_sums(short, long, 0)[1].tolist() == [5] * 5 + [14]


def test_evaluation_states_budget_total_consumed_remaining_and_exhaustion() -> None:
    """A 24 h SLO at 99 % (budget 1 %): 100 events a minute for a day, 2 bad a minute in the
    last hour. 120 bad of 144,000 allowed 1,440: 8.33 % consumed; the last hour burns at 2x,
    so the 91.67 % left lasts 91.67 % x 24 h / 2 = 11 h."""
    counts = minute_counts("api", range(1440), 100, {m: 2 for m in range(1380, 1440)})
    definition = slo_definitions(target_value=99.0, measurement_window_hours=24)
    at = T0 + 1440 * MIN
    row = slo_status.evaluate_at(counts, definition, at).slos.iloc[0]
    assert (row["events"], row["bad_events"]) == (144_000, 120)
    assert row["sli"] == pytest.approx(100 * (1 - 120 / 144_000))
    assert row["budget_total"] == pytest.approx(1440.0)
    assert row["budget_consumed"] == 120.0
    assert row["budget_consumed_percent"] == pytest.approx(100 / 12)
    assert row["error_budget_remaining"] == pytest.approx(100 - 100 / 12)
    assert row["burn_rate"] == pytest.approx(1 / 12)
    assert row["recent_burn_rate"] == pytest.approx(2.0)
    assert abs(row["projected_exhaustion"] - (at + pd.Timedelta(hours=11))) < pd.Timedelta("1s")
    assert row["compliance_status"] == "compliant"
    # the factors never scale down: the 1x ticket's 2h24m window holds 120 bad of 14,400
    # (0.83x), so an hour at 2x fires no rule, and a compliant SLO needs no alert
    assert row["firing"] == "" and not row["should_alert"]


def test_the_window_ends_at_the_instant_and_excludes_its_minute() -> None:
    """Events of the minute starting at ``at`` belong to the next evaluation."""
    counts = minute_counts("api", {0: (10, 10), 60: (10, 0)})
    row = slo_status.evaluate_at(
        counts, slo_definitions(measurement_window_hours=1), T0 + 60 * MIN
    ).slos.iloc[0]
    assert (row["events"], row["bad_events"]) == (10, 0)


def test_zero_traffic_is_no_data_without_a_division_by_zero() -> None:
    empty = minute_counts("other", {0: (10, 10)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        row = slo_status.evaluate_at(empty, slo_definitions(), T0 + 60 * MIN).slos.iloc[0]
    assert row["compliance_status"] == slo.NO_DATA
    assert np.isnan(row["sli"]) and row["events"] == 0
    assert row["burn_rate"] == 0.0 and pd.isna(row["projected_exhaustion"])
    assert np.isnan(row["error_budget_remaining"])  # not "100 % left": nothing was measured
    assert not row["should_alert"]


def test_a_100_percent_target_has_no_budget_one_failure_overspends_it() -> None:
    definition = slo_definitions(target_value=100.0)
    at = T0 + 10 * MIN
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clean = slo_status.evaluate_at(
            minute_counts("api", range(10), 50), definition, at
        ).slos.iloc[0]
        one_bad = slo_status.evaluate_at(
            minute_counts("api", range(10), 50, {3: 1}), definition, at
        ).slos.iloc[0]
    assert clean["compliance_status"] == "compliant" and clean["error_budget_remaining"] == 100
    assert one_bad["compliance_status"] == "violated"
    assert one_bad["error_budget_remaining"] == -np.inf and one_bad["burn_rate"] == np.inf


def test_a_latency_slo_without_threshold_is_a_clear_error() -> None:
    with pytest.raises(InputError, match=r"api/p99: a latency SLO needs latency_threshold_ms"):
        slo_status.evaluate_at(
            minute_counts("api", range(5), 10),
            slo_definitions(slo_name="p99", slo_type="latency"),
            T0 + 5 * MIN,
        )


def test_an_error_rate_slo_states_errors_and_its_target_is_the_most_allowed() -> None:
    """Target 1 (% errors at most); 2 % errors over the window: violated, SLI 2, budget 1 %."""
    counts = minute_counts("api", range(60), 100, {m: 2 for m in range(60)})
    definition = slo_definitions(
        slo_type="error_rate", target_value=1.0, measurement_window_hours=1
    )
    row = slo_status.evaluate_at(
        counts, definition,
        T0 + 60 * MIN,
    ).slos.iloc[0]  # fmt: skip
    assert row["sli"] == pytest.approx(2.0)
    assert row["budget_total"] == pytest.approx(60.0)  # 1 % of 6,000
    assert row["burn_rate"] == pytest.approx(2.0)
    assert row["compliance_status"] == "violated"


def test_a_latency_slo_counts_slow_spans_as_bad() -> None:
    counts = minute_counts("api", range(60), 100, fast=97).assign(threshold=250.0)
    definition = slo_definitions(
        slo_name="p97", slo_type="latency", target_value=99.0, latency_threshold_ms=250.0,
        measurement_window_hours=1,
    )  # fmt: skip
    row = slo_status.evaluate_at(counts, definition, T0 + 60 * MIN).slos.iloc[0]
    assert (row["bad_events"], row["sli"], row["compliance_status"]) == (180, 97.0, "violated")


@pytest.mark.parametrize(("target", "status"), [(2.0, "violated"), (1.0, "compliant")])
def test_a_throughput_slo_compares_events_per_second_with_its_target(target, status) -> None:
    """60 events a minute is 1 per second."""
    definition = slo_definitions(
        slo_type="throughput", target_value=target, measurement_window_hours=1
    )
    row = slo_status.evaluate_at(
        minute_counts("api", range(60), 60), definition, T0 + 60 * MIN
    ).slos.iloc[0]
    assert row["sli"] == pytest.approx(1.0)
    assert row["compliance_status"] == status
    assert np.isnan(row["error_budget_remaining"]) and np.isnan(row["burn_rate"])


@settings(max_examples=60, deadline=None)
@given(
    total=st.integers(min_value=1, max_value=5000),
    bad=st.integers(min_value=0, max_value=5000),
    target=st.sampled_from([90.0, 99.0, 99.5, 99.9, 99.95]),
)
def test_budget_consumed_is_monotone_in_errors(total: int, bad: int, target: float) -> None:
    bad = min(bad, total - 1)
    now = slo.budget_remaining_percent(total - bad, total, target)
    worse = slo.budget_remaining_percent(total - bad - 1, total, target)
    assert worse <= now
    assert slo.burn_rate(bad + 1, total, target) >= slo.burn_rate(bad, total, target)


@settings(max_examples=40, deadline=None)
@given(
    target=st.sampled_from([90.0, 95.0, 99.0, 99.5, 99.9]),
    thousands=st.integers(min_value=1, max_value=20),
    hours=st.sampled_from([1, 2, 6]),
)
def test_burning_at_1x_for_the_whole_period_consumes_exactly_the_budget(
    target: float, thousands: int, hours: int
) -> None:
    per_minute = 1000 * thousands
    bad = round(per_minute * (100 - target) / 100)
    minutes = 60 * hours
    counts = minute_counts("api", range(minutes), per_minute, {m: bad for m in range(minutes)})
    definition = slo_definitions(target_value=target, measurement_window_hours=hours)
    row = slo_status.evaluate_at(counts, definition, T0 + minutes * MIN).slos.iloc[0]
    assert row["burn_rate"] == 1.0
    assert row["error_budget_remaining"] == 0.0
    assert row["budget_consumed"] == pytest.approx(row["budget_total"])
    assert row["compliance_status"] == "at_risk"  # spent, not overspent


def test_coverage_puts_critical_services_without_slo_first() -> None:
    seen = pd.DataFrame({"service_name": ["api", "cache", "db"], "spans": [10, 5, 7]})
    slos = pd.concat(
        [slo_definitions(service_name="api"), slo_definitions(service_name="db", enabled=False)],
        ignore_index=True,
    )
    out = slo_status.coverage(seen, slos, critical=["db", "auth"])
    assert out["service_name"].tolist() == ["auth", "db", "cache", "api"]
    assert out["covered"].tolist() == [False, False, False, True]
    assert out.loc[out["service_name"] == "auth", "spans"].item() == 0  # critical, never seen


def test_critical_services_come_from_the_environment(monkeypatch) -> None:
    monkeypatch.delenv(config.ENV_CRITICAL_SERVICES, raising=False)
    assert config.critical_services() == config.DEFAULT_CRITICAL_SERVICES
    monkeypatch.setenv(config.ENV_CRITICAL_SERVICES, " billing, api ,billing,")
    assert config.critical_services() == ("billing", "api")
    monkeypatch.setenv(config.ENV_CRITICAL_SERVICES, "")
    assert config.critical_services() == ()


def test_contributors_rank_operations_by_bad_events_of_the_slo_type() -> None:
    ops = pd.DataFrame(
        {
            "service_name": ["api", "api", "api", "db"],
            "operation_name": ["GET /a", "GET /b", "GET /c", "query"],
            "total": [100, 50, 10, 1000],
            "ok": [90, 45, 10, 0],
            "fast": [100, 20, 10, 0],
        }
    )
    availability = slo_status.contributors(ops, slo_definitions().iloc[0].to_dict())
    assert availability["operation_name"].tolist() == ["GET /a", "GET /b"]
    assert availability["share"].tolist() == pytest.approx([200 / 3, 100 / 3])
    latency = slo_status.contributors(ops, slo_definitions(slo_type="latency").iloc[0].to_dict())
    assert latency["operation_name"].tolist() == ["GET /b"]
    assert latency["bad_percent"].tolist() == [60.0]
