"""Trace and span ids for tests: the writers take only what the importers take (32 hex
digits for a trace, 16 for a span, never all zeros), so a test names its ids readably
("t-1", "s0") and writes the stable hex id derived from that name."""

from __future__ import annotations

import hashlib


def _hex(name: str, digits: int) -> str:
    value = hashlib.sha256(name.encode()).hexdigest()[:digits]
    assert value.strip("0"), f"{name!r} hashes to an all-zero id"  # never, for test names
    return value


def tid(name: str) -> str:
    """The trace id a test calls ``name``: 32 lowercase hex digits."""
    return _hex(name, 32)


def sid(name: str) -> str:
    """The span id a test calls ``name``: 16 lowercase hex digits."""
    return _hex(name, 16)
