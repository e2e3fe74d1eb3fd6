"""obslib.slo.prometheus (and jobs.prometheus_rules): the SLOs' rules as a Prometheus rule
file, checked by promtool, and Prometheus as an oracle of obslib's own replay."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from obslib import load
from obslib.demo.topology import SLOS
from obslib.errors import UsageError
from obslib.jobs import prometheus_rules as rules_job
from obslib.jobs.prometheus_rules import write_prometheus_rules
from obslib.slo import alert_rules, window_label
from obslib.slo import replay as slo_replay
from obslib.slo.prometheus import (
    ALERT_NAME,
    MetricNames,
    check_metric_names,
    prometheus_rules,
)
from obslib.slo.status import guard_ladder
from tests.builders import MIN, T0, incidents, minute_counts, slo_definitions

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (apt-get install prometheus)"
)


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def _alerts(text: str) -> list[dict]:
    groups = yaml.safe_load(text)["groups"]
    return [r for g in groups for r in g["rules"] if "alert" in r]


def test_every_applicable_rule_is_one_alert_with_its_severity_and_windows():
    """Each SLO gets one alert per applicable burn-rate rule, labelled as obslib's table."""
    text = prometheus_rules(SLOS)
    got = sorted(
        (a["labels"]["service"], a["labels"]["slo"], a["labels"]["severity"],
         a["labels"]["long_window"], a["labels"]["short_window"])
        for a in _alerts(text)
    )  # fmt: skip
    table = alert_rules(SLOS)
    table = table[table["applies"]]
    want = sorted(
        (r["service_name"], r["slo_name"], r["severity"],
         window_label(r["long_window"]), window_label(r["short_window"]))
        for r in table.to_dict("records")
    )  # fmt: skip
    assert got == want
    assert {a["labels"]["severity"] for a in _alerts(text)} == {"page", "ticket"}


def test_a_throughput_slo_has_no_group_and_a_comment_says_why():
    """A throughput SLO has no budget: no rules, named in the file's header."""
    slos = slo_definitions({}, {"slo_name": "rps", "slo_type": "throughput", "target_value": 5})
    text = prometheus_rules(slos)
    assert "# api/rps: no burn-rate rule applies" in text
    assert [g["name"] for g in yaml.safe_load(text)["groups"]] == ["obslib-slo-api-availability"]


def test_metric_names_and_labels_can_be_changed():
    """Every name of the convention can be replaced (here: a Go client's http metrics)."""
    names = MetricNames(
        requests="http_requests_total",
        duration="http_request_duration_seconds",
        service_label="job",
        status_label="code",
        selector='handler!="/metrics"',
    )
    latency = {"slo_name": "fast", "slo_type": "latency", "latency_threshold_ms": 250.0}
    slos = slo_definitions({}, {**latency, "target_value": 99.0})
    text = prometheus_rules(slos, metrics=names)
    assert 'http_requests_total{job="api",code=~"5..",handler!="/metrics"}' in text
    assert 'http_request_duration_seconds_bucket{job="api",le="0.25",handler!="/metrics"}' in text
    assert "service_requests_total" not in text


REFUSED_NAMES = {
    "a request counter with a dash": ({"requests": "http-requests"}, "requests: 'http-requests'"),
    "a histogram name starting with a digit": ({"duration": "1s"}, "duration: '1s'"),
    "a service label with a colon": ({"service_label": "svc:name"}, "service_label"),
    "a reserved label": ({"status_label": "__status"}, "is reserved"),
    "the histogram's le as the service label": ({"service_label": "le"}, "is reserved"),
    "the same label twice": ({"status_label": "service"}, "is also the service label"),
    "an error status that does not compile": ({"error_status": "5(0"}, "not a regular expr"),
    "an error status with a look-behind": ({"error_status": "(?<=5)00"}, "look-around"),
    "an error status with a back-reference": ({"error_status": r"(5)\1"}, "back-references"),
    "an empty error status": ({"error_status": ""}, "error_status: ''"),
    "a selector that closes the braces": ({"selector": 'a="b"} or vector(1) {'}, "selector"),
    "a selector with a bare value": ({"selector": "job=api"}, "is not label matchers"),
}  # fmt: skip


@pytest.mark.parametrize(("given", "said"), REFUSED_NAMES.values(), ids=REFUSED_NAMES.keys())
def test_a_name_that_cannot_stand_in_promql_is_refused_naming_its_field(given, said):
    """check_metric_names names the field (or its option, ``where``) and the value; the
    rule file is never written with it."""
    with pytest.raises(UsageError, match=re.escape(said)):
        prometheus_rules(slo_definitions(), metrics=MetricNames(**given))
    field = next(iter(given))
    with pytest.raises(UsageError, match=r"^--the-option: "):
        check_metric_names(MetricNames(**given), {field: "--the-option"})


