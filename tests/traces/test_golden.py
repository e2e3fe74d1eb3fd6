"""Golden files for one reconstructed demo trace: its tree, critical path and statistics.

The input, ``tests/data/golden_trace/spans.jsonl``, is one DomainFlow request (22 spans:
gateway, auth and cache, domain-service fanning out to the generator, parallel DNS lookups
and postgres, and a Kafka producer/consumer pair off the critical path), taken once from the
demo generator and stored, so a change to the demo does not move it. The outputs are
compared as exact CSV text. After an intended change to the analysis, regenerate them with

    .venv/bin/python -m tests.traces.test_golden

and review the diff (``--from-demo`` also re-extracts the input from the demo generator).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import pytest

from obslib import traces
from tests.golden import assert_golden

DATA = Path(__file__).parents[1] / "data" / "golden_trace"
INPUT = DATA / "spans.jsonl"
# the demo request the input came from: day 12 of seed 7 at 2,000 traces a day, its longest
DEMO_DAY, DEMO_SEED, DEMO_PER_DAY = 12, 7, 2000


def load_input() -> pd.DataFrame:
    """The stored trace as a spans frame: UTC microsecond times, tags and logs as dicts."""
    rows = [json.loads(line) for line in INPUT.read_text().splitlines() if line]
    frame = pd.DataFrame(rows)
    for col in ("start_time", "end_time"):
        frame[col] = pd.to_datetime(frame[col], utc=True).astype("datetime64[us, UTC]")
    return frame


def outputs(spans: pd.DataFrame) -> dict[str, str]:
    """Each golden file's expected text, from the analysis as it is now."""
    rebuilt = traces.reconstruct(spans).spans
    tree = rebuilt[
        ["span_id", "parent_span_id", "depth", "is_root", "n_children", "self_time_ms"]
    ].sort_values(["depth", "span_id"])
    path = traces.critical_path_segments(rebuilt)
    stats = traces.statistics(rebuilt)
    return {
        "reconstruct.csv": tree.to_csv(index=False, lineterminator="\n"),
        "critical_path.csv": path.to_csv(index=False, lineterminator="\n"),
        "statistics.csv": stats.to_csv(index=False, lineterminator="\n"),
    }


@pytest.mark.parametrize("name", ["reconstruct.csv", "critical_path.csv", "statistics.csv"])
def test_golden_trace(name: str) -> None:
    """The demo trace's tree, critical path and statistics match the stored files exactly."""
    assert_golden(DATA / name, outputs(load_input())[name], "python -m tests.traces.test_golden")


def test_golden_trace_is_what_it_claims() -> None:
    """The stored trace is one clean tree whose path tiles the request and skips the
    asynchronous consumer (so the golden files pin a realistic case)."""
    spans = load_input()
    rebuilt = traces.reconstruct(spans)
    assert rebuilt.notes == [] and len(spans) == 22 and spans["trace_id"].nunique() == 1
    path = traces.critical_path(rebuilt.spans)
    consumer = spans.loc[spans["span_kind"] == "consumer", "span_id"]
    assert not path["span_id"].isin(consumer).any()
    root = spans[spans["parent_span_id"].isna()].iloc[0]
    covered = (path["section_end"] - path["section_start"]).sum()
    assert covered == root["end_time"] - root["start_time"]  # the path tiles the request


def _from_demo() -> None:
    from obslib import demo

    day = demo.generate_day(DEMO_DAY, DEMO_SEED, DEMO_PER_DAY)[0]
    longest = day.groupby("trace_id").size().sort_values(kind="stable").index[-1]
    trace = day[day["trace_id"] == longest]
    lines = []
    for row in trace.to_dict("records"):
        for col in ("start_time", "end_time"):
            row[col] = row[col].isoformat()
        for col in ("tags", "logs"):
            row[col] = json.loads(row[col]) if isinstance(row[col], str) else row[col]
        lines.append(json.dumps(row, sort_keys=True))
    INPUT.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description="Rewrite the golden files of one demo trace.")
    parser.add_argument("--from-demo", action="store_true", help="re-extract the input too")
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    if args.from_demo or not INPUT.exists():
        _from_demo()
    for name, text in outputs(load_input()).items():
        (DATA / name).write_text(text)
        print(f"wrote {DATA / name}")


if __name__ == "__main__":
    main()
