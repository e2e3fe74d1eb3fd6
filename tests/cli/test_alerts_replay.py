"""``obslib alerts replay`` and ``obslib slo export --format prometheus-rules`` end to end on
the test demo: the commands a user runs, through the real CLI."""

from __future__ import annotations

import shutil
import subprocess

import pandas as pd
import pytest

from tests.builders import slo_definitions, span
from tests.conftest import run_cli


def test_the_demo_incidents_replay_through_the_shipped_config(demo_db) -> None:
    url, _ = demo_db
    result = run_cli("alerts", "replay", env={"OBSLIB_DATABASE_URL": url}, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("39 incidents replayed: incidents 39, notifications ")
    assert "receiver  notifications" in lines
    assert any(line.startswith("INC-20261114-0001  ") for line in lines)


def test_a_bad_config_is_one_line_naming_file_and_place_and_exit_2(demo_db, tmp_path) -> None:
    bad = tmp_path / "am.yml"
    bad.write_text(
        "route:\n  receiver: a\n  routes:\n    - matchers: ['sev=\"x']\nreceivers:\n  - name: a\n"
    )
    url, _ = demo_db
    result = run_cli("alerts", "replay", "--config", str(bad), env={"OBSLIB_DATABASE_URL": url})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"obslib: error: {bad}: route.routes[0].matchers[0]: matcher value lacks its closing"
        " double quote: 'sev=\"x'"
    ]


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool (Debian's prometheus) is not installed"
)
def test_the_demo_slos_export_as_rules_promtool_accepts(demo_db, tmp_path) -> None:
    url, _ = demo_db
    out = tmp_path / "slo-rules.yml"
    result = run_cli(
        "slo", "export", "--format", "prometheus-rules", "--out", str(out),
        env={"OBSLIB_DATABASE_URL": url},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"wrote {out} (")
    check = subprocess.run(["promtool", "check", "rules", str(out)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


# -- --compare judges the incidents by the one false-positive rule ---------------------------

T0 = pd.Timestamp("2026-11-01 12:00", tz="UTC")
MIN = pd.Timedelta(minutes=1)
UNTIL = T0 + 2 * pd.Timedelta(hours=1)


def _judged_history(url: str) -> None:
    """pay and search have a 1-day 99 % availability SLO and serve 10 requests a minute from
    3 h before T0; pay fails every request for 40 min around T0 (its page rule fires), search
    never fails. mail has no SLO. One incident each: pay's has a breach behind it (real),
    search's none (false positive), mail's cannot be judged (unknown)."""
    from obslib.ingest import batch

    minutes = range(-180, 120)
    spans = pd.DataFrame(
        [
            span(
                f"{service} {m} {k}",
                f"{service} {m} {k}",
                service=service,
                start=T0 + m * MIN + k * pd.Timedelta(seconds=6),
                status="error" if service == "pay" and -10 <= m < 30 else "ok",
            )
            for service in ("pay", "search")
            for m in minutes
            for k in range(10)
        ]
    )
    slos = slo_definitions(
        {"service_name": "pay"},
        {"service_name": "search"},
        target_value=99.0,
        measurement_window_hours=24,
    )
    definitions = pd.DataFrame(
        [
            (f"{s}-errors", s, "threshold", "errors", "> 1", "high")
            for s in ("pay", "search", "mail")
        ],
        columns=[
            "alert_name", "service_name", "alert_type", "metric_name",
            "condition_expression", "severity",
        ],
    )  # fmt: skip
    found = pd.DataFrame(
        [
            ("P", "pay-errors", "high", T0, T0 + 30 * MIN),
            ("S", "search-errors", "high", T0 + 5 * MIN, T0 + 35 * MIN),
            ("M", "mail-errors", "high", T0 + 10 * MIN, T0 + 40 * MIN),
        ],
        columns=["incident_id", "alert_name", "severity", "triggered_at", "resolved_at"],
    ).assign(status="resolved")
    with batch(url) as b:
        b.slos(slos)
        b.alert_definitions(definitions)
        b.spans(spans)
        b.incidents(found)


def _am(path, group_wait: str):
    path.write_text(
        "route:\n  receiver: on-call\n  group_by: [alertname]\n"
        f"  group_wait: {group_wait}\nreceivers:\n  - name: on-call\n"
    )
    return str(path)


def test_compare_counts_a_delayed_real_incident_and_not_a_delayed_false_positive(
    migrated_db: str, tmp_path
) -> None:
    """Config b waits 5 min instead of 30 s before each first page: all three incidents are
    notified 4 min 30 s later, but only pay's (a breach behind it) and mail's (unknown,
    counted as real) are real incidents delayed; search's false positive is not counted.
    The verdicts are the observability health report's for the same window."""
    from obslib.views.observability_health import observability_health

    _judged_history(migrated_db)
    a, b = _am(tmp_path / "a.yml", "30s"), _am(tmp_path / "b.yml", "5m")
    since = UNTIL - pd.Timedelta(hours=2)
    result = run_cli(
        "alerts", "replay", "--config", a, "--compare", b,
        "--since", f"{since:%Y-%m-%dT%H:%M:%SZ}", "--until", f"{UNTIL:%Y-%m-%dT%H:%M:%SZ}",
        env={"OBSLIB_DATABASE_URL": migrated_db},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"3 incidents replayed: 3 pages under {a}, 3 under {b} (0 saved), "
        "merged into another's page: 0; 2 delayed (longest 4 min 30 s), 0 dropped, of the real "
        "incidents (judged real 1, false positive 1, unknown 1: unknown counts as real)"
    )
    rows = {line.split()[0]: line.split()[2] for line in lines[2:]}
    assert rows == {"P": "real", "S": "false", "M": "unknown"}

    health = observability_health("2h", f"{UNTIL:%Y-%m-%dT%H:%M:%SZ}", url=migrated_db)
    verdicts = dict(zip(health.verdicts["incident_id"], health.verdicts["verdict"], strict=True))
    assert verdicts == {"P": "real", "S": "false_positive", "M": "unknown"}
