"""OpenSLO v1 documents read into SLO definitions (the rows ``slo_file.apply_slos`` stores).

obslib evaluates an SLO as good events over total events (``budgetingMethod: Occurrences``)
of one service's server spans over a rolling window. An SLI it can count is a
``metricSource`` of ``type: obslib`` whose ``spec.count`` says which spans:

- ``ratioMetric`` with ``good`` ``count: ok`` over ``total`` ``count: all``: availability;
- ``good`` ``count: faster`` with ``thresholdMs: N`` over ``total``: latency;
- ``bad`` ``count: errors`` over ``total``: error_rate (stored as the most errors allowed,
  100 - target percent);
- ``thresholdMetric`` ``count: requests-per-second`` with an objective ``op: gte`` and
  ``value``: throughput (no error budget). The spec wants a ``target`` on every objective;
  obslib judges a throughput SLO on the window's mean rate, so its one target is the
  convention ``THROUGHPUT_TARGET`` (``target: 0.99`` or ``targetPercent: 99``; none, as
  exports before it were written, reads the same). Another target is refused.

What obslib cannot evaluate is refused, naming the file, the document and the field: a
source of another type (a Prometheus query), time slices, calendar windows, months,
quarters or years, several objectives (composite SLOs), an operation filter (a stored SLO
counts all of its service's server spans). ``Service``, ``DataSource``, ``AlertPolicy``,
``AlertCondition`` and ``AlertNotificationTarget`` documents are accepted and not applied:
the burn-rate rules are obslib's own (``obslib.slo.alert_rules``).

obslib's own fields without an OpenSLO home ride in ``metadata.annotations``
(``ALERT_THRESHOLD``, ``ENABLED``), as text, the type annotations have in the spec. The
SLO's name is its ``metadata.name``, or the ``SLO_NAME`` annotation when given: an export
names each SLO ``<service>-<name>`` (names are unique per kind in OpenSLO) and keeps the
stored name there.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pandas as pd

from obslib.errors import InputError
from obslib.ingest.slo_file import (
    _cut,
    _frame,
    _kind,
    _read_document,
    _short,
    _shown,
    _slo,
    parse_documents,
)

API_VERSION = "openslo/v1"
SOURCE_TYPE = "obslib"
KINDS = ("SLO", "SLI", "Service", "DataSource", "AlertPolicy", "AlertCondition")
KINDS += ("AlertNotificationTarget",)
NOT_APPLIED = KINDS[2:]  # read, checked for a name, and not stored
ALERT_THRESHOLD = "obslib/alert-threshold-percent"
ENABLED = "obslib/enabled"
SLO_NAME = "obslib/slo-name"
THROUGHPUT_TARGET = 0.99  # a throughput objective's target (see the module's docstring)
# what a ``type: obslib`` source counts, by its role in the SLI
OK, FASTER, ERRORS, ALL, RATE = "ok", "faster", "errors", "all", "requests-per-second"
_ROLES = {"good": (OK, FASTER), "bad": (ERRORS,), "total": (ALL,)}
_SLO_SPEC = ("description", "service", "indicator", "indicatorRef", "timeWindow")
_SLO_SPEC += ("budgetingMethod", "objectives", "alertPolicies")
_OBJECTIVE = ("displayName", "target", "targetPercent", "op", "value")
_WHY_NOT = {  # fields obslib knows and cannot evaluate, and why
    "timeSliceTarget": "time slices are not evaluated (obslib counts Occurrences)",
    "timeSliceWindow": "time slices are not evaluated (obslib counts Occurrences)",
    "indicator": "an objective with its own indicator is a composite SLO, not evaluated",
    "indicatorRef": "an objective with its own indicator is a composite SLO, not evaluated",
    "compositeWeight": "composite SLOs are not evaluated",
}
_DURATION = re.compile(r"([1-9][0-9]{0,6})([mhdwMQY])")
_HOURS = {"h": 1, "d": 24, "w": 168}


def is_openslo(documents: list[Any]) -> bool:
    """Whether a file's documents are OpenSLO (any of them names an ``apiVersion``)."""
    return any(isinstance(d, dict) and "apiVersion" in d for d in documents)


