"""SLO definitions written as OpenSLO v1 documents, with their burn-rate alert rules.

The inverse of ``obslib.ingest.openslo`` (which ``obslib slo apply`` reads): every stored SLO
becomes a ``kind: SLO`` with an inline indicator of ``type: obslib`` sources, so applying the
documents gives back the same rows; each service a ``kind: Service``. Each multiwindow rule
of ``alert_rules`` becomes one ``AlertPolicy``: informational, since ``apply`` does not read
them back (the rules follow from the SLO). Pure: frames in, documents (and their YAML text)
out.

Valid OpenSLO v1 as the spec (github.com/OpenSLO/OpenSLO README, v1) and its reference
validator (github.com/OpenSLO/go-sdk ``pkg/openslo/v1``, which ``oslo validate`` runs)
define it; ``tests/data/openslo/openslo-v1.schema.json`` transcribes those rules and a test
checks every exported document against it:

- every ``metadata.name`` is an RFC 1123 label (``metadata_names``), unique per kind in the
  export: an SLO is ``<service>-<slo name>``, its stored name in the ``SLO_NAME`` annotation
  (so ``apply`` reads back the same row), a service's raw name its ``displayName`` when the
  label differs;
- every objective has a ``target`` (a throughput SLO: ``THROUGHPUT_TARGET``, obslib's
  convention, beside ``op: gte`` and the rate as ``value``);
- an ``AlertPolicy`` holds exactly one condition (the spec: "max of one condition"): the
  rule's long window as a ``burnrate`` condition, its short window (which must burn too)
  in the ``SHORT_WINDOW`` annotation and the description; and at least one notification
  target (go-sdk requires one): ``NOTIFICATION_TARGET``, the receivers of the
  alertmanager.yml ``obslib alerts replay`` reads, written once as an
  ``AlertNotificationTarget``.
"""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal
from typing import Any

import pandas as pd
import yaml

from obslib.slo.budgets import STEP
from obslib.slo.rules import alert_rules, window_label

# the names obslib.ingest.openslo reads (analysis may not import ingest; a test pins them)
API_VERSION = "openslo/v1"
SOURCE_TYPE = "obslib"
ALERT_THRESHOLD = "obslib/alert-threshold-percent"
ENABLED = "obslib/enabled"
SLO_NAME = "obslib/slo-name"
THROUGHPUT_TARGET = 0.99
SHORT_WINDOW = "obslib/short-window"
NOTIFICATION_TARGET = "obslib-alertmanager"
# obslib's breach: both windows' burn above the factor, judged every evaluation step
ALERT_AFTER = window_label(pd.Timedelta(STEP))
NAME_LENGTH = 63  # an RFC 1123 label
_HASH = 8  # hex digits of the suffix that keeps a changed or shortened name unique


def openslo_documents(slos: pd.DataFrame) -> list[dict[str, Any]]:
    """The SLOs (``load.slos`` columns) as OpenSLO v1 documents: the services, then per SLO
    its ``SLO`` document followed by its alert policies, in the frame's order, then the
    notification target the policies name (when there is a policy)."""
    rules = alert_rules(slos)
    rules = rules[rules["applies"]]
    rows = slos.to_dict("records")
    services = list(dict.fromkeys(slos["service_name"]))
    service_names = metadata_names([(s,) for s in services])
    slo_names = metadata_names([(d["service_name"], d["slo_name"]) for d in rows])
    documents = [_service(s, n) for s, n in zip(services, service_names, strict=True)]
    per_slo = []
    for d in rows:
        mine = rules[
            (rules["service_name"] == d["service_name"]) & (rules["slo_name"] == d["slo_name"])
        ]
        per_slo.append(mine.to_dict("records"))
    keys = [
        (d["service_name"], d["slo_name"], r["severity"], window_label(r["long_window"]))
        for d, mine in zip(rows, per_slo, strict=True)
        for r in mine
    ]
    policy_names = iter(metadata_names(keys))
    for d, name, mine in zip(rows, slo_names, per_slo, strict=True):
        policies = [_policy(r, next(policy_names)) for r in mine]
        documents.append(_slo(d, name, [p["metadata"]["name"] for p in policies]))
        documents.extend(policies)
    if len(rules):
        documents.append(_notification_target())
    return documents


def metadata_names(keys: list[tuple[str, ...]]) -> list[str]:
    """An RFC 1123 label per key (``metadata.name``: at most 63 lower-case letters, digits
    and dashes, a letter or digit at both ends; what the spec says "all implementations must
    at least support"), unique within ``keys`` and the same for the same keys. A key is the
    parts that name the object, e.g. ``(service, slo name)``: its name is the parts joined
    by dashes when that is a label; else their letters and digits lower-cased, other runs a
    dash, cut to fit, then a dash and 8 hex digits of the SHA-256 of the parts (joined by
    NUL, so ``("a-b", "c")`` and ``("a", "b-c")`` differ). A label two keys share takes the
    hash for both."""
    texts = ["-".join(map(str, key)) for key in keys]
    first = [t if _label(t) == t and len(t) <= NAME_LENGTH else None for t in texts]
    shared: dict[str, int] = {}
    for label in first:
        if label is not None:
            shared[label] = shared.get(label, 0) + 1
    return [
        label if label is not None and shared[label] == 1 else _hashed(text, _digest(key))
        for key, text, label in zip(keys, texts, first, strict=True)
    ]


