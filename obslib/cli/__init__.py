"""The ``obslib`` command: thin argument handling over the library; errors are one line.

The parser and ``main``; each command group registers itself from its own module (``db``,
``slo``, ``ingest`` for ingest, collect and export, ``reports`` for demo, report, triage and
lab).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Sequence

from obslib.cli import db, ingest, reports, slo
from obslib.config import version
from obslib.errors import ObslibError
from obslib.redact import scrub

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

    db.add_commands(commands)
    reports.add_demo(commands)
    slo.add_commands(commands)
    ingest.add_commands(commands)
    reports.add_commands(commands)
    return parser


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
