"""SLO review charts: burn-down, burn rates and alert replay from small hand-made frames,
asserted on their Vega-Lite specs and rendered to SVG with alt text."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd
import pytest
import vl_convert

from obslib.charts import render
from obslib.charts import slo as charts
from obslib.errors import InputError

SLO = "domain-service / availability"
HOURS = pd.date_range("2026-11-14 00:00", periods=4, freq="h", tz="UTC")


def _layers(spec: dict) -> list[tuple[dict, list[dict]]]:
    """Each layer of a layered spec with the rows of its dataset."""
    return [(layer, spec["datasets"][layer["data"]["name"]]) for layer in spec["layer"]]


def _layer(spec: dict, mark: str, field: str | None = None) -> tuple[dict, list[dict]]:
    found = [
        (layer, rows)
        for layer, rows in _layers(spec)
        if layer["mark"]["type"] == mark
        and (field is None or layer["encoding"]["y"]["field"] == field)
    ]
    assert len(found) == 1, f"one {mark} layer on {field}"
    return found[0]


def measurements(values=(100.0, 40.0, -12.5, -5.0), statuses=None) -> pd.DataFrame:
    statuses = statuses or ["compliant", "compliant", "violated", "violated"]
    frame = pd.DataFrame(
        {
            "measurement_timestamp": HOURS[: len(values)],
            "error_budget_remaining": list(values),
            "compliance_status": statuses,
        }
    )
    return frame.iloc[::-1].reset_index(drop=True)  # newest first: the chart must sort


def burn() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "time": list(HOURS[:3]) * 2,
            "window": ["1h"] * 3 + ["3d"] * 3,
            "burn_rate": [0.0, 20.5, 3.0, 0.0, 0.004, 1.25],
        }
    )


RULES = pd.DataFrame(
    {
        "severity": ["page", "page", "ticket"],
        "window": ["1h", "6h", "3d"],
        "burn_rate": [14.4, 6.0, 1.0],
    }
)
X = charts.TIMES  # the multiplication sign of "14.4x"
START, END = pd.Timestamp("2026-10-17", tz="UTC"), pd.Timestamp("2026-11-16", tz="UTC")


def firings() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "slo": [SLO, SLO, "auth-service / latency"],
            "severity": ["page", "ticket", "ticket"],
            "rule": ["1h & 5m > 14.4x", "1d & 2h > 3x", "3d & 6h > 1x"],
            "start": pd.to_datetime(
                ["2026-11-14 14:06", "2026-11-14 15:00", "2026-11-10 00:00"], utc=True
            ),
            "end": pd.to_datetime(["2026-11-14 14:11", None, "2026-11-11 00:00"], utc=True),
        }
    )


def incidents() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "service_name": ["domain-service", "dns-resolver"],
            "incident_id": ["INC-20261114-0001", "INC-20261103-0002"],
            "triggered_at": pd.to_datetime(["2026-11-14 14:07", "2026-11-03 00:00"], utc=True),
            "severity": ["critical", "medium"],
        }
    )


def replay(f: pd.DataFrame | None = None, i: pd.DataFrame | None = None) -> dict:
    return charts.replay_timeline(
        firings() if f is None else f,
        incidents() if i is None else i,
        start=START,
        end=END,
        title="SLO alerts",
    ).to_dict()


def test_the_burndown_alt_text_names_the_slo_its_first_last_and_lowest_budget() -> None:
    """First and last by time (the frame arrives newest first); lowest with its hour."""
    spec = charts.budget_burndown(measurements(), title=SLO).to_dict()
    assert spec["description"] == (
        f"Error budget burn-down for {SLO}: 100.0 % remaining on 2026-11-14 00:00, "
        "-5.0 % on 2026-11-14 03:00, lowest -12.5 % on 2026-11-14 02:00; 4 measurements "
        "(2 compliant, 0 at risk, 2 violated); lines mark 0 % (budget spent) and 10 % (at risk)."
    )
    assert spec["title"]["text"] == SLO


def test_an_overspent_budget_stays_on_the_axis() -> None:
    """Negative values are kept in the data and the y domain reaches below the lowest."""
    spec = charts.budget_burndown(measurements(), title=SLO).to_dict()
    layer, rows = _layer(spec, "circle")
    assert sorted(r["error_budget_remaining"] for r in rows) == [-12.5, -5.0, 40.0, 100.0]
    low, high = layer["encoding"]["y"]["scale"]["domain"]
    assert low <= -12.5 and high >= 100.0
    assert [r["compliance_status"] for r in rows][-1] == "violated"


@pytest.mark.parametrize(
    ("at_risk_below", "label"), [(10.0, "at risk (below 10%)"), (25.0, "at risk (below 25%)")]
)
def test_the_burndown_marks_budget_spent_and_the_at_risk_line(
    at_risk_below: float, label: str
) -> None:
    """A solid rule at 0 and a dashed one at 100 - the SLO's alert threshold."""
    spec = charts.budget_burndown(measurements(), title=SLO, at_risk_below=at_risk_below).to_dict()
    _, rows = _layer(spec, "rule", "level")
    assert [(r["level"], r["label"], r["dash"]) for r in rows] == [
        (0.0, "budget spent", [1, 0]),
        (at_risk_below, label, [6, 4]),
    ]
    texts = [rows for layer, rows in _layers(spec) if layer["mark"]["type"] == "text"]
    assert at_risk_below in [r["level"] for rows in texts for r in rows]