def read_documents(files: list[tuple[str, list[Any]]]) -> pd.DataFrame:
    """The SLOs of OpenSLO files (``(file name, documents)`` pairs) as the table's rows.

    An ``indicatorRef`` may name a ``kind: SLI`` in any of the files. Every refusal is one
    line: file, kind and ``metadata.name`` of the document, the field, why."""
    slos, slis = [], {}
    for where, documents in files:
        for i, document in enumerate(documents):
            if document is None:  # an empty document (a trailing ---)
                continue
            kind, name, label = _header(document, f"{where}: document {i + 1}")
            if kind == "SLI":
                if name in slis:
                    raise InputError(f"{label}: metadata.name: a second SLI of this name")
                slis[name] = (label, document)
            elif kind == "SLO":
                slos.append((label, document))
    rows, first = [], {}
    for label, document in slos:
        row = _row(label, document, slis)
        key = (row["service_name"], row["slo_name"])
        if key in first:
            raise InputError(
                f"{label}: metadata.name: {'/'.join(key)} again (first: {first[key]});"
                " each SLO may appear once"
            )
        first[key] = label
        rows.append(row)
    return _frame(rows)


def _header(document: Any, where: str) -> tuple[str, str, str]:
    if not isinstance(document, dict):
        raise InputError(f"{where}: must be a mapping (an OpenSLO document), got {_kind(document)}")
    version = document.get("apiVersion")
    if version != API_VERSION:
        raise InputError(f"{where}: apiVersion: only {API_VERSION} is read, got {_shown(version)}")
    kind = document.get("kind")
    if kind not in KINDS:
        raise InputError(f"{where}: kind: must be one of {', '.join(KINDS)}, got {_shown(kind)}")
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"{where} ({kind}): metadata.name: missing (every document has one)")
    label = f"{where.split(': document')[0]}: {kind} {_shown(name)}"
    if not isinstance(document.get("spec"), dict):
        raise InputError(f"{label}: spec: must be a mapping, got {_kind(document.get('spec'))}")
    return kind, name, label


def _row(label: str, document: dict, slis: dict[str, tuple[str, dict]]) -> dict[str, Any]:
    spec = document["spec"]
    unknown = [k for k in spec if k not in _SLO_SPEC]
    if unknown:
        raise InputError(
            f"{label}: spec.{_cut(str(unknown[0]))}: unknown field"
            f" (allowed: {', '.join(_SLO_SPEC)})"
        )
    method = spec.get("budgetingMethod")
    if method != "Occurrences":
        why = "missing" if method is None else f"{_shown(method)} is not evaluated"
        raise InputError(
            f"{label}: spec.budgetingMethod: {why}; obslib counts Occurrences"
            " (good events over total events)"
        )
    objective = _objective(label, spec.get("objectives"))
    indicator, at = _indicator(label, spec, slis)
    slo_type, threshold = _sli(at, indicator)
    hours = _window(label, spec.get("timeWindow"))
    annotations = document["metadata"].get("annotations") or {}
    if not isinstance(annotations, dict):
        raise InputError(f"{label}: metadata.annotations: must be a mapping of text")
    entry = {
        "service": spec.get("service"),
        "name": _annotation(label, annotations, SLO_NAME, _text) or document["metadata"]["name"],
        "type": slo_type,
        "target": _target(label, objective, slo_type),
        "window": f"{hours}h",
        "latency_threshold_ms": threshold,
        "alert_threshold_percent": _annotation(label, annotations, ALERT_THRESHOLD, float),
        "enabled": _annotation(label, annotations, ENABLED, _boolean),
    }
    if entry["service"] is None:
        raise InputError(f"{label}: spec.service: missing (the service whose spans count)")
    return _slo({k: v for k, v in entry.items() if v is not None}, label)


def _objective(label: str, objectives: Any) -> dict:
    if not isinstance(objectives, list) or not objectives:
        raise InputError(f"{label}: spec.objectives: must be a list of one objective")
    if len(objectives) > 1:
        raise InputError(
            f"{label}: spec.objectives: {len(objectives)} objectives; obslib evaluates one"
            " objective a SLO (a composite SLO or several thresholds are not evaluated)"
        )
    objective = objectives[0]
    if not isinstance(objective, dict):
        raise InputError(f"{label}: spec.objectives[0]: must be a mapping, got {_kind(objective)}")
    for key in objective:
        if key in _WHY_NOT:
            raise InputError(f"{label}: spec.objectives[0].{key}: {_WHY_NOT[key]}")
        if key not in _OBJECTIVE:
            raise InputError(
                f"{label}: spec.objectives[0].{_cut(str(key))}: unknown field"
                f" (allowed: {', '.join(_OBJECTIVE)})"
            )
    return objective


def _indicator(label: str, spec: dict, slis: dict) -> tuple[dict, str]:
    """The SLI's spec, inline or by reference, and where it is (for messages)."""
    inline, ref = spec.get("indicator"), spec.get("indicatorRef")
    if (inline is None) == (ref is None):
        raise InputError(f"{label}: spec.indicator: give an inline indicator or an indicatorRef")
    if ref is not None:
        if not isinstance(ref, str) or ref not in slis:
            raise InputError(
                f"{label}: spec.indicatorRef: no kind: SLI named {_shown(ref)} in the files given"
            )
        sli_label, sli = slis[ref]
        return sli["spec"], f"{sli_label}: spec"
    if not isinstance(inline, dict) or not isinstance(inline.get("spec"), dict):
        raise InputError(f"{label}: spec.indicator.spec: must be a mapping (the SLI's spec)")
    return inline["spec"], f"{label}: spec.indicator.spec"


