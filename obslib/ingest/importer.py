"""Import telemetry files: OTLP/JSON, Jaeger JSON, JSON-lines logs; plain or gzip.

A file is one transaction: its records are decoded and written in chunks (bounded memory
on large files), and a file that is not its format (truncated JSON, an unreadable gzip
stream, a document of the wrong shape) rolls back whole, whatever chunks went before.
Within a readable file, each bad record is refused on its own and listed with its
position; the rest is stored. A file with content but no records at all is an error, not
silence. Re-importing a file stores nothing twice (every row has a natural key) and a record
whose ids are stored with other content is reported, not overwritten.

A file is either one JSON document (pretty-printed or not) or JSON lines, one document per
line, as the OpenTelemetry Collector's file exporter writes: the first line decides (a
complete JSON value on it means JSON lines).
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from obslib.errors import InputError, UsageError
from obslib.ingest import otlp, writer
from obslib.ingest.records import Decoded, Reject
from obslib.ingest.store import Outcome, store

CHUNK_RECORDS = 20_000  # records decoded before a write: bounds memory on large files
PROGRESS_BYTES = 4 * 2**20  # files from this size show a progress bar (on a terminal)
GZIP_MAGIC = b"\x1f\x8b"

Decoder = Callable[[Any, str, str], Decoded]


def _decoder(kind: str) -> Decoder:
    if kind == "otlp":
        return otlp.decode_json
    if kind == "jaeger":
        from obslib.ingest import jaeger

        return jaeger.decode
    if kind == "logs":
        from obslib.ingest import logfile

        return logfile.decode
    raise UsageError(f"unknown telemetry format {kind!r}: use otlp, jaeger or logs")


FORMATS = {"otlp": "OTLP/JSON", "jaeger": "Jaeger JSON", "logs": "JSON-lines logs"}


@dataclass
class FileReport:
    """What importing one file did; ``error`` is set when the file was refused whole."""

    path: str
    outcome: Outcome = field(default_factory=Outcome)
    empty: bool = False
    error: str | None = None

    @property
    def rejects(self) -> list[Reject]:
        return self.outcome.rejects


def import_file(
    path: str | Path,
    kind: str,
    *,
    url: str | None = None,
    progress: bool = False,
    chunk: int = CHUNK_RECORDS,
) -> FileReport:
    """Import one file of ``kind`` (otlp, jaeger, logs) in one transaction.

    Raises InputError (nothing stored) when the file is unreadable or not its format."""
    decode = _decoder(kind)
    name = str(path)
    report = FileReport(name)
    pending = Decoded()
    with writer.batch(url, every_conflict=True) as b:
        for where, doc in _documents(Path(path), progress):
            pending.extend(decode(doc, name, where))
            if pending.records >= chunk:
                report.outcome += store(b, pending, name)
                pending = Decoded()
        report.outcome += store(b, pending, name)
        if report.outcome.input == 0:
            if _blank(Path(path)):
                report.empty = True
            else:
                raise InputError(f"{name}: no spans or log records in it (is it {FORMATS[kind]}?)")
    return report


def import_files(
    paths: list[str | Path],
    kind: str,
    *,
    url: str | None = None,
    progress: bool = False,
    on_file: Callable[[FileReport], None] | None = None,
) -> list[FileReport]:
    """Import each file in its own transaction; a refused file is reported (``error``) and
    the others still go in."""
    _decoder(kind)  # an unknown kind fails before any file is read
    reports = []
    for path in paths:
        try:
            report = import_file(path, kind, url=url, progress=progress)
        except InputError as err:
            report = FileReport(str(path), error=str(err))
        reports.append(report)
        if on_file is not None:
            on_file(report)
    return reports


# -- reading --------------------------------------------------------------------------------


def _documents(path: Path, progress: bool) -> Iterator[tuple[str, Any]]:
    """(where, parsed JSON) for each document of the file: one, or one per line."""
    try:
        raw = path.open("rb")
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror or err}") from None
    with raw:
        size = path.stat().st_size
        bar = _bar(size, progress, path.name)
        try:
            yield from _parse(_open(raw), path, lambda: bar.update(raw.tell() - bar.n))
        except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
            raise InputError(f"{path}: cannot decompress: {err}") from None
        finally:
            bar.close()


def _open(raw: IO[bytes]) -> IO[bytes]:
    magic = raw.read(2)
    raw.seek(0)
    return gzip.GzipFile(fileobj=raw) if magic == GZIP_MAGIC else raw


def _parse(stream: IO[bytes], path: Path, tick: Callable[[], Any]) -> Iterator[tuple[str, Any]]:
    number = 0
    first = b""
    for line in stream:  # skip leading blank lines; the first with content decides
        number += 1
        if line.strip():
            first = line
            break
    if not first:
        return
    try:
        doc = orjson.loads(first)
    except orjson.JSONDecodeError:
        whole = first + stream.read()
        tick()
        try:
            doc = orjson.loads(whole)
        except orjson.JSONDecodeError as err:
            raise InputError(f"{path}: not valid JSON: {err}") from None
        yield "", doc
        return
    yield f"line {number}", doc
    for line in stream:
        number += 1
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as err:
            raise InputError(f"{path}: line {number}: not valid JSON: {err}") from None
        tick()  # cheap: tqdm redraws at most ten times a second
        yield f"line {number}", doc
    tick()


def _blank(path: Path) -> bool:
    """True when the file holds nothing but whitespace (after decompression)."""
    with path.open("rb") as raw:
        stream = _open(raw)
        return all(not chunk.strip() for chunk in iter(lambda: stream.read(2**20), b""))


class _NoBar:
    n = 0

    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(size: int, progress: bool, name: str) -> Any:
    if not progress or size < PROGRESS_BYTES:
        return _NoBar()
    from tqdm import tqdm

    # disable=None: no bar when stderr is not a terminal (a log file stays clean)
    return tqdm(total=size, unit="B", unit_scale=True, desc=name, disable=None, leave=False)
