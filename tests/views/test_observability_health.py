"""The observability health view on the demo and on an empty window, and its report."""

from __future__ import annotations

import re
from dataclasses import FrozenInstanceError

import pandas as pd
import pytest

from obslib import alerts, health
from obslib.alerts import amconfig
from obslib.demo import events
from obslib.demo import topology as topo
from obslib.errors import UsageError
from obslib.views import observability_health as hv
from obslib.views.notes import Note
from tests.conftest import CHROMIUM, run_cli
from tests.logs.test_log_rules_job import NEW_TEMPLATE
from tests.reports.test_reports import browser_probe, chart_images, outputs_text

VIEWS = (
    "headline", "scorecard", "scorecard_chart", "coverage_chart", "uncovered", "noise",
    "false_positives", "flapping", "correlated", "response_times", "replay_summary",
    "replay_fates", "log_rules", "log_firings",
)  # fmt: skip


@pytest.fixture(scope="module")
def demo_health(demo_db) -> hv.Health:
    url, _ = demo_db
    return hv.observability_health("14d", "", url=url)


def test_the_demo_incident_is_real_and_the_scripted_noise_is_not(demo_health) -> None:
    """The scripted page is judged real (its service's burn-rate rules fired); the flapping
    dns-resolver alerts never are; the open campaign-service page is judged up to the end
    of the data; the cache alert's service has no SLO, so it is unknown."""
    verdict = demo_health.verdicts.set_index("incident_id")["verdict"]
    alert = demo_health.incidents.set_index("incident_id")["alert_name"]
    assert verdict[events.main_incident_id()] == "real"
    flaps = verdict[alert[verdict.index] == "dns-resolver-timeouts"]
    assert len(flaps) > 10 and set(flaps) <= {"false_positive", "unknown"}  # never real
    # the two incidents still going at the end of the window (tests/test_demo.py)
    assert verdict["INC-20261115-0003"] in {"real", "false_positive"}  # judged while open
    assert verdict["INC-20261115-0002"] == "unknown"  # cache has no SLO


def test_no_demo_incident_is_both_caught_by_an_slo_rule_and_a_false_positive(demo_health) -> None:
    """The replay's catch and the false-positive rule read the same firings (the health
    view's replay of the burn-rate rules): over every incident of the demo they agree."""
    caught = demo_health.rules_replay.incidents
    caught = set(caught.loc[caught["caught"].astype(bool), "incident_id"])
    verdicts = demo_health.verdicts
    false = set(verdicts.loc[verdicts["verdict"] == "false_positive", "incident_id"])
    assert caught and false
    assert not caught & false
    assert set(verdicts["incident_id"]) == set(demo_health.incidents["incident_id"])


def test_the_scripted_pages_are_one_outage_timed_once(demo_health) -> None:
    day = events.main_incident_id().split("-")[1]
    ids = [events.main_incident_id(), f"INC-{day}-0002", f"INC-{day}-0003"]
    outages = demo_health.outages.set_index("incident_id")
    assert outages.loc[ids, "outage"].nunique() == 1
    assert set(outages.loc[ids, "outage_lead"]) == {events.main_incident_id()}
    timed = demo_health.detections
    assert timed["incident_id"].tolist() == [events.main_incident_id()]


def test_the_scorecard_holds_every_kpi_computed_from_the_window(demo_health) -> None:
    rows = demo_health.scorecard_rows.set_index("kpi")
    assert list(rows.index) == list(health.TARGETS)
    n = demo_health.noise_facts
    fp = rows.loc[health.FALSE_POSITIVE_RATE]
    assert fp["value"] == pytest.approx(100.0 * n.false_positive / (n.real + n.false_positive))
    assert fp["passed"] is False  # the demo's alerts are noisy on purpose
    worst = demo_health.detections["time_to_detect"].max().total_seconds()
    assert rows.loc[health.DETECTION_TIME, "value"] == pytest.approx(worst)
    cov = demo_health.calls.coverage
    assert rows.loc[health.TRACE_COVERAGE, "value"] == pytest.approx(
        100.0 * cov["served"].sum() / cov["client_spans"].sum()
    )
    assert demo_health.headline().text.startswith("2026-11-02 00:00 .. 2026-11-16 00:00 UTC: ")


