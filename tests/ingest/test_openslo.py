"""OpenSLO v1 in and out: ``slo apply`` reads openslo/v1 documents into the same rows as
obslib's own shape, refuses what obslib cannot evaluate in one line naming file, document
and field (nothing applied), and ``slo export --format openslo`` writes documents that apply
back to the same rows."""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from obslib import load, schema
from obslib.errors import InputError
from obslib.ingest.openslo import read_slo_files
from obslib.ingest.slo_file import read_slo_file
from obslib.slo import alert_rules
from obslib.slo.openslo import dump, metadata_names, openslo_documents
from obslib.storage import db
from tests.conftest import run_cli
from tests.ingest.test_slo_file import VALID, stored
from tests.pg import REPO

OPENSLO = REPO / "tests" / "data" / "slo" / "openslo" / "domainflow.yaml"
BY_KEY = ["service_name", "slo_name"]


def by_key(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(BY_KEY).reset_index(drop=True)


def slo_document(**changes: Any) -> dict:
    """A valid availability SLO document; ``changes`` maps a dotted path to a new value
    (None deletes it): ``{"spec.budgetingMethod": "Timeslices"}``."""
    document = {
        "apiVersion": "openslo/v1",
        "kind": "SLO",
        "metadata": {"name": "avail"},
        "spec": {
            "service": "api",
            "indicator": {
                "metadata": {"name": "ok-spans"},
                "spec": {
                    "ratioMetric": {
                        "counter": True,
                        "good": {"metricSource": {"type": "obslib", "spec": {"count": "ok"}}},
                        "total": {"metricSource": {"type": "obslib", "spec": {"count": "all"}}},
                    }
                },
            },
            "timeWindow": [{"duration": "28d", "isRolling": True}],
            "budgetingMethod": "Occurrences",
            "objectives": [{"target": 0.999}],
        },
    }
    for path, value in changes.items():
        *parents, last = path.split(".")
        node = document
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is None:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return document


def write_documents(tmp_path: Path, *documents: Any, name: str = "openslo.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False), encoding="utf-8")
    return path


PROMETHEUS = {"metricSource": {"type": "Prometheus", "spec": {"query": "sum(rate(x[5m]))"}}}
IND = "spec.indicator.spec.ratioMetric"

# (id, changes to the valid document, the message after "FILE: SLO 'avail': ")
THROUGHPUT = {
    "thresholdMetric": {
        "metricSource": {"type": "obslib", "spec": {"count": "requests-per-second"}}
    }
}

REFUSED = [
    (
        "a throughput target other than obslib's 0.99 is refused",
        {
            "spec.indicator.spec": THROUGHPUT,
            "spec.objectives": [{"op": "gte", "value": 5, "target": 0.95}],
        },
        r"spec\.objectives\[0\]\.target: a throughput SLO is judged on the window's mean rate;"
        r" its target is 0\.99 by obslib's convention, got 0\.95",
    ),
    (
        "an empty obslib/slo-name annotation is refused",
        {"metadata.annotations": {"obslib/slo-name": " "}},
        r"metadata\.annotations\.obslib/slo-name: cannot read ' '",
    ),
    (
        "a Prometheus query source is refused at its type",
        {f"{IND}.good": PROMETHEUS},
        r"spec\.indicator\.spec\.ratioMetric\.good\.metricSource\.type: 'Prometheus' is a"
        r" source obslib cannot query",
    ),
    (
        "a source given by a DataSource reference is refused",
        {f"{IND}.total": {"metricSource": {"metricSourceRef": "prom", "type": "Prometheus"}}},
        r"spec\.indicator\.spec\.ratioMetric\.total\.metricSource\.metricSourceRef: a"
        r" DataSource is not queried",
    ),
    (
        "Timeslices budgeting is refused",
        {"spec.budgetingMethod": "Timeslices"},
        r"spec\.budgetingMethod: 'Timeslices' is not evaluated; obslib counts Occurrences",
    ),
    (
        "RatioTimeslices budgeting is refused",
        {"spec.budgetingMethod": "RatioTimeslices"},
        r"spec\.budgetingMethod: 'RatioTimeslices' is not evaluated",
    ),
    (
        "a missing budgeting method is refused",
        {"spec.budgetingMethod": None},
        r"spec\.budgetingMethod: missing; obslib counts Occurrences",
    ),
    (
        "a time slice target is refused",
        {"spec.objectives": [{"target": 0.99, "timeSliceTarget": 0.95, "timeSliceWindow": "1m"}]},
        r"spec\.objectives\[0\]\.timeSliceTarget: time slices are not evaluated",
    ),
    (
        "a calendar window is refused",
        {
            "spec.timeWindow": [
                {
                    "duration": "1M",
                    "calendar": {"startTime": "2026-01-01 00:00:00", "timeZone": "UTC"},
                }
            ]
        },
        r"spec\.timeWindow\[0\]\.calendar: calendar-aligned windows are not evaluated",
    ),
    (
        "a window that is not rolling is refused",
        {"spec.timeWindow": [{"duration": "28d", "isRolling": False}]},
        r"spec\.timeWindow\[0\]\.isRolling: must be true",
    ),
    (
        "a rolling month is refused for having no fixed length",
        {"spec.timeWindow.0.duration": "1M"},
        r"spec\.timeWindow\[0\]\.duration: 1M: months, quarters and years have no fixed length",
    ),
    (
        "a rolling quarter is refused",
        {"spec.timeWindow.0.duration": "1Q"},
        r"spec\.timeWindow\[0\]\.duration: 1Q: months, quarters and years",
    ),
    (
        "a rolling year is refused",
        {"spec.timeWindow.0.duration": "1Y"},
        r"spec\.timeWindow\[0\]\.duration: 1Y: months, quarters and years",
    ),
    (
        "a window of minutes that is not whole hours is refused",
        {"spec.timeWindow.0.duration": "90m"},
        r"spec\.timeWindow\[0\]\.duration: 90m: obslib's windows are whole hours",
    ),
    (
        "a duration without a unit is refused",
        {"spec.timeWindow.0.duration": "28"},
        r"spec\.timeWindow\[0\]\.duration: must be a whole number and a unit",
    ),
    (
        "two windows are refused",
        {"spec.timeWindow": [{"duration": "1d", "isRolling": True}] * 2},
        r"spec\.timeWindow: must be a list of exactly one window",
    ),
    (
        "several objectives are refused",
        {"spec.objectives": [{"target": 0.99}, {"target": 0.999}]},
        r"spec\.objectives: 2 objectives; obslib evaluates one",
    ),
    (
        "a composite objective with its own indicator is refused",
        {"spec.objectives": [{"target": 0.99, "compositeWeight": 1, "indicatorRef": "x"}]},
        r"spec\.objectives\[0\]\.(compositeWeight: composite SLOs|indicatorRef: an objective"
        r" with its own indicator is a composite SLO)",
    ),
    (
        "an operation filter is refused, obslib SLOs having none",
        {f"{IND}.good.metricSource.spec": {"count": "ok", "operation": "GET /cart"}},
        r"spec\.indicator\.spec\.ratioMetric\.good\.metricSource\.spec\.operation: an"
        r" operation filter is not stored",
    ),
    (
        "a raw ratio is refused",
        {IND: {"raw": PROMETHEUS, "rawType": "success"}},
        r"spec\.indicator\.spec\.ratioMetric\.raw: a precomputed ratio is not evaluated",
    ),
    (
        "a count obslib does not know is refused",
        {f"{IND}.good.metricSource.spec.count": "happy"},
        r"spec\.indicator\.spec\.ratioMetric\.good\.metricSource\.spec\.count: must be ok or"
        r" faster, got 'happy'",
    ),
    (
        "a latency SLI without its threshold is refused",
        {f"{IND}.good.metricSource.spec.count": "faster"},
        r"spec\.indicator\.spec\.ratioMetric\.good\.metricSource\.spec\.thresholdMs: missing",
    ),
    (
        "a target of 1 or more is refused",
        {"spec.objectives": [{"target": 1}]},
        r"spec\.objectives\[0\]\.target: must be above 0 and below 1, got 1",
    ),
    (
        "target and targetPercent together are refused",
        {"spec.objectives": [{"target": 0.99, "targetPercent": 99}]},
        r"spec\.objectives\[0\]\.target: give target \(0 to 1\) or targetPercent",
    ),
    (
        "an indicatorRef to no SLI in the files is refused",
        {"spec.indicator": None, "spec.indicatorRef": "nowhere"},
        r"spec\.indicatorRef: no kind: SLI named 'nowhere' in the files given",
    ),
    (
        "a missing service is refused",
        {"spec.service": None},
        r"spec\.service: missing",
    ),
    (
        "a field OpenSLO does not define on an SLO is refused",
        {"spec.owner": "sre"},
        r"spec\.owner: unknown field",
    ),
    (
        "a non-text alert threshold annotation is refused",
        {"metadata.annotations": {"obslib/alert-threshold-percent": "most"}},
        r"metadata\.annotations\.obslib/alert-threshold-percent: cannot read 'most'",
    ),
]


@pytest.mark.parametrize(
    ("changes", "message"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_what_obslib_cannot_evaluate_is_refused_naming_file_document_and_field(
    tmp_path: Path, changes: dict, message: str
) -> None:
    """One line: the file, the SLO's metadata.name, the field and why."""
    path = write_documents(tmp_path, slo_document(**changes))
    with pytest.raises(InputError) as refused:
        read_slo_files([path])
    text = str(refused.value)
    assert "\n" not in text
    assert re.match(re.escape(f"{path}: SLO 'avail'") + r"(: | \(api/avail\): )" + message, text), (
        text
    )


# (id, documents, the message after "FILE: ")
REFUSED_DOCUMENTS = [
    (
        "an OpenSLO v2 document is refused at its apiVersion",
        [{**slo_document(), "apiVersion": "openslo.com/v2alpha"}],
        r"document 1: apiVersion: only openslo/v1 is read, got 'openslo.com/v2alpha'",
    ),
    (
        "an unknown kind is refused",
        [{**slo_document(), "kind": "Budget"}],
        r"document 1: kind: must be one of SLO, SLI, Service",
    ),
    (
        "a document without a name is refused",
        [{**slo_document(), "metadata": {}}],
        r"document 1 \(SLO\): metadata\.name: missing",
    ),
    (
        "a second document that is not a mapping is refused",
        [slo_document(), ["a", "list"]],
        r"document 2: must be a mapping \(an OpenSLO document\), got a list",
    ),
    (
        "two SLIs of one name are refused",
        [{"apiVersion": "openslo/v1", "kind": "SLI", "metadata": {"name": "s"}, "spec": {}}] * 2,
        r"SLI 's': metadata\.name: a second SLI of this name",
    ),
    (
        "an SLI referenced by an SLO is checked as the SLO's indicator would be",
        [
            slo_document(**{"spec.indicator": None, "spec.indicatorRef": "prom"}),
            {
                "apiVersion": "openslo/v1",
                "kind": "SLI",
                "metadata": {"name": "prom"},
                "spec": {"thresholdMetric": PROMETHEUS},
            },
        ],
        r"SLI 'prom': spec\.thresholdMetric\.metricSource\.type: 'Prometheus' is a source",
    ),
]


@pytest.mark.parametrize(
    ("documents", "message"),
    [r[1:] for r in REFUSED_DOCUMENTS],
    ids=[r[0] for r in REFUSED_DOCUMENTS],
)
def test_a_bad_document_is_refused_naming_the_file_and_document(
    tmp_path: Path, documents: list, message: str
) -> None:
    """Documents are checked before any SLO is built from them."""
    path = write_documents(tmp_path, *documents)
    with pytest.raises(InputError, match="^" + re.escape(f"{path}: ") + message):
        read_slo_files([path])


def test_the_openslo_example_reads_into_the_rows_of_the_obslib_example() -> None:
    """tests/data/slo/openslo/domainflow.yaml says in OpenSLO what domainflow-slos.yaml says
    in obslib's shape (indicatorRef, targetPercent, 1w, 1440m, annotations, an ignored
    AlertPolicy and Service): the same frame."""
    pd.testing.assert_frame_equal(by_key(read_slo_files([OPENSLO])), read_slo_file(VALID))


def test_an_indicator_ref_may_name_an_sli_in_another_file(tmp_path: Path) -> None:
    """The SLIs of every file given are one namespace."""
    sli = {
        "apiVersion": "openslo/v1",
        "kind": "SLI",
        "metadata": {"name": "ok-spans"},
        "spec": slo_document()["spec"]["indicator"]["spec"],
    }
    slo = slo_document(**{"spec.indicator": None, "spec.indicatorRef": "ok-spans"})
    a = write_documents(tmp_path, slo, name="a.yaml")
    b = write_documents(tmp_path, sli, name="b.yaml")
    frame = read_slo_files([a, b])
    assert frame[["slo_name", "target_value", "measurement_window_hours"]].values.tolist() == [
        ["avail", 99.9, 672]
    ]


def test_the_same_slo_twice_is_refused_naming_both_places(tmp_path: Path) -> None:
    """(service, name) is the key across every file applied together, of either shape."""
    a = write_documents(tmp_path, slo_document(), name="a.yaml")
    b = write_documents(tmp_path, slo_document(), name="b.yaml")
    with pytest.raises(
        InputError,
        match=f"^{re.escape(str(b))}: SLO 'avail': metadata.name: api/avail again"
        f" \\(first: {re.escape(str(a))}: SLO 'avail'\\); each SLO may appear once$",
    ):
        read_slo_files([a, b])
    own = tmp_path / "own.yaml"
    own.write_text("slos: [{service: api, name: avail, type: availability, target: 99}]\n")
    with pytest.raises(
        InputError, match=f"^{re.escape(str(a))}: api/avail: also in {re.escape(str(own))};"
    ):
        read_slo_files([own, a])


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"slo_type": "availability", "target_value": 99.95}, {"target": 0.9995}),
        ({"slo_type": "error_rate", "target_value": 0.0001}, {"target": 0.999999}),
        ({"slo_type": "latency", "latency_threshold_ms": 0.5}, {"target": 0.999}),
        (
            {"slo_type": "throughput", "target_value": 12.5},
            {"op": "gte", "value": 12.5, "target": 0.99},
        ),
        ({"measurement_window_hours": 1}, {"target": 0.999}),
        ({"measurement_window_hours": 36}, {"target": 0.999}),
        ({"alert_threshold_percent": 12.25, "enabled": False}, {"target": 0.999}),
    ],
    ids=[
        "a 4-decimal availability target is written as its exact fraction",
        "an error_rate target of 0.0001 percent is a good share of 0.999999",
        "a sub-millisecond latency threshold survives",
        "a throughput SLO is a threshold metric at least its rate",
        "a one-hour window survives (no alert rule fits in it)",
        "a 36-hour window is written in hours",
        "the alert threshold and enabled ride in annotations",
    ],
)
def test_rows_written_as_openslo_read_back_the_same(
    tmp_path: Path, row: dict, expected: dict
) -> None:
    """Writing then reading is the identity on the table's columns (no database)."""
    base = {
        "service_name": "api",
        "slo_name": "s",
        "slo_type": "availability",
        "target_value": 99.9,
        "measurement_window_hours": 720,
        "alert_threshold_percent": 90.0,
        "enabled": True,
        "latency_threshold_ms": math.nan,
    }
    base.update(row)
    if base["slo_type"] == "latency" and math.isnan(base["latency_threshold_ms"]):
        base["latency_threshold_ms"] = 300.0
    frame = read_slo_file(write_obslib(tmp_path, base))  # the frame the table would hold
    documents = openslo_documents(frame)
    slo = next(d for d in documents if d["kind"] == "SLO")
    assert slo["spec"]["objectives"] == [
        {"displayName": "requests per second", **expected} if "op" in expected else expected
    ]
    path = tmp_path / "export.yaml"
    path.write_text(dump(documents), encoding="utf-8")
    pd.testing.assert_frame_equal(read_slo_files([path]), frame)


