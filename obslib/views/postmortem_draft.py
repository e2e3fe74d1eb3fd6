"""The postmortem draft: the Google SRE book's postmortem layout as Markdown, filled with one
incident's facts (``Facts``), each place a person must write marked ``[TO WRITE]``.

Presentation only: every number comes from ``obslib.alerts.incidents`` and
``obslib.traces.logs`` through the postmortem view, which also shows the same captions and
sentences. Every stored text in it (names, log lines, the incident's own fields) is escaped
Markdown (``obslib.escape.md_text``): it reads as written and is never markup, in the HTML
report and in ``postmortem.md`` alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from obslib import health
from obslib.alerts import incidents
from obslib.escape import md_code, md_text
from obslib.values import duration_text, plural
from obslib.views.slo_text import coverage_text
from obslib.views.tables import short_text, table

TO_WRITE = "**[TO WRITE]**"  # where the draft needs a person; greppable in the Markdown
# the plan's success criterion for critical issues, the health scorecard's KPI 5
DETECTION_TARGET = pd.Timedelta(seconds=health.TARGETS[health.DETECTION_TIME].threshold)

# what the report page says in place of a table it already shows above the draft
IMPACT_ABOVE = (
    "*User requests, calls and error budget burned: the Impact and Error budget burned"
    " sections above (in postmortem.md as tables).*"
)
TIMELINE_ABOVE = "*The Timeline section above (in postmortem.md as a table).*"

TIMELINE_LABELS = {"time": "time (UTC)", "kind": "event", "what": "what"}
USER_LABELS = {  # alerts.impact.user_impact's rows: user requests, once each
    "service_name": "entry service",
    "operation_name": "operation",
    "first_failure": "first failure",
    "last_failure": "last failure",
}
CALL_LABELS = {  # alerts.incidents.impact: calls, per service (never added up as requests)
    "service_name": "service",
    "operation_name": "operation",
    "first_failure": "first failure",
    "last_failure": "last failure",
}
BUDGET_LABELS = {
    "service_name": "service",
    "slo_name": "SLO",
    "bad": "bad events",
    "events": "events",
    "budget_events": "period budget (events)",
    "burned_pct": "budget burned %",
    "judged_on": "budget judged on",
}


@dataclass(frozen=True, eq=False)  # eq=False: frames do not compare as one bool
class Facts:
    """What the draft states about one incident, all from the data."""

    incident: dict  # its row of ``load.incidents``
    service: str  # the paged service (a sentence's fallback when unknown)
    start: pd.Timestamp  # the window: an hour before the page
    end: pd.Timestamp  # to the resolution (an hour after an open page)
    timeline: incidents.Timeline
    detection: incidents.Detection  # incidents.outage_detection of its outage's first page
    users: incidents.UserImpact  # incidents.user_impact: user requests, each counted once
    impact: pd.DataFrame  # incidents.impact: failed and slow calls per service and operation
    budget: pd.DataFrame  # incidents.incident_budget
    budgeted_services: list[str]  # incidents.budgeted_services: why a budget is empty
    related: pd.DataFrame  # alerts.related_alerts
    top_errors: pd.DataFrame  # logs.top_error_templates, with the day before's records


def _day_before(template: pd.Series) -> str:
    """How a top error template compares with the same hours the day before, in words
    (empty when the facts do not say)."""
    before = template.get("records_day_before")
    if before is None or pd.isna(before):
        return ""
    if int(before) == 0:
        return ", **new**: none the same hours the day before"
    return f", {int(before):,} the same hours the day before"


def document(facts: Facts, *, tables_above: bool = False) -> str:
    """The Markdown postmortem (Google SRE book's example layout).

    ``tables_above``: the draft as the report page shows it, below the report's own Impact,
    Error budget and Timeline sections: their tables are named, not repeated (``postmortem.md``
    stands alone and keeps them)."""
    i, t, d = facts.incident, facts.timeline, facts.detection
    data = i.get("incident_data") if isinstance(i.get("incident_data"), dict) else {}
    first_bad = t.first_bad
    # changes up to the first bad minute may have triggered it; without one, up to the page
    before, after = incidents.changes_around(t, i["triggered_at"])
    cut_name = "the first bad minute" if first_bad is not None else "the page"
    impact, budget, related = facts.impact, facts.budget, facts.related
    over = counted_over(facts)
    title = incidents.name_or(data.get("summary"), f"{alert_name(i, 'alert')} on {facts.service}")
    incident_id = md_text(i["incident_id"])
    out = [
        f"# Postmortem: {incident_id}, {md_text(title)}",
        "",
        f"**Status:** draft, generated from the data; every {TO_WRITE} needs a person.  ",
        f"**Incident:** {incident_id} ({md_text(i['severity'])}, {md_text(i['status'])})  ",
        f"**Window:** {when(facts.start)} to {when(facts.end)}  ",
        f"**Authors:** {TO_WRITE}",
        "",
        "## Summary",
        "",
        f"{md_text(alert_name(i, 'An alert'))} paged for {md_text(facts.service)} at "
        f"{when(i['triggered_at'])}"
        + (
            f", its outage {duration_text(d.time_to_detect)} after the first bad minute"
            if d.time_to_detect is not None
            else ""
        )
        + (
            f"; resolved {duration_text(t.time_to_resolve)} later."
            if t.time_to_resolve is not None
            else "."
        )
        + f" {md_text(users_text(facts.users, over))}",
        "",
        f"{TO_WRITE} one paragraph in plain words: what users saw and why.",
        "",
        "## Impact",
        "",
        *(
            [IMPACT_ABOVE]
            if tables_above
            else [
                table(
                    facts.users.rows, users_caption(facts.users, over), labels=USER_LABELS
                ).markdown()
                if facts.users.affected
                else f"*{md_text(users_text(facts.users, over))}*",
                "",
                table(impact, calls_caption(over), labels=CALL_LABELS).markdown()
                if len(impact)
                else f"*{md_text(no_calls_text(facts.service, over))}*",
                "",
                table(
                    budget_display(budget),
                    "Error budget burned, per SLO (share of the period's budget, or of the "
                    "part of the period the stored data covers)",
                    labels=BUDGET_LABELS,
                ).markdown()
                if len(budget)
                else f"*{md_text(no_budget_text(facts))}*",
            ]
        ),
        "",
        f"{TO_WRITE} customer-facing impact (who, how many, for how long).",
        "",
        "## Root causes",
        "",
        f"{TO_WRITE} the causes, and why they produced this failure.",
    ]
    if data.get("root_cause"):
        out += ["", f"Recorded on the incident: *{md_text(data['root_cause'])}*."]
    if len(facts.top_errors):
        first = facts.top_errors.iloc[0]
        out += [
            "",
            f"Most frequent error log template: {md_code(short_text(first['template'])[0])} "
            f"({md_text(first['service_name'])}, "
            f"{int(first['records']):,} records{_day_before(first)}; first: "
            f'"{md_text(short_text(first["sample"])[0])}").',
        ]
    out += ["", "## Trigger", ""]
    if len(before):
        last = before.iloc[-1]
        out.append(
            f"The last change before {cut_name}: **{md_text(last['what'])}** at "
            f"{when(last['time'])}. {TO_WRITE} confirm it is the trigger."
        )
    else:
        out.append(f"No deploy-like event in the hour before the page. {TO_WRITE} the trigger.")
    out += ["", "## Resolution", ""]
    facts_said = []
    if data.get("remediation"):
        facts_said.append(f"Recorded remediation: *{md_text(data['remediation'])}*.")
    facts_said += [f"{md_text(r['what'])} at {when(r['time'])}." for _, r in after.iterrows()]
    if t.time_to_resolve is not None:
        facts_said.append(
            f"Resolved by {md_text(incidents.name_or(i.get('resolved_by'), 'someone'))} at "
            f"{when(i['resolved_at'])}, "
            f"{duration_text(t.time_to_resolve)} after the page."
        )
    out += [
        " ".join(facts_said) or f"Not resolved yet ({md_text(i['status'])}).",
        "",
        "## Detection",
        "",
    ]
    if d.time_to_detect is not None:
        verdict = "within" if d.time_to_detect < DETECTION_TARGET else "over"
        lead = "" if d.lead == i["incident_id"] else f" (first page: {md_text(d.lead)})"
        out.append(
            f"The outage's first bad minute ({d.kind}) was {when(d.first_bad)}; its first "
            f"page{lead} came {duration_text(d.time_to_detect)} later"
            f" ({verdict} the {duration_text(DETECTION_TARGET)} target)."
        )
    else:
        out.append(f"No {d.kind} SLI breach or failing request before the outage's first page.")
    if t.time_to_acknowledge is not None:
        out.append(
            f"Acknowledged by {md_text(incidents.name_or(i.get('acknowledged_by'), 'someone'))} "
            f"{duration_text(t.time_to_acknowledge)} after the page."
        )
    if len(related):
        names = ", ".join(f"{md_text(r.alert_name)} ({r.relation})" for r in related.itertuples())
        out.append(f"{plural(len(related), 'related alert')} fired with it: {names}.")
    out += ["", "## Action items", "", "| Action item | Type | Owner | Bug |", "|---|---|---|---|"]
    for item, kind in suggested_actions(facts):
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
        TIMELINE_ABOVE
        if tables_above
        else table(t.events, "From the data", labels=TIMELINE_LABELS).markdown(),
        "",
    ]
    return "\n".join(out)


# -- sentences the view shows too -----------------------------------------------------------


def when(moment: object, who: object = None) -> str:
    """A moment as ``2026-11-14 14:06:00 UTC`` (``… by alice`` with a person); blank for
    none."""
    if moment is None or (not isinstance(moment, str) and pd.isna(moment)):
        return ""
    text = f"{pd.Timestamp(moment).tz_convert('UTC'):%Y-%m-%d %H:%M:%S} UTC"
    return f"{text} by {who}" if not incidents.missing(who) and str(who).strip() else text


def alert_name(incident: dict, fallback: str) -> str:
    """The incident's alert, or ``fallback`` when it names none."""
    return incidents.name_or(incident.get("alert_name"), fallback)


def counted_over(facts: Facts) -> str:
    """Where the impact is counted: ``from the first bad minute to the resolution`` (without
    a first bad minute, from an hour before the page; while open, to an hour after it)."""
    since = "the first bad minute" if facts.timeline.first_bad is not None else None
    resolved = not incidents.missing(facts.incident.get("resolved_at"))
    return (
        f"from {since or 'an hour before the page'} to "
        f"{'the resolution' if resolved else 'an hour after the page'}"
    )


def users_text(users: incidents.UserImpact, over: str) -> str:
    """``User requests from … : 12 of 74 failed, 60 more were slow.``: each request once,
    at the service it entered (``alerts.impact``'s rule)."""
    if not users.requests:
        return f"No user request entered {over}."
    unjudged = users.rows["slow_over_ms"].isna().all()
    if not users.affected:
        said = f"User requests {over}: none of {users.requests:,} failed"
        return said + (" (no latency SLO says what slow is)." if unjudged else " or was slow.")
    said = f"User requests {over}: {users.failed:,} of {users.requests:,} failed"
    if unjudged:
        return said + " (no latency SLO of the services they entered says what slow is)."
    return said + f", {users.slow:,} more were slow."


def users_short(users: incidents.UserImpact) -> str:
    """``12 failed, 60 more slow, of 74``: the summary table's cell."""
    if not users.requests:
        return "none"
    if users.rows["slow_over_ms"].isna().all():  # nobody said what slow is
        return f"{users.failed:,} failed, of {users.requests:,} (no latency SLO)"
    if not users.affected:
        return f"none failed or slow, of {users.requests:,}"
    return f"{users.failed:,} failed, {users.slow:,} more slow, of {users.requests:,}"


def users_caption(users: incidents.UserImpact, over: str) -> str:
    """The user-request table's caption: the totals, counted once, and what slow means."""
    none = users.without_latency_slo
    unknown = f"; {', '.join(none)} {'has' if len(none) == 1 else 'have'} none: failures only"
    return (
        f"{users.requests:,} user requests {over}, each counted once at the service it "
        f"entered (its first server span): {users.failed:,} failed, {users.slow:,} more were "
        f"slow (over the entry service's latency SLO, the slow-over column"
        f"{unknown if none else ''})"
    )


def calls_caption(over: str) -> str:
    """The calls table's caption: calls, per service, never to be added up as requests."""
    return (
        f"Failed and slow calls per service and operation {over}, in the paged service and "
        "the services linked to it: one user request makes a call in each service it passes "
        "through, so calls do not add up to requests (slow: over that service's own "
        "latency SLO, the slow-over column; blank where it has none)"
    )


def no_calls_text(service: str, over: str) -> str:
    """Why the calls table is empty."""
    return f"No failed or slow call in {service} or the services linked to it {over}."


def no_budget_text(facts: Facts) -> str:
    """Why the budget table is empty: no SLO at all, or SLOs that lost nothing."""
    if not facts.budgeted_services:
        return (
            f"No budgeted SLO covers {facts.service} or the services linked to it: "
            "the budget this incident burned cannot be stated."
        )
    names = ", ".join(facts.budgeted_services)
    return f"The SLOs of {names} lost no event between {when(facts.start)} and {when(facts.end)}."


def suggested_actions(facts: Facts) -> list[tuple[str, str]]:
    """Action items the data suggests (a person keeps or drops them)."""
    t = facts.detection
    items = []
    if t.time_to_detect is not None and t.time_to_detect >= DETECTION_TARGET:
        items.append(
            (
                f"Detect faster: {duration_text(t.time_to_detect)} from the first bad minute "
                f"to the page (target under {duration_text(DETECTION_TARGET)})",
                "detect",
            )
        )
    if len(facts.related):
        items.append(
            (
                f"Group the {len(facts.related) + 1} pages of this incident into one page",
                "mitigate",
            )
        )
    over = incidents.overspent(facts.budget)
    if len(over):
        worst = over.iloc[0]
        items.append(
            (
                f"{worst['service_name']}/{worst['slo_name']} overspent its budget in this "
                f"incident ({worst['burned_pct']:.0f} %): review the release policy",
                "process",
            )
        )
    return items


def budget_display(budget: pd.DataFrame) -> pd.DataFrame:
    """``incidents.incident_budget`` rows for reading: ``judged_on`` says how much of each
    SLO's period the budget was judged on ("whole period", or "12.6 of 30 days of data")
    in place of the ``period`` and ``covered`` columns."""
    shown = budget.drop(columns=["period", "covered"], errors="ignore")
    if "covered" in budget.columns:
        shown["judged_on"] = [
            coverage_text(c, p) or "whole period"
            for c, p in zip(budget["covered"], budget["period"], strict=True)
        ]
    return shown
