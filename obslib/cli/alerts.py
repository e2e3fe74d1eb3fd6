"""``obslib alerts replay``: the stored incidents replayed through an alertmanager.yml."""

from __future__ import annotations

import argparse


def add_commands(commands) -> None:
    group = commands.add_parser(
        "alerts", help="alerts: replay stored incidents through an alertmanager.yml"
    )
    actions = group.add_subparsers(title="alerts commands", metavar="ACTION", required=True)
    replay = actions.add_parser(
        "replay",
        help="notifications per receiver, incidents grouped or inhibited, how long each waited",
    )
    replay.add_argument(
        "--config", metavar="FILE", help="an alertmanager.yml (default: the one obslib ships)"
    )
    replay.add_argument("--since", metavar="TIME", help="incidents triggered from (UTC)")
    replay.add_argument("--until", metavar="TIME", help="replay up to (default: now)")
    replay.set_defaults(func=_replay)


def _replay(args: argparse.Namespace) -> int:
    from pathlib import Path

    from obslib import alerts, load
    from obslib.alerts import amconfig
    from obslib.cli._args import text_columns
    from obslib.errors import InputError
    from obslib.storage import db
    from obslib.values import moment
    from obslib.views.tables import span_text

    since = None if args.since is None else moment(args.since, "--since")
    until = None if args.until is None else moment(args.until, "--until")
    if args.config is None:
        config = amconfig.default_config()
    else:  # read and checked before connecting: a bad config is exit 2
        path = Path(args.config)
        try:
            if path.stat().st_size > amconfig.MAX_BYTES:
                raise InputError(f"{path}: larger than {amconfig.MAX_BYTES // 2**20} MB")
            raw = path.read_bytes()
        except OSError as err:
            raise InputError(f"{path}: cannot read the file: {err.strerror or err}") from None
        config = amconfig.parse_config(raw, str(path))
    found = load.incidents(since, until, url=db.reachable_url())
    replay = alerts.replay_notifications(found, until=until, config=config)
    summary = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in replay.summary.items())
    print(f"{len(found)} incidents replayed: {summary}")
    sent = replay.notifications
    if len(sent):
        per = sent.groupby("receiver").size() if "receiver" in sent.columns else None
        if per is not None:
            rows = [("receiver", "notifications")]
            rows += [(str(r), str(n)) for r, n in per.items()]
            print("\n".join(text_columns(rows)))
    fates = replay.fates
    if len(fates):
        rows = [("incident", "receiver", "fate", "first notified", "waited")]
        for f in fates.itertuples():
            at = getattr(f, "notified_at", None)
            waited = getattr(f, "waited", None)
            rows.append(
                (
                    str(f.incident_id),
                    str(getattr(f, "receiver", "")),
                    str(f.fate),
                    "" if at is None or at != at else f"{at:%Y-%m-%d %H:%M:%S}",
                    "" if waited is None or waited != waited else span_text(waited),
                )
            )
        print("\n".join(text_columns(rows)))
    return 0