def test_burndown_points_use_the_status_colours() -> None:
    """compliant / at_risk / violated are green / amber / red in every SLO chart."""
    layer, _ = _layer(charts.budget_burndown(measurements(), title=SLO).to_dict(), "circle")
    scale = layer["encoding"]["color"]["scale"]
    assert dict(zip(scale["domain"], scale["range"], strict=True)) == charts.STATUS_COLORS


def test_the_rules_layer_holds_exactly_the_thresholds_given() -> None:
    """One dashed rule per rule row, labelled "page 14.4x (1h)" with a multiplication sign
    (``X`` here: ruff flags the literal), in its window's colour."""
    assert X == "\u00d7"
    spec = charts.burn_rate_chart(burn(), RULES, title=SLO).to_dict()
    layer, rows = _layer(spec, "rule")
    assert [(r["burn_rate"], r["label"]) for r in rows] == [
        (14.4, f"page 14.4{X} (1h)"),
        (6.0, f"page 6{X} (6h)"),
        (1.0, f"ticket 1{X} (3d)"),
    ]
    lines, _ = _layer(spec, "line")
    assert layer["encoding"]["color"] == lines["encoding"]["color"], "rule drawn in line colour"
    colors = lines["encoding"]["color"]["scale"]
    scale = dict(zip(colors["domain"], colors["range"], strict=True))
    assert colors["domain"] == ["1h", "6h", "3d"], "windows shortest first, not by name"
    assert scale == {"1h": "#d62728", "6h": "#f58518", "3d": "#4c78a8"}, "page red, ticket blue"
    without = charts.burn_rate_chart(burn(), RULES.iloc[:0], title=SLO).to_dict()
    assert [layer["mark"]["type"] for layer in without["layer"]] == ["line"]
    assert "0 alert thresholds drawn;" in without["description"]


def test_zero_burns_are_drawn_at_the_floor_not_dropped() -> None:
    """A log axis has no 0: zeros (and burns below the floor) are lifted to it, kept."""
    spec = charts.burn_rate_chart(burn(), RULES, title=SLO).to_dict()
    layer, rows = _layer(spec, "line")
    assert len(rows) == 6
    assert [(r["burn_rate"], r["shown"]) for r in rows if r["burn_rate"] < 0.01] == [
        (0.0, 0.01),
        (0.0, 0.01),
        (0.004, 0.01),
    ]
    assert layer["encoding"]["y"]["field"] == "shown"
    assert layer["encoding"]["y"]["scale"] == {"type": "log", "domain": [0.01, 100.0]}
    assert "below 0.01 drawn at 0.01" in layer["encoding"]["y"]["title"]
    assert f"3 points below 0.01{X} drawn at 0.01{X}" in spec["description"]


def test_the_burn_alt_text_states_the_highest_burn_per_window() -> None:
    """Windows shortest first; how many thresholds and which."""
    spec = charts.burn_rate_chart(burn(), RULES, title=SLO).to_dict()
    assert spec["description"] == (
        f"Burn rate of {SLO} on a log axis, highest per window: 1h 20.5{X}, 3d 1.25{X}; "
        f"3 alert thresholds drawn (page 14.4{X} (1h); page 6{X} (6h); ticket 1{X} (3d)); "
        f"3 points below 0.01{X} drawn at 0.01{X}."
    )


def test_a_firing_still_open_is_drawn_to_the_end_of_the_window() -> None:
    """NaT end = still firing at the window end: the bar runs to ``end``."""
    layer, rows = _layer(replay(), "bar")
    open_bar = next(r for r in rows if r["severity"] == "ticket" and r["slo"] == SLO)
    assert pd.Timestamp(open_bar["draw_end"]) == END
    assert open_bar["end_label"] == "still firing"
    assert layer["encoding"]["x"]["scale"]["domain"] == [
        START.timestamp() * 1000,
        END.timestamp() * 1000,
    ]


