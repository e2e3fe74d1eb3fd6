"""Headless reports: papermill runs a notebook, nbconvert turns it into offline HTML.

``REPORTS`` is the one report registry (name -> notebook, title, typed parameters with
their defaults): the CLI, triage and the demo read it, and it imports nothing heavy, so
``obslib --help`` can show its choices.

The kernel is this interpreter (a kernel spec written under OBSLIB_HOME), never whatever
``python3`` kernel the machine has. Charts render as inline SVG and the HTML keeps no
remote ``<script src>``, so a report opens complete without a network. The database URL is
never a parameter: the kernel inherits OBSLIB_DATABASE_URL from the environment.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from obslib.config import ENV_DATABASE_URL, settings, shipped_dir, version
from obslib.errors import ReportFailed, UsageError
from obslib.redact import scrub

if TYPE_CHECKING:
    from concurrent.futures import Future

    import pandas as pd

    from obslib.load.bundle_files import Recording, Replaying

    Evidence = Recording | Replaying

logger = logging.getLogger(__name__)

KERNEL_NAME = "obslib"  # the kernel the notebooks are saved with


@dataclass(frozen=True)
class Parameter:
    """One parameter of a report, as the notebook's ``parameters`` cell declares it."""

    name: str
    # str, bool, int or float as the cell declares it; or, declared str, "time" (a moment:
    # checked with values.moment before a kernel starts and passed on as ISO 8601 UTC) or
    # "duration" ("30d": checked with values.positive_duration). Only these: a name is no
    # proof of a type (a `max_wait_time: float` is not a moment).
    kind: str
    default: object
    # a time that may be empty: the notebook then ends at the latest stored span
    optional: bool = False
    # what the notebook's own first cells would refuse, refused up front by the same function
    check: Callable[[object], object] | None = None
    # what the notebook would not find in the database (an incident id nobody stored),
    # refused up front: check_stored runs it with the database URL once the database is
    # reachable, before a kernel starts; never at import or to build the CLI
    stored: Callable[[object, str | None], object] | None = None
    # the file the notebook reads for a value (the value as given: blank may mean a file
    # of obslib's own), kept in a run's evidence bundle and read from there by a re-run
    reads: Callable[[object], Path] | None = None
    # what the bundle keeps of that file instead of its bytes (bytes in, bytes out): the
    # alertmanager.yml with its secrets masked; None keeps the bytes as read
    masks: Callable[[bytes, str], bytes] | None = None

    @property
    def declared(self) -> str:
        """The type the notebook's parameters cell declares (papermill's name for it)."""
        return "str" if self.kind in ("time", "duration") else self.kind


@dataclass(frozen=True)
class ReportSpec:
    """One report: ``obslib report NAME`` runs ``notebook`` with ``parameters``."""

    name: str
    notebook: str  # a file of notebooks_dir()
    title: str  # the notebook's own "# " heading, which its header shows
    parameters: tuple[Parameter, ...]

    def parameter(self, key: str) -> Parameter | None:
        return next((p for p in self.parameters if p.name == key), None)

    @property
    def defaults(self) -> dict[str, object]:
        """The parameters cell's values, in its order: what a run without ``-p`` uses."""
        return {p.name: p.default for p in self.parameters}


def _skew_limit(value: object) -> object:
    from obslib.traces.skew import check_max_skew_ms  # the skew adjuster's own check

    return check_max_skew_ms(value)


def _event_count(value: object) -> object:
    from obslib.values import count

    return count(value, "parameter min_events")


def _stored_incident(value: object, url: str | None) -> None:
    """UsageError, on one line naming the closest stored ids, unless incident ``value`` is
    stored. Blank is left to the notebook (its own note); padding is stripped, as the
    postmortem strips it."""
    from difflib import get_close_matches

    from obslib import load

    wanted = str(value).strip()
    if not wanted:
        return
    ids = load.incident_ids(url=url)
    if wanted in ids:
        return
    shown = f"{wanted[:80]!r}{'...' if len(wanted) > 80 else ''}"
    if not ids:
        raise UsageError(f"parameter {INCIDENT_ID} {shown}: no incident is stored")
    # compared without case: "inc-20261114-0001" is a typo of "INC-20261114-0001"
    by_folded: dict[str, str] = {}
    for incident_id in ids:
        by_folded.setdefault(incident_id.casefold(), incident_id)
    close = get_close_matches(wanted.casefold()[:200], list(by_folded), n=3, cutoff=0.6)
    hint = (
        f"closest: {', '.join(by_folded[c] for c in close)}"
        if close
        else f"none of the {len(ids)} stored is close"
    )
    raise UsageError(
        f"parameter {INCIDENT_ID}: no incident {shown} is stored; {hint}"
        " (`obslib incidents list` shows them)"
    )


def _alertmanager_file(value: object) -> Path:
    """The alertmanager.yml the health notebook reads for its ``config``: the file named,
    or the one obslib ships (``amconfig.default_config``) when blank."""
    if str(value).strip():
        return Path(str(value))
    from obslib.alerts import amconfig

    return Path(amconfig.__file__).with_name(amconfig.DEFAULT_CONFIG)


def _alertmanager_masked(raw: bytes, file: str) -> bytes:
    """The alertmanager.yml a bundle keeps: ``raw`` with every secret masked as
    ``<secret>`` (``redact.alertmanager_secrets``, the one rule), as YAML under a comment
    saying so. A bundle is shared with people who may not hold the receivers' passwords,
    tokens and webhook URLs, and the replay reads none of them (``amconfig.parse_config``
    reads the routes, inhibit rules, time intervals and receivers' names): the masked copy
    must parse to the same config, else BundleError. A file obslib refuses is kept as it
    is, unread: the notebook then fails on it, and a failed run leaves no bundle."""
    import yaml

    from obslib.alerts import amconfig
    from obslib.errors import InputError
    from obslib.load.bundle import BundleError
    from obslib.redact import alertmanager_secrets

    try:
        parsed = amconfig.parse_config(raw, file)  # refuses alias bombs before safe_load
    except InputError:
        return raw
    masked, count = alertmanager_secrets(yaml.safe_load(raw))
    if not count:
        return raw
    text = (
        f"# obslib: {Path(file).name} as read, its {count} secret value(s) masked as <secret>\n"
        + yaml.safe_dump(masked, sort_keys=False, allow_unicode=True)
    )
    if amconfig.parse_config(text, file) != parsed:
        raise BundleError(f"{file}: its secrets cannot be masked without changing the config")
    return text.encode("utf-8")


