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

from obslib.errors import InputError, ObslibError, UsageError

__version__ = "0.1.0"

_MODULES = (
    "alerts",
    "charts",
    "evaluation",
    "health",
    "incidents",
    "load",
    "logs",
    "reports",
    "skew",
    "slo",
    "slo_replay",
    "slo_status",
    "trace_sets",
    "traces",
    "views",
)
_FROM_INGEST = ("batch", "import_file", "import_files", "write_logs", "write_spans")

if TYPE_CHECKING:  # what type checkers and editors see; at run time __getattr__ imports
    from obslib import (  # noqa: F401
        alerts,
        charts,
        evaluation,
        health,
        incidents,
        load,
        logs,
        reports,
        skew,
        slo,
        slo_replay,
        slo_status,
        trace_sets,
        traces,
        views,
    )
    from obslib.ingest import batch, import_file, import_files, write_logs, write_spans  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f"obslib.{name}")
    if name in _FROM_INGEST:
        return getattr(importlib.import_module("obslib.ingest"), name)
    raise AttributeError(f"module 'obslib' has no attribute {name!r}")


__all__ = [
    "InputError",
    "ObslibError",
    "UsageError",
    "__version__",
    *_MODULES,
    *_FROM_INGEST,
]
