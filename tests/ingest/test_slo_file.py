"""SLOs as code: a YAML file is read strictly (one-line errors naming file, SLO and field) and
upserted in one transaction (created / updated / unchanged; applying twice changes nothing)."""

from __future__ import annotations

import math
import re
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from obslib import load
from obslib.errors import DatabaseError, InputError
from obslib.ingest.slo_file import Applied, apply_slos, read_slo_file
from tests.conftest import run_cli
from tests.pg import REPO

DATA = REPO / "tests" / "data" / "slo"
VALID = DATA / "domainflow-slos.yaml"
CHANGED = DATA / "domainflow-slos-changed.yaml"
STORED = [
    "service_name",
    "slo_name",
    "slo_type",
    "target_value",
    "measurement_window_hours",
    "error_budget_percent",
    "alert_threshold_percent",
    "enabled",
    "latency_threshold_ms",
]
# What VALID holds, column by column, as the table stores it.
EXPECTED = pd.DataFrame(
    {
        "service_name": ["api-gateway", "api-gateway", "checkout", "checkout"],
        "slo_name": ["availability", "latency-p99", "error-rate", "throughput"],
        "slo_type": ["availability", "latency", "error_rate", "throughput"],
        "target_value": [99.9, 99.0, 0.5, 95.0],
        "measurement_window_hours": [720, 168, 24, 24],
        "error_budget_percent": [0.1, 1.0, 0.5, 5.0],
        "alert_threshold_percent": [90.0, 75.0, 90.0, 90.0],
        "enabled": [True, True, True, False],
        "latency_threshold_ms": [math.nan, 300.0, math.nan, math.nan],
    }
)
KEYS = [
    "api-gateway/availability",
    "api-gateway/latency-p99",
    "checkout/error-rate",
    "checkout/throughput",
]


def write(tmp_path: Path, text: str, name: str = "slos.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def stored(url: str) -> pd.DataFrame:
    """The stored SLOs as the file's columns, by service and name."""
    frame = load.slos(url=url)[STORED]
    return frame.astype({"measurement_window_hours": "int64", "enabled": bool})


def one_slo(**fields: object) -> str:
    """A file with one SLO: a valid availability SLO with ``fields`` changed (None drops one)."""
    slo = {"service": "api-gateway", "name": "avail", "type": "availability", "target": 99.9}
    slo.update(fields)
    slo = {k: v for k, v in slo.items() if v is not None}
    return yaml.safe_dump({"slos": [slo]}, sort_keys=False)


# -- reading ---------------------------------------------------------------------------------


def test_a_valid_file_reads_into_the_table_columns_with_defaults_filled() -> None:
    """Window 24h, alert threshold 90 and enabled true are the defaults; windows are hours."""
    frame = read_slo_file(VALID)
    pd.testing.assert_frame_equal(frame, EXPECTED)
    assert frame["measurement_window_hours"].dtype == "int64"


def test_an_empty_slo_list_is_valid_and_applies_nothing(migrated_db: str) -> None:
    """``slos: []`` is a file with nothing to apply, not an error."""
    frame = read_slo_file(DATA / "empty.yaml")
    assert list(frame.columns) == STORED and frame.empty
    applied = apply_slos(frame, url=migrated_db)
    assert (applied, str(applied)) == (Applied([], [], []), "0 created, 0 updated, 0 unchanged")
    assert load.slos(url=migrated_db).empty


@pytest.mark.parametrize(
    ("slo_type", "target", "budget"),
    [
        pytest.param("availability", 99.9, 0.1, id="availability 99.9 leaves a 0.1 budget"),
        pytest.param("throughput", 95, 5.0, id="throughput 95 leaves a 5 budget"),
        pytest.param("error_rate", 0.5, 0.5, id="error_rate 0.5 is itself the budget"),
        pytest.param("error_rate", 2, 2.0, id="error_rate 2 is itself the budget"),
    ],
)
def test_the_error_budget_is_100_minus_target_except_for_error_rate(
    tmp_path: Path, slo_type: str, target: float, budget: float
) -> None:
    """An error_rate SLO's target is the most errors allowed, so it is the budget itself."""
    frame = read_slo_file(write(tmp_path, one_slo(type=slo_type, target=target)))
    assert frame["error_budget_percent"].tolist() == [budget]


def test_yaml_merge_keys_share_fields_and_a_merged_key_may_be_overridden(tmp_path) -> None:
    text = """slos:
  - &base {service: api, name: a, type: availability, target: 99.9, window: 7d}
  - {<<: *base, name: b, target: 99.5}
"""
    frame = read_slo_file(write(tmp_path, text))
    assert frame["slo_name"].tolist() == ["a", "b"]
    assert frame["target_value"].tolist() == [99.9, 99.5]
    assert frame["measurement_window_hours"].tolist() == [168, 168]


@pytest.mark.parametrize(
    ("window", "hours"),
    [
        pytest.param("24h", 24, id="24h is 24 hours"),
        pytest.param("7d", 168, id="7d is 168 hours"),
        pytest.param("30d", 720, id="30d is 720 hours"),
        pytest.param("120min", 2, id="120min is 2 whole hours"),
        pytest.param(None, 24, id="no window is 24 hours"),
    ],
)
def test_windows_are_read_as_whole_hours(tmp_path: Path, window: str | None, hours: int) -> None:
    """The window column holds hours; any duration that is a whole number of them is fine."""
    frame = read_slo_file(write(tmp_path, one_slo(window=window)))
    assert frame["measurement_window_hours"].tolist() == [hours]


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"target": 0.01}, id="a target of 0.01 is inside the bounds"),
        pytest.param({"target": 99.99}, id="a target of 99.99 is inside the bounds"),
        pytest.param({"alert_threshold_percent": 100}, id="an alert threshold of 100 is allowed"),
        pytest.param({"alert_threshold_percent": 0.01}, id="an alert threshold of 0.01 is allowed"),
        pytest.param(
            {"type": "latency", "latency_threshold_ms": 0.001},
            id="a latency threshold of 0.001 ms is allowed",
        ),
        pytest.param({"enabled": False}, id="enabled false is allowed"),
    ],
)
def test_values_at_the_edges_of_their_bounds_are_accepted(tmp_path: Path, fields: dict) -> None:
    """The bounds are exactly as documented: target in (0, 100), alert in (0, 100]."""
    frame = read_slo_file(write(tmp_path, one_slo(**fields)))
    columns = {"target": "target_value", "type": "slo_type"}
    for name, value in fields.items():
        assert frame[columns.get(name, name)].tolist() == [value]


