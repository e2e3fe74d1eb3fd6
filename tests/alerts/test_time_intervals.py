"""Alertmanager time intervals: when one contains an instant (timeinterval.go ContainsTime),
how a bad one is refused (one line: file, path in the document, problem; and by amtool),
what a muted or active-only route does in the replay; and the inhibition sweep checked
against a brute-force reference on a random history."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from obslib import alerts
from obslib.alerts import amconfig, notifications
from obslib.alerts.time_intervals import TimeInterval
from obslib.errors import InputError

AMTOOL = shutil.which("amtool")
needs_amtool = pytest.mark.skipif(AMTOOL is None, reason="amtool (prometheus-alertmanager) absent")


def _amtool_check(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    path = tmp_path / "alertmanager.yml"
    path.write_text(text)
    return subprocess.run(
        [AMTOOL, "check-config", str(path)], capture_output=True, text=True, timeout=60
    )


def _config(intervals: str, route: str = "") -> str:
    """A config whose one child route is muted by ``night``, defined by ``intervals``
    (the items of a top-level ``time_intervals``)."""
    return (
        "route:\n  receiver: r\n  routes:\n    - receiver: r\n      mute_time_intervals: [night]\n"
        f"{route}receivers:\n  - name: r\ntime_intervals:\n  - name: night\n"
        f"    time_intervals:\n{intervals}"
    )


def _contains(intervals: str, at: str) -> bool:
    cfg = amconfig.parse_config(_config(intervals), "t.yml")
    return cfg.schedule(cfg.route.routes[0])(pd.Timestamp(at)) is False


# 2026-11-02 is a Monday; 2026-02 has 28 days; Paris is UTC+1 in winter, UTC+2 in summer.
CONTAINS = [
    ("      - times: [{start_time: 17:00, end_time: 24:00}]\n", "2026-11-02 17:00Z", True),
    ("      - times: [{start_time: 17:00, end_time: 24:00}]\n", "2026-11-02 23:59:59Z", True),
    ("      - times: [{start_time: 17:00, end_time: 18:00}]\n", "2026-11-02 18:00Z", False),
    ("      - times: [{start_time: 17:00, end_time: 18:00}]\n", "2026-11-02 16:59:59Z", False),
    ("      - weekdays: ['monday:friday']\n", "2026-11-06 12:00Z", True),
    ("      - weekdays: ['monday:friday']\n", "2026-11-07 12:00Z", False),
    ("      - weekdays: [Sunday]\n", "2026-11-08 00:00Z", True),
    ("      - days_of_month: [-1]\n", "2026-02-28 12:00Z", True),
    ("      - days_of_month: [-1]\n", "2026-03-30 12:00Z", False),
    ("      - days_of_month: [1:7]\n", "2026-11-07 23:00Z", True),
    ("      - days_of_month: [1:7]\n", "2026-11-08 00:00Z", False),
    ("      - days_of_month: ['-3:-1']\n", "2026-02-26 00:00Z", True),
    ("      - days_of_month: ['30:31']\n", "2026-02-28 00:00Z", False),
    ("      - days_of_month: ['25:31']\n", "2026-02-28 00:00Z", True),
    ("      - months: ['december:12', 'january:march']\n", "2026-02-01 00:00Z", True),
    ("      - months: [november]\n", "2026-12-01 00:00Z", False),
    ("      - years: ['2025:2026']\n", "2026-12-31 23:59Z", True),
    ("      - years: ['2025:2026']\n", "2027-01-01 00:00Z", False),
    (
        "      - times: [{start_time: 09:00, end_time: 17:00}]\n        location: Europe/Paris\n",
        "2026-11-02 08:00Z",
        True,
    ),
    (
        "      - times: [{start_time: 09:00, end_time: 17:00}]\n        location: Europe/Paris\n",
        "2026-07-02 07:00Z",
        True,
    ),
    (
        "      - times: [{start_time: 09:00, end_time: 17:00}]\n        location: Europe/Paris\n",
        "2026-11-02 07:59Z",
        False,
    ),
    (
        "      - weekdays: [saturday]\n        location: Australia/Sydney\n",
        "2026-11-06 14:00Z",
        True,
    ),
    (
        "      - weekdays: [monday]\n        times: [{start_time: '10:00', end_time: '11:00'}]\n",
        "2026-11-03 10:30Z",
        False,
    ),
    ("      - weekdays: [monday]\n      - weekdays: [tuesday]\n", "2026-11-03 10:30Z", True),
    ("      - times: []\n", "2026-11-03 10:30Z", False),
    ("      - {}\n", "2026-11-03 10:30Z", True),
]
CONTAINS_IDS = [
    "a time range includes its start",
    "24:00 ends the day",
    "a time range excludes its end",
    "a time range excludes the minute before",
    "a weekday range includes its end",
    "saturday is not monday to friday",
    "weekday names ignore case and sunday is a day",
    "-1 is the last day of a short month",
    "-1 is not the day before the last",
    "an unquoted day range is a range, not a base-60 number",
    "a day range excludes the day after",
    "a negative day range counts from the month's end",
    "a range past a short month's end is skipped",
    "a range crossing a short month's end is clamped",
    "month names and numbers mix, any range matches",
    "a month outside the list",
    "a year range is inclusive",
    "a year past the range",
    "times are read in the location (winter, UTC+1)",
    "times are read in the location (summer, UTC+2)",
    "before the location's morning",
    "friday afternoon UTC is saturday in Sydney",
    "every field must match",
    "any entry of a named interval matches",
    "an empty list matches nothing",
    "an entry with no field matches everything",
]


@pytest.mark.parametrize(("intervals", "at", "expected"), CONTAINS, ids=CONTAINS_IDS)
def test_a_time_interval_contains_an_instant_as_alertmanager_decides(
    intervals: str, at: str, expected: bool
) -> None:
    assert _contains(intervals, at) is expected


def test_an_interval_is_read_into_its_fields() -> None:
    """Weekdays count from Sunday = 0; times in minutes of the day, the end exclusive."""
    text = (
        "      - times: [{start_time: '08:30', end_time: '24:00'}]\n"
        "        weekdays: ['Monday:Wednesday', friday]\n"
        "        days_of_month: [1, '-7:-1']\n        months: ['may:august']\n"
        "        years: [2026]\n        location: America/New_York\n"
    )
    named = dict(amconfig.parse_config(_config(text), "t.yml").time_intervals)
    assert named["night"] == (
        TimeInterval(
            times=((510, 1440),),
            weekdays=((1, 3), (5, 5)),
            days_of_month=((1, 1), (-7, -1)),
            months=((5, 8),),
            years=((2026, 2026),),
            location="America/New_York",
        ),
    )


P = "time_intervals[0].time_intervals[0]"
BAD = [
    (
        "      - times: [{start_time: '25:00', end_time: '26:00'}]\n",
        f"{P}.times[0].start_time",
        "not a time of day: '25:00'",
    ),
    (
        "      - times: [{start_time: '9:00', end_time: '10:00'}]\n",
        f"{P}.times[0].start_time",
        "not a time of day",
    ),
    (
        "      - times: [{start_time: '10:00', end_time: '24:01'}]\n",
        f"{P}.times[0].end_time",
        "not a time of day",
    ),
    (
        "      - times: [{start_time: '10:00', end_time: '10:00'}]\n",
        f"{P}.times[0]",
        "start_time must be before end_time",
    ),
    ("      - times: [{start_time: '10:00'}]\n", f"{P}.times[0]", "both start_time and end_time"),
    ("      - times: [{start_time: '10:00', end: '11:00'}]\n", f"{P}.times[0].end", "unknown key"),
    ("      - weekdays: [monday, funday]\n", f"{P}.weekdays[1]", "not a valid value: 'funday'"),
    (
        "      - weekdays: ['friday:monday']\n",
        f"{P}.weekdays[0]",
        "'friday:monday': the start day is after",
    ),
    ("      - weekdays: ['monday:tuesday:friday']\n", f"{P}.weekdays[0]", "not a range"),
    ("      - days_of_month: [0]\n", f"{P}.days_of_month[0]", "0 is not a day of the month"),
    ("      - days_of_month: ['1:32']\n", f"{P}.days_of_month[0]", "32 is not a day of the month"),
    (
        "      - days_of_month: ['-1:5']\n",
        f"{P}.days_of_month[0]",
        "'-1:5': the end day must be negative",
    ),
    (
        "      - days_of_month: ['10:2']\n",
        f"{P}.days_of_month[0]",
        "'10:2': the end day is always before",
    ),
    (
        "      - months: ['march:january']\n",
        f"{P}.months[0]",
        "'march:january': the end month is before",
    ),
    ("      - months: [jan]\n", f"{P}.months[0]", "not a valid value: 'jan'"),
    ("      - years: ['2026:2020']\n", f"{P}.years[0]", "'2026:2020': the end year is before"),
    ("      - location: Mars/Olympus\n", f"{P}.location", "unknown time zone: 'Mars/Olympus'"),
    ("      - weekday: [monday]\n", f"{P}.weekday", "unknown key"),
    ("      - weekdays: monday\n", f"{P}.weekdays", "must be a list"),
    (
        "      - weekdays: [monday]\n  - name: night\n    time_intervals: []\n",
        "time_intervals[1].name",
        "time interval 'night' is defined twice",
    ),
    ("      - weekdays: [monday]\n  - time_intervals: []\n", "time_intervals[1].name", "missing"),
]
BAD_IDS = [
    "an hour past 23",
    "an hour without its leading zero",
    "a time past 24:00",
    "an empty time range",
    "a time range without its end",
    "an unknown key in a time range",
    "a weekday that does not exist",
    "a weekday range backwards",
    "a range of three",
    "day 0",
    "day 32",
    "a negative start with a positive end",
    "a day range always empty",
    "a month range backwards",
    "a month abbreviated",
    "a year range backwards",
    "an unknown location",
    "an unknown interval key",
    "weekdays not a list",
    "a name defined twice",
    "an interval without a name",
]


@pytest.mark.parametrize(("intervals", "where", "problem"), BAD, ids=BAD_IDS)
def test_a_bad_time_interval_is_refused_in_one_line_naming_file_and_path(
    intervals: str, where: str, problem: str
) -> None:
    with pytest.raises(InputError, match=re.escape(f"bad.yml: {where}: {problem}")) as err:
        amconfig.parse_config(_config(intervals), "bad.yml")
    assert "\n" not in str(err.value) and str(err.value).startswith("bad.yml: ")


@needs_amtool
@pytest.mark.parametrize(("intervals", "where", "problem"), BAD, ids=BAD_IDS)
def test_alertmanager_refuses_every_time_interval_obslib_refuses(
    tmp_path: Path, intervals: str, where: str, problem: str
) -> None:
    done = _amtool_check(tmp_path, _config(intervals))
    assert done.returncode != 0, done.stdout


ROUTE_BAD = [
    (
        "route:\n  receiver: r\n  mute_time_intervals: [night]\nreceivers:\n  - name: r\n"
        "time_intervals:\n  - name: night\n    time_intervals: []\n",
        r"route\.mute_time_intervals: the root route must not have time intervals",
    ),
    (
        "route:\n  receiver: r\n  routes:\n    - active_time_intervals: [day]\n"
        "receivers:\n  - name: r\n"
        "mute_time_intervals:\n  - name: night\n    time_intervals: []\n",
        r"route\.routes\[0\]\.active_time_intervals\[0\]: undefined time interval 'day'",
    ),
    (
        "route:\n  receiver: r\nreceivers:\n  - name: r\n"
        "mute_time_intervals:\n  - name: night\n    time_intervals: []\n"
        "time_intervals:\n  - name: night\n    time_intervals: []\n",
        r"time_intervals\[0\]\.name: time interval 'night' is defined twice",
    ),
]
ROUTE_BAD_IDS = [
    "the root route muted",
    "an undefined active interval",
    "a name in both sections",
]


@pytest.mark.parametrize(("text", "message"), ROUTE_BAD, ids=ROUTE_BAD_IDS)
def test_routes_name_defined_intervals_and_the_root_none(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        amconfig.parse_config(text, "bad.yml")


@needs_amtool
@pytest.mark.parametrize(("text", "message"), ROUTE_BAD, ids=ROUTE_BAD_IDS)
def test_alertmanager_refuses_those_routes_too(tmp_path: Path, text: str, message: str) -> None:
    assert _amtool_check(tmp_path, text).returncode != 0


# --- the replay -----------------------------------------------------------------------------

MONDAY = pd.Timestamp("2026-11-02", tz="UTC")
MIN = pd.Timedelta(minutes=1)
SEC = pd.Timedelta(seconds=1)
HOUR = pd.Timedelta(hours=1)

TIMED = """\
route:
  receiver: tickets
  group_by: [service]
  routes:
    - matchers: ['service="api"']
      receiver: api-team
      mute_time_intervals: [lunch]
      routes:
        - matchers: ['severity="critical"']
          receiver: api-pager
    - matchers: ['service="web"']
      receiver: web-team
      active_time_intervals: [office]
