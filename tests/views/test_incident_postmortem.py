"""The incident postmortem: its view on the demo's scripted incident, the Markdown draft,
the timeline chart, and `obslib report incident` run headless (HTML + postmortem.md)."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import nbformat
import pandas as pd
import psycopg
import pytest

from obslib.charts import incidents as incident_charts
from obslib.demo import events
from obslib.demo import topology as topo
from obslib.errors import InputError
from obslib.values import duration_text
from obslib.views import incident_postmortem as pm_view
from obslib.views import postmortem_draft as draft
from obslib.views.notes import Note
from tests.conftest import CHROMIUM, run_cli
from tests.reports.test_reports import browser_probe, chart_images, outputs_text

VIEWS = (
    "headline", "summary", "timeline", "timeline_chart", "impact", "impact_calls", "budget",
    "related",
    "errors_by_service", "critical_path_change", "critical_path_chart", "error_logs",
)  # fmt: skip
SECTIONS = (
    "## Summary", "## Impact", "## Root causes", "## Trigger", "## Resolution", "## Detection",
    "## Action items", "## Lessons learned", "### What went well", "### What went wrong",
    "### Where we got lucky", "## Timeline",
)  # fmt: skip


@pytest.fixture(scope="module")
def demo_pm(demo_db) -> pm_view.Postmortem:
    url, _ = demo_db
    return pm_view.postmortem(events.main_incident_id(), url=url)


def test_an_unknown_incident_is_a_note_in_every_view(demo_db) -> None:
    url, _ = demo_db
    pm = pm_view.postmortem("INC-NOPE", url=url)
    for name in VIEWS:
        got = getattr(pm, name)()
        assert isinstance(got, Note) and "No incident 'INC-NOPE' is stored" in got.text, name
    assert "No incident 'INC-NOPE' is stored" in pm.document().text


def test_the_view_is_built_once_from_its_inputs(demo_pm) -> None:
    """A postmortem is frozen: what it shows cannot be changed after ``postmortem()``."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        demo_pm.end = demo_pm.start  # type: ignore[misc]
    assert demo_pm.empty_note() is None


def add_incident(url: str, incident_id: str, triggered: str, resolved: str | None) -> None:
    """A critical domain-service incident (resolved when ``resolved`` is given) and its alert."""
    with psycopg.connect(url) as conn:
        alert = conn.execute(
            """INSERT INTO alert_definitions (alert_name, service_name, alert_type,
                   metric_name, condition_expression, severity)
               VALUES ('a', 'domain-service', 'threshold', 'error_rate', 'x > 1', 'critical')
               RETURNING id"""
        ).fetchone()[0]
        conn.execute(
            """INSERT INTO alert_incidents (incident_id, alert_id, severity, status,
                   triggered_at, resolved_at)
               VALUES (%s, %s, 'critical', %s, %s, %s)""",
            (incident_id, alert, "open" if resolved is None else "resolved", triggered, resolved),
        )


@pytest.mark.parametrize(
    ("triggered", "resolved", "said"),
    [
        ("9999-12-31 23:00+00", None, "has triggered_at 9999-12-31 23:00 UTC, outside the times"),
        ("infinity", None, "has triggered_at"),
        ("0001-01-01 00:00+00", None, "has triggered_at 0001-01-01 00:00 UTC, outside the times"),
        ("2026-11-14 14:06+00", "9999-01-01 00:00+00", "has resolved_at 9999-01-01 00:00 UTC"),
    ],
    ids=["paged in year 9999", "paged at infinity", "paged in year 1", "resolved in year 9999"],
)
def test_an_incident_outside_the_times_we_hold_is_a_note_in_every_view(
    migrated_db, triggered, resolved, said
) -> None:
    """Its window (and the day before) cannot be read: every section says why, no traceback."""
    add_incident(migrated_db, "INC-far", triggered, resolved)
    pm = pm_view.postmortem("INC-far", url=migrated_db)
    for name in VIEWS:
        got = getattr(pm, name)()
        assert isinstance(got, Note) and "Incident 'INC-far' " in got.text, name
        assert said in got.text, name


def test_without_a_bad_minute_the_trigger_is_the_last_change_before_the_page(
    migrated_db,
) -> None:
    """No failure and no breach: the trigger candidate is the last change up to the page,
    never one after it; the later change is part of the resolution."""
    import obslib

    add_incident(migrated_db, "INC-quiet", "2026-11-14 14:00+00", "2026-11-14 14:30+00")
    page = pd.Timestamp("2026-11-14 14:00", tz="UTC")
    obslib.write_logs(
        pd.DataFrame(
            [
                dict(
                    log_id=name,
                    timestamp=page + pd.Timedelta(minutes=minutes),
                    level="info",
                    service_name="domain-service",
                    message=f"deploy started: domain-service {name}",
                    fields={"event": "deploy"},
                )
                for name, minutes in (("v1", -10), ("v2", 10))
            ]
        ),
        url=migrated_db,
    )
    text = pm_view.postmortem("INC-quiet", url=migrated_db).document().text
    trigger = text.split("## Trigger")[1].split("## Resolution")[0]
    resolution = text.split("## Resolution")[1].split("## Detection")[0]
    assert "The last change before the page: **deploy started: domain-service v1**" in trigger
    assert "v2" not in trigger and "deploy started: domain-service v2" in resolution