F = "slos.yaml"  # the file name every message starts with
AT = f"{F}: slos[0] (api-gateway/avail)"
LIST = "slos:\n  - service: api-gateway\n    name: avail\n    type: availability\n"
REFUSED = [
    # the document
    ("a YAML syntax error names its line", "slos:\n  - service: [a\n", f"{F}: line 3, column 1:"),
    ("a tab indentation is a syntax error", "slos:\n\t- x: 1\n", f"{F}: line 2, column 1:"),
    ("an empty file is refused", "", f"{F}: expected a mapping with a 'slos' list, got an empty"),
    ("a top-level list is refused", "- a: 1\n", f"{F}: expected a mapping with a 'slos' list"),
    ("a file without slos is refused", "other: 1\n", f"{F}: expected a mapping with a 'slos'"),
    ("an unknown top-level key is refused", "slos: []\nversion: 2\n", f"{F}: unknown top-level"),
    ("slos that is not a list is refused", "slos: {}\n", f"{F}: slos: must be a list of SLOs"),
    ("an SLO that is not a mapping is refused", "slos: [x]\n", f"{F}: slos[0]: must be a mapping"),
    (
        "a field given twice in one SLO is refused with both lines",
        LIST + "    target: 99\n    target: 98\n",
        f"{F}: line 6, column 5: invalid YAML: key 'target' given twice (lines 5 and 6)",
    ),
    # fields
    (
        "an unknown field is named with the allowed ones",
        one_slo(targte=99),
        f"{AT}: targte: unknown field (allowed: service, name, type, target, window,"
        " alert_threshold_percent, latency_threshold_ms, enabled)",
    ),
    ("a missing service is named", one_slo(service=None), f"{F}: slos[0]: service: missing"),
    ("a missing name is named", one_slo(name=None), f"{F}: slos[0]: name: missing"),
    ("a missing type is named", one_slo(type=None), f"{AT}: type: missing"),
    ("a missing target is named", one_slo(target=None), f"{AT}: target: missing"),
    ("an empty name is refused", one_slo(name=""), f"{F}: slos[0]: name: must not be empty"),
    ("a blank service is refused", one_slo(service="  "), f"{F}: slos[0]: service: must not be"),
    (
        "a service with spaces around it is refused",
        one_slo(service=" api-gateway"),
        f"{F}: slos[0] ( api-gateway/avail): service: has spaces before or after it",
    ),
    ("a numeric name must be quoted", one_slo(name=2024), f"{F}: slos[0]: name: must be text"),
    (
        "a service longer than its column is refused",
        one_slo(service="s" * 101),
        f"{F}: slos[0] ({'s' * 37}.../avail): service: is 101 characters long, more than the 100",
    ),
    (
        "a name longer than its column is refused",
        one_slo(name="n" * 101),
        f"{F}: slos[0] (api-gateway/{'n' * 37}...): name: is 101 characters long",
    ),
    (
        "an unknown type is refused with the allowed ones",
        one_slo(type="uptime"),
        f"{AT}: type: must be one of availability, latency, error_rate, throughput, got 'uptime'",
    ),
    # target
    (
        "a target of 100 is refused",
        one_slo(target=100),
        f"{AT}: target: must be a number strictly between 0 and 100, got 100",
    ),
    ("a target of 0 is refused", one_slo(target=0), f"{AT}: target: must be a number strictly"),
    ("a negative target is refused", one_slo(target=-1), f"{AT}: target: must be a number"),
    (
        "a true target is not a number",
        one_slo(target=True),
        f"{AT}: target: must be a number, got true",
    ),
    ("a quoted target is not a number", one_slo(target="99.9"), f"{AT}: target: must be a number"),
    ("a NaN target is refused", LIST + "    target: .nan\n", f"{AT}: target: must be a finite"),
    (
        "a target of 401 digits is refused, not an overflow",
        LIST + "    target: 1" + "0" * 400 + "\n",
        f"{AT}: target: must be a finite number",
    ),
    (
        "a target finer than the column keeps is refused",
        one_slo(target=99.12345),
        f"{AT}: target: at most 4 decimals are kept, got 99.12345",
    ),
    # window
    ("a bare number window is refused", one_slo(window="24"), f"{AT}: window: must be a duration"),
    ("an int window is refused", one_slo(window=24), f"{AT}: window: must be a duration"),
    ("a fractional window is refused", one_slo(window="90min"), f"{AT}: window: must be a"),
    ("a zero window is refused", one_slo(window="0h"), f"{AT}: window: must be a duration"),
    ("a negative window is refused", one_slo(window="-1d"), f"{AT}: window: must be a duration"),
    ("a nonsense window is refused", one_slo(window="soon"), f"{AT}: window: must be a duration"),
    # alert threshold, latency threshold, enabled
    (
        "an alert threshold of 0 is refused",
        one_slo(alert_threshold_percent=0),
        f"{AT}: alert_threshold_percent: must be a number above 0 and at most 100, got 0",
    ),
    (
        "an alert threshold over 100 is refused",
        one_slo(alert_threshold_percent=100.5),
        f"{AT}: alert_threshold_percent: must be a number above 0 and at most 100, got 100.5",
    ),
    (
        "a text alert threshold is refused",
        one_slo(alert_threshold_percent="90"),
        f"{AT}: alert_threshold_percent: must be a number, got '90'",
    ),
    (
        "a latency SLO without a threshold is refused",
        one_slo(type="latency"),
        f"{AT}: latency_threshold_ms: required for a latency SLO",
    ),
    (
        "a latency threshold of 0 is refused",
        one_slo(type="latency", latency_threshold_ms=0),
        f"{AT}: latency_threshold_ms: must be a number above 0, got 0",
    ),
    (
        "a negative latency threshold is refused",
        one_slo(type="latency", latency_threshold_ms=-5),
        f"{AT}: latency_threshold_ms: must be a number above 0, got -5",
    ),
    (
        "a latency threshold on an availability SLO is refused",
        one_slo(latency_threshold_ms=300),
        f"{AT}: latency_threshold_ms: only a latency SLO takes one, this is availability",
    ),
    (
        "a text enabled is refused",
        one_slo(enabled="no"),
        f"{AT}: enabled: must be true or false, got 'no'",
    ),
    (
        "an SLO given twice names both positions",
        "slos:\n" + (LIST.removeprefix("slos:\n") + "    target: 99\n") * 2,
        f"{F}: slos[1] (api-gateway/avail): service and name: the same pair as slos[0]",
    ),
]


