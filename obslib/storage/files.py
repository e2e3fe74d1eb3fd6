"""Files obslib writes for other programs to read (rule files, OpenSLO exports): checked
before any work, and replaced whole so a reader sees the old file or the new one."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from obslib.errors import UsageError


def target_file(path: str | Path, what: str = "file") -> Path:
    """The file to write, refused (before any work) when it is a folder or its folder is
    missing."""
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{target} is a folder; name the {what} to write")
    if not target.parent.is_dir():
        raise UsageError(f"{target}: folder {target.parent} does not exist")
    return target


def write_atomically(path: str | Path, text: str) -> Path:
    """``text`` written to ``path``: a hidden temporary file beside it, flushed to disk, then
    a rename (atomic on one file system); nothing is left behind on failure. Returns the
    path written."""
    target = Path(path)
    hidden = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    try:
        with open(hidden, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(hidden, target)
    except BaseException:
        hidden.unlink(missing_ok=True)
        raise
    return target
