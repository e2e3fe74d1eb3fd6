"""Golden files: a whole output compared byte for byte with the stored one, failing with
the diff and the command that regenerates them (reviewed as a diff, never by hand)."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest


def assert_golden(stored: Path, got: str, regenerate: str) -> None:
    """``got`` is ``stored``'s text exactly; otherwise fail with the unified diff."""
    expected = stored.read_text()
    if got != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(True), got.splitlines(True), f"stored {stored.name}", "now"
            )
        )
        pytest.fail(f"{stored.name} differs (regenerate: {regenerate}):\n{diff}")
