"""Charts: the rows a waterfall draws, folding of huge traces, real SVG rendering with alt
text, one colour per service across charts, and the renderers."""

from __future__ import annotations

import base64
import logging
import subprocess
import sys

import altair as alt
import nbformat
import pandas as pd
import pytest
import vl_convert
from nbconvert import HTMLExporter

from obslib import charts, traces
from obslib.traces import sets as trace_sets
from tests.traces.test_sets import SMALL
from tests.traces.test_traces import TRACE, frame


def test_waterfall_rows_in_tree_order_with_the_path() -> None:
    """Parents before children, siblings by start; depths for the label indent; path marked."""
    spans = traces.reconstruct(TRACE.assign(service_name="svc", operation_name="op", status="ok"))
    rows = charts.waterfall_rows(spans.spans, traces.critical_path(spans.spans))
    assert rows.rows["span_id"].tolist() == ["A", "B", "C", "D", "E", "F"]
    assert rows.rows["depth"].tolist() == [0, 1, 1, 2, 2, 1]
    assert rows.rows.set_index("span_id")["on_critical_path"].to_dict() == {
        "A": True,
        "B": True,
        "C": True,
        "D": True,
        "E": True,
        "F": False,
    }
    assert rows.path["end_ms"].max() == 100.0 and rows.note == ""


def test_a_huge_trace_folds_its_deepest_levels_and_says_so() -> None:
    """Over the row limit, deeper levels fold and the note says how many spans and where."""
    chain = frame([(f"s{i}", f"s{i - 1}" if i else None, i, 1000 - i) for i in range(60)])
    spans = traces.reconstruct(chain.assign(service_name="svc", operation_name="op", status="ok"))
    rows = charts.waterfall_rows(spans.spans, max_rows=25)
    assert len(rows.rows) == 25 and rows.folded_spans == 35 and rows.max_depth == 24
    assert rows.note.startswith("35 spans deeper than level 24 folded")


def test_every_chart_renders_to_svg_offline() -> None:
    """Each chart builder gives a valid Vega-Lite spec that vl-convert renders with marks."""
    spans = traces.reconstruct(SMALL)
    t1 = spans.spans[spans.spans["trace_id"] == "t1"]
    built = [
        charts.waterfall(charts.waterfall_rows(t1, traces.critical_path(t1))),
        charts.self_time_bars(traces.statistics(SMALL)),
        charts.service_graph(trace_sets.service_graph(SMALL)),
        charts.path_share_comparison(trace_sets.compare_critical_paths(SMALL, SMALL)),
    ]
    for chart in built:
        svg = vl_convert.vegalite_to_svg(chart.to_dict())
        assert svg.startswith("<svg") and ("<path" in svg or "<rect" in svg)
        assert len(chart.to_dict()["description"]) > 20, "every chart carries alt text"
    assert pd.api.types.is_numeric_dtype(charts.waterfall_rows(t1).rows["start_ms"])


def _t(trace_id: str) -> pd.DataFrame:
    spans = traces.reconstruct(SMALL).spans
    return spans[spans["trace_id"] == trace_id]


def test_waterfall_labels_sit_in_a_column_left_of_the_bars() -> None:
    """As Jaeger draws it: a text column of span names, then the bars, sharing the rows."""
    t2 = _t("t2")
    spec = charts.waterfall(charts.waterfall_rows(t2, traces.critical_path(t2))).to_dict()
    labels, bars = spec["hconcat"]
    assert labels["mark"]["type"] == "text" and labels["encoding"]["text"]["field"] == "name"
    assert labels["encoding"]["y"]["field"] == bars["layer"][0]["encoding"]["y"]["field"] == "row"
    assert spec["resolve"]["scale"]["y"] == "shared"
    names = spec["datasets"][labels["data"]["name"]]
    assert [r["name"] for r in names] == ["gw: GET", "db: q", "gw: render"]
    assert [r["indent"] for r in names] == [0, 12, 12]
    marks = [layer["mark"]["type"] for layer in bars["layer"]]
    assert marks == ["bar", "bar", "point"], "bars, the critical path on top, then errors"
    assert spec["description"].startswith("Waterfall of a trace: 3 spans from 2 services")


def test_a_trace_without_errors_draws_no_empty_layer() -> None:
    """An empty error layer makes Vega log 'Infinite extent for field "end_ms"'."""
    t1 = _t("t1")
    spec = charts.waterfall(charts.waterfall_rows(t1, traces.critical_path(t1))).to_dict()
    assert [layer["mark"]["type"] for layer in spec["hconcat"][1]["layer"]] == ["bar", "bar"]
    assert all(len(rows) for rows in spec["datasets"].values())
    no_path = charts.waterfall(charts.waterfall_rows(t1)).to_dict()
    assert len(no_path["hconcat"][1]["layer"]) == 1
    assert all(len(rows) for rows in no_path["datasets"].values())


