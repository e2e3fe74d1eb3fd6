"""Prometheus as the oracle of the replay on real data: the demo's incident day for
domain-service (its stored per-minute SLI counts) as `promtool test rules` input series for
the rule file obslib generates, and the alerts Prometheus fires, minute by minute, compared
with what ``slo.replay`` says the same rules fire on the same counts."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from obslib import load
from obslib.demo import events
from obslib.slo import DEFAULT_MIN_EVENTS, window_label
from obslib.slo import replay as slo_replay
from obslib.slo import rules as slo_rules
from obslib.slo.prometheus import ALERT_NAME, MetricNames, prometheus_rules

PROMTOOL = shutil.which("promtool")
SERVICE = "domain-service"
MIN = pd.Timedelta(minutes=1)
# The evaluations: from a quarter of an hour before the bad deploy (nothing fires yet) to
# half an hour after its rollback (everything has stopped firing): before, during, after.
BEFORE = pd.Timedelta(minutes=15)
AFTER = pd.Timedelta(minutes=30)


@pytest.fixture(scope="module")
def incident_day(demo_db):
    """The domain-service SLOs, the evaluation bounds, the first instant the series must
    cover (the longest long window earlier: the replay's lookback) and the stored counts."""
    url, _summary = demo_db
    deploy, rollback = events.incident_window()
    start, end = deploy - BEFORE, rollback + AFTER
    slos = load.enabled_slos([SERVICE], url=url)
    lookback = slo_rules.objectives(slos).rules.query("applies")["long_window"].max()
    first = start - lookback
    counts = load.slo_counts(slos, first, end, url=url)
    incidents = load.incidents(start, end, url=url)
    return slos, start, end, first, counts, incidents


def _input_series(counts: pd.DataFrame, slos: pd.DataFrame, first, end) -> list[dict]:
    """The stored per-minute counts as the counters a service would expose, scraped every
    minute from ``first`` (promtool's time 0): the sample at minute k holds the events of
    the buckets that ended by then (bucket m ends at minute m + 1). Availability reads the
    request counter (status 200: ok; 500: the rest), a latency SLO the histogram (its count,
    and its bucket at the SLO's threshold), both under the default names."""
    names = MetricNames()
    n = int((end - first) / MIN)

    def cumulative(rows: pd.DataFrame, column: str) -> str:
        per_minute = np.zeros(n + 1, dtype=np.int64)
        at = ((rows["bucket"] - first) / MIN).astype(int).to_numpy() + 1
        np.add.at(per_minute, at, rows[column].to_numpy(dtype=np.int64))
        return " ".join(str(v) for v in np.cumsum(per_minute))

    mine = counts[(counts["service_name"] == SERVICE) & (counts["bucket"] < end)]
    plain = mine[mine["threshold"].isna()]
    req = f'{names.requests}{{{names.service_label}="{SERVICE}",{names.status_label}='
    series = {
        f'{req}"200"}}': cumulative(plain, "ok"),
        f'{req}"500"}}': cumulative(plain.assign(bad=plain["total"] - plain["ok"]), "bad"),
    }
    for ms in slos.loc[slos["slo_type"] == "latency", "latency_threshold_ms"]:
        rows = mine[mine["threshold"] == ms]
        hist = f'{names.duration}_%s{{{names.service_label}="{SERVICE}"%s}}'
        series[hist % ("count", "")] = cumulative(rows, "total")
        series[hist % ("bucket", f',le="{float(ms) / 1000!r}"')] = cumulative(rows, "fast")
    return [{"series": name, "values": values} for name, values in series.items()]


def _expected(text: str, firings: pd.DataFrame, first, start, end) -> list[dict]:
    """promtool's alert_rule_test: at every evaluation (each minute in ``(start, end]``),
    exactly the alerts of the replay's firing intervals ``[start, end)`` that hold it."""
    rules = [r for g in yaml.safe_load(text)["groups"] for r in g["rules"] if "alert" in r]
    by_rule = {
        (a["labels"]["slo"], a["labels"]["long_window"], a["labels"]["short_window"]): a
        for a in rules
    }
    tests = []
    at = start + MIN
    while at <= end:
        on = firings[(firings["start"] <= at) & ~(firings["end"] <= at)]
        expected = []
        for f in on.to_dict("records"):
            key = (f["slo_name"], window_label(f["long_window"]), window_label(f["short_window"]))
            alert = by_rule[key]
            expected.append(
                {"exp_labels": alert["labels"], "exp_annotations": alert["annotations"]}
            )
        minute = int((at - first) / MIN)
        tests.append({"eval_time": f"{minute}m", "alertname": ALERT_NAME, "exp_alerts": expected})
        at += MIN
    return tests


GUARDS = {
    "with the guard off (min_events 0), Prometheus fires what the replay fires": 0,
    "with the default guard, Prometheus fires what the replay fires": DEFAULT_MIN_EVENTS,
}


@pytest.mark.parametrize("min_events", GUARDS.values(), ids=GUARDS.keys())
def test_prometheus_fires_what_the_replay_fires_on_the_demo_incident_day(
    incident_day, tmp_path: Path, min_events: int
) -> None:
    """The page and ticket alerts of both domain-service SLOs, at each 1-minute evaluation
    from 15 minutes before the bad deploy to 30 after its rollback: promtool on the stored
    counts agrees with the replay, alert for alert."""
    if PROMTOOL is None:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    slos, start, end, first, counts, incidents = incident_day
    replayed = slo_replay.replay(counts, slos, incidents, start, end, min_events=min_events)
    firings = replayed.firings
    assert {"page", "ticket"} <= set(firings["severity"])  # the day exercises both
    assert (firings["start"] > start).all() and (firings["end"] < end).all()  # before, after
    caught = replayed.incidents.set_index("incident_id").loc[events.main_incident_id()]
    assert caught["caught_by_page"]  # the review says the page would have caught it

    text = prometheus_rules(slos, min_events=min_events)
    (tmp_path / "rules.yml").write_text(text)
    document = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": _input_series(counts, slos, first, end),
                "alert_rule_test": _expected(text, firings, first, start, end),
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(document, sort_keys=False))
    began = time.perf_counter()
    tested = subprocess.run(
        [PROMTOOL, "test", "rules", "test.yml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    print(f"promtool test rules: {time.perf_counter() - began:.2f} s")
    assert tested.returncode == 0, (tested.stdout + tested.stderr)[-4000:]
