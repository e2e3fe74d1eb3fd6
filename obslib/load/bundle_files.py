"""A bundle's folder as the report runner makes and reads it (``obslib.reports.run_notebook``
with ``evidence=``): the hook line a run's notebook gets, the files beside the calls, the
manifest of SHA-256s, written whole or not at all.

A bundle ``STEM.bundle/`` (STEM: the report's files' name, e.g. ``incident_postmortem``)::

    manifest.json              format, obslib version, report, parameters, when, the header's
                               data end and archived days, the calls in order, every file's
                               SHA-256
    calls/NNN-FUNCTION.json    one loader call: its arguments (no URL) and its result's shape
    calls/NNN-FUNCTION*.parquet  the rows it returned, one file per frame
    source/STEM.ipynb          the notebook as it was before its parameters were set
    inputs/PARAMETER/FILE      a file the notebook read for a parameter (the health
                               report's alertmanager.yml, its secrets masked; obslib's own
                               when none is given): a re-run reads this copy
    STEM.ipynb, STEM.html      the report as run (executed notebook with its header, HTML)
    STEM.md / postmortem.md    its Markdown, when the notebook writes one
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

import pandas as pd

from obslib.config import version
from obslib.load._bundle_codec import file_sha256
from obslib.load.bundle import CALLS, FORMAT, MANIFEST, BundleError, read_manifest, verify

SOURCE = "source"
INPUTS = "inputs"
# an input larger than this is refused, not copied: the files a notebook reads for a
# parameter are configurations (an alertmanager.yml is kilobytes; obslib reads none over
# 10 MB)
INPUT_MAX_BYTES = 16 * 2**20
# the database a re-run's kernel is given: port 1 on loopback refuses at once, so a call the
# bundle does not answer fails there (named) instead of starting or reading a database
NO_DATABASE = "postgresql://obslib-rerun@127.0.0.1:1/no-database"
# a parameter a re-run always sets off: re-running a report never writes to a database
NO_WRITES = {"record": False}
# why, as the re-run's header says it when the recorded run had it on
_NO_WRITES_WHY = "a re-run writes to no database"


def hook_line(mode: str, folder: Path) -> str:
    """The line that switches the kernel's loaders to ``mode`` (record/replay) on ``folder``;
    a statement whose value is None, so the cell shows nothing more."""
    return f"__import__('obslib.load.bundle').load.bundle.{mode}({str(folder)!r})"


def _hook_cell(nb: object) -> object:
    """The cell the hook line goes in: the ``parameters`` cell, which runs before any
    loader; a notebook without one, its first code cell."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not (tagged or code):
        raise BundleError("the notebook has no code cell to record from")
    return (tagged or code)[0]


def hook_notebook(source: Path, line: str, into: Path) -> Path:
    """A copy of ``source`` in folder ``into`` (same file name) with ``line`` appended to its
    hook cell."""
    import nbformat

    nb = nbformat.read(str(source), as_version=4)
    cell = _hook_cell(nb)
    cell.source = cell.source.rstrip("\n") + "\n" + line
    target = Path(into) / Path(source).name
    nbformat.write(nb, str(target))
    return target


