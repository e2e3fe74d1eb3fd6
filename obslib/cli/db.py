"""``obslib db``: migrations, status, the embedded server, a reader role.

The storage modules (psycopg, SQLAlchemy: ~0.2 s) are imported by the commands that use
them, not when the parser is built: ``obslib --help`` needs none of them.
"""

from __future__ import annotations

import argparse
import sys

from obslib.cli import retain
from obslib.config import settings
from obslib.errors import UsageError


def add_commands(commands) -> None:
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

    retain.add_command(dbc)


def open_migrator():
    """The migration runner for the configured database."""

    from obslib.storage.migrate import Migrator

    return Migrator()


def _db_up(args: argparse.Namespace) -> int:
    migrator = open_migrator()
    applied = migrator.up(to=args.to)
    for m in applied:
        print(f"applied {m.label}")
    if not applied:
        print("nothing to apply")
    _ensure_today(migrator.url)
    _print_status(migrator)
    return 0


def _ensure_today(url: str) -> None:
    """Today's and tomorrow's (UTC) day partitions of spans and logs, made ahead of the
    writers (which make their own days too) once the tables are partitioned."""
    import datetime as dt

    from obslib.storage import db, partitions

    today = dt.datetime.now(dt.UTC).date()
    with db.connection(url, autocommit=True) as conn:
        for table in partitions.TABLES:
            if partitions.is_partitioned(conn, table):
                partitions.ensure_days(conn, table, [today, today + dt.timedelta(days=1)])


def _db_down(args: argparse.Namespace) -> int:
    migrator = open_migrator()
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
    _print_status(open_migrator())
    return 0


def _db_force(args: argparse.Namespace) -> int:
    migrator = open_migrator()
    migrator.force(args.version)
    print(f"recorded version {args.version} as current and clean")
    _print_status(migrator)
    return 0


def _db_url(args: argparse.Namespace) -> int:
    from obslib.storage import db

    print(db.mask_url(db.database_url()))
    return 0


def _db_stop(args: argparse.Namespace) -> int:
    from obslib.storage import pgserver

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

    from obslib.storage import db, roles

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
    from obslib.storage import db

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
