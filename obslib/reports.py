"""Headless reports: papermill runs a notebook, nbconvert turns it into offline HTML.

The kernel is this interpreter (a kernel spec written under OBSLIB_HOME), never whatever
``python3`` kernel the machine has. Charts render as inline SVG and the HTML keeps no
remote ``<script src>``, so a report opens complete without a network. The database URL is
never a parameter: the kernel inherits OBSLIB_DATABASE_URL from the environment.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from obslib.config import ENV_DATABASE_URL, settings, shipped_dir, version
from obslib.errors import ReportFailed, UsageError
from obslib.redact import scrub
from obslib.traces.skew import check_max_skew_ms
from obslib.values import boolean, count, duration, moment, positive_duration, utc, window

logger = logging.getLogger(__name__)

KERNEL_NAME = "obslib"  # the kernel the notebooks are saved with

NOTEBOOKS = {
    "trace": "trace_investigation.ipynb",
    "slo": "slo_review.ipynb",
    "incident": "incident_postmortem.ipynb",
    "health": "observability_health.ipynb",
}
# Parameters that hold a moment, per notebook: checked with values.utc before a kernel starts,
# so `-p start notadate` is bad input (exit 2) rather than a failing cell. Only these: a name
# is no proof of a type (a `max_wait_time: float` is not a moment).
TIME_PARAMETERS = {
    "trace": ("start", "end"),
    "slo": ("end",),
    "health": ("end",),
}
# Time parameters that may be empty: the notebook then ends at the latest stored span.
OPTIONAL_TIMES = {
    "slo": ("end",),
    "health": ("end",),
}
# Parameters that hold a duration ("30d"), checked with values.duration the same way.
DURATION_PARAMETERS = {
    "slo": ("window",),
    "health": ("window",),
}
# Other values the notebooks refuse, checked up front by the function the notebook calls.
_VALUE_CHECKS: dict[str, dict[str, Callable[[object], object]]] = {
    "trace": {"max_skew_ms": check_max_skew_ms},
    "slo": {"min_events": lambda value: count(value, "parameter min_events")},
}
_HEADER_TAG = "obslib-report-header"
_SECRET_WORDS = ("url", "password", "dsn", "secret", "token")
_DATABASE_URL = re.compile(r"postgres(ql)?(\+\w+)?://", re.I)


@dataclass(frozen=True)
class Report:
    notebook: Path
    html: Path
    markdown: Path | None = None  # written when a cell of the notebook asks for it


def notebooks_dir() -> Path:
    """The notebooks: $OBSLIB_NOTEBOOKS_DIR, the wheel's copy, or the checkout's folder."""
    return shipped_dir("OBSLIB_NOTEBOOKS_DIR", "notebooks")


def kernel_name(*, headless: bool = False) -> str:
    """The ``obslib`` kernel spec, pointed at this interpreter and made visible to Jupyter
    through JUPYTER_PATH.

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
        os.environ["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(root), paths) if p)
    return name


def notebook_parameters(name: str | Path) -> dict[str, dict]:
    """The parameters a notebook declares (name -> papermill's description): a report's
    name, or the path of any notebook (a runbook)."""
    import papermill

    source = name if isinstance(name, Path) else _notebook(name)
    return papermill.inspect_notebook(str(source))


def _notebook(name: str) -> Path:
    if name not in NOTEBOOKS:
        raise UsageError(f"unknown report {name!r} (one of {', '.join(NOTEBOOKS)})")
    return notebooks_dir() / NOTEBOOKS[name]


def coerce_parameters(name: str, raw: dict[str, str]) -> dict[str, object]:
    """Turn CLI strings into the types the notebook's parameters declare; refuse unknowns."""
    declared = notebook_parameters(name)
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
        if key not in declared:
            raise UsageError(
                f"report {name!r} has no parameter {key!r} (it has: {', '.join(sorted(declared))})"
            )
        kind = declared[key].get("inferred_type_name", "str")
        if is_time_parameter(name, key):
            kind = "time"
        elif key in DURATION_PARAMETERS.get(name, ()):
            kind = "duration"
        out[key] = _convert(name, key, text, kind)
    check_parameters(name, out)
    return out


def check_parameters(name: str, given: dict[str, object]) -> None:
    """What the notebook's own first cells would refuse, refused before a kernel starts
    (UsageError, exit 2), by the same functions: a window whose end is not after its start
    (the notebook's defaults filling what was not given), a moment outside the times
    obslib holds, a negative or NaN skew limit, a negative minimum of events."""
    values = {**_defaults(name), **given}
    times = [k for k in TIME_PARAMETERS.get(name, ()) if str(values.get(k) or "").strip()]
    for key in times:
        moment(str(values[key]), f"parameter {key}")
    if "start" in times and "end" in times:
        window(str(values["start"]), str(values["end"]))
    for key, check in _VALUE_CHECKS.get(name, {}).items():
        if key in given:
            check(given[key])


def is_time_parameter(report: str | Path, key: str) -> bool:
    """Whether report ``report``'s parameter ``key`` holds a moment (a UTC time)."""
    return isinstance(report, str) and key in TIME_PARAMETERS.get(report, ())


def _convert(report: str, key: str, text: str, kind: str) -> object:
    if kind == "duration":
        positive_duration(text, f"parameter {key}")
        return text
    if kind == "time":  # checked and written back as ISO 8601 UTC, which every reader parses
        if not text.strip() and key in OPTIONAL_TIMES.get(report, ()):
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
    name: str, parameters: dict[str, object], out_dir: Path, *, database_url: str | None = None
) -> Report:
    """Execute report ``name``'s notebook with ``parameters``: see ``run_notebook``."""
    source = _notebook(name)
    return run_notebook(source, parameters, out_dir, report=name, database_url=database_url)