def unhook_notebook(executed: Path, line: str) -> None:
    """Take ``line`` back out of the executed notebook: it shows the notebook as written."""
    import nbformat

    nb = nbformat.read(str(executed), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.endswith("\n" + line):
            cell.source = cell.source[: -len(line) - 1]
            nbformat.write(nb, str(executed))
            return


@dataclass(frozen=True)
class Header:
    """What a re-run's header shows of its recorded run."""

    data_end: pd.Timestamp | None
    archived: str
    rerun: str  # the header's "Re-run" row


class _Session:
    """Used as a context manager: leaving it without ``finish`` throws the run's files away
    (a failed run leaves no bundle, and never half of one)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()

    def discard(self) -> None:
        self._tmp.cleanup()


class Recording(_Session):
    """Record one run into ``target`` (``OUT/STEM.bundle``): ``prepare`` the notebook,
    ``unhook`` the executed one, then ``finish``."""

    replaying = False
    header: Header | None = None

    def __init__(self, target: Path) -> None:
        self.target = Path(target).resolve()
        self.partial = self.target.with_name(f".{self.target.name}.partial-{os.getpid()}")
        shutil.rmtree(self.partial, ignore_errors=True)
        (self.partial / CALLS).mkdir(parents=True)
        self._tmp = tempfile.TemporaryDirectory(prefix="obslib-bundle-")
        self.line = hook_line("record", self.partial)
        self.generated = datetime.now(UTC)
        self.inputs: dict[str, dict[str, object]] = {}
        self._originals: dict[Path, str] = {}  # input -> the SHA-256 of what was read

    def keep_inputs(self, files: dict[str, tuple]) -> None:
        """Copy each ``{parameter: (value, file, masks)}`` the notebook reads into
        ``inputs/``, before the run (its SHA-256 goes in the manifest with every file):
        ``masks(bytes, file)`` when given (the alertmanager.yml with its secrets masked; the
        manifest's entry then says ``masked``), else the bytes as read. A file that does
        not exist is not copied: the notebook then fails on it, and a failed run leaves no
        bundle. One that is not a regular file (a folder, a FIFO, ``/dev/zero``) or is over
        ``INPUT_MAX_BYTES`` is refused (BundleError), read no further."""
        for name, (value, path, masks) in files.items():
            path = Path(path)
            if not path.exists():
                continue
            raw = _read_input(name, path)
            kept = masks(raw, str(path)) if masks is not None else raw
            copy = self.partial / INPUTS / name / path.name
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(kept)
            self._originals[path] = hashlib.sha256(raw).hexdigest()
            entry: dict[str, object] = {
                "file": copy.relative_to(self.partial).as_posix(),
                "given": value,
            }
            if kept != raw:
                entry["masked"] = True
            self.inputs[name] = entry

    def prepare(self, source: Path) -> Path:
        (self.partial / SOURCE).mkdir(exist_ok=True)
        shutil.copyfile(source, self.partial / SOURCE / Path(source).name)
        self.source = f"{SOURCE}/{Path(source).name}"
        return hook_notebook(source, self.line, Path(self._tmp.name))

    def unhook(self, executed: Path) -> None:
        unhook_notebook(executed, self.line)

    def finish(
        self,
        outputs: list[Path | None],
        report: str | None,
        parameters: dict[str, object],
        data_end: pd.Timestamp | None,
        archived: str,
    ) -> Path:
        """Copy the report's ``outputs`` in, write the manifest, put the bundle in place.
        An input changed on disk while the report ran is refused (BundleError): the bundle
        could not say which version the notebook read."""
        for original, digest in self._originals.items():
            if not original.is_file() or file_sha256(original) != digest:
                raise BundleError(
                    f"{original}: changed while the report ran; no bundle written (run it again)"
                )
        files = [p for p in outputs if p is not None]
        for path in files:
            shutil.copyfile(path, self.partial / path.name)
        calls = sorted(f"{CALLS}/{p.name}" for p in (self.partial / CALLS).glob("*.json"))
        hashes = {
            p.relative_to(self.partial).as_posix(): file_sha256(p)
            for p in sorted(self.partial.rglob("*"))
            if p.is_file()
        }
        manifest = {
            "format": FORMAT,
            "obslib": version(),
            "report": report,
            "parameters": parameters,
            "generated": self.generated.isoformat(timespec="seconds"),
            "header": {
                "data_end": None if data_end is None else pd.Timestamp(data_end).isoformat(),
                "archived": archived,
            },
            "source": self.source,
            "inputs": self.inputs,
            "report_files": [p.name for p in files],
            "calls": calls,
            "files": hashes,
        }
        (self.partial / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        old = self.target.with_name(f".{self.target.name}.old-{os.getpid()}")
        if self.target.exists():
            self.target.rename(old)
        self.partial.rename(self.target)
        shutil.rmtree(old, ignore_errors=True)
        self._tmp.cleanup()
        return self.target

    def discard(self) -> None:
        shutil.rmtree(self.partial, ignore_errors=True)  # gone already once finished
        self._tmp.cleanup()


def _read_input(name: str, path: Path) -> bytes:
    """The bytes of the file parameter ``name`` names: a regular file of at most
    ``INPUT_MAX_BYTES`` (opened without blocking, so a FIFO is refused, not waited on),
    else BundleError naming the parameter and the file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as err:
        raise BundleError(f"parameter {name}: {path}: cannot read it: {err.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise BundleError(f"parameter {name}: {path} is not a regular file")
    with os.fdopen(fd, "rb") as f:
        raw = f.read(INPUT_MAX_BYTES + 1)
    if len(raw) > INPUT_MAX_BYTES:
        raise BundleError(
            f"parameter {name}: {path} is larger than {INPUT_MAX_BYTES // 2**20} MB:"
            " too large to keep in a bundle"
        )
    return raw


class Replaying(_Session):
    """Re-run the bundle in ``folder``: refused (BundleError, one line naming the first bad
    file, exit 2) unless every file has the manifest's SHA-256."""

    replaying = True

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder).resolve()
        self.manifest = read_manifest(self.folder)
        problems = verify(self.folder)
        if problems:
            more = ""
            if len(problems) > 1:
                more = f" (and {len(problems) - 1} more: obslib bundle verify lists them)"
            raise BundleError(f"bundle {folder}: {problems[0]}{more}")
        recorded = self.manifest["header"]
        self.report: str | None = self.manifest.get("report")
        given = dict(self.manifest["parameters"])
        self.parameters = {**given, **{k: v for k, v in NO_WRITES.items() if k in given}}
        notes = [
            f"{k} = {given[k]!r} in the recorded run, {v!r} here ({_NO_WRITES_WHY})"
            for k, v in NO_WRITES.items()
            if k in given and given[k] != v
        ]
        for name, entry in self._inputs().items():
            self.parameters[name] = str(self.folder / entry["file"])
            origin = entry.get("given") or "obslib's default"
            masked = ", its secrets masked" if entry.get("masked") else ""
            notes.append(
                f"{name} read from the bundle's copy {entry['file']} (SHA-256"
                f" {self.manifest['files'][entry['file']][:12]}..., recorded from"
                f" {origin}{masked})"
            )
        self.header = Header(
            data_end=None if recorded["data_end"] is None else pd.Timestamp(recorded["data_end"]),
            archived=recorded["archived"],
            rerun=(
                f"from the bundle {self.folder.name}, recorded"
                f" {pd.Timestamp(self.manifest['generated']):%Y-%m-%d %H:%M} UTC by obslib"
                f" {self.manifest['obslib']}; no database was read"
                + "".join(f"; {note}" for note in notes)
            ),
        )
        self._tmp = tempfile.TemporaryDirectory(prefix="obslib-rerun-")
        self.line = hook_line("replay", self.folder)

    def _inputs(self) -> dict[str, dict]:
        """The manifest's ``inputs`` (none in a bundle written before they were kept), each
        a file the manifest hashes (so ``verify`` has checked it): else BundleError."""
        inputs = self.manifest.get("inputs") or {}
        for name, entry in inputs.items():
            if not isinstance(entry, dict) or entry.get("file") not in self.manifest["files"]:
                raise BundleError(f"bundle {self.folder}: input {name!r} is not a file it holds")
        return inputs

    def source_copy(self) -> Path:
        """The bundle's notebook, copied out to run (a kernel writes nothing in the bundle):
        one of the files the manifest hashes (so ``verify`` checked it), else BundleError: a
        manifest naming a notebook elsewhere (``../x.ipynb``) would run a file never checked."""
        if self.manifest.get("source") not in self.manifest["files"]:
            raise BundleError(f"bundle {self.folder}: its notebook is not a file it holds")
        source = self.folder / self.manifest["source"]
        copy = Path(self._tmp.name) / "source" / source.name
        copy.parent.mkdir(exist_ok=True)
        shutil.copyfile(source, copy)
        return copy

    def prepare(self, source: Path) -> Path:
        return hook_notebook(source, self.line, Path(self._tmp.name))

    def unhook(self, executed: Path) -> None:
        unhook_notebook(executed, self.line)

    def finish(self, *args: object) -> None:
        """A re-run writes no bundle."""
