"""Observability-health charts: the KPIs against their targets, and which calls lack a
server span.

Why they look as they do:
- The KPIs mix units (percent and seconds), so each KPI gets its own row and its own axis
  (0..100 for percentages) rather than one shared scale that would make 60 s and 95 % look
  alike; the target is a black tick on the row.
- Pass/fail is said in words at the end of each row as well as in colour (green passed, red
  failed, grey no data), so the chart reads in greyscale and in a screen reader's alt text.
- A KPI without data has no bar: "no data" never looks like 0.
- The coverage breakdown draws the caller operations missing most server spans first and at
  most ``max_rows`` of them; the subtitle says how many more there are.
- Empty frames are refused with an InputError (the view shows its own "no data" note), as
  every chart does (``charts._common``).
"""

from __future__ import annotations

import math

import altair as alt
import pandas as pd

from obslib import health
from obslib.charts._common import INK, STATUS_COLORS, fit_labels, refuse_empty
from obslib.errors import InputError
from obslib.schema import require_columns
from obslib.values import plural

RESULT_COLORS = {
    "passed": STATUS_COLORS["compliant"],
    "failed": STATUS_COLORS["violated"],
    "no data": "#9e9e9e",
}
PLOT_WIDTH = 380  # the bars; labels take ~300 px on the left and the verdicts on the right
_LABEL_PX = 300  # at most, for the labels left of the bars: the chart stays under 900 px
_ROW_PX = 26
MAX_OPERATIONS = 25


def _result(passed: object) -> str:
    if passed is None or (isinstance(passed, float) and math.isnan(passed)):
        return "no data"
    return "passed" if bool(passed) else "failed"


def kpi_chart(scorecard: pd.DataFrame, *, title: str = "Observability health") -> alt.VConcatChart:
    """One row per KPI of ``health.scorecard``: a bar for its value on the KPI's own axis, a
    tick at the target, and the value, target and verdict written at the end of the row."""
    require_columns(scorecard, health.SCORECARD_COLUMNS, "scorecard")
    refuse_empty(scorecard, "scorecard")
    rows = []
    for i, record in enumerate(scorecard.to_dict("records")):
        name = str(record["kpi"])
        if name not in health.TARGETS:
            raise InputError(f"scorecard row {i}: unknown kpi {name!r}")
        rows.append(_kpi_row(record))
    chart = alt.vconcat(*rows, spacing=6).properties(
        title=alt.Title(title, subtitle=["each KPI on its own axis; the black tick is its target"]),
        description=_kpi_description(scorecard),
    )
    return chart.configure_view(stroke=None)


def _kpi_row(record: dict) -> alt.LayerChart:
    name = str(record["kpi"])
    target = health.TARGETS[name]
    value = float(record["value"])
    result = _result(record["passed"])
    if target.unit == "%":
        domain = [min(0.0, value if math.isfinite(value) else 0.0), 100.0]
    else:
        top = max(2 * target.threshold, value * 1.1 if math.isfinite(value) else 0.0)
        domain = [min(0.0, value if math.isfinite(value) else 0.0), top]
    data = pd.DataFrame(
        {
            "kpi": [f"{name} ({target.unit})"],
            "value": [value if math.isfinite(value) else None],
            "threshold": [target.threshold],
            "label": [
                f"{health.shown(value, name)} \u2014 {result} (target {record['target']})"
                if math.isfinite(value)
                else f"no data (target {record['target']})"
            ],
        }
    )
    scale = alt.Scale(domain=domain, nice=False)
    _, limit = fit_labels(data["kpi"], _LABEL_PX, font_size=11)
    y = alt.Y("kpi:N", title=None, axis=alt.Axis(labelLimit=limit, labelFontSize=11))
    x = alt.X("value:Q", title=None, scale=scale, axis=alt.Axis(tickCount=5))
    base = alt.Chart(data)
    bar = base.mark_bar(height=14, color=RESULT_COLORS[result]).encode(x=x, y=y)
    tick = base.mark_tick(color=INK, opacity=1, thickness=2, size=20).encode(
        x=alt.X("threshold:Q", title=None, scale=scale, axis=alt.Axis(tickCount=5)), y=y
    )
    label = base.mark_text(align="left", dx=8, fontSize=11, color="#333333").encode(
        x=alt.value(PLOT_WIDTH), y=y, text="label:N"
    )
    layers = [tick, label] if data["value"].isna().all() else [bar, tick, label]
    return alt.layer(*layers).properties(width=PLOT_WIDTH, height=_ROW_PX)


