"""Views: one module per notebook, holding everything that notebook shows.

``obslib.views.trace_investigation`` is the trace notebook's (``obslib.views.spark_window``
its window-wide views on Spark), ``obslib.views.slo_review`` the SLO review's,
``obslib.views.incident_postmortem`` the postmortem's and ``obslib.views.observability_health``
the health notebook's; each view returns something that displays well in every case: a
``Table`` (``obslib.views.tables``, the one formatter for reading), a chart, or a ``Note``
saying why there is nothing to show.
"""

from obslib.views import (
    incident_postmortem,
    observability_health,
    slo_review,
    spark_window,
    trace_investigation,
)
from obslib.views.notes import Note
from obslib.views.tables import Table, table

__all__ = [
    "Note",
    "Table",
    "incident_postmortem",
    "observability_health",
    "slo_review",
    "spark_window",
    "table",
    "trace_investigation",
]