def input_files(name: str | None, parameters: dict[str, object], cwd: Path) -> dict:
    """``{parameter: (value, file, masks)}``: the files report ``name``'s notebook reads for
    these parameters (``Parameter.reads``), a relative path taken from ``cwd``, the folder
    the kernel runs in, as the notebook takes it, and what a bundle keeps of each
    (``Parameter.masks``, None: its bytes)."""
    spec = REPORTS.get(name) if name else None
    found = {}
    for parameter in spec.parameters if spec else ():
        if parameter.reads is not None:
            value = parameters.get(parameter.name, parameter.default)
            found[parameter.name] = (value, Path(cwd) / parameter.reads(value), parameter.masks)
    return found


# Set by run_notebook on every report (static SVG charts that render offline); every
# report's notebook declares it last.
REPORT_MODE = Parameter("report_mode", "bool", False)
# The parameter a runbook takes (triage runs every runbook with it) and the report triage
# runs for an incident whose alert names no runbook: the postmortem.
INCIDENT_ID = "incident_id"
POSTMORTEM = "incident"

# The one report registry: the CLI's choices, help and parameter checks, the runs of
# `obslib report`, triage and the demo all read it. Each entry's defaults work on the demo
# data; tests check that every entry's notebook exists and declares exactly these
# parameters (names, order, types, defaults).
REPORTS: dict[str, ReportSpec] = {
    spec.name: spec
    for spec in (
        ReportSpec(
            "trace",
            "trace_investigation.ipynb",
            "Trace investigation",
            (
                Parameter("trace_id", "str", ""),
                Parameter("start", "time", "2026-11-14T14:05:00Z"),
                Parameter("end", "time", "2026-11-14T14:50:00Z"),
                Parameter("skew_correction", "bool", True),
                Parameter("max_skew_ms", "float", 1000.0, check=_skew_limit),
                REPORT_MODE,
            ),
        ),
        ReportSpec(
            "slo",
            "slo_review.ipynb",
            "SLO review",
            (
                Parameter("window", "duration", "30d"),
                Parameter("end", "time", "2026-11-16T00:00:00Z", optional=True),
                Parameter("services", "str", ""),
                Parameter("record", "bool", False),
                Parameter("min_events", "int", 10, check=_event_count),
                REPORT_MODE,
            ),
        ),
        ReportSpec(
            POSTMORTEM,
            "incident_postmortem.ipynb",
            "Incident postmortem",
            (
                Parameter(INCIDENT_ID, "str", "INC-20261114-0001", stored=_stored_incident),
                REPORT_MODE,
            ),
        ),
        ReportSpec(
            "health",
            "observability_health.ipynb",
            "Observability health",
            (
                Parameter("window", "duration", "14d"),
                Parameter("end", "time", "", optional=True),
                Parameter(
                    "config", "str", "", reads=_alertmanager_file, masks=_alertmanager_masked
                ),
                REPORT_MODE,
            ),
        ),
    )
}
# report name -> notebook file, read from REPORTS
NOTEBOOKS = {spec.name: spec.notebook for spec in REPORTS.values()}
_HEADER_TAG = "obslib-report-header"
_SECRET_WORDS = ("url", "password", "dsn", "secret", "token")
_DATABASE_URL = re.compile(r"postgres(ql)?(\+\w+)?://", re.I)


@dataclass(frozen=True)
class Report:
    notebook: Path
    html: Path
    markdown: Path | None = None  # written when a cell of the notebook asks for it
    bundle: Path | None = None  # the evidence bundle, when the run recorded one


def notebooks_dir() -> Path:
    """The notebooks: $OBSLIB_NOTEBOOKS_DIR, the wheel's copy, or the checkout's folder."""
    return shipped_dir("OBSLIB_NOTEBOOKS_DIR", "notebooks")


class Kernel(NamedTuple):
    """A kernel spec's name and the environment Jupyter needs to find it."""

    name: str
    env: dict[str, str]  # JUPYTER_PATH with the folder of obslib's kernel specs first


def kernel_name(*, headless: bool = False) -> Kernel:
    """The ``obslib`` kernel spec, pointed at this interpreter, and the environment that
    makes it visible to Jupyter (``JUPYTER_PATH``); this process's environment is left as
    it is: whoever starts a kernel or JupyterLab passes ``env`` on.

    One stable name, so the notebooks can save it as their kernel and JupyterLab opens them
    on obslib's Python instead of whatever "Python 3" it finds; each run points it at the
    interpreter that runs obslib (a spec under OBSLIB_HOME, not the user's Jupyter folders).
    ``headless``: the spec reports run on, whose kernel logs only critical errors. Jupyter
    interrupts (SIGINT) every kernel it shuts down, and an ipykernel caught mid-step logs
    "KeyboardInterrupt caught in kernel" to the console of whoever ran the report; what a
    headless cell raises is in the executed notebook, not in the kernel's log.
    """
    name = f"{KERNEL_NAME}-headless" if headless else KERNEL_NAME
    root = settings().home / "jupyter"
    spec_dir = root / "kernels" / name
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    if headless:
        argv.append("--IPKernelApp.log_level=CRITICAL")
    spec = {
        "argv": argv,
        "display_name": "obslib (headless)" if headless else "obslib",
        "metadata": {"interpreter": sys.executable},
        "language": "python",
    }
    spec_dir.mkdir(parents=True, exist_ok=True)
    target = spec_dir / "kernel.json"
    if not target.exists() or json.loads(target.read_text()) != spec:
        # atomically: a second process starting a kernel meanwhile never reads half a file
        partial = target.with_name(f".kernel.json.{os.getpid()}")
        partial.write_text(json.dumps(spec, indent=1))
        os.replace(partial, target)
    paths = os.environ.get("JUPYTER_PATH", "")
    if str(root) not in paths.split(os.pathsep):
        paths = os.pathsep.join(p for p in (str(root), paths) if p)
    return Kernel(name, {"JUPYTER_PATH": paths})


def report(name: str) -> ReportSpec:
    """The registry's entry for report ``name``; UsageError naming the others if none."""
    if name not in REPORTS:
        raise UsageError(f"unknown report {name!r} (one of {', '.join(REPORTS)})")
    return REPORTS[name]


def notebook_parameters(name: str | Path) -> dict[str, dict]:
    """The parameters a notebook declares (name -> papermill's description): a report's
    name, or the path of any notebook (a runbook)."""
    import papermill

    source = name if isinstance(name, Path) else _notebook(name)
    return papermill.inspect_notebook(str(source))


def _notebook(name: str) -> Path:
    return notebooks_dir() / report(name).notebook