def test_a_five_minute_page_in_thirty_days_stays_visible() -> None:
    """Bars narrower than MIN_BAR_PX are widened (to the left at the window's end); the
    tooltip keeps the real start."""
    shortest = (END - START) * charts.MIN_BAR_PX / 600
    last = (
        firings()
        .iloc[:1]
        .assign(start=END - pd.Timedelta(minutes=2), end=END - pd.Timedelta(minutes=1))
    )
    spec = replay(pd.concat([firings(), last], ignore_index=True))
    _, rows = _layer(spec, "bar")
    page = rows[0]
    assert pd.Timestamp(page["draw_start"]) == pd.Timestamp("2026-11-14 14:06", tz="UTC")
    assert pd.Timestamp(page["draw_end"]) - pd.Timestamp(page["draw_start"]) == shortest
    at_end = rows[-1]
    assert pd.Timestamp(at_end["draw_end"]) == END
    assert pd.Timestamp(at_end["draw_end"]) - pd.Timestamp(at_end["draw_start"]) == shortest
    assert pd.Timestamp(at_end["start"]) == END - pd.Timedelta(minutes=2)
    assert "2 firings shorter than 3 px widened to stay visible" in spec["title"]["subtitle"]


def test_the_replay_counts_firings_pages_tickets_and_incidents() -> None:
    """Alt text: the window, firings by severity, open ones, incidents; out-of-window rows
    are counted, not silently dropped."""
    spec = replay()
    assert spec["description"] == (
        "Alert replay of SLO alerts from 2026-10-17 00:00 to 2026-11-16 00:00 UTC: "
        "3 firings on 2 SLOs (1 page, 2 tickets, 1 still firing at the end) and 2 incidents."
    )
    early = (
        firings()
        .iloc[:1]
        .assign(start=START - pd.Timedelta(days=3), end=START - pd.Timedelta(days=2))
    )
    spec = replay(pd.concat([firings(), early], ignore_index=True))
    assert spec["description"].endswith(
        "(1 page, 2 tickets, 1 still firing at the end) and 2 incidents; "
        "outside the window, not drawn: 1 firing, 0 incidents."
    )


def test_incidents_sit_after_their_services_slos_with_their_id() -> None:
    """One row per SLO, grouped by service, then that service's incident markers."""
    spec = replay()
    layer, rows = _layer(spec, "point")
    assert layer["encoding"]["y"]["scale"]["domain"] == [
        "auth-service / latency",
        "dns-resolver / incidents",
        SLO,
        "domain-service / incidents",
    ]
    assert {r["incident_id"]: r["row"] for r in rows} == {
        "INC-20261114-0001": "domain-service / incidents",
        "INC-20261103-0002": "dns-resolver / incidents",
    }
    assert any(t["field"] == "incident_id" for t in layer["encoding"]["tooltip"])
    bars, _ = _layer(spec, "bar")
    scale = bars["encoding"]["color"]["scale"]
    assert dict(zip(scale["domain"], scale["range"], strict=True)) == charts.SEVERITY_COLORS
    only_incidents = replay(firings().iloc[:0])
    assert [layer["mark"]["type"] for layer in only_incidents["layer"]] == ["point"]


@pytest.mark.parametrize(
    ("build", "column"),
    [
        (lambda: charts.budget_burndown(measurements().drop(columns="compliance_status"), title=SLO), "compliance_status"),  # noqa: E501
        (lambda: charts.burn_rate_chart(burn().drop(columns="window"), RULES, title=SLO), "window"),
        (lambda: charts.burn_rate_chart(burn(), RULES.drop(columns="severity"), title=SLO), "severity"),  # noqa: E501
        (lambda: replay(firings().drop(columns="end")), "end"),
        (lambda: replay(i=incidents().drop(columns="incident_id")), "incident_id"),
    ],
    ids=["measurements", "burn", "rules", "firings", "incidents"],
)  # fmt: skip
def test_a_frame_without_a_column_is_refused_naming_it(build, column: str) -> None:
    """InputError naming the missing column, not a KeyError from inside pandas."""
    with pytest.raises(InputError, match=rf"lacks column\(s\): {column}$"):
        build()


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: charts.budget_burndown(measurements().iloc[:0], title=SLO), "is empty"),
        (
            lambda: charts.budget_burndown(measurements(statuses=["ok"] * 4), title=SLO),
            "compliance_status ok; expected compliant, at_risk, violated",
        ),
        (
            lambda: charts.burn_rate_chart(burn().assign(burn_rate=-1.0), RULES, title=SLO),
            "negative burn_rate",
        ),
        (lambda: replay(firings().assign(severity="warn")), "severity warn; expected page"),
        (lambda: replay(firings().iloc[:0], incidents().iloc[:0]), "nothing to replay"),
    ],
    ids=["empty", "unknown status", "negative burn", "unknown severity", "nothing"],
)
def test_bad_frames_are_refused_not_drawn_wrong(build, message: str) -> None:
    """Empty frames (the view says why), unknown statuses and negative burns raise."""
    with pytest.raises(InputError, match=message):
        build()


