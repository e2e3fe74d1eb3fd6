"""SLOs as code: read SLO definitions from a YAML file and upsert them into PostgreSQL.

The file is the source of truth for the SLOs it names: applying it creates the missing ones,
updates the ones whose definition changed and leaves identical ones untouched (``updated_at``
too), so applying a file twice changes nothing. SLOs stored but absent from the file are left
alone: a file describes some SLOs, not all of them, and deleting is not its job.

The YAML shape (``slos:`` list of mappings) and its fields are documented in the README;
``FIELDS`` below is the one list of them.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import yaml

from obslib import schema
from obslib.errors import InputError
from obslib.ingest.frames import to_arrow
from obslib.ingest.tables import SLO_SPEC
from obslib.ingest.writer import database_error
from obslib.storage import db
from obslib.values import duration

logger = logging.getLogger(__name__)

TOP_LEVEL = ("slos",)
REQUIRED = ("service", "name", "type", "target")
OPTIONAL = ("window", "alert_threshold_percent", "latency_threshold_ms", "enabled")
FIELDS = REQUIRED + OPTIONAL
DEFAULT_WINDOW = "24h"
DEFAULT_ALERT_THRESHOLD = 90.0
LATENCY = "latency"
ERROR_RATE = "error_rate"  # its target is the most errors allowed, so the budget is the target
COLUMNS = tuple(c.name for c in SLO_SPEC)  # the frame read_slo_file returns, in table order
_SPEC = {c.name: c for c in SLO_SPEC}
_HOUR = pd.Timedelta(hours=1)
BUDGET_DECIMALS = _SPEC["error_budget_percent"].digits[1]  # error_budget_percent's NUMERIC scale
# YAML nodes that aliases (``*name``, merge keys included) may add to a file in all. A merge of
# a few shared fields adds ~10 a SLO; a "billion laughs" file adds 9**9 from a few lines.
MAX_ALIAS_NODES = 100_000
# An SLO file is a few kB (a SLO is ~200 bytes); one past this is refused before it is parsed.
MAX_FILE_BYTES = 4 * 2**20
QUOTED = 40  # characters of an input value a message quotes at most


class _Loader(yaml.SafeLoader):
    """safe_load, except a key given twice in one mapping is an error (PyYAML keeps the last
    one silently, so a second ``target:`` would quietly win), and aliases are bounded."""

    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()
        if node is not None:
            _check_aliases(node)
        return node

    def get_node(self) -> yaml.Node | None:  # each document of a ``---`` separated file
        node = super().get_node()
        if node is not None:
            _check_aliases(node)
        return node


def _check_aliases(root: yaml.Node) -> None:
    """Refuse a document whose aliases expand it by more than ``MAX_ALIAS_NODES`` nodes, or
    an alias inside its own anchor (endless), before anything is constructed from it.

    PyYAML shares an aliased node rather than copying it, so the composed document is as
    small as the file; the expansion is what merge keys, comparisons and messages would
    walk. It is counted on the node graph (each node once, iteratively: no recursion)."""
    sizes: dict[int, int] = {}  # id(node) -> nodes of its expansion, itself included
    open_: set[int] = set()  # nodes whose subtree is being walked
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        children = _children(node)
        if done:
            open_.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes[id(c)] for c in children)
            continue
        if id(node) in sizes:
            continue
        if id(node) in open_:  # reached again from inside itself: an endless expansion
            raise yaml.composer.ComposerError(
                problem="an alias inside its own anchor (an endless document)",
                problem_mark=node.start_mark,
            )
        open_.add(id(node))
        stack.append((node, True))
        stack.extend((c, False) for c in children)
    added = sizes[id(root)] - len(sizes)
    if added > MAX_ALIAS_NODES:
        raise yaml.YAMLError(
            f"aliases expand the document by {added} nodes, more than the {MAX_ALIAS_NODES} allowed"
        )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    # YAML merge keys (``<<: *defaults``) first: the SLOs written out, then the check on
    # what the file itself repeats (a merged key may be overridden, as YAML intends)
    own = [k for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"]
    loader.flatten_mapping(node)
    merged = len(node.value) - len(own)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value[merged:]:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if isinstance(key, str | int | float | bool) and key in seen:
            raise yaml.constructor.ConstructorError(
                problem=f"key {_shown(key)} given twice (lines {seen[key]} and {line})",
                problem_mark=key_node.start_mark,
            )
        if isinstance(key, str | int | float | bool):
            seen[key] = line
    return loader.construct_mapping(node, deep=True)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


@dataclass(frozen=True)
class Applied:
    """What ``apply_slos`` did, as "service/name" keys in the frame's order."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{len(self.created)} created, {len(self.updated)} updated,"
            f" {len(self.unchanged)} unchanged"
        )


