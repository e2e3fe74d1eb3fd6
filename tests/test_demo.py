"""The demo: deterministic, shaped like production, and the incident where the summary says."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from obslib import demo, load, reports
from obslib.demo import events
from obslib.demo import topology as topo
from obslib.storage.migrate import Migrator
from tests.conftest import DEMO_SPANS, MIGRATIONS, scratch_database

PER_DAY = demo.traces_per_day(DEMO_SPANS)
HOUR = pd.Timedelta(hours=1)


def test_same_seed_same_rows() -> None:
    """Two generations with one seed are identical, ids included; another seed differs."""
    spans_a, logs_a = demo.generate_day(12, seed=7, per_day=PER_DAY)
    spans_b, logs_b = demo.generate_day(12, seed=7, per_day=PER_DAY)
    pd.testing.assert_frame_equal(spans_a, spans_b)
    pd.testing.assert_frame_equal(logs_a, logs_b)
    other, _ = demo.generate_day(12, seed=8, per_day=PER_DAY)
    assert set(other["trace_id"]).isdisjoint(spans_a["trace_id"])


def test_span_trees_are_well_formed() -> None:
    """Every span kind occurs; children start inside their parent except skewed hosts and
    message consumers, which start after their producer ends."""
    spans, _ = demo.generate_day(3, per_day=PER_DAY)
    assert set(spans["span_kind"]) == {"server", "client", "producer", "consumer", "internal"}
    assert spans["span_id"].is_unique
    assert (spans["end_time"] >= spans["start_time"]).all()
    joined = spans.merge(
        spans, left_on="parent_span_id", right_on="span_id", suffixes=("", "_parent")
    )
    consumers = joined[joined["span_kind"] == "consumer"]
    assert (consumers["start_time"] >= consumers["end_time_parent"]).all()
    skewed = joined["tags"].str.contains('"dns-resolver-1"') & (joined["span_kind"] == "server")
    sync = joined[(joined["span_kind"] != "consumer") & ~skewed]
    inside = (sync["start_time"] >= sync["start_time_parent"]) & (
        sync["end_time"] <= sync["end_time_parent"] + pd.Timedelta(microseconds=2)
    )
    assert inside.mean() > 0.99
    late = joined[skewed]
    assert (late["end_time"] > late["end_time_parent"]).mean() > 0.5  # 35 ms fast clock


def test_background_realism() -> None:
    """Orphans (lost parents), traces without logs and logs without traces all occur."""
    spans, logs = demo.generate_day(5, per_day=PER_DAY * 4)
    orphans = spans["parent_span_id"].notna() & ~spans["parent_span_id"].isin(spans["span_id"])
    assert 0 < orphans.sum() < 0.01 * len(spans)
    logged_traces = set(logs["trace_id"].dropna())
    unlogged = set(spans["trace_id"]) - logged_traces
    assert 0.05 < len(unlogged) / spans["trace_id"].nunique() < 0.3
    assert logs["trace_id"].isna().sum() > 0


def test_a_failed_request_logs_its_failure_on_every_span_that_failed() -> None:
    """Every failed or timed-out server span that writes a request log writes it at error
    level with why it failed (the gateway names the call that failed it); ok spans never
    log at error level."""
    spans, logs = demo.generate_day(12, per_day=PER_DAY * 4)  # the incident day
    request = logs.dropna(subset=["span_id"]).merge(
        spans[["span_id", "status", "operation_name"]], on="span_id", validate="one_to_one"
    )
    failed = request[request["status"] != "ok"]
    ok = request[request["status"] == "ok"]
    assert len(failed) > 20 and set(failed["status"]) <= {"error", "timeout"}
    assert (failed["level"] == "error").all() and failed["error"].notna().all()
    assert not failed["message"].str.endswith(" ok").any()
    assert (ok["level"] != "error").all() and ok["error"].isna().all()
    gateway = failed[failed["operation_name"] == "POST /api/v1/domains/generate"]
    assert (
        gateway["message"]
        .str.startswith("POST /api/v1/domains/generate failed: domain-service generate_domains")
        .all()
    )


def test_a_failed_request_does_no_work_it_would_not_have_done() -> None:
    """A failed generate request inserts no domains, publishes nothing and sends no email;
    after a failed call, its caller makes no further calls."""
    spans, _ = demo.generate_day(12, per_day=PER_DAY * 4)
    server = spans[
        (spans["operation_name"] == "generate_domains") & (spans["span_kind"] == "server")
    ]
    failed = set(server.loc[server["status"] != "ok", "trace_id"])
    done = spans.groupby("trace_id")["operation_name"].agg(set)
    work = {"postgres INSERT domains", "publish domain.generated", "send_email"}
    assert len(failed) > 5 and all(not work & done[t] for t in failed)
    assert all(work <= done[t] for t in set(server["trace_id"]) - failed)  # the rest did it
    calls = spans[spans["span_kind"] == "client"]
    after = calls.merge(calls, on="parent_span_id", suffixes=("", "_later"))
    after = after[after["start_time_later"] > after["start_time"]]
    assert (after["status"] == "ok").any() and (after["status"] == "ok").all()


def test_incident_ids_are_numbered_per_day_and_say_nothing_of_the_script() -> None:
    """Every id is INC-<trigger day>-<number in that day's trigger order>; the scripted page
    is the first of its day; which incidents are scripted noise is known here, from the
    alert and the time, not from the id."""
    incidents = events.alert_incidents(topo.DEFAULT_SEED)
    assert incidents["incident_id"].is_unique
    parts = incidents["incident_id"].str.extract(r"^INC-(\d{8})-(\d{4})$")
    assert parts.notna().all().all()
    triggered = pd.to_datetime(incidents["triggered_at"], utc=True)
    assert (parts[0] == triggered.dt.strftime("%Y%m%d")).all()
    in_order = incidents.assign(t=triggered, n=parts[1].astype(int)).sort_values("t")
    assert (
        in_order.groupby(parts[0])["n"].agg(list)
        == in_order.groupby(parts[0])["n"].agg(lambda n: list(range(1, len(n) + 1)))
    ).all()

    by_id = incidents.set_index("incident_id")
    day = topo.DEPLOY_AT.strftime("%Y%m%d")
    scripted = [events.main_incident_id(), f"INC-{day}-0002", f"INC-{day}-0003"]
    assert scripted[0] == "INC-20261114-0001"  # the notebooks' default
    assert by_id.index[by_id.index.str.startswith(f"INC-{day}-")].tolist() == scripted
    assert by_id.loc[scripted, "alert_name"].tolist() == [
        "domain-service-high-error-rate",
        "api-gateway-latency-p99",
        "domain-service-availability-burn",
    ]
    flapping = by_id[by_id["alert_name"] == "dns-resolver-timeouts"]
    assert len(flapping) == 29 and (flapping["status"] == "auto_resolved").all()
    noise = by_id[by_id["alert_name"] == "auth-service-latency-anomaly"]
    assert [f["false_positive"] for f in noise["incident_data"]] == [True] * 5
    assert noise.index.tolist() == [  # the false positives, by trigger time
        "INC-20261102-0001",  # 2026-11-02 16:03
        "INC-20261107-0001",  # 2026-11-07 00:27
        "INC-20261113-0002",  # 2026-11-13 11:16
        "INC-20261113-0001",  # 2026-11-13 04:05
        "INC-20261115-0001",  # 2026-11-15 18:31
    ]
    still_going = by_id[by_id["resolved_at"].isna()]
    assert still_going[["alert_name", "status"]].to_dict("index") == {
        "INC-20261115-0003": {"alert_name": "campaign-service-error-budget", "status": "open"},
        "INC-20261115-0002": {"alert_name": "cache-hit-ratio-anomaly", "status": "acknowledged"},
    }
    assert (pd.to_datetime(still_going["triggered_at"], utc=True) > topo.DEMO_END - 3 * HOUR).all()


def test_summary_matches_the_database(demo_db) -> None:
    """The counts the summary prints are what the database holds."""
    url, summary = demo_db
    with psycopg.connect(url) as conn:
        count = lambda table: conn.execute(  # noqa: E731
            "SELECT count(*) FROM " + table  # constant table names from this test
        ).fetchone()[0]
        assert count("distributed_traces") == summary.spans
        assert count("structured_logs") == summary.logs
        assert count("service_level_objectives") == summary.slos
        assert count("slo_measurements") == summary.measurements
        assert count("alert_definitions") == summary.alerts
        assert count("alert_incidents") == summary.incidents
        traces = conn.execute("SELECT count(DISTINCT trace_id) FROM distributed_traces").fetchone()
        assert traces[0] == summary.traces
    assert DEMO_SPANS * 0.9 < summary.spans < DEMO_SPANS * 1.1


def test_incident_is_where_the_summary_says(demo_db) -> None:
    """Deploy log at the start, errors and slowness inside the window, SLO burn before the
    page, which is acknowledged, escalated once and resolved after the rollback."""
    url, summary = demo_db
    lo, hi = summary.incident_start, summary.incident_end
    deploys = load.logs(
        lo - pd.Timedelta(minutes=1),
        lo + pd.Timedelta(minutes=1),
        services=["domain-service"],
        url=url,
    )
    assert any(
        f.get("event") == "deploy" and f.get("version") == topo.BAD_VERSION
        for f in deploys["fields"]
    )

    day = pd.Timedelta(days=1)
    during = load.spans(lo, hi, services=["domain-service"], kinds=["server"], url=url)
    before = load.spans(lo - day, hi - day, services=["domain-service"], kinds=["server"], url=url)
    assert (during["status"] == "error").mean() > 0.05 > (before["status"] == "error").mean()
    assert during["duration_ms"].median() > 4 * before["duration_ms"].median()

    page = load.incident(summary.incident_id, url=url).iloc[0]
    first_error = during.loc[during["status"] == "error", "start_time"].min()
    first_slow = during.loc[during["duration_ms"] > 400, "start_time"].min()
    # the budget burns (slow requests at once, then errors) before anyone is paged
    assert lo <= first_slow < first_error < page["triggered_at"] < hi
    assert page["triggered_at"] < page["acknowledged_at"] < page["resolved_at"]
    assert page["resolved_at"] > hi and page["status"] == "resolved"
    assert page["escalation_level"] == 2 and len(page["incident_data"]["escalations"]) == 1

    measured = load.slo_measurements(lo, hi + day, services=["domain-service"], url=url)
    assert "violated" in set(measured["compliance_status"])


def test_every_incident_status_and_alert_type_occurs(demo_db) -> None:
    """Open, acknowledged, resolved and auto-resolved incidents; every alert type (the log
    rules of issue 26 among them); a service without any SLO."""
    url, _ = demo_db
    incidents = load.incidents(url=url)
    assert set(incidents["status"]) == {"open", "acknowledged", "resolved", "auto_resolved"}
    assert set(load.alert_definitions(url=url)["alert_type"]) == {
        "threshold",
        "anomaly",
        "slo_violation",
        "log",
    }
    assert "notification-service" not in set(load.slos(url=url)["service_name"])
    flapping = incidents[incidents["alert_name"] == "dns-resolver-timeouts"]
    assert len(flapping) >= 10 and (flapping["status"] == "auto_resolved").all()


FINGERPRINTS = [  # every stored column but the surrogate keys, in a stable order
    """SELECT count(*), md5(string_agg(concat_ws(',', trace_id, span_id, parent_span_id,
        service_name, operation_name, span_kind, start_time, end_time, duration_ms, status,
        tags, logs), '|' ORDER BY trace_id, span_id)) FROM distributed_traces_tagged""",
    """SELECT count(*), md5(string_agg(concat_ws(',', log_id, timestamp, level, service_name,
        trace_id, span_id, message, fields, error), '|' ORDER BY log_id)) FROM structured_logs""",
    """SELECT count(*), md5(string_agg(concat_ws(',', i.incident_id, a.alert_name, i.status,
        i.triggered_at, i.acknowledged_at, i.resolved_at, i.escalation_level, i.incident_data),
        '|' ORDER BY i.incident_id))
        FROM alert_incidents i LEFT JOIN alert_definitions a ON a.id = i.alert_id""",
    """SELECT count(*), md5(string_agg(concat_ws(',', o.service_name, o.slo_name,
        m.measurement_timestamp, m.actual_value, m.compliance_status, m.error_budget_remaining),
        '|' ORDER BY o.service_name, o.slo_name, m.measurement_timestamp))
        FROM slo_measurements m JOIN service_level_objectives o ON o.id = m.slo_id""",
]


def _fingerprint(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return [conn.execute(query).fetchone() for query in FINGERPRINTS]


def test_rerun_is_idempotent_and_identical_across_databases(server_url, fresh_db) -> None:
    """The same seed in two databases gives the same rows; running again adds nothing."""
    spans = 30_000
    fingerprints = []
    for url in (fresh_db, None):
        with scratch_database(server_url) if url is None else nullcontext(url) as target:
            Migrator(target, MIGRATIONS).up()
            assert demo.run(seed=7, spans=spans, url=target).new_rows > 0
            fingerprints.append(_fingerprint(target))
    assert fingerprints[0] == fingerprints[1]
    assert all(count > 0 for count, _ in fingerprints[0])
    assert demo.run(seed=7, spans=spans, url=fresh_db).new_rows == 0
    assert _fingerprint(fresh_db) == fingerprints[0]


def test_the_command_line_reads_the_defaults_without_loading_the_generator() -> None:
    """`import obslib.demo` (the CLI's parser reads its defaults) loads neither numpy nor
    pandas; its public names load the generator on first use."""
    import subprocess
    import sys

    code = (
        "import sys, obslib.demo as d\n"
        "print(d.DEFAULT_SEED, d.DEFAULT_SPANS, 'pandas' in sys.modules, 'numpy' in sys.modules)\n"
        "print(callable(d.run), callable(d.write_reports), 'pandas' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.splitlines() == [
        f"{topo.DEFAULT_SEED} {topo.DEFAULT_SPANS} False False",
        "True True True",
    ]


@pytest.mark.parametrize(
    ("sentence", "markdown", "expected"),
    [
        ("a report prints its HTML", None, ["report    /r/slo_review.html"]),
        ("the postmortem prints its Markdown draft too, as the README promises",
         Path("/r/postmortem.md"), ["report    /r/slo_review.html", "  draft   /r/postmortem.md"]),
    ],
)  # fmt: skip
def test_the_demo_prints_every_file_it_wrote(sentence: str, markdown, expected) -> None:
    report = reports.Report(Path("/r/x.ipynb"), Path("/r/slo_review.html"), markdown)
    assert demo.format_report(report).splitlines() == expected, sentence
