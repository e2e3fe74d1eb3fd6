"""Writing the demo: every table in one transaction, measured, then every report."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from obslib import load, reports, slo
from obslib.demo import topology as topo
from obslib.demo.events import alert_incidents, detection_time, incident_window, main_incident_id
from obslib.demo.traffic import DEFAULT_SEED, DEFAULT_SPANS, generate_day, traces_per_day
from obslib.ingest import batch

WARM_UP = pd.Timedelta(hours=24)  # the demo's evaluator records from its second day on


@dataclass(frozen=True)
class DemoSummary:
    """What ``obslib demo`` wrote and where the story is."""

    seed: int
    start: pd.Timestamp
    end: pd.Timestamp
    spans: int
    traces: int
    logs: int
    slos: int
    measurements: int
    alerts: int
    incidents: int
    incident_id: str
    incident_start: pd.Timestamp
    incident_end: pd.Timestamp
    deploy_at: pd.Timestamp
    new_rows: int  # rows this run added (0 when re-run with the same seed)


def format_summary(s: DemoSummary) -> str:
    """What a person reads after ``obslib demo``."""
    fmt = "%Y-%m-%d %H:%M UTC"
    added = f"{s.new_rows:,} new rows" if s.new_rows else "nothing new (already stored)"
    return "\n".join(
        [
            f"DomainFlow demo, seed {s.seed}: {added}",
            f"  window     {s.start.strftime(fmt)} .. {s.end.strftime(fmt)} (14 days)",
            f"  spans      {s.spans:,} in {s.traces:,} traces",
            f"  logs       {s.logs:,}",
            f"  SLOs       {s.slos} with {s.measurements:,} measurements",
            f"  alerts     {s.alerts} definitions, {s.incidents} incidents",
            f"  incident   {s.incident_id}: deploy of domain-service at"
            f" {s.deploy_at.strftime(fmt)}, regression {s.incident_start.strftime('%H:%M')}"
            f"..{s.incident_end.strftime('%H:%M')} UTC",
        ]
    )


def run(
    *,
    seed: int = DEFAULT_SEED,
    spans: int = DEFAULT_SPANS,
    url: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DemoSummary:
    """Generate and store the demo in one transaction; the same seed again adds nothing."""
    per_day = traces_per_day(spans)
    start = topo.DEMO_END - pd.Timedelta(days=topo.DEMO_DAYS)
    n_spans = n_logs = 0
    trace_ids: set[str] = set()
    with batch(url) as b:
        b.slos(topo.SLOS)
        b.alert_definitions(topo.ALERTS)
        detected_at = None
        for day in range(topo.DEMO_DAYS):
            day_spans, day_logs = generate_day(day, seed, per_day)
            if day_spans["start_time"].iloc[0].normalize() == topo.DEPLOY_AT.normalize():
                detected_at = detection_time(day_spans)
            b.spans(day_spans)
            b.logs(day_logs)
            n_spans += len(day_spans)
            n_logs += len(day_logs)
            trace_ids.update(day_spans["trace_id"].unique())
            if progress:
                progress(day + 1, topo.DEMO_DAYS)
        incidents = alert_incidents(seed, detected_at)
        b.incidents(incidents)
        new_rows = sum(b.written.values())
    measurements = _measure(url)
    with batch(url) as b:
        n_measurements = b.slo_measurements(measurements)
    lo, hi = incident_window()
    return DemoSummary(
        seed=seed,
        start=start,
        end=topo.DEMO_END,
        spans=n_spans,
        traces=len(trace_ids),
        logs=n_logs,
        slos=len(topo.SLOS),
        measurements=len(measurements),
        alerts=len(topo.ALERTS),
        incidents=len(incidents),
        incident_id=main_incident_id(),
        incident_start=lo,
        incident_end=hi,
        deploy_at=topo.DEPLOY_AT,
        new_rows=new_rows + n_measurements,
    )


def _measure(url: str | None) -> pd.DataFrame:
    start = topo.DEMO_END - pd.Timedelta(days=topo.DEMO_DAYS)
    frames = []
    thresholds = topo.SLOS["latency_threshold_ms"].dropna().unique().tolist()
    for threshold in [None, *thresholds]:
        counts = load.sli_counts(
            start, topo.DEMO_END, bucket="1h", latency_threshold_ms=threshold, url=url
        )
        frames.append(counts.assign(threshold=threshold))
    return slo.evaluate(pd.concat(frames, ignore_index=True), topo.SLOS, warm_up=WARM_UP)


def format_report(report: reports.Report) -> str:
    """The lines ``obslib demo`` prints for a written report: its HTML and, for the
    postmortem, the Markdown draft beside it (``postmortem.md``), paths a person opens."""
    lines = [f"report    {report.html}"]
    if report.markdown is not None:
        lines.append(f"  draft   {report.markdown}")
    return "\n".join(lines)


def write_reports(out: Path, url: str | None = None) -> Iterator[reports.Report]:
    """Run every report of the registry with its defaults (which show the demo's story)
    into ``out``, yielding each as it is written."""
    for name in reports.REPORTS:
        yield reports.run_report(name, {}, out, database_url=url)
