"""How long ``obslib report incident`` takes end to end on the demo, against the floors a
report cannot go below, timed in the same run.

Why: issue 23's target: ``obslib report …`` of the demo's incident under 4 s idle, end to
end (the process start, the parameter checks, a kernel, the notebook, the HTML and the
Markdown written).

What it does: a fresh database on a private embedded server (or $OBSLIB_DATABASE_URL's
server) with the demo written into it (``--spans``, seed 7); then, ``--runs`` times in
turn: the command as a user types it (``python -m obslib report incident --out DIR``, the
database from OBSLIB_DATABASE_URL); the baselines ``python -c "import obslib"`` (a process
that does nothing else), a bare kernel (the obslib kernel started, ready, shut down) and a
warm kernel (the same with the notebooks' imports done, ``reports.warm_up``: what every
report run pays before its first cell can run). Each median is printed with the report's
ratio to it, and the floor no report on a kernel of its own can go below: the warm kernel
plus the report's own cells (papermill's per-cell durations), with whether the target lies
below it. Then the same command with a **spare** kernel waiting (``obslib kernel warm``
before the first run; each report that uses a spare leaves the next, and the bench waits
until it is ready, as a user reading the last report would): what a report costs when
nobody waits for a kernel. ``--realtime`` runs each timed command (and the kernel it starts) in the
real-time FIFO class, first in line for the CPU (the database server stays ordinary): what
it takes on an idle machine, measured on a shared busy one. The last line printed is one
JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as c

logger = logging.getLogger("bench.report")

TARGET_S = 4.0
BARE_KERNEL = """
import time
from jupyter_client import KernelManager
from obslib import reports

spec = reports.kernel_name(headless=True)
import os
os.environ.update(spec.env)
km = KernelManager(kernel_name=spec.name)
km.start_kernel()
client = km.client()
client.start_channels()
client.wait_for_ready(timeout=120)
client.stop_channels()
km.shutdown_kernel(now=True)  # as obslib report ends its kernel: killed, not waited for
"""


# The floor of any report run on a kernel started for it: the obslib kernel with the imports
# of the notebooks' first cell done (``reports.warm_up``, as ``obslib report`` starts it).
WARM_KERNEL = BARE_KERNEL.replace(
    "km.start_kernel()",
    "km.start_kernel(extra_arguments=[f'--IPKernelApp.exec_lines={reports._WARM_UP}'])",
)


def cell_seconds(notebook: Path) -> float:
    """The executed notebook's cells, summed (papermill's per-cell durations)."""
    cells = json.loads(notebook.read_text())["cells"]
    return sum(
        cell["metadata"].get("papermill", {}).get("duration") or 0.0
        for cell in cells
        if cell["cell_type"] == "code"
    )


def timed(command: list[str], env: dict[str, str], realtime: bool = False) -> float:
    """Seconds ``command`` took; SystemExit with its stderr if it failed."""
    start = time.perf_counter()
    done = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=c.realtime_fifo if realtime else None,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])}… exited {done.returncode}: {done.stderr}")
    return seconds


def wait_for_spare(home: Path) -> None:
    """Wait until the spare kernel recorded under ``home`` answers (its warm-up done), and
    for its chart engine's start (a thread that runs on after the kernel answers)."""
    from jupyter_client import BlockingKernelClient

    (record,) = (home / "kernels").glob("spare-*.json")
    client = BlockingKernelClient(connection_file=json.loads(record.read_text())["connection_file"])
    client.load_connection_file()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=300)
    finally:
        client.stop_channels()
    time.sleep(2.0)


