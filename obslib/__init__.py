"""obslib: load DomainFlow telemetry from PostgreSQL into typed DataFrames and analyse it.

Notebooks need only ``import obslib``: the loaders, the writers and the SLO arithmetic are
re-exported here.
"""

from obslib import load, slo
from obslib.errors import InputError, ObslibError, UsageError
from obslib.ingest import batch, write_logs, write_spans
from obslib.load import (
    alert_definitions,
    incident,
    incidents,
    logs,
    slo_measurements,
    slos,
    spans,
    trace,
)

__version__ = "0.1.0"

__all__ = [
    "InputError",
    "ObslibError",
    "UsageError",
    "__version__",
    "alert_definitions",
    "batch",
    "incident",
    "incidents",
    "load",
    "logs",
    "slo",
    "slo_measurements",
    "slos",
    "spans",
    "trace",
    "write_logs",
    "write_spans",
]
