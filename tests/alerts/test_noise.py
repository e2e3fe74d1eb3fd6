"""The false-positive rule (``alerts.noise``): an incident no firing of a burn-rate rule of
its service explains, on the half-open window [page - FP_MARGIN, resolution)."""

from __future__ import annotations

import pandas as pd
import pytest

from obslib import alerts
from obslib.slo import replay as slo_replay
from tests import builders
from tests.builders import MIN, T0

PAGE = T0 + 60 * MIN
RESOLVED = PAGE + 30 * MIN
DATA_END = T0 + 6 * 60 * MIN
RULES = pd.DataFrame({"service_name": ["api", "queue"], "applies": [True, False]})


def _firings(*rows: tuple) -> pd.DataFrame:
    """Firing intervals ``(service, start, end)`` of api's availability page rule."""
    frame = pd.DataFrame(
        [
            {
                "service_name": s,
                "slo_name": "availability",
                "severity": "page",
                "start": a,
                "end": b,
            }
            for s, a, b in rows
        ],
        columns=list(alerts.BREACH_COLUMNS),
    )
    for column in ("start", "end"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def _verdict(firings: pd.DataFrame, **incident) -> pd.Series:
    row = {"triggered_at": PAGE, "resolved_at": RESOLVED, **incident}
    got = alerts.false_positives(builders.incidents(row), firings, RULES, DATA_END)
    return got.iloc[0]


W0 = PAGE - alerts.FP_MARGIN


@pytest.mark.parametrize(
    ("start", "end", "verdict"),
    [
        pytest.param(PAGE, PAGE + MIN, "real", id="a firing at the page instant explains it"),
        pytest.param(
            W0 - 10 * MIN, W0, "false_positive", id="a firing ending exactly at the margin does not"
        ),
        pytest.param(
            W0 - 10 * MIN,
            W0 + pd.Timedelta(1, "ns"),
            "real",
            id="a firing ending a nanosecond into the margin does",
        ),
        pytest.param(W0, W0 + MIN, "real", id="a firing starting exactly at the margin does"),
        pytest.param(
            RESOLVED,
            RESOLVED + MIN,
            "false_positive",
            id="a firing starting exactly at the resolution does not",
        ),
        pytest.param(
            RESOLVED - pd.Timedelta(1, "ns"),
            RESOLVED + MIN,
            "real",
            id="a firing starting a nanosecond before the resolution does",
        ),
        pytest.param(
            T0 - 600 * MIN, pd.NaT, "real", id="a firing still on since long before explains it"
        ),
        pytest.param(
            W0 - 30 * MIN,
            W0 - 20 * MIN,
            "false_positive",
            id="a firing that ended before the margin explains nothing",
        ),
    ],
)
def test_a_firing_explains_an_incident_when_it_overlaps_its_window(start, end, verdict) -> None:
    got = _verdict(_firings(("api", start, end)))
    assert got["verdict"] == verdict
    assert (got["first_breach"] == start) if verdict == "real" else pd.isna(got["first_breach"])


def test_a_firing_of_another_service_explains_nothing() -> None:
    got = _verdict(_firings(("web", PAGE, PAGE + MIN)))
    assert got["verdict"] == "false_positive"
    assert got["reason"] == "no burn-rate rule of its service fired in its window"


def test_an_open_incident_is_judged_up_to_the_end_of_the_data() -> None:
    late = _firings(("api", DATA_END - MIN, pd.NaT))
    assert _verdict(late, resolved_at=pd.NaT)["verdict"] == "real"
    after = _firings(("api", DATA_END, pd.NaT))
    assert _verdict(after, resolved_at=pd.NaT)["verdict"] == "false_positive"


@pytest.mark.parametrize(
    ("service", "reason"),
    [
        pytest.param("queue", "no SLO with a burn-rate rule for its service",
                     id="a service whose SLOs have no applicable rule is unknown"),
        pytest.param("db", "no SLO with a burn-rate rule for its service",
                     id="a service with no SLO is unknown"),
        pytest.param(None, "no SLO with a burn-rate rule for its service",
                     id="an incident whose alert is gone is unknown"),
    ],
)  # fmt: skip
def test_an_incident_with_nothing_to_judge_it_by_is_unknown(service, reason) -> None:
    got = _verdict(_firings(("api", PAGE, PAGE + MIN)), service_name=service)
    assert (got["verdict"], got["reason"]) == ("unknown", reason)


def test_the_first_breach_is_the_earliest_overlapping_firing() -> None:
    firings = _firings(("api", PAGE + 5 * MIN, PAGE + 9 * MIN), ("api", PAGE - MIN, PAGE))
    got = _verdict(firings)
    assert got["first_breach"] == PAGE - MIN
    assert got["reason"] == "api/availability page rule fired"


def test_breaches_keep_the_replays_columns_and_order() -> None:
    firings = _firings(("api", PAGE, PAGE + MIN), ("web", PAGE, PAGE + MIN), ("api", W0, PAGE))
    got = alerts.breaches(firings, "api", W0, RESOLVED)
    assert got.index.tolist() == [0, 2]
    assert alerts.breaches(firings, None, W0, RESOLVED).empty


def test_no_incident_is_both_caught_by_an_slo_rule_and_a_false_positive() -> None:
    """A 99 % one-day SLO of api with 100 requests a minute for 8 hours; 40 % fail for half an
    hour at +4 h. Incidents page every 10 minutes, each open 20 minutes: whatever the replay
    catches, the false-positive rule on the same firings calls real."""
    slos = builders.slo_definitions(target_value=99.0, measurement_window_hours=24)
    counts = builders.minute_counts(minutes=range(-240, 480), bad={m: 40 for m in range(240, 270)})
    rows = [
        {"incident_id": f"I{k:02d}", "triggered_at": T0 + k * 10 * MIN,
         "resolved_at": T0 + (k * 10 + 20) * MIN}
        for k in range(0, 46)
    ]  # fmt: skip
    found = builders.incidents(*rows)
    replayed = slo_replay.replay(counts, slos, found, T0 - alerts.FP_MARGIN, T0 + 480 * MIN)
    verdicts = alerts.false_positives(found, replayed.firings, replayed.rules, replayed.end)
    caught = set(replayed.incidents.loc[replayed.incidents["caught"], "incident_id"])
    false = set(verdicts.loc[verdicts["verdict"] == "false_positive", "incident_id"])
    assert caught, "the burst must be caught, or the test proves nothing"
    assert false, "quiet hours must hold false positives, or the test proves nothing"
    assert not caught & false


# -- outages and the alert's kind --------------------------------------------------------------

EDGES = pd.DataFrame({"caller": ["web"], "callee": ["api"], "calls": [1]})


@pytest.mark.parametrize(
    ("second", "together"),
    [
        pytest.param(
            {"service_name": "api"}, True, id="two overlapping pages of one service are one outage"
        ),
        pytest.param(
            {"service_name": "web"}, True, id="a page of a caller overlapping it joins the outage"
        ),
        pytest.param({"service_name": "db"}, False, id="an unlinked service is another outage"),
        pytest.param(
            {"triggered_at": RESOLVED},
            False,
            id="a page exactly at the first's resolution is another outage",
        ),
        pytest.param(
            {"triggered_at": RESOLVED - pd.Timedelta(1, "ns")},
            True,
            id="a page a nanosecond before the resolution joins it",
        ),
    ],
)
def test_related_pages_that_overlap_in_time_are_one_outage(second, together) -> None:
    found = builders.incidents(
        {"incident_id": "A", "triggered_at": PAGE, "resolved_at": RESOLVED},
        {"incident_id": "B", "triggered_at": PAGE + MIN, "resolved_at": RESOLVED + MIN, **second},
    )
    got = alerts.outages(found, EDGES).set_index("incident_id")
    assert bool(got.loc["A", "outage"] == got.loc["B", "outage"]) is together
    assert got.loc["A", "outage_lead"] == "A"
    assert got.loc["B", "outage_lead"] == ("A" if together else "B")


def test_outages_chain_through_a_page_that_overlaps_both() -> None:
    found = builders.incidents(
        {"incident_id": "A", "triggered_at": PAGE, "resolved_at": PAGE + 10 * MIN},
        {"incident_id": "B", "triggered_at": PAGE + 5 * MIN, "resolved_at": PAGE + 30 * MIN},
        {"incident_id": "C", "triggered_at": PAGE + 20 * MIN, "resolved_at": PAGE + 40 * MIN},
    )
    got = alerts.outages(found, None)
    assert got["outage"].tolist() == [1, 1, 1] and set(got["outage_lead"]) == {"A"}


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        pytest.param(
            {"alert_name": "api-high-error-rate"},
            "availability",
            id="an error-rate alert watches availability",
        ),
        pytest.param(
            {"alert_name": "api-latency-p99"}, "latency", id="a p99 latency alert watches latency"
        ),
        pytest.param(
            {"alert_name": "x", "alert_type": "slow_requests"},
            "latency",
            id="its type can say latency",
        ),
        pytest.param(
            {"alert_name": "x", "incident_data": {"metric": "duration_ms"}},
            "latency",
            id="its incident data can say latency",
        ),
        pytest.param(
            {"alert_name": "api-availability-burn"},
            "availability",
            id="a burn alert watches availability",
        ),
        pytest.param(
            {"alert_name": None}, "availability", id="an alert that is gone watches availability"
        ),
    ],
)
def test_an_alert_watches_the_sli_its_name_or_type_says(fields, kind) -> None:
    from obslib.alerts import incidents as incident_facts

    assert incident_facts.alert_kind(fields) == kind
