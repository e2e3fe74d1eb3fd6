"""The alert review of a window, below the health view: which correlation groups to show,
false positives per alert, the pages a route would not have sent, the detection time of
each critical page, and what a review reads for its window (the load plan)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from obslib import alerts
from obslib.alerts import incidents as incident_facts
from obslib.errors import InputError, UsageError
from tests import builders
from tests.builders import MIN, T0

NAT = pd.NaT
SEC = pd.Timedelta(seconds=1)


def _groups(rows: list[tuple]) -> pd.DataFrame:
    """``correlate`` rows: (group, lead, id, alert_name, service, minute triggered)."""
    frame = pd.DataFrame(
        rows,
        columns=["group", "group_lead", "incident_id", "alert_name", "service_name", "at"],
    )
    frame["triggered_at"] = [T0 + m * MIN for m in frame.pop("at")]
    return frame


# -- the correlation-group summary ----------------------------------------------------------

GROUP_CASES = {
    "a group of one alert is not a correlation": (
        [(1, "A", "A", "api errors", "api", 0)],
        {},
        [],
    ),
    "two alerts of one group are one row opened by its lead": (
        [(1, "A", "A", "api errors", "api", 0), (1, "A", "B", "db slow", "db", 3)],
        {},
        [("A", 2, "api errors, db slow", "api, db", 0, 3)],
    ),
    "each name is listed once, sorted, whatever the order of the pages": (
        [
            (1, "A", "A", "web down", "web", 0),
            (1, "A", "B", "api errors", "api", 1),
            (1, "A", "C", "api errors", "api", 2),
        ],
        {},
        [("A", 3, "api errors, web down", "api, web", 0, 2)],
    ),
    "an incident whose alert is gone adds no 'nan' name": (
        [(1, "A", "A", "api errors", "api", 0), (1, "A", "B", np.nan, np.nan, 5)],
        {},
        [("A", 2, "api errors", "api", 0, 5)],
    ),
    "the group is opened by its lead, wherever the lead's row is": (
        [(1, "A", "B", "a", "api", 4), (1, "A", "A", "a", "api", 0)],
        {},
        [("A", 2, "a", "api", 0, 4)],
    ),
    "first and last are the earliest and latest page, not the lead's": (
        [(1, "B", "B", "a", "api", 4), (1, "B", "A", "a", "api", 9), (1, "B", "C", "a", "api", 1)],
        {},
        [("B", 3, "a", "api", 1, 9)],
    ),
    "groups come in the order they opened, singles left out": (
        [
            (2, "C", "C", "c", "db", 20),
            (1, "A", "A", "a", "api", 0),
            (3, "E", "E", "e", "web", 30),
            (2, "C", "D", "d", "db", 21),
            (1, "A", "B", "b", "api", 1),
        ],
        {},
        [("A", 2, "a, b", "api", 0, 1), ("C", 2, "c, d", "db", 20, 21)],
    ),
    "min_alerts=1 shows every group": (
        [(1, "A", "A", "a", "api", 0), (2, "B", "B", "b", "db", 5)],
        {"min_alerts": 1},
        [("A", 1, "a", "api", 0, 0), ("B", 1, "b", "db", 5, 5)],
    ),
}


@pytest.mark.parametrize(("rows", "options", "expected"), GROUP_CASES.values(), ids=GROUP_CASES)
def test_correlated_groups(rows, options, expected) -> None:
    got = alerts.correlated_groups(_groups(rows), **options)
    shown = [
        (r["opened_by"], r["alerts"], r["alert_names"], r["services"], r["first"], r["last"])
        for r in got.to_dict("records")
    ]
    assert shown == [(*e[:4], T0 + e[4] * MIN, T0 + e[5] * MIN) for e in expected]
    assert list(got.index) == list(range(len(got)))  # no group numbers as the index


def test_the_correlated_groups_of_correlate_on_a_stream() -> None:
    """Straight from ``correlate``: api at 10:00 and db (api calls db) at 10:05 are one
    group; web alone at 11:00 is not shown."""
    frame = builders.incidents(
        {"incident_id": "A", "alert_name": "api errors"},
        {"incident_id": "B", "alert_name": "db slow", "service_name": "db",
         "triggered_at": T0 + 5 * MIN},
        {"incident_id": "C", "alert_name": "web down", "service_name": "web",
         "triggered_at": T0 + 60 * MIN},
    )  # fmt: skip
    edges = pd.DataFrame({"caller": ["api"], "callee": ["db"], "calls": [3]})
    got = alerts.correlated_groups(alerts.correlate(frame, edges))
    assert got[["opened_by", "alerts", "services"]].values.tolist() == [["A", 2, "api, db"]]


def test_no_groups_are_an_empty_summary_with_its_columns() -> None:
    got = alerts.correlated_groups(_groups([]))
    assert got.empty
    assert list(got.columns) == ["opened_by", "alerts", "alert_names", "services", "first", "last"]


def test_a_summary_of_fewer_than_one_alert_is_refused() -> None:
    with pytest.raises(InputError, match="min_alerts"):
        alerts.correlated_groups(_groups([]), min_alerts=0)


# -- false positives per alert --------------------------------------------------------------


def _verdicts(rows: list[tuple]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(id, alert_name, service, verdict, minute triggered) -> (verdicts, incidents)."""
    verdicts = pd.DataFrame(
        [r[:4] for r in rows], columns=["incident_id", "alert_name", "service_name", "verdict"]
    )
    incidents = pd.DataFrame(
        {"incident_id": [r[0] for r in rows], "triggered_at": [T0 + r[4] * MIN for r in rows]}
    )
    return verdicts, incidents


