"""Evidence bundles, in process: what every loader returns comes back from a bundle equal
(dtypes, missing values, JSON objects), a call's identity, and the hook on every loader."""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from obslib import load
from obslib.load import bundle
from obslib.load._bundle_codec import (
    CONNECTION_ARGUMENTS,
    BundleError,
    decode,
    encode,
    frame_bytes,
    read_frame,
)

WINDOW = ("2026-11-14T14:00:00Z", "2026-11-14T15:00:00Z")
INCIDENT = "INC-20261114-0001"


def round_trip(value: object, where: str = "loader") -> object:
    """``value`` through the bundle's files: encoded, Parquet bytes, decoded."""
    files: dict[str, tuple[bytes, dict[str, str]]] = {}

    def put(frame: pd.DataFrame) -> str:
        name = f"f{len(files)}"
        files[name] = frame_bytes(frame, where)
        return name

    shape = encode(value, put, where)
    return decode(shape, lambda name: read_frame(*files[name]))


def assert_same(got: object, want: object) -> None:
    """Equal, frames with their dtypes, index and missing values of the same kind."""
    assert type(got) is type(want), (type(got), type(want))
    if isinstance(want, pd.DataFrame):
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        for column in want.select_dtypes(include=[object, "str"]).columns:
            for a, b in zip(got[column], want[column], strict=True):
                assert type(a) is type(b) and (a == b or (a is None) or math.isnan(b)), column
    elif isinstance(want, tuple | list):
        assert len(got) == len(want)
        for a, b in zip(got, want, strict=True):
            assert_same(a, b)
    elif isinstance(want, dict):
        assert list(got) == list(want)
        for key in want:
            assert_same(got[key], want[key])
    elif isinstance(want, pd.Timestamp):
        assert got == want and got.unit == want.unit and str(got.tz) == str(want.tz)
    else:
        assert got == want or (got is pd.NaT and want is pd.NaT)


FRAMES = {
    "tz-aware microsecond timestamps keep their unit": pd.DataFrame(
        {"t": pd.to_datetime(["2026-11-14T14:00:00.123456Z", None]).as_unit("us")}
    ),
    "nullable integers keep their missing value": pd.DataFrame(
        {"n": pd.array([1, None, 3], dtype="Int64")}
    ),
    "text keeps NaN as missing": pd.DataFrame({"s": pd.Series(["a", None], dtype="str")}),
    "categories stay categories": pd.DataFrame({"c": pd.Categorical(["x", "y", "x"])}),
    "dicts keep their own keys, not every row's": pd.DataFrame(
        {"tags": [{"a": 1}, {"b": [1, {"c": None}]}, {}], "logs": [[], [{"x": 1.5}], []]}
    ),
    "a missing dict stays None": pd.DataFrame({"fields": [{"a": 1}, None]}),
    "a missing dict stays NaN": pd.DataFrame({"fields": [{"a": 1}, np.nan]}),
    "JSON scalars and strings in an object column": pd.DataFrame(
        {"v": ["text", 1, 2.5, True, None]}
    ),
    "an empty frame keeps its columns and dtypes": pd.DataFrame(
        {"t": pd.Series([], dtype="datetime64[us, UTC]"), "n": pd.Series([], dtype="Int64")}
    ),
    "a non-default index is kept": pd.DataFrame({"v": [1.5, -0.0]}, index=["b", "a"]),
}


@pytest.mark.parametrize("frame", FRAMES.values(), ids=FRAMES.keys())
def test_a_frame_comes_back_from_a_bundle_equal(frame: pd.DataFrame) -> None:
    """Parquet plus the JSON columns: the same frame, dtypes and missing values."""
    assert_same(round_trip(frame), frame)


VALUES = {
    "a window's bounds, a tuple of timestamps": (
        pd.Timestamp("2026-11-02T00:02:49.680877Z").as_unit("us"),
        pd.Timestamp("2026-11-16T00:00:00Z"),
    ),
    "no data, None": None,
    "ids, a list of strings": ["INC-1", "INC-2"],
    "evidence, a dict of tuples of frames": {
        "INC-1": (FRAMES["text keeps NaN as missing"], FRAMES["a missing dict stays None"])
    },
    "a missing time, NaT": pd.NaT,
    "a number that is not finite": math.inf,
}


@pytest.mark.parametrize("value", VALUES.values(), ids=VALUES.keys())
def test_a_value_comes_back_from_a_bundle_equal(value: object) -> None:
    """What loaders return besides frames has a form in the bundle too."""
    assert_same(round_trip(value), value)


@dataclass
class Unknown:
    x: int


def test_a_result_a_bundle_cannot_hold_is_refused_naming_the_loader() -> None:
    """A new loader returning a new type fails when recorded, never at a re-run."""
    with pytest.raises(BundleError, match="spans returned a Unknown"):
        round_trip(Unknown(1), "spans")


def test_an_object_column_that_would_not_come_back_equal_is_refused() -> None:
    """A column mixing None and NaN as missing cannot keep both: refused, named."""
    with pytest.raises(BundleError, match="column 'fields'"):
        frame_bytes(pd.DataFrame({"fields": [None, np.nan, {"a": 1}]}), "logs")


# -- every loader's result, from the demo -------------------------------------------------------

