"""Reading an alertmanager.yml: the route tree and inhibit rules, durations, matchers, the
refusals (one line: file, path in the document, problem), and routing checked against
Alertmanager's own ``amtool``; then the replay driven by a config."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from obslib.alerts import amconfig
from obslib.errors import InputError

AMTOOL = shutil.which("amtool")
needs_amtool = pytest.mark.skipif(AMTOOL is None, reason="amtool (prometheus-alertmanager) absent")

NESTED = """\
route:
  receiver: default
  group_by: [alertname]
  repeat_interval: 1h
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      continue: true
    - matchers: ['service=~"api|web"']
      receiver: frontend
      group_by: ['...']
      group_wait: 10s
      routes:
        - matchers: ['severity!="low"', 'alert_type!~"lat.*"']
          receiver: frontend-urgent
        - match: {severity: low}
          receiver: frontend-low
    - match_re: {service: "db.*"}
      receiver: database
      group_wait: 1m30s
    - matchers: ['{alertname="a,b", service!="x"}']
      receiver: quoted
receivers:
  - name: default
  - name: pager
  - name: frontend
  - name: frontend-urgent
  - name: frontend-low
  - name: database
  - name: quoted
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity=~"high|low"']
    equal: [service]
"""

LABEL_SETS = [
    {"alertname": "x", "service": "api", "severity": "critical"},
    {"alertname": "x", "service": "api", "severity": "critical", "alert_type": "latency"},
    {"alertname": "x", "service": "web", "severity": "low"},
    {"alertname": "x", "service": "web", "severity": "medium", "alert_type": "latency"},
    {"alertname": "x", "service": "webby", "severity": "high"},
    {"alertname": "y", "service": "db1", "severity": "critical"},
    {"alertname": "y", "service": "db", "severity": "low"},
    {"alertname": "a,b", "service": "queue", "severity": "low"},
    {"alertname": "a,b", "service": "x", "severity": "low"},
    {"service": "zzz"},
    {"alertname": "api-errors", "service": "api-gateway", "severity": "critical"},
]


def _config_file(tmp_path: Path, text: str, name: str = "alertmanager.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _amtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([AMTOOL, *args], capture_output=True, text=True, timeout=60)


def test_the_tree_is_read_with_inherited_settings_and_alertmanagers_defaults() -> None:
    """Children inherit receiver, group_by and timers; the root has 30s / 5m / 4h unless
    it says otherwise."""
    cfg = amconfig.parse_config(NESTED, "nested.yml")
    root = cfg.route
    assert (root.group_wait, root.group_interval) == (pd.Timedelta("30s"), pd.Timedelta("5m"))
    assert root.repeat_interval == pd.Timedelta("1h")
    pager, front, db, quoted = root.routes
    assert pager.continue_ and pager.group_by == ("alertname",)
    assert front.group_by == ("...",) and front.group_wait == pd.Timedelta("10s")
    urgent, low = front.routes
    assert urgent.group_by == ("...",) and urgent.group_wait == pd.Timedelta("10s")
    assert (
        urgent.repeat_interval == pd.Timedelta("1h") and urgent.path == "route.routes[1].routes[0]"
    )
    assert [str(m) for m in urgent.matchers] == ['severity!="low"', 'alert_type!~"lat.*"']
    assert [str(m) for m in low.matchers] == ['severity="low"']
    assert [str(m) for m in db.matchers] == ['service=~"db.*"']
    assert db.group_wait == pd.Timedelta("90s")
    assert [str(m) for m in quoted.matchers] == ['alertname="a,b"', 'service!="x"']
    (rule,) = cfg.inhibit_rules
    assert rule.equal == ("service",) and str(rule.target[0]) == 'severity=~"high|low"'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", pd.Timedelta(seconds=30)),
        ("5m", pd.Timedelta(minutes=5)),
        ("4h", pd.Timedelta(hours=4)),
        ("1d", pd.Timedelta(days=1)),
        ("1h30m", pd.Timedelta(minutes=90)),
        ("1w2d", pd.Timedelta(days=9)),
        ("1500ms", pd.Timedelta(milliseconds=1500)),
        ("0", pd.Timedelta(0)),
    ],
    ids=lambda v: str(v),
)
def test_durations_read_as_prometheus_reads_them(text: str, expected: pd.Timedelta) -> None:
    assert amconfig.parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "5", "1.5h", "30m1h", "5 m", "-5m", "5min"], ids=lambda v: repr(v)
)
def test_a_duration_prometheus_refuses_is_refused(text: str) -> None:
    with pytest.raises(InputError, match="not a duration"):
        amconfig.parse_duration(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('severity="critical"', ("severity", "=", "critical")),
        ("severity=critical", ("severity", "=", "critical")),
        (' service !~ "db.*" ', ("service", "!~", "db.*")),
        ('alertname="say \\"hi\\""', ("alertname", "=", 'say "hi"')),
        ('team!=""', ("team", "!=", "")),
    ],
    ids=["quoted", "bare", "spaces and a regex", "escaped quotes", "empty value"],
)
def test_matchers_parse_as_alertmanagers_do(text: str, expected: tuple) -> None:
    m = amconfig.parse_matcher(text)
    assert (m.name, m.op, m.value) == expected


def test_regex_matchers_are_anchored_and_a_missing_label_is_empty() -> None:
    m = amconfig.parse_matcher('service=~"api"')
    assert m.matches({"service": "api"}) and not m.matches({"service": "api-2"})
    assert amconfig.parse_matcher('team=""').matches({})
    assert amconfig.parse_matcher('team!~".+"').matches({"service": "api"})


BASE = "route:\n  receiver: r\n{route}receivers:\n  - name: r\n{tail}"


BAD = [
    ("  groupby: [a]\n", "", r"bad\.yml: route\.groupby: unknown key"),
    ("  group_wait: 5 minutes\n", "", r"bad\.yml: route\.group_wait: not a duration"),
    ("  group_interval: 0s\n", "", r"route\.group_interval: must be more than 0"),
    (
        "  routes:\n    - receiver: r\n    - receiver: r\n    - matchers: ['sev=\"a']\n",
        "",
        r"bad\.yml: route\.routes\[2\]\.matchers\[0\]: matcher value lacks its closing",
    ),
    (
        "  routes:\n    - matchers: ['sev=~\"(\"']\n",
        "",
        r"route\.routes\[0\]\.matchers\[0\]: bad regex",
    ),
    ("  routes:\n    - matchers: ['9sev=a']\n", "", r"matchers\[0\]: not a matcher"),
    ("  routes:\n    - receiver: nobody\n", "", r"routes\[0\]\.receiver: undefined receiver"),
    ("  group_by: ['...', service]\n", "", r"route\.group_by: '\.\.\.'"),
    (
        "  routes:\n    - mute_time_intervals: [night]\n",
        "",
        r"routes\[0\]\.mute_time_intervals: time intervals are not supported",
    ),
    (
        "  routes:\n    - active_time_intervals: [day]\n",
        "",
        r"routes\[0\]\.active_time_intervals: time intervals are not supported",
    ),
    (
        "",
        "inhibit_rules:\n  - source_matchers: [a=b]\n    eq: [x]\n",
        r"inhibit_rules\[0\]\.eq",
    ),
    ("", "inhibt_rules: []\n", r"bad\.yml: \(top level\)\.inhibt_rules: unknown key"),
    ("  receiver: s\n", "", r"line \d+: invalid YAML: duplicate key 'receiver'"),
]
BAD_IDS = [
    "an unknown route key",
    "a bad duration",
    "a zero group interval",
    "an unclosed quote in the third child's matcher",
    "a bad regex",
    "a bad label name",
    "an undefined receiver",
    "... with other labels",
    "mute time intervals",
    "active time intervals",
    "an unknown inhibit rule key",
    "an unknown top-level key",
    "a duplicate key",
]


@pytest.mark.parametrize(("route", "tail", "message"), BAD, ids=BAD_IDS)
def test_a_bad_config_is_refused_in_one_line_naming_file_path_and_problem(
    route: str, tail: str, message: str
) -> None:
    with pytest.raises(InputError, match=message) as err:
        amconfig.parse_config(BASE.format(route=route, tail=tail), "bad.yml")
    assert "\n" not in str(err.value) and str(err.value).startswith("bad.yml: ")


def test_the_root_route_takes_what_no_child_matches() -> None:
    cfg = amconfig.parse_config(NESTED, "nested.yml")
    assert amconfig.receivers_for(cfg, {"service": "zzz"}) == ["default"]
    assert amconfig.receivers_for(cfg, LABEL_SETS[0]) == ["pager", "frontend-urgent"]


@needs_amtool
def test_every_config_the_tests_use_passes_amtool_check_config(tmp_path: Path) -> None:
    shipped = Path(amconfig.__file__).with_name(amconfig.DEFAULT_CONFIG)
    for path in (_config_file(tmp_path, NESTED), shipped):
        done = _amtool("check-config", str(path))
        assert done.returncode == 0, done.stdout + done.stderr


@needs_amtool
@pytest.mark.parametrize(
    "labels", LABEL_SETS, ids=lambda ls: ",".join(f"{k}={v}" for k, v in ls.items())
)
def test_routing_agrees_with_amtool(tmp_path: Path, labels: dict) -> None:
    """``amtool config routes test`` prints the receivers, comma-separated, in order."""
    path = _config_file(tmp_path, NESTED)
    done = _amtool(
        "config",
        "routes",
        "test",
        f"--config.file={path}",
        *(f"{k}={v}" for k, v in labels.items()),
    )
    assert done.returncode == 0, done.stderr
    expected = done.stdout.strip().split(",")
    assert amconfig.receivers_for(amconfig.parse_config(NESTED, str(path)), labels) == expected


@needs_amtool
@pytest.mark.parametrize(("route", "tail", "message"), BAD, ids=BAD_IDS)
def test_alertmanager_refuses_every_config_obslib_refuses(
    tmp_path: Path, route: str, tail: str, message: str
) -> None:
    """Except the time intervals: valid there, not replayed here yet (these name an
    interval the file does not define, which amtool refuses too)."""
    path = _config_file(tmp_path, BASE.format(route=route, tail=tail))
    assert _amtool("check-config", str(path)).returncode != 0