FP_CASES = {
    "real and unknown verdicts are not false positives": (
        [("A", "a", "api", "real", 0), ("B", "a", "api", "unknown", 1)],
        [],
    ),
    "an alert's false positives are counted with their first and last page": (
        [
            ("A", "a", "api", "false_positive", 30),
            ("B", "a", "api", "real", 40),
            ("C", "a", "api", "false_positive", 10),
        ],
        [("a", "api", 2, 10, 30)],
    ),
    "the alert with most false positives comes first": (
        [
            ("A", "a", "api", "false_positive", 0),
            ("B", "b", "db", "false_positive", 1),
            ("C", "b", "db", "false_positive", 2),
        ],
        [("b", "db", 2, 1, 2), ("a", "api", 1, 0, 0)],
    ),
    "ties keep the order the alerts first appear": (
        [("A", "z", "web", "false_positive", 0), ("B", "a", "api", "false_positive", 1)],
        [("z", "web", 1, 0, 0), ("a", "api", 1, 1, 1)],
    ),
    "ties keep their order among many alerts": (
        [(f"I{k}", f"a{k:02}", "api", "false_positive", k) for k in range(40)]
        + [("J", "a39", "api", "false_positive", 50)],
        [("a39", "api", 2, 39, 50)] + [(f"a{k:02}", "api", 1, k, k) for k in range(39)],
    ),
    "one alert name on two services is two rows": (
        [("A", "a", "api", "false_positive", 0), ("B", "a", "db", "false_positive", 1)],
        [("a", "api", 1, 0, 0), ("a", "db", 1, 1, 1)],
    ),
}


@pytest.mark.parametrize(("rows", "expected"), FP_CASES.values(), ids=FP_CASES)
def test_false_positives_per_alert(rows, expected) -> None:
    got = alerts.false_positives_per_alert(*_verdicts(rows))
    assert list(got.columns) == list(alerts.FP_PER_ALERT_COLUMNS)
    assert got.values.tolist() == [
        [name, service, n, T0 + first * MIN, T0 + last * MIN]
        for name, service, n, first, last in expected
    ]


def test_false_positives_per_alert_need_the_verdicts_names() -> None:
    verdicts, incidents = _verdicts([("A", "a", "api", "false_positive", 0)])
    with pytest.raises(InputError, match="alert_name"):
        alerts.false_positives_per_alert(verdicts.drop(columns=["alert_name"]), incidents)


# -- the pages a route would not have sent ---------------------------------------------------