def run_notebook(
    source: Path,
    parameters: dict[str, object],
    out_dir: Path,
    *,
    report: str | None = None,
    database_url: str | None = None,
) -> Report:
    """Execute ``source`` with ``parameters`` and write ``.ipynb`` + ``.html`` (+ ``.md``).

    ``report`` names the report the notebook is (its header then knows which parameters are
    times); a runbook is any notebook. ``database_url`` (default: $OBSLIB_DATABASE_URL)
    reaches the kernel through its environment only, never as a parameter. On a failing
    cell the executed notebook is written with the error and ReportFailed names the cell;
    the HTML is not written. A cell whose metadata names ``obslib.markdown`` (a file name)
    has its Markdown output written to that file beside the HTML.
    """
    import papermill
    from nbclient.exceptions import DeadKernelError

    source = Path(source)
    out_dir = prepare_out_dir(out_dir)
    stem = source.stem
    executed = out_dir / f"{stem}.ipynb"
    params = {**parameters, "report_mode": True}
    env = {ENV_DATABASE_URL: database_url} if database_url else {}
    with _environment(env), _ipc_kernel() as config:
        try:
            papermill.execute_notebook(
                str(source),
                str(executed),
                parameters=params,
                kernel_name=kernel_name(headless=True),
                config=config,
                cwd=str(source.parent),
                progress_bar=False,
                log_output=False,
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
                scrub_outputs(executed)
    add_header(executed, report or source, parameters)
    html = out_dir / f"{stem}.html"
    html.write_text(to_offline_html(executed), encoding="utf-8")
    return Report(executed, html, write_markdown(executed, out_dir))


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
    """Set environment variables for the kernel this process starts, then restore them."""
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
    from traitlets.config import Config

    with tempfile.TemporaryDirectory(prefix="obslib-kernel-") as folder:
        yield Config({"KernelManager": {"transport": "ipc", "ip": str(Path(folder) / "k")}})


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


def add_header(notebook: Path, name: str | Path, parameters: dict[str, object]) -> None:
    """Put a header cell first in the executed notebook: title, parameters, data window,
    when and by which obslib it was generated. Never the database URL."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    title = notebook.stem.replace("_", " ").capitalize()
    first = nb.cells[0] if nb.cells else None
    if first is not None and first.cell_type == "markdown":
        line, _, rest = first.source.partition("\n")
        if line.startswith("# "):  # the notebook's own title becomes the header's
            title = line[2:].strip()
            first.source = rest.lstrip("\n")
    cell = nbformat.v4.new_markdown_cell(report_header(name, title, parameters))
    cell.metadata["tags"] = [_HEADER_TAG]
    nb.cells.insert(0, cell)
    nbformat.write(nb, str(notebook))


def report_header(
    name: str | Path, title: str, parameters: dict[str, object], now: datetime | None = None
) -> str:
    """The header's markdown: what a reader who did not run the report needs first.

    Parameter values come from outside (an incident id from the database, ``-p`` on the
    command line): each is inline code only when it holds no backtick or ``|``, else
    escaped text (``obslib.escape.md_code``), so no value ends its code span or the table.
    """
    from obslib.escape import md_code, md_text

    values = {**_defaults(name), **parameters}
    values.pop("report_mode", None)
    shown = [
        md_code(f"{k} = {v!r}") + ("" if k in parameters else " (default)")
        for k, v in values.items()
    ]
    now = now or datetime.now(UTC)
    rows = [
        ("Parameters", ", ".join(shown) or "none"),
        ("Data window", md_text(_window(name, values))),
        ("Generated", f"{now:%Y-%m-%d %H:%M} UTC by obslib {version()}"),
    ]
    table = "\n".join(f"| **{k}** | {v} |" for k, v in rows)
    return f"# {title}\n\n| | |\n|---|---|\n{table}\n"


def _defaults(name: str | Path) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, spec in notebook_parameters(name).items():
        try:
            out[key] = ast.literal_eval(spec.get("default", "None"))
        except (ValueError, SyntaxError):
            out[key] = spec.get("default")
    return out


def _window(name: str | Path, values: dict[str, object]) -> str:
    """``start .. end`` in UTC with the date stated once when both fall on one day."""
    if "incident_id" in values:  # a postmortem or a runbook: the incident sets the window
        return (
            "the incident: from an hour before its page to its resolution"
            " (or an hour after the page while it is open)"
        )
    times = [k for k in values if is_time_parameter(name, k)]
    start = next((values[k] for k in times if "start" in k), None)
    end = next((values[k] for k in times if "end" in k), None)
    if end and not start and values.get("window"):  # a window back from the end
        hi = utc(str(end), "end")
        lo = hi - duration(str(values["window"]))
        return f"{lo:%Y-%m-%d %H:%M} .. {hi:%Y-%m-%d %H:%M} UTC ({values['window']})"
    if not (start and end):
        if "end" not in values:
            return "not set"
        back = f"the {values['window']} " if values.get("window") else ""
        return f"{back}up to the latest stored span"
    lo, hi = utc(str(start), "start"), utc(str(end), "end")
    if lo.normalize() == hi.normalize():
        return f"{lo:%Y-%m-%d %H:%M} .. {hi:%H:%M} UTC ({_span(hi - lo)})"
    return f"{lo:%Y-%m-%d %H:%M} .. {hi:%Y-%m-%d %H:%M} UTC ({_span(hi - lo)})"


def _span(delta: pd.Timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if abs(minutes) < 120:
        return f"{minutes} min"
    return f"{delta.total_seconds() / 3600:.1f} h"


_REMOTE_SCRIPT = re.compile(r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>", re.I)
_MATHJAX_CONFIG = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)


def to_offline_html(notebook: Path) -> str:
    """HTML of an executed notebook without code, prompts or any remote script."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True
    )
    body, _ = exporter.from_notebook_node(nbformat.read(str(notebook), as_version=4))
    body = _MATHJAX_CONFIG.sub("", body)
    return _REMOTE_SCRIPT.sub("", body)
