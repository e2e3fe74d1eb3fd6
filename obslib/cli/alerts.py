"""``obslib alerts replay``: the stored incidents replayed through an alertmanager.yml;
``obslib alerts evaluate-logs``: the log rules on the stored logs."""

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
    replay.add_argument(
        "--compare",
        metavar="FILE",
        help="a second alertmanager.yml: pages saved, merged, delayed or dropped under it",
    )
    replay.add_argument("--since", metavar="TIME", help="incidents triggered from (UTC)")
    replay.add_argument("--until", metavar="TIME", help="replay up to (default: now)")
    replay.set_defaults(func=_replay)
    logs = actions.add_parser(
        "evaluate-logs",
        help="the log rules (alert_type 'log') on the stored logs: which fire, for which template",
    )
    logs.add_argument("--at", metavar="TIME", help="evaluate at (UTC; default: the data's end)")
    logs.add_argument(
        "--since",
        metavar="TIME",
        help="also replay the rules from this time to --at: every firing on that history",
    )
    logs.add_argument(
        "--record",
        action="store_true",
        help="open an incident per firing on at --at (never twice), auto-resolve ended ones",
    )
    logs.set_defaults(func=_evaluate_logs)


def _evaluate_logs(args: argparse.Namespace) -> int:
    from obslib.cli._args import text_columns
    from obslib.jobs import log_rules
    from obslib.storage import db
    from obslib.values import moment

    at = None if args.at is None else moment(args.at, "--at")
    since = None if args.since is None else moment(args.since, "--since")
    if at is not None and since is not None and since >= at:
        from obslib.errors import UsageError

        raise UsageError(f"--since {args.since!r} is not before --at {args.at!r}")
    url = db.reachable_url()
    evaluation = log_rules.evaluate(at, url=url)
    rules = evaluation.replayed.rules
    if not rules:
        print("No enabled log rule (alert_definitions of alert_type 'log').")
        return 0
    shown = evaluation.active
    what = f"firing at {evaluation.at:%Y-%m-%d %H:%M} UTC"
    if since is not None:
        shown = log_rules.replay(since, evaluation.at, url=url).firings
        what = f"fired from {since:%Y-%m-%d %H:%M} to {evaluation.at:%Y-%m-%d %H:%M} UTC"
    print(f"{len(rules)} log rules, {len(shown)} {what}")
    if len(shown):
        rows = [("alert", "service", "from", "to", "peak", "template", "sample")]
        for f in shown.to_dict("records"):
            rows.append(
                (
                    str(f["alert_name"]),
                    str(f["service_name"]),
                    _at(f["start"]),
                    "still firing" if f["end"] != f["end"] else _at(f["end"]),
                    str(f["peak"]),
                    _shown(f["template"]),
                    _shown(f["sample"]),
                )
            )
        print("\n".join(text_columns(rows)))
    if args.record:
        done = log_rules.record(evaluation, url=url)
        print(f"Recorded at {evaluation.at:%Y-%m-%d %H:%M} UTC: {done}.")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from obslib import alerts, load
    from obslib.cli._args import text_columns
    from obslib.storage import db
    from obslib.values import duration_text, moment

    since = None if args.since is None else moment(args.since, "--since")
    until = None if args.until is None else moment(args.until, "--until")
    config = _read_config(args.config)
    other = None if args.compare is None else _read_config(args.compare)
    url = db.reachable_url()
    found = load.incidents(since, until, url=url)
    replay = alerts.replay_notifications(found, until=until, config=config)
    if other is not None:
        verdicts = _verdicts(found, since, until, url)
        return _print_comparison(found, replay, other, verdicts, until, args)
    summary = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in replay.summary.items())
    print(f"{len(found)} incidents replayed: {summary}")
    sent = replay.notifications
    if len(sent) and "receiver" in sent.columns:
        rows = [("receiver", "notifications")]
        rows += [(str(r), str(n)) for r, n in sent.groupby("receiver").size().items()]
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
                    _at(at),
                    "" if waited is None or waited != waited else duration_text(waited),
                )
            )
        print("\n".join(text_columns(rows)))
    return 0


def _shown(text: object) -> str:
    """Log text on one terminal line (``escape.terminal_text``): a line holding a control
    character (an escape sequence, a line break) or a bidi control is shown quoted, escaped,
    never acted on."""
    from obslib.escape import terminal_text

    return terminal_text(text)


def _read_config(name: str | None):
    """The alertmanager.yml at ``name`` (None: the one obslib ships), read and checked
    before connecting: a bad config is exit 2."""
    from obslib.alerts import amconfig

    return amconfig.default_config() if name is None else amconfig.read_config(name)


def _verdicts(found, since, until, url: str):
    """The one false-positive rule's verdicts on the incidents paged in ``[since, until)``
    (``alerts.judge``: the health report's path for that window). The window opens
    at ``since`` (default: the first incident's minute) and closes at ``until`` (default:
    the end of the data, ``load.data_end``). None when nothing can be judged (no incident
    or no enabled SLO): every incident is then ``unknown``, and counts as real."""
    from obslib import load, slo
    from obslib.alerts import judge
    from obslib.alerts.compare import judge_reads

    slos = load.enabled_slos(url=url)
    if found.empty or slos.empty:
        return None
    stop = until if until is not None else load.data_end(url=url)
    start = since if since is not None else found["triggered_at"].min().floor(slo.STEP)
    checked = slo.objectives(slos)
    lo, hi = judge_reads(start, stop, found, checked)
    counts = load.slo_counts(slos, lo, hi, bucket=slo.STEP, url=url)
    return judge(found, checked, counts, start, hi)[1]


def _print_comparison(found, replay, other, verdicts, until, args: argparse.Namespace) -> int:
    """``--compare``: the difference config b makes (``alerts.compare.compare_replays``),
    counting as real every incident the one false-positive rule does not call a false
    positive (``unknown`` counts as real); the summary line says how many were judged
    each way."""
    from obslib import alerts
    from obslib.alerts.compare import compare_replays
    from obslib.cli._args import text_columns
    from obslib.values import duration_text

    theirs = alerts.replay_notifications(found, until=until, config=other)
    got = compare_replays(replay, theirs, found, verdicts)
    s = got.summary
    a_name, b_name = args.config or "the shipped config", args.compare
    print(
        f"{len(found)} incidents replayed: {s['pages_a']} pages under {a_name}, "
        f"{s['pages_b']} under {b_name} ({s['pages_saved']} saved), "
        f"merged into another's page: {s['merged']}; "
        f"{s['delayed']} delayed (longest {duration_text(s['longest_delay']) or '0 s'}), "
        f"{s['dropped']} dropped, of the real incidents (judged real {s['judged_real']}, "
        f"false positive {s['false_positive']}, unknown {s['unknown']}: unknown counts as real)"
    )
    changed = got.incidents[~got.incidents["change"].isin(("same", "never notified"))]
    if len(changed):
        rows = [
            ("incident", "alert", "verdict", "change", "by", "first notified (a)",
             "first notified (b)")
        ]  # fmt: skip
        for x in changed.itertuples():
            rows.append(
                (
                    str(x.incident_id),
                    str(x.alert_name),
                    str(x.verdict).replace("_", " "),
                    str(x.change),
                    duration_text(x.by),
                    _at(x.notified_a),
                    _at(x.notified_b),
                )
            )
        print("\n".join(text_columns(rows)))
    return 0


def _at(moment) -> str:
    return "" if moment is None or moment != moment else f"{moment:%Y-%m-%d %H:%M:%S}"