def read_slo_file(path: str | Path) -> pd.DataFrame:
    """SLO definitions from a YAML file, checked, as a frame of the table's columns.

    Every refusal is an InputError whose one line names the file, the SLO (``slos[i]`` and
    its service/name when known) and the field, so a person can fix the file without
    guessing; nothing is half-read.
    """
    where = str(path)
    return _read_document(_parse(Path(path), where), where)


def _read_document(document: Any, where: str) -> pd.DataFrame:
    if not isinstance(document, dict) or "slos" not in document:
        got = "an empty file" if document is None else _kind(document)
        raise InputError(f"{where}: expected a mapping with a 'slos' list, got {got}")
    unknown = [k for k in document if k not in TOP_LEVEL]
    if unknown:
        raise InputError(
            f"{where}: unknown top-level key {_shown(unknown[0])} (allowed: {', '.join(TOP_LEVEL)})"
        )
    entries = document["slos"]
    if not isinstance(entries, list):
        raise InputError(f"{where}: slos: must be a list of SLOs, got {_kind(entries)}")
    rows = []
    seen: dict[tuple[str, str], int] = {}
    for i, entry in enumerate(entries):
        row = _slo(entry, f"{where}: slos[{i}]")
        key = (row["service_name"], row["slo_name"])
        if key in seen:
            raise InputError(
                f"{where}: slos[{i}] ({_short(key[0])}/{_short(key[1])}): service and name:"
                f" the same pair as"
                f" slos[{seen[key]}]; each SLO may appear once"
            )
        seen[key] = i
        rows.append(row)
    return _frame(rows)


def parse_documents(path: Path, where: str) -> list[Any]:
    """Every YAML document of a file (``---`` separated), read as ``_parse`` reads one:
    UTF-8, bounded size and aliases, no key twice, one-line errors naming the file."""
    return _parse(path, where, every=True)


def _parse(path: Path, where: str, *, every: bool = False) -> Any:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InputError(
                f"{where}: the file is larger than {MAX_FILE_BYTES // 2**20} MiB;"
                " an SLO file is a few kB"
            )
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{where}: is a directory, not a YAML file") from None
    except OSError as err:
        raise InputError(f"{where}: cannot read the file: {err.strerror or err}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise InputError(
            f"{where}: line {line}: not UTF-8 text (byte 0x{raw[err.start]:02x})"
        ) from None
    try:
        if every:
            return list(yaml.load_all(text, Loader=_Loader))  # _Loader is a SafeLoader
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        reason = " ".join(str(err.problem or err.context or "").split())
        raise InputError(f"{where}: {at}invalid YAML: {_cut(reason, 3 * QUOTED)}") from None
    except yaml.YAMLError as err:
        reason = " ".join(str(err).split())
        raise InputError(f"{where}: invalid YAML: {_cut(reason, 3 * QUOTED)}") from None
    except ValueError as err:  # an integer of more digits than Python converts (4300)
        raise InputError(f"{where}: invalid YAML: {_cut(str(err), 3 * QUOTED)}") from None
    except RecursionError:
        raise InputError(f"{where}: invalid YAML: nested too deeply") from None


