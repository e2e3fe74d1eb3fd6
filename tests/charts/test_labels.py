"""Chart labels: measured as vl-convert draws them, cut in the middle only past their room,
and every category axis given the room its labels need, so Vega cuts none with "…"."""

from __future__ import annotations

import html
import re
import string

import altair as alt
import pandas as pd
import pytest
import vl_convert

from obslib import charts
from obslib.charts import _common
from obslib.charts import health as health_charts
from obslib.charts import slo as slo_charts
from obslib.charts import traces as trace_charts
from tests.charts.test_slo import END, START, firings, incidents

LONG_CALL = "api-gateway: POST /api/v1/domains/generate/{request_id}/candidates/verify"


def _cut_by_vega(text: str, limit: float, font_size: float = 10) -> bool:
    """Whether vl-convert cuts ``text`` as an axis label with ``labelLimit=limit``."""
    frame = pd.DataFrame({"y": [text], "x": [1]})
    axis = alt.Axis(labelLimit=limit, labelFontSize=font_size)
    chart = alt.Chart(frame).mark_bar().encode(x="x:Q", y=alt.Y("y:N", axis=axis))
    return text not in _texts(vl_convert.vegalite_to_svg(chart.to_dict()))


def _texts(svg: str) -> list[str]:
    """The text of every <text> element of an SVG."""
    return [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]


@pytest.mark.parametrize(
    "text",
    [
        string.ascii_lowercase,
        string.ascii_uppercase,
        string.digits + string.punctuation,
        "domain-service \u2192 domain-generator generate_candidates",
        "connection pool exhausted: timed out waiting for a connection",
    ],
    ids=[
        "lower-case letters",
        "capitals",
        "digits and punctuation",
        "a call with an arrow",
        "a log message",
    ],
)
def test_text_px_predicts_where_vega_cuts_a_label(text: str) -> None:
    """Vega keeps the whole label at the width text_px gives (plus a pixel) and cuts it 5 %
    narrower: the measure is neither short (labels cut) nor long (room wasted)."""
    need = _common.text_px(text)
    assert not _cut_by_vega(text, need + 1)
    assert _cut_by_vega(text, need * 0.95)


@pytest.mark.parametrize(
    ("text", "room", "start", "end"),
    [
        ("api-gateway: GET /api/v1/domains", 400, "api-gateway: GET /api/v1/domains", ""),
        (LONG_CALL, 200, "api-gateway: POST", "candidates/verify"),
        ("abcdef", 1, "\u2026", ""),
    ],
    ids=[
        "a label that fits is kept whole",
        "a long label keeps its start and its end",
        "no room at all leaves the ellipsis",
    ],
)
def test_shorten_cuts_in_the_middle_only_past_the_room(
    text: str, room: float, start: str, end: str
) -> None:
    """The start names the service, the end the operation: the middle goes."""
    got = _common.shorten(text, room)
    assert got.startswith(start) and got.endswith(end)
    assert _common.text_px(got) <= room or got == "\u2026"
    assert (got == text) == (_common.text_px(text) <= room)


def test_fit_labels_gives_the_room_the_longest_needs_and_keeps_labels_apart() -> None:
    """labelLimit is the longest drawn label's width (Vega cuts none); two labels that would
    shorten to one text keep their whole text (they would merge into one row)."""
    drawn, limit = _common.fit_labels(["db: q", LONG_CALL], 200)
    assert drawn["db: q"] == "db: q" and drawn[LONG_CALL] != LONG_CALL
    assert limit >= max(_common.text_px(t) for t in drawn.values())
    assert not any(_cut_by_vega(t, limit) for t in drawn.values())
    twins = [
        LONG_CALL[:40] + "x" * 30 + LONG_CALL[-30:],
        LONG_CALL[:40] + "y" * 30 + LONG_CALL[-30:],
    ]
    drawn, _ = _common.fit_labels(twins, 200)
    assert drawn == {t: t for t in twins}


