"""How fast the CLI answers help and bad arguments (issue 23: under 0.3 s each).

Times, in a fresh process each run, `obslib --help`, every `obslib <command> --help`, a
misspelt report parameter, a report duration and a time that are no such thing, against
`python -c pass` (the interpreter's own start, the baseline) and `python -c "import
argparse"`, timed in the same run, interleaved, median of --runs. --load N starts N busy
Python loops for the measurement (a `stress`-like load, stopped by pid at the end). Nothing
connects: OBSLIB_DATABASE_URL names a closed port, so a case that reached the database
would fail its expected exit code.

    .venv/bin/python bench/cli.py [--runs 7] [--load 2] [--limit 0.3] [--realtime]

--realtime runs each timed process (never the busy loops) in the real-time FIFO class: the
scheduler runs it before every ordinary process, so its wall time is what it takes on an idle
machine, measured on a busy one.

Each case's wall time (the target) and the CPU time it used (user + system, what it costs
however busy the machine is) are printed with the load average. Last stdout line:
{"runs", "load", "realtime", "loadavg_1min", "baseline_s", "argparse_s", "cases": {case: median s},
"cpu_s": {case: median CPU s}, "worst_case", "worst_s", "worst_vs_baseline",
"worst_cpu_s", "limit_s", "targets_missed", "met"}.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as c

_NOWHERE = "postgresql://nobody@127.0.0.1:1/x"  # a case that connects fails its exit code
_BUSY = "while True: pass"


def obslib_command() -> list[str]:
    """The `obslib` console script next to this interpreter (what a user types), else
    ``python -m obslib``."""
    script = Path(sys.executable).with_name("obslib")
    return [str(script)] if script.exists() else [sys.executable, "-m", "obslib"]


def cases() -> dict[str, tuple[list[str], int]]:
    """Each case's command line and the exit code it must end with."""
    from obslib.cli import build_parser

    obslib = obslib_command()
    found: dict[str, tuple[list[str], int]] = {
        "python -c pass": ([sys.executable, "-c", "pass"], 0),
        "python -c 'import argparse'": ([sys.executable, "-c", "import argparse"], 0),
        "obslib --help": ([*obslib, "--help"], 0),
    }
    for command in _commands(build_parser()):
        found[f"obslib {command} --help"] = ([*obslib, *command.split(), "--help"], 0)
    errors = {
        "misspelt report parameter (-p windw 7d)": ["report", "health", "-p", "windw", "7d"],
        "bad report duration (-p window 7x)": ["report", "health", "-p", "window", "7x"],
        "bad report time (-p start notadate)": ["report", "trace", "-p", "start", "notadate"],
        "bad --since (triage --since yesterday)": ["triage", "--since", "yesterday"],
    }
    for name, argv in errors.items():
        found[name] = ([*obslib, *argv, *(["--out", "r"] if argv[0] == "report" else [])], 2)
    return found


def _commands(parser: argparse.ArgumentParser, prefix: str = "") -> list[str]:
    """Every command the CLI dispatches ("db up", "demo", ...), read from its parser."""
    found: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, f"{prefix}{name} ") or [prefix + name]
    return found


