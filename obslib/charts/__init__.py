"""Altair chart builders over pre-aggregated frames, one module per subject."""

from obslib.charts._common import MAX_ROWS, service_colors
from obslib.charts.health import coverage_chart, kpi_chart
from obslib.charts.incidents import incident_timeline
from obslib.charts.render import svg_with_alt, use_renderer
from obslib.charts.slo import budget_burndown, burn_rate_chart, replay_timeline
from obslib.charts.traces import (
    WaterfallRows,
    path_share_comparison,
    self_time_bars,
    service_graph,
    waterfall,
    waterfall_rows,
)

__all__ = [
    "MAX_ROWS",
    "WaterfallRows",
    "budget_burndown",
    "burn_rate_chart",
    "coverage_chart",
    "incident_timeline",
    "kpi_chart",
    "path_share_comparison",
    "replay_timeline",
    "self_time_bars",
    "service_colors",
    "service_graph",
    "svg_with_alt",
    "use_renderer",
    "waterfall",
    "waterfall_rows",
]
