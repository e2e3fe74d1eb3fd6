"""Reading an alertmanager.yml: the route tree and inhibit rules, durations, matchers, the
refusals (one line: file, path in the document, problem), and routing checked against
Alertmanager's own ``amtool``; then the replay driven by a config."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from obslib import alerts
from obslib.alerts import amconfig
from obslib.errors import InputError
from tests.alerts.conftest import incident_frame

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
        r"routes\[0\]\.mute_time_intervals\[0\]: undefined time interval 'night'",
    ),
    (
        "  routes:\n    - active_time_intervals: [day]\n",
        "",
        r"routes\[0\]\.active_time_intervals\[0\]: undefined time interval 'day'",
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
    "an undefined mute time interval",
    "an undefined active time interval",
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
    """The same file, refused by ``amtool check-config`` too."""
    path = _config_file(tmp_path, BASE.format(route=route, tail=tail))
    assert _amtool("check-config", str(path)).returncode != 0


T0 = pd.Timestamp("2026-11-01 10:00", tz="UTC")
MIN = pd.Timedelta(minutes=1)
SEC = pd.Timedelta(seconds=1)
# The observability health view's route before it was a file: the shipped config must
# replay exactly as it did.
FIXED_ROUTE = alerts.Route(group_by=("service",))
FIXED_INHIBIT = tuple(
    alerts.InhibitRule({"severity": "critical"}, {"severity": s}, ("service",))
    for s in ("high", "medium", "low")
)


STREAM = [
    ("A", "api-errors", "api", "critical", T0, T0 + 270 * MIN),
    ("B", "api-latency", "api", "high", T0 + 20 * SEC, T0 + 40 * MIN),
    ("C", "api-saturation", "api", "high", T0 + 2 * MIN, T0 + 50 * MIN),
    ("D", "api-disk", "api", "medium", T0 + 10 * MIN, T0 + 20 * MIN),
    ("E", "db-slow", "db", "high", T0 + 3 * MIN, T0 + 3 * MIN + 20 * SEC),
    ("G", "db-disk", "db", "low", T0 + 4 * MIN, T0 + 6 * MIN),
    ("H", "db-disk", "db", "low", T0 + 7 * 60 * MIN, pd.NaT),
    ("I", "web-down", "web", "critical", T0 + 30 * MIN, T0 + 31 * MIN),
]


@pytest.mark.parametrize("until", [None, T0 + 8 * 60 * MIN], ids=["to the end", "to 18:00"])
def test_the_shipped_config_replays_exactly_as_the_fixed_route_did(until) -> None:
    """Same notifications and fates; the config adds route, receiver and waited columns."""
    frame = incident_frame(STREAM)
    fixed = alerts.replay_notifications(frame, FIXED_ROUTE, FIXED_INHIBIT, until=until)
    shipped = alerts.replay_notifications(frame, until=until, config=amconfig.default_config())
    assert shipped.notifications.drop(columns=["route", "receiver"]).equals(fixed.notifications)
    assert shipped.fates.drop(columns=["route", "receiver", "waited"]).equals(fixed.fates)
    assert shipped.summary == fixed.summary
    assert set(shipped.notifications["receiver"]) == {"on-call"}
    assert shipped.fates.set_index("incident_id").loc["A", "waited"] == 30 * SEC


ROUTED = """\
route:
  receiver: tickets
  group_by: [service]
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      group_wait: 10s
      continue: true
    - matchers: ['service="db"']
      receiver: dba
      group_by: [alertname]
      group_wait: 1m
    - matchers: ['service="web"']
      receiver: web-team
receivers:
  - name: tickets
  - name: pager
  - name: dba
  - name: web-team
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="medium"']
    equal: [service]
