"""The SLO review's view module on the demo: every section displays in every case."""

from __future__ import annotations

import altair as alt
import pytest

from obslib.errors import UsageError
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


def test_every_section_is_a_table_a_chart_or_a_note(review) -> None:
    for name in SECTIONS:
        shown = getattr(review, name)()
        assert isinstance(shown, Table | Note | alt.TopLevelMixin), name


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


def test_one_scan_gives_the_counts_of_a_scan_per_threshold(demo_db) -> None:
    """slo_counts reads every threshold in one pass; each equals sli_counts of its own."""
    import pandas as pd

    from obslib import load

    url, _ = demo_db
    slos = load.slos(url=url)
    start, end = "2026-11-13T00:00:00Z", "2026-11-15T00:00:00Z"
    together = load.slo_counts(slos, start, end, url=url)
    thresholds = [None, *sorted(set(slos["latency_threshold_ms"].dropna()))]
    assert len(thresholds) > 2
    services = sorted(set(slos["service_name"]))
    for threshold in thresholds:
        alone = load.sli_counts(
            start, end, services=services, bucket="1min", latency_threshold_ms=threshold, url=url
        )
        mine = together[
            together["threshold"].isna()
            if threshold is None
            else together["threshold"] == threshold
        ]
        pd.testing.assert_frame_equal(
            mine.drop(columns="threshold").reset_index(drop=True), alone, check_dtype=False
        )


def test_hours_summed_from_minutes_equal_hourly_buckets(demo_db) -> None:
    import pandas as pd

    from obslib import load

    url, _ = demo_db
    slos = load.slos(url=url)
    start, end = "2026-11-13T00:00:00Z", "2026-11-15T00:00:00Z"
    keys = ["service_name", "threshold", "bucket"]
    derived = slo_review._hourly(load.slo_counts(slos, start, end, url=url))
    scanned = load.slo_counts(slos, start, end, bucket="1h", url=url)
    pd.testing.assert_frame_equal(
        derived.sort_values(keys).reset_index(drop=True),
        scanned.sort_values(keys).reset_index(drop=True),
        check_dtype=False,
    )


def test_detections_count_uncaught_low_severity_incidents_instead_of_listing_them(review):
    shown = review.detections()
    quiet = review.replayed.incidents
    quiet = quiet[~quiet["caught"] & (quiet["severity"] == "low")]
    assert len(quiet) > 10  # the demo's flapping dns-resolver alert
    assert f"Left out: {len(quiet)} low-severity incident(s) no rule caught" in shown.caption
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


def test_a_long_window_draws_the_worst_hour_of_each_step() -> None:
    import pandas as pd

    hours = pd.date_range("2026-01-01", periods=6000, freq="h", tz="UTC")
    measured = pd.DataFrame(
        {"measurement_timestamp": hours, "error_budget_remaining": [50.0] * 6000}
    )
    measured.loc[4321, "error_budget_remaining"] = -7.0
    thinned = slo_review._lowest_per(measured, "7h")
    assert len(thinned) <= 1000 and -7.0 in thinned["error_budget_remaining"].tolist()
