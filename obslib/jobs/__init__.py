"""Load, analyse, write: the jobs that run the analysis on stored data and record the result
(slo_evaluation: SLOs evaluated and recorded; triage: runbooks per new incident)."""

# The jobs: ``obslib.jobs.<name>`` imports the submodule on first use.
_SUBMODULES = ("slo_evaluation", "triage")


def __getattr__(name: str):
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
