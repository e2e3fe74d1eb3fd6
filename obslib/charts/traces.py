"""Trace charts over pre-aggregated frames: waterfall, self time, service graph, path shares.

Charts refuse more than ``MAX_ROWS`` rows rather than lifting Altair's limit: a huge trace's
waterfall folds its deepest levels and says what was folded. Labels get the room they need
up to a limit and are cut in the middle past it (``_common.fit_labels``), the whole text in
the tooltip; durations read as everywhere else (``values.duration_text``: ``850 ms``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd

from obslib.charts._common import (
    MAX_ROWS,
    RED,
    SERVICE_PALETTE,
    fit_labels,
    service_colors,
    shorten,
)
from obslib.values import duration_text

_PATH_COLOR = "#111111"
_LABEL_WIDTH = 400  # px of the waterfall's label column: with 640 px of bars, 1,040 px in all
_WATERFALL_FONT_PX = 11
_MOST_LABEL_PX = 300  # a bar chart's category labels beside a 560 px plot: under 900 px in all
BASELINE_NAME = "day before"  # what the views compare a window with (``views.trace_window``)
# The service graph's plot and nodes, in px: arrowheads stop at the callee's circle.
_GRAPH_WIDTH, _GRAPH_HEIGHT = 640, 360
_NODE_SIZE = 300  # area in px^2 of a service's circle
_EDGE_PX = (1, 8)  # an edge's width: 1 px for no call to 8 px for the most
_ARROW_INK = "#444444"  # the arrowhead's outline: a pale edge's head still shows


def _ms_text(ms: float) -> str:
    """A duration given in ms, as every report writes one."""
    return duration_text(pd.Timedelta(milliseconds=float(ms)))


def _services_scale(colors: alt.Scale | None, services) -> alt.Scale:
    return colors if colors is not None else service_colors(services)


@dataclass(frozen=True)
class WaterfallRows:
    """The rows a waterfall draws, and what had to be folded to stay under MAX_ROWS."""

    rows: pd.DataFrame
    path: pd.DataFrame  # critical-path sections: span_id, row, start_ms, end_ms
    folded_spans: int
    max_depth: int | None

    @property
    def note(self) -> str:
        if not self.folded_spans:
            return ""
        return (
            f"{self.folded_spans} spans deeper than level {self.max_depth} folded into "
            f"their ancestors to keep the chart under {MAX_ROWS} rows"
        )


def waterfall_rows(
    spans: pd.DataFrame, path: pd.DataFrame | None = None, *, max_rows: int = MAX_ROWS
) -> WaterfallRows:
    """One row per span in tree order (parents before children, siblings by start) with
    offsets from the trace start, depth-indented labels and critical-path membership.

    ``spans`` needs ``depth`` (``obslib.traces.reconstruct``). Deep levels fold when the
    trace has more than ``max_rows`` spans.
    """
    frame = spans.reset_index(drop=True)
    folded, keep_depth = 0, None
    if len(frame) > max_rows:
        counts = frame["depth"].value_counts().sort_index().cumsum()
        keep_depth = (
            int(counts[counts <= max_rows].index.max()) if (counts <= max_rows).any() else 0
        )
        folded = int((frame["depth"] > keep_depth).sum())
        frame = frame[frame["depth"] <= keep_depth].reset_index(drop=True)
    order = _tree_order(frame)
    frame = frame.iloc[order].reset_index(drop=True)
    t0 = frame["start_time"].min()
    ms = pd.Timedelta(milliseconds=1)
    on_path = set(path["span_id"]) if path is not None else set()
    rows = pd.DataFrame(
        {
            "row": np.arange(len(frame)),
            "depth": frame["depth"].to_numpy(dtype=np.int64),
            "span_id": frame["span_id"].astype(str),
            "service": frame["service_name"].astype(str),
            "operation": frame["operation_name"].astype(str),
            "start_ms": (frame["start_time"] - t0) / ms,
            "end_ms": (frame["end_time"] - t0) / ms,
            "duration_ms": (frame["end_time"] - frame["start_time"]) / ms,
            "status": frame["status"].astype(str),
            "kind": frame["span_kind"].astype(str) if "span_kind" in frame else "",
            "on_critical_path": frame["span_id"].isin(on_path).to_numpy(),
        }
    )
    sections = pd.DataFrame(columns=["span_id", "row", "start_ms", "end_ms"])
    if path is not None and len(path):
        sections = path.merge(rows[["span_id", "row"]], on="span_id")
        sections = sections.assign(
            start_ms=(sections["section_start"] - t0) / ms,
            end_ms=(sections["section_end"] - t0) / ms,
        )[["span_id", "row", "start_ms", "end_ms"]]
    return WaterfallRows(rows, sections, folded, keep_depth)


def _tree_order(frame: pd.DataFrame) -> np.ndarray:
    """Depth-first order with an explicit stack (no recursion limit)."""
    from obslib.traces import parent_index

    parent = parent_index(frame)
    start = frame["start_time"].to_numpy()
    children: dict[int, list[int]] = {}
    for child in np.argsort(start, kind="stable"):
        children.setdefault(int(parent[child]), []).append(int(child))
    order: list[int] = []
    stack = list(reversed(children.get(-1, [])))
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(reversed(children.get(node, [])))
    return np.array(order, dtype=np.int64)


def waterfall(
    rows: WaterfallRows, *, title: str = "", colors: alt.Scale | None = None
) -> alt.HConcatChart:
    """Span labels in a column of their own (as Jaeger draws them) beside bars by tree order,
    coloured by service; the critical path drawn over the bars in black, failed spans marked
    red; tooltips carry the span's attributes. Empty layers are left out (an empty layer
    makes Vega log "Infinite extent")."""
    full = rows.rows["service"] + ": " + rows.rows["operation"]
    # 12 px per level, at most half the column (level 12): deeper names start there too
    indent = (rows.rows["depth"] * 12).clip(upper=_LABEL_WIDTH // 2)
    data = rows.rows.assign(
        indent=indent,
        name=[
            shorten(text, _LABEL_WIDTH - 8 - i, _WATERFALL_FONT_PX)
            for text, i in zip(full, indent, strict=True)
        ],
        duration=[_ms_text(ms) for ms in rows.rows["duration_ms"]],
    )
    height = max(60, min(18 * len(data), 4000))
    y = alt.Y("row:O", axis=None, sort="ascending")
    tooltip = ["service", "operation", "span_id", "duration:N", "status", "kind"]
    labels = (
        alt.Chart(data)
        .mark_text(align="left", baseline="middle", fontSize=_WATERFALL_FONT_PX)
        .encode(
            x=alt.X("indent:Q", scale=None, axis=None),
            y=y,
            text="name:N",
            tooltip=tooltip,
        )
        .properties(width=_LABEL_WIDTH, height=height, view=alt.ViewBackground(stroke=None))
    )
    layers = [
        alt.Chart(data)
        .mark_bar(height={"band": 0.7})
        .encode(
            x=alt.X("start_ms:Q", title="time since the trace started (ms)"),
            x2="end_ms:Q",
            y=y,
            color=alt.Color(
                "service:N",
                scale=_services_scale(colors, data["service"]),
                legend=alt.Legend(title="service", orient="bottom", columns=4),
            ),
            tooltip=tooltip,
        )
    ]
    if len(rows.path):
        layers.append(
            alt.Chart(rows.path)
            .mark_bar(height={"band": 0.3}, color=_PATH_COLOR)
            .encode(x="start_ms:Q", x2="end_ms:Q", y=y)
        )
    failed = data[data["status"] != "ok"]
    if len(failed):
        layers.append(
            alt.Chart(failed)
            .mark_point(shape="triangle-left", color=RED, filled=True, size=60)
            .encode(x="end_ms:Q", y=y, tooltip=tooltip)
        )
    bars = alt.layer(*layers).properties(width=640, height=height)
    subtitle = ["black: critical path" + (", red triangles: failed spans" if len(failed) else "")]
    if rows.note:
        subtitle.append(rows.note)
    return (
        alt.hconcat(labels, bars, spacing=4)
        .resolve_scale(y="shared")
        .properties(
            title=alt.Title(title, subtitle=subtitle, anchor="start"),
            description=waterfall_description(rows, title),
        )
    )


def waterfall_description(rows: WaterfallRows, title: str = "") -> str:
    """One sentence for the waterfall's alt text."""
    data = rows.rows
    total = float(data["end_ms"].max()) if len(data) else 0.0
    failed = int((data["status"] != "ok").sum())
    what = title or "a trace"
    return (
        f"Waterfall of {what}: {len(data)} spans from {data['service'].nunique()} services "
        f"over {_ms_text(total)}, {failed} failed; the critical path is drawn in black."
    )


