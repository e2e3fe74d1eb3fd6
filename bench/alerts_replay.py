"""How long replaying a month of incidents through a real-sized alertmanager.yml takes.

Why: issue 22 asks that replaying a 30-day history of 10,000 incidents through a 20-route
config takes seconds. Target: the replay < 10 s, and the inhibit rules cost at most 1.5x the
same replay without them (the inhibition used to compare every alert with every other).

What it does (no database: the replay is a pure function of an incidents frame):

- builds a deterministic history (``--seed``): ``--incidents`` incidents over ``--days``
  days on 8 services, 5 alerts each, 4 severities, in bursts (an outage fires several
  alerts of a service within minutes) and alone, 2 % still open;
- builds a 20-route config: nested routes, ``continue``, ``=``/``!=``/``=~``/``!~``
  matchers, ``group_by`` incl. ``...``, 3 inhibit rules, a muted route
  (``mute_time_intervals``) and an office-hours route (``active_time_intervals``);
- times ``alerts.replay_notifications(config=…)`` (median of ``--runs``, CPU seconds,
  wall beside them) and the same replay with no inhibit rules (the baseline); then, at
  ``--old-sizes``, the inhibition's setup as it was (every alert against every other, kept
  below as the reference) against the sweep that replaced it (CPU seconds), checking that
  both mute the same alerts at the same instants.

The last line printed is one JSON object: ``{"incidents", "routes", "replay_s",
"replay_wall_s", "no_inhibit_s", "no_inhibit_wall_s", "replay_vs_no_inhibit",
"old_vs_new": {size: ratio}, "old_s", "new_s", "agree", "fates", "notifications", "met"}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import setup_logging

from obslib import alerts
from obslib.alerts import amconfig, notifications

logger = logging.getLogger("bench")

SERVICES = ("api", "web", "db", "cache", "queue", "auth", "search", "billing")
ALERTS = ("errors", "latency", "saturation", "disk", "restarts")
SEVERITIES = ("critical", "high", "medium", "low")
SEVERITY_WEIGHTS = (0.1, 0.3, 0.35, 0.25)
START = pd.Timestamp("2026-10-01", tz="UTC")
TARGET_S = 10.0
TARGET_RATIO = 1.5

CONFIG = """\
route:
  receiver: tickets
  group_by: [service]
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      group_wait: 10s
      continue: true
      routes:
        - matchers: ['service=~"billing|auth"']
          receiver: pager-sensitive
          group_by: ['...']
        - matchers: ['alertname=~".*-errors"']
          receiver: pager-errors
    - matchers: ['service=~"api|web"']
      receiver: frontend
      routes:
        - matchers: ['severity!~"low|medium"']
          receiver: frontend-urgent
          group_by: [service, alertname]
        - matchers: ['severity="low"']
          receiver: frontend-low
          mute_time_intervals: [nights-and-weekends]
        - receiver: frontend
    - matchers: ['service=~"db|cache"']
      receiver: data
      group_wait: 1m
      routes:
        - matchers: ['alertname=~".*-disk"']
          receiver: data-disk
          repeat_interval: 12h
        - matchers: ['service="cache"', 'severity!="critical"']
          receiver: data-cache
          active_time_intervals: [office-hours]
        - matchers: ['severity="high"']
          receiver: data-urgent
          continue: true
        - matchers: ['severity=~"high|medium"']
          receiver: data
    - matchers: ['service="queue"']
      receiver: queue
      group_interval: 10m
      routes:
        - matchers: ['alertname="queue-restarts"']
          receiver: queue-restarts
        - matchers: ['alertname=~"queue-(errors|latency)"']
          receiver: queue
          group_by: [alertname]
          routes:
            - matchers: ['severity="critical"']
              receiver: pager
            - matchers: ['severity!="critical"']
              receiver: queue
              repeat_interval: 1d
    - matchers: ['service=~"search|auth|billing"']
      receiver: platform
      group_by: [service, severity]
      routes:
        - matchers: ['severity="low"']
          receiver: platform-low
          group_interval: 30m
receivers:
  - name: tickets
  - name: pager
  - name: pager-sensitive
  - name: pager-errors
  - name: frontend
  - name: frontend-urgent
  - name: frontend-low
  - name: data
  - name: data-disk
  - name: data-cache
  - name: data-urgent
  - name: queue
  - name: queue-restarts
  - name: platform
  - name: platform-low
