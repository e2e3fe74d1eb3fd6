"""SLO evaluation at an instant, the multiwindow burn-rate rules and their replay on history.

Exact values from hand-built per-minute counts (numbers chosen so the expected burn rates
are exact); hypothesis for the budget arithmetic.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obslib import config, slo
from obslib.errors import InputError
from obslib.slo import replay as slo_replay
from obslib.slo import status as slo_status

T0 = pd.Timestamp("2026-11-01 00:00", tz="UTC")
MIN = pd.Timedelta(minutes=1)


def _minutes(service: str, rows: dict[int, tuple[int, int]] | list[tuple[int, int]], *, fast=None):
    """Per-minute counts from T0: ``{minute: (total, ok)}`` (or a list from minute 0);
    ``fast`` equal to ``ok`` unless given."""
    items = rows.items() if isinstance(rows, dict) else enumerate(rows)
    items = list(items)
    return pd.DataFrame(
        {
            "service_name": service,
            "bucket": [T0 + m * MIN for m, _ in items],
            "total": [r[0] for _, r in items],
            "ok": [r[1] for _, r in items],
            "fast": [r[1] if fast is None else fast for _, r in items],
            "threshold": np.nan,
        }
    )


def _steady(service: str, minutes: int, per_minute: int, bad: dict[int, int] | None = None):
    """``per_minute`` events each minute, ``bad[m]`` of them failing in minute ``m``."""
    bad = bad or {}
    return _minutes(service, [(per_minute, per_minute - bad.get(m, 0)) for m in range(minutes)])


def _slo(**overrides) -> pd.DataFrame:
    row = {
        "service_name": "api",
        "slo_name": "availability",
        "slo_type": "availability",
        "target_value": 99.9,
        "measurement_window_hours": 720,
        "latency_threshold_ms": np.nan,
        "alert_threshold_percent": 90.0,
        "enabled": True,
    }
    row.update(overrides)
    return pd.DataFrame([row])


def _rule(evaluation: slo_status.Evaluation, long_window: str) -> dict:
    rules = evaluation.rules
    return rules[rules["long_window"] == pd.Timedelta(long_window)].iloc[0].to_dict()


# -- the rules table ------------------------------------------------------------------------


def test_30_day_slo_at_99_9_pages_at_14_4x_over_1h_and_5m() -> None:
    """125 events a minute for an hour (7,500); 108 bad in the last minute is a burn of
    exactly 14.4 over the hour, which does not exceed 14.4; 109 bad does."""
    at = T0 + 60 * MIN
    at_factor = slo_status.evaluate_at(_steady("api", 60, 125, {59: 108}), _slo(), at)
    over = slo_status.evaluate_at(_steady("api", 60, 125, {59: 109}), _slo(), at)
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
    counts = _steady("api", 60, 125, {30: 120})
    rule = _rule(slo_status.evaluate_at(counts, _slo(), T0 + 60 * MIN), "1h")
    assert rule["long_burn"] > 14.4 and rule["short_burn"] == 0.0
    assert not rule["firing"]


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
    rules = slo.alert_rules(_slo(measurement_window_hours=hours))
    got = [r["burn_rate"] if r["applies"] else None for r in rules.to_dict("records")]
    assert got == pytest.approx(factors)


def test_a_rule_longer_than_the_period_does_not_apply_and_says_why() -> None:
    rules = slo.alert_rules(_slo(measurement_window_hours=24))
    skipped = rules[~rules["applies"]]
    assert skipped["long_window"].tolist() == [pd.Timedelta(days=3)]
    assert skipped["reason"].tolist() == ["the long window is longer than the 1d period"]


def test_a_throughput_slo_has_no_budget_and_no_rules() -> None:
    rules = slo.alert_rules(_slo(slo_type="throughput", target_value=1.0))
    assert not rules["applies"].any()
    assert set(rules["reason"]) == {"a throughput SLO has no error budget"}


def test_the_minimum_traffic_guard_holds_back_a_rule_below_n_events() -> None:
    """9 events in the hour, all failing: a burn of 1000, but under 10 events: quiet. With
    10 (or a guard of 9) it fires."""
    nine = _minutes("api", {59: (9, 0)})
    ten = _minutes("api", {59: (10, 0)})
    at = T0 + 60 * MIN
    assert slo_status.evaluate_at(nine, _slo(), at).slos.iloc[0]["firing"] == ""
    assert slo_status.evaluate_at(ten, _slo(), at).slos.iloc[0]["firing"] == "page"
    assert slo_status.evaluate_at(nine, _slo(), at, min_events=9).slos.iloc[0]["firing"] == "page"


# -- one SLO at an instant --------------------------------------------------------------------


def test_evaluation_states_budget_total_consumed_remaining_and_exhaustion() -> None:
    """A 24 h SLO at 99 % (budget 1 %): 100 events a minute for a day, 2 bad a minute in the
    last hour. 120 bad of 144,000 allowed 1,440: 8.33 % consumed; the last hour burns at 2x,
    so the 91.67 % left lasts 91.67 % x 24 h / 2 = 11 h."""
    counts = _steady("api", 1440, 100, {m: 2 for m in range(1380, 1440)})
    definition = _slo(target_value=99.0, measurement_window_hours=24)
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
    # a 1-day period scales the 1h/5m page down to 0.48x: a 2x burn pages
    assert row["firing"] == "page" and row["should_alert"]


def test_the_window_ends_at_the_instant_and_excludes_its_minute() -> None:
    """Events of the minute starting at ``at`` belong to the next evaluation."""
    counts = _minutes("api", {0: (10, 10), 60: (10, 0)})
    row = slo_status.evaluate_at(counts, _slo(measurement_window_hours=1), T0 + 60 * MIN).slos.iloc[
        0
    ]
    assert (row["events"], row["bad_events"]) == (10, 0)


def test_zero_traffic_is_no_data_without_a_division_by_zero() -> None:
    empty = _minutes("other", {0: (10, 10)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        row = slo_status.evaluate_at(empty, _slo(), T0 + 60 * MIN).slos.iloc[0]
    assert row["compliance_status"] == slo.NO_DATA
    assert np.isnan(row["sli"]) and row["events"] == 0
    assert row["burn_rate"] == 0.0 and pd.isna(row["projected_exhaustion"])
    assert np.isnan(row["error_budget_remaining"])  # not "100 % left": nothing was measured
    assert not row["should_alert"]


def test_a_100_percent_target_has_no_budget_one_failure_overspends_it() -> None:
    definition = _slo(target_value=100.0)
    at = T0 + 10 * MIN
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clean = slo_status.evaluate_at(_steady("api", 10, 50), definition, at).slos.iloc[0]
        one_bad = slo_status.evaluate_at(_steady("api", 10, 50, {3: 1}), definition, at).slos.iloc[
            0
        ]
    assert clean["compliance_status"] == "compliant" and clean["error_budget_remaining"] == 100
    assert one_bad["compliance_status"] == "violated"
    assert one_bad["error_budget_remaining"] == -np.inf and one_bad["burn_rate"] == np.inf


def test_a_latency_slo_without_threshold_is_a_clear_error() -> None:
    with pytest.raises(InputError, match=r"api/p99: a latency SLO needs latency_threshold_ms"):
        slo_status.evaluate_at(
            _steady("api", 5, 10), _slo(slo_name="p99", slo_type="latency"), T0 + 5 * MIN
        )


def test_an_error_rate_slo_states_errors_and_its_target_is_the_most_allowed() -> None:
    """Target 1 (% errors at most); 2 % errors over the window: violated, SLI 2, budget 1 %."""
    counts = _steady("api", 60, 100, {m: 2 for m in range(60)})
    row = slo_status.evaluate_at(
        counts, _slo(slo_type="error_rate", target_value=1.0, measurement_window_hours=1),
        T0 + 60 * MIN,
    ).slos.iloc[0]  # fmt: skip
    assert row["sli"] == pytest.approx(2.0)
    assert row["budget_total"] == pytest.approx(60.0)  # 1 % of 6,000
    assert row["burn_rate"] == pytest.approx(2.0)
    assert row["compliance_status"] == "violated"


def test_a_latency_slo_counts_slow_spans_as_bad() -> None:
    counts = _minutes("api", [(100, 100)] * 60, fast=97).assign(threshold=250.0)
    definition = _slo(
        slo_name="p97", slo_type="latency", target_value=99.0, latency_threshold_ms=250.0,
        measurement_window_hours=1,
    )  # fmt: skip
    row = slo_status.evaluate_at(counts, definition, T0 + 60 * MIN).slos.iloc[0]
    assert (row["bad_events"], row["sli"], row["compliance_status"]) == (180, 97.0, "violated")


@pytest.mark.parametrize(("target", "status"), [(2.0, "violated"), (1.0, "compliant")])
def test_a_throughput_slo_compares_events_per_second_with_its_target(target, status) -> None:
    """60 events a minute is 1 per second."""
    definition = _slo(slo_type="throughput", target_value=target, measurement_window_hours=1)
    row = slo_status.evaluate_at(_steady("api", 60, 60), definition, T0 + 60 * MIN).slos.iloc[0]
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
    counts = _steady("api", minutes, per_minute, {m: bad for m in range(minutes)})
    definition = _slo(target_value=target, measurement_window_hours=hours)
    row = slo_status.evaluate_at(counts, definition, T0 + minutes * MIN).slos.iloc[0]
    assert row["burn_rate"] == 1.0
    assert row["error_budget_remaining"] == 0.0
    assert row["budget_consumed"] == pytest.approx(row["budget_total"])
    assert row["compliance_status"] == "at_risk"  # spent, not overspent


# -- the replay -------------------------------------------------------------------------------


def _incidents(rows: list[tuple[str, str, pd.Timestamp, pd.Timestamp | None]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "incident_id": [r[0] for r in rows],
            "service_name": [r[1] for r in rows],
            "severity": "critical",
            "triggered_at": pd.to_datetime([r[2] for r in rows], utc=True),
            "resolved_at": pd.to_datetime([r[3] for r in rows], utc=True),
        }
    )


BAD_START = 3 * 24 * 60  # minute offset of the bad stretch: three clean days before it


def _replayed(incidents: pd.DataFrame | None = None, min_events: int = 10) -> slo_replay.Replay:
    """100 events a minute for 4 days; minutes BAD_START..+9 half failing."""
    bad = {BAD_START + i: 50 for i in range(10)}
    counts = _steady("api", 4 * 24 * 60, 100, bad)
    start = T0 + pd.Timedelta(days=3)
    return slo_replay.replay(
        counts,
        _slo(),
        incidents if incidents is not None else _incidents([]),
        start,
        T0 + pd.Timedelta(days=4),
        min_events=min_events,
    )


def test_the_replay_finds_each_firing_interval_with_its_first_bad_minute() -> None:
    """Half of 100 failing: the 5m window burns at 100 at once; the 1h window passes 14.4
    after the second bad minute (100 of 6,000 = 16.7x). The page stops when the 5m window
    holds no bad minute: 5 minutes after the last."""
    page = _replayed().firings
    page = page[(page["severity"] == "page") & (page["long_window"] == pd.Timedelta("1h"))]
    bad_start = T0 + BAD_START * MIN
    assert len(page) == 1
    row = page.iloc[0]
    assert row["start"] == bad_start + 2 * MIN
    assert row["end"] == bad_start + 15 * MIN
    assert row["first_bad_minute"] == bad_start
    assert row["delay_from_first_bad"] == 2 * MIN
    assert row["peak_burn"] == pytest.approx(500 / 6000 / 0.001)


def test_the_first_bad_minute_is_where_the_errors_began_not_the_short_window_before_firing():
    """10 % errors from minute BAD_START: the 1h window passes 14.4x after 9 minutes
    (90 bad of 6,000 = 15x), so the page fires 9 minutes in; its first bad minute is the
    first failing minute, not the one 5 minutes (the short window) before the firing."""
    bad = {BAD_START + i: 10 for i in range(30)}
    counts = _steady("api", 4 * 24 * 60, 100, bad)
    replayed = slo_replay.replay(
        counts, _slo(), _incidents([]), T0 + pd.Timedelta(days=3), T0 + pd.Timedelta(days=4)
    )
    page = replayed.firings[replayed.firings["long_window"] == pd.Timedelta("1h")].iloc[0]
    bad_start = T0 + BAD_START * MIN
    assert page["start"] == bad_start + 9 * MIN
    assert page["first_bad_minute"] == bad_start
    assert page["delay_from_first_bad"] == 9 * MIN


def test_a_budget_lasting_beyond_the_horizon_is_not_burning_not_an_overflow() -> None:
    """One failure in 432 million events: the budget would last millennia at that rate."""
    counts = _minutes("api", {m: (10_000_000, 10_000_000) for m in range(0, 43200, 720)})
    counts = pd.concat([counts, _minutes("api", {43199: (10_000_000, 9_999_999)})])
    row = slo_status.evaluate_at(counts, _slo(target_value=90.0), T0 + 43200 * MIN).slos.iloc[0]
    assert row["recent_burn_rate"] > 0 and pd.isna(row["projected_exhaustion"])


def test_no_slo_at_all_evaluates_to_an_empty_typed_frame() -> None:
    none = _slo().iloc[:0]
    out = slo_status.evaluate_at(_steady("api", 5, 10), none, T0 + 5 * MIN).slos
    assert (
        out.empty
        and out["window"].dtype.kind == "m"
        and isinstance(out["at"].dtype, pd.DatetimeTZDtype)
    )


def test_the_replay_sets_each_page_beside_the_incident_it_would_have_caught() -> None:
    """The page people got came 5 minutes after the errors began: the rule would have
    fired 3 minutes earlier. Another service's incident, and one more than an hour after
    the firing ended, are not caught."""
    bad_start = T0 + BAD_START * MIN
    incidents = _incidents(
        [
            ("INC-1", "api", bad_start + 5 * MIN, bad_start + 40 * MIN),
            ("INC-2", "db", bad_start + 5 * MIN, None),
            ("INC-3", "api", bad_start + 3 * pd.Timedelta(hours=3), None),
        ]
    )
    replayed = _replayed(incidents)
    got = replayed.incidents.set_index("incident_id")
    assert got.loc["INC-1", "caught_by_page"]
    assert got.loc["INC-1", "replay_start"] == bad_start + 2 * MIN
    assert got.loc["INC-1", "delay_vs_incident"] == -3 * MIN
    assert not got.loc["INC-3", "caught"]
    assert "INC-2" not in got.index  # db has no SLO
    first_page = replayed.pages.iloc[0]
    assert first_page["incident_id"] == "INC-1"


def test_an_incident_triggered_within_the_tolerance_after_a_firing_is_caught() -> None:
    """A page 59 minutes after the last firing ended still matches; 61 minutes does not."""
    ended = _replayed().firings["end"].max()
    assert ended == T0 + (BAD_START + 10) * MIN + pd.Timedelta(hours=6)  # the 3d/6h ticket
    within = _incidents([("IN", "api", ended + 59 * MIN, None)])
    beyond = _incidents([("OUT", "api", ended + 61 * MIN, None)])
    assert _replayed(within).incidents.iloc[0]["caught"]
    assert not _replayed(beyond).incidents.iloc[0]["caught"]


@pytest.mark.parametrize(
    ("spike", "severity", "fired_at"),
    [(True, "page", BAD_START + 62), (False, "ticket", BAD_START + 1)],
    ids=[
        "a page and an earlier ticket both match: the page is reported",
        "a ticket alone matches: the ticket is reported, not caught by a page",
    ],
)
def test_an_incident_caught_by_a_page_and_an_earlier_ticket_reports_the_page(
    spike: bool, severity: str, fired_at: int
) -> None:
    """2 of 1,000 failing every minute burn a 99.9 % budget at 2x: the 3d/6h ticket (1x)
    fires from the replay's first minute. Half failing for 10 minutes from BAD_START + 60
    then pages (14.4x over 1h after 2 minutes). The incident paged at BAD_START + 65
    matches both; what the replay reports for it is the page, the earliest one."""
    bad = {m: 2 for m in range(4 * 24 * 60)}
    if spike:
        bad.update({BAD_START + 60 + i: 500 for i in range(10)})
    counts = _steady("api", 4 * 24 * 60, 1000, bad)
    paged = T0 + (BAD_START + 65) * MIN
    incidents = _incidents([("INC-1", "api", paged, paged + 35 * MIN)])
    start = T0 + BAD_START * MIN
    replayed = slo_replay.replay(counts, _slo(), incidents, start, T0 + pd.Timedelta(days=4))
    tickets = replayed.firings[replayed.firings["severity"] == "ticket"]
    assert tickets["start"].min() == start + MIN  # the ticket fired first, and matches too
    assert (tickets["incident_id"] == "INC-1").any()
    got = replayed.incidents.set_index("incident_id").loc["INC-1"]
    assert got["caught"] and got["caught_by_page"] == spike
    assert got["replay_severity"] == severity
    assert got["replay_start"] == T0 + fired_at * MIN
    assert got["delay_vs_incident"] == T0 + fired_at * MIN - paged


def test_the_replay_counts_firings_the_traffic_guard_held_back() -> None:
    """With a guard above the hour's 6,000 events the 1h page never fires, and the replay
    says it would have."""
    rules = _replayed(min_events=10_000).rules
    page = rules[rules["long_window"] == pd.Timedelta("1h")].iloc[0]
    assert (page["firings"], page["held_back"]) == (0, 1)


# -- coverage and contributors ------------------------------------------------------------------


def test_coverage_puts_critical_services_without_slo_first() -> None:
    seen = pd.DataFrame({"service_name": ["api", "cache", "db"], "spans": [10, 5, 7]})
    slos = pd.concat(
        [_slo(service_name="api"), _slo(service_name="db", enabled=False)], ignore_index=True
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
    availability = slo_status.contributors(ops, _slo().iloc[0].to_dict())
    assert availability["operation_name"].tolist() == ["GET /a", "GET /b"]
    assert availability["share"].tolist() == pytest.approx([200 / 3, 100 / 3])
    latency = slo_status.contributors(ops, _slo(slo_type="latency").iloc[0].to_dict())
    assert latency["operation_name"].tolist() == ["GET /b"]
    assert latency["bad_percent"].tolist() == [60.0]
