"""`domainflow_trace_latency_seconds` in `obslib slo export-prom`, on a real PostgreSQL.

Hand-built traces of known extent around the window [01:00, 02:00) before ``--at 02:00``:
the histogram's buckets must equal the counts made by hand, and promtool must accept it.
"""

from __future__ import annotations

import shutil
import subprocess

import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from obslib import load
from obslib.ingest import batch
from obslib.jobs import slo_evaluation as evaluation
from obslib.traces.sets import trace_summaries
from tests.builders import slo_definitions
from tests.conftest import run_cli
from tests.ids import sid, tid

T0 = pd.Timestamp("2026-11-01 00:00", tz="UTC")
AT = T0 + pd.Timedelta(hours=2)
MS = pd.Timedelta(milliseconds=1)
SLO = slo_definitions(service_name="svc", target_value=99.0, measurement_window_hours=1)
# (trace, span, parent, service, operation, start, duration in ms)
SPANS = [
    ("a1", "root", None, "svc", "GET /a", T0 + pd.Timedelta("61min"), 20),
    ("a2", "root", None, "svc", "GET /a", T0 + pd.Timedelta("62min"), 100),  # on a bound
    ("a3", "root", None, "svc", "GET /a", T0 + pd.Timedelta("63min"), 50),
    ("a3", "db", "root", "db", "query", T0 + pd.Timedelta("63min") + 10 * MS, 290),  # outlives
    ("b1", "root", None, "svc", "GET /b", T0 + pd.Timedelta("64min"), 12_000),
    ("c1", "root", "root", "gw", "POST /c", T0 + pd.Timedelta("65min"), 4),  # own parent
    # cut by the window's start: its child, an orphan in the window, is its root there
    ("cut", "root", None, "svc", "GET /a", T0 + pd.Timedelta("59min"), 120_000),
    ("cut", "db", "root", "db", "query", T0 + pd.Timedelta("60min"), 200),
    ("early", "root", None, "svc", "GET /a", T0 + pd.Timedelta("30min"), 20),  # before
    ("late", "root", None, "svc", "GET /a", AT, 20),  # at --at: after the window
]
INF = float("inf")
BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, INF]
# counted by hand: GET /a 0.02, 0.1 and 0.3 (a3's extent: 10 ms + 290 ms), GET /b 12 s,
# POST /c 0.004 s, the cut trace's orphan 0.2 s
BY_HAND = {
    ("svc", "GET /a"): ([0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3], 0.42),
    ("svc", "GET /b"): ([0] * 14 + [1], 12.0),
    ("gw", "POST /c"): ([1] * 15, 0.004),
    ("db", "query"): ([0] * 6 + [1] * 9, 0.2),
}


def _frame() -> pd.DataFrame:
    rows = [
        {
            "trace_id": tid(trace),
            "span_id": sid(f"{trace} {span}"),
            "parent_span_id": parent and sid(f"{trace} {parent}"),
            "service_name": service,
            "operation_name": operation,
            "span_kind": "server",
            "start_time": start,
            "end_time": start + ms * MS,
            "status": "ok",
        }
        for trace, span, parent, service, operation, start, ms in SPANS
    ]
    return pd.DataFrame(rows)


@pytest.fixture
def latency_db(migrated_db: str) -> str:
    with batch(migrated_db) as b:
        b.slos(SLO)
        b.spans(_frame())
    return migrated_db


def _histogram(text: str) -> dict[tuple[str, str], tuple[list[float], float]]:
    found: dict[tuple[str, str], dict] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "domainflow_trace_latency_seconds":
            continue
        assert family.type == "histogram"
        for s in family.samples:
            key = (s.labels["service_name"], s.labels["operation"])
            d = found.setdefault(key, {"le": {}})
            if s.name.endswith("_bucket"):
                d["le"][float(s.labels["le"])] = s.value
            elif s.name.endswith("_sum"):
                d["sum"] = s.value
            elif s.name.endswith("_count"):
                d["count"] = s.value
    out = {}
    for key, d in found.items():
        counts = [d["le"][b] for b in BOUNDS]
        assert d["count"] == counts[-1]
        out[key] = (counts, d["sum"])
    return out


def test_export_prom_buckets_equal_the_counts_made_by_hand(latency_db: str, tmp_path) -> None:
    """Buckets, sums and counts per root service and operation match BY_HAND."""
    out = tmp_path / "slo.prom"
    env = {"OBSLIB_DATABASE_URL": latency_db}
    done = run_cli("slo", "export-prom", "--out", str(out), "--at", AT.isoformat(), env=env)
    assert done.returncode == 0, done.stderr
    got = _histogram(out.read_text())
    assert sorted(got) == sorted(BY_HAND)
    for key, (counts, total) in BY_HAND.items():
        assert got[key][0] == counts, key
        assert got[key][1] == pytest.approx(total), key
    assert "domainflow_slo_status" in out.read_text()  # the SLO gauges stay beside it


def test_the_sql_roots_agree_with_trace_summaries(latency_db: str) -> None:
    """The loader's roots and extents equal obslib.traces.trace_summaries on the window's
    spans (the pandas root rule)."""
    lo = AT - evaluation.LATENCY_WINDOW
    roots = load.telemetry.trace_roots(lo, AT, url=latency_db)
    summaries = trace_summaries(load.spans(lo, AT, url=latency_db)).sort_values("trace_id")
    assert list(roots["trace_id"]) == list(summaries["trace_id"])
    assert list(roots["service_name"]) == list(summaries["root_service"])
    assert list(roots["operation_name"]) == list(summaries["root_operation"])
    assert roots["duration_ms"].to_numpy() == pytest.approx(summaries["duration_ms"].to_numpy())


def test_a_longer_latency_window_counts_the_earlier_traces(latency_db: str, tmp_path) -> None:
    """--latency-window 2h reaches back to 00:00: the early and whole cut traces count."""
    out = tmp_path / "slo.prom"
    env = {"OBSLIB_DATABASE_URL": latency_db}
    args = ("--out", str(out), "--at", AT.isoformat(), "--latency-window", "2h")
    done = run_cli("slo", "export-prom", *args, env=env)
    assert done.returncode == 0, done.stderr
    got = _histogram(out.read_text())
    assert got[("svc", "GET /a")][0][-1] == 5  # a1, a2, a3, early and the whole cut trace
    assert ("db", "query") not in got


def test_a_bad_latency_window_is_refused(tmp_path) -> None:
    """--latency-window must be a positive duration (exit 2 before any work)."""
    out = tmp_path / "slo.prom"
    args = ("--out", str(out), "--latency-window", "soon")
    done = run_cli("slo", "export-prom", *args, env={"OBSLIB_DATABASE_URL": "x"})
    assert done.returncode == 2, done.stderr
    assert "--latency-window" in done.stderr


def test_promtool_accepts_the_file(latency_db: str, tmp_path) -> None:
    """`promtool check metrics < file` finds no problem in the export."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed")
    out = tmp_path / "slo.prom"
    env = {"OBSLIB_DATABASE_URL": latency_db}
    done = run_cli("slo", "export-prom", "--out", str(out), "--at", AT.isoformat(), env=env)
    assert done.returncode == 0, done.stderr
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=out.read_bytes(), capture_output=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
