"""Everything the observability health notebook shows: the plan's success criteria as KPIs
computed from the stored data, and the alert noise behind one of them.

For a window (default: the last 14 days of data) the view counts, in PostgreSQL, client
spans with and without a server child (trace coverage) and traces with and without a log
(log correlation); reads the SLOs (coverage of the critical services); judges every incident
of the window real or false positive by the one rule in ``obslib.alerts`` (on the SLOs'
burn-rate rules replayed over the window, ``slo.replay``); and times the detection of each
outage holding a critical page from its data (``alerts.detection_times``). Then the noise:
correlated groups, duplicates, flapping alerts, MTTA/MTTR, and an Alertmanager-style replay
of the window's incidents (which pages grouping and inhibition would have merged or muted).
Last, the log rules replayed on the window, each firing judged by the same false-positive
rule and matched to the incident it would have caught (``alerts.judge_log_rules``).
Every view returns a table, a chart or a note.

What to read for the window comes from ``alerts.review_window`` and ``alerts.review_reads``,
every number from ``obslib.health`` and ``obslib.alerts``: the view only arranges them.
"""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import pandas as pd

from obslib import alerts, health, load, logs, slo
from obslib.alerts import amconfig, incidents
from obslib.charts import health as health_charts
from obslib.config import critical_services
from obslib.slo import replay as slo_replay
from obslib.values import duration_text, plural, positive_duration, window_text
from obslib.views import log_replay
from obslib.views.notes import Note, unless_empty
from obslib.views.tables import Table, number_text, percent_text, table

View = Table | Note | alt.TopLevelMixin
# The route the replay applies: one page per service at a time (Alertmanager's timings by
# default), and a critical alert mutes the lower-severity ones of its service.

_SCORE_LABELS = {"kpi": "KPI", "passed": "result"}
_TIMES_LABELS = {"service_name": "service", "mtta_ms": "MTTA", "mttr_ms": "MTTR"}
# the log rules' tables (``LogRules``)
_LOG_LABELS = {
    "alert_name": "log rule",
    "service_name": "service",
    "false_positive": "false positive",
    "false_positive_rate": "false-positive rate",
    "incidents_caught": "incidents caught",
    "incident_id": "would have caught",
    "delay_vs_incident_ms": "start vs page",
}
# The replay's counts (``alerts.NotificationReplay.summary``) in one vocabulary: a page is
# what reaches a person, an incident is paged, merged into another's page, muted,
# inhibited or silent.
_REPLAY_LABELS = {
    "incidents": "incidents in the window",
    "notifications": "pages sent",
    "resolved_notifications": "resolved messages sent",
    "pages_saved": "pages saved (incidents minus pages sent)",
    "notified": "incidents paged on their own",
    "merged": "incidents merged into another page",
    "muted": "incidents muted (mute time)",
    "inhibited": "incidents inhibited",
    "silent": "incidents silent (resolved before a page)",
}


def _ms(durations: pd.Series) -> pd.Series:
    """Timedeltas as ms, the unit a table's duration column holds (``tables.duration_text``
    reads them in ``obslib.values.duration_text``'s style)."""
    return durations.dt.total_seconds() * 1000.0


def _setting(delta: pd.Timedelta) -> str:
    """An Alertmanager timing as its alertmanager.yml writes it (``30s``, ``5m``, ``4h``)."""
    return window_text(delta) if delta > pd.Timedelta(0) else "0s"


@dataclass(frozen=True)
class CallCoverage:
    """Trace coverage per call: the window's client spans per caller operation
    (``load.client_coverage``) and ``health.coverage_breakdown`` of them."""

    when: str
    coverage: pd.DataFrame
    breakdown: pd.DataFrame

    def empty_note(self) -> Note | None:
        if self.coverage.empty:
            return Note(f"No client span between {self.when}: nothing to cover.")
        return None

    @unless_empty
    def chart(self) -> View:
        return health_charts.coverage_chart(self.coverage, title="Trace coverage per call")

    @unless_empty
    def uncovered(self) -> View:
        """The calls with the fewest server spans behind them."""
        rows = self.breakdown[self.breakdown["unserved"] > 0]
        if rows.empty:
            return Note("Every client span of the window has a server child.")
        return table(
            rows.head(12),
            "Client calls without a server span behind them (an uninstrumented callee, or a "
            "call that never arrived), most missing first",
            labels={"service_name": "caller", "operation_name": "operation"},
        )