LOADERS = {
    "alert_definitions": lambda url: load.alert_definitions(url=url),
    "client_coverage": lambda url: load.client_coverage(*WINDOW, url=url),
    "data_end": lambda url: load.data_end(None, url=url),
    "data_range": lambda url: load.data_range(url=url),
    "enabled_slos": lambda url: load.enabled_slos(url=url),
    "incident": lambda url: load.incident(INCIDENT, url=url),
    "incident_evidence": lambda url: load.incident_evidence(
        [(INCIDENT, "domain-service", *WINDOW)], url=url
    ),
    "incident_ids": lambda url: load.incident_ids(url=url),
    "incident_list": lambda url: load.incident_list(url=url),
    "incidents": lambda url: load.incidents(url=url),
    "log_correlation": lambda url: load.log_correlation(*WINDOW, url=url),
    "log_range": lambda url: load.log_range(url=url),
    "logs": lambda url: load.logs(*WINDOW, url=url),
    "operation_counts": lambda url: load.operation_counts(*WINDOW, url=url),
    "service_edges": lambda url: load.service_edges(*WINDOW, url=url),
    "services": lambda url: load.services(*WINDOW, url=url),
    "sli_counts": lambda url: load.sli_counts(*WINDOW, url=url),
    "slo_counts": lambda url: load.slo_counts(load.enabled_slos(url=url), *WINDOW, url=url),
    "slo_measurements": lambda url: load.slo_measurements(url=url),
    "slos": lambda url: load.slos(url=url),
    "spans": lambda url: load.spans(*WINDOW, url=url),
    "trace": lambda url: load.trace(load.spans(*WINDOW, url=url)["trace_id"].iloc[0], url=url),
}
HOOKED = [name for name in load.__all__ if name not in ("JsonMode", "parse_json")]


def test_every_loader_is_hooked_and_has_a_round_trip_case() -> None:
    """No loader escapes the bundle: each one exported is wrapped, and checked below."""
    for name in HOOKED:
        assert hasattr(getattr(load, name), "__wrapped__"), name
    assert sorted(LOADERS) == sorted(HOOKED)


def test_no_loader_takes_a_connection_argument_the_bundle_would_write() -> None:
    """Arguments that look like a connection are the ones left out of a bundle."""
    words = ("url", "conn", "dsn", "password", "secret")
    for name in HOOKED:
        for parameter in inspect.signature(getattr(load, name)).parameters:
            if any(w in parameter.lower() for w in words):
                assert parameter in CONNECTION_ARGUMENTS, (name, parameter)


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_what_a_loader_returns_on_the_demo_comes_back_equal(demo_db, name: str) -> None:
    """Each loader's real result (JSONB as dicts, UTC microseconds, Int64, str) survives."""
    url, _ = demo_db
    value = LOADERS[name](url)
    assert_same(round_trip(value, name), value)


# -- a call's identity --------------------------------------------------------------------------


def identity(function, *args, **kwargs) -> str:
    loader = function.__wrapped__
    return bundle.call_identity(loader.__name__, inspect.signature(loader), args, kwargs)[0]


def test_the_url_is_no_part_of_a_call_and_never_written() -> None:
    """Two databases, one call; the URL's password appears nowhere."""
    a = identity(load.spans, *WINDOW, url="postgresql://u:hunter2@db/a")
    b = identity(load.spans, *WINDOW)
    assert a == b and "hunter2" not in a and "url" not in a


CALLS = {
    "defaults given or not are one call": (
        (load.spans, WINDOW, {}),
        (load.spans, WINDOW, {"json": "dict"}),
        True,
    ),
    "another window is another call": (
        (load.spans, WINDOW, {}),
        (load.spans, ("2026-11-14T14:00:00Z", "2026-11-14T15:01:00Z"), {}),
        False,
    ),
    "text JSON is another call": (
        (load.spans, WINDOW, {}),
        (load.spans, WINDOW, {"json": "text"}),
        False,
    ),
    "a generator of windows is its list": (
        (load.incident_evidence, ([(INCIDENT, "s", *WINDOW)],), {}),
        (load.incident_evidence, ((w for w in [(INCIDENT, "s", *WINDOW)]),), {}),
        True,
    ),
}


@pytest.mark.parametrize("first, second, same", CALLS.values(), ids=CALLS.keys())
def test_a_call_is_its_function_and_bound_arguments(first, second, same) -> None:
    """Identity = function name + canonical JSON of the bound arguments, defaults applied."""
    assert (
        identity(first[0], *first[1], **first[2]) == identity(second[0], *second[1], **second[2])
    ) is same


def test_a_call_the_bundle_does_not_hold_fails_naming_it_and_reaches_no_database(
    tmp_path,
) -> None:
    """Replaying, a call nobody recorded raises MissingCall with the call, whatever the URL."""
    (tmp_path / "calls").mkdir()
    (tmp_path / bundle.MANIFEST).write_text(
        '{"format": "obslib-bundle/1", "files": {}, "calls": [], "parameters": {}}'
    )
    bundle.replay(tmp_path)
    try:
        with pytest.raises(bundle.MissingCall, match=r"spans\(start=.*is not in the bundle"):
            load.spans(*WINDOW, url="postgresql://nobody@127.0.0.1:1/none")
    finally:
        bundle.stop()
