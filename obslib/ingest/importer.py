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

Hostile files meet limits before memory does: only regular files are opened (a FIFO would
hang, /dev/zero never ends); a file's content, once decompressed, stops at
``max_file_bytes`` (a gzip bomb); one JSON document or line stops at
``max_document_bytes``, because parsing holds the whole document and its decoded rows at
once (~23x its size) while JSON lines are decoded and written a chunk at a time. Reading
never goes more than one limit past where it stops, and a file stopped there stores nothing.
"""

from __future__ import annotations

import gzip
import os
import stat
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from obslib.errors import InputError, UsageError
from obslib.ingest import otlp, writer
from obslib.ingest.records import Decoded, Reject
from obslib.ingest.store import Outcome, settle, store
from obslib.values import json_value

CHUNK_RECORDS = 20_000  # records decoded before a write: bounds memory on large files
PROGRESS_BYTES = 4 * 2**20  # files from this size show a progress bar (on a terminal)
GZIP_MAGIC = b"\x1f\x8b"
MAX_FILE_BYTES = 2**30  # a file's content once decompressed (1 GiB): a gzip bomb stops here
# one JSON document or line (32 MiB): parsing and decoding hold ~23x a document at once
# (bench/hostile_files.py: a 61 MB one peaked at 1.4 GB), while JSON lines are read and
# written a chunk at a time (the same spans, 119 MB of lines: 0.2 GB). 32 MiB holds a
# pretty-printed 50,000-span trace (29 MiB) and any request the receiver takes (20 MiB).
MAX_DOCUMENT_BYTES = 32 * 2**20

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
    max_file_bytes: int = MAX_FILE_BYTES,
    max_document_bytes: int = MAX_DOCUMENT_BYTES,
) -> FileReport:
    """Import one file of ``kind`` (otlp, jaeger, logs) in one transaction.

    Raises InputError (nothing stored) when the file is unreadable, not a regular file, over
    a limit (``max_file_bytes`` decompressed, ``max_document_bytes`` a document or line) or
    not its format."""
    decode = _decoder(kind)
    limits = _Limits(max_file_bytes, max_document_bytes)
    name = str(path)
    report = FileReport(name)
    pending = Decoded()
    seen = _Seen()
    _regular(Path(path))  # refused before connecting, and before opening (a FIFO blocks)
    with writer.batch(url, every_conflict=True) as b:
        for where, doc in _documents(Path(path), progress, limits, seen):
            pending.extend(decode(doc, name, where))
            if pending.records >= chunk:
                report.outcome += store(b, pending, name)
                pending = Decoded()
        report.outcome += store(b, pending, name)
        if report.outcome.input == 0:
            if not seen.content:
                report.empty = True
            else:
                raise InputError(f"{name}: no spans or log records in it (is it {FORMATS[kind]}?)")
    settle(report.outcome, b, name)  # records another writer stored before the commit
    return report


def import_files(
    paths: list[str | Path],
    kind: str,
    *,
    url: str | None = None,
    progress: bool = False,
    on_file: Callable[[FileReport], None] | None = None,
    max_file_bytes: int = MAX_FILE_BYTES,
    max_document_bytes: int = MAX_DOCUMENT_BYTES,
) -> list[FileReport]:
    """Import each file in its own transaction; a refused file is reported (``error``) and
    the others still go in."""
    _decoder(kind)  # an unknown kind fails before any file is read
    _Limits(max_file_bytes, max_document_bytes)  # and so do bad limits
    reports = []
    for path in paths:
        try:
            report = import_file(
                path,
                kind,
                url=url,
                progress=progress,
                max_file_bytes=max_file_bytes,
                max_document_bytes=max_document_bytes,
            )
        except InputError as err:
            report = FileReport(str(path), error=str(err))
        reports.append(report)
        if on_file is not None:
            on_file(report)
    return reports


# -- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Limits:
    file_bytes: int
    document_bytes: int

    def __post_init__(self) -> None:
        for value, option in (
            (self.file_bytes, "max_file_bytes"),
            (self.document_bytes, "max_document_bytes"),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"{option} must be a positive number of bytes, not {value!r}")


@dataclass
class _Seen:
    """What reading a file found: ``content`` once anything but whitespace was read."""

    content: bool = False


def _documents(
    path: Path, progress: bool, limits: _Limits, seen: _Seen | None = None
) -> Iterator[tuple[str, Any]]:
    """(where, parsed JSON) for each document of the file: one, or one per line; ``seen``
    learns whether the file held anything but whitespace (a blank file is no error)."""
    with _open_regular(path) as raw:
        size = os.fstat(raw.fileno()).st_size
        stream = _open(raw)
        if stream is raw and size > limits.file_bytes:  # plain: refused before reading it
            raise InputError(
                f"{path}: {_size(size)}, over the limit of {_size(limits.file_bytes)} a file"
                f" ({_raise('--max-file-bytes', limits.file_bytes)})"
            )
        bar = _bar(size, progress, path.name)
        try:
            reader = _Reader(stream, path, limits)
            yield from _parse(reader, path, lambda: bar.update(raw.tell() - bar.n), seen or _Seen())
        except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
            raise InputError(f"{path}: cannot decompress: {err}") from None
        finally:
            bar.close()


def _regular(path: Path) -> None:
    """InputError unless ``path`` is a regular file (symlinks followed), found by ``stat``
    without opening it: opening a FIFO waits for a writer."""
    try:
        mode = path.stat().st_mode
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror or err}") from None
    _check_mode(path, mode)


def _open_regular(path: Path) -> IO[bytes]:
    """The file opened for reading, checked again on the open file (it may have been
    swapped since ``_regular``); O_NONBLOCK so that even a FIFO put there does not block."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror or err}") from None
    try:
        _check_mode(path, os.fstat(fd).st_mode)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


