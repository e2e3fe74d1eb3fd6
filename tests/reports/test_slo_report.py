"""`obslib report slo`: the SLO review run headless on the demo, offline and readable."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from obslib import reports
from obslib.demo import events
from obslib.errors import UsageError
from tests.conftest import CHROMIUM, run_cli
from tests.reports.test_reports import browser_probe, chart_images, outputs_text


@pytest.fixture(scope="module")
def slo_run(demo_db, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    url, _ = demo_db
    out = tmp_path_factory.mktemp("slo-report")
    result = run_cli(
        "report", "slo", "--out", str(out), env={"OBSLIB_DATABASE_URL": url}, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return out, result


def test_the_slo_report_prints_its_paths_and_no_warning(slo_run) -> None:
    out, result = slo_run
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        f"notebook  {out / 'slo_review.ipynb'}",
        f"report    {out / 'slo_review.html'}",
    ]


def test_the_slo_report_header_states_the_window(slo_run) -> None:
    out, _ = slo_run
    header = nbformat.read(str(out / "slo_review.ipynb"), as_version=4).cells[0].source
    assert header.startswith("# SLO review\n")
    assert "| **Data window** | 2026-10-17 00:00 .. 2026-11-16 00:00 UTC (30d) |" in header
    assert "`window = '30d'` (default)" in header and "`record = False` (default)" in header


def test_the_slo_report_tells_the_demo_story(slo_run) -> None:
    """The violated SLO leads the list; the replay catches the scripted incident with a
    page before the one people got; nothing was recorded."""
    out, _ = slo_run
    text = outputs_text(out / "slo_review.ipynb")
    assert "least error budget left first" in text
    assert re.search(rf"Incident {events.main_incident_id()} would have been paged by", text)
    assert "Not recorded (parameter record = False)." in text
    assert "Traceback" not in text


def test_the_slo_report_is_offline_and_every_chart_reads(slo_run, demo_db, tmp_path) -> None:
    out, _ = slo_run
    html = (out / "slo_review.html").read_text()
    assert not re.search(r"<script[^>]+src=[\"']https?://", html)
    assert len(chart_images(html)) >= 3  # burn-down, burn rate, replay
    assert "review_slos(" not in html  # code hidden
    database = demo_db[0].split("/")[-1].split("?")[0]
    assert database not in html and "postgresql://" not in html
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (.ci/run installs it as root)")
    header = browser_probe(html, tmp_path, min_charts=3)
    for name in ("window", "end", "services", "record", "min_events"):
        assert name in header


def test_services_without_slo_get_a_note_not_a_traceback(demo_db, tmp_path) -> None:
    url, _ = demo_db
    result = run_cli(
        "report", "slo", "-p", "services", "postgres", "--out", str(tmp_path),
        env={"OBSLIB_DATABASE_URL": url}, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    text = outputs_text(tmp_path / "slo_review.ipynb")
    assert "No enabled SLO for postgres" in text


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"window": "a while"}, "parameter window must be a positive duration"),
        ({"window": "-3d"}, "parameter window must be a positive duration"),
        ({"end": "soon"}, "parameter end is not a time: 'soon'"),
        ({"min_events": "some"}, "min_events must be int"),
    ],
)
def test_bad_slo_parameters_are_refused_before_running(raw, message) -> None:
    with pytest.raises(UsageError, match=message):
        reports.coerce_parameters("slo", raw)


def test_an_empty_end_means_up_to_the_latest_stored_span() -> None:
    text = reports.report_header("slo", "SLO review", {"end": ""})
    assert "| **Data window** | the 30d up to the latest stored span |" in text
    text = reports.report_header("slo", "SLO review", {"end": "", "window": "7d"})
    assert "| **Data window** | the 7d up to the latest stored span |" in text


def test_an_empty_end_gives_dates_once_the_runner_knows_where_the_data_ends() -> None:
    end = pd.Timestamp("2026-11-16 00:00", tz="UTC")
    text = reports.report_header("health", "Health", {"window": "14d"}, data_end=end)
    assert "| **Data window** | 2026-11-02 00:00 .. 2026-11-16 00:00 UTC (14d) |" in text
    given = reports.report_header("health", "Health", {"end": "2026-11-10"}, data_end=end)
    assert "2026-11-10 00:00 UTC (14d)" in given  # a given end wins over where data ends


def test_the_runner_reads_where_the_data_ends_only_for_an_empty_end(demo_db) -> None:
    url, _ = demo_db
    assert reports._data_end("health", {}, url) == pd.Timestamp("2026-11-16 00:00", tz="UTC")
    assert reports._data_end("health", {"end": "2026-11-10"}, url) is None
    assert reports._data_end("incident", {"incident_id": "INC-1"}, url) is None
