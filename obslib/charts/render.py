"""How charts display: static SVG with alt text in reports; in JupyterLab, Lab's own Vega
renderer with the same static SVG beside it.

Reports: vl-convert draws the SVG; it is shown as an ``<img>`` whose ``alt`` is the chart's
``description`` (vl-convert's SVG carries no description, and nbconvert's HTML export warns
about every ``<img>`` without ``alt``, which is how it exports ``image/svg+xml`` outputs).
The alt text is escaped (``obslib.escape.html_text``); vl-convert escapes the SVG's own text,
and an SVG shown through ``<img>`` never runs a script.

JupyterLab: each chart is a plain output bundle, with no widget. vl-convert compiles the
Vega-Lite spec to a Vega spec (``application/vnd.vega.v5+json``), which JupyterLab's built-in
vega5 extension draws with tooltips from the JavaScript Lab already ships, loaded once per
page (Altair's anywidget renderer sent ~905 k characters of JavaScript with every chart, and
after a reopen its outputs showed "model not found"). Lab's Vega-Lite renderer is 5.6, too
old for Altair 6's specs, while the Vega runtime (5.33) draws the compiled Vega spec. The
bundle also carries the report's own SVG (``image/svg+xml``) and the description as
``text/plain``: a saved notebook shows its charts again when reopened, with or without a
kernel, in Lab (which redraws the Vega spec) and in viewers without Vega (the SVG).
"""

from __future__ import annotations

import base64
import logging
import threading

import altair as alt
from altair.vegalite.v6 import display as vl_display

from obslib.escape import control_pictures, html_text

logger = logging.getLogger(__name__)

REPORT_RENDERER = "obslib-svg"
LAB_RENDERER = "obslib-lab"
VEGA_MIMETYPE = "application/vnd.vega.v5+json"  # what JupyterLab's vega5 extension draws
SVG_MIMETYPE = "image/svg+xml"
NO_DESCRIPTION = "Chart without a description."
# Lab's Vega embed options: SVG like the reports (selectable text, crisp), no action menu
# (its "Open in Vega Editor" would leave the machine).
LAB_EMBED_OPTIONS = {"renderer": "svg", "actions": False}


def description(spec: dict) -> str:
    """The chart's alt text: its spec's ``description``, or a note that it has none."""
    return str(spec.get("description") or NO_DESCRIPTION)


def chart_svg(spec: dict, **metadata) -> str:
    """The report's rendering of ``spec``: vl-convert's SVG, labelled with its description
    (``role="img"`` and an escaped ``aria-label``)."""
    drawable = _drawable(spec)
    bundle = vl_display.svg_renderer(drawable, **metadata)
    svg = bundle[SVG_MIMETYPE] if isinstance(bundle, dict) else bundle[0][SVG_MIMETYPE]
    label = html_text(description(drawable))  # no control character in the XML either
    return svg.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1)


def svg_with_alt(spec: dict, **metadata) -> dict[str, str]:
    """Altair renderer: the SVG as an ``<img>`` with the spec's description as alt text
    (``text/html``), and the description alone as ``text/plain``."""
    encoded = base64.b64encode(chart_svg(spec, **metadata).encode("utf-8")).decode("ascii")
    alt_text = description(spec)
    img = (
        f'<img class="obslib-chart" alt="{html_text(alt_text)}" '
        f'style="max-width: 100%; height: auto;" src="data:image/svg+xml;base64,{encoded}">'
    )
    return {"text/html": img, "text/plain": f"[chart] {alt_text}"}


def lab_bundle(spec: dict, **metadata) -> tuple[dict, dict]:
    """Altair renderer for JupyterLab: the chart compiled to Vega for Lab's own renderer, the
    report's SVG as the static fallback, and the description as ``text/plain`` (no
    ``text/html``: Lab would prefer it to the Vega output)."""
    import vl_convert
    from altair.utils._importers import vl_version_for_vl_convert

    drawable = _drawable(spec)
    vega = vl_convert.vegalite_to_vega(drawable, vl_version=vl_version_for_vl_convert())
    vega.pop("$schema", None)  # Vega 6's; Lab's Vega 5 runtime draws it all the same
    data = {
        VEGA_MIMETYPE: vega,
        SVG_MIMETYPE: chart_svg(spec, **metadata),
        "text/plain": f"[chart] {description(spec)}",
    }
    return data, {VEGA_MIMETYPE: {"embed_options": dict(LAB_EMBED_OPTIONS)}}


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
alt.renderers.register(LAB_RENDERER, lab_bundle)


def use_renderer(report: bool) -> None:
    """Static SVG with alt text for reports; in JupyterLab, Lab's own Vega renderer with the
    same SVG beside it (both offline: no CDN, no widget). Starts the drawing engine
    (``warm_engine``) while the notebook loads its data."""
    alt.renderers.enable(REPORT_RENDERER if report else LAB_RENDERER)
    warm_engine()


_warming: list[threading.Thread] = []
_warming_lock = threading.Lock()


def warm_engine() -> threading.Thread:
    """Start vl-convert's engine in a background thread, once per process, and return the
    thread. Its first drawing starts a JavaScript runtime (about 1 s, measured on the
    postmortem's first chart); vl-convert releases the GIL meanwhile, so the runtime starts
    while the notebook's first cells load their data, and the first chart no longer pays it.
    A chart drawn before it is done waits for it inside vl-convert, as it would have anyway.
    """
    with _warming_lock:
        if not _warming:
            thread = threading.Thread(target=_first_drawing, name="obslib-vl-warm", daemon=True)
            thread.start()
            _warming.append(thread)
        return _warming[0]


def _first_drawing() -> None:
    import vl_convert
    from altair.utils._importers import vl_version_for_vl_convert

    chart = {"data": {"values": [{"x": 1}]}, "mark": "point", "encoding": {"x": {"field": "x"}}}
    try:
        vl_convert.vegalite_to_svg(chart, vl_version=vl_version_for_vl_convert())
    except Exception as err:  # a real chart raises it again where it is seen
        logger.debug("vl-convert warm-up failed: %s", err)
