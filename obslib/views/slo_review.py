"""Everything the SLO review notebook shows, assembled and tested here.

The review answers, for a window of stored spans (default: the last 30 days of data):
which SLOs are spending their error budget, how fast, which operations spend it, what the
burn-rate alert rules would have paged on in that window (and how that compares with the
incidents people got), and which services have no SLO at all. Every view returns a table, a
chart or a ``Note`` saying why there is nothing, so a notebook cell needs no guard.

Two queries feed it, both aggregated in PostgreSQL and planned by ``slo.read_plan`` (as
``obslib slo evaluate`` plans its own): per-minute counts from the longest rule window before
the window (evaluation, burn rates, replay) and hourly counts from the longest SLO period
before it (budget burn-down). Memory grows with buckets, not spans. The review is built once
(``review_slos``); the maths is in ``obslib.slo``, the recording in
``obslib.jobs.slo_evaluation.record_review``: this module arranges what they give.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import altair as alt
import pandas as pd

from obslib import load, slo
from obslib.charts import slo as slo_charts
from obslib.config import critical_services
from obslib.escape import html_text
from obslib.slo import replay as slo_replay
from obslib.slo import status as slo_status
from obslib.values import count, plural, positive_duration
from obslib.views import slo_text as wording
from obslib.views.live import LiveView, per_selection, redraw_all
from obslib.views.notes import Note, unless_empty
from obslib.views.tables import Table, table

View = Table | Note | alt.TopLevelMixin
TOP_OPERATIONS = 5

_OVERVIEW_LABELS = {
    "slo": "SLO",
    "slo_type": "type",
    "period": "window",
    "sli": "SLI",
    "target_value": "target",
    "compliance_status": "status",
    "budget_left_pct": "budget left",
    "worst_budget_pct": "worst budget left (window)",
    "data": "budget judged on",
    "breached": "breached in window",
    "window_burn": "burn (window)",
    "recent_burn": "burn (1h)",
    "exhaustion": "budget gone at 1h rate",
    "alert": "alert",
}


@dataclass
class Selection:
    """The SLOs the detail views show, and what to say when none: the one part of a review
    that changes after it is built (the JupyterLab picker sets it)."""

    labels: list[str] = field(default_factory=list)
    message: str = ""


@dataclass(frozen=True, eq=False)
class SloReview:
    """The SLOs of the window ``(start, end]``, built once by ``review_slos`` from what it
    loaded and computed; only ``picked`` (the SLOs the detail views show) changes."""

    start: pd.Timestamp
    end: pd.Timestamp
    asked: pd.Timedelta  # the window asked for (longer than end - start before the data)
    services: tuple[str, ...]
    min_events: int
    url: str | None
    live: bool
    objectives: slo.Objectives  # the enabled SLOs, checked, with their alert rules
    counts: pd.DataFrame  # per minute
    hourly: pd.DataFrame  # per hour, for burn-downs
    result: slo_status.Evaluation
    replayed: slo_replay.Replay
    rows: pd.DataFrame  # the evaluation at ``end`` with each SLO's label, threshold, its
    # breaches in the window, worst budget left in it and the share of its period covered
    trouble: tuple[str, ...]  # at risk or violated at ``end``, then breached in the window
    data_start: pd.Timestamp | None = None  # the first stored span
    picked: Selection = field(default_factory=Selection)
    views: dict[str, LiveView] = field(default_factory=dict)

    # -- what is in the review -------------------------------------------------------------

    @property
    def slos(self) -> pd.DataFrame:
        """The enabled SLO definitions reviewed."""
        return self.objectives.frame

    @property
    def selected(self) -> list[str]:
        """The SLO labels the detail views show."""
        return self.picked.labels

    @property
    def found(self) -> bool:
        return bool(self.picked.labels)

    @property
    def message(self) -> str:
        return self.picked.message

    def in_trouble(self) -> list[str]:
        """SLOs violated or at risk at the end of the window (least budget first), then
        every other SLO that breached in the window (``slo.replay.in_trouble``)."""
        return list(self.trouble)

    def _definition(self, label: str) -> dict:
        return next(d for d in self.objectives.definitions if slo.slo_label(d) == label)

    def empty_note(self) -> Note | None:
        """Why the review has nothing to show (no enabled SLO), or None."""
        if self.slos.empty:
            which = f" for {', '.join(self.services)}" if self.services else ""
            return Note(f"No enabled SLO{which}: define some with `obslib slo apply FILE.yaml`.")
        return None

    # -- choosing the SLO (JupyterLab) -----------------------------------------------------

    def pick(self, label: str) -> list[str]:
        """Show another SLO in the detail views and redraw them; returns the views redrawn."""
        self._select([label] if label else [])
        return redraw_all(self.views)

    def _select(self, labels: list[str]) -> None:
        chosen = _selection(self.objectives, labels)
        self.picked.labels, self.picked.message = chosen.labels, chosen.message

    @unless_empty
    def picker(self) -> Any:
        """A dropdown over every SLO (in trouble first) that redraws the detail views."""
        if not self.live:
            shown = ", ".join(self.selected) or "none"
            return Note(
                "The SLO picker works when the notebook runs in JupyterLab; this report "
                f"shows every SLO in trouble ({shown})."
            )
        import ipywidgets as widgets

        trouble = self.in_trouble()
        rest = [x for x in self.rows.sort_values("slo")["slo"] if x not in trouble]
        status = dict(zip(self.rows["slo"], self.rows["compliance_status"], strict=True))
        options = [(f"{label}  ({status[label]})", label) for label in [*trouble, *rest]]
        picker = widgets.Dropdown(
            options=options,
            value=self.selected[0] if self.selected else None,
            description="SLO",
            layout=widgets.Layout(width="95%"),
        )
        said = widgets.HTML("Picking an SLO redraws: " + ", ".join(_DETAIL_VIEWS))

        def show(change: dict) -> None:
            redrawn = self.pick(change["new"])
            shown = html_text(", ".join(self.selected))  # SLO names come from the database
            said.value = f"Showing {shown}: redrew {len(redrawn)} views."

        picker.observe(show, names="value")
        return widgets.VBox([picker, said])

    # -- the overview ------------------------------------------------------------------------

    @unless_empty
    def headline(self) -> Note:
        """The review in two sentences: statuses now, what the replay found."""
        counts = slo_status.status_counts(self.result.slos)
        parts = [f"{n} {status.replace('_', ' ')}" for status, n in counts.items()]
        breached = int((self.rows["breaches"] > 0).sum())
        text = (
            f"{len(self.rows)} SLOs at {self.end:%Y-%m-%d %H:%M} UTC: {', '.join(parts)};"
            f" {breached} breached in the window."
            f" Replayed over {self._replayed_over()}, the burn-rate rules would have"
            f" paged {plural(len(self.replayed.pages), 'time')} and opened"
            f" {plural(len(self.replayed.firings) - len(self.replayed.pages), 'ticket')}."
        )
        first = slo_replay.worst_page_catch(self.replayed.incidents)
        if first is not None:
            text += (
                f" Incident {first['incident_id']} would have been paged by"
                f" {first['service_name']}/{first['slo_name']}"
                f" {wording.relative(first['delay_vs_incident'])} its own page."
            )
        return Note(text)

    def _replayed_over(self) -> str:
        said = wording.duration_text(self.end - self.start)
        if self.asked > self.end - self.start:
            said += f" (the data starts {self.start:%Y-%m-%d %H:%M} UTC)"
        return said

    @unless_empty
    def overview(self) -> View:
        """Every SLO, least error budget left first (Pyrra's list), with its status."""
        r = self.rows.sort_values(["error_budget_remaining", "slo"], kind="stable")
        shown = pd.DataFrame(
            {
                "slo": r["slo"],
                "slo_type": r["slo_type"],
                "period": [slo.window_label(w) for w in r["window"]],
                "sli": [wording.sli_text(d) for d in r.to_dict("records")],
                "target_value": [wording.target_text(d) for d in r.to_dict("records")],
                "compliance_status": r["compliance_status"].str.replace("_", " "),
                "budget_left_pct": r["error_budget_remaining"],
                "worst_budget_pct": r["worst_budget"],
                "data": [
                    wording.coverage_text(c, w)
                    for c, w in zip(r["covered"], r["window"], strict=True)
                ],
                "breached": [wording.breach_text(v) for v in r["intervals"]],
                "window_burn": [wording.burn_text(v) for v in r["burn_rate"]],
                "recent_burn": [wording.burn_text(v) for v in r["recent_burn_rate"]],
                "exhaustion": [wording.exhaustion_text(d, self.end) for d in r.to_dict("records")],
                "alert": [
                    d["firing"] or ("yes" if d["should_alert"] else "")
                    for d in r.to_dict("records")
                ],
            }
        )
        return table(
            shown,
            f"SLOs at {self.end:%Y-%m-%d %H:%M} UTC, least error budget left first; the"
            " worst budget left and the breaches (any burn-rate rule firing) over"
            f" {self._replayed_over()}; a budget judged on less than its period says how"
            " much data it had",
            labels=_OVERVIEW_LABELS,
            errors=(r["compliance_status"] == "violated").to_numpy(),
        )

    @unless_empty
    def rules_note(self) -> Note:
        """The rule table in one sentence, and which rules do not apply and why."""
        rules = self.replayed.rules
        skipped = rules[~rules["applies"]]
        said = [
            "Rules (SRE Workbook): page at 14.4x over 1h and 5m and 6x over 6h and 30m,"
            " ticket at 3x over 1d and 2h and 1x over 3d and 6h for a 30d SLO (a 28d one:"
            " Sloth's google-28d); for other periods the factors stay and the windows scale"
            " with the period, rounded to whole minutes (as Pyrra does). A rule fires when"
            " both windows burn over its factor, with at least"
            f" {self.min_events} events in each (a quiet service's short window is read"
            " over twice, four times … its length, the first that holds that many, at most"
            " the long window: the same in the exported Prometheus rules)."
        ]
        if len(skipped):
            said.append(
                f"{plural(len(skipped), 'rule')}"
                f" {'does' if len(skipped) == 1 else 'do'} not apply: "
                + "; ".join(
                    f"{r['service_name']}/{r['slo_name']} {r['burn_rate']:.3g}x ({r['reason']})"
                    for r in skipped.to_dict("records")
                )
                + "."
            )
        return Note(" ".join(said))

    # -- per SLO in trouble (they follow the picker) ------------------------------------------

    @per_selection
    def burndown(self) -> View:
        """Error budget left over the window, per selected SLO."""
        made = []
        for label in self.selected:
            d = self._definition(label)
            measured = slo_status.budget_burndown(
                self.hourly, d, self.start, self.end, step=self._chart_step()
            )
            if measured.empty:
                continue  # a throughput SLO has no budget to burn down
            at_risk = 100.0 - slo.alert_threshold(d)
            title = label
            partial = wording.coverage_text(
                slo_status.period_covered(d, self.end, self.data_start), slo.period(d)
            )
            if partial:
                title += f" ({partial})"
            made.append(slo_charts.budget_burndown(measured, title=title, at_risk_below=at_risk))
        return wording.stack(
            made,
            "No hourly measurement of the selected SLO in the window (a throughput SLO has"
            " no error budget).",
        )

    def _chart_step(self) -> str:
        """Hours per chart point: 1, or more past ~40 days, so a line keeps ~1,000 points."""
        return f"{max(1, math.ceil((self.end - self.start) / pd.Timedelta(hours=1000)))}h"

    @per_selection
    def burn_rates(self) -> View:
        """Burn rate over each rule's long window (maximum per hour, or per few hours for
        windows past ~40 days: a chart stays near 1,000 points per line), thresholds drawn."""
        made = []
        for label in self.selected:
            d = self._definition(label)
            one = pd.DataFrame([d])
            burn = slo_status.burn_rates(self.counts, one, self.start, self.end, bucket=slo.STEP)
            if burn.empty:
                continue
            step = self._chart_step()
            rules = self.objectives.applicable(d)
            made.append(
                slo_charts.burn_rate_chart(
                    slo_status.peak_burn(burn, step),
                    pd.DataFrame(
                        {
                            "severity": rules["severity"],
                            "window": [slo.window_label(w) for w in rules["long_window"]],
                            "burn_rate": rules["burn_rate"],
                        }
                    ),
                    title=f"{label} (maximum per {step})",
                )
            )
        return wording.stack(made, "No alert rule applies to the selected SLO (a throughput SLO).")

    # -- who spends the budget -----------------------------------------------------------------

    @unless_empty
    def contributors(self) -> View:
        """The operations behind the bad events of every SLO in trouble."""
        budgeted = set(self.rows.loc[self.rows["slo_type"].isin(slo.BUDGETED_TYPES), "slo"])
        trouble = [label for label in self.in_trouble() if label in budgeted]
        if not trouble:
            return Note(
                "No SLO with an error budget is violated or at risk, so no operation is"
                " spending budget."
            )
        frames = []
        for label in trouble:
            d = self._definition(label)
            threshold = d.get("latency_threshold_ms") if d["slo_type"] == "latency" else None
            ops = load.operation_counts(
                self.end - slo.period(d),
                self.end,
                services=[d["service_name"]],
                latency_threshold_ms=None if pd.isna(threshold) else threshold,
                url=self.url,
            )
            top = slo_status.contributors(ops, d, top=TOP_OPERATIONS)
            frames.append(top.assign(slo=label, bad_kind=wording.bad_kind(d)))
        out = pd.concat(frames, ignore_index=True)
        if out.empty:
            return Note("The SLOs in trouble have no bad events left in their windows.")
        shown = out[["slo", "operation_name", "bad_kind", "total", "bad", "bad_percent", "share"]]
        return table(
            shown.rename(columns={"bad_percent": "bad_pct"}).assign(share=shown["share"] / 100),
            f"Top {TOP_OPERATIONS} operations by bad events, per SLO in trouble (each over its"
            " own window)",
            labels={
                "slo": "SLO",
                "operation_name": "operation",
                "bad_kind": "bad means",
                "total": "requests",
                "bad": "bad",
                "bad_pct": "bad of its requests",
                "share": "share of the SLO's bad",
            },
        )

    # -- the replay -----------------------------------------------------------------------------

    @unless_empty
    def replay_summary(self) -> View:
        """Per SLO and rule: how often it would have fired in the window."""
        rules = self.replayed.rules
        spent = self.replayed.firing_time
        rows = []
        for i, r in rules[rules["applies"]].iterrows():
            rows.append(
                {
                    "slo": f"{r['service_name']}/{r['slo_name']}",
                    "severity": r["severity"],
                    "rule": wording.rule_text(r["long_window"], r["short_window"], r["burn_rate"]),
                    "firings": int(r["firings"]),
                    "held_back": int(r["held_back"]),
                    "firing_time": wording.duration_text(spent[i]) if r["firings"] else "",
                }
            )
        return table(
            pd.DataFrame(rows),
            f"Burn-rate rules replayed over {self._replayed_over()}"
            f" (held back: intervals the {self.min_events}-event minimum kept quiet)",
            labels={
                "slo": "SLO",
                "held_back": "held back",
                "firing_time": "time firing",
            },
        )

    @unless_empty
    def replay_chart(self) -> View:
        """When each SLO's rules fired, against the incidents of its service."""
        firings = self.replayed.firings
        if firings.empty:
            return Note(
                f"No burn-rate rule fired between {self.start:%Y-%m-%d %H:%M} and"
                f" {self.end:%Y-%m-%d %H:%M} UTC."
            )
        shown = pd.DataFrame(
            {
                "slo": firings["service_name"] + " / " + firings["slo_name"],
                "severity": firings["severity"],
                "rule": [
                    wording.rule_text(r["long_window"], r["short_window"], r["threshold"])
                    for r in firings.to_dict("records")
                ],
                "start": firings["start"],
                "end": firings["end"],
            }
        )
        incidents = self.replayed.incidents
        return slo_charts.replay_timeline(
            shown,
            incidents[["service_name", "incident_id", "triggered_at", "severity"]],
            start=self.start,
            end=self.end,
            title="burn-rate rules replayed, with the incidents people got",
        )

    @unless_empty
    def detections(self) -> View:
        """Each incident of a service with SLOs: would a rule have caught it, and when."""
        if self.replayed.incidents.empty:
            return Note("No incident of a service with an SLO was triggered in the window.")
        inc, quiet = slo_replay.notable_incidents(self.replayed.incidents)
        left_out = ""
        if len(quiet):
            services = ", ".join(sorted(set(quiet["service_name"])))
            left_out = (
                f". Left out: {plural(len(quiet), 'low-severity incident')} no rule caught"
                f" ({services})"
            )
        if inc.empty:
            return Note(f"No incident above low severity in the window{left_out}.")
        shown = pd.DataFrame(
            {
                "incident_id": inc["incident_id"],
                "service_name": inc["service_name"],
                "severity": inc["severity"],
                "triggered_at": inc["triggered_at"],
                "caught_by": [
                    f"{r['slo_name']} ({r['replay_severity']})" if r["caught"] else "not caught"
                    for r in inc.to_dict("records")
                ],
                "replay_fired_at": inc["replay_start"],
                "versus_page": [wording.relative(v) for v in inc["delay_vs_incident"]],
                "first_bad_minute": inc["first_bad_minute"],
            }
        )
        return table(
            shown,
            "Incidents of services with SLOs, caught ones first: the replayed rule that caught"
            " each (pages before tickets) and its delay against the page people got" + left_out,
            labels={
                "incident_id": "incident",
                "service_name": "service",
                "triggered_at": "paged at",
                "caught_by": "caught by SLO rule",
                "replay_fired_at": "rule fired at",
                "versus_page": "rule vs page",
                "first_bad_minute": "first bad minute",
            },
            errors=(~inc["caught"]).to_numpy(),
        )

    # -- coverage --------------------------------------------------------------------------------

    def coverage(self) -> View:
        """Services seen in the window's spans without an SLO; critical ones first."""
        seen = load.services(self.start, self.end, url=self.url)
        all_slos = load.slos(url=self.url)
        covered = slo_status.coverage(seen, all_slos, critical_services())
        if covered.empty:
            return Note("No spans in the window and no critical service configured.")
        missing = covered[~covered["covered"]]
        critical_missing = missing[missing["critical"]]
        caption = (
            f"{len(missing)} of {plural(len(covered), 'service')}"
            f" {'has' if len(missing) == 1 else 'have'} no SLO"
            + (
                f", {len(critical_missing)} of them critical"
                f" ({', '.join(critical_missing['service_name'])})"
                if len(critical_missing)
                else "; every critical service has one"
            )
            + " (critical: $OBSLIB_CRITICAL_SERVICES or the default list)"
        )
        return table(
            covered,
            caption,
            labels={"service_name": "service", "spans": "spans in window"},
            errors=(~covered["covered"] & covered["critical"]).to_numpy(),
        )


_DETAIL_VIEWS = ("burndown", "burn_rates")


def _selection(objectives: slo.Objectives, labels: list[str]) -> Selection:
    """The SLOs of ``labels`` the review knows, or what to say instead."""
    known = {slo.slo_label(d) for d in objectives.definitions}
    unknown = [x for x in labels if x not in known]
    chosen = [x for x in labels if x in known]
    if unknown:
        return Selection(chosen, f"No enabled SLO named {', '.join(unknown)}.")
    if not chosen:
        return Selection(
            chosen, "No SLO is violated or at risk at the end of the window, nor breached in it."
        )
    return Selection(chosen)


def review_slos(
    window: str = "30d",
    end: str = "",
    services: list[str] | str | None = None,
    *,
    min_events: int = slo.DEFAULT_MIN_EVENTS,
    url: str | None = None,
    live: bool = False,
) -> SloReview:
    """Load and evaluate the SLOs of ``services`` (empty: all) over ``window`` up to ``end``
    (empty: the end of the stored data), replay their alert rules, and pick the SLOs in
    trouble for the detail views. ``live=True`` (JupyterLab) makes those follow a picker."""
    length = positive_duration(window)
    if isinstance(services, str):
        services = [s.strip() for s in services.split(",") if s.strip()]
    services = tuple(services or ())
    min_events = count(min_events, "min_events")
    stop = load.data_end(end, url=url)
    stored = load.data_range(url=url)
    data_start = None if stored is None else stored[0]
    checked = slo.objectives(load.enabled_slos(list(services), url=url))
    plan = slo.read_plan(checked, stop, window=length, data_start=data_start)
    counts = load.slo_counts(checked.frame, plan.minutes_from, plan.end, bucket=slo.STEP, url=url)
    older = plan.older_hours  # the hours before the minutes (their own hours are summed)
    hourly = slo.hourly_counts(
        counts,
        None if older is None else load.slo_counts(checked.frame, *older, bucket="1h", url=url),
    )
    result = slo_status.evaluate_at(
        counts, checked, plan.end, bucket=slo.STEP, min_events=min_events
    )
    incidents = load.incidents(plan.start, plan.end, url=url)
    replayed = slo_replay.replay(
        counts, checked, incidents, plan.start, plan.end, bucket=slo.STEP, min_events=min_events
    )
    rows = slo_replay.review_rows(result, checked, hourly, replayed, data_start)
    trouble = slo_replay.in_trouble(result.slos, replayed)
    return SloReview(
        start=plan.start,
        end=plan.end,
        asked=length,
        services=services,
        min_events=min_events,
        url=url,
        live=live,
        objectives=checked,
        counts=counts,
        hourly=hourly,
        result=result,
        replayed=replayed,
        rows=rows,
        trouble=tuple(trouble),
        data_start=data_start,
        picked=_selection(checked, trouble[:1] if live else trouble),
    )
