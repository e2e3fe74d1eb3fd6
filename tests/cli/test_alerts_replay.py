"""``obslib alerts replay`` and ``obslib slo export --format prometheus-rules`` end to end on
the test demo: the commands a user runs, through the real CLI."""

from __future__ import annotations

import shutil
import subprocess

import pytest

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