def test_a_service_keeps_its_colour_in_every_chart() -> None:
    """One scale from the report's services: each chart maps a service to the same colour."""
    colors = charts.service_colors(["gw", "db", "cache", "gw"])
    assert colors.to_dict()["domain"] == ["cache", "db", "gw"]
    t2 = _t("t2")
    specs = [
        charts.waterfall(charts.waterfall_rows(t2), colors=colors).to_dict()["hconcat"][1]["layer"][
            0
        ]["encoding"]["color"],
        charts.self_time_bars(traces.statistics(SMALL), colors=colors).to_dict()["encoding"][
            "color"
        ],
        charts.service_graph(trace_sets.service_graph(SMALL), colors=colors).to_dict()["layer"][1][
            "encoding"
        ]["fill"],
    ]
    assert all(s["scale"] == colors.to_dict() for s in specs)
    default = charts.waterfall(charts.waterfall_rows(t2)).to_dict()
    own = default["hconcat"][1]["layer"][0]["encoding"]["color"]["scale"]
    assert dict(zip(own["domain"], own["range"], strict=True)) == dict(
        zip(colors.to_dict()["domain"][1:], colors.to_dict()["range"][:2], strict=True)
    )


def test_the_service_graph_legend_stays_clear_of_the_names() -> None:
    """The legend sits below the graph and the x axis is padded past the outer nodes."""
    spec = charts.service_graph(trace_sets.service_graph(SMALL)).to_dict()
    edges = spec["layer"][0]["encoding"]
    assert edges["color"]["legend"]["orient"] == "bottom"
    assert edges["x"]["scale"]["domain"] == [-0.5, 1.5]  # nodes at x = 0 and 1


def _exported(outputs: list[dict]) -> str:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("chart")
    cell.outputs = [nbformat.v4.new_output("display_data", data=data) for data in outputs]
    nb.cells.append(cell)
    body, _ = HTMLExporter(exclude_input=True).from_notebook_node(nb)
    return body


def test_report_charts_carry_alt_text_through_nbconvert(caplog) -> None:
    """nbconvert warns about every <img> without alt (it exports image/svg+xml outputs as
    <img>); the report renderer's <img> carries the chart's description, so no warning."""
    chart = charts.self_time_bars(traces.statistics(SMALL))
    bundle = charts.svg_with_alt(chart.to_dict())
    description = chart.to_dict()["description"]
    assert bundle["text/plain"] == f"[chart] {description}"
    assert f'alt="{description}"' in bundle["text/html"]
    with caplog.at_level(logging.WARNING):
        html = _exported([bundle])
    assert f'alt="{description}"' in html
    assert "Alternative text is missing" not in caplog.text
    plain = alt.vegalite.v6.display.svg_renderer(chart.to_dict())  # Altair's own "svg"
    with caplog.at_level(logging.WARNING):
        _exported([plain])
    assert "Alternative text is missing on 1 image(s)" in caplog.text


def test_extra_services_take_colours_after_the_windows() -> None:
    """A picked trace's new service does not shift the colours of the window's services."""
    window = charts.service_colors(["gw", "db"])
    extended = charts.service_colors(["gw", "db"], extra=["auth", "db"])
    assert extended.domain[:2] == window.domain and extended.range[:2] == window.range
    assert extended.domain[2:] == ["auth"]