def self_time_bars(
    stats: pd.DataFrame,
    by: str = "service_name",
    *,
    title: str = "",
    colors: alt.Scale | None = None,
) -> alt.Chart:
    """Self time per group (``obslib.traces.statistics`` output), largest first."""
    data = stats.head(40).copy()
    drawn, limit = fit_labels(data[by], _MOST_LABEL_PX)
    data["label"] = data[by].astype(str).map(drawn)
    data["self_time"] = [_ms_text(ms) for ms in data["self_total_ms"]]
    color = (
        alt.Color(f"{by}:N", scale=_services_scale(colors, data[by]), legend=None)
        if by == "service_name"
        else alt.value(SERVICE_PALETTE[0])
    )
    top = (
        f"; most in {data.iloc[0][by]} ({_ms_text(data.iloc[0]['self_total_ms'])})"
        if len(data)
        else ""
    )
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("self_total_ms:Q", title="self time (ms)"),
            y=alt.Y("label:N", sort="-x", title=None, axis=alt.Axis(labelLimit=limit)),
            color=color,
            tooltip=[
                alt.Tooltip(f"{by}:N"),
                alt.Tooltip("self_time:N", title="self time"),
                "count",
                alt.Tooltip("self_pct:Q", title="self time (%)", format=".1f"),
            ],
        )
        .properties(
            title=title,
            width=560,
            description=f"Bar chart of self time per {by.replace('_', ' ')} "
            f"for {len(data)} groups{top}.",
        )
    )


