"""Views: one module per notebook, holding everything that notebook shows.

``obslib.views.trace_investigation`` is the trace notebook's; each returns something that
displays well in every case (a table, a chart or a note saying why there is nothing).
"""

from obslib.views import trace_investigation

__all__ = ["trace_investigation"]