def measure(url: str, args: argparse.Namespace, work: Path) -> dict[str, list[float]]:
    summary = c.write_demo(url, args.spans)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OBSLIB_")},
        "OBSLIB_DATABASE_URL": url,
        "OBSLIB_HOME": str(work / "home"),
    }
    python = sys.executable
    commands = {
        "report": [python, "-m", "obslib", "report", "incident", "--out", str(work / "out")],
        "import_obslib": [python, "-c", "import obslib"],
        "bare_kernel": [python, "-c", BARE_KERNEL],
        "warm_kernel": [python, "-c", WARM_KERNEL],
    }
    commands["report_spare"] = commands["report"]
    times: dict[str, list[float]] = {name: [] for name in commands}
    times["cells"] = []
    try:
        for k in range(args.runs):
            for name, command in commands.items():
                if name == "report_spare":
                    if k == 0:
                        # in the timed commands' class: later spares are their children
                        timed([python, "-m", "obslib", "kernel", "warm"], env, args.realtime)
                    wait_for_spare(work / "home")
                times[name].append(timed(command, env, args.realtime))
                logger.info("run %d: %s %.2f s", k + 1, name, times[name][-1])
                if name == "report":
                    notebook = work / "out" / "incident_postmortem.ipynb"
                    times["cells"].append(cell_seconds(notebook))
    finally:
        timed([python, "-m", "obslib", "kernel", "stop"], env)
    for name in ("incident_postmortem.html", "postmortem.md"):
        if not (work / "out" / name).is_file():
            raise SystemExit(f"the report wrote no {name}")
    times["spans"] = [summary.spans]
    return times


def report(times: dict[str, list[float]], args: argparse.Namespace) -> dict:
    spans = times.pop("spans")[0]
    medians = {name: c.median(values) for name, values in times.items()}
    rows = [
        (name, medians[name], min(values), medians["report"] / medians[name])
        for name, values in times.items()
    ]
    shown = ", first in line (real-time)" if args.realtime else ""
    print(f"obslib report incident, demo {spans:,} spans, {args.runs} runs each{shown}")
    print(c.table(("command", "median s", "best s", "report / this"), rows))
    # a report cannot end before its kernel is warm and its cells have run
    floor = medians["warm_kernel"] + medians["cells"]
    print(
        f"floor: warm kernel {medians['warm_kernel']:.2f} s + cells {medians['cells']:.2f} s"
        f" = {floor:.2f} s; report {medians['report']:.2f} s is {medians['report'] / floor:.2f}x"
        f" the floor; target {TARGET_S:.1f} s"
        + (" is below the floor" if floor >= TARGET_S else "")
    )
    print(
        f"with a spare kernel waiting (obslib kernel warm): {medians['report_spare']:.2f} s,"
        f" {medians['report_spare'] / medians['cells']:.2f}x the cells alone"
    )
    return {
        "spans": spans,
        "runs": args.runs,
        "realtime": args.realtime,
        "loadavg_1min": round(os.getloadavg()[0], 1),
        "report_median_s": round(medians["report"], 2),
        "report_best_s": round(min(times["report"]), 2),
        "import_obslib_median_s": round(medians["import_obslib"], 2),
        "bare_kernel_median_s": round(medians["bare_kernel"], 2),
        "report_vs_bare_kernel": round(medians["report"] / medians["bare_kernel"], 2),
        "warm_kernel_median_s": round(medians["warm_kernel"], 2),
        "cells_median_s": round(medians["cells"], 2),
        "floor_s": round(floor, 2),
        "report_vs_floor": round(medians["report"] / floor, 2),
        "target_below_floor": floor >= TARGET_S,
        "target_s": TARGET_S,
        "report_spare_median_s": round(medians["report_spare"], 2),
        "report_spare_best_s": round(min(times["report_spare"]), 2),
        "spare_vs_report": round(medians["report_spare"] / medians["report"], 2),
        "met_cold": medians["report"] < TARGET_S,
        "met": medians["report_spare"] < TARGET_S,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each command (default 5)")
    parser.add_argument(
        "--spans", type=int, default=500_000, help="demo spans (default 500000, the demo's)"
    )
    parser.add_argument(
        "--realtime", action="store_true", help="each timed command first in line (FIFO)"
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.spans < 1:
        parser.error("--runs and --spans must be at least 1")
    c.setup_logging(args.verbose)
    with (
        c.server() as server_url,
        c.scratch_database(server_url) as url,
        tempfile.TemporaryDirectory(prefix="obb-report-") as work,
    ):
        print(json.dumps(report(measure(url, args, Path(work)), args)))


if __name__ == "__main__":
    main()
