"""obslib.slo.replay for the SLO review: how long each rule fired, the incident a page caught
that matters most, and which incidents are worth a row."""

from __future__ import annotations

import pandas as pd
import pytest

from obslib.slo import replay as slo_replay
from tests.builders import MIN, T0

H = pd.Timedelta(hours=1)
END = T0 + 24 * H
RULES = pd.DataFrame(
    {
        "service_name": "api",
        "slo_name": "availability",
        "severity": ["page", "page", "ticket"],
        "long_window": [H, 6 * H, 24 * H],
        "applies": True,
    },
    index=[10, 11, 12],  # as in a review's rules: not 0..N
)


def _replay(firings: list[tuple[pd.Timedelta, int, int | None]]) -> slo_replay.Replay:
    """(long_window, start minute, end minute or None: still firing) firings of api's rules."""
    rule = RULES.set_index("long_window")
    frame = pd.DataFrame(
        {
            "service_name": "api",
            "slo_name": "availability",
            "severity": [rule.loc[w, "severity"] for w, _, _ in firings],
            "long_window": [w for w, _, _ in firings],
            "start": [T0 + a * MIN for _, a, _ in firings],
            "end": [pd.NaT if b is None else T0 + b * MIN for _, _, b in firings],
        }
    )
    frame["start"] = pd.to_datetime(frame["start"], utc=True)
    frame["end"] = pd.to_datetime(frame["end"], utc=True)
    return slo_replay.Replay(T0, END, 10, RULES, frame, pd.DataFrame())


@pytest.mark.parametrize(
    ("firings", "minutes"),
    [
        ([(H, 0, 10), (H, 30, 35)], [15, 0, 0]),
        ([(H, 0, 10), (6 * H, 5, 65), (24 * H, 60, 120)], [10, 60, 60]),
        ([(6 * H, 24 * 60 - 30, None)], [0, 30, 0]),
        ([], [0, 0, 0]),
    ],
    ids=[
        "a rule's firings add up",
        "each rule counts only its own firings",
        "a firing still on at the end counts up to the end",
        "rules that never fired fired for no time",
    ],
)
def test_the_firing_time_of_each_rule(firings, minutes) -> None:
    spent = _replay(firings).firing_time
    assert spent.index.tolist() == RULES.index.tolist()
    assert spent.tolist() == [m * MIN for m in minutes]


def _incidents(*rows: tuple[str, str, int, bool, bool]) -> pd.DataFrame:
    """(incident_id, severity, triggered minute, caught, caught_by_page) rows."""
    return pd.DataFrame(
        {
            "incident_id": [r[0] for r in rows],
            "service_name": "api",
            "severity": [r[1] for r in rows],
            "triggered_at": pd.to_datetime([T0 + r[2] * MIN for r in rows], utc=True),
            "caught": [r[3] for r in rows],
            "caught_by_page": [r[4] for r in rows],
        }
    )


@pytest.mark.parametrize(
    ("rows", "worst"),
    [
        ([("A", "high", 5, True, True), ("B", "critical", 50, True, True)], "B"),
        ([("A", "critical", 50, True, True), ("B", "critical", 5, True, True)], "B"),
        ([("A", "critical", 5, True, False), ("B", "low", 50, True, True)], "B"),
        ([("A", "critical", 5, True, False), ("B", "high", 9, False, False)], None),
    ],
    ids=[
        "the most severe incident a page caught comes first",
        "of equally severe ones the earliest",
        "an incident only a ticket caught is not a page's catch",
        "no page caught anything",
    ],
)
def test_the_worst_incident_a_page_caught(rows, worst) -> None:
    caught = slo_replay.worst_page_catch(_incidents(*rows))
    assert (None if caught is None else caught["incident_id"]) == worst


@pytest.mark.parametrize(
    ("rows", "listed", "quiet"),
    [
        (
            [
                ("A", "low", 1, False, False),
                ("B", "high", 2, False, False),
                ("C", "medium", 3, True, True),
                ("D", "low", 4, True, False),
            ],
            ["C", "D", "B"],
            ["A"],
        ),
        ([("A", "critical", 9, True, True), ("B", "critical", 1, True, False)], ["B", "A"], []),
        ([("A", "low", 1, False, False)], [], ["A"]),
    ],
    ids=[
        "caught incidents first, uncaught low-severity ones counted not listed",
        "caught incidents in the order they were triggered",
        "only quiet incidents list nothing",
    ],
)
def test_incidents_worth_a_row_are_listed_caught_first(rows, listed, quiet) -> None:
    shown, left_out = slo_replay.notable_incidents(_incidents(*rows))
    assert shown["incident_id"].tolist() == listed
    assert left_out["incident_id"].tolist() == quiet
    assert shown.index.tolist() == list(range(len(listed)))
