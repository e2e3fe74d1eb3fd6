"""The ``obslib`` command: thin argument handling over the library; errors are one line.

The parser and ``main``; each command group registers itself from its own module (``db``,
``slo``, ``ingest`` for ingest, collect and export, ``incidents``, ``reports`` for demo,
report, triage and lab). ``obslib --help`` ends with every command's usage and help, read
from those parsers.
Command modules import what a command needs when it runs, not to build the parser, so
help and argument errors answer before anything heavy is imported.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import textwrap
import traceback
from collections.abc import Iterator, Sequence

from obslib.cli import alerts, db, incidents, ingest, reports, slo
from obslib.config import version
from obslib.errors import ObslibError
from obslib.redact import scrub

logger = logging.getLogger(__name__)


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


_DATABASE = """\
The database is $OBSLIB_DATABASE_URL (postgresql://user:password@host:port/db). When
that is unset, obslib starts an embedded PostgreSQL with its data under $OBSLIB_HOME
(default: the user data folder) and leaves it running for the next command.
"""
_WIDTH = 88  # of the overview's lines
_HELP_AT = 33  # the column where a command's help starts


class _MainParser(_Parser):
    """The ``obslib`` parser, whose ``--help`` ends with every command, read from the
    command parsers themselves: their usage and their one-line help."""

    def format_help(self) -> str:
        self.epilog = f"all commands:\n{_overview(self)}\n{_DATABASE}"
        return super().format_help()


def build_parser() -> argparse.ArgumentParser:
    parser = _MainParser(
        prog="obslib",
        description="Investigate DomainFlow traces, logs, SLOs and alerts kept in PostgreSQL.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"obslib {version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    commands = parser.add_subparsers(
        title="commands", metavar="COMMAND", required=True, parser_class=_Parser
    )

    db.add_commands(commands)
    reports.add_demo(commands)
    slo.add_commands(commands)
    ingest.add_commands(commands)
    incidents.add_commands(commands)
    alerts.add_commands(commands)
    reports.add_commands(commands)
    return parser


def _each_command(
    parser: argparse.ArgumentParser,
) -> Iterator[tuple[argparse.ArgumentParser, str]]:
    """Every command ``parser`` dispatches (``obslib db up``, ``obslib demo`` ...) with its
    one-line help, in the order ``--help`` lists them."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help for choice in action._choices_actions}
        for name, sub in action.choices.items():
            nested = list(_each_command(sub))
            yield from nested or [(sub, helps.get(name) or "")]


def _overview(parser: argparse.ArgumentParser) -> str:
    """One entry per command: its usage (without ``[-h]``), its help from column
    ``_HELP_AT``, on the usage's line when that leaves room, else below it."""
    lines = []
    for sub, text in _each_command(parser):
        usage = _usage(sub)
        helps = textwrap.wrap(text, _WIDTH - _HELP_AT) or [""]
        if len(usage[-1]) + 2 < _HELP_AT - 2:
            usage[-1] = f"{usage[-1]:<{_HELP_AT - 2}}{helps.pop(0)}"
        lines += usage + [" " * (_HELP_AT - 2) + line for line in helps]
    return "".join(f"  {line}".rstrip() + "\n" for line in lines)


def _usage(parser: argparse.ArgumentParser) -> list[str]:
    """``parser``'s usage without its ``[-h]``, wrapped as argparse wraps it."""
    formatter = argparse.HelpFormatter(parser.prog, width=_WIDTH - 2)
    shown = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    formatter.add_usage(parser.usage, shown, parser._mutually_exclusive_groups, prefix="")
    text = formatter.format_help().replace(" [-h]", "")
    return [line for line in text.splitlines() if line.strip()]


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
