"""obslib: load DomainFlow telemetry from PostgreSQL into typed DataFrames and analyse it.

Notebooks need only ``import obslib``: the modules below are its public surface
(``obslib.load.spans(...)``, ``obslib.traces.critical_path(...)``, ``obslib.slo...``).
They are imported on first use, so the command line does not pay for what it does not run:
Altair alone costs ~2 s to import (jsonschema's URI grammar), which every `obslib db status`
would otherwise wait for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from obslib.config import version
from obslib.errors import InputError, ObslibError, UsageError

__version__ = version()

# Public modules and packages, imported on first use (``obslib.traces``, ``obslib.slo`` ...).
_MODULES = ("alerts", "charts", "health", "jobs", "load", "reports", "slo", "traces", "views")
# Where the modules of the flat layout went (issue 20): ``obslib.trace_sets.clean_window``
# and the rest keep working as attributes of ``obslib``.
_MOVED = {
    "evaluation": "obslib.jobs.slo_evaluation",
    "incidents": "obslib.alerts.incidents",
    "logs": "obslib.traces.logs",
    "skew": "obslib.traces.skew",
    "slo_replay": "obslib.slo.replay",
    "slo_status": "obslib.slo.status",
    "trace_sets": "obslib.traces.sets",
}
_FROM_INGEST = ("batch", "import_file", "import_files", "write_logs", "write_spans")

if TYPE_CHECKING:  # what type checkers and editors see; at run time __getattr__ imports
    from obslib import alerts, charts, health, jobs, load, reports, slo, traces, views  # noqa: F401
    from obslib.alerts import incidents  # noqa: F401
    from obslib.ingest import batch, import_file, import_files, write_logs, write_spans  # noqa: F401
    from obslib.jobs import slo_evaluation as evaluation  # noqa: F401
    from obslib.slo import replay as slo_replay  # noqa: F401
    from obslib.slo import status as slo_status  # noqa: F401
    from obslib.traces import logs, skew  # noqa: F401
    from obslib.traces import sets as trace_sets  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f"obslib.{name}")
    if name in _MOVED:
        return importlib.import_module(_MOVED[name])
    if name in _FROM_INGEST:
        return getattr(importlib.import_module("obslib.ingest"), name)
    raise AttributeError(f"module 'obslib' has no attribute {name!r}")


__all__ = [
    "InputError",
    "ObslibError",
    "UsageError",
    "__version__",
    *_MODULES,
    *_MOVED,
    *_FROM_INGEST,
]