time_intervals:
  - name: nights-and-weekends
    time_intervals:
      - times: [{start_time: '00:00', end_time: '08:00'}, {start_time: '20:00', end_time: '24:00'}]
      - weekdays: [saturday, sunday]
  - name: office-hours
    time_intervals:
      - weekdays: ['monday:friday']
        times: [{start_time: '09:00', end_time: '18:00'}]
        location: Europe/Paris
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity=~"high|medium|low"']
    equal: [service]
  - source_matchers: ['severity="high"']
    target_matchers: ['severity="low"']
    equal: [service, alertname]
  - source_matchers: ['service="db"', 'severity=~"critical|high"']
    target_matchers: ['service=~"api|web|cache"', 'alertname=~".*-latency"']
"""


def history(n: int, days: int, seed: int) -> pd.DataFrame:
    """``n`` incidents over ``days``: two thirds in bursts of 2-6 on one service within
    minutes, the rest alone; durations log-normal around 20 min; 2 % still open."""
    rng = np.random.default_rng(seed)
    span = days * 86_400
    rows: list[tuple] = []
    while len(rows) < n:
        service = SERVICES[rng.integers(len(SERVICES))]
        at = rng.uniform(0, span - 3600)
        size = int(rng.integers(2, 7)) if rng.random() < 0.4 else 1
        for _ in range(min(size, n - len(rows))):
            alert = ALERTS[rng.integers(len(ALERTS))]
            severity = SEVERITIES[rng.choice(len(SEVERITIES), p=SEVERITY_WEIGHTS)]
            fired = at + rng.uniform(0, 600) * (size > 1)
            lasted = float(np.exp(rng.normal(np.log(1200), 1.0)))
            open_ = rng.random() < 0.02
            rows.append((service, alert, severity, fired, None if open_ else fired + lasted))
    frame = pd.DataFrame(
        {
            "incident_id": [f"inc-{k:05d}" for k in range(n)],
            "alert_name": [f"{s}-{a}" for s, a, *_ in rows],
            "service_name": [r[0] for r in rows],
            "alert_type": "threshold",
            "severity": [r[2] for r in rows],
            "triggered_at": START + pd.to_timedelta([r[3] for r in rows], unit="s"),
            "resolved_at": START
            + pd.to_timedelta([np.nan if r[4] is None else r[4] for r in rows], unit="s"),
        }
    )
    return frame.sort_values("triggered_at", ignore_index=True)


class OldMuter:
    """The inhibition's setup before the sweep (reference): every alert that matches a
    rule's target side against every alert, O(n^2) matcher calls."""

    def __init__(self, labels, fired, ended, rules):
        self.fired, self.ended = fired, ended
        self.sources: list[np.ndarray] = []
        sides = [(r.source, r.target, r.equal) for r in rules]

        def matches(labels, matchers):
            return all(m.matches(labels) for m in matchers)

        for mine in labels:
            found: set[int] = set()
            for source, target, equal in sides:
                if not matches(mine, target):
                    continue
                two_sided = matches(mine, source)
                found |= {
                    j
                    for j, theirs in enumerate(labels)
                    if matches(theirs, source)
                    and all(theirs.get(e, "") == mine.get(e, "") for e in equal)
                    and not (two_sided and matches(theirs, target))
                }
            self.sources.append(np.array(sorted(found), dtype="int64"))

    def muted(self, i: int, t: int) -> bool:
        s = self.sources[i]
        return bool(len(s)) and bool(((self.fired[s] <= t) & (t < self.ended[s])).any())


def _arrays(frame: pd.DataFrame):
    labels = [
        {"alertname": a, "service": s, "severity": v, "alert_type": "threshold"}
        for a, s, v in zip(
            frame["alert_name"], frame["service_name"], frame["severity"], strict=True
        )
    ]
    fired = frame["triggered_at"].to_numpy(dtype="datetime64[ns]").astype("int64")
    ended = np.where(
        frame["resolved_at"].isna().to_numpy(),
        np.iinfo("int64").max,
        frame["resolved_at"].to_numpy(dtype="datetime64[ns]").astype("int64"),
    )
    return labels, fired, ended


