"""How charts display: static SVG in reports, Altair's default in JupyterLab."""

from __future__ import annotations

import altair as alt


def use_renderer(report: bool) -> None:
    """Static SVG for reports (renders offline, no CDN); Altair's default in JupyterLab."""
    alt.renderers.enable("svg" if report else "default")