def _slo(entry: Any, where: str) -> dict[str, Any]:
    """One SLO entry as a table row; ``where`` is "file: slos[i]"."""
    if not isinstance(entry, dict):
        raise InputError(f"{where}: must be a mapping of SLO fields, got {_kind(entry)}")
    service, name = entry.get("service"), entry.get("name")
    if isinstance(service, str) and isinstance(name, str) and service.strip() and name.strip():
        where = f"{where} ({_short(service)}/{_short(name)})"
    unknown = [k for k in entry if k not in FIELDS]
    if unknown:
        field_name = _cut(str(unknown[0])) if isinstance(unknown[0], str) else _shown(unknown[0])
        raise InputError(f"{where}: {field_name}: unknown field (allowed: {', '.join(FIELDS)})")
    missing = [f for f in REQUIRED if entry.get(f) is None]
    if missing:
        raise InputError(f"{where}: {missing[0]}: missing (required: {', '.join(REQUIRED)})")
    service = _text(entry["service"], "service", "service_name", where)
    name = _text(entry["name"], "name", "slo_name", where)
    slo_type = entry["type"]
    if slo_type not in schema.SLO_TYPES:
        raise InputError(
            f"{where}: type: must be one of {', '.join(schema.SLO_TYPES)}, got {_shown(slo_type)}"
        )
    target = _number(entry["target"], "target", "target_value", where)
    if not 0 < target < 100:
        raise InputError(
            f"{where}: target: must be a number strictly between 0 and 100, got {target:g}"
        )
    budget = error_budget(slo_type, target)
    if _decimals(budget) > BUDGET_DECIMALS:
        raise InputError(
            f"{where}: target: {target:g} leaves an error budget of {budget}%, finer than the"
            f" {BUDGET_DECIMALS} decimals error_budget_percent keeps"
        )
    alert = entry.get("alert_threshold_percent")
    alert = DEFAULT_ALERT_THRESHOLD if alert is None else alert
    alert = _number(alert, "alert_threshold_percent", "alert_threshold_percent", where)
    if not 0 < alert <= 100:
        raise InputError(
            f"{where}: alert_threshold_percent: must be a number above 0 and at most 100,"
            f" got {alert:g}"
        )
    threshold = entry.get("latency_threshold_ms")
    if slo_type == LATENCY and threshold is None:
        raise InputError(f"{where}: latency_threshold_ms: required for a latency SLO")
    if slo_type != LATENCY and threshold is not None:
        raise InputError(
            f"{where}: latency_threshold_ms: only a latency SLO takes one, this is {slo_type}"
        )
    if threshold is not None:
        threshold = _number(threshold, "latency_threshold_ms", "latency_threshold_ms", where)
        if not threshold > 0:
            raise InputError(
                f"{where}: latency_threshold_ms: must be a number above 0, got {threshold:g}"
            )
    enabled = entry.get("enabled", True)
    if not isinstance(enabled, bool):
        raise InputError(f"{where}: enabled: must be true or false, got {_shown(enabled)}")
    return {
        "service_name": service,
        "slo_name": name,
        "slo_type": slo_type,
        "target_value": target,
        "measurement_window_hours": _window(entry.get("window"), where),
        "error_budget_percent": float(budget),
        "alert_threshold_percent": alert,
        "enabled": enabled,
        "latency_threshold_ms": math.nan if threshold is None else threshold,
    }


def error_budget(slo_type: str, target: float | Decimal) -> Decimal:
    """The error budget in percent, exactly: 100 - target, except for an error_rate SLO,
    whose target already is the largest error percent allowed."""
    # the decimal the file wrote (99.9), not the float's binary (99.900000000000006)
    exact = target if isinstance(target, Decimal) else Decimal(repr(float(target)))
    return exact if slo_type == ERROR_RATE else Decimal(100) - exact