def coerce_parameters(name: str, raw: dict[str, str]) -> dict[str, object]:
    """Turn CLI strings into the types report ``name``'s parameters have; refuse unknowns."""
    spec = report(name)
    out: dict[str, object] = {}
    for key, text in raw.items():
        if any(word in key.lower() for word in _SECRET_WORDS):
            raise UsageError(
                f"parameter {key!r} looks like a secret: the database URL comes"
                " from OBSLIB_DATABASE_URL, never from a report parameter"
            )
        if _DATABASE_URL.search(text):
            raise UsageError(
                f"parameter {key!r} holds a database URL: the database comes from"
                " OBSLIB_DATABASE_URL, never from a report parameter"
            )
        parameter = spec.parameter(key)
        if parameter is None:
            known = ", ".join(sorted(p.name for p in spec.parameters))
            raise UsageError(f"report {name!r} has no parameter {key!r} (it has: {known})")
        out[key] = _convert(parameter, text)
    check_parameters(name, out)
    return out


def check_parameters(name: str, given: dict[str, object]) -> None:
    """What the notebook's own first cells would refuse, refused before a kernel starts
    (UsageError, exit 2), by the same functions: a window whose end is not after its start
    (the notebook's defaults filling what was not given), a moment outside the times
    obslib holds, a negative or NaN skew limit, a negative minimum of events. Nothing
    given, nothing to check: the defaults alone are the notebook's own (and pandas, which
    the checks import, stays out of a plain ``obslib report NAME``)."""
    if not given:
        return
    from obslib.values import moment, window

    spec = report(name)
    values = {**spec.defaults, **given}
    times = [
        p.name
        for p in spec.parameters
        if p.kind == "time" and str(values.get(p.name) or "").strip()
    ]
    for key in times:
        moment(str(values[key]), f"parameter {key}")
    if "start" in times and "end" in times:
        window(str(values["start"]), str(values["end"]))
    for parameter in spec.parameters:
        if parameter.check is not None and parameter.name in given:
            parameter.check(given[parameter.name])


def check_stored(name: str, given: dict[str, object], url: str | None = None) -> None:
    """What the notebook would not find in the database, refused before a kernel starts
    (UsageError, exit 2): each given parameter with a ``stored`` check, against the
    database at ``url`` (default $OBSLIB_DATABASE_URL). An unknown incident id costs a
    query, not a kernel start and a report of "no such incident" notes."""
    for parameter in report(name).parameters:
        if parameter.stored is not None and parameter.name in given:
            parameter.stored(given[parameter.name], url)


def is_time_parameter(report_name: str | Path, key: str) -> bool:
    """Whether report ``report_name``'s parameter ``key`` holds a moment (a UTC time); a
    notebook that is no report (a runbook, a Path) has none."""
    if not isinstance(report_name, str) or report_name not in REPORTS:
        return False
    parameter = REPORTS[report_name].parameter(key)
    return parameter is not None and parameter.kind == "time"


def _convert(parameter: Parameter, text: str) -> object:
    from obslib.values import boolean, moment, positive_duration

    key, kind = parameter.name, parameter.kind
    if parameter.reads is not None and text.strip():
        # a file as the person typing it means it: from their folder, not the kernel's
        # (the notebooks' folder, where `-p config team.yml` was not found)
        text = str(Path(text).absolute())
    if kind == "duration":
        positive_duration(text, f"parameter {key}")
        return text
    if kind == "time":  # checked and written back as ISO 8601 UTC, which every reader parses
        if not text.strip() and parameter.optional:
            return ""  # the notebook's "empty: the latest stored span"
        return moment(text, f"parameter {key}").isoformat()
    try:
        if kind == "bool":
            return boolean(text)
        if kind == "float":
            return float(text)
        if kind == "int":
            return int(text)
    except ValueError:
        raise UsageError(f"parameter {key} must be {kind}, not {text!r}") from None
    return text


def prepare_out_dir(out_dir: Path) -> Path:
    """Create ``out_dir`` (with parents) and check it is a writable folder, before any run.

    A file in the way or a folder without write permission is bad input (UsageError).
    """
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UsageError(f"--out {out_dir}: exists and is not a folder") from None
    except NotADirectoryError:
        raise UsageError(f"--out {out_dir}: a part of the path is a file, not a folder") from None
    except OSError as err:
        raise UsageError(f"--out {out_dir}: cannot create it: {err.strerror}") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out_dir}: no permission to write in this folder")
    return out_dir


def run_report(
    name: str,
    parameters: dict[str, object],
    out_dir: Path,
    *,
    database_url: str | None = None,
    kernel: WarmKernel | None = None,
    evidence: Evidence | None = None,
) -> Report:
    """Execute report ``name``'s notebook with ``parameters``: see ``run_notebook``."""
    source = _notebook(name)
    return run_notebook(
        source,
        parameters,
        out_dir,
        report=name,
        database_url=database_url,
        kernel=kernel,
        evidence=evidence,
    )


