"""obslib: load DomainFlow telemetry from PostgreSQL into typed DataFrames and analyse it.

Notebooks need only ``import obslib``: the modules below are its public surface
(``obslib.load.spans(...)``, ``obslib.traces.critical_path(...)``, ``obslib.slo...``).
They are imported on first use, so the command line does not pay for what it does not run:
Altair alone costs ~1 s to import, which every `obslib db status` would otherwise wait for.
Importing obslib also defers jsonschema's IRI grammar (below; README, "No IRI grammar at
import"): its one global side effect.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from typing import TYPE_CHECKING, Any

from obslib.config import version
from obslib.errors import InputError, ObslibError, UsageError

__version__ = version()

# jsonschema (which Altair imports) compiles rfc3987_syntax's Lark grammar for IRIs when its
# format module is imported: 0.9 s idle, up to 10 s on a busy machine, of every kernel that
# draws a chart. Altair never checks an IRI: Vega-Lite's schema uses the formats "uri",
# "uri-reference" and "color-hex" only, which rfc3986_validator and jsonschema check.
_FORMAT_MODULE = "jsonschema._format"  # jsonschema/_format.py: `from rfc3987_syntax import ...`
_GRAMMAR_MODULE = "rfc3987_syntax"


def _is_valid_syntax(*args: Any, **kwargs: Any) -> Any:
    """rfc3987_syntax.is_valid_syntax, imported (its grammar compiled) on the first call."""
    from rfc3987_syntax import is_valid_syntax

    return is_valid_syntax(*args, **kwargs)


class _DeferredGrammarLoader(importlib.abc.Loader):
    """Runs jsonschema's format module with a stand-in ``rfc3987_syntax`` in sys.modules, whose
    ``is_valid_syntax`` imports the real one on its first call, then takes the stand-in out:
    afterwards anyone importing rfc3987_syntax gets the real package, and jsonschema's "iri"
    and "iri-reference" checks give the same answers, compiling the grammar the first time
    one runs instead of at import."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        stand_in = types.ModuleType(_GRAMMAR_MODULE, "stand-in until is_valid_syntax is called")
        stand_in.is_valid_syntax = _is_valid_syntax  # type: ignore[attr-defined]
        sys.modules[_GRAMMAR_MODULE] = stand_in
        try:
            self.loader.exec_module(module)
        finally:
            if sys.modules.get(_GRAMMAR_MODULE) is stand_in:
                del sys.modules[_GRAMMAR_MODULE]


class _DeferGrammar(importlib.abc.MetaPathFinder):
    """Finds jsonschema's format module once, with the loader above; then leaves meta_path."""

    def find_spec(
        self, name: str, path: Any = None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name != _FORMAT_MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is None or spec.loader is None or _GRAMMAR_MODULE in sys.modules:
            return spec  # someone imported the grammar already: nothing left to save
        spec.loader = _DeferredGrammarLoader(spec.loader)
        return spec


if _FORMAT_MODULE not in sys.modules and not any(
    isinstance(f, _DeferGrammar) for f in sys.meta_path
):
    sys.meta_path.insert(0, _DeferGrammar())

# Public modules and packages, imported on first use (``obslib.traces``, ``obslib.slo`` ...).
_MODULES = (
    "alerts", "charts", "health", "jobs", "load", "logs", "reports", "slo", "traces", "views"
)  # fmt: skip
# Where the modules of the flat layout went (issue 20): ``obslib.trace_sets.clean_window``
# and the rest keep working as attributes of ``obslib``. (``obslib.logs`` is the log analysis
# package since issue 26; the trace-log functions are ``obslib.traces.logs``.)
_MOVED = {
    "evaluation": "obslib.jobs.slo_evaluation",
    "incidents": "obslib.alerts.incidents",
    "skew": "obslib.traces.skew",
    "slo_replay": "obslib.slo.replay",
    "slo_status": "obslib.slo.status",
    "trace_sets": "obslib.traces.sets",
}
_FROM_INGEST = ("batch", "import_file", "import_files", "write_logs", "write_spans")

if TYPE_CHECKING:  # what type checkers and editors see; at run time __getattr__ imports
    from obslib import alerts, charts, health, jobs, load, logs, reports, slo, traces, views  # noqa: F401
    from obslib.alerts import incidents  # noqa: F401
    from obslib.ingest import batch, import_file, import_files, write_logs, write_spans  # noqa: F401
    from obslib.jobs import slo_evaluation as evaluation  # noqa: F401
    from obslib.slo import replay as slo_replay  # noqa: F401
    from obslib.slo import status as slo_status  # noqa: F401
    from obslib.traces import sets as trace_sets  # noqa: F401
    from obslib.traces import skew  # noqa: F401


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
