"""obslib.slo.replay: the burn-rate rules replayed over history, beside the incidents."""

from __future__ import annotations

import pandas as pd
import pytest

from obslib.slo import replay as slo_replay
from obslib.slo import status as slo_status
from tests.builders import MIN, T0, incidents, minute_counts, slo_definitions


def _incidents(rows: list[tuple[str, str, pd.Timestamp, pd.Timestamp | None]]) -> pd.DataFrame:
    """(id, service, triggered, resolved) rows as critical incidents."""
    return incidents(
        *({"incident_id": i, "service_name": s, "triggered_at": t, "resolved_at": r}
          for i, s, t, r in rows)
    )  # fmt: skip


BAD_START = 3 * 24 * 60  # minute offset of the bad stretch: three clean days before it


def _replayed(incidents: pd.DataFrame | None = None, min_events: int = 10) -> slo_replay.Replay:
    """100 events a minute for 4 days; minutes BAD_START..+9 half failing."""
    bad = {BAD_START + i: 50 for i in range(10)}
    counts = minute_counts("api", range(4 * 24 * 60), 100, bad)
    start = T0 + pd.Timedelta(days=3)
    return slo_replay.replay(
        counts,
        slo_definitions(),
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
    counts = minute_counts("api", range(4 * 24 * 60), 100, bad)
    replayed = slo_replay.replay(
        counts,
        slo_definitions(),
        _incidents([]),
        T0 + pd.Timedelta(days=3),
        T0 + pd.Timedelta(days=4),
    )
    page = replayed.firings[replayed.firings["long_window"] == pd.Timedelta("1h")].iloc[0]
    bad_start = T0 + BAD_START * MIN
    assert page["start"] == bad_start + 9 * MIN
    assert page["first_bad_minute"] == bad_start
    assert page["delay_from_first_bad"] == 9 * MIN


def test_a_budget_lasting_beyond_the_horizon_is_not_burning_not_an_overflow() -> None:
    """One failure in 432 million events: the budget would last millennia at that rate."""
    counts = minute_counts("api", {m: (10_000_000, 10_000_000) for m in range(0, 43200, 720)})
    counts = pd.concat([counts, minute_counts("api", {43199: (10_000_000, 9_999_999)})])
    row = slo_status.evaluate_at(
        counts, slo_definitions(target_value=90.0), T0 + 43200 * MIN
    ).slos.iloc[0]
    assert row["recent_burn_rate"] > 0 and pd.isna(row["projected_exhaustion"])


def test_no_slo_at_all_evaluates_to_an_empty_typed_frame() -> None:
    none = slo_definitions().iloc[:0]
    out = slo_status.evaluate_at(minute_counts("api", range(5), 10), none, T0 + 5 * MIN).slos
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
    counts = minute_counts("api", range(4 * 24 * 60), 1000, bad)
    paged = T0 + (BAD_START + 65) * MIN
    incidents = _incidents([("INC-1", "api", paged, paged + 35 * MIN)])
    start = T0 + BAD_START * MIN
    replayed = slo_replay.replay(
        counts, slo_definitions(), incidents, start, T0 + pd.Timedelta(days=4)
    )
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
