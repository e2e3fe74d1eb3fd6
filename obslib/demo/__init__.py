"""Deterministic DomainFlow telemetry with a scripted incident: ``obslib demo``.

The same seed gives the same rows and ids on every run and machine: each day's traffic is
drawn from its own generator seeded by (seed, day, request kind), so scaling the span count
or writing in chunks changes nothing else. Generation is vectorised per request kind: the
span tree of a template is laid out for all its traces at once with numpy.

The command line reads the defaults below to build its parser, so this package imports its
modules (numpy, pandas: ~0.3 s) on first use of a name, not when it is imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

DEFAULT_SEED = 7
DEFAULT_SPANS = 500_000  # sized so `obslib demo` stays under a minute on 2 cores

_NAMES = {
    "DemoSummary": "obslib.demo.writer",
    "format_report": "obslib.demo.writer",
    "format_summary": "obslib.demo.writer",
    "run": "obslib.demo.writer",
    "write_reports": "obslib.demo.writer",
    "generate_day": "obslib.demo.traffic",
    "traces_per_day": "obslib.demo.traffic",
}

if TYPE_CHECKING:  # what type checkers and editors see; at run time __getattr__ imports
    from obslib.demo.traffic import generate_day, traces_per_day  # noqa: F401
    from obslib.demo.writer import (  # noqa: F401
        DemoSummary,
        format_report,
        format_summary,
        run,
        write_reports,
    )


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'obslib.demo' has no attribute {name!r}")


__all__ = ["DEFAULT_SEED", "DEFAULT_SPANS", *_NAMES]