def write_obslib(tmp_path: Path, row: dict) -> Path:
    entry = {
        "service": row["service_name"],
        "name": row["slo_name"],
        "type": row["slo_type"],
        "target": row["target_value"],
        "window": f"{row['measurement_window_hours']}h",
        "alert_threshold_percent": row["alert_threshold_percent"],
        "enabled": row["enabled"],
    }
    if row["slo_type"] == "latency":
        entry["latency_threshold_ms"] = row["latency_threshold_ms"]
    path = tmp_path / "obslib.yaml"
    path.write_text(yaml.safe_dump({"slos": [entry]}), encoding="utf-8")
    return path


def shorthand(text: str) -> pd.Timedelta:
    """An OpenSLO duration (``5m``, ``1h``, ``3d``) as a Timedelta."""
    unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[text[-1]]
    return pd.Timedelta(**{unit: int(text[:-1])})


def test_each_multiwindow_rule_is_one_policy_of_one_burnrate_condition() -> None:
    """The policies say what obslib.slo.alert_rules says: the factor and long window in the
    one condition the spec allows, the short window in the obslib/short-window annotation."""
    frame = read_slo_file(VALID)
    documents = openslo_documents(frame)
    policies = [d for d in documents if d["kind"] == "AlertPolicy"]
    rules = alert_rules(frame)
    rules = rules[rules["applies"]]
    assert len(policies) == len(rules) > 0
    for policy, rule in zip(policies, rules.to_dict("records"), strict=True):
        (condition,) = policy["spec"]["conditions"]
        burn = condition["spec"]["condition"]
        assert burn["kind"] == "burnrate"
        assert burn["threshold"] == pytest.approx(rule["burn_rate"])
        assert shorthand(burn["lookbackWindow"]) == rule["long_window"]
        short = policy["metadata"]["annotations"]["obslib/short-window"]
        assert shorthand(short) == rule["short_window"]
        assert condition["spec"]["severity"] == rule["severity"]
        assert policy["spec"]["notificationTargets"] == [{"targetRef": "obslib-alertmanager"}]
    throughput = next(d for d in documents if d["metadata"]["name"] == "checkout-throughput")
    assert "alertPolicies" not in throughput["spec"]  # no budget, no burn-rate rule
    targets = [d for d in documents if d["kind"] == "AlertNotificationTarget"]
    assert [t["metadata"]["name"] for t in targets] == ["obslib-alertmanager"]