def service_graph(
    edges: pd.DataFrame, *, title: str = "", colors: alt.Scale | None = None
) -> alt.LayerChart:
    """Services in layers from the entry point, edges sized by calls, coloured by errors,
    an arrowhead at the callee's end of each (calls go from caller to callee).

    The axes are padded so the outermost names fit, the legend sits below the graph (on
    the right it covered the last layer's names), and the error-rate scale runs from 0 to
    at least the highest edge's rate (10 % when every edge is below it)."""
    nodes = _layout(edges)
    lines = edges.merge(nodes.add_prefix("from_"), left_on="caller", right_on="from_service")
    lines = lines.merge(nodes.add_prefix("to_"), left_on="callee", right_on="to_service")
    lines = lines.assign(
        p50=[_ms_text(ms) for ms in lines["p50_ms"]],
        p99=[_ms_text(ms) for ms in lines["p99_ms"]],
    )
    right = float(nodes["x"].max()) if len(nodes) else 1.0
    x_scale = alt.Scale(domain=[-0.5, right + 0.5], nice=False, zero=False)
    y_scale = alt.Scale(domain=[0.0, 1.0], nice=False)
    rate_scale = alt.Scale(scheme="reds", domain=[0, error_rate_top(edges["error_rate"])])
    color = alt.Color(
        "error_rate:Q",
        scale=rate_scale,
        title="error rate",
        legend=alt.Legend(orient="bottom", format=".0%"),
    )
    tooltip = [
        "caller",
        "callee",
        "calls",
        "errors",
        alt.Tooltip("error_rate:Q", title="error rate", format=".1%"),
        alt.Tooltip("p50:N", title="p50"),
        alt.Tooltip("p99:N", title="p99"),
    ]
    edge_marks = (
        alt.Chart(lines)
        .mark_rule(opacity=0.7)
        .encode(
            x=alt.X("from_x:Q", axis=None, scale=x_scale),
            y=alt.Y("from_y:Q", axis=None, scale=y_scale),
            x2="to_x:Q",
            y2="to_y:Q",
            strokeWidth=alt.StrokeWidth(
                "calls:Q",
                scale=alt.Scale(domain=[0, _most_calls(edges)], range=list(_EDGE_PX)),
                legend=None,
            ),
            color=color,
            tooltip=tooltip,
        )
    )
    node_marks = (
        alt.Chart(nodes)
        .mark_circle(size=_NODE_SIZE, opacity=1)
        .encode(
            x=alt.X("x:Q", scale=x_scale),
            y=alt.Y("y:Q", scale=y_scale),
            fill=alt.Fill(
                "service:N", scale=_services_scale(colors, nodes["service"]), legend=None
            ),
            tooltip=["service"],
        )
    )
    names = (
        alt.Chart(nodes)
        .mark_text(dy=-16, fontSize=11)
        .encode(x=alt.X("x:Q", scale=x_scale), y=alt.Y("y:Q", scale=y_scale), text="service")
    )
    layers = [edge_marks, node_marks]
    heads = _arrowheads(lines, right, _most_calls(edges))
    if len(heads):
        layers.append(
            alt.Chart(heads)
            .mark_point(
                shape="triangle-up", filled=True, opacity=1, stroke=_ARROW_INK, strokeWidth=0.8
            )
            .encode(
                x=alt.X("head_x:Q", scale=x_scale),
                y=alt.Y("head_y:Q", scale=y_scale),
                angle=alt.Angle("angle:Q", scale=None),
                size=alt.Size("head_size:Q", scale=None),
                # the edges' colours, without a second legend
                fill=alt.Fill("error_rate:Q", scale=rate_scale, legend=None),
                tooltip=tooltip,
            )
        )
    layers.append(names)  # over the arrowheads
    failing = edges[edges["errors"] > 0]
    worst = (
        f"; the highest error rate is {failing.iloc[failing['error_rate'].argmax()]['caller']} -> "
        f"{failing.iloc[failing['error_rate'].argmax()]['callee']} "
        f"({failing['error_rate'].max():.1%})"
        if len(failing)
        else "; no call failed"
    )
    return alt.layer(*layers).properties(
        title=title,
        width=_GRAPH_WIDTH,
        height=_GRAPH_HEIGHT,
        description=f"Service graph of {len(nodes)} services and {len(edges)} caller-callee "
        f"edges, an arrow from caller to callee, line width by calls and colour by error "
        f"rate{worst}.",
    )


