"""The SLO review's view module on the demo: every section displays in every case."""

from __future__ import annotations

import altair as alt
import pytest

from obslib.demo import events
from obslib.errors import UsageError
from obslib.values import plural
from obslib.views import slo_review
from obslib.views.live import LiveView
from obslib.views.notes import Note
from obslib.views.tables import Table
from tests.ids import sid, tid

SECTIONS = (
    "headline",
    "overview",
    "rules_note",
    "picker",
    "burndown",
    "burn_rates",
    "contributors",
    "replay_summary",
    "replay_chart",
    "detections",
    "coverage",
)


@pytest.fixture(scope="module")
def review(demo_db):
    url, _ = demo_db
    return slo_review.review_slos("30d", "2026-11-16T00:00:00Z", url=url)


def _said(shown: Table | Note | alt.TopLevelMixin) -> str:
    """What a section says in words: a note's text, a table's caption, a chart's alt text."""
    if isinstance(shown, Note):
        return shown.text
    if isinstance(shown, Table):
        return shown.caption
    return shown.to_dict()["description"]


MAIN = events.main_incident_id()
CHART = alt.TopLevelMixin
# What each section of the demo's review says (the demo at 150,000 spans): its kind and a
# sentence it must hold.
SAID = [
    ("headline", Note, "8 SLOs at 2026-11-16 00:00 UTC: 1 violated, 7 compliant; 6 breached in"
     " the window. Replayed over 14 d (the data starts 2026-11-02 00:00 UTC), the burn-rate"
     " rules would have paged 50 times and opened 51 tickets."),
    ("headline", Note, f"Incident {MAIN} would have been paged by"
     " domain-service/availability 3 min after its own page."),
    ("overview", Table, "SLOs at 2026-11-16 00:00 UTC, least error budget left first"),
    ("rules_note", Note, "2 rules do not apply: domain-service/availability 14.4x (its short"
     " window (5m x 1d/30d = 10s) rounds below the 1m SLI bucket)"),
    ("picker", Note, "this report shows every SLO in trouble (auth-service/latency-p99-25ms,"
     " api-gateway/latency-p99-300ms, campaign-service/availability, api-gateway/availability,"
     " domain-service/latency-p99-400ms, domain-service/availability)."),
    ("burndown", CHART, "Error budget burn-down for auth-service/latency-p99-25ms: 100.0 %"
     " remaining on 2026-11-03 01:00, -24.6 % on 2026-11-16 00:00"),
    ("burn_rates", CHART, "Burn rate of auth-service/latency-p99-25ms (maximum per 1h) on a"
     " log axis, highest per window: 14m 100\N{MULTIPLICATION SIGN}"),
    ("burndown", CHART, "Error budget burn-down for api-gateway/availability (14 of 30 days of"
     " data)"),
    ("overview", Table, "a budget judged on less than its period says how much data it had"),
    ("contributors", Table, "Top 5 operations by bad events, per SLO in trouble"),
    ("replay_summary", Table, "Burn-rate rules replayed over 14 d (the data starts"
     " 2026-11-02 00:00 UTC) (held back: intervals the 10-event minimum kept quiet)"),
    ("replay_chart", CHART, "101 firings on 6 SLOs (50 pages, 51 tickets, 1 still firing at"
     " the end) and 38 incidents"),
    ("detections", Table, "Left out: 29 low-severity incidents no rule caught (dns-resolver)"),
    ("coverage", Table, "4 of 9 services have no SLO; every critical service has one"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "kind", "sentence"),
    SAID,
    ids=[
        "the headline counts the SLOs by status and the replay's pages and tickets",
        "the headline names the incident a page caught and how early",
        "the overview is captioned least budget first",
        "the rules note names the rules that do not apply and why",
        "a report's picker note names the SLOs in trouble it shows",
        "the burn-down is drawn for the violated SLO",
        "the burn rates are drawn per hour for the violated SLO",
        "a burn-down of a 30-day SLO on 14 days of data says so",
        "the overview says budgets on part of a period say so",
        "the contributors are those of the SLOs in trouble",
        "the replay summary says over how long and what held back means",
        "the replay chart counts its firings, pages, tickets and incidents",
        "the detections count the quiet low-severity incidents",
        "the coverage counts the services without an SLO",
    ],
)
def test_every_section_of_the_demo_review_says_what_it_shows(review, name, kind, sentence):
    shown = getattr(review, name)()
    assert isinstance(shown, kind)
    assert sentence in _said(shown)