# -- against the database ---------------------------------------------------------------------


def test_export_then_apply_gives_back_the_same_rows(migrated_db: str, tmp_path: Path) -> None:
    """The round trip on the real commands: apply obslib's file, export OpenSLO, empty the
    table, apply the export: the same rows; applying it again changes nothing."""
    env = {"OBSLIB_DATABASE_URL": migrated_db}
    assert run_cli("slo", "apply", str(VALID), env=env).returncode == 0
    before = stored(migrated_db)
    out = tmp_path / "exported.yaml"
    result = run_cli("slo", "export", "--format", "openslo", "--out", str(out), env=env)
    assert result.returncode == 0, result.stderr[-500:]
    assert result.stdout == f"wrote {out} (4 SLOs)\n"
    with db.connection(migrated_db) as conn:
        conn.execute(f"DELETE FROM {schema.SLOS}")
    result = run_cli("slo", "apply", str(out), env=env)
    assert result.returncode == 0, result.stderr[-500:]
    assert result.stdout == "4 created, 0 updated, 0 unchanged\n"
    pd.testing.assert_frame_equal(stored(migrated_db), before)
    again = run_cli("slo", "apply", str(out), str(OPENSLO), env=env)
    assert again.returncode == 2  # the example names the same SLOs: each may appear once
    assert (
        run_cli("slo", "apply", str(out), env=env).stdout == "0 created, 0 updated, 4 unchanged\n"
    )


