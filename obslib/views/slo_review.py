"""Everything the SLO review notebook shows, assembled and tested here.

The review answers, for a window of stored spans (default: the last 30 days of data):
which SLOs are spending their error budget, how fast, which operations spend it, what the
burn-rate alert rules would have paged on in that window (and how that compares with the
incidents people got), and which services have no SLO at all. Every view returns a table, a
chart or a ``Note`` saying why there is nothing, so a notebook cell needs no guard.

Two queries feed it, both aggregated in PostgreSQL: per-minute counts from the longest rule
window before the window (evaluation, burn rates, replay) and hourly counts from the longest
SLO period before it (budget burn-down). Memory grows with buckets, not spans.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import altair as alt
import pandas as pd

from obslib import load, schema, slo
from obslib.charts import slo as slo_charts
from obslib.config import critical_services
from obslib.escape import html_text
from obslib.jobs import slo_evaluation as evaluation
from obslib.slo import replay as slo_replay
from obslib.slo import status as slo_status
from obslib.values import count, positive_duration
from obslib.views import slo_text as wording
from obslib.views.live import LiveView, per_selection, redraw_all
from obslib.views.notes import Note
from obslib.views.tables import Table, table

View = Table | Note | alt.TopLevelMixin
TROUBLE = ("violated", "at_risk")  # the statuses whose SLOs get detail charts
TOP_OPERATIONS = 5

_OVERVIEW_LABELS = {
    "slo": "SLO",
    "slo_type": "type",
    "period": "window",
    "sli": "SLI",
    "target_value": "target",
    "compliance_status": "status",
    "budget_left_pct": "budget left",
    "window_burn": "burn (window)",
    "recent_burn": "burn (1h)",
    "exhaustion": "budget gone at 1h rate",
    "alert": "alert",
}


@dataclass
class SloReview:
    """The SLOs of a window ending at ``end``; ``found`` is False with a ``message`` when an
    SLO detail has nothing to show (no SLO in trouble, none picked)."""

    start: pd.Timestamp
    end: pd.Timestamp
    services: list[str]
    min_events: int = slo.DEFAULT_MIN_EVENTS
    url: str | None = None
    live: bool = False
    slos: pd.DataFrame = field(default_factory=pd.DataFrame)
    counts: pd.DataFrame = field(default_factory=pd.DataFrame)  # per minute
    hourly: pd.DataFrame = field(default_factory=pd.DataFrame)  # per hour, for burn-downs
    result: slo_status.Evaluation | None = None
    replayed: slo_replay.Replay | None = None
    asked: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(0))  # the window asked
    selected: list[str] = field(default_factory=list)  # SLO labels the detail views show
    found: bool = False
    message: str = ""
    views: dict[str, LiveView] = field(default_factory=dict)

    # -- what is in the review -------------------------------------------------------------

    @functools.cached_property
    def rows(self) -> pd.DataFrame:
        """The evaluation at ``end``, one row per SLO, with its ``slo`` label and latency
        threshold (computed once: every section reads it)."""
        keys = ["service_name", "slo_name"]
        frame = self.result.slos.merge(
            self.slos[[*keys, "latency_threshold_ms"]], on=keys, how="left"
        )
        return frame.assign(slo=frame["service_name"] + "/" + frame["slo_name"])

    def in_trouble(self) -> list[str]:
        """SLOs violated or at risk at the end of the window, least budget first."""
        rows = self.rows[self.rows["compliance_status"].isin(TROUBLE)]
        return list(rows.sort_values("error_budget_remaining", kind="stable")["slo"])

    def _definition(self, label: str) -> dict:
        return next(d for d in self.slos.to_dict("records") if slo.slo_label(d) == label)

    def _empty(self) -> Note | None:
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
        known = {slo.slo_label(d) for d in self.slos.to_dict("records")}
        unknown = [x for x in labels if x not in known]
        self.selected = [x for x in labels if x in known]
        self.found = bool(self.selected)
        if unknown:
            self.message = f"No enabled SLO named {', '.join(unknown)}."
        elif not self.found:
            self.message = "No SLO is violated or at risk at the end of the window."

    def picker(self) -> Any:
        """A dropdown over every SLO (in trouble first) that redraws the detail views."""
        if (empty := self._empty()) is not None:
            return empty
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

    def headline(self) -> Note:
        """The review in two sentences: statuses now, what the replay found."""
        if (empty := self._empty()) is not None:
            return empty
        counts = self.rows["compliance_status"].value_counts()
        parts = [
            f"{counts.get(s, 0)} {s.replace('_', ' ')}"
            for s in ("violated", "at_risk", "compliant", slo.NO_DATA)
            if counts.get(s, 0)
        ]
        text = (
            f"{len(self.rows)} SLOs at {self.end:%Y-%m-%d %H:%M} UTC: {', '.join(parts)}."
            f" Replayed over {self._replayed_over()}, the burn-rate rules would have"
            f" paged {len(self.replayed.pages)} time(s) and opened"
            f" {len(self.replayed.firings) - len(self.replayed.pages)} ticket(s)."
        )
        caught = self.replayed.incidents[self.replayed.incidents["caught_by_page"]]
        if len(caught):  # the most severe incident a page caught, the earliest of those
            rank = caught["severity"].map({s: i for i, s in enumerate(schema.SEVERITIES)})
            first = caught.assign(_rank=rank).sort_values(["_rank", "triggered_at"]).iloc[0]
            text += (
                f" Incident {first['incident_id']} would have been paged by"
                f" {first['service_name']}/{first['slo_name']}"
                f" {wording.relative(first['delay_vs_incident'])} its own page."
            )
        return Note(text)

    def _replayed_over(self) -> str:
        said = wording.days(self.end - self.start)
        if self.asked > self.end - self.start:
            said += f" (the data starts {self.start:%Y-%m-%d %H:%M} UTC)"
        return said

    def overview(self) -> View:
        """Every SLO, least error budget left first (Pyrra's list), with its status."""
        if (empty := self._empty()) is not None:
            return empty
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
            f"SLOs at {self.end:%Y-%m-%d %H:%M} UTC, least error budget left first",
            labels=_OVERVIEW_LABELS,
            errors=(r["compliance_status"] == "violated").to_numpy(),
        )

    def rules_note(self) -> Note:
        """Which alert rules do not apply, and which fire while the SLO is met (factor < 1)."""
        if (empty := self._empty()) is not None:
            return empty
        rules = self.replayed.rules
        skipped = rules[~rules["applies"]]
        weak = rules[rules["applies"] & (rules["burn_rate"] < 1)]
        said = [
            "Rules (SRE Workbook, scaled to each SLO's period): page at 14.4x over 1h and 5m"
            " and 6x over 6h and 30m, ticket at 3x over 1d and 2h and 1x over 3d and 6h for a"
            f" 30-day SLO; none fires on fewer than {self.min_events} events in its long window."
        ]
        if len(skipped):
            said.append(
                f"{len(skipped)} rule(s) do not apply: "
                + "; ".join(
                    f"{r['service_name']}/{r['slo_name']} {slo.window_label(r['long_window'])}"
                    f" ({r['reason']})"
                    for r in skipped.to_dict("records")
                )
                + "."
            )
        if len(weak):
            labels = sorted({slo.slo_label(r) for r in weak.to_dict("records")})
            said.append(
                f"{len(weak)} rule(s) of {', '.join(labels)} have a factor below 1: their"
                " period is short for these windows, so they fire while the SLO is being met."
            )
        return Note(" ".join(said))

    # -- per SLO in trouble (they follow the picker) ------------------------------------------

    @per_selection
    def burndown(self) -> View:
        """Error budget left over the window, per selected SLO."""
        made = []
        for label in self.selected:
            d = self._definition(label)
            if d["slo_type"] not in slo.BUDGETED_TYPES:
                continue  # a throughput SLO has no budget to burn down
            # the first day of data is left out: a 30-day window holding an hour of
            # requests swings wildly and says nothing about the budget
            warm_up = min(slo.period(d), pd.Timedelta(days=1))
            measured = slo.evaluate(
                self._hourly_of(d), pd.DataFrame([d]), bucket="1h", warm_up=warm_up
            )
            measured = measured[
                (measured["measurement_timestamp"] > self.start)
                & (measured["measurement_timestamp"] <= self.end)
            ]
            if measured.empty:
                continue
            measured = _lowest_per(measured, self._chart_step())  # a chart keeps ~1,000 points
            at_risk = 100.0 - slo.alert_threshold(d)
            made.append(slo_charts.budget_burndown(measured, title=label, at_risk_below=at_risk))
        return wording.stack(
            made,
            "No hourly measurement of the selected SLO in the window (a throughput SLO has"
            " no error budget).",
        )

    def _chart_step(self) -> str:
        """Hours per chart point: 1, or more past ~40 days, so a line keeps ~1,000 points."""
        return f"{max(1, math.ceil((self.end - self.start) / pd.Timedelta(hours=1000)))}h"

    def _hourly_of(self, d: dict) -> pd.DataFrame:
        return self.hourly[self.hourly["service_name"] == d["service_name"]]

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
            hourly = (
                burn.assign(time=burn["time"].dt.ceil(step))
                .groupby(["window", "time"], as_index=False)["burn_rate"]
                .max()
            )
            rules = slo.alert_rules(one)
            rules = rules[rules["applies"]]
            made.append(
                slo_charts.burn_rate_chart(
                    hourly,
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

    def contributors(self) -> View:
        """The operations behind the bad events of every SLO in trouble."""
        if (empty := self._empty()) is not None:
            return empty
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

    def replay_summary(self) -> View:
        """Per SLO and rule: how often it would have fired in the window."""
        if (empty := self._empty()) is not None:
            return empty
        rules = self.replayed.rules
        rules = rules[rules["applies"]]
        firings = self.replayed.firings
        end = firings["end"].fillna(self.end)
        firing_time = (
            (end - firings["start"])
            .groupby(
                [
                    firings["service_name"],
                    firings["slo_name"],
                    firings["severity"],
                    firings["long_window"],
                ]
            )
            .sum()
        )
        rows = []
        for r in rules.to_dict("records"):
            key = (r["service_name"], r["slo_name"], r["severity"], r["long_window"])
            spent = firing_time.get(key, pd.Timedelta(0))
            rows.append(
                {
                    "slo": f"{r['service_name']}/{r['slo_name']}",
                    "severity": r["severity"],
                    "rule": wording.rule_text(r["long_window"], r["short_window"], r["burn_rate"]),
                    "firings": int(r["firings"]),
                    "held_back": int(r["held_back"]),
                    "firing_time": wording.duration_text(spent) if r["firings"] else "",
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

    def replay_chart(self) -> View:
        """When each SLO's rules fired, against the incidents of its service."""
        if (empty := self._empty()) is not None:
            return empty
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

    def detections(self) -> View:
        """Each incident of a service with SLOs: would a rule have caught it, and when."""
        if (empty := self._empty()) is not None:
            return empty
        inc = self.replayed.incidents
        if inc.empty:
            return Note("No incident of a service with an SLO was triggered in the window.")
        # low-severity incidents no rule caught (flapping alerts, mostly) are counted, not
        # listed: thirty rows of them would bury the few that matter
        quiet = inc[~inc["caught"] & (inc["severity"] == "low")]
        inc = (
            inc.drop(index=quiet.index)
            .assign(_missed=lambda f: ~f["caught"])
            .sort_values(["_missed", "triggered_at"], kind="stable")
            .reset_index(drop=True)
        )
        left_out = ""
        if len(quiet):
            services = ", ".join(sorted(set(quiet["service_name"])))
            left_out = (
                f". Left out: {len(quiet)} low-severity incident(s) no rule caught ({services})"
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
            f"{len(missing)} of {len(covered)} services have no SLO"
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

    # -- recording -------------------------------------------------------------------------------

    def record(self, enabled: bool) -> Note:
        """Store the evaluation at ``end`` (``obslib slo evaluate --record``) when asked."""
        if (empty := self._empty()) is not None:
            return empty
        if not enabled:
            return Note("Not recorded (parameter record = False).")
        done = evaluation.record(self.result, url=self.url)
        return Note(f"Recorded at {self.end:%Y-%m-%d %H:%M} UTC: {done}.")


_DETAIL_VIEWS = ("burndown", "burn_rates")


def _lowest_per(measured: pd.DataFrame, step: str) -> pd.DataFrame:
    """One measurement per ``step``: the one with the least budget left (the worst moment
    stays visible when a long window is drawn coarser)."""
    if step == "1h":
        return measured
    slot = measured["measurement_timestamp"].dt.ceil(step)
    worst = measured.groupby(slot)["error_budget_remaining"].idxmin()
    return measured.loc[worst.sort_index().to_numpy()].reset_index(drop=True)


def _hourly(minutes: pd.DataFrame) -> pd.DataFrame:
    """Per-minute counts summed per hour (the same buckets ``load.slo_counts`` would give
    for "1h": both are aligned to 2000-01-01), so the burn-downs need no second scan."""
    keys = ["service_name", "threshold", "bucket"]
    hourly = minutes.assign(bucket=minutes["bucket"].dt.floor("h"))
    summed = hourly.groupby(keys, dropna=False, sort=False)[["total", "ok", "fast"]].sum()
    return summed.reset_index()[["service_name", "bucket", "total", "ok", "fast", "threshold"]]


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
    min_events = count(min_events, "min_events")
    stop = load.data_end(end, url=url).floor(slo.STEP)
    stored = load.data_range(url=url)
    begin = stop - length
    if stored is not None and begin < stored[0] < stop:  # no point replaying before the data
        begin = stored[0].floor("h")
    review = SloReview(begin, stop, list(services or []), min_events=min_events, url=url, live=live)
    review.asked = length
    review.slos = load.enabled_slos(review.services, url=url)
    slos = review.slos
    rules = slo.alert_rules(slos)
    longest_rule = max([slo.RECENT_BURN, *rules.loc[rules["applies"], "long_window"]])
    minute_from = min(review.start - longest_rule, stop - slo.lookback(slos)).floor("h")
    review.counts = load.slo_counts(slos, minute_from, stop, bucket=slo.STEP, url=url)
    periods = [pd.Timedelta(hours=1), *(slo.period(d) for d in slos.to_dict("records"))]
    hour_from = (review.start - max(periods)).floor("h")
    review.hourly = _hourly(review.counts)  # the minutes' hours, plus a scan for what is older
    if hour_from < minute_from:
        older = load.slo_counts(slos, hour_from, minute_from, bucket="1h", url=url)
        review.hourly = pd.concat([older, review.hourly], ignore_index=True)
    review.result = slo_status.evaluate_at(
        review.counts, slos, stop, bucket=slo.STEP, min_events=min_events
    )
    incidents = load.incidents(review.start, stop, url=url)
    review.replayed = slo_replay.replay(
        review.counts,
        slos,
        incidents,
        review.start,
        stop,
        bucket=slo.STEP,
        min_events=min_events,
    )
    trouble = review.in_trouble() if len(slos) else []
    review._select(trouble[:1] if live else trouble)
    return review
