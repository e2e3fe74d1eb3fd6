"""Traces from a spans frame: reconstruction, self time, statistics, critical path, clock
skew, and what holds across the traces of a window.

The package's modules, lowest first: ``tree`` (parents by row, depths, self time, roots),
``repair`` (duplicates, shared ids, orphans, cycles, each with a note), ``path`` (Jaeger's
trace statistics and the critical path), ``skew`` (clock-skew adjustment, reported),
``sets`` (across traces: service graph, path time, cohorts, sampling) and ``logs`` (logs
beside spans). The names people call are re-exported here (``obslib.traces.critical_path``).
"""

from __future__ import annotations

from obslib.traces import logs, path, repair, sets, skew, tree
from obslib.traces.path import (
    critical_path,
    critical_path_segments,
    critical_paths,
    statistics,
    tag_dict,
)
from obslib.traces.repair import Reconstruction, canonical_json, reconstruct
from obslib.traces.tree import (
    NON_BLOCKING_KINDS,
    REQUIRED,
    epoch_ns,
    from_epoch_ns,
    is_non_blocking,
    parent_index,
    roots,
    self_time,
)

__all__ = [
    "NON_BLOCKING_KINDS",
    "REQUIRED",
    "Reconstruction",
    "canonical_json",
    "critical_path",
    "critical_path_segments",
    "critical_paths",
    "epoch_ns",
    "from_epoch_ns",
    "is_non_blocking",
    "logs",
    "parent_index",
    "path",
    "reconstruct",
    "repair",
    "roots",
    "self_time",
    "sets",
    "skew",
    "statistics",
    "tag_dict",
    "tree",
]
