"""The log rules judged (``alerts.log_noise``): each replayed log firing is the incident it
would have opened, judged by the one false-positive rule and matched by the one catch rule."""

from __future__ import annotations

import pandas as pd
import pytest

from obslib import alerts
from obslib.logs import rules as log_rules
from obslib.slo import replay as slo_replay
from tests import builders
from tests.builders import MIN, T0

FIRED = T0 + 60 * MIN  # the log firing's start
ENDED = FIRED + 10 * MIN
DATA_END = T0 + 6 * 60 * MIN
SLO_RULES = pd.DataFrame({"service_name": ["api"], "applies": [True]})
NEW = log_rules.parse(
    "new template at level >= error in 10m, not seen in the previous 7d",
    alert_name="api-new-error",
    service_name="api",
)
COUNT = log_rules.parse(
    "any template at level >= error more than 5 times in 10m",
    alert_name="api-error-burst",
    service_name="api",
    severity="medium",
)
QUIET = log_rules.parse(
    "any template at level >= fatal more than 0 times in 5m",
    alert_name="api-fatal",
    service_name="api",
)
WEB = log_rules.parse(
    "any template at level >= error more than 5 times in 10m",
    alert_name="web-error-burst",
    service_name="web",
)


def _log_firings(*rows: tuple) -> pd.DataFrame:
    """Log firings ``(rule, service, start, end)`` of template "boom <NUM>"."""
    frame = pd.DataFrame(
        [
            {
                "alert_name": rule.alert_name,
                "service_name": service,
                "kind": rule.kind,
                "severity": rule.severity,
                "template": "boom <NUM>",
                "start": a,
                "end": b,
                "peak": 1,
                "first_record": a - MIN,
                "sample": "boom 1",
            }
            for rule, service, a, b in rows
        ],
        columns=list(log_rules.FIRING_COLUMNS),
    )
    for column in ("start", "end", "first_record"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def _burns(*rows: tuple) -> pd.DataFrame:
    """Burn-rate firings ``(start, end)`` of api's availability page rule."""
    frame = pd.DataFrame(
        [
            {"service_name": "api", "slo_name": "availability", "severity": "page",
             "start": a, "end": b}
            for a, b in rows
        ],
        columns=list(alerts.BREACH_COLUMNS),
    )  # fmt: skip
    for column in ("start", "end"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def _judge(firings, burns, incidents=None, rules=(NEW, COUNT, QUIET, WEB)) -> alerts.LogRulesJudged:
    replayed = log_rules.LogReplay(T0, DATA_END, tuple(rules), firings)
    if incidents is None:
        incidents = builders.incidents()[0:0]
    return alerts.judge_log_rules(replayed, burns, SLO_RULES, incidents, DATA_END)


W0 = FIRED - alerts.FP_MARGIN


@pytest.mark.parametrize(
    ("service", "end", "burn", "verdict"),
    [
        pytest.param("api", ENDED, (FIRED, FIRED + MIN), "real",
                     id="a burn at the firing's start makes it real"),
        pytest.param("api", ENDED, (W0 - 10 * MIN, W0), "false_positive",
                     id="a burn ending exactly at the margin before it does not"),
        pytest.param("api", ENDED, (W0 - 10 * MIN, W0 + MIN), "real",
                     id="a burn ending a minute into the margin does"),
        pytest.param("api", ENDED, (ENDED, ENDED + MIN), "false_positive",
                     id="a burn starting exactly at the firing's end does not"),
        pytest.param("api", pd.NaT, (DATA_END - MIN, pd.NaT), "real",
                     id="a firing still on is judged up to the end of the data"),
        pytest.param("web", ENDED, (FIRED, FIRED + MIN), "unknown",
                     id="a firing of a service without a burn-rate rule is unknown"),
    ],
)  # fmt: skip
def test_a_log_firing_is_judged_by_the_one_false_positive_rule(service, end, burn, verdict) -> None:
    """The firing [start, end) is a would-be incident paged at its start, resolved at its
    end: real when a burn of its service overlaps [start - FP_MARGIN, end)."""
    rule = NEW if service == "api" else WEB
    got = _judge(_log_firings((rule, service, FIRED, end)), _burns(burn))
    assert got.firings["verdict"].tolist() == [verdict]
    assert list(got.firings.columns) == list(alerts.LOG_FIRING_COLUMNS)


def test_the_verdict_is_the_one_rule_on_the_would_be_incident() -> None:
    """judge_log_rules says what false_positives says of the same firing as an incident."""
    firings = _log_firings((NEW, "api", FIRED, ENDED), (COUNT, "api", FIRED + 90 * MIN, pd.NaT))
    burns = _burns((FIRED + 5 * MIN, FIRED + 8 * MIN))
    got = _judge(firings, burns)
    direct = alerts.false_positives(
        alerts.log_noise.as_incidents(firings), burns, SLO_RULES, DATA_END
    )
    assert got.firings["verdict"].tolist() == direct["verdict"].tolist()
    assert got.firings["verdict"].tolist() == ["real", "false_positive"]


PAGE = FIRED + 10 * MIN  # the actual incident's page: its catch window opens LEAD before
LEAD = slo_replay.CATCH_LEAD


@pytest.mark.parametrize(
    ("start", "caught"),
    [
        pytest.param(PAGE - LEAD, True, id="a firing beginning as the catch window opens catches"),
        pytest.param(PAGE - LEAD - MIN, False, id="a minute before the window catches nothing"),
        pytest.param(PAGE + 29 * MIN, True, id="a firing a minute before the resolution catches"),
        pytest.param(PAGE + 30 * MIN, False, id="a firing beginning at the resolution does not"),
    ],
)  # fmt: skip
def test_a_log_firing_catches_the_incident_it_begins_inside(start, caught: bool) -> None:
    incidents = builders.incidents(
        {"incident_id": "INC-7", "triggered_at": PAGE, "resolved_at": PAGE + 30 * MIN}
    )
    got = _judge(_log_firings((NEW, "api", start, start + 5 * MIN)), _burns(), incidents)
    assert got.firings["incident_id"].tolist() == (["INC-7"] if caught else [None])
    if caught:
        assert got.firings["delay_vs_incident"].iloc[0] == start - PAGE
    assert got.rules.set_index("alert_name").loc["api-new-error", "incidents_caught"] == caught


def test_a_log_rule_does_not_catch_the_incident_a_log_rule_opened() -> None:
    """Recorded log incidents (alert type log) are the rules' own pages, not incidents."""
    incidents = builders.incidents(
        {"incident_id": "LOG-1", "alert_type": "log", "triggered_at": FIRED},
        {"incident_id": "INC-2", "service_name": "web", "triggered_at": FIRED},
    )
    got = _judge(_log_firings((NEW, "api", FIRED, ENDED)), _burns(), incidents)
    assert got.firings["incident_id"].tolist() == [None]


def test_per_rule_counts_firings_verdicts_catches_and_the_false_positive_rate() -> None:
    """Every rule of the replay gets a row, in its order; a rule that never fired has zeros
    and no rate; unknown firings are left out of the rate."""
    firings = _log_firings(
        (NEW, "api", FIRED, ENDED),  # real, catches INC-1
        (COUNT, "api", FIRED + 2 * MIN, FIRED + 4 * MIN),  # real, catches INC-1
        (COUNT, "api", FIRED + 200 * MIN, FIRED + 210 * MIN),  # false positive
        (WEB, "web", FIRED + 200 * MIN, FIRED + 210 * MIN),  # unknown: web has no SLO
    )
    incidents = builders.incidents({"triggered_at": FIRED + 5 * MIN, "resolved_at": ENDED})
    got = _judge(firings, _burns((FIRED, FIRED + 20 * MIN)), incidents).rules
    assert list(got.columns) == list(alerts.LOG_RULE_COLUMNS)
    assert got["alert_name"].tolist() == [r.alert_name for r in (NEW, COUNT, QUIET, WEB)]
    counts = ["firings", "real", "false_positive", "unknown", "incidents_caught"]
    assert got[counts].values.tolist() == [
        [1, 1, 0, 0, 1],
        [2, 1, 1, 0, 1],
        [0, 0, 0, 0, 0],
        [1, 0, 0, 1, 0],
    ]
    assert got["false_positive_rate"].tolist()[:2] == [0.0, 0.5]
    assert got["false_positive_rate"].iloc[2:].isna().all()  # nothing judged: no rate


def test_no_rule_no_firing_is_an_empty_judgement() -> None:
    got = _judge(_log_firings(), _burns(), rules=())
    assert got.firings.empty and got.rules.empty
    assert list(got.firings.columns) == list(alerts.LOG_FIRING_COLUMNS)


@pytest.mark.parametrize(
    ("verdicts", "rate"),
    [
        pytest.param([], None, id="nothing judged has no rate"),
        pytest.param(["unknown"], None, id="unknown verdicts alone have no rate"),
        pytest.param(["real", "false_positive", "unknown"], 0.5, id="unknown is left out"),
        pytest.param(["false_positive"] * 3 + ["real"], 0.75, id="three of four judged"),
    ],
)
def test_the_false_positive_rate_is_over_judged_verdicts(verdicts, rate) -> None:
    assert alerts.false_positive_rate(pd.Series(verdicts, dtype=object)) == rate
