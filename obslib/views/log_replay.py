"""The log rules replayed on the stored logs: the load + replay composition that the health
report and ``obslib alerts evaluate-logs`` (``jobs.log_rules``) share, so both replay the
same rules on the same records from the same data start."""

from __future__ import annotations

import pandas as pd

from obslib import load, logs, schema
from obslib.logs import rules as log_rules
from obslib.values import Moment


def replay_log_rules(start: Moment, end: Moment, *, url: str | None = None) -> log_rules.LogReplay:
    """The enabled log rules (``load.alert_definitions`` of alert type ``log``) replayed over
    ``(start, end]`` on the stored logs of their services and levels (``logs.replay``): what
    they would have fired on that history. A new-template rule judges only from 7 days (its
    ``unseen``) after the first stored *log record* (``load.log_range``): before it, every
    template would be new."""
    rules = logs.rules_of(load.alert_definitions(url=url))
    lo, hi, level = log_rules.reads(rules, start, end)
    if not rules:
        return log_rules.replay(pd.DataFrame(), [], lo, hi)
    services = sorted({r.service_name for r in rules})
    levels = schema.LOG_LEVELS[schema.LOG_LEVELS.index(level) :]
    records = load.logs(lo, hi, services=services, levels=levels, url=url)
    stored = load.log_range(url=url)
    first = stored[0] if stored is not None else None
    return log_rules.replay(records, rules, start, end, data_start=first)
