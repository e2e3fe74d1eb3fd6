"""The package's public paths: the domain packages, and the names of the flat layout."""

from __future__ import annotations

from importlib import metadata

import pytest

import obslib


@pytest.mark.parametrize(
    ("path", "name"),
    [
        pytest.param("traces", "critical_path", id="obslib.traces.critical_path"),
        pytest.param("slo", "burn_rate_windows", id="obslib.slo.burn_rate_windows"),
        pytest.param("traces.sets", "clean_window", id="obslib.traces.sets.clean_window"),
        pytest.param("slo.replay", "replay", id="obslib.slo.replay.replay"),
        pytest.param("jobs.slo_evaluation", "evaluate", id="obslib.jobs.slo_evaluation"),
        pytest.param("alerts", "false_positives", id="obslib.alerts.false_positives"),
        pytest.param("alerts.incidents", "timeline", id="obslib.alerts.incidents.timeline"),
        pytest.param("trace_sets", "service_graph", id="the flat obslib.trace_sets still works"),
        pytest.param("evaluation", "record", id="the flat obslib.evaluation still works"),
        pytest.param("slo_status", "evaluate_at", id="the flat obslib.slo_status still works"),
    ],
)
def test_public_names_resolve_after_import_obslib(path: str, name: str) -> None:
    """A notebook's ``import obslib`` reaches every documented name by attribute."""
    target = obslib
    for part in path.split("."):
        target = getattr(target, part)
    assert callable(getattr(target, name))


def test_version_is_the_installed_packages() -> None:
    """``obslib.__version__`` is pyproject's version, read from the package metadata."""
    assert obslib.__version__ == metadata.version("obslib")


def test_an_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="nope"):
        obslib.traces.nope  # noqa: B018
