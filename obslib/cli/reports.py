"""``obslib demo``, ``report``, ``triage`` and ``lab``: the commands that run the notebooks.

The report registry (``obslib.reports.REPORTS``) gives ``report`` its choices and the list
of parameters its help shows; the demo's defaults come from ``obslib.demo``. Both import
nothing heavy; the database and the notebooks' machinery load when a command runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from obslib import demo as demo_data
from obslib import reports
from obslib.cli._args import non_negative, positive, refuse_bad_duration, refuse_bad_moment
from obslib.cli.db import open_migrator
from obslib.errors import UsageError


def add_demo(commands) -> None:
    demo = commands.add_parser(
        "demo",
        help="bring the database up, write two weeks of DomainFlow telemetry with a scripted"
        " incident, then every report",
    )
    demo.add_argument(
        "--seed",
        type=non_negative,
        default=demo_data.DEFAULT_SEED,
        metavar="N",
        help="same seed, same data (default %(default)s)",
    )
    demo.add_argument(
        "--spans",
        type=positive,
        default=demo_data.DEFAULT_SPANS,
        metavar="N",
        help="about N spans (default %(default)s)",
    )
    where = demo.add_mutually_exclusive_group()
    where.add_argument(
        "--reports",
        default="reports",
        metavar="DIR",
        help="folder for every report, run once the data is written (default ./%(default)s)",
    )
    where.add_argument("--no-reports", action="store_true", help="write the data only, no report")
    demo.set_defaults(func=_demo)


def add_commands(commands) -> None:
    report = commands.add_parser(
        "report",
        help="run a notebook headless into an offline report: executed .ipynb + offline HTML",
        epilog=_report_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument(
        "name",
        nargs="?",
        choices=list(reports.REPORTS),
        help="which notebook (not with --from-bundle)",
    )
    report.add_argument(
        "--trace-id", metavar="ID", help="trace to investigate (default: slowest error trace)"
    )
    report.add_argument(
        "-p",
        "--param",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a notebook parameter (repeatable), e.g. -p skew_correction false",
    )
    report.add_argument(
        "--out",
        metavar="DIR",
        help="folder for the .ipynb and .html (with --from-bundle, default ./rerun)",
    )
    evidence = report.add_mutually_exclusive_group()
    evidence.add_argument(
        "--bundle",
        action="store_true",
        help="also write STEM.bundle/ beside the report: the rows every loader call returned"
        " (Parquet), a SHA-256 manifest, the notebook as run; it holds span tags and log fields",
    )
    evidence.add_argument(
        "--from-bundle",
        metavar="DIR",
        help="re-run the report a bundle holds, its loaders answered from the bundle (no"
        " database read); a file whose SHA-256 does not match is refused",
    )
    report.set_defaults(func=_report)

    bundle = commands.add_parser("bundle", help="check an evidence bundle (obslib report --bundle)")
    bundle_commands = bundle.add_subparsers(metavar="COMMAND", required=True)
    verify = bundle_commands.add_parser(
        "verify",
        help="check every file of a bundle against its manifest's SHA-256",
        description="Exit 0 when every file listed in DIR/manifest.json is there with its"
        " SHA-256 and nothing else is; else 1, one line per bad file.",
    )
    verify.add_argument("dir", metavar="DIR", help="the bundle folder (STEM.bundle)")
    verify.set_defaults(func=_verify_bundle)

    _triage_command(commands)

    _kernel_command(commands)

    lab = commands.add_parser(
        "lab",
        help="start JupyterLab on the notebooks, same database and Python",
        usage="%(prog)s [-h] [JUPYTER-ARGS]",
    )
    lab.set_defaults(func=_lab, passes_extra=True)  # other arguments go to jupyter lab


_KINDS = {"time": "a UTC time", "duration": "a duration such as 30d"}


def _report_epilog() -> str:
    """Each report's title and parameters, read from the registry."""
    lines = ["reports and their parameters (-p NAME VALUE):"]
    for spec in reports.REPORTS.values():
        shown = []
        for p in spec.parameters:
            if p is reports.REPORT_MODE:  # set by obslib report itself
                continue
            what = _KINDS.get(p.kind, p.kind)
            if p.optional:
                what += ", empty: the latest stored span"
            if p.stored is not None and p.name == reports.INCIDENT_ID:
                what = "a stored incident id"  # obslib incidents list shows them
            shown.append(f"{p.name} ({what}, default {p.default!r})")
        lines.append(f"  {spec.name:<9} {spec.title}")
        lines += [f"            {text}" for text in shown]
    return "\n".join(lines) + "\n"