def test_the_tables_rows_are_the_reviews_numbers(review) -> None:
    """Each table's rows hold the evaluation's, the replay's and the loaders' numbers."""
    overview = review.overview().data
    assert overview["slo"].tolist()[0] == "auth-service/latency-p99-25ms"
    assert overview["compliance_status"].tolist().count("compliant") == 7
    assert overview.loc[0, "alert"] == "ticket" and overview.loc[0, "exhaustion"] == "already spent"
    contributors = review.contributors().data
    assert contributors[["slo", "operation_name", "bad_kind", "bad"]].values.tolist()[:2] == [
        ["auth-service/latency-p99-25ms", "validate_token", "slower than 25 ms", 69],
        ["api-gateway/latency-p99-300ms", "GET /api/v1/domains", "slower than 300 ms", 24],
    ]
    summary = review.replay_summary().data.set_index(["slo", "rule"])
    page = summary.loc[("auth-service/latency-p99-25ms", "14m & 1m > 14.4x")]
    assert (page["firings"], page["held_back"], page["firing_time"]) == (2, 33, "7 min")
    quiet = summary.loc[("auth-service/availability", "1h & 5m > 14.4x")]
    assert (quiet["firings"], quiet["firing_time"]) == (0, "")
    applies = review.replayed.rules[review.replayed.rules["applies"]]
    assert summary["firings"].sum() == applies["firings"].sum() == len(review.replayed.firings)
    detections = review.detections().data.set_index("incident_id")
    assert detections.loc[MAIN, "caught_by"] == "availability (page)"
    assert detections.loc[MAIN, "versus_page"] == "3 min after"
    coverage = review.coverage().data.set_index("service_name")
    assert coverage.loc["postgres", "slos"] == 0 and coverage.loc["api-gateway", "slos"] == 2


def test_the_review_starts_where_the_data_starts_and_says_so(review, demo_db) -> None:
    _, summary = demo_db
    assert review.start == summary.start and review.end == summary.end
    assert "the data starts 2026-11-02 00:00 UTC" in review.headline().text


def test_the_overview_lists_least_budget_first_and_marks_violations(review) -> None:
    shown = review.overview()
    budgets = review.rows.sort_values("error_budget_remaining")["error_budget_remaining"]
    assert shown.data["budget_left_pct"].tolist() == budgets.tolist()
    violated = (shown.data["compliance_status"] == "violated").to_numpy()
    assert violated.any() and (shown.errors == violated).all()


def test_a_report_shows_every_slo_in_trouble_and_jupyterlab_the_first(demo_db, review) -> None:
    url, _ = demo_db
    assert review.selected == review.in_trouble() and review.selected
    live = slo_review.review_slos("30d", "2026-11-16T00:00:00Z", url=url, live=True)
    assert live.selected == review.in_trouble()[:1]
    view = live.burndown()
    assert isinstance(view, LiveView)
    assert live.pick("api-gateway/availability") == []  # nothing displayed yet to redraw
    assert live.selected == ["api-gateway/availability"]
    assert "api-gateway/availability" in view.value.to_dict()["description"]
    assert live.pick("nope/nothing") == [] and not live.found
    assert live.burndown().value.text == "No enabled SLO named nope/nothing."


@pytest.mark.parametrize(
    ("kwargs", "note"),
    [
        ({"services": "postgres"}, "No enabled SLO for postgres"),
        ({"services": ["postgres", "cache"]}, "No enabled SLO for postgres, cache"),
    ],
)
def test_services_without_slo_make_every_section_a_note(demo_db, kwargs, note) -> None:
    url, _ = demo_db
    review = slo_review.review_slos("30d", "2026-11-16T00:00:00Z", url=url, **kwargs)
    for name in SECTIONS:
        if name in ("burndown", "burn_rates", "coverage"):
            continue  # the detail views say no SLO is in trouble; coverage still lists
        assert note in getattr(review, name)().text, name