def _thirty_days() -> tuple[pd.DataFrame, pd.DataFrame]:
    hours = pd.date_range(START, END, freq="h", inclusive="left")
    remaining = np.linspace(100.0, -30.0, len(hours))
    hourly = pd.DataFrame(
        {
            "measurement_timestamp": hours,
            "error_budget_remaining": remaining,
            "compliance_status": np.where(
                remaining < 0, "violated", np.where(remaining < 10, "at_risk", "compliant")
            ),
        }
    )
    rates = pd.concat(
        [
            pd.DataFrame(
                {"time": hours, "window": w, "burn_rate": np.geomspace(1e-3, f, len(hours))}
            )
            for w, f in [("1h", 900.0), ("6h", 40.0), ("1d", 5.0), ("3d", 1.5)]
        ],
        ignore_index=True,
    )  # fmt: skip
    return hourly, rates


def test_thirty_days_of_hourly_rows_stay_under_the_row_limit() -> None:
    """720 measurements and 4 x 720 burn rows build (Altair raises past 5,000 rows per
    dataset); a frame past the limit is refused with a message, not drawn."""
    hourly, rates = _thirty_days()
    for chart in (
        charts.budget_burndown(hourly, title=SLO),
        charts.burn_rate_chart(rates, charts_rules(), title=SLO),
    ):
        spec = chart.to_dict()
        assert max(len(rows) for rows in spec["datasets"].values()) < 5_000
    too_many = pd.concat([rates, rates], ignore_index=True)
    with pytest.raises(InputError, match="5760 rows; charts draw at most 5000"):
        charts.burn_rate_chart(too_many, charts_rules(), title=SLO)


def charts_rules() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "severity": ["page", "page", "ticket", "ticket"],
            "window": ["1h", "6h", "1d", "3d"],
            "burn_rate": [14.4, 6.0, 3.0, 1.0],
        }
    )


def test_every_slo_chart_renders_to_svg_with_alt_text_within_900_px() -> None:
    """The report path: vl-convert draws the SVG, shown as an <img> whose alt is the
    chart's description."""
    hourly, rates = _thirty_days()
    for chart in (
        charts.budget_burndown(hourly, title=SLO),
        charts.burn_rate_chart(rates, charts_rules(), title=SLO),
        charts.replay_timeline(firings(), incidents(), start=START, end=END, title="SLO alerts"),
    ):
        spec = chart.to_dict()
        svg = vl_convert.vegalite_to_svg(spec)
        width = float(re.search(r'<svg[^>]* width="([\d.]+)"', svg).group(1))
        assert width <= 900 and ("<path" in svg or "<rect" in svg)
        bundle = render.svg_with_alt(spec)
        assert bundle["text/html"].startswith('<img class="obslib-chart" alt="')
        assert bundle["text/plain"] == f"[chart] {spec['description']}"


def test_time_axes_label_days_over_weeks_and_clock_times_within_a_day() -> None:
    """A series starting mid-day must not read "12 PM, 12 PM, ..." along a month, and a day's
    clock times are UTC 24-hour times: checked on the drawn SVG, since Vega-Lite silently
    ignores an axis format it does not support (it did: ``formatType="utc"``)."""
    import altair as alt

    from obslib.charts import _common

    def labels(first: pd.Timestamp, last: pd.Timestamp) -> list[str]:
        frame = pd.DataFrame({"t": [first, last], "v": [1, 2]})
        x = alt.X(
            "t:T", scale=alt.Scale(type="utc"), axis=_common.time_axis(first, last), title=None
        )
        chart = alt.Chart(frame).mark_line().encode(x=x, y="v:Q").properties(width=400)
        svg = vl_convert.vegalite_to_svg(chart.to_dict())
        return re.findall(r"<text[^>]*>([^<]+)</text>", svg)

    t0 = pd.Timestamp("2026-11-02 13:00", tz="UTC")
    weeks = labels(t0, t0 + pd.Timedelta(days=13))
    assert "Tue 03" in weeks and not any("PM" in t for t in weeks)
    day = labels(t0, t0 + pd.Timedelta(hours=12))
    assert "14:00" in day and "18:00" in day and not any("PM" in t for t in day)