def test_the_scripted_pages_form_one_correlated_group(demo_health) -> None:
    day = events.main_incident_id().split("-")[1]
    groups = demo_health.groups.set_index("incident_id")["group"]
    ids = [events.main_incident_id(), f"INC-{day}-0002", f"INC-{day}-0003"]
    assert groups[ids].nunique() == 1
    shown = demo_health.correlated().data
    assert (shown["opened_by"] == events.main_incident_id()).sum() == 1


def test_an_empty_window_is_a_note_or_a_no_data_kpi_in_every_view(demo_db) -> None:
    url, _ = demo_db
    empty = hv.observability_health("1h", "2020-01-01T00:00Z", url=url)
    for name in VIEWS:
        got = getattr(empty, name)()
        assert got is not None, name
    rows = empty.scorecard_rows.set_index("kpi")
    assert rows.loc[health.TRACE_COVERAGE, "passed"] is None
    assert rows.loc[health.FALSE_POSITIVE_RATE, "passed"] is None
    assert isinstance(empty.uncovered(), Note) and isinstance(empty.replay_summary(), Note)
    when = "2019-12-31 23:00 .. 2020-01-01 00:00 UTC"
    assert empty.headline().text == f"{when}: 1 of 5 KPIs pass; 4 without data."
    nothing_to_cover = f"No client span between {when}: nothing to cover."
    assert empty.coverage_chart().text == empty.uncovered().text == nothing_to_cover
    assert empty.response_times().text == f"No incident between {when}."
    assert empty.replay_summary().text == f"No incident between {when}: nothing to replay."
    assert empty.replay_fates().text == "The route would have sent every incident as its own page."
    assert empty.log_rules().data["firings"].tolist() == [0, 0]  # the demo's two log rules
    assert empty.log_firings().text == f"No log rule fired between {when}."


def test_the_demos_new_error_template_at_the_deploy_is_a_real_log_firing(demo_health) -> None:
    """Both demo log rules fire on the template domain-service began logging at the deploy;
    each firing is judged real (the deploy incident's SLO burns) and would have caught the
    scripted page; neither rule pages for nothing."""
    judged = demo_health.log_replay.judged
    firings = judged.firings
    assert set(firings["alert_name"]) == {
        "domain-service-new-error-template",
        "domain-service-pool-timeouts",
    }
    assert set(firings["template"]) == {NEW_TEMPLATE}
    assert (firings["verdict"] == "real").all()
    assert set(firings["incident_id"]) == {events.main_incident_id()}
    new = firings[firings["kind"] == "log_new_template"].iloc[0]
    assert topo.DEPLOY_AT < new["start"] < topo.DEPLOY_AT + pd.Timedelta(minutes=15)
    rules = judged.rules.set_index("alert_name")
    assert (rules["false_positive"] == 0).all() and (rules["false_positive_rate"] == 0).all()
    assert (rules["incidents_caught"] >= 1).all()
    shown = demo_health.log_firings().data
    assert shown["verdict"].tolist() == firings["verdict"].tolist()
    assert demo_health.log_rules().data.equals(judged.rules)


def test_no_log_rule_is_a_note_in_both_log_views(migrated_db) -> None:
    """A database without a log rule: both log-rule views say why they are empty."""
    empty = hv.observability_health("1h", "2020-01-01T00:00Z", url=migrated_db)
    said = "No enabled log rule (alert definitions of alert type 'log'): nothing to replay."
    assert empty.log_rules().text == empty.log_firings().text == said