def test_a_refused_document_applies_nothing_of_any_file(migrated_db: str, tmp_path: Path) -> None:
    """A file with a good SLO and a Timeslices one: exit 2, one line, the table as it was."""
    env = {"OBSLIB_DATABASE_URL": migrated_db}
    good = write_documents(tmp_path, slo_document(), name="good.yaml")
    bad = slo_document(**{"metadata.name": "sliced", "spec.budgetingMethod": "Timeslices"})
    mixed = write_documents(tmp_path, slo_document(**{"metadata.name": "fine"}), bad)
    result = run_cli("slo", "apply", str(good), str(mixed), env=env)
    assert result.returncode == 2
    assert result.stderr == (
        f"obslib: error: {mixed}: SLO 'sliced': spec.budgetingMethod: 'Timeslices' is not"
        " evaluated; obslib counts Occurrences (good events over total events)\n"
    )
    assert load.slos(url=migrated_db).empty


def test_export_without_out_writes_to_standard_output(migrated_db: str) -> None:
    """An empty table exports nothing, successfully."""
    result = run_cli(
        "slo", "export", "--format", "openslo", env={"OBSLIB_DATABASE_URL": migrated_db}
    )
    assert result.returncode == 0, result.stderr[-500:]
    assert list(yaml.safe_load_all(result.stdout)) == []


