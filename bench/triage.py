"""How long a new incident waits for its postmortem under ``obslib triage --follow``: on the
follower's warm kernel, against a cold kernel start timed in the same run, idle and busy.

Why: issue 23's targets: a new incident to its postmortem HTML and Markdown in under 5 s
median idle and under 15 s median busy (a kernel kept warm with obslib imported, replaced
after each use), the first incident after start paying the warm-up, and a new incident
never waiting behind a backlog (with 30 undrafted old incidents, drafted within the same
target).

What it does: a fresh database on a private embedded server (or $OBSLIB_DATABASE_URL's
server), the demo written into it (``--spans``, seed 7), then ``obslib triage --follow
--since now`` as a subprocess (the demo's own incidents are left alone). Copies of the
demo's main incident (same alert, same times, new ids) are inserted one at a time:

- first: right after the follower says it listens (its kernel still warming: the warm-up
  this incident pays);
- warm, per setting (idle; busy: ``--busy`` processes spinning on the CPU): each inserted
  once the follower's kernel is warm (its CPU time has stopped moving), timed from the
  insert to the HTML written (the file's mtime) and checked for its Markdown;
- cold, the baseline, alternating with the warm ones: the same postmortem (the demo's main
  incident) drafted in this process by ``reports.run_report`` on a kernel started for it,
  as every triage run did before (dispatch excluded: it favours the baseline);
- backlog: the follower stopped, ``--backlog`` copies inserted undrafted (everything else
  marked drafted), a follower without ``--since`` started; each time its catch-up has
  drafted one more old incident (the next one's draft then just begun), a new incident is
  inserted and timed to its HTML, ``--backlog-new`` times: the new one stops the old draft
  in progress (pre-emption; the follower's log counts the stops) and goes first.

Where a warm incident's time goes comes from the executed notebook's papermill timestamps
(dispatch, kernel ready, cells, after the cells). ``--realtime`` runs the follower (and the
kernels it starts) and each cold draft (and its kernel) in the real-time FIFO class, first
in line for the CPU before every ordinary process (never the spinning ones; the database
server stays ordinary): what the drafts take on an idle machine, measured on a shared busy
one. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import _common as c
import psycopg

logger = logging.getLogger("bench.triage")

TARGET_IDLE_S = 5.0
TARGET_BUSY_S = 15.0
POLL_S = 0.05
TIMEOUT_S = 300.0
QUIET_S = 1.0  # a kernel whose CPU time has not moved for this long has finished warming


def template(url: str) -> tuple[str, tuple]:
    """The demo's main incident and the row its copies get (its alert's runbook: none)."""
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
        conn.execute("UPDATE alert_definitions SET runbook = NULL WHERE id = %s", (row[0],))
    return main, row


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


def wait_until(what: str, check: Callable[[], object], proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        found = check()
        if found:
            return found
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"the follower exited ({proc.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            raise SystemExit(f"waited {TIMEOUT_S:.0f} s for {what}")
        time.sleep(POLL_S)


def _cpu_ticks(pid: int) -> int | None:
    """utime + stime of process ``pid`` (None: gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])


