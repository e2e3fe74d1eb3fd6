"""``obslib ingest``, ``obslib collect`` and ``obslib export``: telemetry in and out.

Their output is a small report of its own: per file and in total, accepted + duplicate +
rejected = input, and every rejected record with its file, position and reason.
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import stat
import sys
from pathlib import Path
from typing import IO

from obslib.cli._args import refuse_bad_moment

_INGEST_EPILOG = """\
formats:
  otlp    OTLP/JSON traces and logs (ExportTraceServiceRequest / ExportLogsServiceRequest),
          one document or JSON lines as the OpenTelemetry Collector's file exporter writes
  jaeger  Jaeger's JSON (UI download, query API: data[].spans, processes, references)
  logs    JSON lines of the plan's StructuredLogEntry: timestamp, level, service_name,
          trace_id, span_id, message, fields, error
Any file may be gzip-compressed. Each file is one transaction: a file that is not its format
(truncated JSON, wrong shape) stores nothing; a bad record inside a readable file is refused
on its own and listed. Re-importing a file stores nothing twice.

limits (a file over one is refused whole, nothing of it stored, the next file still read):
  only regular files (not a FIFO, /dev/zero, a folder); a file's content once decompressed
  up to --max-file-bytes (1 GiB); one JSON document, or one line of JSON lines, up to
  --max-document-bytes (32 MiB: a document is parsed whole, ~23x its size in memory;
  JSON lines are read a chunk at a time, so a large export belongs in JSON lines, as the
  Collector's file exporter writes them)
--rejects FILE is checked before anything is imported: not an input file (nor a link to
one), not a folder, writable (a pipe must have a reader). If writing it fails at the end,
the imported files stay stored (each file is committed as it is read); the rejects are
listed on stderr anyway, a regular FILE is left empty, and the exit status is 2.

exit status: 0 every record stored or already there,
             2 a file refused or a record rejected (the rest of the file is stored),
               or --rejects refused or not written
"""


def add_commands(commands) -> None:
    """Register ``ingest`` and ``collect`` on the CLI's subparsers."""
    ingest = commands.add_parser(
        "ingest",
        help="import OTLP/JSON, Jaeger JSON or JSON-lines log files (.gz too)",
        description="Import telemetry files into the database, reporting accepted, duplicate\n"
        "and rejected records per file.",
        epilog=_INGEST_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ingest.add_argument("format", choices=["otlp", "jaeger", "logs"], help="the files' format")
    ingest.add_argument("files", nargs="+", metavar="FILE", help="files to import (.gz too)")
    ingest.add_argument(
        "--rejects",
        metavar="FILE",
        help="also write every rejected record (source, position, kind, reason) as JSON lines",
    )
    ingest.add_argument("--quiet", action="store_true", help="no progress bar, no per-file lines")
    ingest.add_argument(
        "--max-file-bytes",
        type=_bytes,
        metavar="N",
        help="refuse a file whose content, decompressed, is larger (default 1 GiB; 8GiB works)",
    )
    ingest.add_argument(
        "--max-document-bytes",
        type=_bytes,
        metavar="N",
        help="refuse a file with a larger JSON document or line (default 32 MiB)",
    )
    ingest.set_defaults(func=_ingest)

    export = commands.add_parser(
        "export",
        help="export spans and logs to Parquet, a partition per UTC day (for Spark, a lake)",
    )
    formats = export.add_subparsers(title="formats", metavar="FORMAT", required=True)
    parquet = formats.add_parser(
        "parquet",
        help="spans and logs of whole UTC days to OUT/<table>/day=YYYY-MM-DD/part-0.parquet",
        description="Stream spans and logs of every UTC day the window touches into Parquet,\n"
        "one Hive-style partition per day, in bounded memory. Re-exporting a day replaces\n"
        "its file atomically; an interrupted export leaves every partition whole.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parquet.add_argument("--start", required=True, metavar="TIME", help="window start, UTC")
    parquet.add_argument("--end", required=True, metavar="TIME", help="window end, UTC")
    parquet.add_argument("--out", required=True, metavar="DIR", help="the dataset's folder")
    parquet.add_argument(
        "--tables",
        default="spans,logs",
        metavar="LIST",
        help="comma-separated: spans, logs (default %(default)s)",
    )
    parquet.set_defaults(func=_export_parquet)

    collect = commands.add_parser(
        "collect",
        help="OTLP/HTTP receiver: /v1/traces, /v1/logs, /metrics (an OpenTelemetry SDK or"
        " Collector sends here)",
        description="An OTLP/HTTP receiver: POST /v1/traces and /v1/logs (protobuf or JSON,\n"
        "gzip), GET /metrics (Prometheus). Point an SDK at it with\n"
        "OTEL_EXPORTER_OTLP_ENDPOINT=http://HOST:PORT. SIGTERM or Ctrl-C stores what was\n"
        "accepted, then exits within 10 s (what is still undecided then is dropped\n"
        "unanswered; its client retries). Gzip bodies of more than 1024 members get 400,\n"
        "ones taking over 5 s to inflate 413.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    collect.add_argument("--host", default="127.0.0.1", help="address (default %(default)s)")
    collect.add_argument(
        "--port", type=int, default=4318, help="port, 0 for any free one (default %(default)s)"
    )
    tuning = collect.add_argument_group("tuning")
    tuning.add_argument(
        "--max-body-bytes",
        type=int,
        default=20 * 2**20,
        metavar="N",
        help="larger requests, also once inflated, get 413 (default 20 MiB, as the Collector)",
    )
    tuning.add_argument(
        "--flush-rows",
        type=int,
        default=5000,
        metavar="N",
        help="write a group of requests once it holds N rows (default %(default)s)",
    )
    tuning.add_argument(
        "--flush-ms",
        type=float,
        default=200.0,
        metavar="MS",
        help="or once its oldest request has waited MS (default %(default)s)",
    )
    tuning.add_argument(
        "--max-pending-rows",
        type=int,
        default=50000,
        metavar="N",
        help="answer 503 (retry later) while more rows wait to be written (default %(default)s)",
    )
    tuning.add_argument(
        "--max-inflight-bytes",
        type=int,
        default=256 * 2**20,
        metavar="N",
        help="answer 503 with Retry-After while requests in flight hold more: bodies being "
        "received, then decoded requests until committed, estimated at 20x a protobuf body "
        "and 8x a JSON one (default 256 MiB: a dozen OpenTelemetry Collector batches of "
        "8,192 spans at once). One request is always taken, however large",
    )
    sampled = collect.add_argument_group(
        "sampling",
        "tail-based, whole traces: errors and traces slower than their service's latency\n"
        "SLO always kept, the rest per service and operation so that about N spans a second\n"
        "are stored; each kept span records the probability it was kept with, which the SLI\n"
        "counts weigh by. State is in memory only: a restart starts fresh.",
    )
    sampled.add_argument(
        "--sampling",
        choices=("off", "adaptive"),
        default="off",
        help="store every span (off, the default) or sample traces adaptively",
    )
    sampled.add_argument(
        "--spans-per-second",
        type=float,
        metavar="N",
        help="the stored rate --sampling adaptive aims at",
    )
    sampled.add_argument(
        "--trace-idle",
        type=float,
        metavar="S",
        help="a trace whose root arrived is complete after S seconds without a span (default 2)",
    )
    sampled.add_argument(
        "--decision-wait",
        type=float,
        metavar="S",
        help="a trace is decided S seconds after its first span at the latest (default 30)",
    )
    sampled.add_argument(
        "--max-pending-traces",
        type=int,
        metavar="N",
        help="past N traces waiting, the oldest is decided at once (default 50000)",
    )
    collect.set_defaults(func=_collect)


def _ingest(args: argparse.Namespace) -> int:
    from obslib.ingest import importer
    from obslib.storage import db

    rejects_out = _rejects_target(args.rejects, args.files) if args.rejects else None
    limits = {
        name: value
        for name, value in (
            ("max_file_bytes", args.max_file_bytes),
            ("max_document_bytes", args.max_document_bytes),
        )
        if value is not None
    }
    url = db.reachable_url()

    def show(report: importer.FileReport) -> None:
        if report.error:
            print(f"obslib: error: {report.error} (nothing of it stored)", file=sys.stderr)
            return
        for reject in report.rejects:
            print(f"rejected {reject.kind}: {reject}", file=sys.stderr)
        if not args.quiet:
            print(_line(report.path, report), flush=True)

    reports = importer.import_files(
        args.files, args.format, url=url, progress=not args.quiet, on_file=show, **limits
    )
    rejected = [r for rep in reports for r in rep.rejects]
    unwritten = _write_rejects(rejects_out, rejected) if rejects_out is not None else None
    refused = [r for r in reports if r.error]
    if len(reports) > 1 or args.quiet:
        print(_total(reports))
    if unwritten:
        print(f"obslib: error: {unwritten}", file=sys.stderr)
    return 2 if refused or rejected or unwritten else 0


_UNITS = {"": 1, "k": 2**10, "kib": 2**10, "m": 2**20, "mib": 2**20, "g": 2**30, "gib": 2**30}


def _bytes(text: str) -> int:
    """A positive size in bytes: 1048576, 512MiB, 8GiB (K, M, G are binary too)."""
    match = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", text)
    unit = match and _UNITS.get(match[2].lower())
    if not match or unit is None or int(match[1]) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive size (1048576, 512MiB, 8GiB)")
    return int(match[1]) * unit


class _Rejects:
    """Where --rejects goes: a regular file is opened (truncated) only at the end; a pipe
    or a device (/dev/null, /dev/stdout, ``>(gzip > r.gz)``) is opened at the start, so a
    FIFO nobody reads is refused then, not hung on after the import."""

    def __init__(self, path: Path, held: IO[bytes] | None = None) -> None:
        self.path, self.held = path, held

    def open(self) -> IO[bytes]:
        return self.held if self.held is not None else self.path.open("wb")


def _rejects_target(value: str, inputs: list[str]) -> _Rejects:
    """The --rejects path, checked before anything is imported: a new file in a writable
    folder, or an existing writable regular file, character device or pipe with a reader,
    that is none of the inputs, not through a symlink or a hard link either."""
    from obslib.errors import UsageError

    out = Path(value)
    try:
        mode = out.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as err:
        raise UsageError(f"--rejects {out}: {err.strerror or err}") from None
    for name in inputs:
        if _same_file(out, Path(name)):
            raise UsageError(
                f"--rejects {out} is the input file {name}: writing the rejects would replace"
                " it; name another file"
            )
    if mode is not None and stat.S_ISDIR(mode):
        raise UsageError(f"--rejects {out} is a folder: name a file in it")
    if mode is not None and not os.access(out, os.W_OK):
        raise UsageError(f"--rejects {out} is not writable")
    if mode is not None and not stat.S_ISREG(mode):
        if not (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
            raise UsageError(f"--rejects {out} is not a file, a device or a pipe")
        try:  # O_NONBLOCK: a FIFO without a reader fails (ENXIO) instead of blocking
            fd = os.open(out, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as err:
            reason = "no process reads it" if err.errno == errno.ENXIO else err.strerror
            raise UsageError(f"--rejects {out}: cannot write: {reason}") from None
        os.set_blocking(fd, True)
        return _Rejects(out, os.fdopen(fd, "wb"))
    folder = out.resolve().parent
    if not folder.is_dir():
        raise UsageError(f"--rejects: folder {out.parent} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"--rejects: folder {out.parent} is not writable")
    return _Rejects(out)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)  # also through symlinks and hard links
    except OSError:  # one of them does not exist: compare where the names lead
        return a.resolve() == b.resolve()


def _write_rejects(target: _Rejects, rejected: list) -> str | None:
    """Write the rejects as JSON lines; the error line when that fails (ENOSPC, /dev/full),
    with a regular file left empty rather than half-written."""
    import orjson

    out = target.path
    try:
        with target.open() as f:
            for reject in rejected:
                f.write(orjson.dumps(reject.as_dict()) + b"\n")
        return None
    except OSError as err:
        with_file = out.is_file()
        if with_file:
            try:
                os.truncate(out, 0)
            except OSError:
                with_file = False
        left = "left empty" if with_file else "not written"
        return (
            f"--rejects {out}: cannot write the {len(rejected)} rejected record(s):"
            f" {err.strerror or err} ({left}; the rejects are listed above, and the files"
            " imported stay stored: each was committed as it was read)"
        )


def _line(name: str, report) -> str:
    if report.empty:
        return f"{name}: empty, nothing to import"
    o = report.outcome
    parts = []
    for kind, counts in (("spans", o.spans), ("logs", o.logs)):
        if counts.input:
            parts.append(
                f"{counts.input} {kind}: {counts.accepted} accepted,"
                f" {counts.duplicate} duplicate, {counts.rejected} rejected"
            )
    unlinked = (
        f"; {o.unlinked} log(s) stored without the trace link their malformed ids named"
        if o.unlinked
        else ""
    )
    return f"{name}: " + "; ".join(parts) + unlinked


def _total(reports) -> str:
    from obslib.ingest.store import Outcome

    total = Outcome()
    for r in reports:
        total += r.outcome
    refused = sum(1 for r in reports if r.error)
    files = f"{len(reports)} file(s)" + (f", {refused} refused whole" if refused else "")
    return (
        f"total, {files}: {total.input} records: {total.accepted} accepted,"
        f" {total.duplicate} duplicate, {total.rejected} rejected"
    )


def _collect(args: argparse.Namespace) -> int:
    from obslib.ingest import receiver
    from obslib.storage import db

    # bad settings are refused before connecting (or starting the embedded server)
    receiver.check_port(args.port)
    sampling = {
        name: value
        for name, value in (
            ("trace_idle_s", args.trace_idle),
            ("decision_wait_s", args.decision_wait),
            ("max_pending_traces", args.max_pending_traces),
        )
        if value is not None
    }
    receiver.Options(
        None,
        args.max_body_bytes,
        args.flush_rows,
        args.flush_ms,
        args.max_pending_rows,
        args.max_inflight_bytes,
        args.sampling,
        args.spans_per_second,
        **sampling,
    ).check()
    url = db.reachable_url()
    receiver.serve(
        args.host,
        args.port,
        url=url,
        max_body_bytes=args.max_body_bytes,
        flush_rows=args.flush_rows,
        flush_ms=args.flush_ms,
        max_pending_rows=args.max_pending_rows,
        max_inflight_bytes=args.max_inflight_bytes,
        sampling=args.sampling,
        spans_per_second=args.spans_per_second,
        **sampling,
    )
    return 0


def _export_parquet(args: argparse.Namespace) -> int:
    refuse_bad_moment(args.start, "--start")  # a typo, before pandas is imported
    from obslib.load import export
    from obslib.storage import db
    from obslib.values import moment, window

    start, end = window(moment(args.start, "--start"), moment(args.end, "--end"))
    tables = tuple(t.strip() for t in args.tables.split(",") if t.strip())
    export.check_tables(tables)  # bad input is refused before connecting
    export.prepare_out(args.out)
    days = export.days_of(start, end)
    url = db.reachable_url()

    def show(part: export.Partition) -> None:
        where = part.path if part.path is not None else "no rows, no file"
        print(f"{part.table} {part.day}: {part.rows} rows -> {where}", flush=True)

    parts = export.export_parquet(start, end, args.out, tables=tables, url=url, on_partition=show)
    rows = sum(p.rows for p in parts)
    print(f"exported {rows} rows of {len(days)} day(s) to {args.out}")
    return 0