# -- hostile YAML ---------------------------------------------------------------------------


def test_several_obslib_shape_documents_in_one_file_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_bytes(yaml.safe_dump_all([{"slos": []}, {"slos": []}]).encode())
    with pytest.raises(
        InputError, match="^" + re.escape(f"{path}: ") + "2 YAML documents, but no apiVersion"
    ):
        read_slo_files([path])


def test_the_export_shares_no_nodes() -> None:
    """No YAML anchors or aliases in what export writes: a reader need not resolve any."""
    assert "&id" not in dump(openslo_documents(read_slo_file(VALID)))


def test_the_prometheus_example_is_refused_at_its_first_unevaluable_field() -> None:
    """tests/data/slo/openslo/prometheus-source.yaml (a Prometheus source, time slices, a
    calendar month): refused at the budgeting method, checked first."""
    path = OPENSLO.parent / "prometheus-source.yaml"
    with pytest.raises(
        InputError, match=r"SLO 'web-availability': spec\.budgetingMethod: 'Timeslices'"
    ):
        read_slo_files([path])


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("missing/x.yaml", "folder .*missing does not exist"),
        (".", "is a folder; name the file to write"),
    ],
    ids=["an out file in a missing folder is refused", "an out folder is refused"],
)
def test_export_refuses_a_bad_out_before_connecting(tmp_path: Path, out: str, message: str) -> None:
    """No database is named: the refusal comes first."""
    result = run_cli("slo", "export", "--format", "openslo", "--out", str(tmp_path / out))
    assert result.returncode == 2
    assert re.fullmatch(f"obslib: error: .*{message}\n", result.stderr), result.stderr