def error_rate_top(rates: pd.Series) -> float:
    """The top of the error-rate colour scale: 10 %, or the highest rate when above it (a
    legend that stops under an edge's rate misreads it)."""
    highest = pd.to_numeric(rates, errors="coerce").max()
    return max(0.1, float(highest)) if pd.notna(highest) else 0.1


def _most_calls(edges: pd.DataFrame) -> float:
    return max(1.0, float(edges["calls"].max())) if len(edges) else 1.0


def _arrowheads(lines: pd.DataFrame, right: float, most_calls: float) -> pd.DataFrame:
    """Where each edge's arrowhead sits, how big it is and how it turns: on the edge, just
    outside the callee's circle, twice as wide as the edge plus 4 px (8 to 16 px),
    pointing from caller to callee. Vega rotates a ``triangle-up`` by ``angle`` degrees
    clockwise in screen px, so the direction is taken in px (the axes have different px per
    unit). A service's calls to itself have no direction to show."""
    px_x = _GRAPH_WIDTH / (right + 1.0)  # the x domain is [-0.5, right + 0.5]
    dx = (lines["to_x"] - lines["from_x"]) * px_x
    dy = -(lines["to_y"] - lines["from_y"]) * _GRAPH_HEIGHT  # screen y grows downwards
    length = np.hypot(dx, dy)
    low, high = _EDGE_PX
    width = low + (high - low) * lines["calls"].astype(float) / most_calls
    side = np.clip(2 * width + 4, 8.0, 16.0)  # px across the triangle
    back = math.sqrt(_NODE_SIZE / math.pi) + side / 2 + 1  # px from the callee's centre
    keep = (length > 2 * back).to_numpy()
    t = (1 - back[keep] / length[keep]).to_numpy()
    heads = lines[keep].copy()
    heads["head_size"] = side[keep] ** 2  # Vega's symbol size is an area in px^2
    heads["head_x"] = heads["from_x"] + t * (heads["to_x"] - heads["from_x"])
    heads["head_y"] = heads["from_y"] + t * (heads["to_y"] - heads["from_y"])
    heads["angle"] = np.degrees(np.arctan2(dx[keep], -dy[keep])) % 360
    return heads


