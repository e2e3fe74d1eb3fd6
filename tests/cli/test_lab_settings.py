"""`obslib lab` starts JupyterLab with widget state saved in the notebook (issue 23), through
setting defaults in a folder under OBSLIB_HOME: read back here by the installed
jupyterlab_server, against the installed ipywidgets schema, as Lab reads them; the user's
own Jupyter folders and JUPYTER_CONFIG_PATH entries are left as they are."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from obslib.cli.reports import LAB_DEFAULTS, lab_command

PLUGIN = "@jupyter-widgets/jupyterlab-manager:plugin"
SCHEMA = (
    Path(sys.prefix)
    / "share/jupyter/labextensions/@jupyter-widgets/jupyterlab-manager/schemas"
    / "@jupyter-widgets/jupyterlab-manager/plugin.json"
)
URL = "postgresql://obslib@127.0.0.1:1/nowhere"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """OBSLIB_HOME and the user's Jupyter folders in ``tmp_path``, JUPYTER_CONFIG_PATH unset."""
    monkeypatch.setenv("OBSLIB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "user-config"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "user-data"))
    monkeypatch.delenv("JUPYTER_CONFIG_PATH", raising=False)
    monkeypatch.delenv("JUPYTERLAB_SETTINGS_DIR", raising=False)
    return tmp_path / "home"


def _defaults_lab_reads(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict:
    """The setting defaults jupyterlab_server gives Lab under ``env``'s JUPYTER_CONFIG_PATH
    (settings_utils._get_overrides, with an empty app settings folder)."""
    from jupyterlab_server.settings_utils import _get_overrides

    monkeypatch.setenv("JUPYTER_CONFIG_PATH", env["JUPYTER_CONFIG_PATH"])
    overrides, error = _get_overrides(str(Path(env["OBSLIB_HOME"]) / "no-app-settings"))
    assert error == ""
    return overrides


def test_lab_reads_save_state_on_as_the_widget_managers_default(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, env = lab_command([], URL)
    overrides = _defaults_lab_reads(env, monkeypatch)
    assert overrides[PLUGIN] == {"saveState": True}

    from jupyterlab_server.settings_utils import _override

    schema = json.loads(SCHEMA.read_text())
    assert schema["properties"]["saveState"]["default"] is False, "ipywidgets' own default"
    for key in LAB_DEFAULTS[PLUGIN]:
        assert key in schema["properties"], f"{key} is not a setting of {PLUGIN}"
    schema = _override(PLUGIN, schema, overrides)
    assert schema["properties"]["saveState"]["default"] is True


NOTIFICATION = "@jupyterlab/apputils-extension:notification"
NOTIFICATION_SCHEMA = (
    Path(sys.prefix) / "share/jupyter/lab/schemas/@jupyterlab/apputils-extension/notification.json"
)


def test_lab_reads_news_and_update_checks_off_as_its_defaults(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both make a request to a website when on (Lab's defaults: news asked on first start,
    updates checked); obslib's Lab starts with them off, and each key is a real setting."""
    from jupyterlab_server.settings_utils import _override

    _, env = lab_command([], URL)
    overrides = _defaults_lab_reads(env, monkeypatch)
    schema = json.loads(NOTIFICATION_SCHEMA.read_text())
    assert schema["properties"]["checkForUpdates"]["default"] is True, "Lab's own default"
    for key in LAB_DEFAULTS[NOTIFICATION]:
        assert key in schema["properties"], f"{key} is not a setting of {NOTIFICATION}"
    schema = _override(NOTIFICATION, schema, overrides)
    assert schema["properties"]["fetchNews"]["default"] == "false"
    assert schema["properties"]["checkForUpdates"]["default"] is False


def test_the_defaults_come_first_on_jupyter_config_path_and_keep_the_entries_there(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = os.pathsep.join(["/opt/site-jupyter", "/etc/more-jupyter"])
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", mine)
    _, env = lab_command([], URL)
    ours = str(home / "jupyter-config")
    assert env["JUPYTER_CONFIG_PATH"] == os.pathsep.join([ours, mine])
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", env["JUPYTER_CONFIG_PATH"])
    _, again = lab_command([], URL)  # `obslib lab` started from a shell obslib lab set up
    assert again["JUPYTER_CONFIG_PATH"] == env["JUPYTER_CONFIG_PATH"], "listed twice"


def test_only_obslib_home_is_written_and_the_users_arguments_pass_through(
    home: Path, tmp_path: Path
) -> None:
    command, env = lab_command(["--port=8899", "--no-browser"], URL)
    assert command[1:3] == ["-m", "jupyterlab"]
    root = ["--allow-root"] if os.geteuid() == 0 else []  # Lab refuses root without it
    assert command[-2 - len(root) :] == ["--port=8899", "--no-browser", *root]
    assert "--MappingKernelManager.default_kernel_name=obslib" in command
    assert env["OBSLIB_DATABASE_URL"] == URL
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["home"], f"written outside OBSLIB_HOME: {written}"
    target = home / "jupyter-config/labconfig/default_setting_overrides.json"
    assert json.loads(target.read_text()) == LAB_DEFAULTS
