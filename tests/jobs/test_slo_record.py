"""`obslib slo evaluate [--record]`, `export-prom` and the replay, on a real PostgreSQL.

A hand-built service whose spans we place minute by minute, so every measurement, incident
and exported number is known; then the demo, whose scripted incident the replay must catch.
"""

from __future__ import annotations

import os

import pandas as pd
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from obslib import load, slo
from obslib.demo import events
from obslib.ingest import batch
from obslib.jobs import slo_evaluation as evaluation
from obslib.slo import replay as slo_replay
from obslib.slo import status as slo_status
from tests.builders import slo_definitions
from tests.conftest import run_cli
from tests.ids import sid, tid

T0 = pd.Timestamp("2026-11-01 00:00", tz="UTC")
MIN = pd.Timedelta(minutes=1)
SLO = slo_definitions(service_name="svc", target_value=99.0, measurement_window_hours=1)


def _spans(minutes: dict[int, tuple[int, int]]) -> pd.DataFrame:
    """``{minute: (requests, failures)}`` as one-span server traces of ``svc``."""
    rows = []
    for minute, (n, failed) in minutes.items():
        for i in range(n):
            start = T0 + minute * MIN + pd.Timedelta(seconds=i * 50 / n)
            rows.append(
                {
                    "trace_id": tid(f"minute {minute} request {i}"),
                    "span_id": sid(f"minute {minute} request {i}"),
                    "parent_span_id": None,
                    "service_name": "svc",
                    "operation_name": "GET /a" if i % 2 else "GET /b",
                    "span_kind": "server",
                    "start_time": start,
                    "end_time": start + pd.Timedelta(milliseconds=20),
                    "status": "error" if i < failed else "ok",
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture
def svc_db(migrated_db: str) -> str:
    """One hour clean (minutes 0-59), then minutes 60-69 with 5 of 10 failing, then clean
    again until minute 180: a 1-hour 99 % SLO is violated from minute 61 until the bad
    minutes leave its window."""
    minutes = {m: (10, 5 if 60 <= m < 70 else 0) for m in range(180)}
    with batch(migrated_db) as b:
        b.slos(SLO)
        b.spans(_spans(minutes))
    return migrated_db


def _plan_query(url: str) -> list[tuple]:
    """The upstream plan's own CI check, verbatim."""
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        return conn.execute(
            "SELECT service_name, compliance_status, COUNT(*) FROM slo_measurements"
            " GROUP BY service_name, compliance_status;"
        ).fetchall()


def _incidents(url: str) -> pd.DataFrame:
    return load.incidents(url=url)


def test_recording_stores_one_measurement_per_slo_and_instant(svc_db: str) -> None:
    at = T0 + 30 * MIN
    first = evaluation.record(evaluation.evaluate(at, url=svc_db), url=svc_db)
    again = evaluation.record(evaluation.evaluate(at, url=svc_db), url=svc_db)
    assert (first.measurements, again.measurements) == (1, 0)
    stored = load.slo_measurements(url=svc_db)
    assert stored["measurement_timestamp"].tolist() == [at]
    assert stored["actual_value"].tolist() == [100.0]
    assert stored["measurement_period"].tolist() == [pd.Timedelta(hours=1)]
    assert _plan_query(svc_db) == [("svc", "compliant", 1)]


def test_a_violation_opens_one_incident_until_the_slo_recovers(svc_db: str) -> None:
    """Violated at minute 65: an incident opens; still violated at 70: no second one; at 135
    the bad minutes have left the 1-hour window: auto-resolved; a new violation later would
    open a new incident."""
    opened = evaluation.record(evaluation.evaluate(T0 + 65 * MIN, url=svc_db), url=svc_db)
    assert len(opened.opened) == 1
    incident = _incidents(svc_db).iloc[0]
    assert incident["incident_id"] == "SLO-20261101T0105-svc/availability"
    assert incident["alert_name"] == "slo:svc/availability"
    assert (incident["status"], incident["triggered_at"]) == ("open", T0 + 65 * MIN)
    assert incident["incident_data"]["error_budget_remaining_percent"] < 0
    still = evaluation.record(evaluation.evaluate(T0 + 70 * MIN, url=svc_db), url=svc_db)
    assert still.opened == [] and still.resolved == []
    healed = evaluation.record(evaluation.evaluate(T0 + 135 * MIN, url=svc_db), url=svc_db)
    assert healed.resolved == ["SLO-20261101T0105-svc/availability"]
    closed = _incidents(svc_db).iloc[0]
    assert (closed["status"], closed["resolved_at"]) == ("auto_resolved", T0 + 135 * MIN)
    assert closed["resolved_by"] == evaluation.SOURCE
    assert sorted(_plan_query(svc_db)) == [("svc", "compliant", 1), ("svc", "violated", 2)]


def test_the_measurement_service_comes_from_its_slo_whoever_writes_it(svc_db: str) -> None:
    """Migration 0007's trigger: a row inserted without service_name, or with a wrong one,
    gets its SLO's."""
    with psycopg.connect(svc_db.replace("+psycopg", "")) as conn:
        slo_id = conn.execute("SELECT id FROM service_level_objectives").fetchone()[0]
        conn.execute(
            "INSERT INTO slo_measurements (slo_id, measurement_timestamp, actual_value,"
            " target_value, compliance_status, measurement_period, service_name)"
            " VALUES (%s, now(), 99, 99, 'compliant', '1 hour', 'someone-else'),"
            " (%s, now() + interval '1 minute', 99, 99, 'compliant', '1 hour', NULL)",
            (slo_id, slo_id),
        )
        names = conn.execute("SELECT DISTINCT service_name FROM slo_measurements").fetchall()
    assert names == [("svc",)]


def test_slo_evaluate_record_on_the_command_line(svc_db: str) -> None:
    env = {"OBSLIB_DATABASE_URL": svc_db}
    done = run_cli("slo", "evaluate", "--record", "--at", "2026-11-01T01:05", env=env)
    assert done.returncode == 0, done.stderr
    assert "svc/availability" in done.stdout and "violated" in done.stdout
    assert "1 new measurement" in done.stdout
    assert "1 incident opened (SLO-20261101T0105-svc/availability)" in done.stdout
    assert _plan_query(svc_db) == [("svc", "violated", 1)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--service", "nope"), "no enabled SLO for service nope (known: svc)"),
        (("--service", "svc", "--service", "sv"), "no enabled SLO for service sv (known: svc)"),
        (("--at", "yesterday-ish"), "at is not a time"),
        (("--min-events", "-1"), "--min-events"),
    ],
)
def test_slo_evaluate_refuses_bad_input_in_one_line(svc_db: str, args, message) -> None:
    done = run_cli("slo", "evaluate", "--record", *args, env={"OBSLIB_DATABASE_URL": svc_db})
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert _plan_query(svc_db) == []  # nothing recorded


def test_recording_with_no_enabled_slo_stores_nothing_and_says_so(migrated_db: str) -> None:
    with batch(migrated_db) as b:
        b.spans(_spans({0: (5, 1)}))
    done = run_cli("slo", "evaluate", "--record", env={"OBSLIB_DATABASE_URL": migrated_db})
    assert done.returncode == 0, done.stderr
    assert "(no enabled SLOs)" in done.stdout and "0 new measurements" in done.stdout


def test_an_incident_of_the_same_instant_is_not_opened_twice_nor_reported(svc_db: str) -> None:
    """Recorded at 01:05, resolved by a person; recording 01:05 again opens nothing."""
    at = T0 + 65 * MIN
    evaluation.record(evaluation.evaluate(at, url=svc_db), url=svc_db)
    with psycopg.connect(svc_db.replace("+psycopg", "")) as conn:
        conn.execute("UPDATE alert_incidents SET status = 'resolved', resolved_at = now()")
    again = evaluation.record(evaluation.evaluate(at, url=svc_db), url=svc_db)
    assert again.opened == [] and len(_incidents(svc_db)) == 1


def test_measurements_follow_a_renamed_slo(svc_db: str) -> None:
    """Migration 0010: a service renamed by hand takes its measurements' service along."""
    evaluation.record(evaluation.evaluate(T0 + 30 * MIN, url=svc_db), url=svc_db)
    with psycopg.connect(svc_db.replace("+psycopg", "")) as conn:
        conn.execute("UPDATE service_level_objectives SET service_name = 'svc-renamed'")
    assert _plan_query(svc_db) == [("svc-renamed", "compliant", 1)]


def test_export_prom_replaces_the_file_in_one_rename(svc_db: str, tmp_path) -> None:
    """A scraper holding the old file keeps reading the old contents: the new file is a
    new inode renamed over it, never the old one rewritten in place."""
    out = tmp_path / "slo.prom"
    out.write_text("# old\n")
    before = out.stat().st_ino
    with out.open() as held:
        done = run_cli("slo", "export-prom", "--out", str(out), env={"OBSLIB_DATABASE_URL": svc_db})
        assert done.returncode == 0, done.stderr
        assert held.read() == "# old\n"
    assert out.stat().st_ino != before and "domainflow_slo_status" in out.read_text()


def test_export_prom_writes_the_evaluation_atomically(svc_db: str, tmp_path) -> None:
    out = tmp_path / "slo.prom"
    env = {"OBSLIB_DATABASE_URL": svc_db}
    done = run_cli("slo", "export-prom", "--out", str(out), "--at", "2026-11-01T01:05", env=env)
    assert done.returncode == 0, done.stderr
    assert os.listdir(tmp_path) == ["slo.prom"]  # no temporary file left beside it
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(out.read_text())
        for s in family.samples
    }
    key = (("service_name", "svc"), ("slo_name", "availability"))
    # minutes 5-64 of the window: 600 requests, 25 failed (minutes 60-64)
    assert samples[("domainflow_slo_compliance_ratio", key)] == pytest.approx(575 / 600)
    assert samples[("domainflow_slo_target_ratio", key)] == pytest.approx(0.99)
    budget_left = 1 - (25 / 600) / 0.01
    assert samples[("domainflow_slo_error_budget_remaining_ratio", key)] == pytest.approx(
        budget_left
    )
    assert samples[("domainflow_slo_status", (*key, ("status", "violated")))] == 1.0
    assert samples[("domainflow_slo_status", (*key, ("status", "compliant")))] == 0.0
    # a 1-hour SLO keeps one rule, the 1x ticket over 6m and 1m (the 30-day windows x 1/720)
    burn_6m = (25 / 60) / 0.01
    assert samples[
        ("domainflow_slo_burn_rate", (("service_name", "svc"), ("slo_name", "availability"),
                                      ("window", "6m")))
    ] == pytest.approx(burn_6m)  # fmt: skip
    assert samples[("domainflow_slo_evaluation_timestamp_seconds", ())] == pytest.approx(
        (T0 + 65 * MIN).timestamp()
    )