_NOT_REGULAR = [
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
]


def _check_mode(path: Path, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    what = next((name for test, name in _NOT_REGULAR if test(mode)), "not a file")
    raise InputError(
        f"{path}: not a regular file ({what}); only regular files are imported, plain or gzip"
    )


def _open(raw: IO[bytes]) -> IO[bytes]:
    magic = raw.read(2)
    raw.seek(0)
    return gzip.GzipFile(fileobj=raw) if magic == GZIP_MAGIC else raw


_WHITESPACE = frozenset(b" \t\n\r\x0b\x0c")  # what bytes.strip() strips


class _Reader:
    """The content, decompressed, a line at a time within the limits: never more than one
    document limit read into memory at once, never more than the file limit in all."""

    def __init__(self, stream: IO[bytes], path: Path, limits: _Limits) -> None:
        self.stream, self.path, self.limits = stream, path, limits
        self.number = 0  # lines read
        self.total = 0  # bytes read

    def __iter__(self) -> Iterator[bytes]:
        limit = self.limits.document_bytes
        while True:
            self._skip_blank()
            line = self.stream.readline(limit + 1)
            if not line:
                return
            self.number += 1
            self._count(len(line))
            if len(line) > limit:
                raise InputError(
                    f"{self.path}: line {self.number}: {self._too_long()}; or import JSON lines"
                    " of smaller requests, as the OpenTelemetry Collector's file exporter"
                    " writes them"
                )
            yield line

    def _skip_blank(self) -> None:
        """Skip whitespace a buffer at a time: a gzip of blank lines is read a line per
        readline call otherwise (8 MiB of newlines took 15 s; a 1 GiB one, half an hour)."""
        while (data := self.stream.peek(1)) and data[0] in _WHITESPACE:  # type: ignore[attr-defined]
            skipped = len(data) - len(data.lstrip())
            self.number += data.count(b"\n", 0, skipped)
            self._count(skipped)
            self.stream.read(skipped)

    def document(self, first: bytes) -> bytes:
        """``first`` and the rest of the content: one JSON document within its limit."""
        limit = self.limits.document_bytes
        rest = self.stream.read(limit + 1 - len(first)) if len(first) <= limit else b""
        self._count(len(rest))
        if len(first) + len(rest) > limit:
            raise InputError(
                f"{self.path}: {self._too_long()}; or split it into JSON lines of smaller"
                " requests, as the OpenTelemetry Collector's file exporter writes them"
            )
        return first + rest

    def _too_long(self) -> str:
        limit = self.limits.document_bytes
        return (
            f"one JSON document over the limit of {_size(limit)}"
            f" ({_raise('--max-document-bytes', limit)})"
        )

    def _count(self, n: int) -> None:
        self.total += n
        if self.total > self.limits.file_bytes:
            limit = self.limits.file_bytes
            raise InputError(
                f"{self.path}: over the limit of {_size(limit)} a file once decompressed"
                f" ({_raise('--max-file-bytes', limit)})"
            )


def _raise(option: str, limit: int) -> str:
    return f"{option} {limit}; a larger value raises it"


def _size(n: int) -> str:
    """Bytes for a person: 1 GiB, 64 MiB, 1.5 GiB, 300 bytes."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} bytes"


def _parse(
    reader: _Reader, path: Path, tick: Callable[[], Any], seen: _Seen
) -> Iterator[tuple[str, Any]]:
    lines = iter(reader)
    first = b""
    for line in lines:  # skip leading blank lines; the first with content decides
        if line.strip():
            first = line
            break
    if not first:
        return  # blank: nothing but whitespace, read to the end within the limits
    seen.content = True
    try:
        doc = json_value(first)
    except ValueError:
        whole = reader.document(first)
        tick()
        try:
            doc = json_value(whole)
        except ValueError as err:
            raise InputError(f"{path}: not valid JSON: {err}") from None
        yield "", doc
        return
    yield f"line {reader.number}", doc
    for line in lines:
        if not line.strip():
            continue
        try:
            doc = json_value(line)
        except ValueError as err:
            raise InputError(f"{path}: line {reader.number}: not valid JSON: {err}") from None
        tick()  # cheap: tqdm redraws at most ten times a second
        yield f"line {reader.number}", doc
    tick()


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
