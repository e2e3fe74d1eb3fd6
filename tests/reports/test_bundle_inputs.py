"""What a bundle holds besides the loaders' rows, and what a re-run says it did differently:
the health report's alertmanager.yml (its ``config``, or obslib's own) kept in the bundle and
read from there by ``--from-bundle``; a parameter a re-run forces off named in its header; a
failed run leaves no bundle, whole or half."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from obslib import reports
from obslib.load import bundle_files
from obslib.load._bundle_codec import BundleError, file_sha256
from tests.conftest import run_cli
from tests.reports.test_bundle import nowhere

STEM = "observability_health"
DEFAULT = Path(reports.__file__).parent / "alerts" / "default_alertmanager.yml"
# a team's route: the default's, grouped by severity too (a report of its own)
TEAM = DEFAULT.read_text().replace("group_by: [service]", "group_by: [service, severity]")
BROKEN = "route:\n  receiver: nobody\nreceivers: []\n"  # the notebook refuses it in a cell


def cells(notebook: Path) -> list:
    return nbformat.read(str(notebook), as_version=4).cells


@pytest.fixture(scope="module")
def health(demo_db, tmp_path_factory) -> tuple[Path, Path, Path]:
    """The health report run on the demo with ``-p config team.yml --bundle``, team.yml then
    broken on disk, and the report re-run from its bundle with the database pointing
    nowhere: (team.yml, the recorded --out, the re-run's --out)."""
    url, _ = demo_db
    root = tmp_path_factory.mktemp("health")
    team = root / "team.yml"
    team.write_text(TEAM)
    out, again = root / "recorded", root / "rerun"
    result = run_cli(
        "report", "health", "-p", "config", str(team), "--bundle", "--out", str(out),
        env={"OBSLIB_DATABASE_URL": url}, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    team.write_text(BROKEN)  # what the re-run must not read
    result = run_cli(
        "report", "--from-bundle", str(out / f"{STEM}.bundle"), "--out", str(again),
        env=nowhere(), timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return team, out, again


def test_the_alertmanager_yml_the_report_read_is_in_its_bundle(health) -> None:
    """inputs/config/team.yml, as it was when the report ran, hashed in the manifest."""
    team, out, _ = health
    folder = out / f"{STEM}.bundle"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["inputs"] == {"config": {"file": "inputs/config/team.yml", "given": str(team)}}
    copy = folder / "inputs/config/team.yml"
    assert copy.read_text() == TEAM
    assert manifest["files"]["inputs/config/team.yml"] == file_sha256(copy)
    assert run_cli("bundle", "verify", str(folder)).returncode == 0


def test_the_rerun_reads_the_bundles_copy_and_shows_the_same_tables(health) -> None:
    """The original file is broken since, yet the re-run's outputs equal the recorded
    run's; where the notebook names the file it read, its text does, with the copy's name
    (the HTML table around it is as wide as the name); its header says which copy."""
    team, out, again = health
    copy = str((out / f"{STEM}.bundle" / "inputs/config/team.yml").resolve())
    first, second = cells(out / f"{STEM}.ipynb"), cells(again / f"{STEM}.ipynb")
    assert len(first) == len(second)
    named = 0
    for a, b in zip(first[1:], second[1:], strict=True):
        recorded, rerun = json.dumps(a.get("outputs")), json.dumps(b.get("outputs"))
        if str(team) not in recorded:
            assert rerun == recorded, a.source
            continue
        named += 1
        texts = [[o.get("data", {}).get("text/plain") for o in c.outputs] for c in (a, b)]
        assert json.dumps(texts[1]).replace(copy, "FILE") == json.dumps(texts[0]).replace(
            str(team), "FILE"
        )
    assert named == 1  # the replay's summary names the file it read
    header = second[0].source
    assert "config read from the bundle's copy inputs/config/team.yml" in header.replace("\\", "")
    assert f"recorded from {team}" in header.replace("\\", "")


def record_by_hand(tmp_path: Path, name: str, parameters: dict) -> Path:
    """A bundle written as ``run_notebook`` writes one, without a kernel: the inputs
    ``reports.input_files`` names kept, a notebook and its HTML as the report files."""
    notebook = tmp_path / "report.ipynb"
    cell = nbformat.v4.new_code_cell('window = "14d"')
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), str(notebook))
    with bundle_files.Recording(tmp_path / f"{name}.bundle") as recording:
        recording.prepare(notebook)
        recording.keep_inputs(reports.input_files(name, parameters, tmp_path))
        return recording.finish([notebook], name, parameters, None, "")


def test_without_a_config_the_bundle_keeps_obslibs_own(tmp_path) -> None:
    """A blank ``config``: the notebook reads obslib's default_alertmanager.yml, so the
    bundle holds it and a re-run reads that copy (not a later obslib's default)."""
    folder = record_by_hand(tmp_path, "health", {"window": "14d", "end": "", "config": ""})
    kept = folder / "inputs/config/default_alertmanager.yml"
    assert kept.read_bytes() == DEFAULT.read_bytes()
    with bundle_files.Replaying(folder) as replay:
        assert replay.parameters["config"] == str(kept)
        assert "recorded from obslib's default" in replay.header.rerun


def test_a_changed_input_refuses_the_rerun(tmp_path) -> None:
    folder = record_by_hand(tmp_path, "health", {"window": "14d", "end": "", "config": ""})
    (folder / "inputs/config/default_alertmanager.yml").write_text(BROKEN)
    said = "inputs/config/default_alertmanager.yml: SHA-256 does not match"
    with pytest.raises(BundleError, match=re.escape(said)):
        bundle_files.Replaying(folder)


def test_an_input_changed_while_the_report_ran_leaves_no_bundle(tmp_path) -> None:
    """The copy is taken before the kernel starts; a file different by the end may not be
    what the notebook read: refused, named, and nothing is left."""
    team = tmp_path / "team.yml"
    team.write_text(TEAM)
    notebook = tmp_path / "report.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), notebook)
    with bundle_files.Recording(tmp_path / "out" / "h.bundle") as recording:
        recording.prepare(notebook)
        recording.keep_inputs(reports.input_files("health", {"config": str(team)}, tmp_path))
        team.write_text(TEAM + "# edited\n")
        with pytest.raises(BundleError, match=f"{re.escape(str(team))}: changed while"):
            recording.finish([notebook], "health", {"config": str(team)}, None, "")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_an_input_too_large_to_keep_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(bundle_files, "INPUT_MAX_BYTES", 100)
    team = tmp_path / "team.yml"
    team.write_text(TEAM)
    with (
        bundle_files.Recording(tmp_path / "h.bundle") as recording,
        pytest.raises(BundleError, match=r"parameter config: .* too large to keep in a bundle"),
    ):
        recording.keep_inputs(reports.input_files("health", {"config": str(team)}, tmp_path))


@pytest.mark.parametrize(
    ("record", "said"),
    [(True, "record = True in the recorded run, False here (a re-run writes to no database)"),
     (False, None)],
    ids=["a recorded record=True is forced off and the header says so",
         "record=False needs no word"],
)  # fmt: skip
def test_a_rerun_names_the_parameter_it_forced_off(tmp_path, record, said) -> None:
    params = {"window": "30d", "end": "", "services": "", "record": record, "min_events": 10}
    folder = record_by_hand(tmp_path, "slo", params)
    with bundle_files.Replaying(folder) as replay:
        assert replay.parameters["record"] is False
        header = reports.report_header("slo", "SLO review", replay.parameters,
                                       rerun=replay.header.rerun)  # fmt: skip
    row = next(line for line in header.splitlines() if "Re-run" in line)
    if said is None:
        assert "recorded run," not in row
    else:
        assert said in row.replace("\\", "")


def test_a_failed_run_leaves_no_bundle(demo_db, tmp_path) -> None:
    """A config the notebook refuses in a cell: the report fails, naming the cell; its
    --out folder holds the failed notebook only, no bundle and no partial one."""
    url, _ = demo_db
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN)
    out = tmp_path / "out"
    result = run_cli(
        "report", "health", "-p", "config", str(broken), "--bundle", "--out", str(out),
        env={"OBSLIB_DATABASE_URL": url}, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1 and "undefined receiver 'nobody'" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"{STEM}.ipynb"]
