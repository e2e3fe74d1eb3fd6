"""Trace charts over pre-aggregated frames: waterfall, self time, service graph, path shares.

Charts refuse more than ``MAX_ROWS`` rows rather than lifting Altair's limit: a huge trace's
waterfall folds its deepest levels and says what was folded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd

from obslib.charts._common import MAX_ROWS, RED, SERVICE_PALETTE, service_colors

_PATH_COLOR = "#111111"
_LABEL_WIDTH = 300  # px of the waterfall's label column


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
    data = rows.rows.assign(
        indent=rows.rows["depth"] * 12, name=rows.rows["service"] + ": " + rows.rows["operation"]
    )
    height = max(60, min(18 * len(data), 4000))
    y = alt.Y("row:O", axis=None, sort="ascending")
    tooltip = [
        "service",
        "operation",
        "span_id",
        alt.Tooltip("duration_ms:Q", format=".1f"),
        "status",
        "kind",
    ]
    labels = (
        alt.Chart(data)
        .mark_text(align="left", baseline="middle", fontSize=11, limit=_LABEL_WIDTH - 8)
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
            x=alt.X("start_ms:Q", title="ms since trace start"),
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
        f"over {total:.1f} ms, {failed} failed; the critical path is drawn in black."
    )


def self_time_bars(
    stats: pd.DataFrame,
    by: str = "service_name",
    *,
    title: str = "",
    colors: alt.Scale | None = None,
) -> alt.Chart:
    """Self time per group (``obslib.traces.statistics`` output), largest first."""
    data = stats.head(40)
    color = (
        alt.Color(f"{by}:N", scale=_services_scale(colors, data[by]), legend=None)
        if by == "service_name"
        else alt.value(SERVICE_PALETTE[0])
    )
    top = (
        f"; most in {data.iloc[0][by]} ({data.iloc[0]['self_total_ms']:.1f} ms)"
        if len(data)
        else ""
    )
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("self_total_ms:Q", title="self time (ms)"),
            y=alt.Y(f"{by}:N", sort="-x", title=None),
            color=color,
            tooltip=[
                by,
                alt.Tooltip("self_total_ms:Q", format=".1f"),
                "count",
                alt.Tooltip("self_pct:Q", format=".1f"),
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
    """Services in layers from the entry point, edges sized by calls, coloured by errors.

    The axes are padded so the outermost names fit, and the legend sits below the graph
    (on the right it covered the last layer's names)."""
    nodes = _layout(edges)
    lines = edges.merge(nodes.add_prefix("from_"), left_on="caller", right_on="from_service")
    lines = lines.merge(nodes.add_prefix("to_"), left_on="callee", right_on="to_service")
    right = float(nodes["x"].max()) if len(nodes) else 1.0
    x_scale = alt.Scale(domain=[-0.5, right + 0.5], nice=False, zero=False)
    y_scale = alt.Scale(domain=[0.0, 1.0], nice=False)
    edge_marks = (
        alt.Chart(lines)
        .mark_rule(opacity=0.7)
        .encode(
            x=alt.X("from_x:Q", axis=None, scale=x_scale),
            y=alt.Y("from_y:Q", axis=None, scale=y_scale),
            x2="to_x:Q",
            y2="to_y:Q",
            strokeWidth=alt.StrokeWidth("calls:Q", scale=alt.Scale(range=[1, 8]), legend=None),
            color=alt.Color(
                "error_rate:Q",
                scale=alt.Scale(scheme="reds", domain=[0, 0.1]),
                title="error rate",
                legend=alt.Legend(orient="bottom", format=".0%"),
            ),
            tooltip=[
                "caller",
                "callee",
                "calls",
                "errors",
                alt.Tooltip("error_rate:Q", format=".1%"),
                alt.Tooltip("p50_ms:Q", format=".1f"),
                alt.Tooltip("p99_ms:Q", format=".1f"),
            ],
        )
    )
    node_marks = (
        alt.Chart(nodes)
        .mark_circle(size=300, opacity=1)
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
    failing = edges[edges["errors"] > 0]
    worst = (
        f"; the highest error rate is {failing.iloc[failing['error_rate'].argmax()]['caller']} -> "
        f"{failing.iloc[failing['error_rate'].argmax()]['callee']} "
        f"({failing['error_rate'].max():.1%})"
        if len(failing)
        else "; no call failed"
    )
    return alt.layer(edge_marks, node_marks, names).properties(
        title=title,
        width=640,
        height=360,
        description=f"Service graph of {len(nodes)} services and {len(edges)} caller-callee "
        f"edges, line width by calls and colour by error rate{worst}.",
    )


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


def path_share_comparison(change: pd.DataFrame, *, top: int = 12, title: str = "") -> alt.Chart:
    """Critical-path ms per trace, window against baseline (``compare_critical_paths``)."""
    head = change.head(top).copy()
    head["group"] = head["service_name"].astype(str) + ": " + head["operation_name"].astype(str)
    long = head.melt(
        id_vars=["group"],
        value_vars=["per_trace_ms", "per_trace_ms_baseline"],
        var_name="when",
        value_name="ms",
    )
    long["when"] = long["when"].map({"per_trace_ms": "window", "per_trace_ms_baseline": "baseline"})
    grew = head.iloc[0] if len(head) else None
    biggest = (
        f"; the largest increase is {grew['group']} ({grew['delta_ms']:+.1f} ms per trace)"
        if grew is not None
        else ""
    )
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=alt.X("ms:Q", title="critical-path ms per trace"),
            y=alt.Y("group:N", sort=list(head["group"]), title=None),
            yOffset="when:N",
            color=alt.Color(
                "when:N",
                scale=alt.Scale(domain=["window", "baseline"], range=["#e45756", "#9ecae9"]),
                legend=alt.Legend(title=None, orient="bottom"),
            ),
            tooltip=["group", "when", alt.Tooltip("ms:Q", format=".1f")],
        )
        .properties(
            title=title,
            width=560,
            height=max(120, math.ceil(28 * len(head))),
            description=f"Paired bars of critical-path ms per trace for the top {len(head)} "
            f"operations, window against baseline{biggest}.",
        )
    )