@dataclass(frozen=True)
class ResponseTimes:
    """MTTA and MTTR of the window's incidents (``incidents.mean_times``)."""

    when: str
    times: pd.DataFrame

    def empty_note(self) -> Note | None:
        return Note(f"No incident between {self.when}.") if self.times.empty else None

    @unless_empty
    def view(self) -> View:
        shown = self.times.drop(columns=["mtta", "mttr"])
        shown["mtta_ms"], shown["mttr_ms"] = _ms(self.times["mtta"]), _ms(self.times["mttr"])
        return table(shown, "MTTA and MTTR by service and severity", labels=_TIMES_LABELS)


@dataclass(frozen=True)
class Replay:
    """The window's incidents through an alertmanager.yml (``config``: obslib's default
    unless the report was given one)."""

    when: str
    replayed: alerts.NotificationReplay
    unpaged: pd.DataFrame  # ``alerts.unpaged``
    config: amconfig.AlertmanagerConfig

    def empty_note(self) -> Note | None:
        if not self.replayed.summary["incidents"]:
            return Note(f"No incident between {self.when}: nothing to replay.")
        return None

    @unless_empty
    def summary(self) -> View:
        rows = pd.DataFrame(
            [(_REPLAY_LABELS.get(k, str(k).replace("_", " ")), str(v))
             for k, v in self.replayed.summary.items()],
            columns=["measure", "value"],
        )  # fmt: skip
        route, rules = self.config.route, len(self.config.inhibit_rules)
        children = len(list(amconfig.walk(route))) - 1
        return table(
            rows,
            f"The window's incidents through {self.config.file} (root route: group by "
            f"{', '.join(route.group_by) or 'nothing'}, wait {_setting(route.group_wait)}, "
            f"interval {_setting(route.group_interval)}, repeat "
            f"{_setting(route.repeat_interval)}; {plural(children, 'child route')}, "
            f"{plural(rules, 'inhibit rule')})",
        )

    def fates(self) -> View:
        if self.unpaged.empty:
            return Note("The route would have sent every incident as its own page.")
        return table(
            self.unpaged,
            "Incidents the configuration would not have paged on their own: merged (sent within a "
            "notification another alert of its group opened), inhibited (muted by an inhibit "
            "rule: by default a critical alert of its service) or silent (resolved before its "
            "group's first flush)",
        )


@dataclass(frozen=True)
class LogRules:
    """The log rules replayed on the window (``views.log_replay.replay_log_rules``) and
    their firings judged by the false-positive and catch rules (``alerts.judge_log_rules``)."""

    when: str
    replayed: logs.LogReplay
    judged: alerts.LogRulesJudged

    def empty_note(self) -> Note | None:
        if not self.replayed.rules:
            return Note(
                "No enabled log rule (alert definitions of alert type 'log'): nothing to replay."
            )
        return None

    @unless_empty
    def per_rule(self) -> View:
        return table(
            self.judged.rules,
            f"Log rules replayed on {self.when}: each firing is judged as the incident it "
            "would have opened (real when a burn-rate rule of an SLO of its service fired from "
            f"{duration_text(alerts.FP_MARGIN)} before it to its end), and catches an incident "
            "of its service when it begins inside that incident's window",
            labels=_LOG_LABELS,
        )

    @unless_empty
    def per_firing(self) -> View:
        firings = self.judged.firings
        if firings.empty:
            return Note(f"No log rule fired between {self.when}.")
        shown = firings[["alert_name", "template", "start", "end", "verdict", "reason"]].copy()
        shown["incident_id"] = firings["incident_id"]
        shown["delay_vs_incident_ms"] = _ms(firings["delay_vs_incident"])
        shown["sample"] = firings["sample"]
        return table(
            shown,
            "Log-rule firings: the verdict of each (false-positive rule) and the incident it "
            "would have caught (the first paged, when it began inside several; blank: none), "
            "its start against that incident's page",
            labels=_LOG_LABELS,
        )


