"""Refresh the outputs nbval checks (cells marked ``# NBVAL_CHECK_OUTPUT``) and strip all
other outputs, by running each notebook on the test suite's demo database.

Run after changing the demo or a checked cell:
    python -m tests.refresh_notebook_outputs [NAME...]
(NAME: a notebook's file name without .ipynb, e.g. slo_review; none: every notebook).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbformat
import papermill

from obslib import reports
from obslib.config import ENV_DATABASE_URL
from tests.pg import POSTGRES, REPO

MARKER = "# NBVAL_CHECK_OUTPUT"


def refresh(path: Path) -> None:
    kernel = reports.kernel_name()
    os.environ.update(kernel.env)  # a script: where Jupyter finds obslib's kernel
    with tempfile.TemporaryDirectory() as tmp:
        executed = Path(tmp) / path.name
        papermill.execute_notebook(
            str(path),
            str(executed),
            kernel_name=kernel.name,
            cwd=str(path.parent),
            progress_bar=False,
        )
        ran = nbformat.read(str(executed), as_version=4)
    source = nbformat.read(str(path), as_version=4)
    ran_cells = [
        c
        for c in ran.cells
        if c.cell_type == "code" and "injected-parameters" not in c.metadata.get("tags", [])
    ]
    code_cells = [c for c in source.cells if c.cell_type == "code"]
    for cell, result in zip(code_cells, ran_cells, strict=True):
        if cell.source.lstrip().startswith(MARKER):
            cell.outputs = [o for o in result.outputs if o.output_type != "stream"]
            cell.execution_count = result.execution_count
        else:
            cell.outputs, cell.execution_count = [], None
    nbformat.write(source, str(path))
    print(f"refreshed {path}")


def main() -> int:
    try:
        url, _ = POSTGRES.demo()
        os.environ[ENV_DATABASE_URL] = url
        names = set(sys.argv[1:])
        for path in sorted((REPO / "notebooks").glob("*.ipynb")):
            if not names or path.stem in names:
                refresh(path)
    finally:
        POSTGRES.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
