"""The investigated trace and how it is picked: one trace rebuilt (``PickedTrace``), the
selection that holds it (an investigation's one mutable part), and the JupyterLab dropdown
that replaces it with another of the investigation's sampled traces."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import altair as alt
import pandas as pd

from obslib import charts, load, traces
from obslib.escape import html_text
from obslib.traces import skew
from obslib.views.live import LiveView

if TYPE_CHECKING:
    from obslib.views.trace_investigation import TraceInvestigation


@dataclass(frozen=True, eq=False)
class PickedTrace:
    """The investigated trace, rebuilt once with the investigation's skew parameters;
    ``found`` is False with a ``message`` when there is none (an empty window, an unknown
    trace id)."""

    trace_id: str
    found: bool
    colors: alt.Scale  # the window's services, then this trace's: one colour per service
    message: str = ""
    spans: pd.DataFrame = field(default_factory=pd.DataFrame)  # reconstructed
    notes: list[str] = field(default_factory=list)  # the repairs reconstruct made
    adjustments: pd.DataFrame = field(default_factory=pd.DataFrame)  # clock-skew report
    path: pd.DataFrame = field(default_factory=pd.DataFrame)  # traces.critical_path
    segments: pd.DataFrame = field(default_factory=pd.DataFrame)  # ... with services, ms
    url: str | None = None

    @functools.cached_property
    def records(self) -> pd.DataFrame:
        """The trace's log records, loaded on first use (two views show them)."""
        return load.logs(trace_id=self.trace_id, url=self.url)


def pick_trace(
    trace_id: str,
    window_spans: pd.DataFrame,
    *,
    skew_correction: bool,
    max_skew_ms: float,
    url: str | None,
) -> PickedTrace:
    """Load ``trace_id`` and rebuild it: clock skew adjusted (or not), repaired, its
    critical path walked; colours follow the window's services (``window_spans``)."""
    raw = load.trace(trace_id, url=url) if trace_id else pd.DataFrame()
    if raw.empty:
        return no_trace(trace_id, f"No trace with id {trace_id!r} in the database.", window_spans)
    adjusted = skew.adjust_clock_skew(raw, max_skew_ms=max_skew_ms, enabled=skew_correction)
    rebuilt = traces.reconstruct(adjusted.spans)
    return PickedTrace(
        trace_id,
        found=True,
        colors=_colors(window_spans, extra=rebuilt.spans["service_name"].astype(str)),
        spans=rebuilt.spans,
        notes=rebuilt.notes,
        adjustments=adjusted.adjustments,
        path=traces.critical_path(rebuilt.spans),
        segments=traces.critical_path_segments(rebuilt.spans),
        url=url,
    )


def no_trace(trace_id: str, message: str, window_spans: pd.DataFrame) -> PickedTrace:
    """No trace to show, and why: the per-trace views show ``message``."""
    return PickedTrace(trace_id, found=False, colors=_colors(window_spans), message=message)


def _colors(window_spans: pd.DataFrame, extra: Any = ()) -> alt.Scale:
    services = window_spans["service_name"] if len(window_spans) else ()
    return charts.service_colors(services, extra=extra)


@dataclass
class TraceSelection:
    """The one mutable part of an investigation: the trace shown now (a pick in JupyterLab
    replaces it) and the live outputs of the per-trace views, which a pick redraws."""

    trace: PickedTrace
    views: dict[str, LiveView] = field(default_factory=dict)


def trace_picker(inv: TraceInvestigation, following: list[str]) -> Any:
    """A dropdown over the sampled traces; picking one redraws every per-trace view of the
    notebook with the notebook's skew parameters (window-wide views stay as they are).

    The status line says "Preparing" while the views are prepared, then "Showing" with the
    count and the time taken once every update has been sent (the updates go out together,
    ``obslib.views.live.redraw_all``)."""
    import ipywidgets as widgets

    options = [
        (f"{r.reason:7} {r.duration_ms:9.1f} ms  {r.root_operation}  {r.trace_id}", r.trace_id)
        for r in inv.sample.traces.itertuples()
    ]
    ids = {value for _, value in options}
    if inv.trace_id and inv.trace_id not in ids:
        options.insert(0, (f"{'by id':7} {inv.trace_id}", inv.trace_id))
    picker = widgets.Dropdown(
        options=options,
        value=inv.trace_id or None,
        description="trace",
        layout=widgets.Layout(width="95%"),
    )
    status = widgets.HTML(
        "Picking a trace redraws these sections: " + ", ".join(following).replace("_", " ")
    )

    def show(change: dict) -> None:
        status.value = f"Preparing the views of trace {html_text(change['new'])}."
        started = time.perf_counter()
        redrawn = inv.pick(change["new"])
        status.value = (
            f"Showing trace {html_text(inv.trace_id)}: redrew {len(redrawn)} views "
            f"in {time.perf_counter() - started:.2f} s."
        )

    picker.observe(show, names="value")
    return widgets.VBox([picker, status])
