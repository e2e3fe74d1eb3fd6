"""Everything the incident postmortem notebook shows, and the postmortem draft itself.

For one incident (a row of ``alert_incidents``) the view loads the hour before its page up to
its resolution and states, from the data only: what happened when (the timeline), how long
detection, acknowledgement and resolution took, how many user requests failed or were slow
(each counted once, at the service it entered: ``alerts.impact``'s rule) and which calls
failed or were slow in which services (the paged one and those linked to it in the service
graph), how much of each SLO's
error budget the incident burned, which other alerts fired with it, where request time went
against the same hours the day before, and the error logs. The facts come from
``obslib.alerts.incidents`` and ``obslib.traces``; this module arranges them. ``document()``
is the Google SRE postmortem skeleton pre-filled with those facts
(``obslib.views.postmortem_draft``), each place a person must write marked ``[TO WRITE]``;
the report runner saves it as ``postmortem.md``.

An unknown incident id is a note in every view, never a traceback.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import pandas as pd

from obslib import alerts, charts, load, slo
from obslib import logs as log_analysis
from obslib.alerts import incidents
from obslib.charts import incidents as incident_charts
from obslib.escape import md_text
from obslib.traces import sets as trace_sets
from obslib.values import EARLIEST, LATEST, duration_text
from obslib.views import postmortem_draft as draft
from obslib.views.notes import Markdown, Note, unless_empty
from obslib.views.postmortem_draft import (
    BUDGET_LABELS,
    CALL_LABELS,
    TIMELINE_LABELS,
    USER_LABELS,
    when,
)
from obslib.views.tables import table
from obslib.views.trace_window import CHANGE_LABELS, DAY, View

RELATED_WINDOW = pd.Timedelta(minutes=15)  # other alerts this close to the page are related
# How far the data a postmortem reads reaches around its incident: the day before, the
# longest SLO period of the budget section, related alerts (a page outside is refused).
_MARGIN = pd.Timedelta(days=400)
TOP_LOGS = 10
STEPS = tuple(pd.Timedelta(s) for s in ("1min", "5min", "15min", "1h", "6h", "1D"))
MAX_BARS = 1500  # bars of the timeline chart, at most

_RELATED_LABELS = {
    "incident_id": "incident",
    "incident_status": "status",
    "alert_name": "alert",
    "service_name": "service",
    "offset_ms": "after this page",
}


@dataclass(frozen=True, eq=False)  # eq=False: frames do not compare as one bool
class Postmortem:
    """One incident and the data around it, as ``postmortem()`` loaded them; ``found`` is
    False with a ``message`` when the id names no stored incident (or one whose times
    obslib cannot hold). The facts below are computed from these fields on first use."""

    incident_id: str
    found: bool = False
    message: str = ""
    incident: dict = field(default_factory=dict)
    start: pd.Timestamp | None = None  # an hour before the page
    end: pd.Timestamp | None = None  # the resolution (or an hour after an open page)
    spans: pd.DataFrame = field(default_factory=pd.DataFrame)
    day_before: pd.DataFrame = field(default_factory=pd.DataFrame)
    logs: pd.DataFrame = field(default_factory=pd.DataFrame)
    # the error logs of the same hours the day before: which templates are new
    logs_day_before: pd.DataFrame = field(default_factory=pd.DataFrame)
    slos: pd.DataFrame = field(default_factory=pd.DataFrame)
    counts: pd.DataFrame = field(default_factory=pd.DataFrame)  # per minute, one period back
    nearby: pd.DataFrame = field(default_factory=pd.DataFrame)  # incidents around this one
    outage_lead: dict = field(default_factory=dict)  # the first page of its outage
    # the failing spans and logs of that page's service (``load.incident_evidence``)
    lead_evidence: tuple[pd.DataFrame, pd.DataFrame] | None = None
    data_start: pd.Timestamp | None = None  # the first stored span: how much of a period

    def empty_note(self) -> Note | None:
        """Why every view is empty (no such incident), or None."""
        return None if self.found else Note(self.message)

    # -- facts, computed once -------------------------------------------------------------

    @property
    def service(self) -> str:
        return incidents.name_or(self.incident.get("service_name"), "an unknown service")

    @functools.cached_property
    def _clean(self) -> trace_sets.CleanWindow:
        return trace_sets.clean_window(self.spans)

    @functools.cached_property
    def edges(self) -> pd.DataFrame:
        """The window's service graph (caller -> callee)."""
        if self.spans.empty:
            return pd.DataFrame(columns=["caller", "callee", "calls"])
        return trace_sets.service_graph(self._clean)

    @functools.cached_property
    def timeline_facts(self) -> incidents.Timeline:
        return incidents.timeline(
            self.incident, errors=self.spans, logs=self.logs, counts=self.counts, slos=self.slos
        )

    @functools.cached_property
    def detection(self) -> incidents.Detection:
        """The detection of the incident's outage (``incidents.outage_detection`` of its
        first page): what the health scorecard states for the same outage."""
        lead = self.outage_lead or self.incident
        if self.lead_evidence is None or incidents.missing(lead.get("service_name")):
            return incidents.Detection(
                str(lead["incident_id"]), incidents.alert_kind(lead), None, None
            )
        errors, logs = self.lead_evidence
        return incidents.outage_detection(
            lead,
            errors=errors,
            logs=logs,
            counts=self.counts,
            slos=self.slos[self.slos["service_name"] == lead["service_name"]]
            if len(self.slos)
            else self.slos,
        )

    @property
    def _since(self) -> pd.Timestamp:
        """Where impact and budget are counted from: the start of the first bad minute (the
        SLI bucket holding it, so the budget counts that minute's bad events as the impact
        counts its failed requests), or the window."""
        return (self.timeline_facts.first_bad or self.start).floor(slo.STEP)

    @functools.cached_property
    def users(self) -> incidents.UserImpact:
        """User requests from the first bad minute, each counted once at its entry span
        (``incidents.user_impact``), found in the window's repaired traces."""
        if self.spans.empty:
            return incidents.UserImpact(0, 0, 0, pd.DataFrame(columns=list(incidents.USER_COLUMNS)))
        return incidents.user_impact(
            self._clean.spans, self.slos, self._since, self.end, through=[self.service]
        )

    @functools.cached_property
    def impact_rows(self) -> pd.DataFrame:
        """Failed and slow calls per service and operation (``incidents.impact``)."""
        return incidents.impact(
            self.spans, self.edges, self.service, self.slos, self._since, self.end
        )

    @functools.cached_property
    def budget_rows(self) -> pd.DataFrame:
        return incidents.incident_budget(
            self.counts,
            self.slos,
            self.edges,
            self.service,
            self._since,
            self.end,
            data_start=self.data_start,
        )

    @functools.cached_property
    def related_rows(self) -> pd.DataFrame:
        return alerts.related_alerts(
            self.nearby, self.incident_id, self.edges, window=RELATED_WINDOW
        )

    @functools.cached_property
    def top_error_rows(self) -> pd.DataFrame:
        """The most frequent error templates (``logs.top_error_templates``): one row per
        service and template with its count, its count the same hours the day before and a
        sample message, not one per line."""
        return log_analysis.top_error_templates(self.logs, TOP_LOGS, before=self.logs_day_before)

    @functools.cached_property
    def facts(self) -> draft.Facts:
        """What the postmortem draft states."""
        return draft.Facts(
            incident=self.incident,
            service=self.service,
            start=self.start,
            end=self.end,
            timeline=self.timeline_facts,
            detection=self.detection,
            users=self.users,
            impact=self.impact_rows,
            budget=self.budget_rows,
            budgeted_services=incidents.budgeted_services(self.slos, self.edges, self.service),
            related=self.related_rows,
            top_errors=self.top_error_rows,
        )

    # -- views ------------------------------------------------------------------------------

    @unless_empty
    def headline(self) -> Note:
        """One sentence: what paged, when, and how long until detection and resolution."""
        i, t = self.incident, self.detection
        parts = [
            f"{i['incident_id']}: {draft.alert_name(i, 'an alert')} on {self.service} "
            f"({i['severity']}) paged at {when(i['triggered_at'])}"
        ]
        if t.time_to_detect is not None:
            parts.append(
                f"its outage paged {duration_text(t.time_to_detect)} after the first bad minute"
            )
        resolve = self.timeline_facts.time_to_resolve
        if resolve is not None:
            parts.append(f"resolved {duration_text(resolve)} after the page")
        else:
            parts.append(f"still {i['status']}")
        return Note(", ".join(parts) + ".")

    @unless_empty
    def summary(self) -> View:
        """The incident's row and its response times."""
        i, t = self.incident, self.timeline_facts
        rows = [
            ("incident", i["incident_id"]),
            ("alert", draft.alert_name(i, "")),
            ("service", self.service),
            ("severity", i["severity"]),
            ("status", i["status"]),
            ("paged", when(i["triggered_at"])),
            ("acknowledged", when(i.get("acknowledged_at"), i.get("acknowledged_by"))),
            ("resolved", when(i.get("resolved_at"), i.get("resolved_by"))),
            ("escalation level", incidents.name_or(i.get("escalation_level"), "")),
            ("outage's first page", str(self.detection.lead)),
            ("first bad minute", when(self.detection.first_bad)),
            ("time to detect (outage)", duration_text(self.detection.time_to_detect)),
            ("time to acknowledge", duration_text(t.time_to_acknowledge)),
            ("time to resolve", duration_text(t.time_to_resolve)),
            (
                "user requests (" + draft.counted_over(self.facts) + ")",
                draft.users_short(self.users),
            ),
        ]
        return table(pd.DataFrame(rows, columns=["fact", "value"]), "The incident")

    @unless_empty
    def timeline(self) -> View:
        """Every event from the data, in time order."""
        return table(
            self.timeline_facts.events,
            "Timeline from the data: changes, breaches, first failures, then the response",
            labels=TIMELINE_LABELS,
        )

    @unless_empty
    def timeline_chart(self) -> View:
        """Failed calls per minute of the paged service above the events."""
        return incident_charts.incident_timeline(
            incidents.failures_per_minute(self.spans, self.service, self.step),
            self.timeline_facts.events,
            start=self.start,
            end=self.end,
            service=self.service,
            title=f"{self.incident_id}: {self.service} failed calls and what happened",
            step=self.step,
        )

    @property
    def step(self) -> pd.Timedelta:
        """The chart's bar width: a minute, or coarser so a long incident stays under
        ``MAX_BARS`` bars (a week-long one would exceed what a chart may draw)."""
        span = self.end - self.start
        for step in STEPS:
            if span / step <= MAX_BARS:
                return step
        return STEPS[-1]

    @unless_empty
    def impact(self) -> View:
        """User requests that failed or were slow, each counted once, per entry service and
        operation, from the first bad minute."""
        users, over = self.users, draft.counted_over(self.facts)
        if not users.affected:
            return Note(draft.users_text(users, over))
        return table(users.rows, draft.users_caption(users, over), labels=USER_LABELS)

    @unless_empty
    def impact_calls(self) -> View:
        """Failed and slow calls per service and operation from the first bad minute, each
        service against its own latency SLO: calls, never added up as requests."""
        rows, over = self.impact_rows, draft.counted_over(self.facts)
        if rows.empty:
            return Note(draft.no_calls_text(self.service, over))
        return table(rows, draft.calls_caption(over), labels=CALL_LABELS)

    @unless_empty
    def budget(self) -> View:
        """Error budget burned by this incident, per SLO of the services it touched."""
        rows = self.budget_rows
        if rows.empty:
            return Note(draft.no_budget_text(self.facts))
        return table(
            draft.budget_display(rows),
            "Share of each SLO's error budget for its period (or the part of it the stored "
            "data covers) spent between the first bad minute and the resolution",
            labels=BUDGET_LABELS,
        )

    @unless_empty
    def related(self) -> View:
        """Other alerts that fired with this one: same service, linked services, or named."""
        rows = self.related_rows
        if rows.empty:
            return Note(
                f"No other alert fired within {duration_text(RELATED_WINDOW)} of this page on "
                f"{self.service} or the services it calls or is called by."
            )
        shown = rows.assign(offset_ms=rows["offset"].dt.total_seconds() * 1000.0)
        # an incident's status is not a span's: "resolved" must not mark the row as failed
        shown = shown.rename(columns={"status": "incident_status"})
        columns = ["incident_id", "alert_name", "service_name", "severity", "incident_status"]
        return table(
            shown[[*columns, "relation", "offset_ms"]],
            "Alerts related to this one (the plan's FindRelatedAlerts)",
            labels=_RELATED_LABELS,
        )

    @unless_empty
    def errors_by_service(self) -> View:
        """Failed spans per service in the window against the same hours the day before."""
        if self.spans.empty:
            return Note(f"No spans between {when(self.start)} and {when(self.end)}.")
        return table(
            incidents.errors_by_service(self.spans, self.day_before),
            "Spans and failed spans per service in the incident window and the same hours "
            "the day before",
            labels={"service_name": "service", "error_rate_day_before": "error rate day before"},
        )

    @functools.cached_property
    def _path_change(self) -> pd.DataFrame | Note:
        if self.spans.empty:
            return Note(f"No spans between {when(self.start)} and {when(self.end)}.")
        if self.day_before.empty:
            return Note("No spans in the same hours the day before to compare with.")
        return trace_sets.compare_critical_paths(
            self._clean, trace_sets.clean_window(self.day_before)
        )

    @unless_empty
    def critical_path_change(self) -> View:
        """Where request time went: critical-path ms per trace against the day before."""
        change = self._path_change
        if isinstance(change, Note):
            return change
        return table(
            change.head(10),
            "Critical-path time per trace and operation: the incident window against the same "
            "hours the day before (largest increase first)",
            labels=CHANGE_LABELS,
        )

    @unless_empty
    def critical_path_chart(self) -> View:
        """The same comparison as paired bars."""
        change = self._path_change
        if isinstance(change, Note):
            return change
        return charts.path_share_comparison(
            change, title="critical path per trace: incident window vs day before"
        )

    @unless_empty
    def error_logs(self) -> View:
        """The most frequent error templates of the window, by service, with a sample."""
        rows = self.top_error_rows
        if rows.empty:
            return Note(f"No error or fatal log between {when(self.start)} and {when(self.end)}.")
        return table(
            rows,
            f"The {TOP_LOGS} most frequent error templates of the window (ids, numbers,"
            " durations and hosts masked), each with its first message and its records in"
            " the same hours the day before (new: none then)",
            labels={
                "service_name": "service",
                "records_day_before": "day before",
                "sample": "first message",
            },
        )

    def document(self) -> Markdown:
        """The postmortem draft: the Google SRE skeleton, facts filled in, gaps marked."""
        if not self.found:
            return Markdown(f"# Postmortem\n\n*{md_text(self.message)}*\n")
        return Markdown(
            draft.document(self.facts), shown=draft.document(self.facts, tables_above=True)
        )