receivers:
  - name: tickets
  - name: api-team
  - name: api-pager
  - name: web-team
time_intervals:
  - name: lunch
    time_intervals:
      - times: [{start_time: 12:00, end_time: 13:00}]
mute_time_intervals:
  - name: office
    time_intervals:
      - weekdays: ['monday:friday']
        times: [{start_time: 09:00, end_time: 17:00}]
        location: Europe/Paris
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="low"']
    equal: [service]
"""


def _incidents(rows: list[tuple]) -> pd.DataFrame:
    """Rows of (id, service, severity, triggered, resolved); the alert is named by id."""
    frame = pd.DataFrame(
        [
            {
                "incident_id": iid,
                "alert_name": f"alert-{iid}",
                "service_name": service,
                "alert_type": "threshold",
                "severity": severity,
                "triggered_at": fired,
                "resolved_at": resolved,
            }
            for iid, service, severity, fired, resolved in rows
        ]
    )
    for column in ("triggered_at", "resolved_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


NOON = MONDAY + 12 * HOUR
HISTORY = [
    ("A", "api", "high", NOON + 10 * MIN, NOON + 40 * MIN),
    ("B", "api", "high", NOON + 50 * MIN, NOON + 90 * MIN),
    ("C", "api", "critical", NOON + 20 * MIN, NOON + 30 * MIN),
    ("D", "api", "low", NOON + 21 * MIN, NOON + 29 * MIN),
    ("E", "web", "high", MONDAY + 17.5 * HOUR, MONDAY + 31 * HOUR),
    ("F", "web", "high", MONDAY + 31.5 * HOUR, MONDAY + 33 * HOUR),
    ("G", "db", "high", NOON + 10 * MIN, NOON + 20 * MIN),
]


def test_a_muted_route_sends_at_its_first_flush_after_the_interval() -> None:
    """Lunch (12:00-13:00 UTC) mutes api-team but not its child api-pager (route.go does not
    inherit time intervals): A fires and resolves within lunch (muted); D is inhibited by C
    at the flush it fires in (the inhibition stage runs first); B's group keeps ticking from
    12:50:30 and sends at 13:00:30. web-team sends only in Paris office hours: E fires
    after 17:00 Paris and resolves before 09:00 (muted); F, at 08:30 Paris, is sent at the
    group's first flush after 09:00 Paris (08:00 UTC). The root route has no interval."""
    frame = _incidents(HISTORY)
    replay = alerts.replay_notifications(frame, config=amconfig.parse_config(TIMED, "t.yml"))
    notes = replay.notifications[["at", "receiver", "reason", "alerts"]]
    assert [tuple(n) for n in notes.itertuples(index=False)] == [
        (NOON + 10.5 * MIN, "tickets", "first", ("G",)),
        (NOON + 20.5 * MIN, "api-pager", "first", ("C",)),
        (NOON + 60.5 * MIN, "api-team", "first", ("B",)),
        (MONDAY + 32 * HOUR + 30 * SEC, "web-team", "first", ("F",)),
    ]
    fates = replay.fates.set_index("incident_id")
    assert fates["fate"].to_dict() == {
        "A": "muted",
        "B": "notified",
        "C": "notified",
        "D": "inhibited",
        "E": "muted",
        "F": "notified",
        "G": "notified",
    }
    assert fates.loc["B", "waited"] == 10 * MIN + 30 * SEC
    assert fates.loc["F", "waited"] == 30 * MIN + 30 * SEC
    assert replay.summary["muted"] == 2


