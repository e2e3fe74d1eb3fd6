"""The ``obslib`` command: thin argument handling over the library; errors are one line."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Sequence

from obslib.cli import ingest as cli_ingest
from obslib.config import settings, version
from obslib.demo import topology as topo
from obslib.errors import ObslibError, UsageError
from obslib.redact import scrub
from obslib.storage import db, pgserver

logger = logging.getLogger(__name__)


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


_EPILOG = """\
all commands:
  obslib db up [--to N]          apply pending migrations, then show status
  obslib db down [--to N|--all]  revert migrations (one step by default)
  obslib db status               database, schema version and each migration
  obslib db force N              record version N as current after a repair
  obslib db url                  print the database URL, password masked
  obslib db stop                 stop the embedded PostgreSQL server
  obslib db grant-reader ROLE [--password-stdin]
                                 create or update a role that reads every table, writes none
  obslib demo [--seed N] [--spans N] [--reports DIR | --no-reports]
                                 bring the database up, write the demo, then every report
  obslib ingest otlp|jaeger|logs FILE... [--rejects FILE]
                                 import OTLP/JSON, Jaeger JSON or JSON-lines logs (.gz too)
  obslib collect [--host H] [--port P]
                                 OTLP/HTTP receiver: /v1/traces, /v1/logs, /metrics
  obslib export parquet --start TIME --end TIME --out DIR
                                 spans and logs of whole UTC days to Parquet (day=...)
  obslib slo evaluate [--record] [--service S]... [--at TIME] [--min-events N]
                                 every SLO over its window: SLI, budget, burn, alerts
  obslib slo apply FILE.yaml     create or update SLO definitions from a file
  obslib slo list                the SLO definitions
  obslib slo export-prom --out FILE.prom [--service S]... [--at TIME]
                                 the evaluation for node_exporter's textfile collector
  obslib report trace|slo|incident|health [--trace-id ID] [-p NAME VALUE]... --out DIR
                                 run a notebook headless: executed .ipynb + offline HTML
  obslib triage [--since TIME] [--follow] [--out DIR]
                                 run each incident's runbook (default: the postmortem) into
                                 DIR/<incident>/ and record the paths on the incident
  obslib lab [JUPYTER-ARGS]      JupyterLab on the notebooks, same database and Python