@pytest.mark.parametrize("where", ["folder", "missing"])
def test_export_prom_refuses_an_unwritable_target_before_any_work(tmp_path, where) -> None:
    out = tmp_path if where == "folder" else tmp_path / "no" / "such.prom"
    done = run_cli("slo", "export-prom", "--out", str(out), env={"OBSLIB_DATABASE_URL": "x"})
    assert done.returncode == 2, done.stderr
    assert "folder" in done.stderr


def test_the_replay_catches_the_demo_incident_with_the_scripted_delay(demo_db) -> None:
    """The demo pages after domain-service's errors (events.detection_time); the replayed
    domain-service availability page (6x over 12m and 1m for its 1-day period) fires once
    its windows pass the Workbook's factor, no earlier than the end of the minute of the
    first failing server span, which is its first bad minute; its delay against the page
    follows from both, and it catches the incident."""
    url, _summary = demo_db
    lo, hi = events.incident_window()
    day = load.spans(lo.normalize(), lo.normalize() + pd.Timedelta(days=1), url=url)
    paged = events.detection_time(day)
    failing = day[
        (day["service_name"] == "domain-service")
        & (day["span_kind"] == "server")
        & (day["status"] != "ok")
        & (day["start_time"] >= lo)
        & (day["start_time"] < hi)
    ]
    fires = failing["start_time"].min().floor("min") + MIN
    slos = load.enabled_slos(url=url)
    start, end = lo - pd.Timedelta(days=1), hi + pd.Timedelta(hours=1)
    counts = load.slo_counts(slos, start - pd.Timedelta(days=3), end, url=url)
    replayed = slo_replay.replay(counts, slos, load.incidents(start, end, url=url), start, end)
    main = replayed.incidents.set_index("incident_id").loc[events.main_incident_id()]
    assert main["caught_by_page"]
    page = replayed.pages[
        (replayed.pages["service_name"] == "domain-service")
        & (replayed.pages["slo_name"] == "availability")
        & (replayed.pages["start"] >= lo)
    ].iloc[0]
    assert page["start"] >= fires
    assert page["first_bad_minute"] == fires - MIN
    assert page["incident_id"] == events.main_incident_id()
    assert page["delay_vs_incident"] == page["start"] - paged