def run_notebook(
    source: Path,
    parameters: dict[str, object],
    out_dir: Path,
    *,
    report: str | None = None,
    database_url: str | None = None,
    kernel: WarmKernel | None = None,
    evidence: Evidence | None = None,
) -> Report:
    """Execute ``source`` with ``parameters`` and write ``.ipynb`` + ``.html`` (+ ``.md``).

    ``report`` names the report the notebook is (its header then knows which parameters are
    times); a runbook is any notebook. ``database_url`` (default: $OBSLIB_DATABASE_URL)
    reaches the kernel through its environment only, never as a parameter. On a failing
    cell the executed notebook is written with the error and ReportFailed names the cell;
    the HTML is not written. A cell whose metadata names ``obslib.markdown`` (a file name)
    has its Markdown output written to that file beside the HTML.

    ``kernel``: a WarmKernel started ahead in ``source``'s folder (with the same database
    URL), which this run uses up; without one, or with one that is used or dead, papermill
    starts a kernel of its own, as the same run would otherwise.

    ``evidence``: record the run's loader calls into a bundle (``bundle_files.Recording``,
    written once the report is) or answer them from one (``Replaying``: its header says
    so); see ``obslib.load.bundle``. Used as a context manager by the caller, which throws
    a bundle away when the run fails.
    """
    import papermill
    from nbclient.exceptions import DeadKernelError

    source = Path(source)
    out_dir = prepare_out_dir(out_dir)
    stem = source.stem
    executed = out_dir / f"{stem}.ipynb"
    params = {**parameters, REPORT_MODE.name: True}
    spec, env = _report_kernel(database_url)
    warm = {"km": kernel.claim()} if kernel is not None and kernel.fits(source, env) else {}
    recorded = evidence.header if evidence is not None else None
    if evidence is not None and not evidence.replaying:  # before the kernel reads them
        evidence.keep_inputs(input_files(report, parameters, source.parent))
    with _environment(env), _ipc_kernel() as config:
        # the header's facts (the data's end, the archived days) are database reads: made
        # while the cells run, not after them (a re-run from a bundle has them recorded)
        facts = None
        if not recorded:
            facts = _in_background(_header_facts, report or source, parameters, database_url)
        try:
            papermill.execute_notebook(
                str(source if evidence is None else evidence.prepare(source)),
                str(executed),
                parameters=params,
                kernel_name=spec.name,
                engine_name=_engine(),
                config=config,
                cwd=str(source.parent),
                progress_bar=False,
                log_output=False,
                **warm,
            )
        except papermill.PapermillExecutionError as err:
            raise ReportFailed(
                source.name, err.exec_count, err.ename, err.evalue, str(executed)
            ) from err
        except DeadKernelError as err:  # the kernel process ended: no cell error to name
            raise ReportFailed(
                source.name, None, "DeadKernelError", "the kernel died", str(executed)
            ) from err
        finally:
            if executed.exists():
                if evidence is not None:
                    evidence.unhook(executed)
                scrub_outputs(executed)
        if recorded:
            data_end, archived = recorded.data_end, recorded.archived
        else:
            data_end, archived = facts.result()  # read in this environment
    archived = add_header(
        executed,
        report or source,
        parameters,
        data_end=data_end,
        archived=archived,
        **({"rerun": recorded.rerun} if recorded else {}),
    )
    html = out_dir / f"{stem}.html"
    html.write_text(to_offline_html(executed), encoding="utf-8")
    result = Report(executed, html, write_markdown(executed, out_dir))
    if evidence is not None:
        outputs = [result.notebook, result.html, result.markdown]
        bundle = evidence.finish(outputs, report, parameters, data_end, archived)
        result = dataclasses.replace(result, bundle=bundle)
    return result


def _in_background(function: Callable, *args: object) -> Future:
    """``function(*args)`` started in a thread of its own; its future."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="obslib-background")
    try:
        return pool.submit(function, *args)
    finally:
        pool.shutdown(wait=False)  # the thread ends with its one task


def _header_facts(
    name: str | Path, parameters: dict[str, object], url: str | None
) -> tuple[pd.Timestamp | None, str]:
    """What the header needs from the database: ``_data_end`` and ``_archived_days``."""
    data_end = _data_end(name, parameters, url)
    return data_end, _archived_days(name, parameters, data_end, url)


@functools.cache
def _engine() -> str:
    """The papermill engine reports run with, registered once: nbclient's (papermill's
    default), but the executed notebook is written once, when the run ends (failed or
    not, the kernel dead too), instead of before and after every cell: 50 writes of the
    postmortem cost ~0.5 s of a 4 s report. Nobody reads a report's notebook mid-run."""
    from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines

    class SavedAtTheEnd(NotebookExecutionManager):
        def save(self, **kwargs: object) -> None:  # per cell: not written
            return None

        def notebook_complete(self, **kwargs: object) -> None:
            super().notebook_complete(**kwargs)
            NotebookExecutionManager.save(self)

    class Engine(NBClientEngine):
        @classmethod
        def execute_notebook(  # papermill's Engine.execute_notebook, with SavedAtTheEnd
            cls,
            nb: object,
            kernel_name: str,
            output_path: str | None = None,
            progress_bar: bool = True,
            log_output: bool = False,
            autosave_cell_every: int = 30,
            **kwargs: object,
        ) -> object:
            nb_man = SavedAtTheEnd(
                nb,
                output_path=output_path,
                progress_bar=progress_bar,
                log_output=log_output,
                autosave_cell_every=autosave_cell_every,
            )
            nb_man.notebook_start()
            try:
                cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
            finally:
                nb_man.cleanup_pbar()
                nb_man.notebook_complete()
            return nb_man.nb

    papermill_engines.register("obslib", Engine)
    return "obslib"


def write_markdown(notebook: Path, out_dir: Path) -> Path | None:
    """Write the Markdown output of the cell whose metadata names ``obslib.markdown``.

    The notebook computes the document once; the runner only copies it out, so the HTML and
    the Markdown always state the same facts. The name must be a plain ``*.md`` file name.
    """
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    for cell in nb.cells:
        target = cell.get("metadata", {}).get("obslib", {}).get("markdown")
        if not target:
            continue
        if Path(target).name != target or not target.endswith(".md"):
            raise UsageError(f"{notebook.name}: markdown target {target!r} is not a .md file name")
        texts = [
            out["data"]["text/markdown"]
            for out in cell.get("outputs", [])
            if "text/markdown" in out.get("data", {})
        ]
        if texts:
            path = out_dir / target
            path.write_text("\n\n".join(texts).rstrip() + "\n", encoding="utf-8")
            return path
    return None


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the kernel this process starts (the database URL, where
    Jupyter finds the kernel spec), then restore them."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@contextmanager
def _ipc_kernel() -> Iterator[object]:
    """Configuration that makes the kernel talk over Unix sockets in a private folder.

    Over TCP anyone on the machine who finds the ports can talk to the kernel (ipykernel
    warns about it on every start); IPC sockets in a mode-700 folder are this user's only.
    """
    with tempfile.TemporaryDirectory(prefix="obslib-kernel-") as folder:
        yield _ipc_config(Path(folder))


def _report_kernel(database_url: str | None) -> tuple[Kernel, dict[str, str]]:
    """The headless kernel spec reports run on and its environment, with ``database_url``
    when given (else the kernel inherits this process's)."""
    spec = kernel_name(headless=True)
    return spec, {**spec.env, **({ENV_DATABASE_URL: database_url} if database_url else {})}


def _ipc_config(folder: Path) -> object:
    """Kernel manager configuration: IPC sockets in ``folder`` (see ``_ipc_kernel``)."""
    from traitlets.config import Config

    return Config({"KernelManager": {"transport": "ipc", "ip": str(folder / "k")}})


def warm_up() -> None:
    """What a WarmKernel runs before its notebook: the imports of every report's first cell
    (obslib, its views, the chart renderer), and vl-convert's engine started in a background
    thread (``charts.render.warm_engine``: it starts on the first drawing). Nothing it does
    shows in a notebook: the renderer is not chosen here (the notebook's cell chooses it)
    and no name is left in the kernel's namespace (it runs as
    ``__import__("obslib.reports").reports.warm_up()``)."""
    import obslib.charts.render
    import obslib.views

    obslib.charts.render.warm_engine()
    record = os.environ.get(ENV_SPARE_RECORD)
    if record:  # a spare left for the next report: it ends itself after its idle time
        _expire_unclaimed(Path(record), float(os.environ.get(ENV_SPARE_IDLE) or SPARE_IDLE_S))