def test_without_the_intervals_the_same_history_pages_at_once() -> None:
    """The control: the same config with its routes' intervals removed."""
    text = TIMED.replace("      mute_time_intervals: [lunch]\n", "").replace(
        "      active_time_intervals: [office]\n", ""
    )
    frame = _incidents(HISTORY)
    replay = alerts.replay_notifications(frame, config=amconfig.parse_config(text, "t.yml"))
    fates = replay.fates.set_index("incident_id")["fate"].to_dict()
    assert fates["A"] == fates["E"] == "notified"
    assert "muted" not in fates.values()


def test_an_incident_muted_in_one_route_and_notified_in_another_counts_as_paged() -> None:
    """``unpaged`` takes the best fate over the routes (FATES order); with continue, G also
    reaches a muted route."""
    text = TIMED.replace(
        "  routes:\n    - matchers: ['service=\"api\"']",
        "  routes:\n    - matchers: ['service=\"db\"']\n      receiver: api-team\n"
        "      mute_time_intervals: [lunch]\n      continue: true\n"
        "    - matchers: ['service=\"db\"']\n      receiver: tickets\n"
        "    - matchers: ['service=\"api\"']",
    )
    frame = _incidents(HISTORY)
    replay = alerts.replay_notifications(frame, config=amconfig.parse_config(text, "t.yml"))
    g = replay.fates[replay.fates["incident_id"] == "G"].set_index("receiver")["fate"]
    assert g.to_dict() == {"api-team": "muted", "tickets": "notified"}
    assert set(alerts.unpaged(replay, frame)["incident_id"]) == {"A", "D", "E"}
    assert (
        alerts.FATES.index("merged") < alerts.FATES.index("muted") < alerts.FATES.index("inhibited")
    )