def _axis_labels(spec: dict) -> list[tuple[list[str], float]]:
    """(category labels, labelLimit) of every nominal y axis in a chart spec."""
    found = []

    def walk(node: dict) -> None:
        y = node.get("encoding", {}).get("y", {})
        if y.get("type") == "nominal" and y.get("axis") and "labelLimit" in y["axis"]:
            rows = spec["datasets"][node["data"]["name"]] if "data" in node else []
            found.append(([str(r[y["field"]]) for r in rows], y["axis"]["labelLimit"]))
        for key in ("layer", "hconcat", "vconcat"):
            for child in node.get(key, []):
                walk(child)

    walk(spec)
    return found


def _long_change() -> pd.DataFrame:
    operations = ["list_domains", LONG_CALL.split(": ", 1)[1], "generate_domains"]
    return pd.DataFrame(
        {
            "service_name": ["domain-service", "api-gateway", "domain-service"],
            "operation_name": operations,
            "per_trace_ms": [120.0, 3.0, 20.0],
            "per_trace_ms_baseline": [2.0, 1.0, 4.0],
            "delta_ms": [118.0, 2.0, 16.0],
        }
    )


def _long_coverage() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "service_name": ["domain-service", "api-gateway"],
            "operation_name": ["domain-generator generate_candidates", LONG_CALL],
            "client_spans": [2772, 100],
            "served": [2772, 90],
        }
    )


def _long_stats() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "operation_name": [LONG_CALL, "GET session"],
            "self_total_ms": [365.4, 12.0],
            "count": [3, 4],
            "self_pct": [90.0, 10.0],
        }
    )


@pytest.mark.parametrize(
    "build",
    [
        lambda: trace_charts.path_share_comparison(_long_change()),
        lambda: health_charts.coverage_chart(_long_coverage()),
        lambda: trace_charts.self_time_bars(_long_stats(), by="operation_name"),
        lambda: slo_charts.replay_timeline(
            firings().assign(slo="domain-service / " + "availability-of-the-api-" * 4),
            incidents(),
            start=START,
            end=END,
            title="t",
        ),
    ],
    ids=[
        "the window against the day before",
        "trace coverage per call",
        "self time per operation",
        "the alert replay's rows",
    ],
)
def test_no_category_label_is_cut_by_vega(build) -> None:
    """Each label's axis has room for it (labelLimit at least its width), long labels are
    cut in the middle by the chart itself, and the drawn SVG has no label ending in "…"."""
    spec = build().to_dict()
    axes = _axis_labels(spec)
    assert axes, "the chart has a category axis with a labelLimit"
    for labels, limit in axes:
        assert all(_common.text_px(label) <= limit for label in labels), (labels, limit)
    svg = vl_convert.vegalite_to_svg(spec)
    texts = _texts(svg)
    assert not [t for t in texts if t.endswith("\u2026")], texts
    width = float(re.search(r'<svg[^>]* width="([\d.]+)"', svg).group(1))
    assert width <= 900


def test_waterfall_names_fit_their_column_at_every_depth() -> None:
    """Deeper names start further right and get less room; each drawn name fits what is
    left of the 400 px column, and the tooltip keeps the operation whole."""
    depth = list(range(20))
    spans = pd.DataFrame(
        {
            "row": depth,
            "depth": depth,
            "span_id": [f"s{i}" for i in depth],
            "service": "api-gateway",
            "operation": LONG_CALL.split(": ", 1)[1],
            "start_ms": 0.0,
            "end_ms": 850.0,
            "duration_ms": 850.0,
            "status": "ok",
            "kind": "server",
            "on_critical_path": False,
        }
    )
    rows = charts.WaterfallRows(
        spans, pd.DataFrame(columns=["span_id", "row", "start_ms", "end_ms"]), 0, None
    )
    spec = charts.waterfall(rows).to_dict()
    labels = spec["hconcat"][0]
    data = spec["datasets"][(labels.get("data") or spec["data"])["name"]]
    for row in data:
        assert row["indent"] + _common.text_px(row["name"], 11) <= 400 - 8
    assert max(r["indent"] for r in data) == 200  # half the column
    assert "limit" not in labels["mark"], "the chart shortens names itself; Vega cuts none"
    svg = vl_convert.vegalite_to_svg(spec)
    assert not [t for t in _texts(svg) if t.endswith("\u2026")]
