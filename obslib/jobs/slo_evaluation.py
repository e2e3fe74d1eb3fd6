"""Load, evaluate, record: what ``obslib slo evaluate`` and the SLO review do with the
stored spans (the plan's ``EvaluateSLO``, ``storeSLOEvaluation`` and ``TriggerSLOAlert``).

Above the analysis, the loaders and the views: the maths stays in ``obslib.slo`` (numbers
in, frames out), which counts to read in ``slo.read_plan`` (the SLO review plans its reads
with it too) and the writes in ``obslib.ingest``; this module only decides which rows go
where, in one transaction. ``record_review`` is the SLO review notebook's recording cell.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from obslib import load, slo
from obslib.errors import UsageError
from obslib.ingest import batch
from obslib.jobs.resolve import auto_resolve
from obslib.slo import status as slo_status
from obslib.storage import files
from obslib.values import Moment, plural

if TYPE_CHECKING:  # the review is built by the view; this job only records it
    from obslib.views.notes import Note
    from obslib.views.slo_review import SloReview

SOURCE = "obslib slo evaluate"  # who opens and closes SLO incidents
NAME_WIDTH = 100  # alert_definitions.alert_name and alert_incidents.incident_id


def evaluate(
    at: Moment | None = None,
    *,
    services: list[str] | None = None,
    min_events: int = slo.DEFAULT_MIN_EVENTS,
    url: str | None = None,
) -> slo_status.Evaluation:
    """Every enabled SLO (of ``services``) evaluated at ``at`` (default: the data's end)."""
    instant = load.data_end(at, url=url, name="at")
    slos = load.enabled_slos(services, url=url)
    missing = sorted(set(services or ()) - set(slos["service_name"]))
    if missing:  # a typo in --service must not read as "all fine"
        known = ", ".join(sorted(set(load.enabled_slos(url=url)["service_name"]))) or "none"
        word = "service" if len(missing) == 1 else "services"
        raise UsageError(f"no enabled SLO for {word} {', '.join(missing)} (known: {known})")
    checked = slo.objectives(slos)  # checked and their rules built once, for every step
    plan = slo.read_plan(checked, instant)
    counts = load.slo_counts(slos, plan.minutes_from, plan.end, bucket=slo.STEP, url=url)
    return slo_status.evaluate_at(counts, checked, plan.end, bucket=slo.STEP, min_events=min_events)


@dataclass(frozen=True)
class Recorded:
    """What ``record`` stored: new measurements, SLOs without data (nothing to store), and
    the incidents it opened and auto-resolved."""

    measurements: int
    no_data: list[str] = field(default_factory=list)
    opened: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        parts = [plural(self.measurements, "new measurement")]
        if self.no_data:
            parts.append(f"no data for {', '.join(self.no_data)}")
        parts.append(f"{plural(len(self.opened), 'incident')} opened" + _listed(self.opened))
        parts.append(f"{len(self.resolved)} auto-resolved" + _listed(self.resolved))
        return "; ".join(parts)


def _listed(ids: list[str]) -> str:
    return f" ({', '.join(ids)})" if ids else ""


def alert_name(service_name: str, slo_name: str) -> str:
    """The alert definition an SLO's violations are incidents of: ``slo:service/name``
    (hashed past the column's 100 characters, so two long names never collide)."""
    return _fit(f"slo:{service_name}/{slo_name}")


def _fit(text: str) -> str:
    if len(text) <= NAME_WIDTH:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return f"{text[: NAME_WIDTH - 13]}~{digest}"


def record(evaluation: slo_status.Evaluation, *, url: str | None = None) -> Recorded:
    """Store each SLO's measurement at the evaluation's instant (idempotent per SLO and
    instant), open an incident for a new violation (not while one for the same SLO is still
    open or acknowledged) and auto-resolve the open or acknowledged ones whose SLO is no
    longer violated.

    One transaction: all of it lands, or nothing.
    """
    at = evaluation.at
    rows = evaluation.slos
    if rows.empty:
        return Recorded(0)
    judged = rows[rows["compliance_status"] != slo.NO_DATA]
    no_data = [slo.slo_label(d) for d in rows[~rows.index.isin(judged.index)].to_dict("records")]
    measurements = pd.DataFrame(
        {
            "service_name": judged["service_name"],
            "slo_name": judged["slo_name"],
            "measurement_timestamp": at,
            "actual_value": judged["sli"].round(4),
            "target_value": judged["target_value"],
            "compliance_status": judged["compliance_status"],
            # NUMERIC(9,2): a zero budget overspent is -inf; store the column's floor
            "error_budget_remaining": judged["error_budget_remaining"]
            .clip(lower=-9_999_999.99)
            .round(2),
            "measurement_period_s": judged["window"].dt.total_seconds(),
        }
    )
    names = zip(judged["service_name"], judged["slo_name"], strict=True)
    judged = judged.assign(alert=[alert_name(service, name) for service, name in names])
    still_open = load.incidents(statuses=["open", "acknowledged"], url=url)
    still_open = still_open[still_open["alert_name"].isin(judged["alert"])]
    violated = judged[judged["compliance_status"] == "violated"]
    # an incident of this instant already stored (recorded, then resolved by hand) stays
    stored = set(load.incidents(at, at + pd.Timedelta(seconds=1), url=url)["incident_id"])
    paged = set(still_open["alert_name"])
    new = [
        d
        for d in violated.to_dict("records")
        if d["alert"] not in paged and _incident_id(at, d) not in stored
    ]
    healed = still_open["alert_name"].isin(set(judged["alert"]) - set(violated["alert"]))
    closing = still_open[healed & (still_open["triggered_at"] <= at)]
    definitions = pd.DataFrame(
        [
            {
                "alert_name": d["alert"],
                "service_name": d["service_name"],
                "alert_type": "slo_violation",
                "metric_name": "slo_error_budget_remaining",
                "condition_expression": f"error budget of {slo.slo_label(d)} overspent"
                f" (SLI below target over {slo.window_label(d['window'])})",
                "severity": "high",
                "notification_channels": [],
            }
            for d in new
        ]
    )
    incidents = pd.DataFrame(
        [
            {
                "incident_id": _incident_id(at, d),
                "alert_name": d["alert"],
                "status": "open",
                "severity": "critical" if d["firing"] == "page" else "high",
                "triggered_at": at,
                "incident_data": _incident_data(d),
            }
            for d in new
        ]
    )
    with batch(url) as b:
        stored = b.slo_measurements(measurements)
        if new:
            b.alert_definitions(definitions)
            opened = b.incidents(incidents)
        else:
            opened = 0
        resolved = auto_resolve(b, closing, at, SOURCE)
    return Recorded(
        measurements=int(stored),
        no_data=no_data,
        opened=list(incidents["incident_id"]) if opened else [],
        resolved=resolved,
    )


def record_review(review: SloReview, *, enabled: bool) -> Note:
    """The SLO review's recording: store its evaluation at its end (what ``obslib slo
    evaluate --record`` does) when ``enabled`` (the notebook's ``record`` parameter), and
    say what was stored, or why nothing was."""
    from obslib.views.notes import Note

    if (empty := review.empty_note()) is not None:
        return empty
    if not enabled:
        return Note("Not recorded (parameter record = False).")
    done = record(review.result, url=review.url)
    return Note(f"Recorded at {review.end:%Y-%m-%d %H:%M} UTC: {done}.")


def _incident_id(at: pd.Timestamp, d: dict) -> str:
    return _fit(f"SLO-{at:%Y%m%dT%H%M}-{slo.slo_label(d)}")


def _incident_data(d: dict) -> dict:
    """What a responder sees first: the SLO, its numbers and who opened the incident."""
    return {
        "source": SOURCE,
        "slo": slo.slo_label(d),
        "summary": f"{slo.slo_label(d)} violated: SLI {d['sli']:.3f} against target"
        f" {d['target_value']:g} over {slo.window_label(d['window'])}",
        "sli": _number(d["sli"]),
        "target": _number(d["target_value"]),
        "error_budget_remaining_percent": _number(d["error_budget_remaining"]),
        "burn_rate": _number(d["burn_rate"]),
        "recent_burn_rate": _number(d["recent_burn_rate"]),
        "firing": d["firing"] or None,
    }


def _number(value: float) -> float | None:
    """JSON has no NaN or infinity: those become null."""
    return float(value) if value is not None and np.isfinite(value) else None


# -- Prometheus textfile ---------------------------------------------------------------------


def textfile_path(path: str | Path) -> Path:
    """The .prom file to write, refused (before any work) when it is a folder or its folder
    is missing."""
    return files.target_file(path, ".prom file")


LATENCY_WINDOW = pd.Timedelta(hours=1)  # traces counted before the evaluation instant
# Prometheus' default histogram buckets (prometheus_client.Histogram.DEFAULT_BUCKETS), in s
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


@dataclass(frozen=True)
class TraceLatency:
    """Traces whose spans start in ``[at - window, at)``: one row each with the root's
    ``service_name`` and ``operation_name`` and the trace's ``duration_ms`` (span extent)."""

    traces: pd.DataFrame
    window: pd.Timedelta


def trace_latency(
    at: pd.Timestamp,
    window: pd.Timedelta = LATENCY_WINDOW,
    *,
    services: list[str] | None = None,
    url: str | None = None,
) -> TraceLatency:
    """The traces of the ``window`` before ``at`` (the evaluation instant), their roots
    found in PostgreSQL; with ``services``, only traces whose root is one of them."""
    traces = load.telemetry.trace_roots(at - window, at, url=url)
    if services:
        traces = traces[traces["service_name"].isin(services)].reset_index(drop=True)
    return TraceLatency(traces, window)


def latency_buckets(
    traces: pd.DataFrame, buckets: tuple[float, ...] = LATENCY_BUCKETS
) -> dict[tuple[str, str], tuple[list[tuple[str, float]], float]]:
    """Per (root service, root operation): Prometheus' cumulative buckets
    ``[(le, count), ..., ("+Inf", total)]`` of the traces' latency in seconds, and the sum.
    A latency equal to a bound falls in that bucket (``le`` is "less or equal")."""
    out = {}
    for (service, operation), group in traces.groupby(["service_name", "operation_name"]):
        seconds = np.sort(group["duration_ms"].to_numpy(dtype=float) / 1000.0)
        counts = np.searchsorted(seconds, np.asarray(buckets, dtype=float), side="right")
        le = [(_bound(b), float(n)) for b, n in zip(buckets, counts, strict=True)]
        out[(str(service), str(operation))] = ([*le, ("+Inf", float(len(seconds)))], seconds.sum())
    return out


def _bound(value: float) -> str:
    """An ``le`` label as Prometheus' clients write it (``0.005``, ``1.0``, ``10.0``)."""
    return repr(float(value))


def write_prometheus(
    evaluation: slo_status.Evaluation,
    path: str | Path,
    *,
    latency: TraceLatency | None = None,
) -> Path:
    """The evaluation in Prometheus' text format, for node_exporter's textfile collector.

    ``prometheus_client.write_to_textfile`` writes a temporary file beside ``path`` and
    renames it, so a scrape never reads half a file. An SLO without data exports no SLI
    (an absent series, not a made-up value); a throughput SLO exports no budget or burn.
    With ``latency``, ``domainflow_trace_latency_seconds`` joins them: a histogram of the
    window's trace latencies by root service and operation, recounted at every export (a
    snapshot of the window, not a running counter: read its buckets without ``rate()``).
    """
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    target = textfile_path(path)
    registry = CollectorRegistry()
    if latency is not None:
        registry.register(_LatencyCollector(latency))
    labels = ["service_name", "slo_name"]

    def gauge(name: str, doc: str, extra: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, doc, [*labels, *extra], registry=registry)

    compliance = gauge(
        "domainflow_slo_compliance_ratio",
        "Share of good events over the SLO window (0..1): the SLI as a ratio.",
    )
    target_ratio = gauge("domainflow_slo_target_ratio", "The SLO's target share of good events.")
    remaining = gauge(
        "domainflow_slo_error_budget_remaining_ratio",
        "Share of the error budget left (1 untouched, 0 spent, negative overspent).",
    )
    status = gauge(
        "domainflow_slo_status",
        "1 for the SLO's compliance status (compliant, at_risk, violated, no_data).",
        ("status",),
    )
    burn = gauge(
        "domainflow_slo_burn_rate",
        "Error-budget burn rate over a window (1 = exactly on budget).",
        ("window",),
    )
    firing = gauge(
        "domainflow_slo_alert_firing",
        "1 when a multiwindow burn-rate rule of this severity fires.",
        ("severity",),
    )
    stamp = Gauge(
        "domainflow_slo_evaluation_timestamp_seconds",
        "When the SLOs were evaluated (the end of their windows).",
        registry=registry,
    )
    stamp.set(evaluation.at.timestamp())
    for d in evaluation.slos.to_dict("records"):
        key = (d["service_name"], d["slo_name"])
        for value in (slo.NO_DATA, "compliant", "at_risk", "violated"):
            status.labels(*key, value).set(1.0 if d["compliance_status"] == value else 0.0)
        if d["slo_type"] not in slo.BUDGETED_TYPES:
            continue
        target_ratio.labels(*key).set(slo.good_target(d) / 100.0)
        if d["compliance_status"] != slo.NO_DATA:
            compliance.labels(*key).set((d["events"] - d["bad_events"]) / d["events"])
            remaining.labels(*key).set(d["error_budget_remaining"] / 100.0)
        burn.labels(*key, slo.window_label(d["window"])).set(d["burn_rate"])
        for severity in ("page", "ticket"):
            firing.labels(*key, severity).set(1.0 if d["firing"] == severity else 0.0)
    for r in evaluation.rules.to_dict("records"):
        key = (r["service_name"], r["slo_name"])
        burn.labels(*key, slo.window_label(r["long_window"])).set(r["long_burn"])
        burn.labels(*key, slo.window_label(r["short_window"])).set(r["short_burn"])
    write_to_textfile(str(target), registry)
    return target


class _LatencyCollector:
    """``domainflow_trace_latency_seconds`` from counts already made (no observe() loop)."""

    def __init__(self, latency: TraceLatency) -> None:
        self.latency = latency

    def collect(self):
        from prometheus_client.core import HistogramMetricFamily

        family = HistogramMetricFamily(
            "domainflow_trace_latency_seconds",
            "End-to-end trace latency (first span start to last span end) by the root span's"
            f" service and operation, over the {slo.window_label(self.latency.window)} before"
            " the evaluation; recounted at each export.",
            labels=["service_name", "operation"],
        )
        for key, (buckets, total) in latency_buckets(self.latency.traces).items():
            family.add_metric(list(key), buckets, total)
        yield family
