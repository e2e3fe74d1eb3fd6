"""`obslib slo export --format prometheus-rules` as a user meets it: the metric-name options,
--service and --min-events, bad values refused on one line (exit 2) before connecting, and
promtool accepting what non-default options write (on the demo's SLOs)."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess

import pytest
import yaml

from obslib.cli import build_parser, main
from obslib.cli import slo as slo_cli
from obslib.slo import DEFAULT_MIN_EVENTS
from obslib.slo.prometheus import MetricNames
from tests.conftest import run_cli

PROMTOOL = shutil.which("promtool")


def _subcommand(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


def _guards(expr: str) -> set[str]:
    """The event counts an alert's minimum-traffic guard compares with (each rung's events
    at least the guard, earlier rungs' under it: ``status.guard_ladder``)."""
    return set(re.findall(r"slo:sli_events:increase\w+\{[^}]*\} (?:>=|<) (\d+)\)", expr))


def _exit_code(argv: list[str]) -> int:
    """``obslib ARGV`` in this process: its exit code, argparse's refusals included."""
    try:
        return main(argv)
    except SystemExit as stop:
        return int(stop.code)


def test_the_help_names_the_replays_guard_and_the_conventions_names() -> None:
    """--help shows the replay's minimum-traffic guard (without importing it) and every
    default of the metric-name convention, the same as MetricNames'."""
    assert slo_cli.MIN_EVENTS_SHOWN == DEFAULT_MIN_EVENTS
    defaults = MetricNames()
    for option, field, default, _metavar, _what in slo_cli.METRIC_OPTIONS:
        assert getattr(defaults, field) == default, option
    export = _subcommand(_subcommand(build_parser(), "slo"), "export")
    text = " ".join(export.format_help().split())
    assert f"(default {DEFAULT_MIN_EVENTS}, the replay's)" in text
    for option, *_ in slo_cli.METRIC_OPTIONS:
        assert option in text


BAD = {
    "a metric name with a space": (["--requests-metric", "http requests"], "--requests-metric"),
    "a histogram name starting with a digit": (["--latency-histogram", "9s"], "--latency-histogram"),  # noqa: E501
    "a label name with a dash": (["--status-label", "status-code"], "--status-label"),
    "a reserved label name": (["--service-label", "__name__"], "--service-label"),
    "the histogram's le as the status label": (["--status-label", "le"], "--status-label"),
    "the same label for service and status": (["--status-label", "service"], "--status-label"),
    "an error status that does not compile": (["--error-status", "5(0"], "--error-status"),
    "an error status with a look-ahead": (["--error-status", "(?!2)..."], "--error-status"),
    "an empty error status": (["--error-status", ""], "--error-status"),
    "a selector that closes the braces": (['--selector', 'a="x"} or vector(1) {'], "--selector"),
    "a selector with an unknown escape": (["--selector", 'a="\\q"'], "--selector"),
    "a selector without quotes": (["--selector", "job=api"], "--selector"),
    "a negative guard": (["--min-events", "-1"], "--min-events"),
    "a guard that is not a number": (["--min-events", "ten"], "--min-events"),
}  # fmt: skip


@pytest.mark.parametrize(("extra", "named"), BAD.values(), ids=BAD.keys())
def test_a_bad_value_is_one_line_naming_its_option_and_exit_2(
    extra, named, capsys, monkeypatch
) -> None:
    """Refused before any database is reached (the URL here reaches nothing)."""
    monkeypatch.setenv("OBSLIB_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    assert _exit_code(["slo", "export", "--format", "prometheus-rules", *extra]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert named in err, err


def test_rule_options_are_refused_with_the_openslo_format(capsys, monkeypatch) -> None:
    """--service, --min-events and the metric names mean nothing to OpenSLO documents."""
    monkeypatch.setenv("OBSLIB_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    code = main(
        ["slo", "export", "--format", "openslo", "--service", "api", "--status-label", "code"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err == "obslib: error: --status-label, --service: only with --format prometheus-rules\n"


OPTIONS = [
    "--service", "domain-service",
    "--service", "api-gateway",
    "--min-events", "3",
    "--requests-metric", "http_requests_total",
    "--service-label", "job",
    "--status-label", "code",
    "--error-status", "5..|429",
    "--latency-histogram", "http_request_duration_seconds",
    "--selector", 'handler!="/metrics", env=~"prod|canary"',
]  # fmt: skip


def test_non_default_options_shape_the_rule_file_and_promtool_accepts_it(demo_db, tmp_path):
    """On the demo's SLOs: only the services asked for, the guard given, the names given,
    and `promtool check rules` passes."""
    url, _summary = demo_db
    out = tmp_path / "rules.yml"
    done = run_cli(
        "slo", "export", "--format", "prometheus-rules", "--out", str(out), *OPTIONS,
        env={"OBSLIB_DATABASE_URL": url},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"wrote {out} (4 SLOs)\n"
    text = out.read_text()
    groups = yaml.safe_load(text)["groups"]
    assert {g["name"] for g in groups} == {
        "obslib-slo-domain-service-availability",
        "obslib-slo-domain-service-latency-p99-400ms",
        "obslib-slo-api-gateway-availability",
        "obslib-slo-api-gateway-latency-p99-300ms",
    }
    alerts = [r for g in groups for r in g["rules"] if "alert" in r]
    assert all(_guards(a["expr"]) == {"3"} for a in alerts)
    sel = 'handler!="/metrics", env=~"prod|canary"'
    assert f'http_requests_total{{job="domain-service",code=~"5..|429",{sel}}}' in text
    assert f'http_request_duration_seconds_bucket{{job="api-gateway",le="0.3",{sel}}}' in text
    assert "service_request" not in text and "status=" not in text
    if PROMTOOL is None:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", str(out)], capture_output=True, text=True, timeout=120
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_default_guard_is_the_replays_and_an_unknown_service_is_refused(demo_db):
    """Without --min-events the rules guard on the replay's minimum; --service of a service
    without enabled SLOs is one line, exit 2."""
    url, _summary = demo_db
    env = {"OBSLIB_DATABASE_URL": url}
    done = run_cli("slo", "export", "--format", "prometheus-rules", env=env)
    assert done.returncode == 0, done.stderr
    alerts = [r for g in yaml.safe_load(done.stdout)["groups"] for r in g["rules"] if "alert" in r]
    assert all(_guards(a["expr"]) == {str(DEFAULT_MIN_EVENTS)} for a in alerts)
    refused = run_cli(
        "slo", "export", "--format", "prometheus-rules", "--service", "nowhere", env=env
    )
    assert refused.returncode == 2
    assert refused.stderr == "obslib: error: no enabled SLO for service nowhere\n"