# -- the export is valid OpenSLO v1 ---------------------------------------------------------

SCHEMA = REPO / "tests" / "data" / "openslo" / "openslo-v1.schema.json"
GO_SDK_EXAMPLES = SCHEMA.parent / "go-sdk-examples"


def openslo_validator():
    import json

    import jsonschema

    schema_ = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema_)
    return jsonschema.Draft202012Validator(schema_)


def problems(document: dict) -> list[str]:
    """What the v1 schema says is wrong with one document (empty: valid)."""
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in openslo_validator().iter_errors(document)
    ]


def tricky_slos(tmp_path: Path) -> pd.DataFrame:
    """SLOs whose names do not make OpenSLO names as they are: one SLO name on two services,
    a service name with capitals and an underscore, names longer than a label, two pairs whose
    dashed names meet (a-b/c and a/b-c), a throughput SLO."""
    long = "very-long-service-name-" * 3
    entries = [
        {"service": "api", "name": "availability", "type": "availability", "target": 99.9},
        {"service": "web", "name": "availability", "type": "availability", "target": 99.5},
        {"service": "Payments_API", "name": "errors", "type": "error_rate", "target": 0.5},
        {"service": long, "name": "availability", "type": "availability", "target": 99.0},
        {"service": "a-b", "name": "c", "type": "availability", "target": 99.0},
        {"service": "a", "name": "b-c", "type": "availability", "target": 99.0},
        {"service": "web", "name": "rps", "type": "throughput", "target": 5.0},
    ]
    path = tmp_path / "tricky.yaml"
    path.write_text(
        yaml.safe_dump({"slos": [{**e, "window": "720h"} for e in entries]}), encoding="utf-8"
    )
    return read_slo_file(path)