def test_the_demo_postmortem_states_the_scripted_facts(demo_pm) -> None:
    """The deploy at 14:05 is the trigger, the rollback the resolution, the page came after
    the first bad minute, the two other pages of the incident are related alerts."""
    t = demo_pm.timeline_facts
    assert t.first_bad is not None and topo.DEPLOY_AT <= t.first_bad < t.events["time"].max()
    assert t.time_to_detect == demo_pm.incident["triggered_at"] - t.first_bad
    related = set(demo_pm.related_rows["incident_id"])
    day = topo.DEPLOY_AT.strftime("%Y%m%d")
    assert {f"INC-{day}-0002", f"INC-{day}-0003"} <= related
    impact = demo_pm.impact_rows
    paged = impact[impact["relation"] == "paged"]
    assert set(paged["service_name"]) == {"domain-service"} and paged["failed_calls"].sum() > 0
    budget = demo_pm.budget_rows.set_index(["service_name", "slo_name"])
    assert budget.loc[("domain-service", "availability"), "bad"] > 0


def test_the_markdown_draft_is_the_sre_skeleton_filled_with_facts(demo_pm) -> None:
    text = demo_pm.document().text
    positions = [text.index(s) for s in SECTIONS]
    assert positions == sorted(positions)  # the skeleton's order
    assert text.startswith(f"# Postmortem: {events.main_incident_id()}, ")
    assert f"deploy finished: domain-service {topo.BAD_VERSION}" in text.split("## Trigger")[1]
    resolution = text.split("## Resolution")[1].split("## Detection")[0]
    assert f"rollback finished: domain-service {topo.GOOD_VERSION}" in resolution
    assert text.count(draft.TO_WRITE) >= 8
    timeline = text.split("## Timeline")[1]
    assert "| time (UTC) | event | what |" in timeline and "| triggered |" in timeline
    assert "connecti\u2026" not in text  # Markdown cells are never cut (no hover to see them)


def test_related_alerts_are_not_marked_as_failures_for_being_resolved(demo_pm) -> None:
    from obslib.views.tables import error_rows

    shown = demo_pm.related()
    assert "status" in shown.cells()[0].columns and not error_rows(shown.data).any()


def test_the_summary_table_states_response_times(demo_pm) -> None:
    got = demo_pm.summary().data.set_index("fact")["value"]
    assert got["time to acknowledge"] == "3 min"
    assert got["status"] == "resolved" and got["acknowledged"].endswith("by alice")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (59.6, "1 min"), (61, "1 min 1 s"), (3600, "1 h"), (-90, "-1 min 30 s")],
)
def test_response_times_read_in_minutes_and_hours(seconds: float, text: str) -> None:
    assert duration_text(pd.Timedelta(seconds=seconds)) == text


T0 = pd.Timestamp("2026-11-14 14:00", tz="UTC")


def _minutes(failed: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "minute": [T0 + pd.Timedelta(minutes=i) for i in range(len(failed))],
            "requests": 10,
            "failed": failed,
        }
    )