def _timed(fn, runs: int) -> tuple[float, float, list[float], object]:
    """Median CPU seconds (the replay is one pure-Python thread: CPU time is what it costs,
    steadier than wall time on a shared machine), median wall seconds, every CPU run, and
    the last result."""
    cpu, wall, out = [], [], None
    for _ in range(runs):
        c0, w0 = time.process_time(), time.perf_counter()
        out = fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return statistics.median(cpu), statistics.median(wall), cpu, out


def compare_old(frame: pd.DataFrame, config, seed: int) -> dict:
    """Old and new inhibition setup on ``frame``: seconds each, and whether they agree at
    every incident's trigger and resolve instants for a sample of 300 alerts."""
    labels, fired, ended = _arrays(frame)
    rules = config.inhibit_rules
    t0 = time.process_time()
    old = OldMuter(labels, fired, ended, rules)
    old_s = time.process_time() - t0
    t0 = time.process_time()
    new = notifications._Muter(labels, fired, ended, rules)
    new_s = time.process_time() - t0
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(labels), size=min(300, len(labels)), replace=False)
    instants = np.concatenate([fired, ended[ended < np.iinfo("int64").max]])
    instants = rng.choice(instants, size=min(300, len(instants)), replace=False)
    agree = all(
        old.muted(int(i), int(t)) == new.muted(int(i), int(t)) for i in sample for t in instants
    )
    return {"old_s": round(old_s, 3), "new_s": round(new_s, 4), "agree": agree}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--old-sizes", default="1000,2000", help="sizes for the old inhibition")
    args = parser.parse_args(argv)
    setup_logging()

    config = amconfig.parse_config(CONFIG, "bench.yml")
    routes = sum(1 for _ in amconfig.walk(config.route))
    frame = history(args.incidents, args.days, args.seed)
    logger.info("%d incidents over %d days, %d routes", len(frame), args.days, routes)

    replay_s, replay_wall, replay_runs, replay = _timed(
        lambda: alerts.replay_notifications(frame, config=config), args.runs
    )
    bare = replace(config, inhibit_rules=())
    bare_s, bare_wall, bare_runs, _ = _timed(
        lambda: alerts.replay_notifications(frame, config=bare), args.runs
    )
    logger.info("replay CPU %s s, without inhibit rules CPU %s s", replay_runs, bare_runs)

    old: dict[str, dict] = {}
    for size in (int(s) for s in args.old_sizes.split(",") if s):
        old[str(size)] = compare_old(history(size, args.days, args.seed), config, args.seed)
        logger.info("inhibition at %d incidents: %s", size, old[str(size)])

    ratio = replay_s / bare_s
    result = {
        "incidents": len(frame),
        "routes": routes,
        "replay_s": round(replay_s, 3),
        "replay_wall_s": round(replay_wall, 3),
        "no_inhibit_s": round(bare_s, 3),
        "no_inhibit_wall_s": round(bare_wall, 3),
        "replay_vs_no_inhibit": round(ratio, 3),
        "replay_target_s": TARGET_S,
        "ratio_target": TARGET_RATIO,
        "old_vs_new": {k: round(v["old_s"] / max(v["new_s"], 1e-6), 1) for k, v in old.items()},
        "old_s": {k: v["old_s"] for k, v in old.items()},
        "new_s": {k: v["new_s"] for k, v in old.items()},
        "agree": all(v["agree"] for v in old.values()),
        "fates": {f: replay.summary[f] for f in alerts.FATES},
        "notifications": replay.summary["notifications"],
        "met": replay_s < TARGET_S and ratio <= TARGET_RATIO,
    }
    print(
        f"replay of {len(frame)} incidents through {routes} routes: {replay_s:.2f} s CPU, "
        f"{replay_wall:.2f} s wall (target < {TARGET_S:.0f} s CPU); without inhibit rules "
        f"{bare_s:.2f} s CPU ({ratio:.2f}x, target <= {TARGET_RATIO}x)"
    )
    for size, v in old.items():
        print(
            f"inhibition setup at {size}: old {v['old_s']:.2f} s, new {v['new_s']:.4f} s, "
            f"agree {v['agree']}"
        )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
