"""``obslib slo``: evaluate (and record), apply from YAML (obslib's or OpenSLO), list, export
(OpenSLO documents; Prometheus' textfile gauges)."""

from __future__ import annotations

import argparse

from obslib.cli._args import non_negative, text_columns

# budgets.DEFAULT_MIN_EVENTS, named in --help without importing obslib.slo (pandas): a test
# keeps the two equal. Commands resolve --min-events None to the constant itself.
MIN_EVENTS_SHOWN = 10

# `slo export --format prometheus-rules`: option, MetricNames field, default (the convention
# of obslib.slo.prometheus, which a test keeps equal), metavar, what it names.
METRIC_OPTIONS = (
    ("--requests-metric", "requests", "service_requests_total", "NAME", "the request counter"),
    ("--service-label", "service_label", "service", "NAME", "the label naming the service"),
    ("--status-label", "status_label", "status", "NAME", "the request counter's status label"),
    (
        "--error-status",
        "error_status",
        "5..",
        "REGEX",
        "the error statuses, a regular expression (RE2, anchored), e.g. '5..|429'",
    ),
    (
        "--latency-histogram",
        "duration",
        "service_request_duration_seconds",
        "NAME",
        "the latency histogram (its _bucket and _count series)",
    ),
    (
        "--selector",
        "selector",
        "",
        "MATCHERS",
        'extra label matchers for every series, e.g. \'job="api",handler!="/metrics"\'',
    ),
)


def add_commands(commands) -> None:
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
            type=non_negative,
            metavar="N",
            help="no burn-rate alert on fewer events in the long window"
            f" (default {MIN_EVENTS_SHOWN})",
        )

    evaluate = sloc.add_parser(
        "evaluate", help="every SLO over its window: SLI, budget, burn, alerts (--record stores it)"
    )
    scope(evaluate)
    evaluate.add_argument(
        "--record",
        action="store_true",
        help="store the measurements and open incidents for new violations",
    )
    evaluate.set_defaults(func=_slo_evaluate)

    apply = sloc.add_parser(
        "apply", help="create or update SLO definitions from YAML files (obslib's or OpenSLO v1)"
    )
    apply.add_argument(
        "file",
        nargs="+",
        metavar="FILE.yaml",
        help="SLO files, applied together or not at all (see README: SLOs as code)",
    )
    apply.set_defaults(func=_slo_apply)

    export = sloc.add_parser(
        "export",
        help="write every stored SLO as OpenSLO v1 documents (with the alert rules) or its"
        " burn-rate rules as a Prometheus rule file",
    )
    export.add_argument(
        "--format",
        required=True,
        choices=("openslo", "prometheus-rules"),
        help="the format to write: OpenSLO v1 documents, or a Prometheus rule file",
    )
    export.add_argument(
        "--out", metavar="FILE", help="the file to write (default: standard output)"
    )
    rules = export.add_argument_group(
        "prometheus-rules options", "which SLOs, the guard, and the names of your metrics"
    )
    rules.add_argument(
        "--service",
        action="append",
        metavar="NAME",
        help="only this service's SLOs (repeatable; default: every enabled SLO)",
    )
    rules.add_argument(
        "--min-events",
        type=non_negative,
        metavar="N",
        help="the minimum-traffic guard: no alert on fewer events in the long window; a"
        " quiet short window read over doubled windows until one holds them"
        f" (default {MIN_EVENTS_SHOWN}, the replay's)",
    )
    for option, field, default, metavar, what in METRIC_OPTIONS:
        shown = f"default {default}" if default else "default: none"
        rules.add_argument(option, dest=field, metavar=metavar, help=f"{what} ({shown})")
    export.set_defaults(func=_slo_export)

    listing = sloc.add_parser("list", help="print the SLO definitions")
    listing.set_defaults(func=_slo_list)

    prom = sloc.add_parser(
        "export-prom",
        help="write the evaluation in Prometheus' text format for node_exporter's textfile"
        " collector (atomically)",
    )
    scope(prom)
    prom.add_argument("--out", required=True, metavar="FILE", help="the .prom file to write")
    prom.add_argument(
        "--latency-window",
        default="1h",
        metavar="DURATION",
        help="domainflow_trace_latency_seconds counts the traces of this window before --at"
        " (default %(default)s)",
    )
    prom.set_defaults(func=_slo_export_prom)


def _min_events(args: argparse.Namespace) -> int:
    """--min-events, or the replay's guard (budgets.DEFAULT_MIN_EVENTS) when not given."""
    from obslib.slo import DEFAULT_MIN_EVENTS

    return DEFAULT_MIN_EVENTS if args.min_events is None else args.min_events


def _slo_evaluate(args: argparse.Namespace) -> int:
    from obslib.jobs import slo_evaluation as evaluation
    from obslib.storage import db

    url = db.reachable_url()
    result = evaluation.evaluate(
        args.at, services=args.service, min_events=_min_events(args), url=url
    )
    print(_evaluation_table(result))
    if args.record:
        print(evaluation.record(result, url=url))
    return 0