def test_the_view_is_built_once_and_never_changed(demo_health) -> None:
    """Frozen: what the notebook shows is what ``observability_health`` built."""
    with pytest.raises(FrozenInstanceError):
        demo_health.verdicts = demo_health.verdicts.head(0)  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        demo_health.calls.coverage = demo_health.calls.coverage.head(0)  # type: ignore[misc]


def test_the_view_shows_the_analysis_as_computed_below_it(demo_health) -> None:
    """Each table is an analysis function's answer, arranged: the view computes nothing."""
    assert demo_health.correlated().data.equals(alerts.correlated_groups(demo_health.groups))
    per_alert = alerts.false_positives_per_alert(demo_health.verdicts, demo_health.incidents)
    assert demo_health.false_positives().data.equals(per_alert)
    replayed = alerts.replay_notifications(
        demo_health.incidents, until=demo_health.end, config=amconfig.default_config()
    )
    unpaged = alerts.unpaged(replayed, demo_health.incidents)
    assert demo_health.replay_fates().data.equals(unpaged)
    assert demo_health.tally == health.tally(demo_health.scorecard_rows)


def test_the_replay_summary_speaks_of_pages_in_one_vocabulary(demo_health) -> None:
    """ "notifications 22" next to "notified 22" read as two things of one name: every row
    says pages or incidents, and every count of the replay has its row."""
    shown = demo_health.replay_summary()
    labels = shown.data["measure"].tolist()
    assert len(labels) == len(demo_health.replay.replayed.summary) == len(set(labels))
    assert not any("notif" in label for label in labels), labels
    assert all(label.startswith(("incidents", "pages", "resolved")) for label in labels), labels


@pytest.mark.parametrize("window", ["soon", "-1d", "0h"])
def test_a_bad_window_is_refused_by_name(window: str) -> None:
    with pytest.raises(UsageError, match="window"):
        hv.observability_health(window)


def test_the_health_report_is_offline_and_every_chart_reads(demo_db, tmp_path) -> None:
    url, _ = demo_db
    result = run_cli(
        "report", "health", "--out", str(tmp_path), env={"OBSLIB_DATABASE_URL": url}, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    html = (tmp_path / "observability_health.html").read_text()
    assert not re.search(r"<script[^>]+src=\"https?://", html)
    assert len(chart_images(html)) == 2
    text = outputs_text(tmp_path / "observability_health.ipynb")
    assert "Traceback" not in text and "of 5 KPIs pass" in text
    if CHROMIUM:
        browser_probe(html, tmp_path, min_charts=2)


ALERTNAME_CONFIG = """\
route:
  receiver: team
  group_by: [alertname]
  group_wait: 1m
receivers:
  - name: team
"""


def test_the_replay_goes_through_the_config_the_report_is_given(demo_db, tmp_path) -> None:
    """A config that groups by alertname, with no inhibition: the replay is the one the
    alerts package gives for that file, and the caption names the file and its root route."""
    url, _ = demo_db
    path = tmp_path / "am.yml"
    path.write_text(ALERTNAME_CONFIG)
    view = hv.observability_health("14d", "", str(path), url=url)
    expected = alerts.replay_notifications(
        view.incidents, until=view.end, config=amconfig.parse_config(ALERTNAME_CONFIG, str(path))
    )
    assert view.replay.replayed.fates.equals(expected.fates)
    caption = view.replay_summary().caption
    assert f"through {path} (root route: group by alertname, wait 1m, interval 5m" in caption
    assert "0 child routes, 0 inhibit rules)" in caption  # settings as alertmanager.yml says


def test_a_bad_config_is_refused_before_the_database(tmp_path) -> None:
    path = tmp_path / "am.yml"
    path.write_text("route:\n  receiver: team\n  group_wait: soon\nreceivers:\n  - name: team\n")
    with pytest.raises(Exception, match=rf"^{re.escape(str(path))}: route.group_wait: "):
        hv.observability_health("14d", "", str(path), url="postgresql://nobody@127.0.0.1:1/none")