def test_the_demo_evaluation_at_its_end_matches_the_recorded_hourly_measurements(demo_db):
    """The evaluator's per-minute windows and the demo's hourly rolling measurements agree
    at a whole hour: the same rule on the same events."""
    url, summary = demo_db
    at = summary.end - pd.Timedelta(hours=5)
    evaluated = evaluation.evaluate(at, url=url).slos.set_index(["service_name", "slo_name"])
    stored = load.slo_measurements(at, at + pd.Timedelta(seconds=1), url=url)
    assert len(stored) == len(evaluated) == len(slo.check_definitions(load.slos(url=url)))
    for row in stored.to_dict("records"):
        mine = evaluated.loc[(row["service_name"], row["slo_name"])]
        assert mine["compliance_status"] == row["compliance_status"]
        assert mine["sli"] == pytest.approx(row["actual_value"], abs=1e-4)
        assert mine["error_budget_remaining"] == pytest.approx(
            row["error_budget_remaining"], abs=0.006
        )


def _acknowledge(url: str) -> None:
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        conn.execute(
            "UPDATE alert_incidents SET status = 'acknowledged', acknowledged_at = %s,"
            " acknowledged_by = 'alice'",
            (T0 + 66 * MIN,),
        )


def test_an_acknowledged_incident_blocks_a_second_one_and_is_auto_resolved(svc_db: str) -> None:
    """Opened at 01:05 and acknowledged by a person: still violated at 01:10, no second
    incident (the first is still being handled); healed at 02:15, the acknowledged one is
    auto-resolved, as an open one would be."""
    evaluation.record(evaluation.evaluate(T0 + 65 * MIN, url=svc_db), url=svc_db)
    _acknowledge(svc_db)
    still = evaluation.record(evaluation.evaluate(T0 + 70 * MIN, url=svc_db), url=svc_db)
    assert still.opened == [] and len(_incidents(svc_db)) == 1
    healed = evaluation.record(evaluation.evaluate(T0 + 135 * MIN, url=svc_db), url=svc_db)
    assert healed.resolved == ["SLO-20261101T0105-svc/availability"]
    closed = _incidents(svc_db).iloc[0]
    assert (closed["status"], closed["resolved_at"]) == ("auto_resolved", T0 + 135 * MIN)
    assert closed["acknowledged_by"] == "alice"  # who acknowledged it stays on record


