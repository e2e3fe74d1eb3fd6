"""The incident timeline's event lanes: events close in time drawn one above the other with
a label each, and every label inside the frame (the demo's deploy at 14:05 / 14:05:50,
rollback at 14:49 / 14:50, resolution at the window's end)."""

from __future__ import annotations

import re

import pandas as pd
import pytest
import vl_convert

from obslib.charts import _common, incidents

T0 = pd.Timestamp("2026-11-14 13:18", tz="UTC")
END = pd.Timestamp("2026-11-14 14:52", tz="UTC")
DEMO_EVENTS = [
    ("14:05:00", "change", "deploy started"),
    ("14:05:50", "change", "deploy finished"),
    ("14:16:55", "first_error_span", "2 failing calls"),
    ("14:18:00", "triggered", "INC-20261114-0001"),
    ("14:21:00", "acknowledged", "alice"),
    ("14:49:00", "change", "rollback started"),
    ("14:50:00", "change", "rollback finished"),
    ("14:52:00", "resolved", "bob"),
]


def _timeline(events: list[tuple[str, str, str]]) -> dict:
    minutes = pd.DataFrame(
        {"minute": pd.date_range(T0, END, freq="min", inclusive="left"), "requests": 3}
    ).assign(failed=0)
    frame = pd.DataFrame(
        {
            "time": [pd.Timestamp(f"2026-11-14 {t}", tz="UTC") for t, _, _ in events],
            "kind": [k for _, k, _ in events],
            "what": [w for _, _, w in events],
        }
    )
    chart = incidents.incident_timeline(
        minutes, frame, start=T0, end=END, service="domain-service", title="INC"
    )
    return chart.to_dict()


def _events(spec: dict) -> list[dict]:
    """The event rows the lanes draw (the diamonds' dataset)."""
    points = spec["vconcat"][1]["layer"][0]
    return spec["datasets"][points["data"]["name"]]


def _labels(spec: dict) -> dict[str, list[dict]]:
    """The label rows per side: drawn right of their diamond or left of it."""
    out: dict[str, list[dict]] = {"right": [], "left": []}
    for layer in spec["vconcat"][1]["layer"][1:]:
        side = "right" if layer["mark"]["align"] == "left" else "left"
        out[side] = spec["datasets"][layer["data"]["name"]]
    return out


@pytest.mark.parametrize(
    ("first", "second"),
    [("14:05:00", "14:05:50"), ("14:49:00", "14:50:00")],
    ids=["a deploy's start and finish 50 s apart", "a rollback's start and finish a minute apart"],
)
def test_close_diamonds_stagger_each_with_its_own_label(first: str, second: str) -> None:
    """Two changes closer than their labels are wide sit one above the other (different y
    offsets), and each keeps its label; times sharing a minute are told to the second."""
    rows = {r["time"][11:19]: r for r in _events(_timeline(DEMO_EVENTS))}
    a, b = rows[first], rows[second]
    assert a["lane"] == b["lane"] == "change"
    assert abs(a["shift"] - b["shift"]) >= 12, "10 px labels need 12 px between rows"
    assert a["label"] and b["label"] and a["label"] != b["label"]
    if first == "14:05:00":
        assert (a["label"], b["label"]) == ("14:05", "14:05:50")
    lone = rows["14:21:00"]
    assert lone["shift"] == 0 and lone["label"] == "14:21", "a lone event stays in the middle"


def test_every_label_stays_inside_the_frame() -> None:
    """A label that would run past the right edge (14:52, the window's end) is drawn left of
    its diamond; every label's extent is within the plot's width."""
    spec = _timeline(DEMO_EVENTS)
    sides = _labels(spec)
    assert "14:52" in [r["label"] for r in sides["left"]]
    span = (END - T0).total_seconds()
    for side, rows in sides.items():
        for r in rows:
            if not r["label"]:
                continue
            x = _common.WIDTH * (pd.Timestamp(r["time"]) - T0).total_seconds() / span
            width = _common.text_px(r["label"])
            left, right = (x + 7, x + 7 + width) if side == "right" else (x - 7 - width, x - 7)
            assert left >= 0 and right <= _common.WIDTH, (r["label"], side, left, right)


def test_labels_of_one_row_never_overlap() -> None:
    """Within a lane and a row, each label starts after the previous one ends."""
    events = [(f"14:{m:02d}:00", "change", "deploy") for m in range(5, 12)]  # a minute apart
    spec = _timeline(events)
    span = (END - T0).total_seconds()
    ends: dict[float, float] = {}
    for r in sorted(_events(spec), key=lambda r: r["time"]):
        if not r["label"]:
            continue
        x = _common.WIDTH * (pd.Timestamp(r["time"]) - T0).total_seconds() / span
        assert x - 5 > ends.get(r["shift"], -1e9), f"{r['label']} overlaps the one before it"
        ends[r["shift"]] = x + 7 + _common.text_px(r["label"])
    labelled = [r["label"] for r in _events(spec) if r["label"]]
    assert labelled[0] == "14:05" and len(labelled) >= 3, "two rows hold a label each"


def _width(svg: str) -> float:
    return float(re.search(r'<svg[^>]* width="([\d.]+)"', svg).group(1))


def test_the_drawn_timeline_keeps_its_text_inside_the_svg() -> None:
    """Rendered by vl-convert: the SVG is no wider with the labels than without them (a
    label past the frame would widen it) and shows both deploy times."""
    spec = _timeline(DEMO_EVENTS)
    bare = _timeline(DEMO_EVENTS)
    bare["vconcat"][1]["layer"] = bare["vconcat"][1]["layer"][:1]  # the diamonds alone
    svg = vl_convert.vegalite_to_svg(spec)
    assert _width(svg) == _width(vl_convert.vegalite_to_svg(bare))
    texts = re.findall(r"<text[^>]*>([^<]+)</text>", svg)
    assert "14:05" in texts and "14:05:50" in texts and "14:52" in texts
    assert len(spec["description"]) > 20, "every chart keeps its alt text"


def test_diamonds_sit_on_their_lane_or_evenly_either_side_of_it() -> None:
    """Drawn by vl-convert: a lone event's diamond is at its lane's tick, a staggered pair
    6 px above and below it (Vega-Lite offsets from a band's top, not its middle)."""
    svg = vl_convert.vegalite_to_svg(_timeline(DEMO_EVENTS))
    ticks = [
        float(y) for y in re.findall(r'<line transform="translate\(0,([\d.]+)\)" x2="-5"', svg)
    ]
    diamonds = re.findall(
        r'aria-label="[^"]*lane: ([^;"]+); offset[^"]*what: ([^;"]+)"[^>]*'
        r"translate\([\d.]+,([\d.]+)\)",
        svg,
    )
    at = {what: float(y) for _, what, y in diamonds}
    lanes = ["change", "first failing call", "page", "acknowledged", "resolved"]
    middle = dict(zip(lanes, ticks[-len(lanes) :], strict=True))  # the lanes' axis, after the bars'
    assert at["INC-20261114-0001"] == middle["page"] and at["bob"] == middle["resolved"]
    assert at["deploy started"] == middle["change"] - 6
    assert at["deploy finished"] == middle["change"] + 6