def test_control_characters_in_chart_text_are_drawn_as_pictures_not_a_crash() -> None:
    """vl-convert aborts its process on a C0 control character in any text; a span or an
    incident id holding one must not kill a report's kernel. Run in a child process, so a
    regression fails this test instead of killing the test worker."""
    script = """
import altair as alt, pandas as pd
from obslib.charts import render
frame = pd.DataFrame({"x": [1, 2], "name": ["a\\x01b", "esc\\x1b[31m"]})
chart = alt.Chart(frame, title="INC-\\x01", description="alt").mark_text().encode(
    x="x:Q", text="name:N")
print(render.svg_with_alt(chart.to_dict())["text/html"].split("base64,")[1].split(chr(34))[0])
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-500:]
    svg = base64.b64decode(result.stdout.strip()).decode()
    assert "INC-\u2401" in svg and "a\u2401b" in svg and "esc\u241b[31m" in svg


def test_no_chart_module_imports_a_private_name_of_another() -> None:
    """What chart modules share lives in charts._common under public names; a chart module
    never reaches into another's privates (``from obslib.charts.slo import _x``)."""
    import ast
    from pathlib import Path

    folder = Path(charts.__file__).parent
    found = []
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("obslib.charts"):
                found += [
                    f"{path.name}: {node.module}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_")
                ]
    assert found == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"end": pd.Timestamp("2026-11-14 13:00", tz="UTC")}, "empty time window: end"),
        ({"end": pd.Timestamp("2026-11-14 14:00", tz="UTC")}, "empty time window: end"),
        ({"start": "yesterday"}, "start is not a time"),
        ({"step": pd.Timedelta(0)}, "step must be a positive duration"),
        ({"step": "-5min"}, "step must be a positive duration"),
        ({"step": "soon"}, "step must be a positive duration"),
    ],
    ids=[
        "an end before the start is an empty window",
        "an end at the start is an empty window",
        "a start that is no time is named",
        "a zero step is refused",
        "a negative step is refused",
        "a step that is no duration is refused",
    ],
)
def test_the_incident_timeline_reads_its_window_and_step_as_every_command_does(
    changes: dict, message: str
) -> None:
    """values.window and values.positive_duration: the messages every command shows."""
    from obslib.charts import incidents
    from obslib.errors import UsageError

    t0 = pd.Timestamp("2026-11-14 14:00", tz="UTC")
    minutes = pd.DataFrame({"minute": [t0], "requests": [10], "failed": [1]})
    events = pd.DataFrame({"time": [t0], "kind": ["triggered"], "what": ["page"]})
    args = {"start": t0, "end": t0 + pd.Timedelta(minutes=30), "step": pd.Timedelta(minutes=1)}
    with pytest.raises(UsageError, match=message):
        incidents.incident_timeline(minutes, events, service="api", title="t", **(args | changes))


def test_the_incident_timeline_takes_a_step_as_text() -> None:
    """A step written as people write it ("15min") draws the same chart as the Timedelta."""
    from obslib.charts import incidents

    t0 = pd.Timestamp("2026-11-14 14:00", tz="UTC")
    minutes = pd.DataFrame({"minute": [t0], "requests": [10], "failed": [1]})
    events = pd.DataFrame({"time": [t0], "kind": ["triggered"], "what": ["page"]})

    def spec(step: object) -> dict:
        return incidents.incident_timeline(
            minutes, events, start=t0, end=t0 + pd.Timedelta(hours=6), service="api",
            title="t", step=step,
        ).to_dict()  # fmt: skip

    assert spec("15min") == spec(pd.Timedelta(minutes=15))


def test_the_replay_reads_its_window_as_every_command_does() -> None:
    from obslib.charts import slo as slo_charts
    from obslib.errors import UsageError

    t0 = pd.Timestamp("2026-11-14 14:00", tz="UTC")
    firings = pd.DataFrame(
        {"slo": ["a / b"], "severity": ["page"], "rule": ["r"], "start": [t0], "end": [t0]}
    )
    incidents = pd.DataFrame(columns=["service_name", "incident_id", "triggered_at", "severity"])
    with pytest.raises(UsageError, match="empty time window: end"):
        slo_charts.replay_timeline(firings, incidents, start=t0, end=t0, title="t")


def test_status_and_error_colours_are_the_same_in_every_chart() -> None:
    """Red means bad everywhere: a violated SLO, a page, a failed span, a failed KPI."""
    from obslib.charts import _common, health, incidents
    from obslib.charts import slo as slo_charts

    red = _common.RED
    assert slo_charts.STATUS_COLORS["violated"] == slo_charts.SEVERITY_COLORS["page"] == red
    assert health.RESULT_COLORS["failed"] == incidents.FAILED_COLOR == red
    assert red not in _common.SERVICE_PALETTE  # a service is never drawn in the error colour
    assert health.RESULT_COLORS["passed"] == slo_charts.STATUS_COLORS["compliant"]


def _edges(rates: list[float]) -> pd.DataFrame:
    """gw calls api (left to right, same height) and api calls db, at the given error rates."""
    calls = [200, 100]
    return pd.DataFrame(
        {
            "caller": ["gw", "api"],
            "callee": ["api", "db"],
            "calls": calls,
            "errors": [round(r * c) for r, c in zip(rates, calls, strict=True)],
            "error_rate": rates,
            "p50_ms": [850.0, 3.0],
            "p99_ms": [372_000.0, 180_000.0],
        }
    )