def time_once(
    argv: list[str], expected: int, env: dict[str, str], cwd: str, realtime: bool = False
) -> tuple[float, float]:
    """Seconds from start to exit of ``argv`` and the CPU seconds it used (user + system:
    what it costs, however busy the machine); its exit code must be ``expected``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(
        argv,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=c.realtime_fifo if realtime else None,
    )
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the busy loops are not waited yet
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if result.returncode != expected:
        raise SystemExit(
            f"{' '.join(argv)}: exit {result.returncode}, expected {expected}: "
            f"{result.stderr.strip()[-300:]}"
        )
    return took, cpu


def measure(runs: int, load: int, realtime: bool) -> dict[str, list[tuple[float, float]]]:
    """Every case ``runs`` times (wall and CPU seconds), interleaved, with ``load`` busy
    loops running, each case first in line for the CPU when ``realtime``."""
    todo = cases()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in todo}
    busy = [subprocess.Popen([sys.executable, "-c", _BUSY]) for _ in range(load)]
    try:
        with tempfile.TemporaryDirectory(prefix="obb-cli-") as work:
            env = {k: v for k, v in os.environ.items() if not k.startswith("OBSLIB_")}
            env |= {"OBSLIB_DATABASE_URL": _NOWHERE, "OBSLIB_HOME": work}
            for argv, expected in todo.values():  # warm the file cache, untimed
                time_once(argv, expected, env, work)
            for _ in range(runs):
                for name, (argv, expected) in todo.items():
                    times[name].append(time_once(argv, expected, env, work, realtime))
    finally:
        for proc in busy:  # the loops this run started, by their pid
            proc.kill()
            proc.wait()
    return times


def report(
    times: dict[str, list[tuple[float, float]]], runs: int, load: int, limit: float, realtime: bool
) -> dict:
    walls = {name: [wall for wall, _ in values] for name, values in times.items()}
    medians = {name: statistics.median(values) for name, values in walls.items()}
    cpus = {name: statistics.median(cpu for _, cpu in values) for name, values in times.items()}
    baseline = medians.pop("python -c pass")
    with_argparse = medians.pop("python -c 'import argparse'")
    width = max(len(name) for name in times)
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} (1, 5, 15 min)")
    print(f"{'case':<{width}}  median s    min s    max s  x baseline   CPU s  under {limit} s")
    for name, values in walls.items():
        median = statistics.median(values)
        under = "" if name.startswith("python") else ("yes" if median < limit else "NO")
        print(
            f"{name:<{width}}  {median:8.3f} {min(values):8.3f} {max(values):8.3f}"
            f"  {median / baseline:10.1f}  {cpus[name]:6.3f}  {under}"
        )
    worst = max(medians, key=medians.__getitem__)
    missed = sorted(name for name, median in medians.items() if median >= limit)
    print(
        f"{len(medians)} cases, {runs} runs each, {load} busy loop(s)"
        f"{', first in line (real-time)' if realtime else ''}: worst {worst}"
        f" {medians[worst]:.3f} s ({medians[worst] / baseline:.1f}x python -c pass,"
        f" {baseline:.3f} s; CPU {cpus[worst]:.3f} s); {len(missed)} at or over {limit} s"
    )
    return {
        "runs": runs,
        "load": load,
        "realtime": realtime,
        "loadavg_1min": round(os.getloadavg()[0], 2),
        "baseline_s": round(baseline, 4),
        "argparse_s": round(with_argparse, 4),
        "cases": {name: round(median, 4) for name, median in medians.items()},
        "cpu_s": {name: round(cpu, 4) for name, cpu in cpus.items()},
        "worst_case": worst,
        "worst_s": round(medians[worst], 4),
        "worst_vs_baseline": round(medians[worst] / baseline, 2),
        "worst_cpu_s": round(max(cpus[name] for name in medians), 4),
        "limit_s": limit,
        "targets_missed": missed,
        "met": not missed,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per case (default 7)")
    parser.add_argument(
        "--load", type=int, default=0, help="busy Python loops running meanwhile (default 0)"
    )
    parser.add_argument(
        "--limit", type=float, default=0.3, help="the target per case, seconds (default 0.3)"
    )
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="run each timed process in the real-time FIFO class (root or CAP_SYS_NICE): what"
        " it takes on an idle machine, measured on a busy one",
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or args.load < 0 or args.limit <= 0:
        parser.error("--runs must be at least 1, --load 0 or more, --limit positive")
    times = measure(args.runs, args.load, args.realtime)
    print(json.dumps(report(times, args.runs, args.load, args.limit, args.realtime)))


if __name__ == "__main__":
    main()
