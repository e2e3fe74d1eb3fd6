"""Log message templates: the variable parts of a message masked, so that fifty copies of
one line with different ids, hosts and timings count as one template.

**The template, the one rule** (``template_of``): a function of the message alone. It is
Drain's first step (He, Zhu, Zheng and Lyu, "Drain: An Online Log Parsing Approach with
Fixed Depth Tree", ICWS 2017: "preprocess by domain knowledge", regular expressions for the
commonly variable tokens) together with Drain's own heuristic that a token holding a digit
is a parameter, each masked in this order:

1. a quoted value (``'...'`` or ``"..."``) -> ``<QUOTED>``
2. a UUID -> ``<UUID>``
3. an IPv4 address, with or without a port -> ``<IP>``
4. a number with a time unit (``500 ms``, ``2.5s``, ``3 min``) -> ``<DURATION>``
5. a hex word of 8 or more characters holding a digit (trace and span ids, hashes) -> ``<HEX>``
6. a number -> ``<NUM>``
7. a short API version token, ``v`` and one or two digits standing alone (``/api/v1/``,
   ``v2``), is **kept**: it names an API, which a template should tell apart, not a value
   (a release such as ``v1.4.2``, ``v123`` or ``v1-beta`` is not one: rule 8 masks it)
8. any other word holding a digit (hosts such as ``domain-service-6f4a-1``, releases,
   request ids) -> ``<ID>``

then runs of white space become one space. In ``key=value`` only the value is masked.

Drain's later steps (a tree by length and first tokens, then merging groups whose tokens
are similar enough) are left out on purpose: their groups depend on which messages came
first and which window was mined, as the tools built on them show (Grafana Loki mines its
patterns at ingest from the last three hours; Datadog's Patterns view clusters a sample of
10,000 logs of the query). A log rule names a template and asks whether it was seen in the
previous 7 days, so a message must give the same template in any window, in any order. The
price: two messages differing in a word without digits stay two templates.

Pure functions on ``load.logs`` frames (``timestamp``, ``level``, ``service_name``,
``message``); no I/O.
"""

from __future__ import annotations

import re

import pandas as pd

from obslib.schema import ERROR_LEVELS, LOG_LEVELS, require_columns

_UNITS = r"(?:ns|us|µs|ms|s|sec|secs|seconds?|milliseconds?|min|mins|minutes?|h|hours?)"
# one alternation, tried left to right at each position: the order of the docstring
_MASK = re.compile(
    r"""
      (?P<QUOTED>'[^']*'|"[^"]*")
    | (?P<UUID>\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b)
    | (?P<IP>(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?(?![\w\-]|\.\w))
    | (?P<DURATION>(?<![\w.\-])\d+(?:\.\d+)?\s?"""
    + _UNITS
    + r"""(?![\w\-]|\.\w))
    | (?P<HEX>(?<![\w.\-])(?:0x)?(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}(?![\w\-]|\.\w))
    | (?P<NUM>(?<![\w.\-])[-+]?\d+(?:\.\d+)?(?![\w\-]|\.\w))
    | (?P<KEEP>(?<![\w.\-])[vV]\d{1,2}(?![\w\-]|\.\w))
    | (?P<ID>(?:[\w\-]+\.)*[\w\-]*\d[\w\-]*(?:\.[\w\-]+)*)
    """,
    re.VERBOSE,
)
_SPACE = re.compile(r"\s+")

TEMPLATE_COLUMNS = ("service_name", "template", "level", "records", "first", "last", "sample")
CHANGE_COLUMNS = (
    "service_name",
    "template",
    "records",
    "records_day_before",
    "change",
    "new",
    "sample",
)


def _placeholder(match: re.Match) -> str:
    if match.lastgroup == "KEEP":  # rule 7: a short version token stays as written
        return match.group(0)
    return f"<{match.lastgroup}>"


def template_of(message: str) -> str:
    """The template of one message: its variable parts masked (the module's rule)."""
    return _SPACE.sub(" ", _MASK.sub(_placeholder, str(message))).strip()


def templates(messages: pd.Series) -> pd.Series:
    """``template_of`` of every message, computed once per distinct message (logs repeat)."""
    text = messages.astype("string").fillna("")
    distinct = pd.unique(text)
    of = {m: template_of(m) for m in distinct}
    return pd.Series([of[m] for m in text], index=messages.index, dtype=object, name="template")