def _layout(edges: pd.DataFrame) -> pd.DataFrame:
    """Layer = longest call chain from a service nobody calls; spread evenly per layer."""
    services = sorted(set(edges["caller"]) | set(edges["callee"]))
    layer = {s: 0 for s in services}
    for _ in range(len(services)):  # longest path by relaxation; cycles stop at n rounds
        changed = False
        for caller, callee in zip(edges["caller"], edges["callee"], strict=True):
            if caller != callee and layer[callee] < layer[caller] + 1 <= len(services):
                layer[callee] = layer[caller] + 1
                changed = True
        if not changed:
            break
    rows = []
    for depth in sorted(set(layer.values())):
        members = sorted(s for s in services if layer[s] == depth)
        for i, s in enumerate(members):
            rows.append((s, float(depth), (i + 1) / (len(members) + 1)))
    return pd.DataFrame(rows, columns=["service", "x", "y"])


def path_share_comparison(
    change: pd.DataFrame, *, top: int = 12, title: str = "", baseline: str = BASELINE_NAME
) -> alt.Chart:
    """Critical-path time per trace, window against baseline (``compare_critical_paths``);
    the legend names the baseline as the title does (``baseline``, "day before")."""
    head = change.head(top).copy()
    head["group"] = head["service_name"].astype(str) + ": " + head["operation_name"].astype(str)
    drawn, limit = fit_labels(head["group"], _MOST_LABEL_PX)
    head["label"] = head["group"].map(drawn)
    long = head.melt(
        id_vars=["group", "label"],
        value_vars=["per_trace_ms", "per_trace_ms_baseline"],
        var_name="when",
        value_name="ms",
    )
    long["when"] = long["when"].map({"per_trace_ms": "window", "per_trace_ms_baseline": baseline})
    long["time"] = [_ms_text(ms) for ms in long["ms"]]
    grew = head.iloc[0] if len(head) else None
    biggest = (
        f"; the largest increase is {grew['group']} ({_signed_ms(grew['delta_ms'])} per trace)"
        if grew is not None
        else ""
    )
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=alt.X("ms:Q", title="critical-path time per trace (ms)"),
            y=alt.Y(
                "label:N", sort=list(head["label"]), title=None, axis=alt.Axis(labelLimit=limit)
            ),
            yOffset=alt.YOffset("when:N", sort=["window", baseline]),
            color=alt.Color(
                "when:N",
                scale=alt.Scale(domain=["window", baseline], range=["#e45756", "#9ecae9"]),
                legend=alt.Legend(title=None, orient="bottom"),
            ),
            tooltip=[
                alt.Tooltip("group:N", title="operation"),
                alt.Tooltip("when:N", title="when"),
                alt.Tooltip("time:N", title="per trace"),
            ],
        )
        .properties(
            title=title,
            width=560,
            height=max(120, math.ceil(28 * len(head))),
            description=f"Paired bars of critical-path time per trace for the top {len(head)} "
            f"operations, window against the {baseline}{biggest}.",
        )
    )


def _signed_ms(ms: float) -> str:
    """A change in ms with its sign: "+123 ms", "-4.2 s"."""
    return ("+" if ms >= 0 else "") + _ms_text(ms)
