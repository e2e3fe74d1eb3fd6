"""The log rules on stored logs: ``jobs.log_rules`` and ``obslib alerts evaluate-logs``
find the demo's new error template at the deploy, open one incident per firing (never
twice) and resolve it when the firing ends.

Reads run on the shared demo database; the recording test writes into one database of
its own holding only what the rules read, copied from the demo: its alert definitions,
domain-service's error records of the week before the incident and after, and the demo's
first log record (where a new-template rule's history begins: ``load.log_range``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest

from obslib import load
from obslib.demo import topology as topo
from obslib.ingest import batch
from obslib.jobs import log_rules
from obslib.storage.migrate import Migrator
from tests import builders
from tests.conftest import MIGRATIONS, run_cli, scratch_database
from tests.pg import POSTGRES

NEW_TEMPLATE = (
    "pool checkout timed out after <DURATION>: <NUM>/<NUM> connections in use"
    " (pool=domains-rw host=<ID> span=<HEX>)"
)
DURING = topo.DEPLOY_AT + pd.Timedelta(minutes=15)  # 14:20, errors since 14:16
AFTER = topo.DEPLOY_AT + pd.Timedelta(minutes=topo.INCIDENT_MINUTES + 30)


@pytest.fixture(scope="module")
def demo(demo_db) -> str:
    """The shared demo database (read only)."""
    return demo_db[0]


@pytest.fixture(scope="module")
def logs_db(demo: str) -> Iterator[str]:
    """A migrated database with what the log rules read around the incident, copied from
    the demo; the recording test writes incidents into it."""
    with scratch_database(POSTGRES.server_url()) as url:
        Migrator(url, MIGRATIONS).up()
        records = load.logs(
            topo.DEPLOY_AT - pd.Timedelta(days=8),
            topo.DEPLOY_AT + pd.Timedelta(days=1),
            services=["domain-service"],
            levels=["error", "fatal"],
            url=demo,
        )
        first = load.log_range(url=demo)[0]
        with batch(url) as b:
            b.alert_definitions(topo.ALERTS)
            b.logs(
                pd.concat([load.logs(first, first + pd.Timedelta(seconds=1), url=demo), records])
            )
        yield url


def test_the_new_error_template_fires_at_the_deploy(demo: str) -> None:
    """At 14:20 both demo log rules are on the template domain-service began logging
    after the deploy, and only on it."""
    got = log_rules.evaluate(DURING, url=demo)
    active = got.active
    assert set(active["alert_name"]) == {"domain-service-new-error-template"}
    assert set(active["template"]) == {NEW_TEMPLATE}
    first = active["first_record"].min()
    assert topo.DEPLOY_AT < first < DURING


def test_replayed_on_history_the_rules_fire_only_in_the_incident(demo: str) -> None:
    """The demo replayed from its 7th day: every firing is on the new template, inside the
    bad deploy."""
    got = log_rules.replay("2026-11-07", "2026-11-16", url=demo).firings
    assert set(got["alert_name"]) == {
        "domain-service-new-error-template",
        "domain-service-pool-timeouts",
    }
    assert set(got["template"]) == {NEW_TEMPLATE}
    start, end = topo.DEPLOY_AT, topo.DEPLOY_AT + pd.Timedelta(minutes=topo.INCIDENT_MINUTES)
    assert got["start"].between(start, end).all()


def test_recording_opens_one_incident_per_firing_never_twice(logs_db: str) -> None:
    """Recorded at 14:20 and again at 14:22: one incident; after the firing ends, it is
    auto-resolved."""
    first = log_rules.record(log_rules.evaluate(DURING, url=logs_db), url=logs_db)
    assert len(first.opened) == 1 and first.opened[0].startswith("LOG-20261114T1417-")
    again = log_rules.evaluate(DURING + pd.Timedelta(minutes=2), url=logs_db)
    assert log_rules.record(again, url=logs_db).opened == []
    stored = load.incident(first.opened[0], url=logs_db).iloc[0]
    assert stored["alert_type"] == "log"
    assert stored["incident_data"]["template"] == NEW_TEMPLATE
    later = log_rules.record(log_rules.evaluate(AFTER, url=logs_db), url=logs_db)
    assert later.resolved == first.opened
    assert load.incident(first.opened[0], url=logs_db).iloc[0]["status"] == "auto_resolved"


def test_the_command_names_the_template_and_refuses_a_bad_time(demo: str) -> None:
    """obslib alerts evaluate-logs prints the firing with its template and a sample; a bad
    --at is exit 2 in one line."""
    env = {"OBSLIB_DATABASE_URL": demo}
    done = run_cli("alerts", "evaluate-logs", "--at", str(DURING), env=env)
    assert done.returncode == 0, done.stderr
    assert "2 log rules, 1 firing at 2026-11-14 14:20 UTC" in done.stdout
    assert NEW_TEMPLATE in done.stdout and "pool checkout timed out after" in done.stdout
    history = run_cli(
        "alerts", "evaluate-logs", "--since", "2026-11-10", "--at", "2026-11-15", env=env
    )
    assert history.returncode == 0, history.stderr
    assert "2 fired from 2026-11-10 00:00 to 2026-11-15 00:00 UTC" in history.stdout
    bad = run_cli("alerts", "evaluate-logs", "--at", "yesterday-ish", env=env)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_a_new_template_is_judged_from_the_first_stored_log_record_not_span(
    migrated_db: str,
) -> None:
    """Spans stored since day 0, logs only since day 10: on day 10 every template is
    unseen for want of logs, not new, so the new-template rule stays quiet until 7 days
    after the first log record, then fires on a template first logged then."""
    url = migrated_db
    day0 = pd.Timestamp("2026-10-01", tz="UTC")
    logs_from = day0 + pd.Timedelta(days=10)
    later = logs_from + pd.Timedelta(days=8)
    rule = topo.ALERTS[topo.ALERTS["alert_name"] == "domain-service-new-error-template"]
    records = pd.DataFrame(
        {
            "timestamp": [logs_from + pd.Timedelta(minutes=5), later + pd.Timedelta(minutes=5)],
            "level": "error",
            "service_name": "domain-service",
            "trace_id": None,
            "span_id": None,
            "message": ["disk full on /var/7", "queue q1 stalled for 30s"],
            "fields": [{}, {}],
        }
    )
    with batch(url) as b:
        b.alert_definitions(rule)
        b.logs(records)
        b.spans(pd.DataFrame([builders.span("t", "root", start=day0)]))
    assert load.data_range(url=url)[0] == day0  # the spans begin 10 days earlier
    hour = pd.Timedelta(hours=1)
    first_day = log_rules.replay(logs_from, logs_from + hour, url=url).firings
    assert first_day.empty
    week_on = log_rules.replay(later, later + hour, url=url).firings
    assert week_on["template"].tolist() == ["queue <ID> stalled for <DURATION>"]
