"""The trace investigation behind the notebook: the default trace, views, no-data paths."""

from __future__ import annotations

import pandas as pd
import pytest

from obslib.errors import UsageError
from obslib.views import trace_investigation as investigation
from tests.conftest import run_cli


def test_default_is_the_slowest_error_trace(demo_db) -> None:
    """Without a trace id the slowest failing trace of the window is chosen and rebuilt."""
    url, summary = demo_db
    inv = investigation.investigate_trace("", summary.incident_start, summary.incident_end, url=url)
    assert inv.found and inv.message == ""
    errors = inv.sample[inv.sample["reason"] == "error"]
    assert inv.trace_id == errors.sort_values("duration_ms", ascending=False)["trace_id"].iloc[0]
    row = inv.summary().iloc[0]
    assert row["errors"] > 0 and row["spans"] == len(inv.spans)
    path = inv.path_segments()
    assert path["duration_ms"].sum() == pytest.approx(row["duration_ms"], rel=1e-6)
    chart, note = inv.waterfall()
    assert note == "" and chart.to_dict()["layer"]
    assert not inv.errors().empty and inv.trace_logs()["log_count"].sum() > 0
    versus = inv.versus_cohort()
    assert versus.iloc[0]["service_name"] == "domain-service"
    assert inv.window_versus_day_before().iloc[0]["service_name"] == "domain-service"


def test_skew_is_reported_for_a_trace_through_the_fast_host(demo_db) -> None:
    """A trace that crossed the host with the fast clock gets an applied adjustment."""
    url, summary = demo_db
    day = pd.Timedelta(days=1)
    inv = investigation.investigate_trace(
        "", summary.incident_start - day, summary.incident_end - day, url=url
    )
    fast = inv.window[inv.window["tags"].str.contains('"dns-resolver-1"')]
    skewed = investigation.investigate_trace(fast["trace_id"].iloc[0], inv.start, inv.end, url=url)
    assert skewed.adjustments["applied"].any()
    assert set(skewed.adjustments["host"]) == {"dns-resolver-1"}
    off = investigation.investigate_trace(
        fast["trace_id"].iloc[0], inv.start, inv.end, skew_correction=False, url=url
    )
    assert off.adjustments.empty


def test_no_data_gives_a_message(demo_db) -> None:
    url, _ = demo_db
    empty = investigation.investigate_trace("", "1999-01-01", "1999-01-02", url=url)
    assert not empty.found and empty.message.startswith("No spans between 1999-01-01 00:00")
    assert empty.summary().empty
    unknown = investigation.investigate_trace("nope", "2026-11-14", "2026-11-15", url=url)
    assert unknown.message == "No trace with id 'nope' in the database."
    with pytest.raises(UsageError, match="max_skew_ms"):
        investigation.investigate_trace("", "2026-11-14", "2026-11-15", max_skew_ms=-1, url=url)


def test_the_picker_redraws_for_another_trace(demo_db) -> None:
    """The JupyterLab picker lists the sample and re-renders when another trace is chosen."""
    url, summary = demo_db
    inv = investigation.investigate_trace("", summary.incident_start, summary.incident_end, url=url)
    box = investigation.trace_picker(inv)
    dropdown, _output = box.children
    assert len(dropdown.options) == len(inv.sample) and dropdown.value == inv.trace_id
    dropdown.value = inv.sample["trace_id"].iloc[-1]  # runs the observer for real


def test_lab_passes_its_arguments_to_jupyterlab(demo_db) -> None:
    """`obslib lab` starts JupyterLab with this interpreter's kernel (here: just --version)."""
    url, _ = demo_db
    result = run_cli("lab", "--version", env={"OBSLIB_DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert "kernel obslib-" in result.stdout and result.stdout.strip().splitlines()[-1][0].isdigit()