@pytest.mark.parametrize(
    ("last_start", "at"),
    [
        (T0 + 179 * MIN + pd.Timedelta(seconds=45), T0 + 180 * MIN),
        (T0 + 200 * MIN, T0 + 201 * MIN),
        (T0 + 200 * MIN + pd.Timedelta(microseconds=1), T0 + 201 * MIN),
        (T0 + 200 * MIN + pd.Timedelta(seconds=59.999), T0 + 201 * MIN),
    ],
    ids=[
        "a span late in its minute: the next minute",
        "a span on a whole minute: the minute after it, so the span is in the window",
        "a span just after a whole minute: the minute after",
        "a span at the end of its minute: the minute after, not two",
    ],
)
def test_without_an_instant_evaluation_runs_at_the_minute_after_the_latest_span(
    svc_db: str, last_start: pd.Timestamp, at: pd.Timestamp
) -> None:
    """No ``at``/``end``: the end of the minute of the latest stored span, so that span is
    inside the window (half-open windows end before their instant)."""
    late = _spans({0: (1, 1)}).assign(
        trace_id="f" * 32, span_id="f" * 16, start_time=last_start,
        end_time=last_start + pd.Timedelta(milliseconds=5),
    )  # fmt: skip
    if last_start > T0 + 180 * MIN:
        with batch(svc_db) as b:
            b.spans(late)
    assert load.data_end(url=svc_db) == at
    assert load.data_end("", url=svc_db) == at
    evaluated = evaluation.evaluate(url=svc_db)
    assert evaluated.at == at
    stored = load.spans(at - pd.Timedelta(hours=1), at, url=svc_db)
    assert (stored["start_time"] == last_start).sum() == 1  # the latest span is in the window
    assert evaluated.slos.iloc[0]["events"] == len(stored)
    assert evaluation.evaluate(T0 + 30 * MIN, url=svc_db).at == T0 + 30 * MIN  # given: as is