def test_the_burndown_line_takes_the_status_colour_of_each_stretch() -> None:
    """The line is drawn in segments between consecutive measurements, each in the status
    colour of the measurement it reaches (one grey line said nothing of the status); a
    measurement without a value breaks the line."""
    frame = measurements(
        values=(100.0, 40.0, None, -5.0), statuses=["compliant", "at_risk", "violated", "violated"]
    )
    spec = charts.budget_burndown(frame, title=SLO).to_dict()
    layer, rows = _layer(spec, "rule", "error_budget_remaining")
    scale = layer["encoding"]["color"]["scale"]
    assert layer["encoding"]["color"]["field"] == "compliance_status"
    assert dict(zip(scale["domain"], scale["range"], strict=True)) == charts.STATUS_COLORS
    assert [
        (r["error_budget_remaining"], r["next_remaining"], r["compliance_status"]) for r in rows
    ] == [(100.0, 40.0, "at_risk")], "one segment: the gap at 02:00 breaks the line"
    greys = [
        layer
        for layer in spec["layer"]
        if layer["mark"].get("color") == "#555555" and layer["mark"]["type"] != "rule"
    ]
    assert {layer["mark"]["type"] for layer in greys} == {"text"}, "only guides are grey"
    assert all(layer["mark"]["type"] != "line" for layer in spec["layer"])


@pytest.mark.parametrize(
    ("rules", "wanted_apart"),
    [
        (RULES, True),
        (
            pd.DataFrame(
                {
                    "severity": ["page", "page", "ticket"],
                    "window": ["1h", "6h", "3d"],
                    "burn_rate": [14.4, 14.0, 13.0],
                }
            ),
            False,
        ),
    ],
    ids=["thresholds far apart sit at their rules", "thresholds close together are pushed apart"],
)
def test_threshold_labels_sit_beside_the_plot_clear_of_the_lines(rules, wanted_apart) -> None:
    """The labels are drawn right of the plot's frame (x at its width, text starting after
    it), where no burn line runs, at least 12 px apart, and at their rule's height when
    that is already so."""
    spec = charts.burn_rate_chart(burn(), rules, title=SLO).to_dict()
    labels = [layer for layer in spec["layer"] if layer["mark"]["type"] == "text"]
    assert len(labels) == 1
    text = labels[0]
    assert text["encoding"]["x"] == {"value": spec["width"]}
    assert text["mark"]["align"] == "left" and text["mark"]["dx"] > 0
    assert text["encoding"]["y"]["scale"] is None
    rows = spec["datasets"][text["data"]["name"]]
    ys = sorted(r["label_y"] for r in rows)
    assert all(b - a >= 12 for a, b in itertools.pairwise(ys))
    assert all(0 <= y <= spec["height"] for y in ys)
    top = 100.0  # the axis runs from 0.01 to 100 here
    at_rule = [
        spec["height"] * (1 - (np.log10(r["burn_rate"]) - np.log10(0.01)) / (np.log10(top) + 2))
        for r in rows
    ]
    placed = [r["label_y"] for r in rows]
    assert (np.allclose(placed, at_rule)) == wanted_apart
    svg = vl_convert.vegalite_to_svg(spec)
    width = float(re.search(r'<svg[^>]* width="([\d.]+)"', svg).group(1))
    assert width <= 900, "the labels' margin keeps the chart within 900 px"


@pytest.mark.parametrize(
    ("values", "budget_label"),
    [
        ((100.0, 40.0, 20.0, 5.0), ("bottom", -2)),
        ((100.0, 40.0, -300.0, -250.0), ("top", 2)),
    ],
    ids=[
        "within budget both labels sit above their lines",
        "overspent, 'budget spent' sits below its line, clear of the at-risk label",
    ],
)
def test_the_guide_labels_never_overprint(values, budget_label) -> None:
    """On an axis down to -300 % the lines at 0 and 10 % are 4 px apart: the at-risk label
    stays above its line and "budget spent" goes below its own."""
    spec = charts.budget_burndown(measurements(values=values), title=SLO).to_dict()
    placed = {
        row["label"]: (layer["mark"]["baseline"], layer["mark"]["dy"])
        for layer, rows in _layers(spec)
        if layer["mark"]["type"] == "text"
        for row in rows
    }
    assert placed == {"budget spent": budget_label, "at risk (below 10%)": ("bottom", -2)}
