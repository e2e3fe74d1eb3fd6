"""Altair chart builders over pre-aggregated frames, one module per subject."""

from obslib.charts.render import svg_with_alt, use_renderer
from obslib.charts.traces import (
    MAX_ROWS,
    WaterfallRows,
    path_share_comparison,
    self_time_bars,
    service_colors,
    service_graph,
    waterfall,
    waterfall_rows,
)

__all__ = [
    "MAX_ROWS",
    "WaterfallRows",
    "path_share_comparison",
    "self_time_bars",
    "service_colors",
    "service_graph",
    "svg_with_alt",
    "use_renderer",
    "waterfall",
    "waterfall_rows",
]
