"""Everything the incident postmortem notebook shows, and the postmortem draft itself.

For one incident (a row of ``alert_incidents``) the view loads the hour before its page up to
its resolution and states, from the data only: what happened when (the timeline), how long
detection, acknowledgement and resolution took, which requests failed or were slow in which
services (the paged one and those linked to it in the service graph), how much of each SLO's
error budget the incident burned, which other alerts fired with it, where request time went
against the same hours the day before, and the error logs. ``document()`` is the Google SRE
postmortem skeleton pre-filled with those facts, each place a person must write marked
``[TO WRITE]``; the report runner saves it as ``postmortem.md``. Every stored text in it
(names, log lines, the incident's own fields) is escaped Markdown (``obslib.escape``): it
reads as written and is never markup, in the HTML report and in ``postmortem.md`` alike.

An unknown incident id is a note in every view, never a traceback.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import pandas as pd

from obslib import alerts, charts, load, slo
from obslib.alerts import incidents
from obslib.charts import incidents as incident_charts
from obslib.escape import md_text
from obslib.traces import sets as trace_sets
from obslib.values import EARLIEST, LATEST
from obslib.views.notes import Markdown, Note
from obslib.views.tables import span_text, table
from obslib.views.trace_window import CHANGE_LABELS, DAY, View

RELATED_WINDOW = pd.Timedelta(minutes=15)  # other alerts this close to the page are related
# How far the data a postmortem reads reaches around its incident: the day before, the
# longest SLO period of the budget section, related alerts (a page outside is refused).
_MARGIN = pd.Timedelta(days=400)
TOP_LOGS = 10
TO_WRITE = "**[TO WRITE]**"  # where the draft needs a person; greppable in the Markdown
DETECTION_TARGET = pd.Timedelta(minutes=1)  # the plan's success criterion for critical issues
STEPS = tuple(pd.Timedelta(s) for s in ("1min", "5min", "15min", "1h", "6h", "1D"))
MAX_BARS = 1500  # bars of the timeline chart, at most

_TIMELINE_LABELS = {"time": "time (UTC)", "kind": "event", "what": "what"}
_IMPACT_LABELS = {
    "service_name": "service",
    "operation_name": "operation",
    "first_failure": "first failure",
    "last_failure": "last failure",
}
_BUDGET_LABELS = {
    "service_name": "service",
    "slo_name": "SLO",
    "bad": "bad events",
    "events": "events",
    "budget_events": "period budget (events)",
    "burned_pct": "budget burned %",
}
_RELATED_LABELS = {
    "incident_id": "incident",
    "incident_status": "status",
    "alert_name": "alert",
    "service_name": "service",
    "offset_ms": "after this page",
}


@dataclass
class Postmortem:
    """One incident and the data around it; ``found`` is False with a ``message`` when the
    id names no stored incident."""

    incident_id: str
    found: bool = False
    message: str = ""
    incident: dict = field(default_factory=dict)
    start: pd.Timestamp | None = None  # an hour before the page
    end: pd.Timestamp | None = None  # the resolution (or an hour after an open page)
    spans: pd.DataFrame = field(default_factory=pd.DataFrame)
    day_before: pd.DataFrame = field(default_factory=pd.DataFrame)
    logs: pd.DataFrame = field(default_factory=pd.DataFrame)
    slos: pd.DataFrame = field(default_factory=pd.DataFrame)
    counts: pd.DataFrame = field(default_factory=pd.DataFrame)  # per minute, one period back
    nearby: pd.DataFrame = field(default_factory=pd.DataFrame)  # incidents around this one

    # -- facts, computed once -------------------------------------------------------------

    @property
    def service(self) -> str:
        return incidents.name_or(self.incident.get("service_name"), "an unknown service")

    @functools.cached_property
    def edges(self) -> pd.DataFrame:
        """The window's service graph (caller -> callee)."""
        if self.spans.empty:
            return pd.DataFrame(columns=["caller", "callee", "calls"])
        return trace_sets.service_graph(trace_sets.clean_window(self.spans))

    @functools.cached_property
    def timeline_facts(self) -> incidents.Timeline:
        own = self.slos[self.slos["service_name"] == self.service] if len(self.slos) else self.slos
        return incidents.timeline(
            self.incident, errors=self._failing, logs=self.logs, counts=self.counts, slos=own
        )

    @functools.cached_property
    def _failing(self) -> pd.DataFrame:
        return self.spans[self.spans["status"] != "ok"] if len(self.spans) else self.spans

    @functools.cached_property
    def impact_rows(self) -> pd.DataFrame:
        since = self.timeline_facts.first_bad or self.start
        return incidents.impact(self.spans, self.edges, self.service, self.slos, since, self.end)

    @functools.cached_property
    def budget_rows(self) -> pd.DataFrame:
        related = incidents.neighbourhood(self.edges, self.service)
        mine = self.slos[self.slos["service_name"].isin(related)] if len(self.slos) else self.slos
        since = self.timeline_facts.first_bad or self.start
        burned = incidents.budget_burned(self.counts, mine, since, self.end)
        burned = burned[(burned["bad"] > 0) | (burned["service_name"] == self.service)]
        return burned.sort_values("burned_pct", ascending=False, ignore_index=True)

    @functools.cached_property
    def related_rows(self) -> pd.DataFrame:
        return alerts.related_alerts(
            self.nearby, self.incident_id, self.edges, window=RELATED_WINDOW
        )

    def _missing(self) -> Note | None:
        return None if self.found else Note(self.message)

    # -- views ------------------------------------------------------------------------------

    def headline(self) -> Note:
        """One sentence: what paged, when, and how long until detection and resolution."""
        if (empty := self._missing()) is not None:
            return empty
        i, t = self.incident, self.timeline_facts
        parts = [
            f"{i['incident_id']}: {_alert(i, 'an alert')} on {self.service} "
            f"({i['severity']}) paged at {_when(i['triggered_at'])}"
        ]
        if t.time_to_detect is not None:
            parts.append(f"{span_text(t.time_to_detect)} after the first bad minute")
        if t.time_to_resolve is not None:
            parts.append(f"resolved {span_text(t.time_to_resolve)} after the page")
        else:
            parts.append(f"still {i['status']}")
        return Note(", ".join(parts) + ".")

    def summary(self) -> View:
        """The incident's row and its response times."""
        if (empty := self._missing()) is not None:
            return empty
        i, t = self.incident, self.timeline_facts
        rows = [
            ("incident", i["incident_id"]),
            ("alert", _alert(i, "")),
            ("service", self.service),
            ("severity", i["severity"]),
            ("status", i["status"]),
            ("paged", _when(i["triggered_at"])),
            ("acknowledged", _when(i.get("acknowledged_at"), i.get("acknowledged_by"))),
            ("resolved", _when(i.get("resolved_at"), i.get("resolved_by"))),
            ("escalation level", incidents.name_or(i.get("escalation_level"), "")),
            ("first bad minute", _when(t.first_bad)),
            ("time to detect", span_text(t.time_to_detect)),
            ("time to acknowledge", span_text(t.time_to_acknowledge)),
            ("time to resolve", span_text(t.time_to_resolve)),
        ]
        return table(pd.DataFrame(rows, columns=["fact", "value"]), "The incident")

    def timeline(self) -> View:
        """Every event from the data, in time order."""
        if (empty := self._missing()) is not None:
            return empty
        return table(
            self.timeline_facts.events,
            "Timeline from the data: changes, breaches, first failures, then the response",
            labels=_TIMELINE_LABELS,
        )

    def timeline_chart(self) -> View:
        """Failed requests per minute of the paged service above the events."""
        if (empty := self._missing()) is not None:
            return empty
        minutes = self._minutes()
        return incident_charts.incident_timeline(
            minutes,
            self.timeline_facts.events,
            start=self.start,
            end=self.end,
            service=self.service,
            title=f"{self.incident_id}: {self.service} failed requests and what happened",
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

    def _minutes(self) -> pd.DataFrame:
        server = self.spans[
            (self.spans["service_name"] == self.service) & (self.spans["span_kind"] == "server")
        ]
        if server.empty:
            return pd.DataFrame(columns=list(incident_charts.MINUTE_COLUMNS))
        minute = server["start_time"].dt.floor(self.step)
        per = server.assign(minute=minute, bad=server["status"] != "ok").groupby("minute")
        out = per.agg(requests=("bad", "size"), failed=("bad", "sum")).reset_index()
        return out

    def impact(self) -> View:
        """Failed and slow requests per service and operation from the first bad minute."""
        if (empty := self._missing()) is not None:
            return empty
        rows = self.impact_rows
        if rows.empty:
            return Note(
                f"No failed or slow request in {self.service} or the services linked to it "
                f"between {_when(self.start)} and {_when(self.end)}."
            )
        return table(rows, self._impact_caption(), labels=_IMPACT_LABELS)

    def _impact_caption(self) -> str:
        rows = self.impact_rows
        services = rows["service_name"].nunique()
        ops = len(rows)
        return (
            f"{int(rows['failed'].sum()):,} failed requests in {services} services and {ops} "
            f"operations, from the first bad minute to the resolution (slow: over the "
            f"lowest latency-SLO threshold of the service; blank where it has none)"
        )

    def budget(self) -> View:
        """Error budget burned by this incident, per SLO of the services it touched."""
        if (empty := self._missing()) is not None:
            return empty
        rows = self.budget_rows
        if rows.empty:
            return Note(self._no_budget_text())
        return table(
            rows,
            "Share of each SLO's whole-period error budget spent between the first bad minute "
            "and the resolution",
            labels=_BUDGET_LABELS,
        )

    def _no_budget_text(self) -> str:
        """Why the budget table is empty: no SLO at all, or SLOs that lost nothing."""
        related = incidents.neighbourhood(self.edges, self.service)
        budgeted = (
            self.slos[
                self.slos["service_name"].isin(related)
                & self.slos["slo_type"].isin(slo.BUDGETED_TYPES)
            ]
            if len(self.slos)
            else self.slos
        )
        if budgeted.empty:
            return (
                f"No budgeted SLO covers {self.service} or the services linked to it: "
                "the budget this incident burned cannot be stated."
            )
        names = ", ".join(sorted(set(budgeted["service_name"].astype(str))))
        return (
            f"The SLOs of {names} lost no event between {_when(self.start)} and {_when(self.end)}."
        )

    def related(self) -> View:
        """Other alerts that fired with this one: same service, linked services, or named."""
        if (empty := self._missing()) is not None:
            return empty
        rows = self.related_rows
        if rows.empty:
            return Note(
                f"No other alert fired within {span_text(RELATED_WINDOW)} of this page on "
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

    def errors_by_service(self) -> View:
        """Failed spans per service in the window against the same hours the day before."""
        if (empty := self._missing()) is not None:
            return empty
        if self.spans.empty:
            return Note(f"No spans between {_when(self.start)} and {_when(self.end)}.")
        now = _error_counts(self.spans)
        before = _error_counts(self.day_before).add_suffix("_day_before")
        both = now.join(before, how="left").reset_index()
        both[["spans_day_before", "failed_day_before"]] = both[
            ["spans_day_before", "failed_day_before"]
        ].fillna(0)  # no span that day: counts are 0, the rate stays blank
        both = both.sort_values(["failed", "spans"], ascending=False, ignore_index=True)
        for column in ("spans", "failed", "spans_day_before", "failed_day_before"):
            both[column] = both[column].astype("int64")
        return table(
            both,
            "Spans and failed spans per service in the incident window and the same hours "
            "the day before",
            labels={"service_name": "service", "error_rate_day_before": "error rate day before"},
        )

    @functools.cached_property
    def _path_change(self) -> pd.DataFrame | Note:
        if self.spans.empty:
            return Note(f"No spans between {_when(self.start)} and {_when(self.end)}.")
        if self.day_before.empty:
            return Note("No spans in the same hours the day before to compare with.")
        return trace_sets.compare_critical_paths(
            trace_sets.clean_window(self.spans), trace_sets.clean_window(self.day_before)
        )

    def critical_path_change(self) -> View:
        """Where request time went: critical-path ms per trace against the day before."""
        if (empty := self._missing()) is not None:
            return empty
        change = self._path_change
        if isinstance(change, Note):
            return change
        return table(
            change.head(10),
            "Critical-path time per trace and operation: the incident window against the same "
            "hours the day before (largest increase first)",
            labels=CHANGE_LABELS,
        )

    def critical_path_chart(self) -> View:
        """The same comparison as paired bars."""
        if (empty := self._missing()) is not None:
            return empty
        change = self._path_change
        if isinstance(change, Note):
            return change
        return charts.path_share_comparison(
            change, title="critical path per trace: incident window vs day before"
        )

    def error_logs(self) -> View:
        """The most frequent error messages of the window, by service."""
        if (empty := self._missing()) is not None:
            return empty
        rows = _top_errors(self.logs)
        if rows.empty:
            return Note(f"No error or fatal log between {_when(self.start)} and {_when(self.end)}.")
        return table(rows, f"The {TOP_LOGS} most frequent error messages of the window")

    def document(self) -> Markdown:
        """The postmortem draft: the Google SRE skeleton, facts filled in, gaps marked."""
        if not self.found:
            return Markdown(f"# Postmortem\n\n*{md_text(self.message)}*\n")
        return Markdown(_draft(self))


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
            message=f"No incident {shown!r} is stored: check the id (obslib triage lists them).",
        )
    row = found.iloc[0].to_dict()
    for column in ("triggered_at", "resolved_at"):  # the window and its margins must fit
        moment = row.get(column)
        if column == "resolved_at" and incidents.missing(moment):
            continue
        if pd.isna(moment) or not EARLIEST + _MARGIN <= moment < LATEST - _MARGIN:
            when = "no time" if pd.isna(moment) else _far(moment)
            return Postmortem(
                incident_id,
                message=(
                    f"Incident {incident_id!r} has {column} {when}, outside the times obslib"
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
    return Postmortem(
        incident_id,
        found=True,
        incident=row,
        start=start,
        end=end,
        spans=load.spans(start, end, json="text", url=url),
        day_before=load.spans(start - DAY, end - DAY, json="text", url=url),
        logs=load.logs(start, end, url=url),
        slos=slos,
        counts=counts,
        nearby=load.incidents(start - RELATED_WINDOW, end + RELATED_WINDOW, url=url),
    )


# -- helpers --------------------------------------------------------------------------------


def _far(moment: pd.Timestamp) -> str:
    """A moment of any year as UTC text (strftime fails before year 1000 and past 9999)."""
    m = moment.tz_convert("UTC")
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d} {m.hour:02d}:{m.minute:02d} UTC"


def _when(moment: object, who: object = None) -> str:
    if moment is None or (not isinstance(moment, str) and pd.isna(moment)):
        return ""
    text = f"{pd.Timestamp(moment).tz_convert('UTC'):%Y-%m-%d %H:%M:%S} UTC"
    return f"{text} by {who}" if not incidents.missing(who) and str(who).strip() else text


def _alert(incident: dict, fallback: str) -> str:
    return incidents.name_or(incident.get("alert_name"), fallback)


def _error_counts(spans: pd.DataFrame) -> pd.DataFrame:
    if spans.empty:
        return pd.DataFrame(columns=["spans", "failed", "error_rate"]).rename_axis("service_name")
    grouped = spans.assign(
        service_name=spans["service_name"].astype(str), bad=spans["status"] != "ok"
    ).groupby("service_name")
    out = grouped.agg(spans=("bad", "size"), failed=("bad", "sum"))
    out["error_rate"] = out["failed"] / out["spans"]
    return out


def _top_errors(logs: pd.DataFrame) -> pd.DataFrame:
    columns = ["service_name", "message", "records", "first", "last"]
    if logs.empty:
        return pd.DataFrame(columns=columns)
    bad = logs[logs["level"].isin(("error", "fatal"))]
    if bad.empty:
        return pd.DataFrame(columns=columns)
    grouped = bad.assign(service_name=bad["service_name"].astype(str)).groupby(
        ["service_name", "message"]
    )
    out = grouped.agg(
        records=("timestamp", "size"), first=("timestamp", "min"), last=("timestamp", "max")
    )
    out = out.reset_index().sort_values(["records", "first"], ascending=[False, True])
    return out.head(TOP_LOGS).reset_index(drop=True)[columns]


def _draft(pm: Postmortem) -> str:
    """The Markdown postmortem (Google SRE book's example layout)."""
    i, t = pm.incident, pm.timeline_facts
    data = i.get("incident_data") if isinstance(i.get("incident_data"), dict) else {}
    events = t.events
    first_bad = t.first_bad
    changes = events[events["kind"] == "change"]
    # changes up to the first bad minute may have triggered it; without one, up to the page
    cut, cut_name = (
        (first_bad, "the first bad minute")
        if first_bad is not None
        else (i["triggered_at"], "the page")
    )
    before = changes[changes["time"] <= cut]
    after = changes[changes["time"] > cut]
    impact = pm.impact_rows
    budget = pm.budget_rows
    related = pm.related_rows
    title = incidents.name_or(data.get("summary"), f"{_alert(i, 'alert')} on {pm.service}")
    incident_id = md_text(i["incident_id"])
    out = [
        f"# Postmortem: {incident_id}, {md_text(title)}",
        "",
        f"**Status:** draft, generated from the data; every {TO_WRITE} needs a person.  ",
        f"**Incident:** {incident_id} ({md_text(i['severity'])}, {md_text(i['status'])})  ",
        f"**Window:** {_when(pm.start)} to {_when(pm.end)}  ",
        f"**Authors:** {TO_WRITE}",
        "",
        "## Summary",
        "",
        f"{md_text(_alert(i, 'An alert'))} paged for {md_text(pm.service)} at "
        f"{_when(i['triggered_at'])}"
        + (f", {span_text(t.time_to_detect)} after the first bad minute" if first_bad else "")
        + (
            f"; resolved {span_text(t.time_to_resolve)} later."
            if t.time_to_resolve is not None
            else "."
        )
        + f" {md_text(_failed_text(impact))}",
        "",
        f"{TO_WRITE} one paragraph in plain words: what users saw and why.",
        "",
        "## Impact",
        "",
        table(impact, pm._impact_caption(), labels=_IMPACT_LABELS).markdown()
        if len(impact)
        else "*No failed or slow request in the paged service or the services linked to it.*",
        "",
        table(
            budget,
            "Error budget burned, per SLO (share of the whole period)",
            labels=_BUDGET_LABELS,
        ).markdown()
        if len(budget)
        else f"*{md_text(pm._no_budget_text())}*",
        "",
        f"{TO_WRITE} customer-facing impact (who, how many, for how long).",
        "",
        "## Root causes",
        "",
        f"{TO_WRITE} the causes, and why they produced this failure.",
    ]
    if data.get("root_cause"):
        out += ["", f"Recorded on the incident: *{md_text(data['root_cause'])}*."]
    top = _top_errors(pm.logs)
    if len(top):
        first = top.iloc[0]
        out += [
            "",
            f'Most frequent error log: "{md_text(first["message"])}" '
            f"({md_text(first['service_name'])}, "
            f"{int(first['records']):,} records).",
        ]
    out += ["", "## Trigger", ""]
    if len(before):
        last = before.iloc[-1]
        out.append(
            f"The last change before {cut_name}: **{md_text(last['what'])}** at "
            f"{_when(last['time'])}. {TO_WRITE} confirm it is the trigger."
        )
    else:
        out.append(f"No deploy-like event in the hour before the page. {TO_WRITE} the trigger.")
    out += ["", "## Resolution", ""]
    facts = []
    if data.get("remediation"):
        facts.append(f"Recorded remediation: *{md_text(data['remediation'])}*.")
    facts += [f"{md_text(r['what'])} at {_when(r['time'])}." for _, r in after.iterrows()]
    if t.time_to_resolve is not None:
        facts.append(
            f"Resolved by {md_text(incidents.name_or(i.get('resolved_by'), 'someone'))} at "
            f"{_when(i['resolved_at'])}, "
            f"{span_text(t.time_to_resolve)} after the page."
        )
    out += [
        " ".join(facts) or f"Not resolved yet ({md_text(i['status'])}).",
        "",
        "## Detection",
        "",
    ]
    if first_bad is not None:
        verdict = "within" if t.time_to_detect < DETECTION_TARGET else "over"
        out.append(
            f"The first bad minute was {_when(first_bad)}; the page came "
            f"{span_text(t.time_to_detect)} later"
            f" ({verdict} the {span_text(DETECTION_TARGET)} target)."
        )
    else:
        out.append("No SLI breach or failing request of the service before the page.")
    if t.time_to_acknowledge is not None:
        out.append(
            f"Acknowledged by {md_text(incidents.name_or(i.get('acknowledged_by'), 'someone'))} "
            f"{span_text(t.time_to_acknowledge)} after the page."
        )
    if len(related):
        names = ", ".join(f"{md_text(r.alert_name)} ({r.relation})" for r in related.itertuples())
        out.append(f"{len(related)} related alerts fired with it: {names}.")
    out += ["", "## Action items", "", "| Action item | Type | Owner | Bug |", "|---|---|---|---|"]
    for item, kind in _suggested_actions(pm):
        out.append(f"| {md_text(item)} | {kind} | {TO_WRITE} | {TO_WRITE} |")
    out.append(f"| {TO_WRITE} | prevent | {TO_WRITE} | {TO_WRITE} |")
    out += [
        "",
        "## Lessons learned",
        "",
        "### What went well",
        "",
        f"- {TO_WRITE}",
        "",
        "### What went wrong",
        "",
        f"- {TO_WRITE}",
        "",
        "### Where we got lucky",
        "",
        f"- {TO_WRITE}",
        "",
        "## Timeline",
        "",
        table(events, "From the data", labels=_TIMELINE_LABELS).markdown(),
        "",
    ]
    return "\n".join(out)


def _failed_text(impact: pd.DataFrame) -> str:
    """``Failed requests: domain-service 2, api-gateway 2 (upstream).``: per service, since
    one user request that failed in two services is counted in both."""
    per = impact.groupby(["service_name", "relation"], sort=False)["failed"].sum()
    per = per[per > 0].sort_values(ascending=False, kind="stable")
    if per.empty:
        return "No request failed."
    parts = [
        f"{service} {int(n):,}" + ("" if relation == "paged" else f" ({relation})")
        for (service, relation), n in per.items()
    ]
    return "Failed requests: " + ", ".join(parts) + "."


def _suggested_actions(pm: Postmortem) -> list[tuple[str, str]]:
    """Action items the data suggests (a person keeps or drops them)."""
    t = pm.timeline_facts
    items = []
    if t.time_to_detect is not None and t.time_to_detect >= DETECTION_TARGET:
        items.append(
            (
                f"Detect faster: {span_text(t.time_to_detect)} from the first bad minute to the "
                f"page (target under {span_text(DETECTION_TARGET)})",
                "detect",
            )
        )
    if len(pm.related_rows):
        items.append(
            (
                f"Group the {len(pm.related_rows) + 1} pages of this incident into one page",
                "mitigate",
            )
        )
    if len(pm.budget_rows) and (pm.budget_rows["burned_pct"] >= 100).any():
        worst = pm.budget_rows.iloc[0]
        items.append(
            (
                f"{worst['service_name']}/{worst['slo_name']} overspent its budget in this "
                f"incident ({worst['burned_pct']:.0f} %): review the release policy",
                "process",
            )
        )
    return items