def kernels_of(pid: int) -> list[int]:
    """The ipykernel processes ``pid`` started (its warm kernel, a run's kernel)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if parent == pid and b"ipykernel_launcher" in cmdline:
            found.append(int(stat.parent.name))
    return found


def wait_warm(proc: subprocess.Popen) -> float:
    """Wait until the follower's kernel exists and its CPU time has not moved for QUIET_S
    (its warm-up is done); the seconds waited."""
    start = time.monotonic()
    last: dict[int, int | None] = {}
    quiet_since = None
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"the follower exited ({proc.returncode}) while its kernel warmed")
        now = {pid: _cpu_ticks(pid) for pid in kernels_of(proc.pid)}
        if now and now == last:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= QUIET_S:
                return time.monotonic() - start - QUIET_S
        else:
            quiet_since = None
        last = now
        if time.monotonic() - start > TIMEOUT_S:
            raise SystemExit(f"the follower's kernel did not settle in {TIMEOUT_S:.0f} s")
        time.sleep(0.2)


@contextmanager
def first_in_line(realtime: bool) -> Iterator[None]:
    """This process in the real-time class for the block (when ``realtime``), then back."""
    if not realtime:
        yield
        return
    c.realtime_fifo()
    try:
        yield
    finally:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


@contextmanager
def follower(
    env: dict, out: Path, work: Path, name: str, since: bool, realtime: bool = False
) -> Iterator:
    """``obslib triage --follow`` (``--since now`` when ``since``) until SIGTERM at the end."""
    stderr = work / f"{name}.log"
    command = [sys.executable, "-m", "obslib", "triage", "--follow", "--out", str(out)]
    command += ["--since", "now"] if since else []
    with stderr.open("w") as err, (work / f"{name}.out").open("w") as lines:
        proc = subprocess.Popen(
            command,
            env=env,
            stdout=lines,
            stderr=err,
            preexec_fn=c.realtime_fifo if realtime else None,
        )
    try:
        wait_until("the follower", lambda: "listening on" in stderr.read_text(), proc)
        yield proc
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=TIMEOUT_S)
        if code != 0:
            raise SystemExit(f"the follower exited {code} on SIGTERM: see {stderr}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@contextmanager
def busy(processes: int) -> Iterator[None]:
    """``processes`` Python processes spinning on the CPU for the block (a stress-like load)."""
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)
    ]
    try:
        yield
    finally:
        for proc in spinners:
            proc.kill()
            proc.wait()


def _stamp(text: str) -> float:
    """papermill's timestamps: ISO 8601, UTC, naive."""
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def stages(t0: float, html: Path, notebook: Path) -> dict:
    """Where one incident's time went, from the executed notebook's papermill metadata."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    pm = nb.metadata["papermill"]
    timed = [
        cell
        for cell in nb.cells
        if cell.cell_type == "code" and cell.metadata.get("papermill", {}).get("start_time")
    ]
    t_html = html.stat().st_mtime
    first_cell = _stamp(timed[0].metadata.papermill["start_time"])
    return {
        "total_s": t_html - t0,
        "dispatch_s": _stamp(pm["start_time"]) - t0,
        "kernel_ready_s": first_cell - _stamp(pm["start_time"]),
        "cells_s": _stamp(pm["end_time"]) - first_cell,
        "after_cells_s": t_html - _stamp(pm["end_time"]),
    }


def draft_warm(url: str, proc: subprocess.Popen, out: Path, incident_id: str, row: tuple) -> dict:
    """Insert ``incident_id``; once its outcome is recorded, where its time went."""
    from obslib.jobs import triage

    t0 = insert(url, incident_id, row)

    def done() -> dict | None:
        record = recorded(url, incident_id)
        return record if record and record.get("status") in ("done", "failed") else None

    record = wait_until(incident_id, done, proc)
    if record["status"] != "done" or not record.get("markdown"):
        raise SystemExit(f"{incident_id}: no HTML and Markdown: {record.get('error')}")
    html = out / triage.incident_folder(incident_id) / "incident_postmortem.html"
    one = stages(t0, html, Path(record["notebook"]))
    logger.info("%s: HTML after %.1f s", incident_id, one["total_s"])
    return one


def draft_cold(url: str, main: str, out: Path, realtime: bool) -> float:
    """The baseline: the same postmortem on a kernel started for it, in this process."""
    from obslib import reports

    with first_in_line(realtime):
        start = time.perf_counter()
        result = reports.run_report(
            reports.POSTMORTEM, {reports.INCIDENT_ID: main}, out, database_url=url
        )
        seconds = time.perf_counter() - start
    if result.markdown is None:
        raise SystemExit("the cold postmortem wrote no Markdown")
    logger.info("cold: %.1f s", seconds)
    return seconds


def backlog_run(
    url: str, env: dict, work: Path, row: tuple, n: int, new: int, realtime: bool
) -> tuple[list[dict], int, int]:
    """With ``n`` undrafted old incidents, where ``new`` new ones' time from insert to HTML
    went (each inserted once the catch-up has drafted one more old one), how many old ones
    were still undrafted after the last, and how many old drafts the follower stopped."""
    with psycopg.connect(url) as conn:  # the demo's own incidents: out of the way
        conn.execute(
            """UPDATE alert_incidents SET incident_data = COALESCE(incident_data, '{}')
                   || '{"report": {"status": "done"}}'
               WHERE (incident_data -> 'report' ->> 'status') IS DISTINCT FROM 'done'"""
        )
    for k in range(n):
        insert(url, f"OLD-{k + 1:03d}", row)
    out = work / "backlog"
    with follower(env, out, work, "backlog", since=False, realtime=realtime) as proc:

        def old_done() -> int:
            with psycopg.connect(url) as conn:
                return conn.execute(
                    """SELECT count(*) FROM alert_incidents WHERE incident_id LIKE 'OLD-%%'
                       AND incident_data -> 'report' ->> 'status' = 'done'"""
                ).fetchone()[0]

        times = []
        for k in range(new):
            before = old_done()
            wait_until("the catch-up's next draft", lambda b=before: old_done() > b, proc)
            times.append(draft_warm(url, proc, out, f"NEW-AFTER-BACKLOG-{k + 1}", row))
        with psycopg.connect(url) as conn:
            left = conn.execute(
                """SELECT count(*) FROM alert_incidents WHERE incident_id LIKE 'OLD-%%'
                   AND incident_data -> 'report' IS NULL"""
            ).fetchone()[0]
    stops = (work / "backlog.log").read_text().count("stopped the draft of")
    totals = [round(t["total_s"], 2) for t in times]
    logger.info("backlog: new incidents after %s s, %d old still pending", totals, left)
    return times, left, stops


def measure(url: str, args: argparse.Namespace, work: Path) -> dict:
    summary = c.write_demo(url, args.spans)
    main, row = template(url)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OBSLIB_")},
        "OBSLIB_DATABASE_URL": url,
        "OBSLIB_HOME": str(work / "home"),
    }
    os.environ["OBSLIB_HOME"] = env["OBSLIB_HOME"]  # the cold runs' kernel spec, alike
    out = work / "out"
    results: dict[str, dict[str, list]] = {}
    with follower(env, out, work, "follower", since=True, realtime=args.realtime) as proc:
        first = draft_warm(url, proc, out, "FIRST", row)
        settings = [("idle", 0)] + ([("busy", args.busy)] if args.busy else [])
        for setting, spinners in settings:
            warm, cold, split = [], [], []
            with busy(spinners):
                for k in range(args.incidents):
                    wait_warm(proc)
                    one = draft_warm(url, proc, out, f"{setting.upper()}-{k + 1:03d}", row)
                    warm.append(one["total_s"])
                    split.append(one)
                    wait_warm(proc)  # the replacement warmed: the baseline runs alone
                    folder = work / "cold" / f"{setting}-{k}"
                    cold.append(draft_cold(url, main, folder, args.realtime))
            results[setting] = {"warm": warm, "cold": cold, "stages": split}
    backlog_s, left, stops = (
        backlog_run(url, env, work, row, args.backlog, args.backlog_new, args.realtime)
        if args.backlog
        else (None, None, None)
    )
    return {
        "spans": summary.spans,
        "first": first,
        "results": results,
        "backlog_s": backlog_s,
        "backlog_left": left,
        "backlog_stops": stops,
    }


def report(measured: dict, args: argparse.Namespace) -> dict:
    results = measured["results"]
    targets = {"idle": TARGET_IDLE_S, "busy": TARGET_BUSY_S}
    shown = ", first in line (real-time)" if args.realtime else ""
    load = os.getloadavg()[0]
    print(f"triage --follow, the postmortem, demo {measured['spans']:,} spans{shown}")
    rows = []
    out: dict[str, object] = {
        "spans": measured["spans"],
        "incidents": args.incidents,
        "realtime": args.realtime,
        "loadavg_1min": round(load, 1),
    }
    for setting, r in results.items():
        warm, cold = c.median(r["warm"]), c.median(r["cold"])
        stage = {
            k: round(c.median([s[k] for s in r["stages"]]), 2)
            for k in ("dispatch_s", "kernel_ready_s", "cells_s", "after_cells_s")
        }
        rows.append((setting, warm, max(r["warm"]), cold, cold / warm, targets[setting]))
        out[setting] = {
            "warm_median_s": round(warm, 2),
            "warm_worst_s": round(max(r["warm"]), 2),
            "cold_median_s": round(cold, 2),
            "cold_vs_warm": round(cold / warm, 2),
            "target_s": targets[setting],
            "met": warm < targets[setting],
            "warm_stages_s": stage,
        }
    headers = ("setting", "warm median s", "warm worst s", "cold median s", "cold/warm", "target s")
    print(c.table(headers, rows))
    first = measured["first"]["total_s"]
    print(f"first incident after start (pays the warm-up): {first:.2f} s")
    out["first_s"] = round(first, 2)
    if measured["backlog_s"] is not None:
        split = measured["backlog_s"]
        times = [s["total_s"] for s in split]
        median = c.median(times)
        met = median < TARGET_IDLE_S
        print(
            f"a new incident with {args.backlog} undrafted old ones pending: median"
            f" {median:.2f} s, worst {max(times):.2f} s of {len(times)}"
            f" ({measured['backlog_stops']} old drafts stopped for them,"
            f" {measured['backlog_left']} old still pending then);"
            f" target {TARGET_IDLE_S:.0f} s: {'met' if met else 'NOT met'}"
        )
        out["backlog"] = args.backlog
        out["backlog_new_s"] = [round(t, 2) for t in times]
        out["backlog_new_median_s"] = round(median, 2)
        out["backlog_stops"] = measured["backlog_stops"]
        out["backlog_new_stages_s"] = {
            k: round(c.median([s[k] for s in split]), 2)
            for k in ("dispatch_s", "kernel_ready_s", "cells_s", "after_cells_s")
        }
        print(f"  its stages (median s): {out['backlog_new_stages_s']}")
        out["backlog_met"] = met
    out["met"] = all(
        v["met"] for v in out.values() if isinstance(v, dict) and "met" in v
    ) and out.get("backlog_met", True)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--incidents", type=int, default=5, help="warm and cold drafts per setting (default 5)"
    )
    parser.add_argument(
        "--spans", type=int, default=500_000, help="demo spans (default 500000, the demo's)"
    )
    parser.add_argument(
        "--busy", type=int, default=2, help="spinning processes of the busy setting (0: none)"
    )
    parser.add_argument(
        "--backlog", type=int, default=30, help="undrafted old incidents (0: no backlog run)"
    )
    parser.add_argument(
        "--backlog-new",
        type=int,
        default=3,
        help="new incidents inserted during the backlog's catch-up (default 3)",
    )
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="the follower and the cold drafts first in line for the CPU (real-time FIFO)",
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.incidents < 1 or args.spans < 1 or args.busy < 0 or args.backlog < 0:
        parser.error("--incidents and --spans must be at least 1, --busy and --backlog >= 0")
    if args.backlog and not 1 <= args.backlog_new < args.backlog:
        parser.error("--backlog-new must be at least 1 and below --backlog")
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
