"""Charts: the rows a waterfall draws, folding of huge traces, and real SVG rendering."""

from __future__ import annotations

import pandas as pd
import vl_convert

from obslib import charts, trace_sets, traces
from tests.test_trace_sets import SMALL
from tests.test_traces import TRACE, frame


def test_waterfall_rows_in_tree_order_with_the_path() -> None:
    """Parents before children, siblings by start; labels indented by depth; path marked."""
    spans = traces.reconstruct(TRACE.assign(service_name="svc", operation_name="op", status="ok"))
    rows = charts.waterfall_rows(spans.spans, traces.critical_path(spans.spans))
    assert rows.rows["span_id"].tolist() == ["A", "B", "C", "D", "E", "F"]
    assert rows.rows["label"].str.count("\u2003").tolist() == [0, 1, 1, 2, 2, 1]
    assert rows.rows.set_index("span_id")["on_critical_path"].to_dict() == {
        "A": True,
        "B": True,
        "C": True,
        "D": True,
        "E": True,
        "F": False,
    }
    assert rows.path["end_ms"].max() == 100.0 and rows.note == ""


def test_a_huge_trace_folds_its_deepest_levels_and_says_so() -> None:
    """Over the row limit, deeper levels fold and the note says how many spans and where."""
    chain = frame([(f"s{i}", f"s{i - 1}" if i else None, i, 1000 - i) for i in range(60)])
    spans = traces.reconstruct(chain.assign(service_name="svc", operation_name="op", status="ok"))
    rows = charts.waterfall_rows(spans.spans, max_rows=25)
    assert len(rows.rows) == 25 and rows.folded_spans == 35 and rows.max_depth == 24
    assert rows.note.startswith("35 spans deeper than level 24 folded")


def test_every_chart_renders_to_svg_offline() -> None:
    """Each chart builder gives a valid Vega-Lite spec that vl-convert renders with marks."""
    spans = traces.reconstruct(SMALL)
    t1 = spans.spans[spans.spans["trace_id"] == "t1"]
    built = [
        charts.waterfall(charts.waterfall_rows(t1, traces.critical_path(t1))),
        charts.self_time_bars(traces.statistics(SMALL)),
        charts.service_graph(trace_sets.service_graph(SMALL)),
        charts.path_share_comparison(trace_sets.compare_critical_paths(SMALL, SMALL)),
    ]
    for chart in built:
        svg = vl_convert.vegalite_to_svg(chart.to_dict())
        assert svg.startswith("<svg") and ("<path" in svg or "<rect" in svg)
    assert isinstance(built[0].to_dict()["layer"], list)
    assert pd.api.types.is_numeric_dtype(charts.waterfall_rows(t1).rows["start_ms"])
