"""``obslib db retain``: old days of spans and logs to a verified Parquet archive, then out
of PostgreSQL (``obslib.jobs.retain``). The job's modules load after the arguments pass."""

from __future__ import annotations

import argparse
import sys

from obslib.cli._args import refuse_bad_duration

_DESCRIPTION = """\
Retire every whole UTC day of spans (and logs) that ended before NOW minus --keep (the
clock, not the latest stored span, so a daily cron run keeps the database bounded). Per
day and table: export it to the archive (the Parquet layout of `obslib export parquet`),
read the file back and compare its row count and key checksum with PostgreSQL, record it
in the archived_days catalog, then detach and drop its partition. A day that does not
verify is never dropped (exit 1, named). A rerun does nothing more; a run killed at any
step is finished by the next one. The loaders (and so every report) read dropped days
from the archive ($OBSLIB_ARCHIVE, else the folder recorded here).

Then every finished UTC day it keeps (ended before now) whose indexes are not packed yet
has them rebuilt with REINDEX TABLE CONCURRENTLY (readers and writers go on), recorded in
packed_days; a day is packed again only once its indexes grew by more than a quarter. A
day whose REINDEX fails is named and left as it was (exit code unchanged). --no-pack skips
this.

exit codes: 0 done, 1 a day was not verified (named), 2 bad input"""


def add_command(dbc) -> None:
    """Register ``retain`` among the ``obslib db`` actions."""
    retain = dbc.add_parser(
        "retain",
        help="archive days past --keep to verified Parquet, then drop them from PostgreSQL",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    retain.add_argument(
        "--keep", required=True, metavar="DURATION", help="keep spans this long (e.g. 30d)"
    )
    retain.add_argument(
        "--logs-keep", metavar="DURATION", help="keep logs this long (default: --keep)"
    )
    where = retain.add_mutually_exclusive_group(required=True)
    where.add_argument("--archive", metavar="DIR", help="the archive folder (created if missing)")
    where.add_argument(
        "--no-archive",
        action="store_true",
        help="delete the days without any copy (said out loud; nothing to read them back)",
    )
    retain.add_argument(
        "--no-pack",
        action="store_true",
        help="do not rebuild the indexes of the finished days kept (see above)",
    )
    retain.add_argument(
        "--dry-run", action="store_true", help="print what would be done, change nothing"
    )
    retain.set_defaults(func=_db_retain)


def _db_retain(args: argparse.Namespace) -> int:
    refuse_bad_duration(args.keep, "--keep")  # a typo, before pandas is imported
    if args.logs_keep is not None:
        refuse_bad_duration(args.logs_keep, "--logs-keep")
    from datetime import UTC, datetime

    from obslib.jobs import pack, retain
    from obslib.storage import db
    from obslib.values import positive_duration

    keep = positive_duration(args.keep, "--keep").to_pytimedelta()
    logs_keep = None
    if args.logs_keep is not None:
        logs_keep = positive_duration(args.logs_keep, "--logs-keep").to_pytimedelta()
    now = datetime.now(UTC)
    horizon = retain.horizon(keep, logs_keep, now)
    url = db.reachable_url()
    if not args.no_pack:
        pack.check_schema(url)  # before anything is retired
    if args.no_archive:
        print("--no-archive: days past the horizon are DELETED, with no copy anywhere")
    print(
        f"keeping spans from {horizon.spans}, logs from {horizon.logs} (UTC days)"
        + (" [dry run: nothing changes]" if args.dry_run else "")
    )

    def show(r: retain.DayResult) -> None:
        print(_line(r), flush=True)

    results = retain.retain(
        horizon, None if args.no_archive else args.archive, dry_run=args.dry_run, url=url,
        on_day=show,
    )  # fmt: skip
    from obslib.values import plural

    failed = [r for r in results if r.problem]
    done = [r for r in results if not r.problem]
    freed = sum(r.bytes_freed or 0 for r in done)
    if not results:
        print("nothing to retain: no day before the horizon is left in PostgreSQL")
    elif args.dry_run:
        print(f"dry run: {plural(len(done), 'day')} would go, about {_size(freed)} of PostgreSQL")
    else:
        print(f"retained {plural(len(done), 'day')}: {_size(freed)} freed in PostgreSQL")
        archived = [r for r in done if r.action == "archived" and r.table == "spans" and r.rows]
        if archived:
            rows = sum(r.rows or 0 for r in archived)
            size = sum(r.file_bytes or 0 for r in archived)
            print(f"archive: {size / rows:.1f} bytes/span over {plural(rows, 'span')} archived now")
    if not args.no_pack:
        _pack(pack, horizon, now, args.dry_run, url)
    for r in failed:
        print(f"not dropped: {r.problem}", file=sys.stderr)
    if failed:
        days = ", ".join(f"{r.table} {r.day}" for r in failed)
        kept = plural(len(failed), "day")
        print(f"obslib: error: {kept} not verified, kept: {days}", file=sys.stderr)
        return 1
    return 0


def _pack(pack, horizon, now, dry_run: bool, url: str) -> None:
    """Pack the finished days kept; one line each, then the total. A day not packed is
    warned about on stderr and changes no exit code: its rows are whole, the next run
    packs it."""
    from obslib.values import plural

    def show(r) -> None:
        if r.problem:
            print(f"{r.table} {r.day}  NOT PACKED", flush=True)
            print(f"obslib: warning: not packed: {r.problem}", file=sys.stderr, flush=True)
            return
        planned = r.bytes_after is None  # a dry run's line: what it would do
        left = plural(r.leftovers, "invalid index", "invalid indexes")
        cleaned = f"; {left} of a cut REINDEX {'to drop' if planned else 'dropped'}"
        cleaned = cleaned if r.leftovers else ""
        sizes = f"{_size(r.bytes_before)}" + ("" if planned else f" -> {_size(r.bytes_after)}")
        shown = f" (indexes {sizes}{cleaned})" if planned else f": indexes {sizes}{cleaned}"
        print(f"{r.table} {r.day}  {r.action}{shown}", flush=True)

    results = pack.pack(horizon, now=now, dry_run=dry_run, url=url, on_day=show)
    done = [r for r in results if not r.problem]
    held = sum(r.bytes_before for r in done)
    if not results:
        print("nothing to pack: every finished day kept is packed")
    elif dry_run:
        print(f"dry run: {plural(len(done), 'day')} would be packed, indexes {_size(held)} now")
    else:
        freed = held - sum(r.bytes_after or 0 for r in done)
        change = (
            f"{_size(freed)} of indexes freed" if freed >= 0 else f"indexes {_size(-freed)} larger"
        )
        print(f"packed {plural(len(done), 'day')}: {change}")


def _line(r) -> str:
    if r.problem:
        return f"{r.table} {r.day}  NOT DROPPED"
    rows = "" if r.rows is None else f" {r.rows} rows,"
    if r.action == "archived":
        return (
            f"{r.table} {r.day}  archived{rows} verified -> {r.file or '(no rows, no file)'}"
            f" ({_size(r.file_bytes or 0)}); dropped, {_size(r.bytes_freed or 0)} freed"
        )
    freed = _size(r.bytes_freed or 0)
    if r.action == "dropped":
        return f"{r.table} {r.day}  dropped (archived earlier),{rows} {freed} freed"
    if r.action == "deleted":
        return f"{r.table} {r.day}  DELETED without archive,{rows} {freed} freed"
    return f"{r.table} {r.day}  {r.action} ({_size(r.bytes_freed or 0)} in PostgreSQL)"


def _size(n: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
