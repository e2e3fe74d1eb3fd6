"""obslib.ingest.records helpers every decoder shares: how a refusal names what it got."""

from __future__ import annotations

from typing import Any

import pytest

from obslib.ingest import jaeger, logfile, records
from obslib.ingest.otlp import from_json, mapping


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (None, "missing"),
        (True, "a boolean"),
        (False, "a boolean"),
        (0, "a number"),
        (-3.5, "a number"),
        (float("nan"), "a number"),
        ("", "a string"),
        ("7", "a string"),
        ({}, "a JSON object"),
        ({"a": [1]}, "a JSON object"),
        ([], "a JSON array"),
        ([{"a": 1}], "a JSON array"),
    ],
    ids=[
        "null is missing",
        "true is a boolean, not a number",
        "false is a boolean, not a number",
        "an integer is a number",
        "a float is a number",
        "NaN is a number",
        "an empty string is a string",
        "a numeric string is a string",
        "an empty object is a JSON object",
        "an object is a JSON object",
        "an empty list is a JSON array",
        "a list of objects is a JSON array",
    ],
)
def test_kind_of_names_a_json_value(value: Any, kind: str) -> None:
    """Each JSON value has one name in every refusal."""
    assert records.kind_of(value) == kind


def test_every_decoder_names_kinds_with_the_one_function() -> None:
    """OTLP, Jaeger and log-file decoders share records.kind_of; none keeps its own."""
    for module in (mapping, from_json, jaeger, logfile):
        assert not hasattr(module, "json_kind"), module.__name__


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: mapping.service_of({"service.name": ["a"]}), "service.name is a JSON array"),
        (lambda: mapping.enum_value(None, {}, "kind"), "kind is missing, not an integer"),
        (lambda: mapping.enum_value(True, {}, "kind"), "kind is a boolean, not an integer"),
    ],
    ids=[
        "a list as service name is named a JSON array",
        "a null enum is missing",
        "a boolean enum is a boolean",
    ],
)
def test_otlp_refusals_use_the_shared_wording(call, message: str) -> None:
    with pytest.raises(records.RecordError, match=message):
        call()
