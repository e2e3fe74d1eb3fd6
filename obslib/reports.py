"""Headless reports: papermill runs a notebook, nbconvert turns it into offline HTML.

The kernel is this interpreter (a kernel spec written under OBSLIB_HOME), never whatever
``python3`` kernel the machine has. Charts render as inline SVG and the HTML keeps no
remote ``<script src>``, so a report opens complete without a network. The database URL is
never a parameter: the kernel inherits OBSLIB_DATABASE_URL from the environment.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from obslib.config import settings, shipped_dir
from obslib.errors import ReportFailed, UsageError
from obslib.values import boolean

logger = logging.getLogger(__name__)

NOTEBOOKS = {
    "trace": "trace_investigation.ipynb",
}
_SECRET_WORDS = ("url", "password", "dsn", "secret", "token")
_DATABASE_URL = re.compile(r"postgres(ql)?(\+\w+)?://", re.I)


@dataclass(frozen=True)
class Report:
    notebook: Path
    html: Path


def notebooks_dir() -> Path:
    """The notebooks: $OBSLIB_NOTEBOOKS_DIR, the wheel's copy, or the checkout's folder."""
    return shipped_dir("OBSLIB_NOTEBOOKS_DIR", "notebooks")


def kernel_name() -> str:
    """A kernel spec for this interpreter, made visible to Jupyter through JUPYTER_PATH."""
    digest = hashlib.sha256(sys.executable.encode()).hexdigest()[:8]
    name = f"obslib-{digest}"
    root = settings().home / "jupyter"
    spec_dir = root / "kernels" / name
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"obslib ({sys.executable})",
        "language": "python",
    }
    spec_dir.mkdir(parents=True, exist_ok=True)
    target = spec_dir / "kernel.json"
    if not target.exists() or json.loads(target.read_text()) != spec:
        target.write_text(json.dumps(spec, indent=1))
    paths = os.environ.get("JUPYTER_PATH", "")
    if str(root) not in paths.split(os.pathsep):
        os.environ["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(root), paths) if p)
    return name


def notebook_parameters(name: str) -> dict[str, dict]:
    """The parameters a report's notebook declares (name -> papermill's description)."""
    import papermill

    return papermill.inspect_notebook(str(_notebook(name)))


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
        out[key] = _convert(key, text, kind)
    return out


def _convert(key: str, text: str, kind: str) -> object:
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


def run_report(name: str, parameters: dict[str, object], out_dir: Path) -> Report:
    """Execute the report's notebook with ``parameters`` and write ``.ipynb`` + ``.html``.

    On a failing cell the executed notebook is written with the error and ReportFailed
    names the cell; the HTML is not written.
    """
    import papermill

    source = _notebook(name)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = source.stem
    executed = out_dir / f"{stem}.ipynb"
    params = {**parameters, "report_mode": True}
    try:
        papermill.execute_notebook(
            str(source),
            str(executed),
            parameters=params,
            kernel_name=kernel_name(),
            cwd=str(source.parent),
            progress_bar=False,
            log_output=False,
        )
    except papermill.PapermillExecutionError as err:
        raise ReportFailed(
            source.name, err.exec_count, err.ename, err.evalue, str(executed)
        ) from err
    html = out_dir / f"{stem}.html"
    html.write_text(to_offline_html(executed), encoding="utf-8")
    return Report(executed, html)


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