The database is $OBSLIB_DATABASE_URL (postgresql://user:password@host:port/db). When
that is unset, obslib starts an embedded PostgreSQL with its data under $OBSLIB_HOME
(default: the user data folder) and leaves it running for the next command.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="obslib",
        description="Investigate DomainFlow traces, logs, SLOs and alerts kept in PostgreSQL.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"obslib {version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    dbp = commands.add_parser("db", help="database: migrations, status, embedded server")
    dbc = dbp.add_subparsers(title="db commands", metavar="ACTION", required=True)

    up = dbc.add_parser("up", help="apply pending migrations (then show status)")
    up.add_argument("--to", type=int, metavar="N", help="stop after version N")
    up.set_defaults(func=_db_up)

    down = dbc.add_parser("down", help="revert migrations (one step unless --to/--all)")
    which = down.add_mutually_exclusive_group()
    which.add_argument("--to", type=int, metavar="N", help="revert until version N is current")
    which.add_argument("--all", action="store_true", help="revert every migration")
    down.set_defaults(func=_db_down)

    status = dbc.add_parser("status", help="show the database, its version and each migration")
    status.set_defaults(func=_db_status)

    force = dbc.add_parser(
        "force", help="record version N as current and clean (after repairing a failed step)"
    )
    force.add_argument("version", type=int, metavar="N", help="version the schema is really at")
    force.set_defaults(func=_db_force)

    url = dbc.add_parser("url", help="print the database URL (password masked)")
    url.set_defaults(func=_db_url)

    stop = dbc.add_parser("stop", help="stop the embedded PostgreSQL server")
    stop.set_defaults(func=_db_stop)

    reader = dbc.add_parser(
        "grant-reader",
        help="create or update a role that can read every obslib table and write none",
    )
    reader.add_argument("role", metavar="ROLE", help="role name: lowercase letters, digits, _")
    reader.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the role's password from standard input (one line)",
    )
    reader.set_defaults(func=_db_grant_reader)

    demo = commands.add_parser(
        "demo", help="write two weeks of DomainFlow telemetry with a scripted incident"
    )
    demo.add_argument(
        "--seed",
        type=_non_negative,
        default=topo.DEFAULT_SEED,
        help="same seed, same data (default %(default)s)",
    )
    demo.add_argument(
        "--spans",
        type=_positive,
        default=topo.DEFAULT_SPANS,
        metavar="N",
        help="about N spans (default %(default)s)",
    )
    where = demo.add_mutually_exclusive_group()
    where.add_argument(
        "--reports",
        default="reports",
        metavar="DIR",
        help="folder for every report, run once the data is written (default ./%(default)s)",
    )
    where.add_argument("--no-reports", action="store_true", help="write the data only, no report")
    demo.set_defaults(func=_demo)

    _slo_commands(commands)
    cli_ingest.add_commands(commands)

    report = commands.add_parser("report", help="run a notebook headless into an offline report")
    report.add_argument(
        "name", choices=["trace", "slo", "incident", "health"], help="which notebook"
    )
    report.add_argument("--trace-id", help="trace to investigate (default: slowest error trace)")
    report.add_argument(
        "-p",
        "--param",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a notebook parameter (repeatable), e.g. -p skew_correction false",
    )
    report.add_argument("--out", required=True, help="folder for the .ipynb and .html")
    report.set_defaults(func=_report)

    _triage_command(commands)

    lab = commands.add_parser("lab", help="start JupyterLab on the notebooks")
    lab.set_defaults(func=_lab, passes_extra=True)  # other arguments go to jupyter lab
    return parser


_TRIAGE_EPILOG = """\
A runbook is the notebook an alert definition names in its `runbook` column (a report name
or a notebook name looked up in the notebooks folder and in $OBSLIB_RUNBOOKS, folders
separated by ':'); none means the incident postmortem. It runs with parameter incident_id.
Each outcome is recorded under the incident's incident_data.report; an incident done is
never run again, a failed one is retried by the next run.

exit status: 0 every incident done (and --follow stopped by SIGTERM or Ctrl-C),
             1 a runbook failed (its executed notebook with the error is in its folder),
             2 bad input, the database unreachable at start, or a role that may not
               record outcomes (a reader: checked before any runbook runs)
"""


def _triage_command(commands) -> None:
    tri = commands.add_parser(
        "triage",
        help="run each incident's runbook (default: the postmortem) and record it",
        description="Run the runbook of every incident without a report (or whose last attempt\n"
        "failed) and record the paths of its HTML and Markdown on the incident.",
        epilog=_TRIAGE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tri.add_argument(
        "--since",
        metavar="TIME",
        help="only incidents triggered at or after TIME, e.g. 2026-11-14T14:00Z or now"
        " (default: all); with --follow, bounds the catch-up at start and after reconnects",
    )
    tri.add_argument(
        "--follow",
        action="store_true",
        help="keep running: triage each incident as it is inserted (LISTEN/NOTIFY), survive"
        " database restarts; SIGTERM or Ctrl-C stops after the report in progress",
    )
    tri.add_argument(
        "--out",
        default="reports/incidents",
        metavar="DIR",
        help="one folder per incident under DIR (default ./%(default)s)",
    )
    tri.set_defaults(func=_triage)


def _triage(args: argparse.Namespace) -> int:
    from pathlib import Path

    from obslib import reports
    from obslib.jobs import triage
    from obslib.values import moment

    # bad input is refused before connecting: the time, the folder
    since = None if args.since is None else moment(args.since, "--since")
    out = reports.prepare_out_dir(Path(args.out))
    url = db.reachable_url()

    def show(outcome: triage.Outcome) -> None:
        print(outcome.line(), flush=True)

    if args.follow:
        logging.getLogger(triage.__name__).setLevel(logging.INFO)  # listening, reconnects
        run = triage.follow(since, out, url, on_outcome=show)
        print(f"triage stopped: {run.summary()}")
        return 0
    run = triage.triage(since, out, url, on_outcome=show)
    print(f"triage: {run.summary()}")
    return 1 if run.failed else 0


def _slo_commands(commands) -> None:
    from obslib.slo import DEFAULT_MIN_EVENTS

    slop = commands.add_parser("slo", help="SLOs: evaluate, record, apply from YAML, export")
    sloc = slop.add_subparsers(title="slo commands", metavar="ACTION", required=True)

    def scope(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--service",
            action="append",
            default=[],
            metavar="NAME",
            help="only this service's SLOs (repeatable; default: all)",
        )
        p.add_argument("--at", metavar="TIME", help="evaluate at (default: end of the data)")
        p.add_argument(
            "--min-events",
            type=_non_negative,
            default=DEFAULT_MIN_EVENTS,
            metavar="N",
            help="no burn-rate alert on fewer events in the long window (default %(default)s)",
        )

    evaluate = sloc.add_parser("evaluate", help="evaluate every SLO over its window")
    scope(evaluate)
    evaluate.add_argument(
        "--record",
        action="store_true",
        help="store the measurements and open incidents for new violations",
    )
    evaluate.set_defaults(func=_slo_evaluate)

    apply = sloc.add_parser("apply", help="create or update SLO definitions from a YAML file")
    apply.add_argument("file", metavar="FILE", help="the SLO file (see README: SLOs as code)")
    apply.set_defaults(func=_slo_apply)

    listing = sloc.add_parser("list", help="print the SLO definitions")
    listing.set_defaults(func=_slo_list)

    prom = sloc.add_parser(
        "export-prom", help="write the evaluation in Prometheus' text format (atomically)"
    )
    scope(prom)
    prom.add_argument("--out", required=True, metavar="FILE", help="the .prom file to write")
    prom.set_defaults(func=_slo_export_prom)


def _slo_evaluate(args: argparse.Namespace) -> int:
    from obslib.jobs import slo_evaluation as evaluation

    url = db.reachable_url()
    result = evaluation.evaluate(
        args.at, services=args.service, min_events=args.min_events, url=url
    )
    print(_evaluation_table(result))
    if args.record:
        print(evaluation.record(result, url=url))
    return 0


def _evaluation_table(result) -> str:
    """The evaluation as a fixed-width table for a terminal."""
    from obslib.slo import window_label

    header = ("SLO", "window", "SLI", "target", "status", "budget left", "burn 1h", "alert")
    rows = [header]
    for d in result.slos.to_dict("records"):
        rows.append(
            (
                f"{d['service_name']}/{d['slo_name']}",
                window_label(d["window"]),
                _num(d["sli"], "{:.3f}"),
                f"{d['target_value']:g}",
                d["compliance_status"],
                _num(d["error_budget_remaining"], "{:.1f} %"),
                _num(d["recent_burn_rate"], "{:.2f}x"),
                d["firing"] or ("yes" if d["should_alert"] else ""),
            )
        )
    lines = [f"SLOs at {result.at:%Y-%m-%d %H:%M} UTC", *_columns(rows)]
    if len(rows) == 1:
        lines.append("(no enabled SLOs)")
    return "\n".join(lines)


def _columns(rows: list[tuple[str, ...]]) -> list[str]:
    """Rows of text as left-aligned columns two spaces apart (the first row: the header)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _num(value: float, fmt: str) -> str:
    import math

    return "" if value is None or math.isnan(value) else fmt.format(value)


def _slo_apply(args: argparse.Namespace) -> int:
    from obslib.ingest import slo_file

    frame = slo_file.read_slo_file(args.file)  # a bad file is refused before connecting
    print(slo_file.apply_slos(frame, url=db.reachable_url()))
    return 0


def _slo_list(args: argparse.Namespace) -> int:
    from obslib import load

    slos = load.slos(url=db.reachable_url())
    header = ("SLO", "type", "target", "window", "threshold", "alert at", "enabled")
    rows = [header]
    for d in slos.to_dict("records"):
        threshold = d["latency_threshold_ms"]
        rows.append(
            (
                f"{d['service_name']}/{d['slo_name']}",
                d["slo_type"],
                f"{d['target_value']:g}",
                f"{d['measurement_window_hours']}h",
                "" if threshold is None or threshold != threshold else f"{threshold:g} ms",
                f"{d['alert_threshold_percent']:g} %",
                "yes" if d["enabled"] else "no",
            )
        )
    print("\n".join(_columns(rows)))
    if len(rows) == 1:
        print("(no SLOs defined: obslib slo apply FILE.yaml)")
    return 0


def _slo_export_prom(args: argparse.Namespace) -> int:
    from pathlib import Path

    from obslib.jobs import slo_evaluation as evaluation

    out = evaluation.textfile_path(Path(args.out))  # refused before any work
    url = db.reachable_url()
    result = evaluation.evaluate(
        args.at, services=args.service, min_events=args.min_events, url=url
    )
    print(f"wrote {evaluation.write_prometheus(result, out)} ({len(result.slos)} SLOs)")
    return 0


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from obslib import reports

    raw = dict(args.param)
    if args.trace_id is not None:
        raw["trace_id"] = args.trace_id
    # bad input is refused before a kernel starts: parameters, the folder, the database
    params = reports.coerce_parameters(args.name, raw)
    out = reports.prepare_out_dir(Path(args.out))
    url = db.reachable_url()
    result = reports.run_report(args.name, params, out, database_url=url)
    print(f"notebook  {result.notebook}")
    print(f"report    {result.html}")
    return 0


def _lab(args: argparse.Namespace) -> int:
    import os

    from obslib import reports

    url = db.reachable_url()  # the kernel inherits it; the embedded server is up first
    env = {**os.environ, "OBSLIB_DATABASE_URL": url}
    kernel = reports.kernel_name()
    env["JUPYTER_PATH"] = os.environ["JUPYTER_PATH"]
    print(f"kernel {kernel} runs {sys.executable}; database {db.mask_url(url)}", flush=True)
    extra = list(args.extra)
    if os.geteuid() == 0 and "--allow-root" not in extra:
        # JupyterLab refuses to start as root without it; obslib's users run it in
        # containers and on root-only VMs, where root is the only user there is
        extra.append("--allow-root")
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--notebook-dir={reports.notebooks_dir()}",
        f"--MappingKernelManager.default_kernel_name={kernel}",
        *extra,
    ]
    sys.stdout.flush()
    os.execve(sys.executable, command, env)  # JupyterLab takes over this process and its signals
    return 0  # not reached


def _whole(minimum: int, words: str):
    """An argparse type: a whole number (``_`` allowed as in 10_000) of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text.replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {words}, not {value}")
        return value

    return parse


_positive = _whole(1, "at least 1")
_non_negative = _whole(0, "0 or more")


def _demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from obslib import demo, reports

    out = None if args.no_reports else reports.prepare_out_dir(Path(args.reports))
    migrator = _migrator()
    for m in migrator.up():
        print(f"applied {m.label}")
    with tqdm(total=demo.topo.DEMO_DAYS, unit="day", desc="writing demo", leave=False) as bar:
        summary = demo.run(
            seed=args.seed, spans=args.spans, url=migrator.url, progress=lambda *_: bar.update()
        )
    print(demo.format_summary(summary))
    if out is not None:
        for name in reports.NOTEBOOKS:
            result = reports.run_report(name, {}, out, database_url=migrator.url)
            print(f"report    {result.html}")
    return 0


def _migrator():
    from obslib.storage.migrate import Migrator

    return Migrator()


def _db_up(args: argparse.Namespace) -> int:
    migrator = _migrator()
    applied = migrator.up(to=args.to)
    for m in applied:
        print(f"applied {m.label}")
    if not applied:
        print("nothing to apply")
    _print_status(migrator)
    return 0


def _db_down(args: argparse.Namespace) -> int:
    migrator = _migrator()
    if args.all:
        target = 0
    elif args.to is not None:
        target = args.to
    else:
        current = migrator.status().state.version or 0
        earlier = [m.version for m in migrator.migrations if m.version < current]
        target = earlier[-1] if earlier else 0
    for m in migrator.down(to=target):
        print(f"reverted {m.label}")
    _print_status(migrator)
    return 0


def _db_status(args: argparse.Namespace) -> int:
    _print_status(_migrator())
    return 0


def _db_force(args: argparse.Namespace) -> int:
    migrator = _migrator()
    migrator.force(args.version)
    print(f"recorded version {args.version} as current and clean")
    _print_status(migrator)
    return 0


def _db_url(args: argparse.Namespace) -> int:
    print(db.mask_url(db.database_url()))
    return 0


def _db_stop(args: argparse.Namespace) -> int:
    cfg = settings()
    if cfg.database_url:
        print("OBSLIB_DATABASE_URL is set: obslib did not start that server and leaves it alone")
        return 0
    before = pgserver.stop(cfg)
    if before.running:
        print(f"stopped the embedded server (pid {before.pid}) in {before.pgdata}")
    else:
        print(f"the embedded server in {before.pgdata} is not running")
    return 0


def _db_grant_reader(args: argparse.Namespace) -> int:
    from sqlalchemy.engine import make_url

    from obslib.storage import roles

    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise UsageError("--password-stdin: standard input held no password")
    url = db.database_url()
    reader_url = roles.grant_reader(args.role, url=url, password=password)
    database = make_url(url).database
    print(f"role {args.role} can read every table of database {database} and write none")
    print(f"reader URL  {db.mask_url(reader_url)}")
    return 0


def _print_status(migrator) -> None:
    status = migrator.status()
    cfg = settings()
    where = "OBSLIB_DATABASE_URL"
    if not cfg.database_url:
        where = f"embedded, data in {cfg.pgdata}"
    print(f"database  {db.mask_url(migrator.url)}  ({where})")
    state = status.state
    version = "none" if state.version is None else str(state.version)
    print(f"version   {version}{' DIRTY' if state.dirty else ', clean'}")
    for row in status.rows:
        m = row.migration
        if row.applied:
            when = row.applied_at.strftime("%Y-%m-%d %H:%M:%S UTC") if row.applied_at else ""
            mark = "  CHANGED since applied" if row.changed else ""
            print(f"  [x] {m.label:<40} applied {when}{mark}")
        else:
            print(f"  [ ] {m.label:<40} pending")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "passes_extra", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    handler = logging.StreamHandler()
    handler.setFormatter(ScrubbingFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, handlers=[handler])
    try:
        return args.func(args)
    except ObslibError as err:
        if args.debug:
            print(scrub(traceback.format_exc()), file=sys.stderr, end="")
        print(f"obslib: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("obslib: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `obslib ... | head`: the reader left; say nothing more
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as err:
        if args.debug:
            print(scrub(traceback.format_exc()), file=sys.stderr, end="")
            return 1
        print(
            f"obslib: internal error: {type(err).__name__}: {scrub(str(err))}"
            " (rerun with --debug for details)",
            file=sys.stderr,
        )
        return 1


class ScrubbingFormatter(logging.Formatter):
    """Log lines (tracebacks included) without the database URL's userinfo: a driver's
    message may quote part of the URL, password and all."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))
