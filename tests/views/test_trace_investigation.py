"""The trace investigation behind the notebook: the default trace, views that display in
every case, no-data paths, and the picker that redraws every per-trace view."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import altair as alt
import pandas as pd
import psycopg
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.display import display
from IPython.utils.capture import capture_output

from obslib.errors import UsageError
from obslib.ingest import write_spans
from obslib.views import Note, Table
from obslib.views import trace_investigation as investigation
from tests.conftest import run_cli
from tests.ids import sid, tid

VIEWS = [
    "headline",
    "summary",
    "sampled",
    "window_repairs",
    "picker",
    "waterfall",
    "critical_path",
    "statistics",
    "self_time_chart",
    "errors",
    "trace_logs",
    "untraced_logs",
    "repairs",
    "versus_cohort",
    "window_versus_day_before",
    "window_versus_day_before_chart",
    "service_graph",
    "service_graph_chart",
]  # every call of the notebook after the parameters, in order


def test_default_is_the_slowest_error_trace(demo_db) -> None:
    """Without a trace id the slowest failing trace of the window is chosen and rebuilt."""
    url, summary = demo_db
    inv = investigation.investigate_trace("", summary.incident_start, summary.incident_end, url=url)
    assert inv.found and inv.message == ""
    errors = inv.sample.traces[inv.sample.traces["reason"] == "error"]
    assert inv.trace_id == errors.sort_values("duration_ms", ascending=False)["trace_id"].iloc[0]
    assert inv.sample.counts["error"] == len(errors) > 0
    assert inv.headline().text == f"Investigating trace {inv.trace_id} (a failing trace)."
    row = inv.summary().data.iloc[0]
    assert row["errors"] > 0 and row["spans"] == len(inv.spans)
    path = inv.trace.segments
    assert path["duration_ms"].sum() == pytest.approx(row["duration_ms"], rel=1e-6)
    by_operation = inv.critical_path().data
    assert by_operation["path_ms"].sum() == pytest.approx(row["duration_ms"], rel=1e-6)
    assert by_operation["share"].sum() == pytest.approx(1.0)
    assert by_operation.iloc[0]["service_name"] == "domain-service"
    chart = inv.waterfall().to_dict()
    assert chart["hconcat"] and inv.trace_id in chart["description"]
    assert isinstance(inv.errors(), Table) and inv.trace_logs().data["log_count"].sum() > 0
    versus = inv.versus_cohort()
    assert versus.data.iloc[0]["service_name"] == "domain-service"
    assert versus.caption.startswith("Self time per service against ")
    assert inv.window_versus_day_before().data.iloc[0]["service_name"] == "domain-service"
    counts = inv.sample.counts
    assert inv.sampled().caption.startswith(
        f"{counts['error']} failing, {counts['slow']} slowest and {counts['uniform']} sampled"
    )


@pytest.mark.parametrize(
    ("trace_id", "start", "end", "message"),
    [
        pytest.param(
            "",
            "1999-01-01",
            "1999-01-02",
            "No spans between 1999-01-01 00:00 and 1999-01-02 00:00 UTC.",
            id="an empty window",
        ),
        pytest.param(
            "nope",
            "2026-11-14T14:05Z",
            "2026-11-14T14:50Z",
            "No trace with id 'nope' in the database.",
            id="an unknown trace id",
        ),
        pytest.param("", "2026-11-14T14:05Z", "2026-11-14T14:50Z", "", id="the default trace"),
    ],
)
def test_every_view_displays_in_every_case(demo_db, trace_id, start, end, message) -> None:
    """Each notebook call gives a table with rows, a chart with alt text or a note saying
    why, never an empty frame, None or a traceback; with no trace the per-trace views say
    the investigation's message."""
    url, _ = demo_db
    inv = investigation.investigate_trace(trace_id, start, end, url=url)
    assert inv.message == message
    for name in VIEWS:
        shown = getattr(inv, name)()
        assert isinstance(shown, Table | Note | alt.TopLevelMixin), name
        if isinstance(shown, Table):
            assert len(shown.data) and shown._repr_html_().count("<tr>") > 1, name
        elif isinstance(shown, Note):
            assert shown.text.endswith(".") and len(shown.text) > 20, name
        else:
            assert len(shown.to_dict()["description"]) > 20, name
        if message and name in investigation.follows_picker():
            assert shown == Note(message), name
    assert isinstance(inv.picker(), Note)  # not live: a static report says so


def test_empty_sections_say_why(demo_db) -> None:
    """A trace without failures, and the untraced logs around it, explain their emptiness."""
    url, summary = demo_db
    inv = investigation.investigate_trace("", summary.incident_start, summary.incident_end, url=url)
    fine = inv.sample.traces[inv.sample.traces["errors"] == 0]["trace_id"].iloc[0]
    inv.pick(fine)
    assert inv.errors() == Note(f"No span of trace {fine} failed.")