def _events(rows: list[tuple[int, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "time": [T0 + pd.Timedelta(minutes=m) for m, _ in rows],
            "kind": [k for _, k in rows],
            "what": "x",
        }
    )


def test_the_timeline_chart_alt_text_states_first_failure_peak_and_events() -> None:
    chart = incident_charts.incident_timeline(
        _minutes([0, 2, 5, 1]),
        _events([(0, "change"), (3, "triggered")]),
        start=T0,
        end=T0 + pd.Timedelta(minutes=10),
        service="api",
        title="t",
    )
    text = chart.to_dict()["description"]
    assert "8 failed, the first at 14:01, peak 5 at 14:02" in text
    assert "events: change 14:00, page 14:03" in text


def test_a_long_incident_is_drawn_in_coarser_bars_and_says_so() -> None:
    """A week-long incident at one bar a minute would be 10,080 bars, more than a chart may
    draw: the view picks the first step keeping it under MAX_BARS (15 min: 672 bars), and
    the alt text names both dates and the step."""
    start = T0
    week = pm_view.Postmortem("X", found=True, start=start, end=start + pd.Timedelta(days=7))
    assert week.step == pd.Timedelta(minutes=15)
    hours = pm_view.Postmortem("X", found=True, start=start, end=start + pd.Timedelta(minutes=90))
    assert hours.step == pd.Timedelta(minutes=1)
    chart = incident_charts.incident_timeline(
        _minutes([3]), _events([]), start=start, end=start + pd.Timedelta(days=7),
        service="api", title="t", step=pd.Timedelta(hours=1),
    )  # fmt: skip
    text = chart.to_dict()["description"]
    assert text.startswith("Failed calls per hour of api, 2026-11-14 14:00 to 2026-11-21 14:00")


def test_the_timeline_chart_refuses_unknown_kinds_and_nothing_to_draw() -> None:
    end = T0 + pd.Timedelta(minutes=10)
    with pytest.raises(InputError, match="unknown kinds"):
        incident_charts.incident_timeline(
            _minutes([1]), _events([(0, "deploy")]), start=T0, end=end, service="a", title="t"
        )
    with pytest.raises(InputError, match="both empty"):
        incident_charts.incident_timeline(
            _minutes([]), _events([]), start=T0, end=end, service="a", title="t"
        )


@pytest.fixture(scope="module")
def incident_run(demo_db, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    url, _ = demo_db
    out = tmp_path_factory.mktemp("incident-report")
    result = run_cli(
        "report", "incident", "--out", str(out), env={"OBSLIB_DATABASE_URL": url}, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return out, result


def test_the_incident_report_writes_html_and_the_markdown_draft(incident_run, demo_pm) -> None:
    out, result = incident_run
    assert result.stderr == ""
    assert (out / "incident_postmortem.html").is_file()
    assert (out / "postmortem.md").read_text() == demo_pm.document().text.rstrip() + "\n"
    header = nbformat.read(str(out / "incident_postmortem.ipynb"), as_version=4).cells[0].source
    assert header.startswith("# Incident postmortem\n")
    assert f"`incident_id = '{events.main_incident_id()}'` (default)" in header
    assert "the incident: from an hour before its page to its resolution" in header
    text = outputs_text(out / "incident_postmortem.ipynb")
    assert "Traceback" not in text and "Warning" not in text


def test_the_incident_report_is_offline_and_every_chart_reads(incident_run, tmp_path) -> None:
    out, _ = incident_run
    html = (out / "incident_postmortem.html").read_text()
    assert not re.search(r"<script[^>]+src=\"https?://", html)
    assert len(chart_images(html)) == 2
    alts = re.findall(r'<img alt="([^"]*)" class="obslib-chart"', html)
    assert [a.split(" of ")[0] for a in alts] == ["Failed calls per minute", "Paired bars"]
    if CHROMIUM:
        browser_probe(html, tmp_path, min_charts=2)


def test_an_unknown_incident_reports_a_note_not_a_traceback(demo_db, tmp_path) -> None:
    """Run directly (as triage or JupyterLab do), the notebook of an unknown id reads as a
    note; ``obslib report`` refuses the id before any kernel (tests/reports/test_reports.py)."""
    from obslib import reports

    url, _ = demo_db
    reports.run_report("incident", {"incident_id": "INC-NOPE"}, tmp_path, database_url=url)
    text = (tmp_path / "postmortem.md").read_text()
    assert "No incident 'INC-NOPE' is stored: check the id (obslib incidents list shows them)" in (
        text
    )


def test_the_postmortem_and_the_health_scorecard_agree_on_every_outage(demo_db) -> None:
    """Every incident's postmortem states the detection time the health view measured for
    its outage (both through ``alerts.incidents.outage_detection`` of the first page)."""
    from obslib.views import observability_health as hv

    url, _ = demo_db
    health_view = hv.observability_health("14d", "", url=url)
    timed = health_view.detections.set_index("incident_id")["time_to_detect"]
    leads = health_view.outages.set_index("incident_id")["outage_lead"]
    for incident_id in health_view.outages["incident_id"]:
        if leads[incident_id] not in timed.index:
            continue
        got = pm_view.postmortem(incident_id, url=url).detection
        assert got.lead == leads[incident_id], incident_id
        expected = timed[got.lead]
        assert got.time_to_detect == expected or (
            got.time_to_detect is None and pd.isna(expected)
        ), incident_id


def test_the_failed_calls_of_the_paged_service_are_its_availability_budgets_bad_events(
    demo_db,
) -> None:
    url, _ = demo_db
    pm = pm_view.postmortem(events.main_incident_id(), url=url)
    impact = pm.impact_rows
    failed = int(impact.loc[impact["service_name"] == pm.service, "failed_calls"].sum())
    budget = pm.budget_rows.set_index(["service_name", "slo_name"])
    assert failed == budget.loc[(pm.service, "availability"), "bad"] > 0


def test_the_demo_outage_counts_each_user_request_once(demo_pm) -> None:
    """Every failed request of the scripted outage failed in api-gateway and in
    domain-service: one failed user request each, at api-gateway (where it entered), not
    the sum of the two services' failed calls; and the summary, the impact table and the
    draft state the same numbers (one function, ``alerts.impact.user_impact``)."""
    users, calls = demo_pm.users, demo_pm.impact_rows
    failed_calls = calls.groupby("service_name")["failed_calls"].sum()
    assert users.failed == failed_calls["domain-service"] == failed_calls["api-gateway"] > 0
    assert set(users.rows["service_name"]) == {"api-gateway"}
    assert users.rows["slow_over_ms"].eq(300.0).all()  # api-gateway's own latency SLO
    short = draft.users_short(users)
    assert demo_pm.summary().data["value"].iloc[-1] == short
    assert f"{users.failed:,} failed" in demo_pm.impact().caption
    text = demo_pm.document().text
    assert f"{users.failed:,} of {users.requests:,} failed" in text.split("## Impact")[0]