def test_unpaged_lists_every_incident_but_the_notified_with_its_name_and_page() -> None:
    """Group by service, a critical alert muting low ones: A opens api's page and B rides
    in it (merged), C is muted by A (inhibited), D resolves before db's first flush
    (silent), E opens db's next page (notified)."""
    frame = builders.incidents(
        {"incident_id": "A", "alert_name": "api errors", "resolved_at": T0 + 60 * MIN},
        {"incident_id": "B", "alert_name": "api latency", "severity": "high",
         "triggered_at": T0 + 10 * SEC, "resolved_at": T0 + 20 * MIN},
        {"incident_id": "C", "alert_name": "api disk", "severity": "low",
         "triggered_at": T0 + 10 * MIN, "resolved_at": T0 + 20 * MIN},
        {"incident_id": "D", "alert_name": "db blip", "service_name": "db", "severity": "high",
         "triggered_at": T0 + 2 * MIN, "resolved_at": T0 + 2 * MIN + 10 * SEC},
        {"incident_id": "E", "alert_name": "db slow", "service_name": "db", "severity": "high",
         "triggered_at": T0 + 30 * MIN, "resolved_at": T0 + 40 * MIN},
    )  # fmt: skip
    route = alerts.Route(group_by=("service",))
    mute = alerts.InhibitRule({"severity": "critical"}, {"severity": "low"}, ("service",))
    got = alerts.unpaged(alerts.replay_notifications(frame, route, (mute,)), frame)
    assert list(got.columns) == list(alerts.UNPAGED_COLUMNS)
    assert got[["incident_id", "alert_name", "fate"]].values.tolist() == [
        ["B", "api latency", "merged"],
        ["D", "db blip", "silent"],
        ["C", "api disk", "inhibited"],
    ]
    assert got["triggered_at"].tolist() == [T0 + 10 * SEC, T0 + 2 * MIN, T0 + 10 * MIN]
    assert got["group"].tolist() == ['{service="api"}', '{service="db"}', '{service="api"}']


def test_a_route_that_pages_everything_leaves_nothing_unpaged() -> None:
    frame = builders.incidents({"incident_id": "A", "resolved_at": T0 + MIN})
    got = alerts.unpaged(alerts.replay_notifications(frame), frame)
    assert got.empty and list(got.columns) == list(alerts.UNPAGED_COLUMNS)


# -- detection times --------------------------------------------------------------------------


def _failing(minutes: list[int], service: str = "api") -> pd.DataFrame:
    """Failing server spans of ``service`` at minute offsets from T0."""
    columns = ["start_time", "service_name", "span_kind", "status"]
    rows = [
        builders.span(f"t{m}", "s", service=service, start=T0 + m * MIN, status="error")
        for m in minutes
    ]
    frame = pd.DataFrame(rows, columns=list(builders.span("t", "s")))[columns]
    frame["start_time"] = pd.to_datetime(frame["start_time"], utc=True)
    return frame


NO_LOGS = pd.DataFrame(
    {
        "timestamp": pd.Series(dtype="datetime64[ns, UTC]"),
        "level": pd.Series(dtype=object),
        "service_name": pd.Series(dtype=object),
        "message": pd.Series(dtype=object),
    }
)
QUIET = builders.minute_counts(minutes=range(-70, 70))  # 100 ok requests a minute
SLOS = builders.slo_definitions(target_value=99.0)


def _outages(frame: pd.DataFrame) -> pd.DataFrame:
    return alerts.outages(frame, None)


def _evidence(**failing: list[int]) -> dict:
    return {iid: (_failing(minutes), NO_LOGS) for iid, minutes in failing.items()}