def with_templates(logs: pd.DataFrame) -> pd.DataFrame:
    """The records with a ``template`` column (kept when already there)."""
    require_columns(logs, ("message",), "logs")
    if "template" in logs.columns:
        return logs
    found = templates(logs["message"]) if len(logs) else pd.Series(dtype=object)
    return logs.assign(template=found)


def at_least(logs: pd.DataFrame, level: str) -> pd.DataFrame:
    """The records at ``level`` or more severe (``schema.LOG_LEVELS`` order)."""
    require_columns(logs, ("level",), "logs")
    if level not in LOG_LEVELS:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LOG_LEVELS)}")
    return logs[logs["level"].isin(LOG_LEVELS[LOG_LEVELS.index(level) :])]


def template_counts(logs: pd.DataFrame, *, level: str | None = None) -> pd.DataFrame:
    """Per service and template (of the records at ``level`` or above; None: all): the
    worst ``level``, ``records``, ``first`` and ``last`` timestamps and a ``sample`` (the
    first message). Most records first; a tie goes to the template seen first."""
    if logs.empty:
        return _empty(TEMPLATE_COLUMNS)
    require_columns(logs, ("timestamp", "level", "service_name", "message"), "logs")
    picked = logs if level is None else at_least(logs, level)
    if picked.empty:
        return _empty(TEMPLATE_COLUMNS)
    rank = {name: i for i, name in enumerate(LOG_LEVELS)}
    frame = with_templates(picked).assign(
        service_name=picked["service_name"].astype(str),
        _rank=picked["level"].map(rank),
    )
    frame = frame.sort_values("timestamp", kind="stable")
    grouped = frame.groupby(["service_name", "template"], sort=False)
    out = grouped.agg(
        _rank=("_rank", "max"),
        records=("timestamp", "size"),
        first=("timestamp", "min"),
        last=("timestamp", "max"),
        sample=("message", "first"),
    ).reset_index()
    out["level"] = out.pop("_rank").map(dict(enumerate(LOG_LEVELS)))
    out = out.sort_values(["records", "first"], ascending=[False, True], kind="stable")
    return out.reset_index(drop=True)[list(TEMPLATE_COLUMNS)]


def top_error_templates(
    logs: pd.DataFrame, n: int = 10, *, before: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The ``n`` most frequent templates at level error or above (``template_counts``).
    With ``before`` (the same hours the day before), each also gets
    ``records_day_before`` and ``new`` as ``template_change`` counts them; the order stays
    the most frequent first."""
    level = ERROR_LEVELS[0]
    if before is None:
        return template_counts(logs, level=level).head(n).reset_index(drop=True)
    changed = template_change(logs, before, level=level)
    if changed.empty:
        return _empty((*TEMPLATE_COLUMNS, "records_day_before", "new"))
    top = template_counts(logs, level=level).head(n)
    out = top.merge(
        changed[["service_name", "template", "records_day_before", "new"]],
        on=["service_name", "template"],
        how="left",
        validate="one_to_one",
    )
    return out.reset_index(drop=True)


def template_change(
    logs: pd.DataFrame, before: pd.DataFrame, *, level: str | None = None
) -> pd.DataFrame:
    """Per service and template of ``logs`` (at ``level`` or above): its ``records``, the
    records of the same template in ``before`` (the same hours the day before),
    ``change`` (records - records_day_before) and ``new`` (none the day before), with a
    ``sample``. The biggest rise first; templates only ``before`` had are left out (a
    template that stopped is not what an investigation looks for)."""
    now = template_counts(logs, level=level)
    if now.empty:
        return _empty(CHANGE_COLUMNS)
    then = template_counts(before, level=level)
    then = then[["service_name", "template", "records"]].rename(
        columns={"records": "records_day_before"}
    )
    out = now.merge(then, on=["service_name", "template"], how="left")
    out["records_day_before"] = out["records_day_before"].fillna(0).astype("int64")
    out["change"] = out["records"] - out["records_day_before"]
    out["new"] = out["records_day_before"] == 0
    out = out.sort_values(["change", "first"], ascending=[False, True], kind="stable")
    return out.reset_index(drop=True)[list(CHANGE_COLUMNS)]


def _empty(columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame(columns=list(columns))