def test_an_investigation_is_built_once_and_a_pick_changes_only_its_selection(demo_db) -> None:
    """The window, its sample and its derived sections are fixed at construction; picking
    another trace replaces the selection's trace (its spans, path, notes) and nothing else."""
    url, summary = demo_db
    inv = investigation.investigate_trace("", summary.incident_start, summary.incident_end, url=url)
    with pytest.raises(dataclasses.FrozenInstanceError):
        inv.sample = None  # type: ignore[misc]
    with pytest.raises(AttributeError):
        inv.trace_id = "another"  # type: ignore[misc]
    window, sample, first = inv.window, inv.sample, inv.trace
    edges = inv.service_graph().data
    other = sample.traces["trace_id"].iloc[-1]
    inv.pick(other)
    assert inv.window is window and inv.sample is sample and inv.trace is not first
    assert inv.trace_id == other != first.trace_id
    assert set(inv.spans["trace_id"]) == {other} and inv.spans is inv.trace.spans
    assert set(inv.path["span_id"]) <= set(inv.spans["span_id"])
    assert inv.service_graph().data.equals(edges), "window-wide sections do not follow a pick"
    inv.pick("nope")
    assert not inv.found and inv.summary() == Note("No trace with id 'nope' in the database.")
    assert inv.service_graph().data.equals(edges)


def _two_span_trace(parent_id) -> pd.DataFrame:
    """Trace ``tid("t1")``: root ``sid("a")`` (parent ``parent_id``) and its child ``sid("b")``."""
    t0 = pd.Timestamp("2026-11-14 14:10", tz="UTC")
    return pd.DataFrame(
        {
            "trace_id": [tid("t1"), tid("t1")],
            "span_id": [sid("a"), sid("b")],
            "parent_span_id": [parent_id, sid("a")],
            "service_name": ["api-gateway", "auth-service"],
            "operation_name": ["GET /", "check"],
            "span_kind": ["server", "server"],
            "start_time": [t0, t0 + pd.Timedelta(milliseconds=1)],
            "end_time": [t0 + pd.Timedelta(milliseconds=9), t0 + pd.Timedelta(milliseconds=5)],
            "status": ["ok", "ok"],
        }
    )


def test_no_untraced_logs_is_said_in_a_sentence(migrated_db) -> None:
    """A database with spans and no logs: the untraced-logs section is a Note saying why."""
    write_spans(_two_span_trace(None), url=migrated_db)
    inv = investigation.investigate_trace(
        tid("t1"), "2026-11-14 14:00", "2026-11-14 15:00", url=migrated_db
    )
    untraced = inv.untraced_logs()
    assert isinstance(untraced, Note)
    assert untraced.text.startswith("No record without a trace id from ")


def test_the_cohort_finds_roots_whose_parent_id_is_empty(migrated_db) -> None:
    """OpenTelemetry marks a root with an empty parent id (another writer may store it so;
    obslib's own writer stores null): such traces a day earlier are the cohort, not
    "nothing to compare with"."""
    today = _two_span_trace(None)
    before = today.assign(
        trace_id=tid("t0"),
        start_time=today["start_time"] - pd.Timedelta(days=1),
        end_time=today["end_time"] - pd.Timedelta(days=1),
    )
    write_spans(pd.concat([today, before], ignore_index=True), url=migrated_db)
    with psycopg.connect(migrated_db) as conn:
        conn.execute(
            "UPDATE distributed_traces SET parent_span_id = '' WHERE span_id = %s", [sid("a")]
        )
    inv = investigation.investigate_trace(
        tid("t1"), "2026-11-14 14:00", "2026-11-14 15:00", url=migrated_db
    )
    assert not isinstance(inv.versus_cohort(), Note)


@pytest.mark.parametrize(
    ("param", "value"),
    [("skew_correction", "maybe"), ("max_skew_ms", "10"), ("max_skew_ms", float("nan"))],
)
def test_parameter_types_are_checked(demo_db, param: str, value) -> None:
    url, _ = demo_db
    with pytest.raises(UsageError, match=param):
        investigation.investigate_trace("", "2026-11-14", "2026-11-15", url=url, **{param: value})


def test_skew_correction_false_as_text_means_off(demo_db) -> None:
    """``"false"`` (a string, as a hand-edited notebook might hold) turns correction off."""
    url, summary = demo_db
    inv = investigation.investigate_trace(
        "", summary.incident_start, summary.incident_end, skew_correction="false", url=url
    )
    assert inv.skew_correction is False


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
    assert skewed.repairs().caption.startswith("Clock-skew adjustments")
    # spans under the fast host moved with it: listed, but one repair per host switch
    adj = skewed.adjustments
    assert adj["inherited"].any()
    computed = int((adj["applied"] & ~adj["inherited"]).sum())
    assert skewed.summary().data["repairs"].iloc[0] == len(skewed.notes) + computed
    off = investigation.investigate_trace(
        fast["trace_id"].iloc[0], inv.start, inv.end, skew_correction=False, url=url
    )
    assert off.adjustments.empty
    assert off.repairs().text.startswith("No clock-skew adjustment (clock-skew correction is off)")


