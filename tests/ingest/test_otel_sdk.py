"""End to end with the real OpenTelemetry Python SDK: a three-service program (tests/otel_app.py)
exports through the SDK's OTLP/HTTP exporters, configured only by
``OTEL_EXPORTER_OTLP_ENDPOINT``, to the receiver (``obslib collect``); what is stored is what
the SDK recorded, the trace investigation rebuilds it, and the same spans as an OTLP/JSON file
import alike."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pytest

from obslib.ingest.importer import import_file
from obslib.storage.migrate import Migrator
from obslib.views.trace_investigation import investigate_trace
from tests.ingest.test_receiver import collector
from tests.pg import MIGRATIONS, REPO, scratch_database

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SPAN_ROW = (
    "SELECT trace_id, span_id, parent_span_id, service_name, operation_name, span_kind,"
    " start_time, end_time, duration_ms, status, tags, logs FROM distributed_traces_tagged"
    " ORDER BY trace_id, span_id"
)


@dataclass
class Shop:
    """The program's run: the database the receiver wrote, what the SDK recorded."""

    url: str
    spans: list[dict[str, Any]]
    log: dict[str, str]
    otlp_json: Path
    summary: str


def micros(t: datetime) -> int:
    return (t - EPOCH) // timedelta(microseconds=1)


def migrated(server_url: str) -> Iterator[str]:
    with scratch_database(server_url) as url:
        Migrator(url, MIGRATIONS).up()
        yield url


@pytest.fixture(scope="module")
def shop(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """Run the instrumented program against ``obslib collect`` on a fresh database, once."""
    out = tmp_path_factory.mktemp("otel_app")
    for url in migrated(server_url):
        with collector(url, "--flush-ms", "50") as r:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("OBSLIB_", "OTEL_"))}
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = r.base
            app = subprocess.run(
                [sys.executable, "-m", "tests.otel_app", str(out)],
                env=env,
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert app.returncode == 0, app.stderr
            assert "Failed to export" not in app.stderr, app.stderr
            code, summary = r.stop()
        assert code == 0
        recorded = json.loads((out / "recorded.json").read_text())
        yield Shop(url, recorded["spans"], recorded["log"], out / "spans.otlp.json", summary)


@pytest.mark.slow
def test_stored_spans_equal_what_the_sdk_recorded(shop: Shop) -> None:
    """Ids, parents, names, kinds, status and times (to the microsecond, nanoseconds
    floored) of every span are what the SDK recorded; resource attributes become tags."""
    with psycopg.connect(shop.url) as conn:
        stored = conn.execute(SPAN_ROW).fetchall()
    got = {
        (r[0], r[1], r[2], r[3], r[4], r[5], r[9], micros(r[6]), micros(r[7]), r[10]["host.name"])
        for r in stored
    }
    want = {
        (
            s["trace_id"],
            s["span_id"],
            s["parent_span_id"],
            s["service_name"],
            s["operation_name"],
            s["span_kind"],
            "error" if s["status"] == "error" else "ok",
            s["start_ns"] // 1000,
            s["end_ns"] // 1000,
            s["host_name"],
        )
        for s in shop.spans
    }
    assert len(shop.spans) == 12
    assert got == want
    kinds = {(s["service_name"], s["span_kind"]) for s in shop.spans}
    assert {("frontend", "server"), ("checkout", "client"), ("payments", "internal")} <= kinds
    assert "spans 12 accepted, 0 duplicate, 0 rejected; log records 1 accepted" in shop.summary


@pytest.mark.slow
def test_the_log_is_stored_with_its_trace_context(shop: Shop) -> None:
    """The log record emitted in the failing span keeps that span's trace and span ids."""
    with psycopg.connect(shop.url) as conn:
        logs = conn.execute(
            "SELECT level, service_name, trace_id, span_id, message FROM structured_logs"
        ).fetchall()
    assert logs == [
        (
            "error",
            "payments",
            shop.log["trace_id"],
            shop.log["span_id"],
            "card declined for order 7",
        )
    ]


@pytest.mark.slow
def test_trace_investigation_rebuilds_the_failing_trace(shop: Shop) -> None:
    """The trace investigation finds the failing trace, rebuilds its six-deep tree under
    the frontend's server span, and walks the critical path down to the card charge."""
    trace = [s for s in shop.spans if s["trace_id"] == shop.log["trace_id"]]
    start = pd.Timestamp(min(s["start_ns"] for s in shop.spans), unit="ns", tz="UTC")
    end = pd.Timestamp(max(s["end_ns"] for s in shop.spans), unit="ns", tz="UTC")
    window = start.floor("min") - pd.Timedelta(minutes=1), end.ceil("min") + pd.Timedelta(minutes=1)
    inv = investigate_trace("", *window, url=shop.url)
    assert inv.found and inv.trace_id == shop.log["trace_id"]  # the default: the failing one
    spans = inv.spans.set_index("span_id")
    assert len(spans) == len(trace) == 6
    root = spans[spans["is_root"]]
    assert list(root["operation_name"]) == ["GET /checkout"]
    assert list(root["service_name"]) == ["frontend"]
    assert spans.loc[shop.log["span_id"], "depth"] == 5  # charge card, under five spans
    assert spans["depth"].max() == 5
    on_path = set(inv.path["span_id"])
    assert {root.index[0], shop.log["span_id"]} <= on_path
    assert int((spans["status"] != "ok").sum()) == 6
    logs = inv.trace.records
    assert list(logs["span_id"]) == [shop.log["span_id"]]


@pytest.mark.slow
def test_the_same_spans_as_otlp_json_import_identically(shop: Shop, server_url: str) -> None:
    """The SDK's spans written as OTLP/JSON and imported with ``obslib ingest``'s importer
    give the same rows, column for column, as the receiver stored."""
    for other in migrated(server_url):
        report = import_file(shop.otlp_json, "otlp", url=other)
        assert (report.outcome.spans.accepted, report.outcome.spans.rejected) == (12, 0)
        with psycopg.connect(shop.url) as a, psycopg.connect(other) as b:
            received, imported = a.execute(SPAN_ROW).fetchall(), b.execute(SPAN_ROW).fetchall()
    assert len(received) == 12
    assert imported == received
