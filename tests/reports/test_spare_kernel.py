"""Spare kernels: a warm kernel left running for the next ``obslib report``, used by one
report only, only by a report with the same code and environment, ending itself when
nobody uses it, and stopped by ``obslib kernel stop``."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import nbformat
import pytest

from obslib import reports
from tests.conftest import run_cli
from tests.reports.test_warm_kernel import namespace_probe


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purpose (the test process is not its parent, init reaps it)
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


def _wait_gone(pid: int, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A private OBSLIB_HOME (its spares folder is empty); every spare left in it is stopped
    after the test."""
    monkeypatch.setenv("OBSLIB_HOME", str(tmp_path / "home"))
    yield tmp_path / "home"
    reports.stop_spares()


@pytest.fixture
def probe(tmp_path) -> Path:
    """A notebook that prints its namespace and Altair's renderer."""
    return namespace_probe(tmp_path)


def _printed(result: reports.Report) -> str:
    return nbformat.read(str(result.notebook), 4).cells[-1].outputs[0]["text"]


def test_a_spare_is_adopted_once_and_runs_a_notebook_as_a_cold_kernel_would(
    home, probe, tmp_path
) -> None:
    spare = reports.WarmKernel(probe.parent, spare_idle=600)
    record = spare.keep()
    assert record.is_file() and json.loads(record.read_text())["pid"] == spare.pid
    assert oct(record.parent.stat().st_mode & 0o777) == "0o700"
    adopted = reports.WarmKernel.adopt(probe.parent)
    assert adopted is not None and adopted.adopted and adopted.pid == spare.pid
    assert reports.WarmKernel.adopt(probe.parent) is None, "two reports got one spare"
    try:
        hot = reports.run_notebook(probe, {"x": 1}, tmp_path / "warm", kernel=adopted)
        assert adopted.used
    finally:
        adopted.close()
    assert _wait_gone(spare.pid), "a used spare was left running"
    assert not list(reports.spare_folder().iterdir()), "a used spare left its files"
    cold = reports.run_notebook(probe, {"x": 1}, tmp_path / "cold")
    assert _printed(hot) == _printed(cold)


def test_a_spare_of_another_environment_or_folder_is_left_alone(
    home, probe, tmp_path, monkeypatch
) -> None:
    spare = reports.WarmKernel(probe.parent, spare_idle=600)
    spare.keep()
    assert reports.WarmKernel.adopt(tmp_path / "elsewhere") is None
    monkeypatch.setenv("OBSLIB_ARCHIVE", str(tmp_path / "another-archive"))
    assert reports.WarmKernel.adopt(probe.parent) is None
    assert _alive(spare.pid)
    monkeypatch.delenv("OBSLIB_ARCHIVE")
    assert reports.stop_spares() == [spare.pid]
    assert _wait_gone(spare.pid)
    assert reports.WarmKernel.adopt(probe.parent) is None


def test_a_spare_nobody_claims_ends_itself_after_its_idle_time(home, probe) -> None:
    spare = reports.WarmKernel(probe.parent, spare_idle=1.0)
    record = spare.keep()
    assert _wait_gone(spare.pid, 120), "an unclaimed spare outlived its idle time"
    assert not record.exists() and not record.with_suffix("").exists()


def test_a_claimed_spare_outlives_its_idle_time(home, probe, tmp_path) -> None:
    """The idle clock ends only a spare nobody claimed: one a report holds runs on."""
    spare = reports.WarmKernel(probe.parent, spare_idle=1.0)
    spare.keep()
    adopted = reports.WarmKernel.adopt(probe.parent)
    assert adopted is not None
    try:
        time.sleep(4)
        result = reports.run_notebook(probe, {"x": 2}, tmp_path / "late", kernel=adopted)
        assert "'x'" in _printed(result)
    finally:
        adopted.close()


def test_a_dead_spare_is_not_adopted_and_its_record_goes(home, probe) -> None:
    spare = reports.WarmKernel(probe.parent, spare_idle=600)
    record = spare.keep()
    spare.kill()
    assert _wait_gone(spare.pid)
    assert reports.WarmKernel.adopt(probe.parent) is None
    assert not record.exists()


def test_obslib_report_uses_the_spare_and_leaves_the_next(demo_db, tmp_path) -> None:
    """`obslib kernel warm`, then `obslib report`: the spare is used (its process ends) and
    a new one waits; the command's output pipe closes though a spare outlives it (the run
    returns); `obslib kernel stop` ends the new one."""
    url, _ = demo_db
    env = {"OBSLIB_DATABASE_URL": url, "OBSLIB_HOME": str(tmp_path / "home")}
    folder = tmp_path / "home" / "kernels"
    try:
        warm = run_cli("kernel", "warm", "--idle", "10min", env=env)
        assert warm.returncode == 0, warm.stderr
        assert "exits after 10 min unused" in warm.stdout
        spare = json.loads(next(folder.glob("spare-*.json")).read_text())
        first = spare["pid"]
        # there as the command returns: its process's exit does not take it away
        assert Path(spare["connection_file"]).is_file()
        again = run_cli("kernel", "warm", env=env)
        assert f"spare kernel pid {first} is ready already" in again.stdout
        done = run_cli("report", "incident", "--out", str(tmp_path / "out"), env=env, timeout=300)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "out" / "incident_postmortem.html").is_file()
        assert _wait_gone(first)
        (record,) = folder.glob("spare-*.json")
        second = json.loads(record.read_text())["pid"]
        assert second != first and _alive(second)
    finally:
        stopped = run_cli("kernel", "stop", env=env)
    assert stopped.stdout == "stopped 1 spare kernel\n"
    assert _wait_gone(second)


def test_kernel_warm_refuses_a_bad_idle_time(tmp_path) -> None:
    result = run_cli("kernel", "warm", "--idle", "soon", env={"OBSLIB_HOME": str(tmp_path)})
    assert result.returncode == 2
    assert "--idle must be a positive duration" in result.stderr
    assert not (tmp_path / "kernels").exists()
