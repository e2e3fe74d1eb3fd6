"""Log analysis: message templates (``templates``: variable parts masked, counts per
service and template, the change against the day before) and the log rules on them
(``rules``: a template's count over a window, a new error template), replayed on stored
logs. Frames in, frames out; no I/O."""

from __future__ import annotations

from obslib.logs.rules import (
    ALERT_TYPE,
    LogReplay,
    LogRule,
    parse,
    replay,
    rules_of,
)
from obslib.logs.templates import (
    ERROR_LEVELS,
    template_change,
    template_counts,
    template_of,
    templates,
    top_error_templates,
    with_templates,
)

__all__ = [
    "ALERT_TYPE",
    "ERROR_LEVELS",
    "LogReplay",
    "LogRule",
    "parse",
    "replay",
    "rules_of",
    "template_change",
    "template_counts",
    "template_of",
    "templates",
    "top_error_templates",
    "with_templates",
]
