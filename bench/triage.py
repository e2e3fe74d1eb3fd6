"""How long a new incident waits for its drafted postmortem under ``obslib triage --follow``.

Why: issue 10's goal is that a new row in ``alert_incidents`` has its postmortem (HTML and
Markdown) written and recorded within 60 s, with nobody involved. Target: worst < 60 s.

What it does: a fresh database on a private embedded server (or $OBSLIB_DATABASE_URL's
server), the demo written into it (``--spans``, seed 7), then ``obslib triage --follow
--since now`` as a subprocess (``--since now``: the demo's own incidents are left alone).
It inserts ``--incidents`` copies of the demo's main incident (same alert, same times, new
ids), one at a time, each after the previous one's report is recorded, and measures for each:

- insert -> HTML written (the file's mtime) and insert -> path recorded in incident_data;
- where the time goes, from the executed notebook's papermill timestamps: dispatch (NOTIFY,
  the follower waking, its queries and lock, papermill reading the notebook), kernel start
  (papermill's start to the first cell's start), the cells (their own durations, and the
  slowest cells by median), after the cells (papermill's end to the HTML's mtime: URL
  scrubbing, the header, the HTML conversion, writing), and recording (HTML -> the row
  updated, which includes writing the Markdown and this script's 50 ms polling);
- the HTML conversion alone, re-timed on one executed notebook (``reports.to_offline_html``).

``--runbook NAME`` sets the alert's runbook (default: none, the postmortem); with
``--runbook ok`` and ``OBSLIB_RUNBOOKS=tests/data/runbooks`` it measures the machinery
alone. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import _common as c
import psycopg

logger = logging.getLogger("bench.triage")

TARGET_WORST_S = 60.0
POLL_S = 0.05
TIMEOUT_S = 300.0
TOP_CELLS = 5


def copy_incidents(url: str, n: int, runbook: str | None) -> tuple[str, list[tuple]]:
    """The demo's main incident as a template (its alert, optionally given ``runbook``)."""
    from obslib.demo.events import main_incident_id

    main = main_incident_id()
    with psycopg.connect(url) as conn:
        row = conn.execute(
            """SELECT alert_id, status, severity, triggered_at, acknowledged_at, resolved_at,
                      acknowledged_by, resolved_by, escalation_level
               FROM alert_incidents WHERE incident_id = %s""",
            (main,),
        ).fetchone()
        if row is None:
            raise SystemExit(f"the demo has no incident {main}")
        conn.execute("UPDATE alert_definitions SET runbook = %s WHERE id = %s", (runbook, row[0]))
    return main, [row] * n