"""


def test_each_incident_is_replayed_in_every_route_it_reaches_with_that_routes_timers() -> None:
    """A (critical, api) pages at 10 s and nothing else: no later sibling matches, and the
    root takes only what no child took. B and C go to tickets (30 s, 5 min); the db
    incidents to dba, grouped by alert name after a minute (E resolved before it: silent);
    D is muted by A; I (critical, web) pages and, by continue, reaches web-team."""
    frame = incident_frame(STREAM)
    replay = alerts.replay_notifications(frame, config=amconfig.parse_config(ROUTED, "r.yml"))
    notes = replay.notifications[["at", "receiver", "reason", "alerts"]]
    assert [(at - T0, *rest) for at, *rest in notes.itertuples(index=False)] == [
        (10 * SEC, "pager", "first", ("A",)),
        (50 * SEC, "tickets", "first", ("B",)),
        (5 * MIN, "dba", "first", ("G",)),
        (5 * MIN + 50 * SEC, "tickets", "new alerts", ("B", "C")),
        (30 * MIN + 10 * SEC, "pager", "first", ("I",)),
        (30 * MIN + 30 * SEC, "web-team", "first", ("I",)),
        (4 * 60 * MIN + 5 * MIN + 10 * SEC, "pager", "repeat", ("A",)),
        (7 * 60 * MIN + 1 * MIN, "dba", "first", ("H",)),
    ]
    fates = replay.fates.set_index(["incident_id", "receiver"])
    assert fates.loc[("D", "tickets"), "fate"] == "inhibited"
    assert fates.loc[("E", "dba"), "fate"] == "silent"
    assert fates.loc[("I", "web-team"), "waited"] == 30 * SEC
    assert fates.loc[("C", "tickets"), "waited"] == 3 * MIN + 50 * SEC
    assert len(replay.fates) == len(frame) + 1  # I reaches two routes
    assert replay.summary["incidents"] == len(frame)


@needs_amtool
def test_the_replays_config_passes_amtool_and_routes_as_amtool_does(tmp_path: Path) -> None:
    path = _config_file(tmp_path, ROUTED)
    assert _amtool("check-config", str(path)).returncode == 0
    cfg = amconfig.parse_config(ROUTED, str(path))
    for _, name, service, severity, *_ in STREAM:
        labels = {"alertname": name, "service": service, "severity": severity}
        labels["alert_type"] = "threshold"
        args = [f"{k}={v}" for k, v in labels.items()]
        done = _amtool("config", "routes", "test", f"--config.file={path}", *args)
        assert amconfig.receivers_for(cfg, labels) == done.stdout.strip().split(",")


def test_a_config_and_a_route_together_are_refused() -> None:
    with pytest.raises(InputError, match="a config, or a route"):
        alerts.replay_notifications(
            incident_frame(STREAM), FIXED_ROUTE, config=amconfig.default_config()
        )


def test_unpaged_counts_an_incident_paged_by_any_route_as_paged() -> None:
    """With the routed config, A was paged by pager only; D (inhibited) and E (silent) are
    the unpaged ones, once each."""
    frame = incident_frame(STREAM)
    replay = alerts.replay_notifications(frame, config=amconfig.parse_config(ROUTED, "r.yml"))
    got = alerts.unpaged(replay, frame)
    assert got[["incident_id", "fate"]].values.tolist() == [["E", "silent"], ["D", "inhibited"]]


LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + k)}: &{chr(98 + k)} [{', '.join(['*' + chr(97 + k)] * 10)}]\n" for k in range(6)
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (LAUGHS, r"hostile\.yml: line \d+: invalid YAML: aliases expand it past"),
        (b"route:\n  receiver: \xff\n", r"hostile\.yml: \(file\): not UTF-8"),
        ("# " + "x" * (11 * 2**20), r"hostile\.yml: \(file\): larger than 10 MB"),
        ("route: [", r"hostile\.yml: line \d+: invalid YAML"),
        ("- just\n- a list\n", r"hostile\.yml: \(top level\): must be a mapping"),
        (
            "route:\n  receiver: r\n  routes:\n"
            + "".join("  " * (k + 2) + "- routes:\n" for k in range(70)),
            r"nested more than 64 deep",
        ),
    ],
    ids=["billion laughs", "not UTF-8", "11 MB", "broken YAML", "not a mapping", "deep"],
)
def test_hostile_yaml_is_refused_in_one_line(text, message) -> None:
    with pytest.raises(InputError, match=message) as err:
        amconfig.parse_config(text, "hostile.yml")
    assert "\n" not in str(err.value)


DEMO_ROUTES = """\
route:
  receiver: default
  group_by: [service]
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      continue: true
    - matchers: ['service=~"domain-service|api-gateway"']
      receiver: core
      routes:
        - matchers: [alert_type="anomaly"]
          receiver: core-tickets
    - matchers: ['alertname=~".*-anomaly"', 'severity!="critical"']
      receiver: tickets
      group_by: ['...']
    - match_re: {service: "dns.*"}
      receiver: infra
      group_interval: 10m