def test_slo_evaluate_checks_the_definitions_and_builds_the_rules_once(demo_db, monkeypatch):
    """One ``obslib slo evaluate`` plans its reads and evaluates on one checked set: each
    definition is checked once and its rule table (``burn_rate_windows`` scaled to its
    period) built once, not once per step. The result is the one the unplanned steps give."""
    url, summary = demo_db
    calls = {"check_definitions": 0, "burn_rate_windows": 0}

    def counted(name):
        real = getattr(slo, name)

        def call(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)

        return call

    for name in calls:  # where the rules module looks them up
        monkeypatch.setattr(slo.rules, name, counted(name))
    at = summary.end - pd.Timedelta(hours=5)
    evaluated = evaluation.evaluate(at, url=url)
    assert calls == {"check_definitions": 1, "burn_rate_windows": summary.slos}
    monkeypatch.undo()
    slos = load.enabled_slos(url=url)
    counts = load.slo_counts(slos, at - slo.lookback(slos), at, url=url)
    alone = slo_status.evaluate_at(counts, slos, at)
    pd.testing.assert_frame_equal(evaluated.slos, alone.slos)
    pd.testing.assert_frame_equal(evaluated.rules, alone.rules)


def test_the_review_records_only_when_asked_and_says_what_it_stored(svc_db: str) -> None:
    """The SLO review notebook's record cell: nothing unless ``record``; then the
    evaluation at the review's end, as ``obslib slo evaluate --record`` stores it."""
    from obslib.views import slo_review

    review = slo_review.review_slos("1h", "2026-11-01T01:05:00Z", url=svc_db)
    kept = evaluation.record_review(review, enabled=False)
    assert kept.text == "Not recorded (parameter record = False)." and _plan_query(svc_db) == []
    done = evaluation.record_review(review, enabled=True)
    assert done.text == (
        "Recorded at 2026-11-01 01:05 UTC: 1 new measurement; 1 incident opened"
        " (SLO-20261101T0105-svc/availability); 0 auto-resolved."
    )
    assert _plan_query(svc_db) == [("svc", "violated", 1)]
    nothing = slo_review.review_slos("1h", "2026-11-01T01:05:00Z", "other", url=svc_db)
    assert evaluation.record_review(nothing, enabled=True).text == (
        "No enabled SLO for other: define some with `obslib slo apply FILE.yaml`."
    )