def inline_names(document: dict) -> list[tuple[str, str]]:
    """(kind, name) of the parts a document holds inline: its indicator, its conditions."""
    spec = document["spec"]
    found = []
    if "indicator" in spec:
        found.append(("SLI", spec["indicator"]["metadata"]["name"]))
    for condition in spec.get("conditions", []):
        found.append(("AlertCondition", condition["metadata"]["name"]))
    return found


def test_every_exported_document_is_valid_openslo_v1_with_names_unique_per_kind(
    tmp_path: Path,
) -> None:
    """Each document passes the v1 schema (tests/data/openslo); no two documents or inline
    parts of one kind share a metadata.name; and the export still applies to the same rows."""
    frame = tricky_slos(tmp_path)
    documents = openslo_documents(frame)
    for document in documents:
        assert problems(document) == [], (document["kind"], document["metadata"]["name"])
    names = [(d["kind"], d["metadata"]["name"]) for d in documents]
    names += [part for d in documents for part in inline_names(d)]
    assert len(names) == len(set(names)), sorted(names)
    slos = {d["metadata"]["name"] for d in documents if d["kind"] == "SLO"}
    assert {"api-availability", "web-availability", "web-rps"} <= slos
    path = tmp_path / "export.yaml"
    path.write_text(dump(documents), encoding="utf-8")
    pd.testing.assert_frame_equal(read_slo_files([path]), frame)


def test_the_export_of_the_same_slos_names_them_the_same(tmp_path: Path) -> None:
    """Names are stable: exporting the same rows twice gives the same text."""
    frame = tricky_slos(tmp_path)
    assert dump(openslo_documents(frame)) == dump(openslo_documents(frame.copy()))


def digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:8]


NAMES = [
    ("a label stays as it is", [("api", "availability")], ["api-availability"]),
    (
        "capitals and underscores become a dash form with a hash of the parts",
        [("Payments_API", "errors")],
        ["payments-api-errors-" + digest("Payments_API", "errors")],
    ),
    (
        "two keys whose dashed names meet both take their own hash",
        [("a-b", "c"), ("a", "b-c"), ("x",)],
        ["a-b-c-" + digest("a-b", "c"), "a-b-c-" + digest("a", "b-c"), "x"],
    ),
    (
        "a name longer than 63 characters is cut and hashed",
        [("x" * 70,)],
        ["x" * 54 + "-" + digest("x" * 70)],
    ),
    ("a name without a letter or digit is hashed", [("__",)], ["x-" + digest("__")]),
]