_TRIAGE_EPILOG = """\
A runbook is the notebook an alert definition names in its `runbook` column (a report name
or a notebook name looked up in the notebooks folder and in $OBSLIB_RUNBOOKS, folders
separated by ':'); none means the incident postmortem. It runs with parameter {incident_id}.
Each outcome is recorded under the incident's incident_data.report; an incident done is
never run again, a failed one is retried by the next run. Triage lists nothing: `obslib
incidents list` shows the incidents and the report each one has.

exit status: 0 every incident done (and --follow stopped by SIGTERM or Ctrl-C),
             1 a runbook failed (its executed notebook with the error is in its folder),
             2 bad input, the database unreachable at start, or a role that may not
               record outcomes (a reader: checked before any runbook runs)
"""


def _triage_command(commands) -> None:
    tri = commands.add_parser(
        "triage",
        help="run each incident's runbook (default: the postmortem) into DIR/<incident>/ and"
        " record its paths on the incident",
        description="Run the runbook of every incident without a report (or whose last attempt\n"
        "failed) and record the paths of its HTML and Markdown on the incident.",
        epilog=_TRIAGE_EPILOG.format(incident_id=reports.INCIDENT_ID),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tri.add_argument(
        "--since",
        metavar="TIME",
        help="only incidents triggered at or after TIME, e.g. 2026-11-14T14:00Z or now"
        " (default: all); with --follow, bounds the catch-up at start and after reconnects",
    )
    tri.add_argument(
        "--follow",
        action="store_true",
        help="keep running: triage each incident as it is inserted (LISTEN/NOTIFY), survive"
        " database restarts; SIGTERM or Ctrl-C stops after the report in progress",
    )
    tri.add_argument(
        "--no-bundle",
        dest="bundle",
        action="store_false",
        help="write no evidence bundle beside each draft (default: STEM.bundle/, the rows its"
        " loaders returned: span tags and log fields included)",
    )
    tri.add_argument(
        "--out",
        default="reports/incidents",
        metavar="DIR",
        help="one folder per incident under DIR (default ./%(default)s)",
    )
    tri.set_defaults(func=_triage)


def _triage(args: argparse.Namespace) -> int:
    from pathlib import Path

    # bad input is refused before connecting: the time (a typo before pandas), the folder
    if args.since is not None:
        refuse_bad_moment(args.since, "--since")
    from obslib.jobs import triage
    from obslib.storage import db
    from obslib.values import moment

    since = None if args.since is None else moment(args.since, "--since")
    out = reports.prepare_out_dir(Path(args.out))
    url = db.reachable_url()

    def show(outcome: triage.Outcome) -> None:
        print(outcome.line(), flush=True)

    if args.follow:
        logging.getLogger(triage.__name__).setLevel(logging.INFO)  # listening, reconnects
        run = triage.follow(since, out, url, on_outcome=show, bundle=args.bundle)
        print(f"triage stopped: {run.summary()}")
        return 0
    run = triage.triage(since, out, url, on_outcome=show, bundle=args.bundle)
    print(f"triage: {run.summary()}")
    return 1 if run.failed else 0


_KERNEL_EPILOG = """\
A spare is a kernel with obslib, its views and the chart engine already loaded, left running
for the next `obslib report`, which then skips the kernel's start (about 5 s of an 8-9 s
report). The report that uses a spare starts the next one as it ends. A report uses a spare
only if obslib's code, Python and environment (OBSLIB_*, PG*, PATH, ...) are the ones the
spare started with; otherwise it starts a kernel of its own, as without one. A spare nobody
uses exits by itself after its idle time.
"""


def _kernel_command(commands) -> None:
    kernel = commands.add_parser(
        "kernel",
        help="keep a warm kernel ready for the next report (spares)",
        epilog=_KERNEL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = kernel.add_subparsers(title="actions", metavar="ACTION", required=True)
    warm = actions.add_parser(
        "warm",
        help="start a spare kernel for the next obslib report; it exits after --idle unused",
        epilog=_KERNEL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    warm.add_argument(
        "--idle", default="30min", metavar="DURATION", help="exit after this long unused (30min)"
    )
    warm.set_defaults(func=_kernel_warm)
    stop = actions.add_parser("stop", help="stop every spare kernel")
    stop.set_defaults(func=_kernel_stop)


def _kernel_warm(args: argparse.Namespace) -> int:
    from obslib import values

    refuse_bad_duration(args.idle, "--idle")
    idle = values.positive_duration(args.idle, "--idle")
    waiting = reports.WarmKernel.adopt(reports.notebooks_dir())
    if waiting is not None:  # one fits already: keep it, do not start a second
        waiting.release()
        print(f"spare kernel pid {waiting.pid} is ready already")
        return 0
    spare = reports.WarmKernel(reports.notebooks_dir(), spare_idle=idle.total_seconds())
    spare.keep()
    print(
        f"spare kernel pid {spare.pid} warming; the next obslib report uses it; it exits after"
        f" {values.duration_text(idle)} unused"
        " (obslib kernel stop)"
    )
    return 0


def _kernel_stop(args: argparse.Namespace) -> int:
    stopped = reports.stop_spares()
    print(f"stopped {len(stopped)} spare kernel{'' if len(stopped) == 1 else 's'}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from contextlib import nullcontext
    from pathlib import Path

    if args.from_bundle is not None:
        return _rerun(args)
    if args.name is None:
        raise UsageError("report: which report? (a NAME, or --from-bundle DIR)")
    if args.out is None:
        raise UsageError("report: --out DIR is required (the folder for the .ipynb and .html)")
    raw = dict(args.param)
    if args.trace_id is not None:
        raw["trace_id"] = args.trace_id
    # bad input is refused before a kernel starts: parameters (a typo before pandas is
    # imported), the folder, the database, then what the parameters name in it (an
    # incident id nobody stored)
    _refuse_typos(args.name, raw)
    params = reports.coerce_parameters(args.name, raw)
    out = reports.prepare_out_dir(Path(args.out))
    evidence = nullcontext()
    if args.bundle:
        from obslib.load.bundle_files import Recording

        evidence = Recording(out / f"{Path(reports.NOTEBOOKS[args.name]).stem}.bundle")
    # Once the input is good, the kernel starts and warms (obslib imported, the chart
    # engine started) in its own process while this one reaches and checks the database and
    # loads the notebook machinery, instead of one after the other. It inherits this
    # process's environment, the database URL with it (or finds the embedded server this
    # process brings up). A refused incident id stops it unused.
    # A spare kernel left warm by `obslib kernel warm` (or by the report before this one)
    # is used when it fits, and replaced after the run for the next report.
    kernel = reports.WarmKernel.adopt(reports.notebooks_dir())
    spare = kernel is not None
    kernel = kernel or reports.WarmKernel(reports.notebooks_dir())
    try:
        reports.preload()
        from obslib.storage import db  # SQLAlchemy and psycopg

        url = db.reachable_url()
        reports.check_stored(args.name, params, url)
        with evidence as recording:
            result = reports.run_report(args.name, params, out, kernel=kernel, evidence=recording)
    finally:
        kernel.close()
    _print_result(result)
    if spare:
        kernel.replace()  # after the output: the next spare warms while the user reads
    return 0


def _print_result(result: reports.Report) -> None:
    print(f"notebook  {result.notebook}")
    print(f"report    {result.html}")
    if result.bundle is not None:
        print(f"bundle    {result.bundle}")


def _rerun(args: argparse.Namespace) -> int:
    """``obslib report --from-bundle DIR``: the bundle's notebook and parameters, re-run with
    every loader call answered from the bundle. Its kernel is given a database URL that
    connects nowhere, so what the bundle does not hold fails, never reads today's data."""
    from pathlib import Path

    from obslib.load.bundle_files import NO_DATABASE, Replaying

    given = [flag for flag, value in (("NAME", args.name), ("-p", args.param),
             ("--trace-id", args.trace_id)) if value]  # fmt: skip
    if given:
        raise UsageError(
            f"--from-bundle takes no {', '.join(given)}: the bundle holds its report and parameters"
        )
    folder = Path(args.from_bundle)
    out = Path(args.out or "rerun")
    if out.resolve() == folder.resolve() or folder.resolve() in out.resolve().parents:
        raise UsageError(f"--out {out}: inside the bundle {folder} (a bundle holds only its files)")
    with Replaying(folder) as replay:
        out = reports.prepare_out_dir(out)
        name = replay.report if replay.report in reports.REPORTS else None
        result = reports.run_notebook(
            replay.source_copy(),
            replay.parameters,
            out,
            report=name,
            database_url=NO_DATABASE,
            evidence=replay,
        )
    _print_result(result)
    return 0


def _verify_bundle(args: argparse.Namespace) -> int:
    from obslib.load import bundle

    problems = bundle.verify(args.dir)
    for line in problems:
        print(f"{args.dir}: {line}")
    if problems:
        return 1
    files = len(bundle.read_manifest(args.dir)["files"])
    print(f"{args.dir}: ok, {files} files match the manifest's SHA-256")
    return 0


def _refuse_typos(name: str, raw: dict[str, str]) -> None:
    """A misspelt time, duration or number as the first parameter, refused with the message
    ``reports.coerce_parameters`` gives it, without importing pandas. Only the first: the
    parameters are checked in order, and a later one is reached only once values (pandas)
    has passed the ones before it. An unknown name or a URL is left to coerce_parameters."""
    spec = reports.REPORTS.get(name)
    if spec is None or not raw:
        return
    key, text = next(iter(raw.items()))
    parameter = spec.parameter(key)
    if parameter is None or "://" in text or (parameter.optional and not text.strip()):
        return
    if parameter.kind == "duration":
        refuse_bad_duration(text, f"parameter {key}")
    elif parameter.kind == "time":
        refuse_bad_moment(text, f"parameter {key}")
    elif parameter.kind in _NUMBERS:
        try:
            _NUMBERS[parameter.kind](text)
        except ValueError:
            raise UsageError(f"parameter {key} must be {parameter.kind}, not {text!r}") from None


_NUMBERS = {"int": int, "float": float}  # as reports.coerce_parameters converts them


def _lab(args: argparse.Namespace) -> int:
    from obslib.storage import db

    url = db.reachable_url()  # the kernel inherits it; the embedded server is up first
    command, env = lab_command(list(args.extra), url)
    print(f"kernel {reports.KERNEL_NAME} runs {sys.executable}; database {db.mask_url(url)}")
    sys.stdout.flush()
    os.execve(sys.executable, command, env)  # JupyterLab takes over this process and its signals
    return 0  # not reached


def lab_command(extra: list[str], database_url: str) -> tuple[list[str], dict[str, str]]:
    """The command and environment ``obslib lab`` runs JupyterLab with: the notebooks, the
    obslib kernel as default, the database ``database_url``, obslib's Lab defaults
    (``LAB_DEFAULTS``) and the user's ``extra`` arguments. The browser tests start Lab
    through ``obslib lab`` itself, so they run with exactly this."""
    kernel = reports.kernel_name()
    env = {
        **os.environ,
        "OBSLIB_DATABASE_URL": database_url,
        **kernel.env,
        "JUPYTER_CONFIG_PATH": _lab_defaults(),
    }
    if os.geteuid() == 0 and "--allow-root" not in extra:
        # JupyterLab refuses to start as root without it; obslib's users run it in
        # containers and on root-only VMs, where root is the only user there is
        extra = [*extra, "--allow-root"]
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--notebook-dir={reports.notebooks_dir()}",
        f"--MappingKernelManager.default_kernel_name={kernel.name}",
        *extra,
    ]
    return command, env


# Lab setting defaults obslib starts JupyterLab with, by plugin id. saveState: save the
# widgets' state (the trace and SLO pickers) in the notebook, so a notebook reopened after
# its kernel is gone shows the pickers instead of "Error displaying widget: model not
# found" (issue 23; the setting, default false, is in ipywidgets' jupyterlab-manager schema
# plugin.json). Jupyter's news feed and update check off: each makes a request to a
# website (the setting descriptions in @jupyterlab/apputils-extension's notification.json
# say so), which obslib never does at run time, and the news pop-up greeted every first
# start.
LAB_DEFAULTS = {
    "@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": True},
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}


def _lab_defaults() -> str:
    """Write ``LAB_DEFAULTS`` where JupyterLab reads setting defaults, in a folder obslib owns
    (OBSLIB_HOME/jupyter-config), and return JUPYTER_CONFIG_PATH with it first, the entries
    already there after it.

    jupyterlab_server (settings_utils._get_overrides) layers the defaults of
    ``labconfig/default_setting_overrides.json`` in every folder of jupyter_config_path(),
    whose first entries are JUPYTER_CONFIG_PATH's, over the app settings' overrides.json.
    That overrides.json is read from one folder only, ``LabApp.app_settings_dir`` (the venv's
    share/jupyter/lab/settings), not from JUPYTER_PATH; replacing that folder would drop what
    an administrator put there. Only the defaults change: a value the user set in Lab's
    Settings Editor (their user-settings) still wins, and their Jupyter folders and the venv
    are not written.
    """
    import json

    from obslib.config import settings

    root = settings().home / "jupyter-config"
    target = root / "labconfig" / "default_setting_overrides.json"
    text = json.dumps(LAB_DEFAULTS, indent=1)
    if not target.exists() or target.read_text() != text:
        target.parent.mkdir(parents=True, exist_ok=True)
        # atomically, as reports.kernel_name writes the kernel spec
        partial = target.with_name(f".{target.name}.{os.getpid()}")
        partial.write_text(text)
        os.replace(partial, target)
    paths = os.environ.get("JUPYTER_CONFIG_PATH", "")
    kept = [p for p in paths.split(os.pathsep) if p and p != str(root)]
    return os.pathsep.join([str(root), *kept])


def _demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from obslib.demo import topology

    out = None if args.no_reports else reports.prepare_out_dir(Path(args.reports))
    migrator = open_migrator()
    for m in migrator.up():
        print(f"applied {m.label}")
    with tqdm(total=topology.DEMO_DAYS, unit="day", desc="writing demo", leave=False) as bar:
        summary = demo_data.run(
            seed=args.seed, spans=args.spans, url=migrator.url, progress=lambda *_: bar.update()
        )
    print(demo_data.format_summary(summary))
    if out is not None:
        for result in demo_data.write_reports(out, migrator.url):
            print(demo_data.format_report(result))
    return 0