@pytest.mark.parametrize(("text", "message"), [pytest.param(t, m, id=i) for i, t, m in REFUSED])
def test_a_bad_file_is_refused_with_one_line_naming_file_slo_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    """Each refusal is an InputError of one line starting with what a person must fix; the
    file is named as the caller gave it."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path, text)
    with pytest.raises(InputError) as caught:
        read_slo_file(F)
    got = str(caught.value)
    assert got.startswith(message), got
    assert "\n" not in got and caught.value.exit_code == 2


def test_a_file_that_is_not_there_or_not_utf8_is_refused(tmp_path: Path) -> None:
    """The path as given leads the message; a bad byte is named with its line."""
    missing = tmp_path / "nope.yaml"
    with pytest.raises(InputError, match=r"nope\.yaml: no such file$"):
        read_slo_file(missing)
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("slos:\n  - service: caf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin1\.yaml: line 2: not UTF-8 text \(byte 0xe9\)$"):
        read_slo_file(latin1)
    with pytest.raises(InputError, match=r": is a directory, not a YAML file$"):
        read_slo_file(tmp_path)


# -- applying --------------------------------------------------------------------------------


def test_a_valid_file_round_trips_into_the_table_exactly(migrated_db: str) -> None:
    """Every column lands as the file says: targets, hours, budgets, thresholds, flags."""
    applied = apply_slos(read_slo_file(VALID), url=migrated_db)
    assert applied == Applied(created=KEYS, updated=[], unchanged=[])
    assert str(applied) == "4 created, 0 updated, 0 unchanged"
    pd.testing.assert_frame_equal(stored(migrated_db), EXPECTED)


def test_applying_the_same_file_twice_changes_nothing(migrated_db: str) -> None:
    """The second apply finds every SLO unchanged and does not touch updated_at."""
    apply_slos(read_slo_file(VALID), url=migrated_db)
    before = load.slos(url=migrated_db)
    applied = apply_slos(read_slo_file(VALID), url=migrated_db)
    assert applied == Applied(created=[], updated=[], unchanged=KEYS)
    assert str(applied) == "0 created, 0 updated, 4 unchanged"
    pd.testing.assert_frame_equal(load.slos(url=migrated_db), before)


def test_changing_one_target_updates_exactly_that_slo(migrated_db: str) -> None:
    """Only the changed SLO is updated (and its updated_at moves); its id stays."""
    apply_slos(read_slo_file(VALID), url=migrated_db)
    before = load.slos(url=migrated_db).set_index("slo_name")
    applied = apply_slos(read_slo_file(CHANGED), url=migrated_db)
    assert applied == Applied(created=[], updated=[KEYS[0]], unchanged=KEYS[1:])
    after = load.slos(url=migrated_db).set_index("slo_name")
    assert after.loc["availability", ["target_value", "error_budget_percent"]].tolist() == [
        99.5,
        0.5,
    ]
    assert after["id"].tolist() == before["id"].tolist()
    moved = after["updated_at"] != before["updated_at"]
    assert moved.tolist() == [True, False, False, False]
    assert (after["created_at"] == before["created_at"]).all()


def test_slos_stored_but_not_in_the_file_are_left_alone(migrated_db: str) -> None:
    """A file describes some SLOs, not all: applying it deletes nothing."""
    apply_slos(read_slo_file(VALID), url=migrated_db)
    only_one = read_slo_file(VALID).iloc[[1]]
    applied = apply_slos(only_one, url=migrated_db)
    assert applied == Applied(created=[], updated=[], unchanged=[KEYS[1]])
    pd.testing.assert_frame_equal(stored(migrated_db), EXPECTED)


def test_a_refused_file_writes_nothing(migrated_db: str, tmp_path: Path) -> None:
    """Bad input is refused before the database: the stored SLOs stay exactly as they were."""
    apply_slos(read_slo_file(VALID), url=migrated_db)
    before = load.slos(url=migrated_db)
    good = yaml.safe_load(VALID.read_text())["slos"]
    for bad in ({"target": 100}, {"type": "latency", "latency_threshold_ms": None}):
        slos = [dict(s) for s in good] + [{**good[0], "name": "new", **bad}]
        path = write(tmp_path, yaml.safe_dump({"slos": slos}))
        with pytest.raises(InputError):
            apply_slos(read_slo_file(path), url=migrated_db)
        pd.testing.assert_frame_equal(load.slos(url=migrated_db), before)


def test_a_row_the_database_refuses_rolls_back_the_whole_apply(migrated_db: str) -> None:
    """All or nothing: a frame built by hand whose last row breaks a table CHECK (a latency SLO
    with no threshold) stores none of its rows, and the error is input (exit 2)."""
    frame = read_slo_file(VALID)
    frame.loc[3, "slo_type"] = "latency"  # no latency_threshold_ms: the table refuses it
    with pytest.raises(InputError, match=r"^slos: PostgreSQL refused the batch: .*latency"):
        apply_slos(frame, url=migrated_db)
    assert load.slos(url=migrated_db).empty


def test_a_hand_built_frame_without_budgets_gets_them_by_the_same_rule(migrated_db: str) -> None:
    """apply_slos fills a missing error_budget_percent as read_slo_file does (error_rate: the
    target itself), to the four decimals its column keeps."""
    frame = read_slo_file(VALID).drop(columns="error_budget_percent")
    apply_slos(frame, url=migrated_db)
    pd.testing.assert_frame_equal(stored(migrated_db), EXPECTED)
    # migration 0008 keeps four decimals of budget: five nines leave 0.001 %, stored as such
    five_nines = frame.iloc[[0]].assign(slo_name="five-nines", target_value=99.999)
    apply_slos(five_nines, url=migrated_db)
    stored_five = load.slos(url=migrated_db).set_index("slo_name").loc["five-nines"]
    assert stored_five["error_budget_percent"] == pytest.approx(0.001)


def test_a_frame_with_a_key_twice_is_refused(migrated_db: str) -> None:
    """Two rows for one SLO in one apply: which one is meant is the caller's to say."""
    frame = read_slo_file(VALID)
    frame = pd.concat([frame, frame.iloc[[2]]], ignore_index=True)
    with pytest.raises(InputError, match=r"^slos rows 2 and 4 have the same key"):
        apply_slos(frame, url=migrated_db)
    assert load.slos(url=migrated_db).empty