def _heads(spec: dict) -> tuple[dict, list[dict]]:
    found = [
        layer
        for layer in spec["layer"]
        if layer["mark"]["type"] == "point" and layer["mark"].get("shape") == "triangle-up"
    ]
    assert len(found) == 1, "one arrowhead layer"
    return found[0], spec["datasets"][found[0]["data"]["name"]]


def test_service_graph_edges_end_in_an_arrowhead_at_the_callee() -> None:
    """Each edge gets a triangle turned from caller to callee (Vega turns clockwise from
    pointing up: 90 is to the right), just outside the callee's circle, in the edge's
    error-rate colour."""
    spec = charts.service_graph(_edges([0.0, 0.02])).to_dict()
    layer, rows = _heads(spec)
    assert [(r["caller"], r["callee"]) for r in rows] == [("gw", "api"), ("api", "db")]
    assert [round(r["angle"]) for r in rows] == [90, 90], "both calls run left to right"
    assert all(r["from_x"] < r["head_x"] < r["to_x"] for r in rows), "on the edge, short of it"
    assert layer["encoding"]["angle"]["scale"] is None
    edges = spec["layer"][0]["encoding"]["color"]
    assert layer["encoding"]["fill"]["scale"] == edges["scale"]
    assert layer["encoding"]["fill"]["legend"] is None, "one legend for the error rate"
    assert "an arrow from caller to callee" in spec["description"]


def test_service_graph_arrowheads_turn_with_the_edge() -> None:
    """An edge going up and right turns its head between up (0) and right (90), one going
    down and right between right (90) and down (180)."""
    edges = pd.DataFrame(
        {"caller": ["gw", "gw"], "callee": ["a", "b"], "calls": [1, 1], "errors": [0, 0],
         "error_rate": [0.0, 0.0], "p50_ms": [1.0, 1.0], "p99_ms": [1.0, 1.0]}
    )  # fmt: skip
    _, rows = _heads(charts.service_graph(edges).to_dict())
    for r in rows:  # the layout puts one callee above gw's height and one below it
        up = r["to_y"] > r["from_y"]
        assert (0 < r["angle"] < 90) if up else (90 < r["angle"] < 180), r


@pytest.mark.parametrize(
    ("rates", "top"),
    [([0.0, 0.02], 0.1), ([0.115, 0.02], 0.115)],
    ids=["rates under 10 % keep a 10 % scale", "an 11.5 % edge stretches the scale to 11.5 %"],
)
def test_the_error_rate_legend_covers_the_highest_edge(rates: list[float], top: float) -> None:
    """The colour scale (and its legend) runs to the highest edge's error rate at least."""
    spec = charts.service_graph(_edges(rates)).to_dict()
    domain = spec["layer"][0]["encoding"]["color"]["scale"]["domain"]
    assert domain == [0, top] and domain[1] >= max(rates)


def test_the_path_share_legend_names_the_day_before_as_the_titles_do() -> None:
    """Titles say "window vs day before": the legend says "window" and "day before"."""
    change = trace_sets.compare_critical_paths(SMALL, SMALL)
    spec = charts.path_share_comparison(change).to_dict()
    color = spec["encoding"]["color"]["scale"]
    assert color["domain"] == ["window", "day before"]
    assert {r["when"] for r in spec["datasets"][spec["data"]["name"]]} == {"window", "day before"}
    assert "against the day before" in spec["description"]
    assert "baseline" not in str(spec)


def test_durations_in_charts_read_as_everywhere_else() -> None:
    """Tooltips and alt text show durations as values.duration_text writes them (850 ms,
    6 min 12 s), not "850.0" or "372000.0 ms"."""
    from obslib.values import duration_text

    graph = charts.service_graph(_edges([0.0, 0.02])).to_dict()
    rows = graph["datasets"][graph["layer"][0]["data"]["name"]]
    assert [(r["p50"], r["p99"]) for r in rows] == [("850 ms", "6 min 12 s"), ("3.0 ms", "3 min")]
    t1 = _t("t1")
    spec = charts.waterfall(charts.waterfall_rows(t1, traces.critical_path(t1))).to_dict()
    data = spec["datasets"][(spec["hconcat"][0].get("data") or spec["data"])["name"]]
    assert [r["duration"] for r in data] == [
        duration_text(pd.Timedelta(milliseconds=r["duration_ms"])) for r in data
    ]
    assert "duration_ms" not in str(spec["hconcat"][1]["layer"][0]["encoding"]["tooltip"])
    assert " ms," in spec["description"] and ".0 ms" not in spec["description"]
    bars = charts.self_time_bars(traces.statistics(SMALL)).to_dict()
    assert all(r["self_time"].endswith(" ms") for r in bars["datasets"][bars["data"]["name"]])