def _sli(at: str, spec: dict) -> tuple[str, float | None]:
    """The SLO type and latency threshold an SLI spec counts."""
    if "thresholdMetric" in spec:
        source = _source(f"{at}.thresholdMetric", spec["thresholdMetric"])
        if source.get("count") != RATE:
            raise InputError(
                f"{at}.thresholdMetric.metricSource.spec.count: must be {RATE}"
                f" (a throughput SLO), got {_shown(source.get('count'))}"
            )
        return "throughput", None
    ratio = spec.get("ratioMetric")
    if not isinstance(ratio, dict):
        raise InputError(f"{at}: ratioMetric or thresholdMetric: missing")
    if "raw" in ratio or "rawType" in ratio:
        raise InputError(
            f"{at}.ratioMetric.raw: a precomputed ratio is not evaluated; obslib counts"
            " good (or bad) and total events"
        )
    if ("good" in ratio) == ("bad" in ratio):
        raise InputError(f"{at}.ratioMetric: give good or bad (one of them) over total")
    role = "good" if "good" in ratio else "bad"
    counts = {}
    for part in (role, "total"):
        source = _source(f"{at}.ratioMetric.{part}", ratio.get(part))
        counts[part] = source.get("count")
        if counts[part] not in _ROLES[part]:
            raise InputError(
                f"{at}.ratioMetric.{part}.metricSource.spec.count: must be"
                f" {' or '.join(_ROLES[part])}, got {_shown(counts[part])}"
            )
        if part == role:
            threshold = source.get("thresholdMs")
    if counts[role] == FASTER:
        if threshold is None:
            raise InputError(
                f"{at}.ratioMetric.good.metricSource.spec.thresholdMs: missing"
                " (the latency a good span is no slower than)"
            )
        return "latency", threshold
    if threshold is not None:
        raise InputError(
            f"{at}.ratioMetric.{role}.metricSource.spec.thresholdMs: only count: {FASTER} takes one"
        )
    return ("availability" if role == "good" else "error_rate"), None


def _source(at: str, metric: Any) -> dict:
    """The ``spec`` of an ``obslib`` metric source, refused for any other source."""
    source = metric.get("metricSource") if isinstance(metric, dict) else None
    if not isinstance(source, dict):
        raise InputError(f"{at}.metricSource: missing")
    if "metricSourceRef" in source:
        raise InputError(
            f"{at}.metricSource.metricSourceRef: a DataSource is not queried; obslib counts"
            f" spans itself (type: {SOURCE_TYPE})"
        )
    kind = source.get("type")
    if kind != SOURCE_TYPE:
        raise InputError(
            f"{at}.metricSource.type: {_shown(kind)} is a source obslib cannot query; an SLI"
            f" obslib evaluates is type: {SOURCE_TYPE} (counts of the service's server spans)"
        )
    spec = source.get("spec")
    if not isinstance(spec, dict):
        raise InputError(f"{at}.metricSource.spec: must be a mapping with count")
    for key in spec:
        if key == "operation":
            raise InputError(
                f"{at}.metricSource.spec.operation: an operation filter is not stored;"
                " an obslib SLO counts all of its service's server spans"
            )
        if key not in ("count", "thresholdMs"):
            raise InputError(
                f"{at}.metricSource.spec.{_cut(str(key))}: unknown field (allowed: count,"
                " thresholdMs)"
            )
    return spec


def _window(label: str, windows: Any) -> int:
    """A rolling time window in whole hours."""
    at = f"{label}: spec.timeWindow"
    if not isinstance(windows, list) or len(windows) != 1 or not isinstance(windows[0], dict):
        raise InputError(f"{at}: must be a list of exactly one window")
    window = windows[0]
    if "calendar" in window:
        raise InputError(
            f"{at}[0].calendar: calendar-aligned windows are not evaluated; obslib's windows"
            " are rolling (isRolling: true)"
        )
    if window.get("isRolling") is not True:
        raise InputError(f"{at}[0].isRolling: must be true (obslib's windows are rolling)")
    text = window.get("duration")
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise InputError(
            f"{at}[0].duration: must be a whole number and a unit (28d, 4w, 12h), got"
            f" {_shown(text)}"
        )
    number, unit = int(match[1]), match[2]
    if unit in "MQY":
        raise InputError(
            f"{at}[0].duration: {text}: months, quarters and years have no fixed length;"
            " write days or weeks (30d, 4w)"
        )
    if unit == "m":
        if number % 60:
            raise InputError(f"{at}[0].duration: {text}: obslib's windows are whole hours")
        return number // 60
    return number * _HOURS[unit]


