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


PAGE = T0 + 10 * 60 * MIN  # the page of the catch table's incident
FIRST_BAD = PAGE - 20 * MIN  # its first bad minute
RESOLVED = PAGE + 30 * MIN


def _firing(start: pd.Timestamp, severity: str = "page", end=None) -> dict:
    return {
        "service_name": "api",
        "slo_name": "availability",
        "severity": severity,
        "start": start,
        "end": end,
        "first_bad_minute": start,
    }


CATCHES = {
    "a firing beginning at the first bad minute catches it, 20 minutes before the page": (
        [_firing(FIRST_BAD)], True, FIRST_BAD, -20 * MIN,
    ),
    "a firing that began before the first bad minute does not catch it": (
        [_firing(FIRST_BAD - MIN, end=RESOLVED + MIN)], True, None, None,
    ),
    "a ticket open since long before catches nothing new": (
        [_firing(PAGE - pd.Timedelta(days=2), "ticket")], True, None, None,
    ),
    "a firing beginning at exactly the resolution does not catch": (
        [_firing(RESOLVED)], True, None, None,
    ),
    "a firing beginning a minute before the resolution catches, 29 minutes late": (
        [_firing(RESOLVED - MIN)], True, RESOLVED - MIN, 29 * MIN,
    ),
    "an event at exactly the page instant is inside the window": (
        [_firing(PAGE)], False, PAGE, pd.Timedelta(0),
    ),
    "without a first bad minute the window opens 15 minutes before the page": (
        [_firing(PAGE - 15 * MIN)], False, PAGE - 15 * MIN, -15 * MIN,
    ),
    "without a first bad minute a firing 16 minutes before the page does not catch": (
        [_firing(PAGE - 16 * MIN)], False, None, None,
    ),
    "a page and an earlier ticket both catch: the page is the catch": (
        [_firing(PAGE - 5 * MIN, "ticket"), _firing(PAGE + 2 * MIN)], True, PAGE + 2 * MIN,
        2 * MIN,
    ),
    "another service's firing does not catch": (
        [{**_firing(PAGE), "service_name": "db"}], True, None, None,
    ),
}  # fmt: skip


@pytest.mark.parametrize(
    ("firings", "first_bad", "caught_at", "lead"), CATCHES.values(), ids=CATCHES.keys()
)
def test_a_rule_catches_an_incident_when_a_firing_begins_inside_it(
    firings, first_bad, caught_at, lead
) -> None:
    """The incident's window is [first bad minute (or page - 15 min), resolution)."""
    incident = _incidents([("INC-1", "api", PAGE, RESOLVED)])
    if first_bad:
        incident = incident.assign(first_bad_minute=FIRST_BAD)
    frame = pd.DataFrame(firings)
    frame["end"] = pd.to_datetime(frame["end"], utc=True)
    marked, got = slo_replay.catch(frame, incident, PAGE + pd.Timedelta(days=1))
    row = got.iloc[0]
    assert bool(row["caught"]) == (caught_at is not None)
    if caught_at is not None:
        assert row["replay_start"] == caught_at and row["delay_vs_incident"] == lead
        assert (marked["incident_id"] == "INC-1").sum() >= 1
    else:
        assert marked["incident_id"].isna().all()


def test_an_open_incident_is_caught_by_a_firing_up_to_the_end_of_the_data() -> None:
    incident = _incidents([("INC-1", "api", PAGE, None)])
    end = PAGE + pd.Timedelta(hours=2)
    for start, caught in ((end - MIN, True), (end, False)):
        frame = pd.DataFrame([_firing(start)])
        _, got = slo_replay.catch(frame, incident, end)
        assert bool(got.iloc[0]["caught"]) == caught, start


def test_a_ticket_open_since_before_the_incident_does_not_catch_it_a_new_page_does() -> None:
    """2 of 1,000 failing every minute burn a 99.9 % budget at 2x: the 3d/6h ticket (1x)
    fires from the replay's first minute, long before the incident. Half failing for 10
    minutes from BAD_START + 60 then pages (14.4x over 1h after 2 minutes), inside the
    incident's window (paged at BAD_START + 65): the page catches it, the ticket does not."""
    bad = {m: 2 for m in range(4 * 24 * 60)}
    bad.update({BAD_START + 60 + i: 500 for i in range(10)})
    counts = minute_counts("api", range(4 * 24 * 60), 1000, bad)
    paged = T0 + (BAD_START + 65) * MIN
    incidents = _incidents([("INC-1", "api", paged, paged + 35 * MIN)])
    start = T0 + BAD_START * MIN
    replayed = slo_replay.replay(
        counts, slo_definitions(), incidents, start, T0 + pd.Timedelta(days=4)
    )
    tickets = replayed.firings[replayed.firings["severity"] == "ticket"]
    open_since = tickets[tickets["start"] == start + MIN]
    assert len(open_since) == 1 and open_since["incident_id"].isna().all()
    got = replayed.incidents.set_index("incident_id").loc["INC-1"]
    assert got["caught"] and got["caught_by_page"]
    assert got["replay_start"] == T0 + (BAD_START + 62) * MIN
    assert got["delay_vs_incident"] == -3 * MIN


