"""The SLOs' burn-rate rules as a Prometheus rule file (as Sloth and Pyrra generate them).

One rule group per SLO with applicable rules (``rules.alert_rules``): recording rules for
the error ratio and the event count over every window its rules use, then one alerting rule
per burn-rate rule. Recordings come first in the same group: Prometheus evaluates a group's
rules in order, so each alert reads the ratios of the same evaluation.

The metrics, by convention (``MetricNames``; every name can be changed): the request
counter ``service_requests_total{service, status}`` (``status`` the HTTP code; an error is
a ``5..`` status) and the latency histogram ``service_request_duration_seconds`` (``_bucket``
with ``le``, ``_count``), the names ``obslib collect`` serves for itself. A latency SLO's
good events are the histogram's bucket at its threshold (``le`` written as
``prometheus_client`` writes it: 300 ms is ``0.3``, 1 s is ``1.0``), so the threshold must be
one of the histogram's bucket bounds.

The breach is obslib's (``replay.replay``), the same on both sides: both windows burn over
the rule's factor, i.e. the error ratio exceeds factor x (1 - target), with the
minimum-traffic guard: at least ``min_events`` events in the long window, and the short
window read over the first rung of ``status.guard_ladder`` (short, 2 x short, 4 x short, …,
then long) that holds ``min_events`` events. In PromQL that is an ``or`` of rungs, each
rung's events at least ``min_events`` and its ratio over the threshold, ``unless`` an
earlier rung's events reach ``min_events``, over recording rules for every rung's window (15
windows for a 30-day SLO instead of 8). The replay once stretched the short window back to
exactly the last ``min_events`` events, which PromQL cannot say short of one window per
minute up to the long window; these rules then required ``min_events`` in the short window
itself, and on the demo's incident day (domain-service, about one request a minute) the
replay paged where they only ticketed for two minutes. The ladder is one rule that both
sides compute: ``tests/slo/test_prometheus_demo.py`` checks that day minute by minute at
the default guard, ``tests/slo/test_prometheus.py`` a busy and a quiet hand-built series.
A window of one or two scrape intervals (a 24-hour SLO's 1-minute window) holds too few
samples for ``rate`` once scrapes jitter: scrape such services more often than its windows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from obslib.errors import UsageError
from obslib.slo import budgets
from obslib.slo import rules as slo_rules
from obslib.slo import status as slo_status

ALERT_NAME = "SLOErrorBudgetBurn"  # one name, as Pyrra's ErrorBudgetBurn: labels tell rules apart
ERROR_RATIO = "slo:sli_error:ratio_rate"  # + window: the share of bad events (Sloth's name)
EVENTS = "slo:sli_events:increase"  # + window: the events the guard counts


@dataclass(frozen=True)
class MetricNames:
    """Which series the rules read: names and labels, by default those ``obslib collect``
    serves (``service_requests_total{service,…,status}``, the
    ``service_request_duration_seconds`` histogram). ``selector``: extra label matchers
    for every series (e.g. ``'endpoint!="/metrics"'``), empty for none."""

    requests: str = "service_requests_total"
    duration: str = "service_request_duration_seconds"
    service_label: str = "service"
    status_label: str = "status"
    error_status: str = "5.."  # a regular expression over the status label
    selector: str = ""


# Prometheus' data model (https://prometheus.io/docs/concepts/data_model/): metric and label
# names; a label name starting with ``__`` is reserved for Prometheus' own use.
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# A PromQL selector's label matchers, comma-separated: name, operator, a double-quoted string
# with Go's escapes (https://prometheus.io/docs/prometheus/latest/querying/basics/).
_ESCAPE = r"""\\(?:[abfnrtv\\"]|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3})"""
_ONE = rf"""\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(?:=~|!~|!=|=)\s*"(?:[^"\\\n]|{_ESCAPE})*"\s*"""
_MATCHERS = re.compile(rf"{_ONE}(?:,{_ONE})*,?\s*")
# What Python's re accepts and RE2 (Prometheus' regular expressions) does not.
_NOT_RE2 = re.compile(r"\(\?(?:<?[=!]|>)|\\[1-9]")


def check_metric_names(names: MetricNames, where: Mapping[str, str] | None = None) -> MetricNames:
    """``names`` when every value can stand in a PromQL selector, else a ``UsageError`` naming
    the first bad one (as ``where`` names its field, e.g. a command-line option; default the
    field's name) and why: metric names and label names as Prometheus' data model defines
    them (a label name not reserved, ``__…``, nor the histogram's ``le``; the service and
    status labels distinct), the error status a regular expression RE2 accepts (no
    look-around, no back-reference; Prometheus anchors it at both ends), the selector
    comma-separated label matchers (``name="v"``, ``!=``, ``=~``, ``!~``). The status goes
    into the rules quoted, names and the selector only once they match these forms: a rule
    file never holds an expression the user wrote."""
    where = where or {}

    def bad(field: str, value: str, why: str) -> UsageError:
        return UsageError(f"{where.get(field, field)}: {value!r} {why}")

    for field in ("requests", "duration"):
        value = getattr(names, field)
        if not _METRIC_NAME.fullmatch(value):
            raise bad(field, value, "is not a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)")
    for field in ("service_label", "status_label"):
        value = getattr(names, field)
        if not _LABEL_NAME.fullmatch(value):
            raise bad(field, value, "is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)")
        if value.startswith("__") or value == "le":
            raise bad(field, value, "is reserved (__… for Prometheus, le for histogram buckets)")
    if names.status_label == names.service_label:
        raise bad("status_label", names.status_label, "is also the service label")
    status = names.error_status
    try:
        re.compile(status)
    except re.error as err:
        raise bad("error_status", status, f"is not a regular expression ({err})") from None
    if not status or _NOT_RE2.search(status):
        raise bad("error_status", status, "is empty or uses look-around or back-references")
    if names.selector.strip() and not _MATCHERS.fullmatch(names.selector):
        raise bad("selector", names.selector, 'is not label matchers (name="value", !=, =~, !~)')
    return names


def prometheus_rules(
    slos: pd.DataFrame | slo_rules.Objectives,
    *,
    metrics: MetricNames | None = None,
    min_events: int = budgets.DEFAULT_MIN_EVENTS,
) -> str:
    """The rule file (YAML text) for every SLO of ``slos`` with applicable rules. An SLO
    without any (a throughput SLO, or one whose windows round below a minute) is named in
    a comment at the top, so a reader sees why it has no group."""
    names = check_metric_names(metrics or MetricNames())
    checked = slo_rules.objectives(slos)
    groups, skipped = [], []
    for d in checked.definitions:
        mine = checked.applicable(d)
        if mine.empty:
            skipped.append(budgets.slo_label(d))
            continue
        groups.append(_group(d, mine, names, int(min_events)))
    header = [
        "# Generated by obslib (obslib slo export --format prometheus-rules): the multiwindow",
        "# burn-rate rules of each SLO; do not edit, regenerate.",
    ]
    header += [f"# {label}: no burn-rate rule applies, no rules" for label in skipped]
    body = _dump({"groups": groups})
    return "\n".join(header) + "\n" + body


def _group(d: dict, rules: pd.DataFrame, names: MetricNames, min_events: int) -> dict:
    service, slo = str(d["service_name"]), str(d["slo_name"])
    ids = {"service": service, "slo": slo}
    ladders = {
        i: slo_status.guard_ladder(r["short_window"], r["long_window"]) for i, r in rules.iterrows()
    }
    windows = sorted({w for ladder in ladders.values() for w in ladder})
    recordings = []
    for window in windows:
        label = slo_rules.window_label(window)
        ratio, events = _sli(d, names, label)
        for record, expr in ((ERROR_RATIO, ratio), (EVENTS, events)):
            recordings.append(
                {"record": record + label, "expr": expr, "labels": {**ids, "window": label}}
            )
    budget = float(budgets.error_budget(budgets.good_target(d)))
    target = budgets.good_target(d)
    alerts = []
    for i, rule in rules.iterrows():
        long, short = (slo_rules.window_label(rule[k]) for k in ("long_window", "short_window"))
        factor = float(rule["burn_rate"])
        threshold = _number(factor * budget)
        ladder = [slo_rules.window_label(w) for w in ladders[i]]
        alerts.append(
            {
                "alert": ALERT_NAME,
                "expr": _breach(_matchers(ids), long, ladder, threshold, min_events),
                "labels": {
                    **ids,
                    "severity": str(rule["severity"]),
                    "long_window": long,
                    "short_window": short,
                    "burn_rate": _number(factor),
                },
                "annotations": {
                    "summary": f"{service}/{slo} is burning its error budget over"
                    f" {_number(factor)}x ({long} and {short} windows)",
                    "description": f"The {target:g} % SLO spends its budget"
                    f" {_number(factor)} times too fast over the last {long} and {short}"
                    f" (error ratio over {threshold}, at least {min_events} events; a"
                    f" quiet service's {short} window is read over the first of"
                    f" {', '.join(ladder)} holding as many).",
                },
            }
        )
    return {"name": f"obslib-slo-{service}-{slo}", "rules": recordings + alerts}


def _breach(sel: str, long: str, ladder: list[str], threshold: str, min_events: int) -> str:
    """A rule's alert expression: the replay's breach (``replay.replay``) over the recorded
    series. The long window burns over the factor and holds ``min_events`` events; the short
    window burns over it on the first rung of ``ladder`` (``status.guard_ladder``) holding
    ``min_events`` events: an ``or`` of rungs, each one's events at least ``min_events`` and
    its ratio over the threshold, ``unless`` an earlier rung holds ``min_events`` events.
    ``unless`` rather than ``events < min_events``: a rung with no samples at all (a target
    down for its whole window) counts as no events, as the replay counts a minute without
    spans, instead of blocking every later rung."""
    n = str(min_events)

    def only(name: str, window: str, op: str, value: str) -> str:
        return f"max without (window) ({name}{window}{sel} {op} {value})"

    def joined(terms: list[tuple[str, str]], indent: str) -> str:
        lines = [f"{indent}{terms[0][1]}"]
        for word, term in terms[1:]:
            lines += [f"{indent}{word}", f"{indent}{term}"]
        return "\n".join(lines)

    rungs = []
    for k, rung in enumerate(ladder):
        terms = [("", only(EVENTS, rung, ">=", n))]
        terms += [("and", only(ERROR_RATIO, rung, ">", threshold))]
        terms += [("unless", only(EVENTS, earlier, ">=", n)) for earlier in ladder[:k]]
        rungs.append(f"  (\n{joined(terms, '    ')}\n  )")
    long_terms = [("", only(ERROR_RATIO, long, ">", threshold))]
    long_terms += [("and", only(EVENTS, long, ">=", n))]
    return f"(\n{joined(long_terms, '  ')}\n)\nand\n(\n" + "\n  or\n".join(rungs) + "\n)"


def _sli(d: dict, names: MetricNames, window: str) -> tuple[str, str]:
    """The error-ratio and event-count expressions of one SLO over ``window``."""
    service = {names.service_label: d["service_name"]}
    if d["slo_type"] == "latency":
        total = f"{names.duration}_count{_matchers(service, names.selector)}"
        le = repr(float(d["latency_threshold_ms"]) / 1000.0)
        fast = f"{names.duration}_bucket{_matchers({**service, 'le': le}, names.selector)}"
        ratio = (
            f"(\n  sum(rate({total}[{window}]))\n  -\n  sum(rate({fast}[{window}]))\n)\n"
            f"/\nsum(rate({total}[{window}]))"
        )
    else:  # availability, error_rate: the bad events are the error statuses
        total = f"{names.requests}{_matchers(service, names.selector)}"
        bad_sel = _matchers(service, names.selector, regex={names.status_label: names.error_status})
        bad = f"{names.requests}{bad_sel}"
        # no error series at all is an error ratio of 0, not an absent one
        ratio = (
            f"(\n  sum(rate({bad}[{window}]))\n  or\n  vector(0)\n)\n"
            f"/\nsum(rate({total}[{window}]))"
        )
    return ratio, f"sum(increase({total}[{window}]))"


def _matchers(equal: dict, extra: str = "", *, regex: dict | None = None) -> str:
    parts = [f"{k}={_quote(v)}" for k, v in equal.items()]
    parts += [f"{k}=~{_quote(v)}" for k, v in (regex or {}).items()]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}"


def _quote(value) -> str:
    """A PromQL string literal (double-quoted, Go escapes: JSON's are a subset)."""
    return json.dumps(str(value), ensure_ascii=False)


def _number(value: float) -> str:
    """A float as short as it reads (0.0144, not 0.014399999999998415)."""
    text = repr(round(float(value), 12))
    return text[:-2] if text.endswith(".0") else text


def _dump(document: dict) -> str:
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str):
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, text)
    return yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100, indent=2
    )