@dataclass(frozen=True)
class Health:
    """The window's KPIs and alert noise, every number computed when the view is built
    (``observability_health``); the methods arrange them for the notebook."""

    start: pd.Timestamp
    end: pd.Timestamp
    scorecard_rows: pd.DataFrame  # ``health.scorecard``
    tally: health.Tally
    calls: CallCoverage
    incidents: pd.DataFrame
    rules_replay: slo_replay.Replay  # the burn-rate rules over the window: its breaches
    verdicts: pd.DataFrame  # ``alerts.false_positives`` on ``rules_replay``
    false_positives_per_alert: pd.DataFrame
    groups: pd.DataFrame  # ``alerts.correlate``
    correlated_groups: pd.DataFrame  # ``alerts.correlated_groups``: groups of two or more
    flapping_episodes: pd.DataFrame  # ``alerts.flapping``
    noise_facts: alerts.Noise
    outages: pd.DataFrame  # ``alerts.outages``
    detections: pd.DataFrame  # ``alerts.detection_times`` of the critical outages
    times: ResponseTimes
    replay: Replay
    log_replay: LogRules

    @property
    def _when(self) -> str:
        return _window_text(self.start, self.end)

    def headline(self) -> Note:
        t = self.tally
        text = f"{self._when}: {t.passed} of {t.kpis} KPIs pass"
        if t.failed:
            text += f"; failing: {', '.join(t.failing)}"
        if t.no_data:
            text += f"; {t.no_data} without data"
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
        return self.calls.chart()

    def uncovered(self) -> View:
        """The calls with the fewest server spans behind them."""
        return self.calls.uncovered()

    def noise(self) -> View:
        n = self.noise_facts
        rows = [
            ("incidents in the window", n.incidents),
            ("judged real", n.real),
            ("judged false positive", n.false_positive),
            ("unknown (no SLO with a burn-rate rule for the service)", n.unknown),
            ("false-positive rate", percent_text(n.false_positive_rate)),
            ("correlated groups with a real incident", n.real_groups),
            ("alerts per real incident", number_text(n.alerts_per_real_incident)),
            ("duplicates (fired while the same alert was open)", n.duplicates),
            ("flapping episodes", n.flapping_episodes),
            ("firings in flapping episodes", n.flapping_firings),
        ]
        return table(
            pd.DataFrame(rows, columns=["measure", "value"]).astype({"value": str}),
            "Alert noise: a false positive is an incident no burn-rate rule of an SLO of its "
            f"service fired for, from {duration_text(alerts.FP_MARGIN)} before the page to "
            "its resolution",
        )

    def false_positives(self) -> View:
        """False positives per alert: which alerts page for nothing, and how often."""
        if self.false_positives_per_alert.empty:
            return Note("No incident of the window was judged a false positive.")
        return table(
            self.false_positives_per_alert,
            "False positives per alert: incidents no burn-rate rule of their service fired for",
            labels={"alert_name": "alert", "service_name": "service"},
        )

    def flapping(self) -> View:
        episodes = self.flapping_episodes
        if episodes.empty:
            return Note("No alert fired three times or more within an hour.")
        shown = episodes[["alert_name", "first", "last", "firings"]].copy()
        shown["median_duration_ms"] = _ms(episodes["median_duration"])
        return table(
            shown,
            "Flapping: one alert firing and resolving again and again (each burst one row)",
            labels={"alert_name": "alert", "median_duration_ms": "median firing"},
        )

    def correlated(self) -> View:
        """Groups of more than one alert: one problem, several pages."""
        if self.correlated_groups.empty:
            return Note("No two alerts of the window were related (same or linked service).")
        return table(
            self.correlated_groups,
            "Correlated alerts (same service or linked in the service graph, within "
            f"{duration_text(alerts.CORRELATION_WINDOW)}, or while one is still open): "
            "one row per group of more than one",
            labels={"opened_by": "opened by", "alert_names": "alert names"},
        )

    def response_times(self) -> View:
        return self.times.view()

    def replay_summary(self) -> View:
        return self.replay.summary()

    def replay_fates(self) -> View:
        return self.replay.fates()

    def log_rules(self) -> View:
        """Per log rule: its firings on the window, judged, and the incidents caught."""
        return self.log_replay.per_rule()

    def log_firings(self) -> View:
        """Per log-rule firing: its verdict and the incident it would have caught."""
        return self.log_replay.per_firing()