def test_a_window_before_any_data_says_no_data_not_a_traceback(demo_db) -> None:
    url, _ = demo_db
    review = slo_review.review_slos("7d", "2020-01-08T00:00:00Z", url=url)
    assert set(review.rows["compliance_status"]) == {"no_data"}
    assert "8 no data" in review.headline().text
    assert review.replay_chart().text.startswith("No burn-rate rule fired between 2020-01-01")
    assert review.detections().text.startswith("No incident of a service with an SLO")
    assert review.contributors().text.startswith("No SLO with an error budget is violated")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": "forever"}, "window must be a positive duration .*, not 'forever'"),
        ({"window": "0d"}, "window must be a positive duration"),
        ({"end": "someday"}, "end is not a time"),
        ({"min_events": -1}, "min_events must be 0 or more"),
        ({"min_events": "ten"}, "min_events must be a whole number"),
    ],
)
def test_bad_parameters_are_one_line_errors(demo_db, kwargs, message) -> None:
    url, _ = demo_db
    with pytest.raises(UsageError, match=message):
        slo_review.review_slos(url=url, **kwargs)


def test_detections_count_uncaught_low_severity_incidents_instead_of_listing_them(review):
    shown = review.detections()
    quiet = review.replayed.incidents
    quiet = quiet[~quiet["caught"] & (quiet["severity"] == "low")]
    assert len(quiet) > 10  # the demo's flapping dns-resolver alert
    left_out = plural(len(quiet), "low-severity incident")
    assert f"Left out: {left_out} no rule caught" in shown.caption
    assert not set(quiet["incident_id"]) & set(shown.data["incident_id"])
    listed = shown.data["caught_by"] != "not caught"
    assert listed.iloc[: listed.sum()].all()  # caught ones first


def test_a_throughput_slo_in_trouble_gets_notes_not_errors(migrated_db: str) -> None:
    """A violated throughput SLO is in trouble but has no budget to burn down or spend."""
    import pandas as pd

    from obslib.ingest import batch

    start = pd.Timestamp("2026-11-01 00:00", tz="UTC")
    spans = pd.DataFrame(
        {
            "trace_id": [tid(f"request {i}") for i in range(60)],
            "span_id": [sid(f"request {i}") for i in range(60)],
            "service_name": "svc",
            "operation_name": "GET /",
            "span_kind": "server",
            "start_time": [start + pd.Timedelta(minutes=i) for i in range(60)],
            "end_time": [start + pd.Timedelta(minutes=i, milliseconds=5) for i in range(60)],
        }
    )
    slo = pd.DataFrame(
        [("svc", "rps", "throughput", 5.0, 1)],
        columns=[
            "service_name",
            "slo_name",
            "slo_type",
            "target_value",
            "measurement_window_hours",
        ],
    )
    with batch(migrated_db) as b:
        b.slos(slo)
        b.spans(spans)
    review = slo_review.review_slos("1d", "2026-11-01T01:00:00Z", url=migrated_db)
    assert review.in_trouble() == ["svc/rps"]
    for name in SECTIONS:
        shown = getattr(review, name)()
        assert isinstance(shown, Table | Note | alt.TopLevelMixin), name
    assert "throughput SLO has no error budget" in review.burndown().text
    assert review.contributors().text.startswith("No SLO with an error budget")


def test_the_review_covers_its_window_not_only_its_end(review) -> None:
    """domain-service's 1-day SLOs are compliant at the end, but breached on 2026-11-14 and
    spent their budget then: the overview says when and how low, and they are in trouble."""
    rows = review.overview().data.set_index("slo")
    availability = rows.loc["domain-service/availability"]
    assert availability["compliance_status"] == "compliant"
    assert availability["breached"] == "2026-11-14 14:17-14:50"
    assert availability["worst_budget_pct"] == pytest.approx(-275.23)
    assert "domain-service/availability" in review.in_trouble()
    assert rows.loc["api-gateway/availability", "data"] == "14 of 30 days of data"
    assert rows.loc["domain-service/availability", "data"] == ""