def _kpi_description(scorecard: pd.DataFrame) -> str:
    results = [_result(p) for p in scorecard["passed"]]
    counts = {r: results.count(r) for r in RESULT_COLORS}
    parts = [
        f"{row['kpi']} {health.shown(float(row['value']), str(row['kpi']))}"
        f" against {row['target']}: {result}"
        for row, result in zip(scorecard.to_dict("records"), results, strict=True)
    ]
    return (
        f"Observability health KPIs against their targets: {counts['passed']} of "
        f"{len(scorecard)} passed, {counts['failed']} failed, {counts['no data']} without "
        "data. " + "; ".join(parts) + "."
    )


def coverage_chart(
    counts: pd.DataFrame, *, max_rows: int = MAX_OPERATIONS, title: str = "Trace coverage"
) -> alt.LayerChart:
    """Trace coverage per caller service and operation (``health_data.client_coverage``):
    the share of client spans with a server child, the operations missing most server spans
    first, at most ``max_rows`` of them, with the target as a dashed rule."""
    rows = health.coverage_breakdown(counts)
    refuse_empty(rows, "client coverage")
    if max_rows < 1:
        raise InputError(f"max_rows must be at least 1, not {max_rows}")
    target = health.TARGETS[health.TRACE_COVERAGE]
    drawn, rest = rows.iloc[:max_rows].copy(), rows.iloc[max_rows:]
    drawn["call"] = drawn["service_name"].astype(str) + " \u2192 " + drawn["operation_name"]
    shown, limit = fit_labels(drawn["call"], _LABEL_PX)
    drawn["shown"] = drawn["call"].map(shown)
    drawn["result"] = [_result(target.met(v)) for v in drawn["coverage"]]
    drawn["label"] = [
        f"{health.shown(c, health.TRACE_COVERAGE)} ({u:,} of {n:,} without a server span)"
        for c, u, n in zip(drawn["coverage"], drawn["unserved"], drawn["client_spans"], strict=True)
    ]
    order = drawn["shown"].tolist()
    scale = alt.Scale(domain=[0, 100], nice=False)
    y = alt.Y("shown:N", title=None, sort=order, axis=alt.Axis(labelLimit=limit))
    base = alt.Chart(drawn)
    bars = base.mark_bar(height=12).encode(
        x=alt.X("coverage:Q", title="client spans with a server child (%)", scale=scale),
        y=y,
        color=alt.Color(
            "result:N",
            scale=alt.Scale(domain=["passed", "failed"], range=list(RESULT_COLORS.values())[:2]),
            legend=alt.Legend(title=f"target {target.text}", orient="bottom"),
        ),
        tooltip=[
            alt.Tooltip("call:N", title="call"),
            alt.Tooltip("client_spans:Q", title="client spans", format=","),
            alt.Tooltip("unserved:Q", title="without a server span", format=","),
            alt.Tooltip("coverage:Q", title="coverage (%)", format=".2f"),
        ],
    )
    labels = base.mark_text(align="left", dx=8, fontSize=10, color="#333333").encode(
        x=alt.value(PLOT_WIDTH), y=y, text="label:N"
    )
    rule = (
        alt.Chart(pd.DataFrame({"threshold": [target.threshold]}))
        .mark_rule(color=INK, strokeDash=[6, 4])
        .encode(x=alt.X("threshold:Q", scale=scale))
    )
    subtitle = ["caller service \u2192 operation; the dashed line is the target"]
    if len(rest):
        gaps = int((rest["unserved"] > 0).sum())
        subtitle.append(
            f"{plural(len(rest), 'more caller operation')} not shown"
            + (f", {gaps} of them with gaps" if gaps else ", all fully served")
        )
    return alt.layer(rule, bars, labels).properties(
        title=alt.Title(title, subtitle=subtitle),
        width=PLOT_WIDTH,
        height=_ROW_PX * len(drawn),
        description=_coverage_description(rows, drawn, rest),
    )


def _coverage_description(rows: pd.DataFrame, drawn: pd.DataFrame, rest: pd.DataFrame) -> str:
    total, served = int(rows["client_spans"].sum()), int(rows["served"].sum())
    overall = health.shown(100.0 * served / total, health.TRACE_COVERAGE)
    gaps = drawn[drawn["unserved"] > 0]
    named = "; ".join(
        f"{r['call']} {health.shown(r['coverage'], health.TRACE_COVERAGE)}"
        f" ({r['unserved']:,} of {r['client_spans']:,} without a server span)"
        for r in gaps.head(5).to_dict("records")
    )
    text = (
        f"Trace coverage per caller operation: {served:,} of {total:,} client spans have a"
        f" server child ({overall}) over {plural(len(rows), 'caller operation')}"
    )
    text += f"; most unserved: {named}" if named else "; every call has a server span"
    if len(rest):
        text += f"; {len(rest)} more not drawn"
    return text + "."
