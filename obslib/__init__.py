"""obslib: load DomainFlow telemetry from PostgreSQL into typed DataFrames and analyse it.

Notebooks need only ``import obslib``: the modules below are its public surface
(``obslib.load.spans(...)``, ``obslib.traces.critical_path(...)``, ``obslib.slo...``).
"""

from obslib import charts, load, logs, reports, skew, slo, trace_sets, traces, views
from obslib.errors import InputError, ObslibError, UsageError
from obslib.ingest import batch, write_logs, write_spans

__version__ = "0.1.0"

__all__ = [
    "InputError",
    "ObslibError",
    "UsageError",
    "__version__",
    "batch",
    "charts",
    "load",
    "logs",
    "reports",
    "skew",
    "slo",
    "trace_sets",
    "traces",
    "views",
    "write_logs",
    "write_spans",
]
