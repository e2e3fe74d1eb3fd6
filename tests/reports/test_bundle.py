"""Evidence bundles end to end: the demo's postmortem run with --bundle, re-run from its
bundle with the database pointing nowhere, and the bundle checked file by file."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path

import nbformat
import pytest

from obslib.cli import build_parser
from obslib.jobs import triage
from tests.conftest import run_cli

STEM = "incident_postmortem"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nowhere() -> dict[str, str]:
    return {"OBSLIB_DATABASE_URL": f"postgresql://nobody:pw@127.0.0.1:{closed_port()}/gone"}


@pytest.fixture(scope="module")
def recorded(demo_db, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """`obslib report incident --bundle` on the demo: (its --out folder, the run)."""
    url, _ = demo_db
    out = tmp_path_factory.mktemp("bundled")
    result = run_cli(
        "report", "incident", "--bundle", "--out", str(out),
        env={"OBSLIB_DATABASE_URL": url}, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return out, result


@pytest.fixture(scope="module")
def rerun(recorded, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The same report re-run from its bundle, the database URL a closed loopback port."""
    out, _ = recorded
    again = tmp_path_factory.mktemp("rerun")
    result = run_cli(
        "report", "--from-bundle", str(out / f"{STEM}.bundle"), "--out", str(again),
        env=nowhere(), timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return again, result


def cells(notebook: Path) -> list:
    return nbformat.read(str(notebook), as_version=4).cells


def test_a_bundled_report_names_its_bundle_and_the_bundle_verifies(recorded) -> None:
    """The bundle sits beside the report, and `obslib bundle verify` finds every hash."""
    out, result = recorded
    folder = out / f"{STEM}.bundle"
    assert result.stdout.splitlines()[-1] == f"bundle    {folder}"
    check = run_cli("bundle", "verify", str(folder))
    assert check.returncode == 0, check.stdout + check.stderr
    assert "ok" in check.stdout
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no partial left


def test_the_rerun_shows_the_same_tables_and_numbers_with_no_database(recorded, rerun) -> None:
    """Every cell's outputs (tables, charts, the Markdown) equal the recorded run's; only the
    header differs."""
    out, _ = recorded
    again, _ = rerun
    first, second = cells(out / f"{STEM}.ipynb"), cells(again / f"{STEM}.ipynb")
    assert len(first) == len(second)
    assert [c.source for c in first[1:]] == [c.source for c in second[1:]]
    assert [c.get("outputs") for c in first[1:]] == [c.get("outputs") for c in second[1:]]
    assert (out / "postmortem.md").read_text() == (again / "postmortem.md").read_text()


def test_the_rerun_header_says_which_bundle_and_when_it_was_recorded(recorded, rerun) -> None:
    """The header keeps the recorded parameters and window and adds a Re-run row."""
    out, _ = recorded
    again, _ = rerun
    manifest = json.loads((out / f"{STEM}.bundle" / "manifest.json").read_text())
    header = cells(again / f"{STEM}.ipynb")[0].source
    recorded_at = manifest["generated"][:16].replace("T", " ")
    assert f"| **Re-run** | from the bundle {STEM}".replace("_", "\\_") in header
    assert f"recorded {recorded_at} UTC" in header and "no database was read" in header
    original = cells(out / f"{STEM}.ipynb")[0].source.splitlines()
    shown = [line for line in header.splitlines() if "Re-run" not in line]
    assert [x for x in original if "Generated" not in x] == [
        x for x in shown if "Generated" not in x
    ]


def test_the_bundle_holds_each_call_its_arguments_and_no_database_url(recorded, demo_db) -> None:
    """Each call: a JSON of its arguments beside its Parquet rows; the URL nowhere."""
    out, _ = recorded
    url, _ = demo_db
    folder = out / f"{STEM}.bundle"
    manifest = json.loads((folder / "manifest.json").read_text())
    functions = [json.loads((folder / c).read_text())["function"] for c in manifest["calls"]]
    assert {"incident", "spans", "logs", "slo_counts", "incident_evidence"} <= set(functions)
    for call in manifest["calls"]:
        entry = json.loads((folder / call).read_text())
        assert "url" not in entry["arguments"]
        for frame in entry["frames"]:
            assert (folder / frame).is_file()
    database = url.rsplit("/", 1)[1]
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix != ".parquet":
            text = path.read_text(encoding="utf-8")
            assert "postgresql://" not in text and database not in text, path
    assert manifest["report"] == "incident" and manifest["parameters"] == {}
    assert {f"{STEM}.ipynb", f"{STEM}.html", "postmortem.md", f"source/{STEM}.ipynb"} <= set(
        manifest["files"]
    )


TAMPERING = {
    "a changed Parquet file": ("changed", "SHA-256 does not match the manifest"),
    "a missing call": ("missing", "missing"),
    "a file added": ("added", "not in the manifest"),
}


@pytest.mark.parametrize("how, said", TAMPERING.values(), ids=TAMPERING.keys())
def test_a_tampered_bundle_is_named_by_verify_and_refused_by_a_rerun(
    recorded, tmp_path, how: str, said: str
) -> None:
    """verify: exit 1, the file named; --from-bundle: exit 2, one line, no kernel started."""
    out, _ = recorded
    folder = tmp_path / f"{STEM}.bundle"
    shutil.copytree(out / f"{STEM}.bundle", folder)
    target = sorted((folder / "calls").glob("*-spans.parquet"))[0]
    name = f"calls/{target.name}"
    if how == "changed":
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 1
        target.write_bytes(bytes(data))
    elif how == "missing":
        target.unlink()
    else:
        name = "calls/999-spans.parquet"
        (folder / name).write_bytes(b"rows nobody recorded")
    check = run_cli("bundle", "verify", str(folder))
    assert check.returncode == 1
    assert check.stdout.splitlines() == [f"{folder}: {name}: {said}"]
    again = run_cli(
        "report", "--from-bundle", str(folder), "--out", str(tmp_path / "r"), env=nowhere()
    )
    assert again.returncode == 2
    assert len(again.stderr.strip().splitlines()) == 1
    assert f"{name}: {said}" in again.stderr
    assert not (tmp_path / "r").exists()


BAD_RERUNS = {
    "a report name beside the bundle": (["incident"], "takes no NAME"),
    "a parameter beside the bundle": (["-p", "incident_id", "x"], "takes no -p"),
    "an output folder inside the bundle": (["--out", "{bundle}/out"], "inside the bundle"),
    "a folder that is no bundle": (["--from-bundle", "{tmp}"], "not a bundle"),
}


@pytest.mark.parametrize("extra, said", BAD_RERUNS.values(), ids=BAD_RERUNS.keys())
def test_a_bad_rerun_is_refused_in_one_line(recorded, tmp_path, extra, said) -> None:
    out, _ = recorded
    folder = str(out / f"{STEM}.bundle")
    args = [a.format(bundle=folder, tmp=tmp_path) for a in extra]
    if "--from-bundle" not in args:
        args = ["--from-bundle", folder, *args]
    result = run_cli("report", *args, env=nowhere())
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and said in result.stderr


def test_triage_drafts_write_a_bundle_unless_told_not_to(tmp_path) -> None:
    """Triage's default is a bundle beside each draft (STEM.bundle); --no-bundle is none."""
    parser = build_parser()
    assert parser.parse_args(["triage"]).bundle is True
    assert parser.parse_args(["triage", "--no-bundle"]).bundle is False
    source = Path(f"/notebooks/{STEM}.ipynb")
    with triage._evidence(False, tmp_path, source) as none:
        assert none is None
    with triage._evidence(True, tmp_path, source) as recording:
        assert recording.target == (tmp_path / f"{STEM}.bundle").resolve()
    assert list(tmp_path.iterdir()) == []  # not finished: nothing left