# the kernel's startup line (IPython's exec_lines: run before the kernel answers, in no
# cell, with no execution count and no history)
_WARM_UP = '__import__("obslib.reports").reports.warm_up()'


# Spare kernels: a warm kernel left behind for the next `obslib report` (issue 23: a report
# in under 4 s cannot pay for a kernel of its own; `bench/report.py` prints that floor).
ENV_SPARE_RECORD = "OBSLIB_SPARE_KERNEL"  # in a spare's environment: the record naming it
ENV_SPARE_IDLE = "OBSLIB_SPARE_IDLE"  # in a spare's environment: seconds it waits unclaimed
SPARE_IDLE_S = 1800.0
# The environment a spare must share with the report that uses it, besides the kernel's own
# (the database URL among them): a spare warmed in a shell with another archive, home or
# PostgreSQL setting would answer from the wrong place. Compared by digest, never stored.
_SPARE_ENV_PREFIXES = ("OBSLIB_", "PG", "JUPYTER", "PYTHON", "LC_")
_SPARE_ENV_NAMES = ("PATH", "HOME", "TZ", "LANG")


def spare_folder() -> Path:
    """Where spare kernels are recorded (mode 700: a record points at a kernel's sockets and
    the folder holds its connection file, whose key lets anyone run code in it)."""
    return settings().home / "kernels"