def _target(label: str, objective: dict, slo_type: str) -> float:
    """The stored target in percent: the good share, or for an error_rate SLO the most
    errors allowed (100 - it); exact in decimal (0.999 is 99.9, not 99.90000000000001)."""
    at = f"{label}: spec.objectives[0]"
    if slo_type == "throughput":
        if objective.get("op") != "gte" or "value" not in objective:
            raise InputError(
                f"{at}.op: a throughput SLO is op: gte with the value in requests per second"
            )
        for key, top in (("target", 1), ("targetPercent", 100)):
            if key in objective and not _is_number(objective[key], THROUGHPUT_TARGET * top):
                raise InputError(
                    f"{at}.{key}: a throughput SLO is judged on the window's mean rate;"
                    f" its target is {_number_text(THROUGHPUT_TARGET * top)} by obslib's"
                    f" convention, got {_shown(objective[key])}"
                )
        return objective["value"]
    for key in ("op", "value"):
        if key in objective:
            raise InputError(f"{at}.{key}: only a thresholdMetric (throughput) SLO takes one")
    if ("target" in objective) == ("targetPercent" in objective):
        raise InputError(f"{at}.target: give target (0 to 1) or targetPercent (0 to 100)")
    key = "target" if "target" in objective else "targetPercent"
    value, top = objective[key], (1 if key == "target" else 100)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{at}.{key}: must be a number, got {_shown(value)}")
    try:
        percent = Decimal(repr(value)) * (100 // top)
    except (InvalidOperation, ValueError):
        raise InputError(f"{at}.{key}: must be a finite number, got {_shown(value)}") from None
    if not percent.is_finite() or not 0 < percent < 100:
        raise InputError(f"{at}.{key}: must be above 0 and below {top}, got {_shown(value)}")
    return float(100 - percent if slo_type == "error_rate" else percent)


def _annotation(label: str, annotations: dict, key: str, parse: Any) -> Any:
    if key not in annotations:
        return None
    try:
        return parse(str(annotations[key]))
    except ValueError:
        raise InputError(
            f"{label}: metadata.annotations.{key}: cannot read {_shown(annotations[key])}"
        ) from None


def _is_number(value: Any, expected: float) -> bool:
    """Whether ``value`` is the number ``expected`` in decimal (99 is 0.99 in percent)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return Decimal(repr(value)) == Decimal(repr(expected)).normalize()


def _number_text(value: float) -> str:
    return f"{Decimal(repr(value)).normalize():f}"


def _text(text: str) -> str:
    if not text.strip():
        raise ValueError(text)
    return text


def _boolean(text: str) -> bool:
    if text not in ("true", "false"):
        raise ValueError(text)
    return text == "true"


__all__ = [
    "ALERT_THRESHOLD",
    "API_VERSION",
    "ENABLED",
    "SLO_NAME",
    "SOURCE_TYPE",
    "THROUGHPUT_TARGET",
    "is_openslo",
    "read_documents",
]


def read_slo_files(paths: list[str | Path] | tuple[str | Path, ...]) -> pd.DataFrame:
    """SLO definitions from files of either shape, checked, as one frame of the table's
    columns: obslib's own (``slos:``, one document) or OpenSLO v1 (``apiVersion:
    openslo/v1`` documents; an ``indicatorRef`` may name an SLI in any of the files).

    A (service, name) pair given twice, in one file or two, is refused; so is the whole
    lot when any file is, so an apply of them is all or nothing."""
    frames, documents = [], []
    for path in paths:
        where = str(path)
        parsed = parse_documents(Path(path), where)
        if is_openslo(parsed):
            documents.append((where, parsed))
        elif len(parsed) > 1:
            raise InputError(
                f"{where}: {len(parsed)} YAML documents, but no apiVersion: only an OpenSLO"
                " file (apiVersion: openslo/v1) may hold several"
            )
        else:
            frames.append((where, _read_document(parsed[0] if parsed else None, where)))
    if documents:
        names = ", ".join(where for where, _ in documents)
        frames.append((names, read_documents(documents)))
    first: dict[tuple[str, str], str] = {}
    for where, frame in frames:
        for key in zip(frame["service_name"], frame["slo_name"], strict=True):
            if key in first:
                raise InputError(
                    f"{where}: {_short(key[0])}/{_short(key[1])}: also in {first[key]};"
                    " each SLO may appear once"
                )
            first[key] = where
    if not frames:
        return _frame([])
    return _frame(pd.concat([f for _, f in frames], ignore_index=True).to_dict("records"))