ACCEPTED_NAMES = {
    "a recording-rule style counter": {"requests": "job:http_requests:total"},
    "a label starting with an underscore": {"status_label": "_code"},
    "an alternation of statuses": {"error_status": "5..|429|(?i:timeout)"},
    "several matchers with commas and escapes in values": {
        "selector": 'path=~"/a,b|/c", note!="say \\"hi\\"", env="prod",'
    },
}  # fmt: skip


@pytest.mark.parametrize("given", ACCEPTED_NAMES.values(), ids=ACCEPTED_NAMES.keys())
def test_unusual_but_valid_names_are_accepted_and_promtool_agrees(given, tmp_path):
    """What the check accepts, Prometheus parses."""
    names = MetricNames(**given)
    assert check_metric_names(names) is names
    if PROMTOOL is None:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    (tmp_path / "rules.yml").write_text(prometheus_rules(SLOS, metrics=names))
    checked = _promtool("check", "rules", "rules.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_alert_reads_its_short_window_on_the_guard_ladder():
    """An alert needs min_events events in its long window, and its short window is read on
    the first rung of ``guard_ladder`` holding as many: each rung's events at least the
    guard and its ratio over the threshold, unless an earlier rung's events reach the guard;
    every rung's window has both recordings."""
    text = prometheus_rules(slo_definitions(), min_events=25)
    groups = yaml.safe_load(text)["groups"]
    records = {r["record"] for g in groups for r in g["rules"] if "record" in r}
    table = alert_rules(slo_definitions()).query("applies")
    alerts = {(a["labels"]["long_window"], a["labels"]["short_window"]): a for a in _alerts(text)}
    events = r"max without \(window\) \(slo:sli_events:increase(\w+)\{[^}]*\} >= 25\)"
    for rule in table.to_dict("records"):
        ladder = [window_label(w) for w in guard_ladder(rule["short_window"], rule["long_window"])]
        long = window_label(rule["long_window"])
        expr = alerts[(long, window_label(rule["short_window"]))]["expr"]
        rungs = expr.split("\n  or\n")
        assert len(rungs) == len(ladder)
        for k, (rung, block) in enumerate(zip(ladder, rungs, strict=True)):
            required = re.findall(rf"(?:^|\(\n|and\n)\s*{events}", block)
            assert required == ([long, rung] if k == 0 else [rung])
            assert re.findall(rf"unless\n\s*{events}", block) == ladder[:k]
        assert re.findall(r"ratio_rate(\w+)\{", expr) == [long, *ladder]
        assert "< 25" not in expr
        for w in ladder:
            assert {f"slo:sli_error:ratio_rate{w}", f"slo:sli_events:increase{w}"} <= records


@needs_promtool
def test_promtool_accepts_the_demo_slos_rule_file(tmp_path):
    """`promtool check rules` passes on the rule file of the demo's SLOs, written by the job."""
    path = write_prometheus_rules(SLOS, tmp_path / "slo-rules.yml")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left
    checked = _promtool("check", "rules", str(path), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


# -- Prometheus as the oracle of the replay ---------------------------------------------------

PER_MINUTE = 101  # prime: no window's error ratio lands exactly on a threshold
MINUTES = 480  # 8 hours: no window holds 500 minutes, the first count that could tie
BAD = {60 + i: 50 for i in range(10)} | {150 + i: 1 for i in range(300)}  # a burst, a 5h burn


def _input_series(counts: pd.DataFrame, latency: bool) -> list[dict]:
    """Per-minute counts as counters scraped every minute from time 0: the sample at minute k
    holds the events of the buckets that ended by then (bucket m ends at minute m + 1). A
    latency SLO reads the histogram (its count, and its bucket at the 300 ms threshold)."""
    minutes = ((counts["bucket"] - T0) / MIN).astype(int).to_numpy() + 1

    def cumulative(values: pd.Series) -> str:
        per_minute = np.zeros(MINUTES + 1, dtype=int)
        per_minute[minutes] = values.to_numpy()
        return " ".join(str(v) for v in np.cumsum(per_minute))

    if latency:
        histogram = "service_request_duration_seconds"
        series = {
            f'{histogram}_count{{service="api"}}': counts["total"],
            f'{histogram}_bucket{{service="api",le="0.3"}}': counts["fast"],
        }
    else:
        requests = "service_requests_total"
        series = {
            f'{requests}{{service="api",status="200"}}': counts["ok"],
            f'{requests}{{service="api",status="500"}}': counts["total"] - counts["ok"],
        }
    return [{"series": name, "values": cumulative(v)} for name, v in series.items()]


QUIET = range(0, MINUTES, 3)  # an event every 3 minutes: a 5m window holds 1 or 2
QUIET_BAD = dict.fromkeys(range(150, 240, 3), 1)  # 90 minutes of failing events
ORACLE_SLOS = {
    "a 30-day availability SLO at 99.9": ({}, None),
    "a 24-hour availability SLO (windows scaled down to 1m)": (
        {"measurement_window_hours": 24}, None,
    ),
    "a 30-day latency SLO at 99 % under 300 ms": (
        {"slo_type": "latency", "target_value": 99.0, "latency_threshold_ms": 300.0}, None,
    ),
    "a quiet service (an event every 3 minutes: short windows read on longer rungs)": (
        {}, (QUIET, QUIET_BAD),
    ),
}  # fmt: skip


@pytest.mark.parametrize(("overrides", "quiet"), ORACLE_SLOS.values(), ids=ORACLE_SLOS.keys())
def test_prometheus_fires_what_the_replay_fires_minute_by_minute(tmp_path, overrides, quiet):
    """On a burst and a slow burn (or, on a quiet service, 90 failing minutes), the alerts
    Prometheus fires at each 1-minute evaluation are the replay's firings at that instant,
    rule for rule."""
    if PROMTOOL is None:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    slos = slo_definitions(**overrides)
    latency = overrides.get("slo_type") == "latency"
    if quiet is None:
        counts = minute_counts("api", range(MINUTES), PER_MINUTE, BAD)
    else:
        counts = minute_counts("api", quiet[0], 1, quiet[1])
    if latency:
        counts = counts.assign(threshold=300.0)
    replayed = slo_replay.replay(counts, slos, incidents(), T0, T0 + MINUTES * MIN)
    firings = replayed.firings
    assert {"page", "ticket"} <= set(firings["severity"])  # the data exercises both
    if quiet is not None:  # the 1h page fires though its 5m window never holds 10 events
        assert (firings["long_window"] == pd.Timedelta("1h")).any()

    text = prometheus_rules(slos)
    (tmp_path / "rules.yml").write_text(text)
    alerts = _alerts(text)
    by_windows = {(a["labels"]["long_window"], a["labels"]["short_window"]): a for a in alerts}
    tests = []
    for minute in range(1, MINUTES + 1):
        at = T0 + minute * MIN
        on = firings[(firings["start"] <= at) & ~(firings["end"] <= at)]
        expected = []
        for f in on.to_dict("records"):
            alert = by_windows[(window_label(f["long_window"]), window_label(f["short_window"]))]
            expected.append(
                {"exp_labels": alert["labels"], "exp_annotations": alert["annotations"]}
            )
        tests.append({"eval_time": f"{minute}m", "alertname": ALERT_NAME, "exp_alerts": expected})
    document = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": _input_series(counts, latency),
                "alert_rule_test": tests,
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(document, sort_keys=False))
    tested = _promtool("test", "rules", "test.yml", cwd=tmp_path)
    assert tested.returncode == 0, (tested.stdout + tested.stderr)[-4000:]


# -- the job: the file written atomically, refusals before any work ----------------------------


def test_the_job_refuses_a_folder_and_a_missing_folder(tmp_path):
    """A folder, or a file in a missing folder, is a usage error naming the path."""
    with pytest.raises(UsageError, match="is a folder"):
        write_prometheus_rules(slo_definitions(), tmp_path)
    with pytest.raises(UsageError, match="does not exist"):
        write_prometheus_rules(slo_definitions(), tmp_path / "missing" / "rules.yml")


def test_export_reads_the_enabled_slos_and_names_a_service_without_any(demo_db, tmp_path):
    """export_rules writes the enabled SLOs' rules (or returns them for standard output),
    of the services asked for; a service without enabled SLOs is refused."""
    url, _summary = demo_db
    slos = load.enabled_slos(url=url)
    said = rules_job.export_rules(tmp_path / "rules.yml", url=url)
    assert said == f"wrote {tmp_path / 'rules.yml'} ({len(slos)} SLOs)\n"
    assert (tmp_path / "rules.yml").read_text() == prometheus_rules(slos)
    assert rules_job.export_rules(None, url=url) == prometheus_rules(slos)  # stdout
    mine = rules_job.export_rules(None, services=["dns-resolver"], min_events=4, url=url)
    assert mine == prometheus_rules(slos[slos["service_name"] == "dns-resolver"], min_events=4)
    with pytest.raises(UsageError, match="nowhere-service"):
        rules_job.export_rules(tmp_path / "r.yml", services=["nowhere-service"], url=url)