def _spare_key(cwd: Path, env: dict[str, str]) -> str:
    """What a spare must match to be used: obslib's code as it is on disk (a spare imported
    the modules of its time), this Python, the notebooks' folder and the environment."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        stat = path.stat()
        digest.update(f"{path}:{stat.st_mtime_ns}:{stat.st_size}\n".encode())
    shared = {
        key: value
        for key, value in os.environ.items()
        if (key.startswith(_SPARE_ENV_PREFIXES) or key in _SPARE_ENV_NAMES)
        and key not in (ENV_SPARE_RECORD, ENV_SPARE_IDLE)
    }
    seen = [sys.executable, str(cwd), sorted({**shared, **env}.items())]
    digest.update(json.dumps(seen).encode())
    return digest.hexdigest()


def _expire_unclaimed(record: Path, idle: float) -> None:
    """In a spare kernel: every ``idle`` seconds, end the process if nobody claimed it (the
    claim renames the record away; renaming it here first wins the race against a late
    claim, which then finds no record and starts a kernel of its own)."""

    def watch() -> None:
        while True:
            time.sleep(idle)
            try:
                record.rename(record.with_suffix(".expired"))
            except OSError:  # claimed (its user kills this kernel) or looked at: wait on
                continue
            shutil.rmtree(record.with_suffix(""), ignore_errors=True)
            record.with_suffix(".expired").unlink(missing_ok=True)
            os._exit(0)

    threading.Thread(target=watch, name="obslib-spare-expiry", daemon=True).start()


def _kernel_alive(pid: int, connection_file: str) -> bool:
    """Whether ``pid`` still runs the kernel of ``connection_file`` (not a recycled pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process under a recycled pid
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.parent.exists():  # no /proc: the pid is the best we know
        return True
    try:
        return connection_file.encode() in cmdline.read_bytes()
    except OSError:
        return False


def _adopted_manager(pid: int, pgid: int, connection_file: str, client_class: str) -> object:
    """A kernel manager for a spare another process started: alive while its process is,
    interrupted and killed by signals to its process group (nbclient asks only these)."""
    from jupyter_client import KernelManager
    from jupyter_client.utils import run_sync

    class Adopted(KernelManager):
        @property
        def has_kernel(self) -> bool:
            return _kernel_alive(pid, connection_file)

        async def _async_is_alive(self) -> bool:
            return _kernel_alive(pid, connection_file)

        is_alive = run_sync(_async_is_alive)

        async def _async_interrupt_kernel(self) -> None:
            with suppress(OSError):
                os.killpg(pgid, signal.SIGINT)

        interrupt_kernel = run_sync(_async_interrupt_kernel)

        async def _async_shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
            with suppress(OSError):
                os.killpg(pgid, signal.SIGKILL)

        shutdown_kernel = run_sync(_async_shutdown_kernel)

    manager = Adopted(connection_file=connection_file, client_class=client_class)
    manager.load_connection_file()
    return manager


class WarmKernel:
    """A headless obslib kernel started ahead, in notebook folder ``cwd`` with the database
    URL in its environment, that imports obslib (``warm_up``) while nobody waits; one
    notebook run uses it (``run_notebook(kernel=...)``), ``close`` shuts it down. Never
    used twice: a run leaves its variables and its database connections in the kernel.

    ``Popen`` returns at once: the kernel warms in its own process; a run that comes early
    waits for the rest of its warm-up (papermill's wait for the kernel to be ready).

    ``spare_idle`` (seconds) makes a **spare**: a kernel that outlives this process (its own
    session, its output to a log file, no parent watch), recorded under ``spare_folder()``
    for the next ``obslib report`` to ``adopt``, and that ends itself after ``spare_idle``
    seconds unclaimed. Only a report with the same code, Python, folder and environment may
    adopt it (``_spare_key``); a report that used one leaves the next (``replace``).
    """

    _CLIENT = "jupyter_client.asynchronous.AsyncKernelClient"

    def __init__(
        self, cwd: Path, database_url: str | None = None, *, spare_idle: float | None = None
    ) -> None:
        from jupyter_client import KernelManager

        self.cwd = Path(cwd).resolve()
        spec, self.env = _report_kernel(database_url)
        self.spare_idle = spare_idle
        self._clients: list = []
        self._record: Path | None = None
        self.used = False
        extra: dict[str, str] = {}
        launch: dict[str, object] = {}
        log = None
        if spare_idle is None:
            self._folder: tempfile.TemporaryDirectory | None = tempfile.TemporaryDirectory(
                prefix="obslib-kernel-"
            )
            folder = Path(self._folder.name)
        else:
            self._folder = None
            home = spare_folder()
            home.mkdir(mode=0o700, parents=True, exist_ok=True)
            folder = Path(tempfile.mkdtemp(prefix="spare-", dir=home))  # mode 700
            self._record = folder.with_suffix(".json")
            extra = {ENV_SPARE_RECORD: str(self._record), ENV_SPARE_IDLE: str(spare_idle)}
            log = open(folder / "kernel.log", "ab")  # noqa: SIM115 (closed once it started)
            # not this process's terminal or pipe: a caller reading our output to its end
            # would wait for the spare to exit
            launch = {"stdin": subprocess.DEVNULL, "stdout": log, "stderr": log}
            launch["independent"] = True  # no watch on this process: it may end first
        self.connection_file = str(folder / "kernel.json")
        with _environment({**self.env, **extra}):
            saved_parent = os.environ.pop("JPY_PARENT_PID", None) if extra else None
            try:
                self.manager = KernelManager(
                    kernel_name=spec.name,
                    config=_ipc_config(folder),
                    connection_file=self.connection_file,
                    # nbclient's own managers are asynchronous: so are the clients made here
                    client_class=self._CLIENT,
                )
                self.manager.client = self._client  # type: ignore[method-assign]
                self.manager.start_kernel(
                    cwd=str(self.cwd),
                    extra_arguments=[f"--IPKernelApp.exec_lines={_WARM_UP}"],
                    **launch,
                )
            finally:
                if saved_parent is not None:
                    os.environ["JPY_PARENT_PID"] = saved_parent
                if log is not None:
                    log.close()  # the kernel has its own copy
        provisioner = self.manager.provisioner
        self.pid: int = provisioner.process.pid
        self.pgid: int | None = getattr(provisioner, "pgid", None)
        if self._record is not None:
            record = {
                "pid": self.pid,
                "pgid": self.pgid,
                "key": _spare_key(self.cwd, self.env),
                "connection_file": self.connection_file,
                "idle": spare_idle,
                "started": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            partial = folder.with_suffix(".part")
            partial.write_text(json.dumps(record), encoding="utf-8")
            partial.replace(self._record)  # whole or absent: an adopter never reads half

    @classmethod
    def adopt(cls, cwd: Path, database_url: str | None = None) -> WarmKernel | None:
        """A spare that fits a run in ``cwd`` with this environment, claimed for this
        process (a rename: two reports never get the same one), or None. Records of spares
        that died are removed on the way."""
        home = spare_folder()
        if not home.is_dir():
            return None
        _, env = _report_kernel(database_url)
        cwd = Path(cwd).resolve()
        key = _spare_key(cwd, env)
        for record in sorted(home.glob("spare-*.json")):
            with suppress(OSError, ValueError, KeyError, TypeError):  # not ours to use
                data = json.loads(record.read_text(encoding="utf-8"))
                alive = _kernel_alive(int(data["pid"]), data["connection_file"])
                if alive and data["key"] != key:
                    continue
                claimed = record.with_suffix(".claimed")
                record.rename(claimed)  # OSError: another process claimed it first
                if not alive:
                    _remove_spare(claimed)
                    continue
                try:
                    return cls._adopted(data, claimed, cwd, env)
                except Exception:  # not usable after all: put back for its idle time to end
                    claimed.rename(record)
        return None

    @classmethod
    def _adopted(cls, data: dict, claimed: Path, cwd: Path, env: dict[str, str]) -> WarmKernel:
        """The spare ``data`` names, claimed; its key matched folder ``cwd`` and kernel
        environment ``env``, which ``fits`` compares from then on, as for any kernel."""
        kernel = cls.__new__(cls)
        kernel.cwd = cwd
        kernel.env = env
        kernel.spare_idle = float(data["idle"])
        kernel._clients = []
        kernel._folder = None
        kernel._record = claimed
        kernel.used = False
        kernel.pid = int(data["pid"])
        kernel.pgid = data.get("pgid") or kernel.pid
        kernel.connection_file = data["connection_file"]
        kernel.manager = _adopted_manager(
            kernel.pid, kernel.pgid, kernel.connection_file, cls._CLIENT
        )
        kernel.manager.client = kernel._client  # type: ignore[method-assign]
        return kernel

    @property
    def adopted(self) -> bool:
        """Whether this kernel is a spare another process left (see ``adopt``)."""
        return self._record is not None and self._record.suffix == ".claimed"

    def release(self) -> None:
        """Give an adopted spare back unused, for the next report to adopt."""
        if not self.adopted or self.used or self._record is None:
            raise ValueError("only an unused adopted spare can be released")
        for client in self._clients:
            client.stop_channels()
        self._clients.clear()
        self._record = self._record.rename(self._record.with_suffix(".json"))

    def keep(self) -> Path:
        """Leave this spare running for the next report: the record naming it. The process
        that started it may end now."""
        if self._record is None:
            raise ValueError("only a spare (spare_idle given) can be kept")
        self._clients.clear()
        # jupyter_client removes a connection file it wrote when its manager is collected
        # (this process's exit): the spare's adopter needs it
        self.manager._connection_file_written = False
        return self._record

    def _client(self, **kwargs: object) -> object:
        """The manager's client(), remembered so ``close`` stops its channels (nbclient
        leaves a kernel it did not start running, with its client connected)."""
        from jupyter_client import KernelManager

        client = KernelManager.client(self.manager, **kwargs)
        self._clients.append(client)
        return client

    def fits(self, source: Path, env: dict[str, str]) -> bool:
        """Whether a run of ``source`` with kernel environment ``env`` may use this kernel:
        unused, alive, started in the notebook's folder with the same environment."""
        return (
            not self.used
            and Path(source).resolve().parent == self.cwd
            and env == self.env
            and self.manager.is_alive()
        )

    def claim(self) -> object:
        """The kernel manager, for one run; the kernel is used from then on."""
        self.used = True
        return self.manager

    def kill(self) -> None:
        """SIGKILL the kernel's process group (as jupyter_client's own kill does), safe from
        any thread: a signal, not the manager, which a run's thread may be using (a
        follower stops a draft in progress this way). ``close`` still cleans up after."""
        if not _kernel_alive(self.pid, self.connection_file):
            return
        with suppress(OSError):  # gone meanwhile
            if self.pgid:
                os.killpg(self.pgid, signal.SIGKILL)
            else:
                os.kill(self.pid, signal.SIGKILL)

    def close(self) -> None:
        """Kill the kernel and remove its sockets' folder (and a spare's record). Safe to
        call twice."""
        with suppress(Exception):  # a kernel already gone: nothing left to stop
            for client in self._clients:
                client.stop_channels()
            self._clients.clear()
            if self.adopted:
                self.kill()
            elif self.manager.has_kernel:
                # killed at once: a polite shutdown request waited ~1 s for the kernel to
                # wind down, and it holds nothing to save (a used one is thrown away, an
                # unused one has only imported obslib)
                self.manager.shutdown_kernel(now=True)
        self.used = True
        if self._folder is not None:
            self._folder.cleanup()
        elif self._record is not None:
            _remove_spare(self._record)

    def replace(self) -> WarmKernel | None:
        """After a run on an adopted spare: a new spare for the next report, with the same
        idle time, kept (None for a kernel that was not a spare)."""
        if not self.adopted or self.spare_idle is None:
            return None
        # in the notebooks' folder, the only one reports run in (the key required it)
        spare = WarmKernel(notebooks_dir(), spare_idle=self.spare_idle)
        spare.keep()
        return spare


def _remove_spare(record: Path) -> None:
    """Remove a spare's record and its folder (connection file, sockets, log)."""
    shutil.rmtree(record.with_suffix(""), ignore_errors=True)
    record.unlink(missing_ok=True)


def stop_spares() -> list[int]:
    """Kill every spare kernel recorded under ``spare_folder()`` (claimed ones belong to a
    running report, which kills its own); the pids stopped."""
    home = spare_folder()
    stopped: list[int] = []
    for record in sorted(home.glob("spare-*.json")) if home.is_dir() else []:
        with suppress(OSError, ValueError, KeyError, TypeError):
            data = json.loads(record.read_text(encoding="utf-8"))
            claimed = record.with_suffix(".claimed")
            record.rename(claimed)
            pid, connection_file = int(data["pid"]), data["connection_file"]
            if _kernel_alive(pid, connection_file):
                with suppress(OSError):
                    os.killpg(data.get("pgid") or pid, signal.SIGKILL)
                stopped.append(pid)
            _remove_spare(claimed)
    return stopped


def scrub_outputs(notebook: Path, url: str | None = None) -> None:
    """Mask the database URL's userinfo in every output of ``notebook`` (tracebacks too).

    obslib's own errors are scrubbed where they are raised; this catches whatever else a
    cell printed (a driver's error, a warning) before the notebook leaves this machine.
    """
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    changed = False
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            for key in ("text", "evalue"):
                if isinstance(out.get(key), str):
                    clean = scrub(out[key], url)
                    changed |= clean != out[key]
                    out[key] = clean
            if "traceback" in out:
                clean_tb = [scrub(line, url) for line in out["traceback"]]
                changed |= clean_tb != out["traceback"]
                out["traceback"] = clean_tb
            for mime, value in out.get("data", {}).items():
                if mime.startswith("text/") and isinstance(value, str):
                    clean = scrub(value, url)
                    changed |= clean != value
                    out["data"][mime] = clean
    if changed:
        nbformat.write(nb, str(notebook))


def _data_end(
    name: str | Path, parameters: dict[str, object], url: str | None = None
) -> pd.Timestamp | None:
    """Where a report whose ``end`` is left empty ends: ``load.data_end``, the instant its
    notebook reads up to (the minute after the latest stored span), so the header can give
    dates. None when the report has no empty ``end`` or the database cannot say (the
    notebook's own error then explains)."""
    values = {**_defaults(name), **parameters}
    if "end" not in values or str(values["end"] or "").strip():
        return None
    from obslib import load
    from obslib.errors import ObslibError

    try:
        return load.data_end(None, url=url)
    except (ObslibError, OSError):
        return None


def add_header(
    notebook: Path,
    name: str | Path,
    parameters: dict[str, object],
    *,
    data_end: pd.Timestamp | None = None,
    url: str | None = None,
    archived: str | None = None,
    rerun: str = "",
) -> str:
    """Put a header cell first in the executed notebook: title, parameters, data window,
    the days its loaders read from the Parquet archive, when and by which obslib it was
    generated. Never the database URL. ``data_end``: where a report with an empty ``end``
    ended (``_data_end``); ``url``: the report's database (default: the configured one).
    ``archived`` (default: asked of the catalog) and ``rerun``: a re-run from a bundle's
    recorded values. Returns the archived days' text."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    title = notebook.stem.replace("_", " ").capitalize()
    first = nb.cells[0] if nb.cells else None
    if first is not None and first.cell_type == "markdown":
        line, _, rest = first.source.partition("\n")
        if line.startswith("# "):  # the notebook's own title becomes the header's
            title = line[2:].strip()
            first.source = rest.lstrip("\n")
    if archived is None:
        archived = _archived_days(name, parameters, data_end, url)
    cell = nbformat.v4.new_markdown_cell(
        report_header(name, title, parameters, data_end=data_end, archived=archived, rerun=rerun)
    )
    cell.metadata["tags"] = [_HEADER_TAG]
    nb.cells.insert(0, cell)
    nbformat.write(nb, str(notebook))
    return archived


def report_header(
    name: str | Path,
    title: str,
    parameters: dict[str, object],
    now: datetime | None = None,
    *,
    data_end: pd.Timestamp | None = None,
    archived: str = "",
    rerun: str = "",
) -> str:
    """The header's markdown: what a reader who did not run the report needs first.
    ``archived``: which days of the window came from the Parquet archive (``obslib db
    retain``), a row of its own when there are any; ``rerun``: which evidence bundle a
    re-run's loaders answered from (``obslib report --from-bundle``), a row when set.

    Parameter values come from outside (an incident id from the database, ``-p`` on the
    command line): each is inline code only when it holds no backtick or ``|``, else
    escaped text (``obslib.escape.md_code``), so no value ends its code span or the table.
    """
    from obslib.escape import md_code, md_text

    values = {**_defaults(name), **parameters}
    values.pop(REPORT_MODE.name, None)
    shown = [
        md_code(f"{k} = {v!r}") + ("" if k in parameters else " (default)")
        for k, v in values.items()
    ]
    now = now or datetime.now(UTC)
    rows = [
        ("Parameters", ", ".join(shown) or "none"),
        ("Data window", md_text(_window(name, values, data_end))),
        *([("From the archive", md_text(archived))] if archived else []),
        *([("Re-run", md_text(rerun))] if rerun else []),
        ("Generated", f"{now:%Y-%m-%d %H:%M} UTC by obslib {version()}"),
    ]
    table = "\n".join(f"| **{k}** | {v} |" for k, v in rows)
    return f"# {title}\n\n| | |\n|---|---|\n{table}\n"


def _archived_days(
    name: str | Path,
    parameters: dict[str, object],
    data_end: pd.Timestamp | None,
    url: str | None = None,
) -> str:
    """The days of the report's window its loaders read from the Parquet archive, from the
    catalog (``obslib.load.archive``): "spans of 2026-11-01 .. 2026-11-03; logs of
    2026-11-02 (read from the Parquet archive)", or "" when none (or the database cannot
    say: the header never fails a report). An incident's window reaches back a day (the
    postmortem compares with the day before)."""
    from obslib.errors import ObslibError

    values = {**_defaults(name), **parameters}
    try:
        bounds = _window_bounds(name, values, data_end, url)
        if bounds is None:
            return ""
        from obslib.load import archive

        found = {t: [d.day for d in archive.cold_days(t, *bounds, url=url)] for t in archive.TABLES}
    except (ObslibError, OSError, ValueError):
        return ""
    parts = [f"{table} of {_day_runs(days)}" for table, days in found.items() if days]
    return "; ".join(parts) + " (read from the Parquet archive)" if parts else ""


def _day_runs(days: list) -> str:
    """Sorted dates as runs: "2026-11-01 .. 2026-11-03, 2026-11-05"."""
    from datetime import timedelta

    runs: list[list] = []
    for day in days:
        if runs and day - runs[-1][1] == timedelta(days=1):
            runs[-1][1] = day
        else:
            runs.append([day, day])
    return ", ".join(str(a) if a == b else f"{a} .. {b}" for a, b in runs)


def _window_bounds(
    name: str | Path, values: dict[str, object], data_end: pd.Timestamp | None, url: str | None
) -> tuple[datetime, datetime] | None:
    """The instants ``_window`` describes (None: not set); an incident's from its row."""
    import pandas as pd

    from obslib.values import duration, utc

    day, hour = pd.Timedelta(days=1), pd.Timedelta(hours=1)
    if INCIDENT_ID in values:
        if not values[INCIDENT_ID]:
            return None
        from obslib import load

        row = load.incident(str(values[INCIDENT_ID]), url=url)
        if row.empty:
            return None
        start = row["triggered_at"].iloc[0]
        end = row["resolved_at"].iloc[0]
        end = start + hour if pd.isna(end) else end
        return (start - hour - day).to_pydatetime(), (end + hour).to_pydatetime()
    times = [k for k in values if is_time_parameter(name, k)]
    start = next((values[k] for k in times if "start" in k), None)
    end = next((values[k] for k in times if "end" in k), None)
    if not end and data_end is not None and "end" in values:
        end = data_end
    if not end:
        return None
    hi = utc(str(end), "end")
    if start:
        lo = utc(str(start), "start")
    elif values.get("window"):
        lo = hi - duration(str(values["window"]))
    else:
        return None
    return lo.to_pydatetime(), hi.to_pydatetime()