DETECTION_CASES = {
    "a page 4 minutes after the first failing request took 4 minutes to detect": (
        [{"incident_id": "A", "triggered_at": T0 + 6 * MIN}],
        {"A": [2]},
        [("A", 4 * MIN)],
    ),
    "a page with no bad minute before it has no detection time": (
        [{"incident_id": "A", "triggered_at": T0 + 6 * MIN}],
        {"A": [9]},
        [("A", NAT)],
    ),
    "only critical pages are timed": (
        [
            {"incident_id": "A", "triggered_at": T0 + 6 * MIN},
            {"incident_id": "B", "severity": "high", "triggered_at": T0 + 7 * MIN},
        ],
        {"A": [5]},
        [("A", MIN)],
    ),
    "a page whose alert is gone has no service, so no time and nothing read": (
        [{"incident_id": "A", "service_name": np.nan, "triggered_at": T0 + 6 * MIN}],
        {},
        [("A", NAT)],
    ),
    "outages are listed in the order they open": (
        [
            {"incident_id": "B", "triggered_at": T0 + 30 * MIN},
            {"incident_id": "A", "triggered_at": T0 + 6 * MIN, "resolved_at": T0 + 9 * MIN},
        ],
        {"A": [3], "B": [20]},
        [("A", 3 * MIN), ("B", 10 * MIN)],
    ),
    "a second page of one outage is timed once, from the outage's first page": (
        [
            {"incident_id": "A", "triggered_at": T0 + 6 * MIN},
            {"incident_id": "B", "triggered_at": T0 + 20 * MIN},
        ],
        {"A": [3]},
        [("A", 3 * MIN)],
    ),
    "an outage opened by a less severe page is timed from that page": (
        [
            {"incident_id": "A", "severity": "high", "triggered_at": T0 + 6 * MIN},
            {"incident_id": "B", "triggered_at": T0 + 20 * MIN},
        ],
        {"A": [3]},
        [("A", 3 * MIN)],
    ),
}


@pytest.mark.parametrize(("rows", "failing", "expected"), DETECTION_CASES.values(),
                         ids=DETECTION_CASES)  # fmt: skip
def test_detection_times(rows, failing, expected) -> None:
    frame = builders.incidents(*rows)
    got = alerts.detection_times(
        frame, _outages(frame), _evidence(**failing), QUIET, SLOS, severity="critical"
    )
    assert list(got.columns) == list(alerts.DETECTION_COLUMNS)
    assert str(got["time_to_detect"].dtype).startswith("timedelta64")
    assert [(i, s) for i, s in zip(got["incident_id"], got["severity"], strict=True)] == [
        (i, "critical") for i, _ in expected
    ]
    times = got["time_to_detect"].tolist()
    assert [pd.isna(t) for t in times] == [pd.isna(t) for _, t in expected]
    assert [t for t in times if pd.notna(t)] == [t for _, t in expected if pd.notna(t)]


def test_a_detection_time_counts_an_sli_breach_as_a_bad_minute() -> None:
    """No failing span read, but 50 of minute 2's requests failed (a 99 % SLO's budget
    burns at 10x): paged at +6, detected 4 minutes late."""
    frame = builders.incidents({"incident_id": "A", "triggered_at": T0 + 6 * MIN})
    counts = builders.minute_counts(minutes=range(-70, 70), bad={2: 50})
    got = alerts.detection_times(
        frame, _outages(frame), _evidence(A=[]), counts, SLOS, severity="critical"
    )
    assert got["time_to_detect"].tolist() == [4 * MIN]


def test_a_critical_page_without_its_spans_and_logs_is_an_error_not_a_gap() -> None:
    frame = builders.incidents({"incident_id": "A"})
    with pytest.raises(InputError, match="no spans and logs read for A"):
        alerts.detection_times(frame, _outages(frame), {}, QUIET, SLOS, severity="critical")


# -- what a review of a window reads ---------------------------------------------------------

WINDOW_CASES = {
    "a data end inside a minute ends the window at that minute's start": (
        "14d", T0 + 90 * SEC, T0 + MIN - pd.Timedelta(days=14), T0 + MIN,
    ),
    "a data end on a minute ends the window there": (
        "1h", T0 + 5 * MIN, T0 - 55 * MIN, T0 + 5 * MIN,
    ),
    "a length may be a Timedelta": (
        pd.Timedelta(hours=2), T0, T0 - 2 * 60 * MIN, T0,
    ),
}  # fmt: skip


@pytest.mark.parametrize(("length", "data_end", "start", "end"), WINDOW_CASES.values(),
                         ids=WINDOW_CASES)  # fmt: skip
def test_review_window(length, data_end, start, end) -> None:
    assert alerts.review_window(length, data_end) == (start, end)


@pytest.mark.parametrize("length", ["0h", "-1d", "soon"])
def test_a_review_window_of_no_length_is_refused_by_name(length) -> None:
    with pytest.raises(UsageError, match="window"):
        alerts.review_window(length, T0)


