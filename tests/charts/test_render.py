"""How charts display (obslib.charts.render): the report's SVG, and in JupyterLab a plain
output bundle (Vega for Lab's own renderer, the same SVG beside it) with no widget and no
JavaScript, so a saved notebook shows its charts again when reopened."""

from __future__ import annotations

import json

import altair as alt
import pandas as pd
import pytest

from obslib import charts
from obslib.charts import render

WIDGET_MIMETYPE = "application/vnd.jupyter.widget-view+json"


def _chart(description: str | None = "calls per minute") -> alt.Chart:
    frame = pd.DataFrame({"minute": [1, 2, 3], "calls": [4, 5, 6]})
    chart = alt.Chart(frame).mark_bar(tooltip=True).encode(x="minute:O", y="calls:Q")
    return (
        chart.properties(title="calls")
        if description is None
        else chart.properties(title="calls", description=description)
    )


@pytest.fixture
def lab_renderer():
    """The JupyterLab renderer enabled, Altair's default again afterwards."""
    charts.use_renderer(False)
    try:
        yield
    finally:
        alt.renderers.enable("default")


@pytest.mark.parametrize(
    ("report", "renderer"),
    [
        pytest.param(True, render.REPORT_RENDERER, id="a report draws static SVG with alt text"),
        pytest.param(False, render.LAB_RENDERER, id="JupyterLab gets Vega and the same SVG"),
    ],
)
def test_use_renderer_picks_the_report_or_the_lab_renderer(report: bool, renderer: str) -> None:
    """``use_renderer(report_mode)``, the notebooks' first cell, enables one of the two."""
    try:
        charts.use_renderer(report)
        assert alt.renderers.active == renderer
    finally:
        alt.renderers.enable("default")


def test_a_lab_chart_is_vega_for_lab_and_the_reports_svg_beside_it(lab_renderer) -> None:
    """The bundle holds the Vega spec Lab's vega5 extension draws (SVG renderer, no action
    menu), the report's own SVG as the static fallback, and the description as plain text;
    no text/html (Lab would prefer it to Vega) and no widget (gone after a reopen)."""
    chart = _chart()
    data, metadata = chart._repr_mimebundle_()
    assert set(data) == {render.VEGA_MIMETYPE, render.SVG_MIMETYPE, "text/plain"}
    assert data[render.SVG_MIMETYPE] == render.chart_svg(chart.to_dict())
    assert data["text/plain"] == "[chart] calls per minute"
    assert metadata == {render.VEGA_MIMETYPE: {"embed_options": render.LAB_EMBED_OPTIONS}}
    vega = data[render.VEGA_MIMETYPE]
    assert vega["description"] == "calls per minute"
    assert "$schema" not in vega  # Vega 6's; Lab's Vega 5 runtime draws the spec as it is
    assert [d["name"] for d in vega["data"] if "url" in d] == []  # inline: nothing to fetch


def test_a_lab_chart_carries_no_javascript(lab_renderer) -> None:
    """Altair's widget shipped ~905 k characters of JavaScript with every chart; a chart
    output now carries only its data: the spec and the SVG, no script, no widget."""
    data, _ = _chart()._repr_mimebundle_()
    text = json.dumps(data)
    assert WIDGET_MIMETYPE not in data
    assert "<script" not in text and "function(" not in text
    assert len(text) < 50_000


@pytest.mark.parametrize(
    ("description", "label", "plain"),
    [
        pytest.param(
            "calls per minute", "calls per minute", "calls per minute", id="a description"
        ),
        pytest.param(None, render.NO_DESCRIPTION, render.NO_DESCRIPTION, id="none: a note"),
        pytest.param(
            '<script>alert("x")</script>',
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;",
            '<script>alert("x")</script>',
            id="markup is escaped in the SVG's label and kept as text",
        ),
        pytest.param(
            "INC-\x01", "INC-\u2401", "INC-\x01", id="a control character is drawn as its picture"
        ),
    ],
)
def test_the_svg_is_labelled_with_the_charts_description(
    lab_renderer, description: str | None, label: str, plain: str
) -> None:
    """The static SVG (Lab's fallback, the report's image) names the chart in an escaped
    ``aria-label``; vl-convert never sees a control character (it aborts the kernel)."""
    data, _ = _chart(description)._repr_mimebundle_()
    svg = data[render.SVG_MIMETYPE]
    assert svg.startswith(f'<svg role="img" aria-label="{label}" ')
    assert data["text/plain"] == f"[chart] {plain}"