def test_breaches_are_the_firing_intervals_overlapping_a_half_open_window() -> None:
    """The 1h page fires [bad + 2 min, bad + 15 min): a window ending at its start does
    not overlap it, one reaching a minute past it does; likewise at its end."""
    replayed = _replayed()
    bad = T0 + BAD_START * MIN
    found = slo_replay.breaches(replayed, "api", bad, bad + 3 * MIN)
    assert list(found.columns) == list(slo_replay.BREACH_COLUMNS)
    page = found[found["long_window"] == pd.Timedelta("1h")].iloc[0]
    assert page["start"] == bad + 2 * MIN and page["end"] == bad + 15 * MIN
    assert slo_replay.breaches(replayed, "api", bad, bad + 2 * MIN).empty
    assert slo_replay.breaches(replayed, "db").empty
    everything = slo_replay.breaches(replayed)
    assert len(everything) == len(replayed.firings)
    ended = everything["end"].max()
    assert slo_replay.breaches(replayed, "api", ended, ended + MIN).empty
    assert len(slo_replay.breaches(replayed, "api", ended - MIN, ended + MIN)) == 1


def test_a_quiet_service_is_judged_on_its_last_min_events_events_not_never() -> None:
    """2 events a minute can never put 10 in a 5-minute short window: the short window is
    read on the guard ladder's next rung, 10 minutes (20 events). Half failing from
    BAD_START for 30 minutes: the 1h page fires (both windows over 14.4x, the hour holding
    120 events), its first bad minute the first failing one."""
    bad = {BAD_START + i: 1 for i in range(30)}
    counts = minute_counts("api", range(4 * 24 * 60), 2, bad)
    replayed = slo_replay.replay(
        counts, slo_definitions(), _incidents([]), T0 + pd.Timedelta(days=3),
        T0 + pd.Timedelta(days=4),
    )  # fmt: skip
    page = replayed.firings[replayed.firings["long_window"] == pd.Timedelta("1h")]
    assert len(page) == 1
    assert page.iloc[0]["first_bad_minute"] == T0 + BAD_START * MIN


def test_a_service_whose_long_window_holds_too_few_events_never_fires() -> None:
    """One event every 10 minutes, all failing: 6 in the hour, under the 10-event guard."""
    every_ten = range(0, 4 * 24 * 60, 10)
    counts = minute_counts("api", every_ten, 1, dict.fromkeys(every_ten, 1))
    replayed = slo_replay.replay(
        counts, slo_definitions(), _incidents([]), T0 + pd.Timedelta(days=3),
        T0 + pd.Timedelta(days=4),
    )  # fmt: skip
    page = replayed.rules[replayed.rules["long_window"] == pd.Timedelta("1h")].iloc[0]
    assert page["firings"] == 0 and page["held_back"] == 1


def test_the_replay_counts_firings_the_traffic_guard_held_back() -> None:
    """With a guard above the hour's 6,000 events the 1h page never fires, and the replay
    says it would have."""
    rules = _replayed(min_events=10_000).rules
    page = rules[rules["long_window"] == pd.Timedelta("1h")].iloc[0]
    assert (page["firings"], page["held_back"]) == (0, 1)


def test_review_rows_hold_the_end_state_and_the_whole_window() -> None:
    """The 4-day stream of ``_replayed``: compliant-looking at the end of day 4 is not the
    whole story; the row also says it breached once in the window, its worst budget left and
    that the data (from T0) covers 4 of its 30 days."""
    from obslib import slo

    bad = {BAD_START + i: 50 for i in range(10)}
    counts = minute_counts("api", range(4 * 24 * 60), 100, bad)
    checked = slo.objectives(slo_definitions())
    end = T0 + pd.Timedelta(days=4)
    replayed = _replayed()
    evaluated = slo_status.evaluate_at(counts, checked, end)
    rows = slo_replay.review_rows(evaluated, checked, slo.hourly_counts(counts), replayed, T0)
    row = rows.iloc[0]
    assert row["slo"] == "api/availability" and row["breaches"] == 1
    assert row["intervals"][0][0] == replayed.firings["start"].min()
    assert row["covered"] == pytest.approx(4 / 30)
    assert row["worst_budget"] <= row["error_budget_remaining"]