def _defaults(name: str | Path) -> dict[str, object]:
    """A report's defaults from the registry; a runbook's from its parameters cell."""
    if isinstance(name, str):
        return report(name).defaults
    out: dict[str, object] = {}
    for key, spec in notebook_parameters(name).items():
        try:
            out[key] = ast.literal_eval(spec.get("default", "None"))
        except (ValueError, SyntaxError):
            out[key] = spec.get("default")
    return out


def _window(
    name: str | Path, values: dict[str, object], data_end: pd.Timestamp | None = None
) -> str:
    """``start .. end`` in UTC with the date stated once when both fall on one day; an empty
    ``end`` is ``data_end`` (where the data ended) when it is known."""
    from obslib.values import duration, duration_text, utc, window_text

    if INCIDENT_ID in values:  # a postmortem or a runbook: the incident sets the window
        return (
            "the incident: from an hour before its page to its resolution"
            " (or an hour after the page while it is open)"
        )
    times = [k for k in values if is_time_parameter(name, k)]
    start = next((values[k] for k in times if "start" in k), None)
    end = next((values[k] for k in times if "end" in k), None)
    if not end and data_end is not None and "end" in values:
        end = data_end
    if end and not start and values.get("window"):  # a window back from the end
        hi = utc(str(end), "end")
        length = duration(str(values["window"]))
        lo = hi - length
        return f"{lo:%Y-%m-%d %H:%M} .. {hi:%Y-%m-%d %H:%M} UTC ({window_text(length)})"
    if not (start and end):
        if "end" not in values:
            return "not set"
        back = f"the {values['window']} " if values.get("window") else ""
        return f"{back}up to the latest stored span"
    lo, hi = utc(str(start), "start"), utc(str(end), "end")
    if lo.normalize() == hi.normalize():
        return f"{lo:%Y-%m-%d %H:%M} .. {hi:%H:%M} UTC ({duration_text(hi - lo)})"
    return f"{lo:%Y-%m-%d %H:%M} .. {hi:%Y-%m-%d %H:%M} UTC ({duration_text(hi - lo)})"


