"""Everything the observability health notebook shows: the plan's success criteria as KPIs
computed from the stored data, and the alert noise behind one of them.

For a window (default: the last 14 days of data) the view counts, in PostgreSQL, client
spans with and without a server child (trace coverage) and traces with and without a log
(log correlation); reads the SLOs (coverage of the critical services); judges every incident
of the window real or false positive by the one rule in ``obslib.alerts`` (per-minute SLI
counts); and times the detection of each critical incident from its data
(``incidents.timeline``). Then the noise: correlated groups, duplicates, flapping alerts,
MTTA/MTTR, and an Alertmanager-style replay of the window's incidents (which pages grouping
and inhibition would have merged or muted). Every view returns a table, a chart or a note.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import altair as alt
import pandas as pd

from obslib import alerts, health, load, slo
from obslib.alerts import incidents
from obslib.charts import health as health_charts
from obslib.config import critical_services
from obslib.values import positive_duration
from obslib.views.notes import Note
from obslib.views.tables import Table, number_text, percent_text, span_text, table

View = Table | Note | alt.TopLevelMixin
# The route the replay applies: one page per service at a time (Alertmanager's timings by
# default), and a critical alert mutes the lower-severity ones of its service.
ROUTE = alerts.Route(group_by=("service",))
INHIBIT = (
    alerts.InhibitRule(
        source={"severity": "critical"}, target={"severity": "high"}, equal=("service",)
    ),
    alerts.InhibitRule(
        source={"severity": "critical"}, target={"severity": "medium"}, equal=("service",)
    ),
    alerts.InhibitRule(
        source={"severity": "critical"}, target={"severity": "low"}, equal=("service",)
    ),
)

_SCORE_LABELS = {"kpi": "KPI", "passed": "result"}
_TIMES_LABELS = {"service_name": "service", "mtta_ms": "MTTA", "mttr_ms": "MTTR"}


@dataclass
class Health:
    """The window's KPI inputs, loaded once; the analysis is computed on first use."""

    start: pd.Timestamp
    end: pd.Timestamp
    url: str | None = None
    coverage: pd.DataFrame = field(default_factory=pd.DataFrame)
    correlation: pd.DataFrame = field(default_factory=pd.DataFrame)
    slos: pd.DataFrame = field(default_factory=pd.DataFrame)
    incidents: pd.DataFrame = field(default_factory=pd.DataFrame)
    counts: pd.DataFrame = field(default_factory=pd.DataFrame)
    edges: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def _when(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M} .. {self.end:%Y-%m-%d %H:%M} UTC"

    # -- analysis, computed once --------------------------------------------------------------

    @functools.cached_property
    def verdicts(self) -> pd.DataFrame:
        return alerts.false_positives(self.incidents, self.counts, self.slos)

    @functools.cached_property
    def groups(self) -> pd.DataFrame:
        return alerts.correlate(self.incidents, self.edges)

    @functools.cached_property
    def noise_facts(self) -> alerts.Noise:
        return alerts.noise(self.incidents, self.verdicts, self.groups)

    @functools.cached_property
    def detections(self) -> pd.DataFrame:
        """Time to detect of every critical incident of the window, from its own data."""
        rows = []
        critical = self.incidents[self.incidents["severity"] == health.CRITICAL]
        for row in critical.to_dict("records"):
            since = row["triggered_at"] - incidents.LOOKBACK
            until = incidents.window_end(row)
            service = row["service_name"]
            if not isinstance(service, str):  # an incident whose alert is gone
                rows.append((row["incident_id"], row["severity"], pd.NaT))
                continue
            got = incidents.timeline(
                row,
                errors=load.spans(
                    since,
                    until,
                    services=[service],
                    kinds=["server"],
                    statuses=["error", "timeout"],
                    url=self.url,
                ),
                logs=load.logs(since, until, services=[service], url=self.url),
                counts=self.counts,
                slos=self.slos[self.slos["service_name"] == service],
            )
            rows.append((row["incident_id"], row["severity"], got.time_to_detect))
        frame = pd.DataFrame(rows, columns=list(health.DETECTION_COLUMNS))
        frame["time_to_detect"] = pd.to_timedelta(frame["time_to_detect"])
        return frame

    @functools.cached_property
    def scorecard_rows(self) -> pd.DataFrame:
        return health.scorecard(
            coverage=self.coverage,
            correlation=self.correlation,
            slos=self.slos,
            verdicts=self.verdicts,
            detections=self.detections,
            critical=critical_services(),
        )

    @functools.cached_property
    def replayed(self) -> alerts.NotificationReplay:
        return alerts.replay_notifications(self.incidents, ROUTE, INHIBIT, until=self.end)

    # -- views ----------------------------------------------------------------------------

    def headline(self) -> Note:
        rows = self.scorecard_rows
        passed = int((rows["passed"] == True).sum())  # noqa: E712 (None is neither)
        failed = int((rows["passed"] == False).sum())  # noqa: E712
        missing = len(rows) - passed - failed
        failing = ", ".join(rows.loc[rows["passed"] == False, "kpi"])  # noqa: E712
        text = f"{self._when}: {passed} of {len(rows)} KPIs pass"
        if failed:
            text += f"; failing: {failing}"
        if missing:
            text += f"; {missing} without data"
        return Note(text + ".")

    def scorecard(self) -> View:
        rows = self.scorecard_rows.copy()
        rows["passed"] = [
            "no data" if p is None else ("passed" if p else "FAILED") for p in rows["passed"]
        ]
        rows["value"] = [
            health.shown(v, k) for v, k in zip(rows["value"], rows["kpi"], strict=True)
        ]
        return table(
            rows[["kpi", "value", "target", "passed", "detail"]],
            "The plan's success criteria, each computed from the window's data",
            labels=_SCORE_LABELS,
        )

    def scorecard_chart(self) -> View:
        return health_charts.kpi_chart(self.scorecard_rows, title="Observability health")

    def coverage_chart(self) -> View:
        if self.coverage.empty:
            return Note(f"No client span between {self._when}: nothing to cover.")
        return health_charts.coverage_chart(self.coverage, title="Trace coverage per call")

    def uncovered(self) -> View:
        """The calls with the fewest server spans behind them."""
        if self.coverage.empty:
            return Note(f"No client span between {self._when}: nothing to cover.")
        rows = health.coverage_breakdown(self.coverage)
        rows = rows[rows["client_spans"] > rows["served"]]
        if rows.empty:
            return Note("Every client span of the window has a server child.")
        return table(
            rows.head(12),
            "Client calls without a server span behind them (an uninstrumented callee, or a "
            "call that never arrived), most missing first",
            labels={"service_name": "caller", "operation_name": "operation"},
        )

    def noise(self) -> View:
        n = self.noise_facts
        rows = [
            ("incidents in the window", n.incidents),
            ("judged real", n.real),
            ("judged false positive", n.false_positive),
            ("unknown (open, or no SLO / no data for the service)", n.unknown),
            ("false-positive rate", percent_text(n.false_positive_rate)),
            ("correlated groups with a real incident", n.real_groups),
            ("alerts per real incident", number_text(n.alerts_per_real_incident)),
            ("duplicates (fired while the same alert was open)", n.duplicates),
            ("flapping episodes", n.flapping_episodes),
            ("firings in flapping episodes", n.flapping_firings),
        ]
        return table(
            pd.DataFrame(rows, columns=["measure", "value"]).astype({"value": str}),
            "Alert noise: a false positive is a resolved incident whose service showed no SLI "
            f"breach from {alerts.FP_MARGIN.seconds // 60} min before the page to its resolution",
        )

    def false_positives(self) -> View:
        """False positives per alert: which alerts page for nothing, and how often."""
        judged = self.verdicts
        fps = judged[judged["verdict"] == "false_positive"]
        if fps.empty:
            return Note("No incident of the window was judged a false positive.")
        times = fps.merge(self.incidents[["incident_id", "triggered_at"]], on="incident_id")
        per = times.groupby(["alert_name", "service_name"], sort=False).agg(
            false_positives=("incident_id", "size"),
            first=("triggered_at", "min"),
            last=("triggered_at", "max"),
        )
        per = per.reset_index().sort_values("false_positives", ascending=False, kind="stable")
        return table(
            per,
            "False positives per alert: incidents with no SLI breach of their service around them",
            labels={"alert_name": "alert", "service_name": "service"},
        )

    def flapping(self) -> View:
        episodes = alerts.flapping(self.incidents)
        if episodes.empty:
            return Note("No alert fired three times or more within an hour.")
        shown = episodes[["alert_name", "first", "last", "firings"]].copy()
        shown["median_duration_ms"] = episodes["median_duration"].dt.total_seconds() * 1000.0
        return table(
            shown,
            "Flapping: one alert firing and resolving again and again (each burst one row)",
            labels={"alert_name": "alert", "median_duration_ms": "median firing"},
        )

    def correlated(self) -> View:
        """Groups of more than one alert: one problem, several pages."""
        grouped = self.groups.groupby("group", sort=True)
        summary = grouped.agg(
            opened_by=("group_lead", "first"),
            alerts=("incident_id", "size"),
            alert_names=("alert_name", lambda a: ", ".join(sorted(set(map(str, a))))),
            services=("service_name", lambda a: ", ".join(sorted(set(map(str, a))))),
            first=("triggered_at", "min"),
            last=("triggered_at", "max"),
        )
        many = summary[summary["alerts"] > 1].reset_index(drop=True)
        if many.empty:
            return Note("No two alerts of the window were related (same or linked service).")
        return table(
            many,
            "Correlated alerts (same service or linked in the service graph, within "
            f"{alerts.CORRELATION_WINDOW.seconds // 60} min, or while one is still open): "
            "one row per group of more than one",
            labels={"opened_by": "opened by", "alert_names": "alert names"},
        )

    def response_times(self) -> View:
        if self.incidents.empty:
            return Note(f"No incident between {self._when}.")
        times = incidents.mean_times(self.incidents)
        times["mtta_ms"] = times.pop("mtta").dt.total_seconds() * 1000.0
        times["mttr_ms"] = times.pop("mttr").dt.total_seconds() * 1000.0
        return table(times, "MTTA and MTTR by service and severity", labels=_TIMES_LABELS)

    def replay_summary(self) -> View:
        if self.incidents.empty:
            return Note(f"No incident between {self._when}: nothing to replay.")
        s = self.replayed.summary
        rows = pd.DataFrame(
            [(str(k).replace("_", " "), str(v)) for k, v in s.items()], columns=["measure", "value"]
        )
        return table(
            rows,
            f"The window's incidents through one Alertmanager route (group by service, wait "
            f"{span_text(ROUTE.group_wait)}, interval {span_text(ROUTE.group_interval)}, repeat "
            f"{span_text(ROUTE.repeat_interval)}; a critical alert mutes the others of its "
            "service)",
        )

    def replay_fates(self) -> View:
        fates = self.replayed.fates
        quiet = fates[fates["fate"] != "notified"]
        if quiet.empty:
            return Note("The route would have sent every incident as its own page.")
        return table(
            quiet.drop(columns=["alert_name", "triggered_at"], errors="ignore").merge(
                self.incidents[["incident_id", "alert_name", "triggered_at"]], on="incident_id"
            )[["incident_id", "alert_name", "triggered_at", "group", "fate"]],
            "Incidents the route would not have paged on their own: merged (sent within a "
            "notification another alert of its group opened), inhibited (muted by a critical "
            "alert of its service) or silent (resolved before its group's first flush)",
        )


def observability_health(window: str = "14d", end: str = "", *, url: str | None = None) -> Health:
    """Load what the KPIs need for ``window`` up to ``end`` (empty: the end of the data)."""
    length = positive_duration(window)
    stop = load.data_end(end, url=url).floor(slo.STEP)
    begin = stop - length
    slos = load.enabled_slos(url=url)
    found = load.incidents(begin, stop, url=url)
    margin = alerts.FP_MARGIN + incidents.LOOKBACK
    last = found["resolved_at"].max() if len(found) else stop
    counts_end = max(stop, last if pd.notna(last) else stop)
    counts = (
        load.slo_counts(slos, begin - margin, counts_end, bucket=slo.STEP, url=url)
        if len(slos)
        else pd.DataFrame(columns=list(slo.COUNT_COLUMNS))
    )
    return Health(
        begin,
        stop,
        url=url,
        coverage=load.client_coverage(begin, stop, url=url),
        correlation=load.log_correlation(begin, stop, url=url),
        slos=slos,
        incidents=found,
        counts=counts,
        edges=load.service_edges(begin, stop, url=url),
    )
