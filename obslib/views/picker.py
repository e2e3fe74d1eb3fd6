"""The JupyterLab trace picker: a dropdown over the sampled traces of an investigation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from obslib.escape import html_text

if TYPE_CHECKING:
    from obslib.views.trace_investigation import TraceInvestigation


def trace_picker(inv: TraceInvestigation, following: list[str]) -> Any:
    """A dropdown over the sampled traces; picking one redraws every per-trace view of the
    notebook with the notebook's skew parameters (window-wide views stay as they are)."""
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
        redrawn = inv.pick(change["new"])
        status.value = f"Showing trace {html_text(inv.trace_id)}: redrew {len(redrawn)} views."

    picker.observe(show, names="value")
    return widgets.VBox([picker, status])
