"""``obslib ingest`` and ``obslib collect``: telemetry from outside into the tables.

Kept apart from cli.py (which registers them) because their output is a small report of
its own: per file and in total, accepted + duplicate + rejected = input, and every rejected
record with its file, position and reason.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

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

exit status: 0 every record stored or already there,
             2 a file refused or a record rejected (the rest of the file is stored)
"""


def add_commands(commands) -> None:
    """Register ``ingest`` and ``collect`` on the CLI's subparsers."""
    ingest = commands.add_parser(
        "ingest",
        help="import OTLP/JSON, Jaeger JSON or JSON-lines log files",
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
        help="receive OTLP/HTTP traces and logs (an OpenTelemetry SDK or Collector sends here)",
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
    collect.set_defaults(func=_collect)


def _ingest(args: argparse.Namespace) -> int:
    from obslib.cli import _reachable_url
    from obslib.ingest import importer

    rejects_out = Path(args.rejects) if args.rejects else None
    if rejects_out is not None and not rejects_out.parent.is_dir():
        from obslib.errors import UsageError

        raise UsageError(f"--rejects: folder {rejects_out.parent} does not exist")
    url = _reachable_url()

    def show(report: importer.FileReport) -> None:
        if report.error:
            print(f"obslib: error: {report.error} (nothing of it stored)", file=sys.stderr)
            return
        for reject in report.rejects:
            print(f"rejected {reject.kind}: {reject}", file=sys.stderr)
        if not args.quiet:
            print(_line(report.path, report), flush=True)

    reports = importer.import_files(
        args.files, args.format, url=url, progress=not args.quiet, on_file=show
    )
    rejected = [r for rep in reports for r in rep.rejects]
    if rejects_out is not None:
        with rejects_out.open("wb") as f:
            for reject in rejected:
                f.write(orjson.dumps(reject.as_dict()) + b"\n")
    refused = [r for r in reports if r.error]
    if len(reports) > 1 or args.quiet:
        print(_total(reports))
    return 2 if refused or rejected else 0


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
    from obslib.cli import _reachable_url
    from obslib.ingest import receiver

    # bad settings are refused before connecting (or starting the embedded server)
    receiver.check_port(args.port)
    receiver.Options(
        None,
        args.max_body_bytes,
        args.flush_rows,
        args.flush_ms,
        args.max_pending_rows,
        args.max_inflight_bytes,
    ).check()
    url = _reachable_url()
    receiver.serve(
        args.host,
        args.port,
        url=url,
        max_body_bytes=args.max_body_bytes,
        flush_rows=args.flush_rows,
        flush_ms=args.flush_ms,
        max_pending_rows=args.max_pending_rows,
        max_inflight_bytes=args.max_inflight_bytes,
    )
    return 0


def _export_parquet(args: argparse.Namespace) -> int:
    from obslib.cli import _reachable_url
    from obslib.load import export
    from obslib.values import utc

    start, end = utc(args.start, "--start"), utc(args.end, "--end")
    tables = tuple(t.strip() for t in args.tables.split(",") if t.strip())
    export.check_tables(tables)  # bad input is refused before connecting
    days = export.days_of(start, end)
    url = _reachable_url()

    def show(part: export.Partition) -> None:
        where = part.path if part.path is not None else "no rows, no file"
        print(f"{part.table} {part.day}: {part.rows} rows -> {where}", flush=True)

    parts = export.export_parquet(start, end, args.out, tables=tables, url=url, on_partition=show)
    rows = sum(p.rows for p in parts)
    print(f"exported {rows} rows of {len(days)} day(s) to {args.out}")
    return 0
