"""Load, generate, write: the SLOs' Prometheus rule file (``obslib slo export --format
prometheus-rules``), written atomically so Prometheus never reloads half a file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from obslib import load
from obslib.errors import UsageError
from obslib.slo import DEFAULT_MIN_EVENTS
from obslib.slo.prometheus import MetricNames, prometheus_rules
from obslib.storage import files


def rules_path(path: str | Path) -> Path:
    """The file to write, refused (before any work) when it is a folder or its folder is
    missing."""
    return files.target_file(path, "rule file")


def write_prometheus_rules(
    slos: pd.DataFrame,
    path: str | Path,
    *,
    metrics: MetricNames | None = None,
    min_events: int = DEFAULT_MIN_EVENTS,
) -> Path:
    """``slo.prometheus.prometheus_rules`` of ``slos`` written to ``path``: a temporary file
    beside it, then a rename (atomic on one file system), so a reload reads the old file or
    the new one. Returns the path written."""
    target = rules_path(path)
    text = prometheus_rules(slos, metrics=metrics, min_events=min_events)
    return files.write_atomically(target, text)


def export_rules(
    path: str | Path | None,
    *,
    services: list[str] | None = None,
    metrics: MetricNames | None = None,
    min_events: int = DEFAULT_MIN_EVENTS,
    url: str | None = None,
) -> str:
    """The enabled SLOs (of ``services``) read from the database as a rule file: written to
    ``path`` (atomically), the line to show returned; no ``path``: the file's text returned
    (for standard output)."""
    target = None if path is None else rules_path(path)  # refused before connecting
    slos = load.enabled_slos(services, url=url)
    missing = sorted(set(services or ()) - set(slos["service_name"]))
    if missing:
        word = "service" if len(missing) == 1 else "services"
        raise UsageError(f"no enabled SLO for {word} {', '.join(missing)}")
    if target is None:
        return prometheus_rules(slos, metrics=metrics, min_events=min_events)
    written = write_prometheus_rules(slos, target, metrics=metrics, min_events=min_events)
    return f"wrote {written} ({len(slos)} SLOs)\n"
