"""How big the demo postmortem's evidence bundle is, and what recording and re-running it
cost against the plain report, timed in the same run.

Why: issue 25's target: the demo's postmortem bundle under 5 MB (``obslib report incident
--bundle``), and a re-run from it with no database.

What it does: a fresh database on a private embedded server (or $OBSLIB_DATABASE_URL's
server) with the demo written into it (``--spans``, default 500,000: the demo's, seed 7);
then ``--runs`` times in turn: the plain report (``python -m obslib report incident --out
DIR``, the baseline), the same with ``--bundle``, and ``report --from-bundle`` with the
database URL on a closed loopback port (no database at all). Prints the bundle's bytes by
kind of file (the calls' Parquet, their JSON, the report as run, the manifest), each
command's median and its ratio to the plain report. The last line printed is one JSON
object.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import socket
import sys
from pathlib import Path

import _common as c
from report import timed

logger = logging.getLogger("bench.bundle")

TARGET_BYTES = 5 * 1024 * 1024
STEM = "incident_postmortem"


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"postgresql://nobody@127.0.0.1:{port}/no-database"


def sizes(bundle: Path) -> dict[str, int]:
    """The bundle's bytes by kind of file."""
    kinds = {"calls_parquet": 0, "calls_json": 0, "report_as_run": 0, "manifest": 0}
    for path in bundle.rglob("*"):
        if not path.is_file():
            continue
        size = path.stat().st_size
        if path.parent.name == "calls":
            kinds["calls_parquet" if path.suffix == ".parquet" else "calls_json"] += size
        elif path.name == "manifest.json":
            kinds["manifest"] += size
        else:
            kinds["report_as_run"] += size
    return kinds


def measure(url: str, args: argparse.Namespace, work: Path) -> dict:
    summary = c.write_demo(url, args.spans)
    base = {k: v for k, v in os.environ.items() if not k.startswith("OBSLIB_")}
    env = {**base, "OBSLIB_DATABASE_URL": url, "OBSLIB_HOME": str(work / "home")}
    nowhere = {**base, "OBSLIB_DATABASE_URL": closed_port_url(), "OBSLIB_HOME": str(work / "h2")}
    python = [sys.executable, "-m", "obslib", "report"]
    bundle = work / "bundled" / f"{STEM}.bundle"
    commands = {
        "report": ([*python, "incident", "--out", str(work / "plain")], env),
        "report_bundle": ([*python, "incident", "--bundle", "--out", str(work / "bundled")], env),
        "rerun": ([*python, "--from-bundle", str(bundle), "--out", str(work / "rerun")], nowhere),
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for k in range(args.runs):
        for name, (command, environment) in commands.items():
            if name == "rerun":
                shutil.rmtree(work / "rerun", ignore_errors=True)
            times[name].append(timed(command, environment))
            logger.info("run %d: %s %.2f s", k + 1, name, times[name][-1])
    calls = len(json.loads((bundle / "manifest.json").read_text())["calls"])
    return {"spans": summary.spans, "times": times, "sizes": sizes(bundle), "calls": calls}


def report(found: dict, args: argparse.Namespace) -> dict:
    times, kinds = found["times"], found["sizes"]
    medians = {name: c.median(values) for name, values in times.items()}
    total = sum(kinds.values())
    print(f"obslib report incident --bundle, demo {found['spans']:,} spans, {args.runs} runs each")
    print(c.table(("file kind", "bytes"), [*kinds.items(), ("total", total)]))
    rows = [
        (name, medians[name], min(values), medians[name] / medians["report"])
        for name, values in times.items()
    ]
    print(c.table(("command", "median s", "best s", "this / report"), rows))
    print(
        f"bundle {total / 1e6:.2f} MB ({found['calls']} calls); target under"
        f" {TARGET_BYTES / 1024 / 1024:.0f} MB"
    )
    return {
        "spans": found["spans"],
        "runs": args.runs,
        "loadavg_1min": round(os.getloadavg()[0], 1),
        "bundle_bytes": total,
        **{f"{k}_bytes": v for k, v in kinds.items()},
        "calls": found["calls"],
        "report_median_s": round(medians["report"], 2),
        "report_bundle_median_s": round(medians["report_bundle"], 2),
        "rerun_median_s": round(medians["rerun"], 2),
        "bundle_vs_report": round(medians["report_bundle"] / medians["report"], 2),
        "rerun_vs_report": round(medians["rerun"] / medians["report"], 2),
        "target_bytes": TARGET_BYTES,
        "met": total < TARGET_BYTES,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each command (default 3)")
    parser.add_argument(
        "--spans", type=int, default=500_000, help="demo spans (default 500000, the demo's)"
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.spans < 1:
        parser.error("--runs and --spans must be at least 1")
    c.setup_logging(args.verbose)
    import tempfile

    with (
        c.server() as server_url,
        c.scratch_database(server_url) as url,
        tempfile.TemporaryDirectory(prefix="bench-bundle-") as folder,
    ):
        found = measure(url, args, Path(folder))
    print(json.dumps(report(found, args)))


if __name__ == "__main__":
    main()