@pytest.mark.parametrize(("keys", "expected"), [n[1:] for n in NAMES], ids=[n[0] for n in NAMES])
def test_metadata_names_are_unique_rfc_1123_labels(keys: list[tuple], expected: list[str]) -> None:
    got = metadata_names(keys)
    assert got == expected
    assert all(re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", n) for n in got)


def test_the_schema_accepts_the_reference_validators_examples_and_ours() -> None:
    """The schema is no stricter than OpenSLO's own validator: every example of go-sdk
    (copied unchanged into tests/data/openslo/go-sdk-examples) passes, and so does our
    OpenSLO example file."""
    paths = sorted(GO_SDK_EXAMPLES.glob("*.yaml"))
    assert len(paths) == 7
    seen = 0
    for path in [*paths, OPENSLO]:
        for loaded in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            for document in loaded if isinstance(loaded, list) else [loaded]:
                assert problems(document) == [], (path.name, document["metadata"]["name"])
                seen += 1
    assert seen > 20


def exported(kind: str) -> dict:
    """The first exported document of ``kind`` for the demo SLO file."""
    documents = openslo_documents(read_slo_file(VALID))
    if kind == "throughput":
        return next(d for d in documents if d["metadata"]["name"] == "checkout-throughput")
    return next(d for d in documents if d["kind"] == kind)


INVALID = [
    (
        "a throughput objective without a target is invalid",
        "throughput",
        lambda d: d["spec"]["objectives"][0].pop("target"),
        "spec/objectives/0",
    ),
    (
        "a policy of two conditions (long and short window) is invalid",
        "AlertPolicy",
        lambda d: d["spec"]["conditions"].append(d["spec"]["conditions"][0]),
        "spec/conditions: [",
    ),
    (
        "a policy without a notification target is invalid",
        "AlertPolicy",
        lambda d: d["spec"].pop("notificationTargets"),
        "spec: 'notificationTargets' is a required property",
    ),
    (
        "a name with an underscore is invalid",
        "Service",
        lambda d: d["metadata"].update(name="api_gateway"),
        "metadata/name: 'api_gateway' does not match",
    ),
    (
        "an alert policy named instead of referenced is invalid",
        "SLO",
        lambda d: d["spec"].update(alertPolicies=["some-policy"]),
        "spec/alertPolicies/0",
    ),
]


@pytest.mark.parametrize(
    ("kind", "change", "problem"), [i[1:] for i in INVALID], ids=[i[0] for i in INVALID]
)
def test_the_schema_refuses_what_the_export_must_not_write(kind, change, problem) -> None:
    """The defects the export had (and others) fail the schema: the validity test bites."""
    document = exported(kind)
    assert problems(document) == []
    change(document)
    assert any(p.startswith(problem) for p in problems(document)), problems(document)


@pytest.mark.parametrize(
    "name",
    ["API_VERSION", "SOURCE_TYPE", "ALERT_THRESHOLD", "ENABLED", "SLO_NAME", "THROUGHPUT_TARGET"],
)
def test_the_export_writes_the_names_apply_reads(name: str) -> None:
    """obslib.slo.openslo may not import obslib.ingest: its copies of the names must agree."""
    from obslib.ingest import openslo as reader
    from obslib.slo import openslo as writer

    assert getattr(writer, name) == getattr(reader, name)


def billion_laughs() -> bytes:
    """An OpenSLO SLO whose description expands to 9**9 strings (387 million) through nine
    levels of anchors, each level nine aliases of the one before."""
    levels = ["x0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    levels += [f"x{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    document = yaml.safe_dump(slo_document(), sort_keys=False)
    return (document + "---\n" + "\n".join(levels) + "\n").encode()


HOSTILE = [
    (
        "a 10 MB file is refused before it is read",
        b"# padding\n" * 1_000_000,
        "the file is larger than 4 MiB; an SLO file is a few kB",
    ),
    (
        "anchors that expand without bound are refused before they are built",
        billion_laughs(),
        "invalid YAML: aliases expand the document by",
    ),
    (
        "non-UTF-8 bytes are refused with their line",
        b"apiVersion: openslo/v1\nkind: SLO\nmetadata:\n  name: caf\xe9\n",
        "line 4: not UTF-8 text (byte 0xe9)",
    ),
    (
        "a key given twice is refused with its line",
        yaml.safe_dump(slo_document(), sort_keys=False).encode() + b"kind: SLI\n",
        "line 29, column 1: invalid YAML: key 'kind' given twice (lines 2 and 29)",
    ),
]


@pytest.mark.parametrize(
    ("content", "message"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE]
)
def test_hostile_openslo_files_are_refused_in_bounded_memory(
    tmp_path: Path, content: bytes, message: str
) -> None:
    """Read in this process: one line naming the file, and a peak of allocated memory below
    8 MiB (less than the 10 MB file; the billion laughs would take gigabytes built)."""
    import tracemalloc

    path = tmp_path / "hostile.yaml"
    path.write_bytes(content)
    del content
    tracemalloc.start()
    try:
        with pytest.raises(InputError) as refused:
            read_slo_files([path])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    text = str(refused.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: ") and message in text, text
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB"


@pytest.mark.parametrize(
    ("content", "message"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE]
)
def test_hostile_openslo_files_apply_nothing(
    migrated_db: str, tmp_path: Path, content: bytes, message: str
) -> None:
    """Through the real command beside a good file: exit 2, one line naming the hostile
    file, and no SLO stored."""
    good = write_documents(tmp_path, slo_document(), name="good.yaml")
    path = tmp_path / "hostile.yaml"
    path.write_bytes(content)
    result = run_cli("slo", "apply", str(good), str(path), env={"OBSLIB_DATABASE_URL": migrated_db})
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"obslib: error: {path}: ")
    assert message in result.stderr
    assert load.slos(url=migrated_db).empty
