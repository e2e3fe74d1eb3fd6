"""How charts display: static SVG with alt text in reports, Altair's offline widget in
JupyterLab.

Reports: vl-convert draws the SVG; it is shown as an ``<img>`` whose ``alt`` is the chart's
``description`` (vl-convert's SVG carries no description, and nbconvert's HTML export warns
about every ``<img>`` without ``alt``, which is how it exports ``image/svg+xml`` outputs).
The alt text is escaped (``obslib.escape.html_text``); vl-convert escapes the SVG's own text,
and an SVG shown through ``<img>`` never runs a script.
JupyterLab: Altair's anywidget renderer with its JavaScript shipped in Python packages,
because the default renderer loads vega from a CDN ("Error loading script" offline).
"""

from __future__ import annotations

import base64
import logging

import altair as alt
from altair.vegalite.v6 import display as vl_display

from obslib.escape import control_pictures, html_text

logger = logging.getLogger(__name__)

REPORT_RENDERER = "obslib-svg"
NO_DESCRIPTION = "Chart without a description."


def svg_with_alt(spec: dict, **metadata) -> dict[str, str]:
    """Altair renderer: the SVG as an ``<img>`` with the spec's description as alt text
    (``text/html``), and the description alone as ``text/plain``."""
    bundle = vl_display.svg_renderer(_drawable(spec), **metadata)
    svg = bundle["image/svg+xml"] if isinstance(bundle, dict) else bundle[0]["image/svg+xml"]
    alt_text = str(spec.get("description") or NO_DESCRIPTION)
    svg = svg.replace("<svg ", f'<svg role="img" aria-label="{html_text(alt_text)}" ', 1)
    encoded = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    img = (
        f'<img class="obslib-chart" alt="{html_text(alt_text)}" '
        f'style="max-width: 100%; height: auto;" src="data:image/svg+xml;base64,{encoded}">'
    )
    return {"text/html": img, "text/plain": f"[chart] {alt_text}"}


def _drawable(value: object) -> object:
    """The spec with control characters in every string as visible pictures: vl-convert
    aborts the whole process (a report's kernel) on one in a title, label or datum."""
    if isinstance(value, str):
        return control_pictures(value)
    if isinstance(value, dict):
        return {_drawable(k): _drawable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_drawable(v) for v in value]
    return value


alt.renderers.register(REPORT_RENDERER, svg_with_alt)


def use_renderer(report: bool) -> None:
    """Static SVG with alt text for reports (offline, no CDN); the offline widget renderer
    in JupyterLab (needs ``anywidget``; without it, Altair's default and a warning)."""
    if report:
        alt.renderers.enable(REPORT_RENDERER)
        return
    try:
        alt.renderers.enable("jupyter", offline=True)
    except ImportError as err:
        logger.warning("charts need the anywidget package to render offline (%s)", err)
        alt.renderers.enable("default")