def test_bad_parameters_are_usage_errors(demo_db) -> None:
    """Unparseable times and a negative skew limit are one-line usage errors, not ValueError."""
    url, _ = demo_db
    with pytest.raises(UsageError, match="max_skew_ms"):
        investigation.investigate_trace("", "2026-11-14", "2026-11-15", max_skew_ms=-1, url=url)
    with pytest.raises(UsageError, match=r"^start is not a time: 'yesterday-ish'$"):
        investigation.investigate_trace("", "yesterday-ish", "2026-11-15", url=url)
    with pytest.raises(UsageError, match=r"^end is not a time: '2026-13-45'$"):
        investigation.investigate_trace("", "2026-11-14", "2026-13-45", url=url)
    with pytest.raises(UsageError, match="is not after start"):
        investigation.investigate_trace("", "2026-11-15", "2026-11-14", url=url)


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    """A real IPython shell, so displays and display updates are published and captured."""
    yield InteractiveShell.instance()
    InteractiveShell.clear_instance()


def test_the_picker_redraws_every_per_trace_view(demo_db, shell) -> None:
    """Picking another trace replaces the output of every per-trace cell (not just the area
    under the picker) with the new trace's view; window-wide cells stay."""
    url, summary = demo_db
    inv = investigation.investigate_trace(
        "", summary.incident_start, summary.incident_end, url=url, live=True
    )
    first = inv.trace_id
    with capture_output() as shown:
        for name in VIEWS:
            display(getattr(inv, name)())
    following = investigation.follows_picker()
    assert set(following) == {
        *(
            "headline",
            "summary",
            "waterfall",
            "critical_path",
            "statistics",
            "self_time_chart",
            "errors",
        ),
        *("trace_logs", "untraced_logs", "repairs", "versus_cohort"),
    }
    ids = {o.transient["display_id"] for o in shown.outputs if o.transient}
    assert len(ids) == len(following) and set(inv.views) == set(following)
    box = inv.picker()
    dropdown, status = box.children
    assert len(dropdown.options) == len(inv.sample.traces) and dropdown.value == first
    other = inv.sample.traces["trace_id"].iloc[-1]
    with capture_output() as redrawn:
        dropdown.value = other  # runs the observer for real
    updates = {o.transient["display_id"]: o.data for o in redrawn.outputs if o.update}
    assert set(updates) == ids, "every per-trace view was redrawn in place"
    assert inv.trace_id == other and status.value.startswith(f"Showing trace {other}")
    texts = [str(data) for data in updates.values()]
    assert sum(other in t for t in texts) >= 3 and not any(first in t for t in texts)
    (summary_text,) = [d["text/plain"] for d in updates.values() if "investigated" in str(d)]
    assert other in summary_text


def test_the_redraw_keeps_the_notebooks_skew_parameters(demo_db, shell) -> None:
    """A picked trace is rebuilt with the investigation's skew_correction and max_skew_ms."""
    url, summary = demo_db
    day = pd.Timedelta(days=1)
    start, end = summary.incident_start - day, summary.incident_end - day
    window = investigation.investigate_trace("", start, end, url=url).window
    fast = window[window["tags"].str.contains('"dns-resolver-1"')]["trace_id"].iloc[0]
    off = investigation.investigate_trace("", start, end, skew_correction=False, url=url, live=True)
    with capture_output():
        display(off.repairs())
    with capture_output() as redrawn:
        off.pick(fast)
    assert off.trace_id == fast and off.adjustments.empty
    updates = [o.data.get("text/plain", "") for o in redrawn.outputs if o.update]
    assert any("clock-skew correction is off" in text for text in updates), updates
    tight = investigation.investigate_trace("", start, end, max_skew_ms=0.001, url=url)
    tight.pick(fast)
    assert not tight.adjustments["applied"].any(), "35 ms is more than max_skew_ms allows"
    on = investigation.investigate_trace("", start, end, url=url)
    on.pick(fast)
    assert on.adjustments["applied"].any() and isinstance(on.repairs(), Table)


def test_lab_passes_its_arguments_to_jupyterlab(demo_db) -> None:
    """`obslib lab` starts JupyterLab with this interpreter's kernel (here: just --version)."""
    url, _ = demo_db
    result = run_cli("lab", "--version", env={"OBSLIB_DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert (
        "kernel obslib runs" in result.stdout
        and result.stdout.strip().splitlines()[-1][0].isdigit()
    )
