"""SLO definitions written as OpenSLO v1 documents, with their burn-rate alert rules.

The inverse of ``obslib.ingest.openslo`` (which ``obslib slo apply`` reads): every stored SLO
becomes a ``kind: SLO`` with an inline indicator of ``type: obslib`` sources, so applying the
documents gives back the same rows; each service a ``kind: Service``. The multiwindow rules
of ``alert_rules`` become one ``AlertPolicy`` each, with two burn-rate conditions (long and
short window, both must hold): informational, since ``apply`` does not read them back (the
rules follow from the SLO). Pure: frames in, documents (and their YAML text) out.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pandas as pd
import yaml

from obslib.slo.budgets import STEP
from obslib.slo.rules import alert_rules, window_label

API_VERSION = "openslo/v1"  # the names below are the ones obslib.ingest.openslo reads
SOURCE_TYPE = "obslib"
ALERT_THRESHOLD = "obslib/alert-threshold-percent"
ENABLED = "obslib/enabled"
# obslib's breach: both windows' burn above the factor, judged every evaluation step
ALERT_AFTER = window_label(pd.Timedelta(STEP))


def openslo_documents(slos: pd.DataFrame) -> list[dict[str, Any]]:
    """The SLOs (``load.slos`` columns) as OpenSLO v1 documents: the services, then per SLO
    its ``SLO`` document followed by its alert policies, in the frame's order."""
    rules = alert_rules(slos)
    rules = rules[rules["applies"]]
    documents = [_service(s) for s in dict.fromkeys(slos["service_name"])]
    for d in slos.to_dict("records"):
        mine = rules[
            (rules["service_name"] == d["service_name"]) & (rules["slo_name"] == d["slo_name"])
        ]
        policies = [_policy(d, r) for r in mine.to_dict("records")]
        documents.append(_slo(d, [p["metadata"]["name"] for p in policies]))
        documents.extend(policies)
    return documents


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


def _service(name: str) -> dict[str, Any]:
    return _document("Service", name, {"description": f"the {name} service's server spans"})


def _slo(d: dict, policies: list[str]) -> dict[str, Any]:
    window = window_label(pd.Timedelta(hours=int(d["measurement_window_hours"])))
    spec: dict[str, Any] = {
        "service": d["service_name"],
        "indicator": {"metadata": {"name": f"{d['slo_name']}-sli"}, "spec": _indicator(d)},
        "timeWindow": [{"duration": window, "isRolling": True}],
        "budgetingMethod": "Occurrences",
        "objectives": [_objective(d)],
    }
    if policies:
        spec["alertPolicies"] = [{"alertPolicyRef": p} for p in policies]
    annotations = {
        ALERT_THRESHOLD: f"{float(d['alert_threshold_percent']):g}",
        ENABLED: "true" if bool(d["enabled"]) else "false",
    }
    return _document("SLO", d["slo_name"], spec, annotations=annotations)


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
        return {"displayName": "requests per second", "op": "gte", "value": _number(target)}
    good = 100 - target if d["slo_type"] == "error_rate" else target
    return {"target": _number(good / 100)}


def _policy(d: dict, rule: dict) -> dict[str, Any]:
    long, short = window_label(rule["long_window"]), window_label(rule["short_window"])
    name = _name(f"{d['service_name']}-{d['slo_name']}-{rule['severity']}-{long}")
    conditions = [
        _document(
            "AlertCondition",
            f"{name}-{which}",
            {
                "description": f"{which} window: burn rate over {rule['burn_rate']:g}x",
                "severity": rule["severity"],
                "condition": {
                    "kind": "burnrate",
                    "op": "gt",
                    "threshold": _number(rule["burn_rate"]),
                    "lookbackWindow": window,
                    "alertAfter": ALERT_AFTER,
                },
            },
        )
        for which, window in (("long", long), ("short", short))
    ]
    for condition in conditions:
        del condition["apiVersion"]  # inline conditions carry kind, metadata and spec
    spec = {
        "description": (
            f"{rule['severity']} when {rule['budget_share']:.0%} of the budget burns in {long}"
            f" (both conditions: {long} and {short})"
        ),
        "alertWhenBreaching": True,
        "alertWhenResolved": False,
        "alertWhenNoData": False,
        "conditions": conditions,
    }
    return _document("AlertPolicy", name, spec)


def _name(text: str) -> str:
    """A metadata name: lower case letters, digits and dashes (RFC 1123 labels)."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text.lower())).strip("-")[:253]


def _number(value: Any) -> int | float:
    """A number as its shortest decimal (0.999, not 0.9990000000000001; 300, not 300.0)."""
    number = float(Decimal(repr(float(value))) if not isinstance(value, Decimal) else value)
    return int(number) if number.is_integer() else number


__all__ = ["dump", "openslo_documents"]