def test_a_database_without_the_table_is_a_database_error(fresh_db: str) -> None:
    """Not the user's input: an unmigrated database fails with exit 1, naming the table."""
    with pytest.raises(DatabaseError, match=r"^slos: the database failed the write .*"):
        apply_slos(read_slo_file(VALID), url=fresh_db)


# -- any valid file ---------------------------------------------------------------------------

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_. /", min_size=1, max_size=100)
slos = st.builds(
    dict,
    service=names.filter(lambda n: n.strip() == n and n),  # no spaces around a name
    name=names.filter(lambda n: n.strip() == n and n),
    type=st.sampled_from(["availability", "latency", "error_rate", "throughput"]),
    target=st.integers(1, 9999).map(lambda n: n / 100),
    window=st.sampled_from(["1h", "24h", "7d", "30d", "90d"]),
    alert_threshold_percent=st.integers(1, 10000).map(lambda n: n / 100),
    enabled=st.booleans(),
    latency_threshold_ms=st.integers(1, 10**9).map(lambda n: n / 1000),
)


def _valid(slo: dict) -> dict:
    if slo["type"] != "latency":
        return {k: v for k, v in slo.items() if k != "latency_threshold_ms"}
    return slo


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(slos.map(_valid), max_size=6, unique_by=lambda s: (s["service"], s["name"])))
def test_any_valid_file_round_trips_through_the_table(
    migrated_db: str, tmp_path: Path, file: list[dict]
) -> None:
    """What a valid file says is what the table holds afterwards, and a second apply of the
    same file finds every SLO unchanged."""
    path = write(tmp_path, yaml.safe_dump({"slos": file}))
    frame = read_slo_file(path)
    apply_slos(frame, url=migrated_db)
    keys = [f"{s['service']}/{s['name']}" for s in file]
    assert apply_slos(frame, url=migrated_db) == Applied(created=[], updated=[], unchanged=keys)
    table = stored(migrated_db).set_index(["service_name", "slo_name"])
    for slo in file:
        row = table.loc[(slo["service"], slo["name"])]
        assert row["slo_type"] == slo["type"]
        assert row["target_value"] == slo["target"]
        budget = slo["target"] if slo["type"] == "error_rate" else round(100 - slo["target"], 2)
        assert row["error_budget_percent"] == budget
        assert row["alert_threshold_percent"] == slo["alert_threshold_percent"]
        assert row["enabled"] == slo["enabled"]
        hours = {"1h": 1, "24h": 24, "7d": 168, "30d": 720, "90d": 2160}[slo["window"]]
        assert row["measurement_window_hours"] == hours
        latency = slo.get("latency_threshold_ms", math.nan)
        assert row["latency_threshold_ms"] == latency or math.isnan(latency)
        assert math.isnan(row["latency_threshold_ms"]) == math.isnan(latency)