receivers:
  - name: default
  - name: pager
  - name: core
  - name: core-tickets
  - name: tickets
  - name: infra
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity!="critical"']
    equal: [service]
"""


@pytest.fixture(scope="module")
def demo_incidents() -> pd.DataFrame:
    """The demo's scripted incidents and background noise, with their alerts' service and
    type, as ``load.incidents`` returns them (no database needed)."""
    from obslib.demo import events, topology

    found = events.alert_incidents().drop(columns=["service_name", "alert_type"], errors="ignore")
    defs = topology.ALERTS[["alert_name", "service_name", "alert_type"]]
    return found.merge(defs, on="alert_name", how="left", validate="many_to_one")


@needs_amtool
@pytest.mark.parametrize("text", [DEMO_ROUTES, None], ids=["a routed config", "the shipped one"])
def test_every_demo_label_set_routes_as_amtool_routes_it(
    tmp_path: Path, demo_incidents: pd.DataFrame, text: str | None
) -> None:
    shipped = Path(amconfig.__file__).with_name(amconfig.DEFAULT_CONFIG)
    path = shipped if text is None else _config_file(tmp_path, text)
    assert _amtool("check-config", str(path)).returncode == 0
    cfg = amconfig.parse_config(path.read_text(), str(path))
    columns = {"alertname": "alert_name", "service": "service_name", "severity": "severity"}
    columns["alert_type"] = "alert_type"
    sets = demo_incidents[list(columns.values())].drop_duplicates()
    assert len(sets) >= 5
    for row in sets.itertuples(index=False):
        labels = dict(zip(columns, row, strict=True))
        args = [f"{k}={v}" for k, v in labels.items()]
        done = _amtool("config", "routes", "test", f"--config.file={path}", *args)
        assert done.returncode == 0, done.stderr
        assert amconfig.receivers_for(cfg, labels) == done.stdout.strip().split(","), labels


def test_the_demo_history_replays_through_the_shipped_config_as_through_the_fixed_route(
    demo_incidents: pd.DataFrame,
) -> None:
    fixed = alerts.replay_notifications(demo_incidents, FIXED_ROUTE, FIXED_INHIBIT)
    shipped = alerts.replay_notifications(demo_incidents, config=amconfig.default_config())
    assert shipped.notifications.drop(columns=["route", "receiver"]).equals(fixed.notifications)
    assert shipped.fates.drop(columns=["route", "receiver", "waited"]).equals(fixed.fates)
    assert alerts.unpaged(shipped, demo_incidents).equals(alerts.unpaged(fixed, demo_incidents))
    cfg = amconfig.parse_config(DEMO_ROUTES, "demo.yml")
    routed = alerts.replay_notifications(demo_incidents, config=cfg)
    reached = routed.fates.groupby("incident_id", sort=False)["receiver"].agg(list).to_dict()
    for row in demo_incidents.itertuples(index=False):
        labels = {"alertname": row.alert_name, "service": row.service_name}
        labels |= {"severity": row.severity, "alert_type": row.alert_type}
        assert reached[row.incident_id] == amconfig.receivers_for(cfg, labels)


def test_an_unknown_key_that_is_no_identifier_is_not_quoted(tmp_path) -> None:
    """A file that is not an alertmanager.yml (a shadow file) names no line of it in the
    error: only the length of its first unknown key; a misspelt key is still named."""
    shadow = tmp_path / "shadow"
    shadow.write_text("root:$6$salt$SECRETHASH:19000:0:99999:7:::\n")
    with pytest.raises(InputError) as err:
        amconfig.read_config(shadow)
    assert "SECRETHASH" not in str(err.value) and "salt" not in str(err.value)
    assert str(err.value).endswith("(top level).<a key of 41 characters>: unknown key")