def _evaluation_table(result) -> str:
    """The evaluation as a fixed-width table for a terminal."""
    from obslib.slo import slo_label, window_label

    header = ("SLO", "window", "SLI", "target", "status", "budget left", "burn 1h", "alert")
    rows = [header]
    for d in result.slos.to_dict("records"):
        rows.append(
            (
                slo_label(d),
                window_label(d["window"]),
                _num(d["sli"], "{:.3f}"),
                f"{d['target_value']:g}",
                d["compliance_status"],
                _num(d["error_budget_remaining"], "{:.1f} %"),
                _num(d["recent_burn_rate"], "{:.2f}x"),
                d["firing"] or ("yes" if d["should_alert"] else ""),
            )
        )
    lines = [f"SLOs at {result.at:%Y-%m-%d %H:%M} UTC", *text_columns(rows)]
    if len(rows) == 1:
        lines.append("(no enabled SLOs)")
    return "\n".join(lines)


def _num(value: float, fmt: str) -> str:
    import math

    return "" if value is None or math.isnan(value) else fmt.format(value)


def _slo_apply(args: argparse.Namespace) -> int:
    from obslib.ingest import openslo, slo_file
    from obslib.storage import db

    frame = openslo.read_slo_files(args.file)  # a bad file is refused before connecting
    print(slo_file.apply_slos(frame, url=db.reachable_url()))
    return 0


def _slo_export(args: argparse.Namespace) -> int:
    import sys

    from obslib import load
    from obslib.slo import openslo
    from obslib.storage import db, files

    out = None if args.out is None else files.target_file(args.out)  # refused before connecting
    if args.format == "prometheus-rules":  # the enabled SLOs' burn-rate rules, for Prometheus
        from obslib.jobs import prometheus_rules

        metrics = _metric_names(args)  # refused before connecting too
        said = prometheus_rules.export_rules(
            out,
            services=args.service,
            metrics=metrics,
            min_events=_min_events(args),
            url=db.reachable_url(),
        )
        sys.stdout.write(said)
        return 0
    given = [o for o, f, *_ in METRIC_OPTIONS if getattr(args, f) is not None]
    given += ["--service"] if args.service else []
    given += ["--min-events"] if args.min_events is not None else []
    if given:  # options of the rule file, meaningless for OpenSLO documents
        from obslib.errors import UsageError

        raise UsageError(f"{', '.join(given)}: only with --format prometheus-rules")
    slos = load.slos(url=db.reachable_url())
    text = openslo.dump(openslo.openslo_documents(slos))
    if out is None:
        sys.stdout.write(text)
        return 0
    files.write_atomically(out, text)  # a reader never sees half a file
    print(f"wrote {out} ({len(slos)} SLOs)")
    return 0


def _metric_names(args: argparse.Namespace):
    """The metric names of the options given (the convention's for the others), each checked
    (``slo.prometheus.check_metric_names``), a bad one named by its option."""
    from obslib.slo.prometheus import MetricNames, check_metric_names

    given = {f: getattr(args, f) for _, f, *_ in METRIC_OPTIONS if getattr(args, f) is not None}
    where = {f: o for o, f, *_ in METRIC_OPTIONS}
    return check_metric_names(MetricNames(**given), where)


def _slo_list(args: argparse.Namespace) -> int:
    import pandas as pd

    from obslib import load
    from obslib.slo import slo_label
    from obslib.storage import db
    from obslib.values import window_text

    slos = load.slos(url=db.reachable_url())
    header = ("SLO", "type", "target", "window", "threshold", "alert at", "enabled")
    rows = [header]
    for d in slos.to_dict("records"):
        threshold = d["latency_threshold_ms"]
        rows.append(
            (
                slo_label(d),
                d["slo_type"],
                f"{d['target_value']:g}",
                window_text(pd.Timedelta(hours=d["measurement_window_hours"])),
                "" if threshold is None or threshold != threshold else f"{threshold:g} ms",
                f"{d['alert_threshold_percent']:g} %",
                "yes" if d["enabled"] else "no",
            )
        )
    print("\n".join(text_columns(rows)))
    if len(rows) == 1:
        print("(no SLOs defined: obslib slo apply FILE.yaml)")
    return 0


def _slo_export_prom(args: argparse.Namespace) -> int:
    from pathlib import Path

    from obslib.jobs import slo_evaluation as evaluation
    from obslib.storage import db
    from obslib.values import positive_duration

    out = evaluation.textfile_path(Path(args.out))  # refused before any work
    window = positive_duration(args.latency_window, "--latency-window")
    url = db.reachable_url()
    result = evaluation.evaluate(
        args.at, services=args.service, min_events=_min_events(args), url=url
    )
    latency = evaluation.trace_latency(result.at, window, services=args.service, url=url)
    written = evaluation.write_prometheus(result, out, latency=latency)
    print(f"wrote {written} ({len(result.slos)} SLOs, {len(latency.traces)} traces)")
    return 0