@needs_amtool
def test_every_config_with_time_intervals_here_passes_amtool(tmp_path: Path) -> None:
    texts = [TIMED, LUNCH_REPEATS, *(_config(i) for i, _, _ in CONTAINS)]
    for text in texts:
        done = _amtool_check(tmp_path, text)
        assert done.returncode == 0, text + done.stdout + done.stderr


@needs_amtool
def test_the_timed_config_routes_as_amtool_does(tmp_path: Path) -> None:
    path = tmp_path / "alertmanager.yml"
    path.write_text(TIMED)
    cfg = amconfig.parse_config(TIMED, str(path))
    for iid, service, severity, *_ in HISTORY:
        labels = {"alertname": f"alert-{iid}", "service": service, "severity": severity}
        args = [f"{k}={v}" for k, v in labels.items()]
        done = subprocess.run(
            [AMTOOL, "config", "routes", "test", f"--config.file={path}", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert amconfig.receivers_for(cfg, labels) == done.stdout.strip().split(",")


# --- the inhibition sweep against brute force -----------------------------------------------

RULES = [
    amconfig.InhibitMatchers(
        (amconfig.parse_matcher('severity="critical"'),),
        (amconfig.parse_matcher('severity=~"high|low"'),),
        ("service",),
    ),
    amconfig.InhibitMatchers(  # two-sided: high mutes high and low of the same alert
        (amconfig.parse_matcher('severity=~"critical|high"'),),
        (amconfig.parse_matcher('severity=~"high|low"'),),
        ("alertname", "service"),
    ),
    amconfig.InhibitMatchers(  # no equal labels: any db alert mutes every api one
        (amconfig.parse_matcher('service="db"'),),
        (amconfig.parse_matcher('service="api"'),),
        (),
    ),
]


def _brute_force_sources(labels, rules, i: int) -> list[int]:
    """inhibit.go's Mutes, literally: every alert against every rule, for alert ``i``."""
    mine = labels[i]
    found = []
    for rule in rules:
        if not all(m.matches(mine) for m in rule.target):
            continue
        two_sided = all(m.matches(mine) for m in rule.source)
        for j, theirs in enumerate(labels):
            if (
                all(m.matches(theirs) for m in rule.source)
                and all(theirs.get(e, "") == mine.get(e, "") for e in rule.equal)
                and not (two_sided and all(m.matches(theirs) for m in rule.target))
            ):
                found.append(j)
    return found


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_inhibition_sweep_answers_as_brute_force_does(seed: int) -> None:
    """A random history of 150 alerts (overlapping, touching, open, empty spans) asked at
    every span edge, one nanosecond either side, and at random instants."""
    rng = random.Random(seed)
    n = 150
    labels = [
        {
            "alertname": rng.choice(["a", "b", "c"]),
            "service": rng.choice(["api", "db", "web"]),
            "severity": rng.choice(["critical", "high", "low", "medium"]),
        }
        for _ in range(n)
    ]
    fired = np.array([rng.randrange(0, 1000) for _ in range(n)], dtype="int64")
    ended = np.array(
        [np.iinfo("int64").max if rng.random() < 0.05 else f + rng.randrange(0, 80) for f in fired],
        dtype="int64",
    )
    muter = notifications._Muter(labels, fired, ended, RULES)
    edges = {int(x) + d for x in (*fired, *ended[ended < 10**9]) for d in (-1, 0, 1)}
    instants = np.array(sorted(edges | {rng.randrange(-10, 1100) for _ in range(100)}))
    muted_somewhere = 0
    for i in range(n):
        src = np.array(_brute_force_sources(labels, RULES, i), dtype="int64")
        expected = (
            ((fired[src, None] <= instants) & (instants < ended[src, None])).any(axis=0)
            if len(src)
            else np.zeros(len(instants), dtype=bool)
        )
        got = np.array([muter.muted(i, int(t)) for t in instants])
        assert (got == expected).all(), (i, instants[got != expected][:5])
        muted_somewhere += bool(expected.any())
    assert muted_somewhere > n // 3  # the history exercises the rules


# --- long-open groups: the replay jumps over steady flushes and lands on the right ones -----

LUNCH_REPEATS = """\
route:
  receiver: r
  group_by: [service]
  routes:
    - matchers: ['service="api"']
      receiver: api-team
      repeat_interval: 1h
      mute_time_intervals: [lunch]
receivers:
  - name: r
  - name: api-team
time_intervals:
  - name: lunch
    time_intervals:
      - times: [{start_time: '12:00', end_time: '13:00'}]
"""


def test_an_open_alert_repeats_on_the_flushes_a_step_by_step_replay_finds() -> None:
    """A fires at 10:00 and never resolves; B (critical) inhibits it from 12:00 to 13:00
    under the fixed route: first at 10:00:30, B alone at 12:00:30, A again at 13:00:30
    (new next to B's notification), then a repeat at the first flush more than 4 h later,
    every time."""
    frame = _incidents(
        [
            ("A", "api", "high", MONDAY + 10 * HOUR, pd.NaT),
            ("B", "api", "critical", MONDAY + 12 * HOUR, MONDAY + 13 * HOUR),
        ]
    )
    route = alerts.Route(group_by=("service",))
    rule = alerts.InhibitRule({"severity": "critical"}, {"severity": "high"}, ("service",))
    replay = alerts.replay_notifications(frame, route, [rule], until=MONDAY + 34 * HOUR)
    sent = [
        (at - MONDAY, r, a)
        for at, r, a in replay.notifications[["at", "reason", "alerts"]].itertuples(index=False)
    ]
    flush = 10 * HOUR + 30 * SEC
    assert sent == [
        (flush, "first", ("A",)),
        (flush + 2 * HOUR, "new alerts", ("B",)),
        (flush + 3 * HOUR, "new alerts", ("A",)),
        *((flush + 3 * HOUR + k * (4 * HOUR + 5 * MIN), "repeat", ("A",)) for k in range(1, 6)),
    ]


def test_a_repeat_due_in_a_muted_hour_goes_out_at_the_first_flush_after_it() -> None:
    """Repeats every hour from 10:00:30 (11:05:30, …); the one due after 12:05:30 falls in
    lunch and waits for 13:00:30; the next is due after 14:00:30."""
    frame = _incidents([("A", "api", "high", MONDAY + 10 * HOUR, pd.NaT)])
    cfg = amconfig.parse_config(LUNCH_REPEATS, "t.yml")
    replay = alerts.replay_notifications(frame, until=MONDAY + 15 * HOUR, config=cfg)
    sent = [
        (at - MONDAY, r) for at, r in replay.notifications[["at", "reason"]].itertuples(index=False)
    ]
    assert sent == [
        (10 * HOUR + 30 * SEC, "first"),
        (11 * HOUR + 5 * MIN + 30 * SEC, "repeat"),
        (13 * HOUR + 30 * SEC, "repeat"),
        (14 * HOUR + 5 * MIN + 30 * SEC, "repeat"),
    ]
