"""Two alertmanager.yml replayed on one hand-built history: pages saved, incidents merged,
real incidents delayed or dropped, and by how long."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from obslib import alerts
from obslib.alerts import amconfig
from obslib.alerts.compare import compare_replays
from obslib.errors import InputError
from tests.alerts.conftest import incident_frame
from tests.conftest import run_cli

T0 = pd.Timestamp("2026-03-02 10:00", tz="UTC")
SEC = pd.Timedelta(seconds=1)
MIN = pd.Timedelta(minutes=1)
HOUR = pd.Timedelta(hours=1)


def _config(group_by: str = "service", group_wait: str = "30s", inhibit: bool = False):
    text = f"""\
route:
  receiver: on-call
  group_by: [{group_by}]
  group_wait: {group_wait}
receivers:
  - name: on-call
"""
    if inhibit:
        text += """\
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="high"']
    equal: [service]
"""
    return amconfig.parse_config(text, "test.yml")


DISKS = [  # one alert on two services, 10 s apart
    ("X1", "disk-full", "api", "high", T0, T0 + HOUR),
    ("X2", "disk-full", "db", "high", T0 + 10 * SEC, T0 + HOUR),
]
ONE = [("L", "api-errors", "api", "high", T0, T0 + HOUR)]
MASKED = [  # a critical and a high alert of one service
    ("C", "api-errors", "api", "critical", T0, T0 + HOUR),
    ("H", "api-latency", "api", "high", T0 + 10 * SEC, T0 + HOUR),
]

CASES = {
    "grouping by alertname instead of service merges two pages": (
        DISKS,
        _config("service"),
        _config("alertname"),
        None,
        {"pages_a": 2, "pages_b": 1, "pages_saved": 1, "merged": 1, "delayed": 0, "dropped": 0},
        {"X1": ("same", None), "X2": ("sooner", -10 * SEC)},
    ),
    "a longer group_wait delays the first page by the difference": (
        ONE,
        _config(group_wait="30s"),
        _config(group_wait="2m"),
        None,
        {
            "pages_a": 1,
            "pages_b": 1,
            "pages_saved": 0,
            "merged": 0,
            "delayed": 1,
            "dropped": 0,
            "longest_delay": 90 * SEC,
        },
        {"L": ("delayed", 90 * SEC)},
    ),
    "an inhibition that mutes a real incident is reported as dropped": (
        MASKED,
        _config("alertname"),
        _config("alertname", inhibit=True),
        pd.DataFrame({"incident_id": ["C", "H"], "verdict": ["real", "real"]}),
        {"pages_a": 2, "pages_b": 1, "pages_saved": 1, "merged": 0, "delayed": 0, "dropped": 1},
        {"C": ("same", None), "H": ("dropped", None)},
    ),
    "an incident without a verdict is unknown and counts as real": (
        MASKED,
        _config("alertname"),
        _config("alertname", inhibit=True),
        pd.DataFrame({"incident_id": ["C"], "verdict": ["real"]}),
        {"real": 2, "dropped": 1, "judged_real": 1, "false_positive": 0, "unknown": 1},
        {"H": ("dropped", None)},
    ),
    "an inhibition that mutes a false positive mutes no real incident": (
        MASKED,
        _config("alertname"),
        _config("alertname", inhibit=True),
        pd.DataFrame({"incident_id": ["C", "H"], "verdict": ["real", "false_positive"]}),
        {"pages_saved": 1, "real": 1, "dropped": 0, "judged_real": 1, "false_positive": 1},
        {"H": ("dropped", None)},
    ),
}


@pytest.mark.parametrize(
    ("rows", "config_a", "config_b", "verdicts", "summary", "changes"),
    CASES.values(),
    ids=CASES.keys(),
)
def test_comparing_two_configs_on_one_history(
    rows, config_a, config_b, verdicts, summary, changes
) -> None:
    """The summary counts and each incident's change are the ones worked out by hand."""
    frame = incident_frame(rows)
    until = T0 + 2 * HOUR
    a = alerts.replay_notifications(frame, until=until, config=config_a)
    b = alerts.replay_notifications(frame, until=until, config=config_b)
    got = compare_replays(a, b, frame, verdicts)
    assert {k: got.summary[k] for k in summary} == summary
    per = got.incidents.set_index("incident_id")
    for iid, (change, by) in changes.items():
        assert per.loc[iid, "change"] == change
        assert (pd.isna(per.loc[iid, "by"]) and by is None) or per.loc[iid, "by"] == by


def test_a_replay_of_other_incidents_is_refused() -> None:
    frame = incident_frame(ONE)
    a = alerts.replay_notifications(frame, config=_config())
    b = alerts.replay_notifications(incident_frame(DISKS), config=_config())
    with pytest.raises(InputError, match="replay b is not of these incidents"):
        compare_replays(a, b, frame)


def test_a_bad_compare_config_is_one_line_and_exit_2_before_connecting(tmp_path) -> None:
    bad = tmp_path / "b.yml"
    bad.write_text("route:\n  receiver: a\n  group_wait: soon\nreceivers:\n  - name: a\n")
    result = run_cli(
        "alerts", "replay", "--compare", str(bad), env={"OBSLIB_DATABASE_URL": "postgresql:///x"}
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert str(bad) in result.stderr


def test_the_demo_history_compared_under_grouping_by_alertname(demo_db, tmp_path) -> None:
    """The shipped config (one group per service) against one group per alert name, over the
    observability health report's default window: the first line counts the pages under
    each and judges the incidents as the report does (the same real, false positive and
    unknown counts)."""
    from obslib.views.observability_health import observability_health

    url, _ = demo_db
    health = observability_health(url=url)
    other = tmp_path / "by-alert.yml"
    other.write_text("route:\n  receiver: a\n  group_by: [alertname]\nreceivers:\n  - name: a\n")
    result = run_cli(
        "alerts", "replay", "--compare", str(other),
        "--since", health.start.isoformat(), "--until", health.end.isoformat(),
        env={"OBSLIB_DATABASE_URL": url}, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{len(health.incidents)} incidents replayed: ")
    assert f"under {other} (" in lines[0]
    judged = re.search(r"judged real (\d+), false positive (\d+), unknown (\d+)", lines[0])
    assert judged is not None, lines[0]
    counts = health.verdicts["verdict"].value_counts()
    expected = tuple(int(counts.get(v, 0)) for v in ("real", "false_positive", "unknown"))
    assert tuple(int(n) for n in judged.groups()) == expected
    assert sum(expected) == len(health.incidents) > 0
