"""``obslib incidents list``: the stored incidents and the report triage drafted for each.

Statuses come from the schema's allow-list (argparse refuses any other, exit 2); the time
is parsed before connecting; the loader binds every value (obslib.load.incident_list).
"""

from __future__ import annotations

import argparse

from obslib import schema
from obslib.cli._args import refuse_bad_moment


def add_commands(commands) -> None:
    group = commands.add_parser("incidents", help="incidents: list them with their reports")
    actions = group.add_subparsers(title="incidents commands", metavar="ACTION", required=True)
    listing = actions.add_parser(
        "list",
        help="the stored incidents, oldest first: id, service, severity, status, triggered and"
        " resolved (UTC), and the report triage drafted",
    )
    listing.add_argument(
        "--since",
        metavar="TIME",
        help="only incidents triggered at or after TIME, e.g. 2026-11-14T14:00Z (default: all)",
    )
    listing.add_argument(
        "--status",
        action="append",
        choices=schema.INCIDENT_STATUSES,
        metavar="S",
        help=f"only incidents with this status (repeatable): {', '.join(schema.INCIDENT_STATUSES)}",
    )
    listing.add_argument(
        "--service",
        action="append",
        metavar="NAME",
        help="only incidents of this service's alerts (repeatable; default: all)",
    )
    listing.set_defaults(func=_list)


def _list(args: argparse.Namespace) -> int:
    if args.since is not None:
        refuse_bad_moment(args.since, "--since")  # a typo, before pandas is imported
    from obslib import load
    from obslib.storage import db
    from obslib.values import moment

    since = None if args.since is None else moment(args.since, "--since")  # before connecting
    frame = load.incident_list(
        since, statuses=args.status, services=args.service, url=db.reachable_url()
    )
    print("\n".join(incident_table(frame)))
    return 0


def incident_table(frame) -> list[str]:
    """The list as lines of fixed-width columns, times in UTC; a line saying why when empty."""
    from obslib.cli._args import text_columns

    header = ("incident", "service", "severity", "status", "triggered (UTC)", "resolved (UTC)")
    rows = [(*header, "report")]
    for d in frame.to_dict("records"):
        rows.append(
            (
                _shown(d["incident_id"]),
                _shown(d["service_name"]),
                _shown(d["severity"]),
                _shown(d["status"]),
                _time(d["triggered_at"]),
                _time(d["resolved_at"]),
                _report(d),
            )
        )
    lines = text_columns(rows)
    if len(rows) == 1:
        lines.append("(no incident matches)")
    return lines


def _report(row: dict) -> str:
    """The report's HTML when triage drafted it; a failed attempt names its notebook."""
    status, html, notebook = row["report_status"], row["report_html"], row["report_notebook"]
    if _blank(status):
        return ""
    if status == "done" and not _blank(html):
        return _shown(html)
    if status == "failed":
        return "failed" + ("" if _blank(notebook) else f": {_shown(notebook)}")
    return _shown(status)


def _time(value) -> str:
    """``YYYY-MM-DD HH:MM:SS`` (UTC), also past year 9999, where strftime gives up."""
    if _blank(value):
        return ""
    v = value
    return f"{v.year:04d}-{v.month:02d}-{v.day:02d} {v.hour:02d}:{v.minute:02d}:{v.second:02d}"


def _blank(value) -> bool:
    return value is None or value != value  # None, NaN or NaT


def _shown(value) -> str:
    """A stored text as a terminal shows it: itself when plainly printable, else its quoted
    literal with control characters escaped (a row's text cannot drive the terminal)."""
    if _blank(value):
        return ""
    from obslib.escape import terminal_text

    return terminal_text(value)