def _label(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")


def _digest(key: tuple[str, ...]) -> str:
    return hashlib.sha256("\0".join(map(str, key)).encode("utf-8")).hexdigest()[:_HASH]


def _hashed(text: str, digest: str) -> str:
    stem = _label(text)[: NAME_LENGTH - _HASH - 1].rstrip("-")
    return f"{stem}-{digest}" if stem else f"x-{digest}"


def dump(documents: list[dict[str, Any]]) -> str:
    """The documents as one YAML text, ``---`` separated, fields in the spec's order."""
    return yaml.safe_dump_all(documents, sort_keys=False, explicit_start=True)


def _document(kind: str, name: str, spec: dict, **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": name, **metadata},
        "spec": spec,
    }


def _display(raw: str, name: str) -> dict[str, str]:
    """The raw name as ``displayName`` (at most 63 characters) when the label differs."""
    return {} if raw == name else {"displayName": str(raw)[:NAME_LENGTH]}


def _service(raw: str, name: str) -> dict[str, Any]:
    spec = {"description": f"the {raw} service's server spans"[:1050]}
    return _document("Service", name, spec, **_display(raw, name))


def _slo(d: dict, name: str, policies: list[str]) -> dict[str, Any]:
    window = window_label(pd.Timedelta(hours=int(d["measurement_window_hours"])))
    spec: dict[str, Any] = {
        "service": d["service_name"],
        "indicator": {"metadata": {"name": _suffixed(name, "sli")}, "spec": _indicator(d)},
        "timeWindow": [{"duration": window, "isRolling": True}],
        "budgetingMethod": "Occurrences",
        "objectives": [_objective(d)],
    }
    if policies:
        spec["alertPolicies"] = [{"alertPolicyRef": p} for p in policies]
    annotations = {
        SLO_NAME: str(d["slo_name"]),
        ALERT_THRESHOLD: f"{float(d['alert_threshold_percent']):g}",
        ENABLED: "true" if bool(d["enabled"]) else "false",
    }
    return _document("SLO", name, spec, **_display(d["slo_name"], name), annotations=annotations)


def _suffixed(name: str, suffix: str) -> str:
    """An inline part's name: its document's (unique) name, a dash and ``suffix``; hashed
    (``metadata_names``) when that is longer than a label."""
    text = f"{name}-{suffix}"
    return text if len(text) <= NAME_LENGTH else _hashed(text, _digest((name, suffix)))


def _source(count: str, **more: Any) -> dict[str, Any]:
    return {"metricSource": {"type": SOURCE_TYPE, "spec": {"count": count, **more}}}


def _indicator(d: dict) -> dict[str, Any]:
    kind = d["slo_type"]
    if kind == "throughput":
        return {"thresholdMetric": _source("requests-per-second")}
    if kind == "latency":
        part = {"good": _source("faster", thresholdMs=_number(d["latency_threshold_ms"]))}
    elif kind == "error_rate":
        part = {"bad": _source("errors")}
    else:
        part = {"good": _source("ok")}
    return {"ratioMetric": {"counter": True, **part, "total": _source("all")}}


def _objective(d: dict) -> dict[str, Any]:
    target = Decimal(repr(float(d["target_value"])))
    if d["slo_type"] == "throughput":
        return {
            "displayName": "requests per second",
            "op": "gte",
            "value": _number(target),
            "target": THROUGHPUT_TARGET,
        }
    good = 100 - target if d["slo_type"] == "error_rate" else target
    return {"target": _number(good / 100)}


def _policy(rule: dict, name: str) -> dict[str, Any]:
    long, short = window_label(rule["long_window"]), window_label(rule["short_window"])
    condition = _document(
        "AlertCondition",
        _suffixed(name, "burn"),
        {
            "description": (
                f"burn rate over {rule['burn_rate']:g}x in {long}, and in {short} as well"
            ),
            "severity": rule["severity"],
            "condition": {
                "kind": "burnrate",
                "op": "gt",
                "threshold": _number(rule["burn_rate"]),
                "lookbackWindow": long,
                "alertAfter": ALERT_AFTER,
            },
        },
    )
    del condition["apiVersion"]  # an inline condition carries kind, metadata and spec
    spec = {
        "description": (
            f"{rule['severity']} when {rule['budget_share']:.0%} of the budget burns in {long}"
            f" (the burn rate over {rule['burn_rate']:g}x in {long} and in {short})"
        ),
        "alertWhenBreaching": True,
        "alertWhenResolved": False,
        "alertWhenNoData": False,
        "conditions": [condition],
        "notificationTargets": [{"targetRef": NOTIFICATION_TARGET}],
    }
    return _document("AlertPolicy", name, spec, annotations={SHORT_WINDOW: short})


def _notification_target() -> dict[str, Any]:
    spec = {
        "target": "alertmanager",
        "description": (
            "the receivers of the alertmanager.yml the alerts are routed by"
            " (obslib alerts replay --config replays it on the stored incidents)"
        ),
    }
    return _document("AlertNotificationTarget", NOTIFICATION_TARGET, spec)


def _number(value: Any) -> int | float:
    """A number as its shortest decimal (0.999, not 0.9990000000000001; 300, not 300.0)."""
    number = float(Decimal(repr(float(value))) if not isinstance(value, Decimal) else value)
    return int(number) if number.is_integer() else number


__all__ = ["dump", "metadata_names", "openslo_documents"]