# -- hostile YAML ----------------------------------------------------------------------------


def _alias_bomb(field: str) -> str:
    """One SLO whose ``field`` is a "billion laughs": 9 levels of 9 aliases (9**9 leaves from
    a dozen lines), the anchors hidden in a merge key's list so the SLO itself stays valid."""
    levels = ["&l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    levels += [f"&l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    fields = {"service": "api", "name": "bomb", "type": "availability", "target": "99.9"}
    fields[field] = f"[{', '.join(['*l8'] * 9)}]"
    lines = "\n".join(f"    {k}: {v}" for k, v in fields.items())
    return (
        f"slos:\n  - <<: [{', '.join(f'{{x{i}: {lv}}}' for i, lv in enumerate(levels))}]\n{lines}\n"
    )


@pytest.mark.parametrize("field", ["target", "window", "service", "type", "enabled"])
def test_an_alias_bomb_is_refused_in_one_line_and_nothing_is_applied(
    migrated_db: str, tmp_path: Path, field: str
) -> None:
    """Aliases that would expand the file past MAX_ALIAS_NODES are refused before anything
    is built from them (it was `internal error: MemoryError`, the message str()-ing the
    expanded value): exit 2, one line naming the file, the stored SLOs untouched."""
    apply_slos(read_slo_file(VALID), url=migrated_db)
    before = load.slos(url=migrated_db)
    path = write(tmp_path, _alias_bomb(field))
    result = run_cli("slo", "apply", str(path), env={"OBSLIB_DATABASE_URL": migrated_db})
    assert result.returncode == 2, result.stderr[-500:]
    assert re.fullmatch(
        f"obslib: error: {re.escape(str(path))}: invalid YAML: aliases expand the document by"
        r" \d{9,} nodes, more than the 100000 allowed\n",
        result.stderr,
    ), result.stderr[-500:]
    pd.testing.assert_frame_equal(load.slos(url=migrated_db), before)


def test_aliases_within_the_limit_and_merge_keys_still_work(tmp_path: Path) -> None:
    """The limit counts what aliases add: defaults merged into many SLOs stay far below it."""
    slos = "\n".join(f"  - {{<<: *d, name: s{i}}}" for i in range(1, 1000))
    path = write(
        tmp_path,
        "slos:\n  - &d {service: api, name: s0, type: availability, target: 99.9, window: 7d}\n"
        + slos
        + "\n",
    )
    frame = read_slo_file(path)
    assert len(frame) == 1000 and set(frame["measurement_window_hours"]) == {168}


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path: Path) -> None:
    """A recursive alias expands without end: refused with its line, not constructed."""
    path = write(tmp_path, "slos:\n  - &x {service: api, name: a, type: *x, target: 99}\n")
    with pytest.raises(
        InputError, match=r"line 2, column 5: invalid YAML: an alias inside its own"
    ):
        read_slo_file(path)


HUGE = "x" * 200_000


@pytest.mark.parametrize(
    ("fields", "shown"),
    [
        pytest.param({"type": HUGE}, "type: must be one of", id="a huge type"),
        pytest.param({"target": HUGE}, "target: must be a number, got", id="huge text as target"),
        pytest.param({"window": HUGE}, "window: must be a duration", id="a huge window"),
        pytest.param({"enabled": HUGE}, "enabled: must be true or false", id="a huge enabled"),
        pytest.param({"service": f" {HUGE}"}, "service: has spaces", id="a padded huge service"),
        pytest.param({HUGE: 1}, "unknown field", id="a huge unknown field name"),
        pytest.param({"target": list(range(50_000))}, "got a list", id="a long list as target"),
        pytest.param({"type": {"k": HUGE}}, "got a mapping", id="a mapping as type"),
    ],
)
def test_messages_quote_at_most_40_characters_of_a_value(
    tmp_path: Path, fields: dict, shown: str
) -> None:
    """A value is quoted in a message cut at 40 characters (plus "..."), never whole."""
    path = write(tmp_path, one_slo(**fields))
    with pytest.raises(InputError) as caught:
        read_slo_file(path)
    message = str(caught.value)
    assert shown in message and len(message) < 400, message[:500]