def insert(url: str, incident_id: str, row: tuple) -> float:
    """Insert one incident (autocommit: the NOTIFY leaves at once); the time just before."""
    with psycopg.connect(url, autocommit=True) as conn:
        t0 = time.time()
        conn.execute(
            """INSERT INTO alert_incidents (incident_id, alert_id, status, severity,
                   triggered_at, acknowledged_at, resolved_at, acknowledged_by, resolved_by,
                   escalation_level)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            (incident_id, *row),
        )
    return t0


def recorded(url: str, incident_id: str) -> dict | None:
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT incident_data -> 'report' FROM alert_incidents WHERE incident_id = %s",
            (incident_id,),
        ).fetchone()
    return found[0] if found else None


def wait_until(what: str, check, proc: subprocess.Popen, timeout: float = TIMEOUT_S):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if proc.poll() is not None:
            raise SystemExit(f"the follower exited ({proc.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            raise SystemExit(f"waited {timeout:.0f} s for {what}")
        time.sleep(POLL_S)


def _stamp(text: str) -> float:
    """papermill's timestamps: ISO 8601, UTC, naive."""
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def stages(t0: float, html: Path, t_recorded: float, notebook: Path) -> dict:
    """Where one incident's time went, from the executed notebook's papermill metadata."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    pm = nb.metadata["papermill"]
    code = [cell for cell in nb.cells if "papermill" in cell.metadata and cell.cell_type == "code"]
    timed = [cell for cell in code if cell.metadata.papermill.get("start_time")]
    t_html = html.stat().st_mtime
    return {
        "total_s": t_html - t0,
        "recorded_s": t_recorded - t0,
        "dispatch_s": _stamp(pm["start_time"]) - t0,
        "kernel_start_s": _stamp(timed[0].metadata.papermill["start_time"])
        - _stamp(pm["start_time"]),
        "cells_s": sum(cell.metadata.papermill.get("duration") or 0 for cell in timed),
        "between_cells_s": _stamp(timed[-1].metadata.papermill["end_time"])
        - _stamp(timed[0].metadata.papermill["start_time"])
        - sum(cell.metadata.papermill.get("duration") or 0 for cell in timed),
        "after_cells_s": t_html - _stamp(pm["end_time"]),
        "recording_s": t_recorded - t_html,
        "cells": {
            _cell_name(i, cell): cell.metadata.papermill.get("duration") or 0
            for i, cell in enumerate(timed)
        },
    }


def _cell_name(index: int, cell) -> str:
    """``cell N: its first line that is not a comment``, to name it in the breakdown."""
    if "injected-parameters" in cell.metadata.get("tags", []):
        return f"cell {index}: (the injected parameters)"
    lines = [x for x in cell.source.splitlines() if x.strip() and not x.startswith("#")]
    return f"cell {index}: {(lines or ['(empty)'])[0][:60]}"


def html_conversion_s(notebook: Path, runs: int = 3) -> float:
    from obslib import reports

    times = []
    for _ in range(runs):
        start = time.perf_counter()
        reports.to_offline_html(notebook)
        times.append(time.perf_counter() - start)
    return c.median(times)


def measure(url: str, args: argparse.Namespace, work: Path) -> dict:
    from obslib import demo
    from obslib.jobs import triage

    t = time.perf_counter()
    summary = demo.run(seed=c.SEED, spans=args.spans, url=url)
    logger.info("demo written: %s spans in %.0f s", f"{summary.spans:,}", time.perf_counter() - t)
    main, rows = copy_incidents(url, args.incidents, args.runbook)
    out = work / "out"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OBSLIB_")},
        "OBSLIB_DATABASE_URL": url,
        "OBSLIB_HOME": str(work / "home"),
    }
    if os.environ.get(triage.ENV_RUNBOOKS):
        env[triage.ENV_RUNBOOKS] = os.environ[triage.ENV_RUNBOOKS]
    stem = triage.resolve_runbook(args.runbook).source.stem
    stderr = work / "follower.log"
    command = [sys.executable, "-m", "obslib", "triage", "--follow", "--since", "now"]
    with stderr.open("w") as err, (work / "follower.out").open("w") as lines:
        proc = subprocess.Popen([*command, "--out", str(out)], env=env, stdout=lines, stderr=err)
    try:
        wait_until("the follower", lambda: "listening on" in stderr.read_text(), proc, 60)
        results = []
        for k in range(args.incidents):
            incident_id = f"BENCH-{k + 1:03d}"
            html = out / triage.incident_folder(incident_id) / f"{stem}.html"
            t0 = insert(url, incident_id, rows[k])

            def done(incident_id: str = incident_id) -> dict | None:
                record = recorded(url, incident_id)
                return record if record and record.get("status") in ("done", "failed") else None

            record = wait_until(incident_id, done, proc)
            t_recorded = time.time()
            if record["status"] != "done":
                raise SystemExit(f"{incident_id}: the runbook failed: {record['error']}")
            one = stages(t0, html, t_recorded, Path(record["notebook"]))
            results.append(one)
            logger.info(
                "%s: HTML after %.1f s (recorded after %.1f s)",
                incident_id,
                one["total_s"],
                one["recorded_s"],
            )
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
        if code != 0:
            raise SystemExit(f"the follower exited {code} on SIGTERM")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    converted = html_conversion_s(Path(record["notebook"]))
    return {"spans": summary.spans, "template": main, "results": results, "html_s": converted}


def report(measured: dict, args: argparse.Namespace) -> dict:
    results = measured["results"]
    totals = [r["total_s"] for r in results]
    keys = (
        "dispatch_s",
        "kernel_start_s",
        "cells_s",
        "between_cells_s",
        "after_cells_s",
        "recording_s",
    )
    rows = [
        (f"BENCH-{k + 1:03d}", *(r[s] for s in ("total_s", *keys))) for k, r in enumerate(results)
    ]
    rows.append(("median", *(c.median([r[s] for r in results]) for s in ("total_s", *keys))))
    print(
        f"triage --follow, runbook {args.runbook or 'the postmortem'},"
        f" demo {measured['spans']:,} spans"
    )
    print(c.table(("incident", "insert->HTML s", *(k[:-2] + " s" for k in keys)), rows))
    print(f"HTML conversion alone (to_offline_html, median of 3): {measured['html_s']:.2f} s")
    cells: dict[str, list[float]] = {}
    for r in results:
        for name, seconds in r["cells"].items():
            cells.setdefault(name, []).append(seconds)
    slowest = sorted(cells.items(), key=lambda kv: -statistics.median(kv[1]))[:TOP_CELLS]
    print("slowest cells (median s):")
    for name, seconds in slowest:
        print(f"  {statistics.median(seconds):6.2f}  {name}")
    worst = max(totals)
    return {
        "incidents": len(results),
        "runbook": args.runbook or triage_default(),
        "spans": measured["spans"],
        "median_s": round(c.median(totals), 2),
        "worst_s": round(worst, 2),
        "first_s": round(totals[0], 2),
        "worst_target_s": TARGET_WORST_S,
        "met": worst < TARGET_WORST_S,
        "median_stages_s": {k[:-2]: round(c.median([r[k] for r in results]), 2) for k in keys},
        "html_conversion_s": round(measured["html_s"], 2),
    }


def triage_default() -> str:
    from obslib.jobs import triage

    return triage.DEFAULT_RUNBOOK


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=5, help="incidents inserted (default 5)")
    parser.add_argument(
        "--spans", type=int, default=500_000, help="demo spans (default 500000, the demo's)"
    )
    parser.add_argument(
        "--runbook", help="the alert's runbook (default: none, i.e. the postmortem)"
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.incidents < 1 or args.spans < 1:
        parser.error("--incidents and --spans must be at least 1")
    c.setup_logging(args.verbose)
    with (
        c.server() as server_url,
        c.scratch_database(server_url) as url,
        tempfile.TemporaryDirectory(prefix="obb-triage-") as work,
    ):
        measured = measure(url, args, Path(work))
        print(json.dumps(report(measured, args)))


if __name__ == "__main__":
    main()