def postmortem(incident_id: str, *, url: str | None = None) -> Postmortem:
    """Load one incident and the data around it: the hour before its page up to its
    resolution (an hour after the page while open), the same hours the day before, per-minute
    SLI counts one SLO period back, and the incidents around it."""
    incident_id = str(incident_id).strip()
    found = load.incident(incident_id, url=url) if incident_id else pd.DataFrame()
    if found.empty:
        shown = incident_id or "(empty)"
        return Postmortem(
            incident_id,
            message=f"No incident {shown!r} is stored: check the id"
            " (obslib incidents list shows them).",
        )
    row = found.iloc[0].to_dict()
    for column in ("triggered_at", "resolved_at"):  # the window and its margins must fit
        moment = row.get(column)
        if column == "resolved_at" and incidents.missing(moment):
            continue
        if pd.isna(moment) or not EARLIEST + _MARGIN <= moment < LATEST - _MARGIN:
            shown = "no time" if pd.isna(moment) else _far(moment)
            return Postmortem(
                incident_id,
                message=(
                    f"Incident {incident_id!r} has {column} {shown}, outside the times obslib"
                    f" holds ({EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d}): fix the row."
                ),
            )
    start = row["triggered_at"] - incidents.LOOKBACK
    end = incidents.window_end(row)
    slos = load.enabled_slos(url=url)
    periods = [slo.period(d) for d in slo.check_definitions(slos)] or [DAY]
    counts = (
        load.slo_counts(slos, end - max(periods), end, url=url) if len(slos) else pd.DataFrame()
    )
    nearby = load.incidents(start - RELATED_WINDOW, end + RELATED_WINDOW, url=url)
    outages = alerts.outages(nearby, load.service_edges(start, end, url=url))
    leads = outages.loc[outages["incident_id"] == incident_id, "outage_lead"]
    lead_id = leads.iloc[0] if len(leads) else incident_id
    lead = nearby[nearby["incident_id"] == lead_id]
    lead_row = lead.iloc[0].to_dict() if len(lead) else row
    evidence = None
    if not incidents.missing(lead_row.get("service_name")):
        since = lead_row["triggered_at"] - incidents.LOOKBACK
        window = (lead_id, lead_row["service_name"], since, incidents.window_end(lead_row))
        evidence = load.incident_evidence([window], url=url)[lead_id]
    return Postmortem(
        incident_id,
        found=True,
        outage_lead=lead_row,
        lead_evidence=evidence,
        incident=row,
        start=start,
        end=end,
        spans=load.spans(start, end, json="text", url=url),
        day_before=load.spans(start - DAY, end - DAY, json="text", url=url),
        logs=load.logs(start, end, url=url),
        logs_day_before=load.logs(
            start - DAY, end - DAY, levels=log_analysis.ERROR_LEVELS, url=url
        ),
        slos=slos,
        counts=counts,
        nearby=nearby,
        data_start=stored[0] if (stored := load.data_range(url=url)) else None,
    )


# -- helpers --------------------------------------------------------------------------------


def _far(moment: pd.Timestamp) -> str:
    """A moment of any year as UTC text (strftime fails before year 1000 and past 9999)."""
    m = moment.tz_convert("UTC")
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d} {m.hour:02d}:{m.minute:02d} UTC"