def _text(value: Any, name: str, column: str, where: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{where}: {name}: must be text, got {_shown(value)} (quote it)")
    if not value.strip():
        raise InputError(f"{where}: {name}: must not be empty")
    if value != value.strip():  # " api" would never match the spans' "api"
        raise InputError(f"{where}: {name}: has spaces before or after it: {_shown(value)}")
    if "\x00" in value:
        raise InputError(f"{where}: {name}: contains a NUL character")
    width = _SPEC[column].width
    if width is not None and len(value) > width:
        raise InputError(
            f"{where}: {name}: is {len(value)} characters long, more than the {width} allowed"
        )
    return value


def _number(value: Any, name: str, column: str, where: str) -> float:
    """An int or float written as a number (true and "99.9" are not numbers), with no more
    decimals than its NUMERIC column keeps, so what is stored is what the file says."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{where}: {name}: must be a number, got {_shown(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        number = math.inf
    if not math.isfinite(number):
        raise InputError(f"{where}: {name}: must be a finite number, got {_shown(value)}")
    precision, scale = _SPEC[column].digits
    if _decimals(Decimal(repr(number))) > scale:
        raise InputError(f"{where}: {name}: at most {scale} decimals are kept, got {_shown(value)}")
    if abs(number) >= 10 ** (precision - scale):
        raise InputError(
            f"{where}: {name}: must be less than {10 ** (precision - scale):g}, got {_shown(value)}"
        )
    return number


def _decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _window(value: Any, where: str) -> int:
    """The measurement window in whole hours, from "24h", "7d", "30d" (default 24h)."""
    text = DEFAULT_WINDOW if value is None else value
    hint = "a duration of whole hours such as 24h, 7d or 30d"
    if not isinstance(text, str) or re.fullmatch(r"\s*[-+]?[\d.]+\s*", text):
        raise InputError(f"{where}: window: must be {hint}, got {_shown(value)}")
    try:
        span = duration(text)
    except (ValueError, OverflowError):
        raise InputError(f"{where}: window: must be {hint}, got {_shown(value)}") from None
    if span <= pd.Timedelta(0) or span % _HOUR != pd.Timedelta(0):
        raise InputError(f"{where}: window: must be {hint}, got {_shown(value)}")
    return int(span // _HOUR)


def _shown(value: Any) -> str:
    """A value as YAML spells it (true, not True), text quoted, at most ``QUOTED`` characters
    of it: never the str() of a whole list or mapping (an alias bomb expands to gigabytes)."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, str):
        return repr(_cut(value))
    if isinstance(value, list | dict):
        return _KINDS[type(value)]
    return _cut(str(value))


def _cut(text: str, limit: int = QUOTED) -> str:
    """At most ``limit`` characters of ``text``, "..." saying when it was cut."""
    return text if len(text) <= limit else text[:limit] + "..."


def _short(text: str, limit: int = 40) -> str:
    """A name short enough for a message's label (the field's own message says the length)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


_KINDS = {dict: "a mapping", list: "a list", str: "text", type(None): "nothing"}


def _kind(value: Any) -> str:
    return _KINDS.get(type(value), f"{type(value).__name__} {_shown(value)}")


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame.astype(
        {
            "service_name": "str",  # pandas' default string dtype, as obslib.load returns
            "slo_name": "str",
            "slo_type": "str",
            "target_value": "float64",
            "measurement_window_hours": "int64",
            "error_budget_percent": "float64",
            "alert_threshold_percent": "float64",
            "enabled": bool,
            "latency_threshold_ms": "float64",
        }
    )


# -- apply -----------------------------------------------------------------------------------

_CASTS = {
    "service_name": "text[]",
    "slo_name": "text[]",
    "slo_type": "text[]",
    "target_value": "numeric[]",
    "measurement_window_hours": "int4[]",
    "error_budget_percent": "numeric[]",
    "alert_threshold_percent": "numeric[]",
    "enabled": "bool[]",
    "latency_threshold_ms": "numeric[]",
}
_KEY = ("service_name", "slo_name")
_REST = tuple(c for c in COLUMNS if c not in _KEY)
# Fixed text from our own column names; every value is a bound array. Rows are inserted in
# key order (bytewise) so two concurrent appliers lock rows in one order and cannot deadlock.
# A stored row identical to the file's is not updated at all (the WHERE), so updated_at keeps
# the time of the last real change; xmax = 0 marks a row this statement inserted.
_UPSERT = f"""
INSERT INTO {schema.SLOS} AS t ({", ".join(COLUMNS)})
SELECT {", ".join(COLUMNS)}
FROM unnest({", ".join(f"%s::{_CASTS[c]}" for c in COLUMNS)}) AS s({", ".join(COLUMNS)})
ORDER BY service_name COLLATE "C", slo_name COLLATE "C"
ON CONFLICT (service_name, slo_name) DO UPDATE
SET {", ".join(f"{c} = EXCLUDED.{c}" for c in _REST)}, updated_at = now()
WHERE ({", ".join(f"t.{c}" for c in _REST)})
    IS DISTINCT FROM ({", ".join(f"EXCLUDED.{c}" for c in _REST)})
RETURNING t.service_name, t.slo_name, (t.xmax = 0) AS created"""


def apply_slos(frame: pd.DataFrame, *, url: str | None = None) -> Applied:
    """Upsert SLO definitions (the frame ``read_slo_file`` returns) in one transaction.

    New (service, name) pairs are created, changed ones updated (``updated_at`` set), equal
    ones left untouched; SLOs stored but not in the frame are left alone. All or nothing: a
    refused row or a database failure leaves the table as it was.
    """
    schema.require_columns(frame, ("service_name", "slo_name", "slo_type", "target_value"), "slos")
    table = to_arrow(frame, SLO_SPEC, "slos")  # types, widths, allowed types, NUMERIC ranges
    pairs = list(zip(table["service_name"].to_pylist(), table["slo_name"].to_pylist(), strict=True))
    first: dict[tuple[str, str], int] = {}
    for i, pair in enumerate(pairs):
        if pair in first:
            raise InputError(f"slos rows {first[pair]} and {i} have the same key ({_key(pair)})")
        first[pair] = i
    if not pairs:
        return Applied()
    params = {c: [_bound(v) for v in table[c].to_pylist()] for c in COLUMNS}
    budgets = params["error_budget_percent"]
    for i, budget in enumerate(budgets):  # a hand-built frame may leave it out
        if budget is None:
            budget = budgets[i] = error_budget(params["slo_type"][i], params["target_value"][i])
            if _decimals(budget) > BUDGET_DECIMALS:
                raise InputError(
                    f"slos row {i}: target_value {params['target_value'][i]} leaves an error"
                    f" budget of {budget}%, finer than the {BUDGET_DECIMALS} decimals"
                    " error_budget_percent keeps"
                )
    try:
        with db.connection(url) as conn:
            rows = conn.execute(_UPSERT, [params[c] for c in COLUMNS]).fetchall()
    except psycopg.Error as err:
        raise database_error("slos", err) from err
    new = {(s, n): created for s, n, created in rows}
    applied = Applied(
        created=[_key(p) for p in pairs if new.get(p) is True],
        updated=[_key(p) for p in pairs if new.get(p) is False],
        unchanged=[_key(p) for p in pairs if p not in new],
    )
    logger.info("slos: %s", applied)
    return applied


def _key(pair: tuple[str, str]) -> str:
    return f"{pair[0]}/{pair[1]}"


def _bound(value: Any) -> Any:
    """Floats as the decimal they print as, so NUMERIC stores 99.9, not 99.900000000000006."""
    return Decimal(repr(value)) if isinstance(value, float) else value