START, END = T0, T0 + 24 * 60 * MIN
LOOKBACK = incident_facts.LOOKBACK

COUNTS_END_CASES = {
    "no incident: the counts end with the window": ([], END),
    "resolutions inside the window: the counts end with the window": (
        [{"incident_id": "A", "resolved_at": END - MIN}],
        END,
    ),
    "a resolution after the window: the counts reach it": (
        [
            {"incident_id": "A", "resolved_at": END + 90 * MIN},
            {"incident_id": "B", "resolved_at": END + 30 * MIN},
        ],
        END + 90 * MIN,
    ),
    "open incidents only: the counts end with the window": ([{"incident_id": "A"}], END),
}


@pytest.mark.parametrize(("rows", "counts_end"), COUNTS_END_CASES.values(), ids=COUNTS_END_CASES)
def test_the_counts_a_review_reads(rows, counts_end) -> None:
    """From the false-positive margin plus the timeline's lookback before the window."""
    frame = builders.incidents(*rows)
    reads = alerts.review_reads(START, END, frame, _outages(frame), severity="critical")
    assert reads.counts_start == START - alerts.FP_MARGIN - LOOKBACK
    assert reads.counts_end == counts_end


def test_the_counts_reach_the_replays_longest_rule_window_before_the_margin() -> None:
    frame = builders.incidents()
    week = pd.Timedelta(days=7)
    reads = alerts.review_reads(START, END, frame, _outages(frame), severity="critical",
                                rule_lookback=week)  # fmt: skip
    assert reads.counts_start == START - alerts.FP_MARGIN - week


def test_the_counts_margin_covers_both_rules_breach_windows() -> None:
    """A page at the window's start is judged from FP_MARGIN before it and timed from
    LOOKBACK before it, each rule reading its 5-minute breach window further back."""
    needed = max(alerts.FP_MARGIN, LOOKBACK) + incident_facts.BREACH_WINDOW
    assert needed <= alerts.COUNTS_MARGIN


EVIDENCE_CASES = {
    "a resolved page: its service from the lookback before it to its resolution": (
        {"incident_id": "A", "triggered_at": T0, "resolved_at": T0 + 20 * MIN},
        [("A", "api", T0 - LOOKBACK, T0 + 20 * MIN)],
    ),
    "an open page: the lookback after it too": (
        {"incident_id": "A", "service_name": "db", "triggered_at": T0},
        [("A", "db", T0 - LOOKBACK, T0 + LOOKBACK)],
    ),
    "a page resolved the moment it paged: still the minute after it": (
        {"incident_id": "A", "triggered_at": T0, "resolved_at": T0},
        [("A", "api", T0 - LOOKBACK, T0 + MIN)],
    ),
    "a page of another severity: nothing read": (
        {"incident_id": "A", "severity": "high"},
        [],
    ),
    "a page whose alert is gone: nothing read": (
        {"incident_id": "A", "service_name": np.nan},
        [],
    ),
}


@pytest.mark.parametrize(("row", "evidence"), EVIDENCE_CASES.values(), ids=EVIDENCE_CASES)
def test_the_spans_and_logs_a_review_reads(row, evidence) -> None:
    frame = builders.incidents(row)
    reads = alerts.review_reads(START, END, frame, _outages(frame), severity="critical")
    assert list(reads.evidence) == evidence


def test_the_reads_match_what_detection_times_need() -> None:
    """Every page ``detection_times`` times is one ``review_reads`` plans to read, in the
    same order, so the loader's answer for the plan is all it needs."""
    frame = builders.incidents(
        {"incident_id": "B", "triggered_at": T0 + 30 * MIN},
        {"incident_id": "A", "triggered_at": T0 + 6 * MIN, "resolved_at": T0 + 9 * MIN},
        {"incident_id": "C", "severity": "low", "service_name": "db"},
    )
    reads = alerts.review_reads(START, END, frame, _outages(frame), severity="critical")
    evidence = {iid: (_failing([]), NO_LOGS) for iid, *_ in reads.evidence}
    got = alerts.detection_times(frame, _outages(frame), evidence, QUIET, SLOS, severity="critical")
    assert got["incident_id"].tolist() == [iid for iid, *_ in reads.evidence] == ["A", "B"]
