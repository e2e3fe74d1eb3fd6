"""The four reports agree on every incident of the test demo.

Each report decides a breach, a catch, a false positive and a detection time through the
same functions (``obslib.slo.replay``, ``obslib.alerts``); these tests read the reports'
own view objects, as the notebooks do, and compare them incident by incident:

- the SLO review and the health report replay the same breaches: every incident the review
  says a rule caught is "real" in the health report, never a false positive, and the health
  report's first breach for it is no later than the catching firing's start;
- every incident the health report calls a false positive has no breach of its service's
  SLOs in the SLO review's replay inside its window;
- the postmortem of every incident states the health report's detection time of its outage
  (``tests/views/test_incident_postmortem.py`` checks that one per outage).
"""

from __future__ import annotations

import pandas as pd
import pytest

from obslib.slo import replay as slo_replay
from obslib.views.observability_health import observability_health
from obslib.views.slo_review import review_slos


@pytest.fixture(scope="module")
def reports(demo_db):
    url, _ = demo_db
    review = review_slos(url=url)
    health = observability_health("14d", "", url=url)
    return review, health


def test_every_incident_the_replay_catches_is_real_in_the_health_report(reports) -> None:
    review, health = reports
    caught = review.replayed.incidents[review.replayed.incidents["caught"]]
    verdicts = health.verdicts.set_index("incident_id")
    assert not caught.empty  # the demo's scripted outage is caught
    for row in caught.itertuples():
        verdict = verdicts.loc[row.incident_id]
        assert verdict["verdict"] == "real", row.incident_id
        assert verdict["first_breach"] <= row.replay_start, row.incident_id


def test_no_false_positive_has_a_breach_of_its_service_in_the_slo_review(reports) -> None:
    review, health = reports
    windows = review.replayed.incidents.set_index("incident_id")
    false_positives = health.verdicts[health.verdicts["verdict"] == "false_positive"]
    assert not false_positives.empty  # the demo's alerts are deliberately noisy
    for row in false_positives.itertuples():
        if row.incident_id not in windows.index:
            continue  # a service without SLOs in the review
        start, end = windows.loc[row.incident_id, ["window_start", "window_end"]]
        found = slo_replay.breaches(review.replayed, row.service_name, start, end)
        assert found.empty, (row.incident_id, found)


def test_the_two_reports_judge_the_same_incidents(reports) -> None:
    """The review replays every incident of a service with SLOs; the health report judges
    those, and every incident it cannot judge is of a service the review has no SLO for."""
    review, health = reports
    replayed = set(review.replayed.incidents["incident_id"])
    judged = health.verdicts[health.verdicts["verdict"] != "unknown"]
    assert set(judged["incident_id"]) <= replayed
    unknown = health.verdicts[health.verdicts["verdict"] == "unknown"]
    assert not (
        set(unknown["incident_id"])
        & set(review.replayed.incidents.loc[review.replayed.incidents["caught"], "incident_id"])
    )
    assert pd.Index(health.verdicts["incident_id"]).is_unique