# nbconvert's lab template with every block that loads a script from the network left empty:
# require.js (<script src>), MathJax and its configuration, Mermaid (a dormant
# `import("https://cdnjs…")` in a module script) and the widget manager (unpkg). Reports
# promise no remote script, not only no `<script src>`: the blocks go, not the tags after.
_OFFLINE_TEMPLATE = "obslib_offline.html.j2"
_OFFLINE_BLOCKS = (
    "html_head_js_requirejs",
    "html_head_js_mathjax",
    "html_head_js_mermaidjs",
    "jupyter_widgets",
)


def to_offline_html(notebook: Path) -> str:
    """HTML of an executed notebook without code, prompts or any remote script."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    body, _ = _offline_exporter().from_notebook_node(nb)
    return body


def load_machinery() -> None:
    """Import papermill and convert an empty notebook to HTML once: what a run needs once
    its kernel is ready and once its cells are done, loaded ahead (nbconvert compiles its
    templates on the first conversion; together ~5 s once per process on a busy machine).
    Safe beside a run: imports and the cached exporter are shared, each built once."""
    import nbformat

    _engine()  # papermill imported, the engine registered
    with tempfile.TemporaryDirectory(prefix="obslib-warm-") as folder:
        empty = Path(folder) / "empty.ipynb"
        nbformat.write(nbformat.v4.new_notebook(), str(empty))
        to_offline_html(empty)


def preload() -> threading.Thread:
    """``load_machinery`` in a background thread, started and returned: ``obslib report``
    loads it while its kernel warms."""
    thread = threading.Thread(target=load_machinery, name="obslib-preload", daemon=True)
    thread.start()
    return thread


@functools.cache
def _offline_exporter() -> object:
    """The HTML exporter, built once per process: its templates compile on the first
    conversion (half a second of each report otherwise, every time in a follower)."""
    import jinja2
    from nbconvert import HTMLExporter

    blocks = "".join(f"{{% block {b} %}}{{% endblock {b} %}}" for b in _OFFLINE_BLOCKS)
    template = f"{{%- extends 'lab/index.html.j2' -%}}{blocks}"
    return HTMLExporter(
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        extra_loaders=[jinja2.DictLoader({_OFFLINE_TEMPLATE: template})],
        template_file=_OFFLINE_TEMPLATE,
    )