def _window_text(start: pd.Timestamp, end: pd.Timestamp) -> str:
    return f"{start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC"


def observability_health(
    window: str = "14d", end: str = "", config: str = "", *, url: str | None = None
) -> Health:
    """Load what the KPIs need for ``window`` up to ``end`` (empty: the end of the data)
    and build the view from it; the incidents are replayed through the alertmanager.yml
    ``config`` (empty: obslib's default, ``alerts/default_alertmanager.yml``)."""
    length = positive_duration(window)  # a bad window is refused before the database
    routing = amconfig.read_config(config) if str(config).strip() else amconfig.default_config()
    start, stop = alerts.review_window(length, load.data_end(end, url=url))
    slos = load.enabled_slos(url=url)
    checked = slo.objectives(slos)
    found = load.incidents(start, stop, url=url)
    edges = load.service_edges(start, stop, url=url)
    outages = alerts.outages(found, edges)
    applies = checked.rules[checked.rules["applies"]]
    reads = alerts.review_reads(
        start,
        stop,
        found,
        outages,
        severity=health.CRITICAL,
        rule_lookback=applies["long_window"].max() if len(applies) else None,
    )
    counts = load.slo_counts(slos, reads.counts_start, reads.counts_end, bucket=slo.STEP, url=url)
    evidence = load.incident_evidence(reads.evidence, url=url)
    coverage = load.client_coverage(start, stop, url=url)
    correlation = load.log_correlation(start, stop, url=url)

    # the burn-rate rules replayed from FP_MARGIN before the window: the breaches that
    # explain (or not) every incident of it
    rules_replay, verdicts = alerts.judge(found, checked, counts, start, reads.counts_end)
    groups = alerts.correlate(found, edges)
    detections = alerts.detection_times(
        found, outages, evidence, counts, slos, severity=health.CRITICAL
    )
    rows = health.scorecard(
        coverage=coverage,
        correlation=correlation,
        slos=slos,
        verdicts=verdicts,
        detections=detections,
        critical=critical_services(),
    )
    replayed = alerts.replay_notifications(found, until=stop, config=routing)
    when = _window_text(start, stop)
    # the log rules on the same window, judged on the same burn-rate replay
    logs_replayed = log_replay.replay_log_rules(start, stop, url=url)
    logs_judged = alerts.judge_log_rules(
        logs_replayed, rules_replay.firings, rules_replay.rules, found, rules_replay.end
    )
    return Health(
        start=start,
        end=stop,
        scorecard_rows=rows,
        tally=health.tally(rows),
        calls=CallCoverage(when, coverage, health.coverage_breakdown(coverage)),
        incidents=found,
        rules_replay=rules_replay,
        verdicts=verdicts,
        false_positives_per_alert=alerts.false_positives_per_alert(verdicts, found),
        groups=groups,
        correlated_groups=alerts.correlated_groups(groups),
        flapping_episodes=alerts.flapping(found),
        noise_facts=alerts.noise(found, verdicts, groups),
        outages=outages,
        detections=detections,
        times=ResponseTimes(when, incidents.mean_times(found)),
        replay=Replay(when, replayed, alerts.unpaged(replayed, found), routing),
        log_replay=LogRules(when, logs_replayed, logs_judged),
    )
