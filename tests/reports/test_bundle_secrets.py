"""A bundle is shared: the alertmanager.yml it keeps has its secrets masked as ``<secret>``
(``redact.alertmanager_secrets``, as Alertmanager shows its own config) and parses to the
same config, so a re-run replays the same; a config parameter naming something that is not
a regular file (a FIFO, a device such as ``/dev/zero``, a folder) is refused at once, never
read forever."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from obslib import reports
from obslib.alerts import amconfig
from obslib.errors import InputError
from obslib.load import bundle_files
from obslib.load._bundle_codec import BundleError
from obslib.redact import SECRET_PLACEHOLDER, alertmanager_secrets
from tests.reports.test_bundle_inputs import DEFAULT, record_by_hand

SECRETS = {  # where a team's alertmanager.yml keeps credentials -> the secret
    "global smtp_auth_password": "SMTP-PW-s3cr3t",
    "global slack_api_url": "https://hooks.slack.com/services/T0/B0/SLACK-TOKEN",
    "a webhook's url": "https://hook.example.org/alert?token=WEBHOOK-TOKEN",
    "an http_config basic_auth password": "BASIC-PW-777",
    "an authorization's credentials": "BEARER-CREDS-42",
    "a telegram bot_token": "123456:TELEGRAM-BOT-TOKEN",
    "a pagerduty routing_key": "PD-ROUTING-KEY",
    "an email auth_password": "EMAIL-PW-999",
    "a smarthost URL with a user and password": "smtp://am:URL-PW-1@smtp.example.org:587",
    "an http header's secrets": "HEADER-SECRET-5",
    "an integration newer than the list (its key ends in _token)": "NEW-INTEGRATION-TOKEN",
}
S = list(SECRETS.values())
TEAM = f"""# a team's config
global:
  resolve_timeout: 5m
  smtp_smarthost: '{S[8]}'
  smtp_auth_password: '{S[0]}'
  slack_api_url: '{S[1]}'
  slack_api_url_file: /etc/alertmanager/slack.url
route:
  receiver: on-call
  group_by: [service]
  group_wait: 30s
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      mute_time_intervals: [night]
receivers:
  - name: on-call
    webhook_configs:
      - url: '{S[2]}'
        send_resolved: true
        http_config:
          basic_auth: {{username: am, password: '{S[3]}'}}
          http_headers:
            X-Auth: {{secrets: ['{S[9]}']}}
    telegram_configs:
      - bot_token: '{S[5]}'
        chat_id: -1001
  - name: pager
    pagerduty_configs:
      - routing_key: '{S[6]}'
        http_config:
          authorization: {{credentials: '{S[4]}'}}
    email_configs:
      - to: sre@example.org
        auth_password: '{S[7]}'
    webex_configs:
      - room_id: sre-room
        access_token: '{S[10]}'
time_intervals:
  - name: night
    time_intervals:
      - times: [{{start_time: '00:00', end_time: '06:00'}}]
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity=~"high|medium|low"']
    equal: [service]
"""


@pytest.fixture
def team(tmp_path: Path) -> Path:
    path = tmp_path / "team.yml"
    path.write_text(TEAM)
    return path


@pytest.mark.parametrize("secret", S, ids=list(SECRETS))
def test_the_bundle_keeps_no_secret_of_the_config(tmp_path: Path, team: Path, secret) -> None:
    folder = record_by_hand(tmp_path, "health", {"window": "14d", "end": "", "config": str(team)})
    for file in folder.rglob("*"):
        if file.is_file():
            assert secret.encode() not in file.read_bytes(), f"{secret} is in {file.name}"
            for fragment in re.findall(r"[A-Z]+-[A-Z0-9-]+", secret):
                assert fragment.encode() not in file.read_bytes(), f"{fragment} in {file.name}"


def test_the_masked_copy_replays_the_same_config_and_says_so(tmp_path: Path, team: Path) -> None:
    """Routes, inhibit rules, time intervals and receivers' names as the original gives them;
    the manifest marks the copy masked and a re-run's header says it; paths and plain
    values (``*_file``, ``send_resolved``, ``chat_id``, ``to``) stay."""
    folder = record_by_hand(tmp_path, "health", {"window": "14d", "end": "", "config": str(team)})
    kept = folder / "inputs/config/team.yml"
    assert amconfig.read_config(kept) == amconfig.read_config(team).__class__(
        **{**amconfig.read_config(team).__dict__, "file": str(kept)}
    )
    text = kept.read_text()
    assert text.startswith("# obslib: team.yml as read, its 11 secret value(s) masked as <secret>")
    for plain in ("/etc/alertmanager/slack.url", "send_resolved: true", "chat_id: -1001",
                  "to: sre@example.org", "username: am", "room_id: sre-room"):  # fmt: skip
        assert plain in text
    with bundle_files.Replaying(folder) as replay:
        assert replay.manifest["inputs"]["config"]["masked"] is True
        assert f"recorded from {team}, its secrets masked)" in replay.header.rerun


def test_a_config_without_secrets_is_kept_byte_for_byte(tmp_path: Path) -> None:
    folder = record_by_hand(tmp_path, "health", {"window": "14d", "end": "", "config": ""})
    assert (folder / "inputs/config/default_alertmanager.yml").read_bytes() == DEFAULT.read_bytes()
    with bundle_files.Replaying(folder) as replay:
        assert "masked" not in replay.manifest["inputs"]["config"]


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"global": {"resolve_timeout": "5m", "smtp_auth_password": "pw"}},
         {"global": {"resolve_timeout": "5m", "smtp_auth_password": SECRET_PLACEHOLDER}}),
        ({"global": {"slack_api_url_file": "/run/secrets/slack"}},
         {"global": {"slack_api_url_file": "/run/secrets/slack"}}),
        ({"receivers": [{"name": "x", "webhook_configs": [{"url": "https://h/t",
                                                            "send_resolved": False}]}]},
         {"receivers": [{"name": "x", "webhook_configs": [{"url": SECRET_PLACEHOLDER,
                                                            "send_resolved": False}]}]}),
        ({"route": {"receiver": "password"}, "receivers": [{"name": "password"}]},
         {"route": {"receiver": "password"}, "receivers": [{"name": "password"}]}),
        ({"global": {"smtp_auth_password": ""}}, {"global": {"smtp_auth_password": ""}}),
    ],
    ids=["a global password is masked, a timeout kept", "a path to a secret is no secret",
         "a webhook url is masked, send_resolved kept",
         "a receiver named password is a name, not a secret", "an empty value hides nothing"],
)  # fmt: skip
def test_alertmanager_secrets_masks_secret_values_only(doc, expected) -> None:
    assert alertmanager_secrets(doc)[0] == expected


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.yml"
    os.mkfifo(path)
    return path


@pytest.fixture
def no_hang():
    """A regression would read a FIFO or /dev/zero forever: fail after 10 s instead."""

    def fail(*_):
        raise TimeoutError("still reading after 10 s")

    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("kind", ["a FIFO", "a device", "a folder"])
def test_a_config_that_is_not_a_regular_file_is_refused_at_once(
    tmp_path: Path, fifo: Path, no_hang, kind: str
) -> None:
    """Refused before a kernel starts by the bundle (BundleError naming the parameter) and
    by the notebook's own reader (InputError), neither waiting for a writer nor reading an
    endless device."""
    # a device: /dev/null, not /dev/zero, which a regression would read until memory ends
    path = {"a FIFO": fifo, "a device": Path("/dev/null"), "a folder": tmp_path}[kind]
    with (
        bundle_files.Recording(tmp_path / "out" / "h.bundle") as recording,
        pytest.raises(BundleError, match=f"parameter config: {re.escape(str(path))}"),
    ):
        recording.keep_inputs(reports.input_files("health", {"config": str(path)}, tmp_path))
    with pytest.raises(InputError, match=f"{re.escape(str(path))}: not a regular file"):
        amconfig.read_config(path)


def test_a_relative_config_is_the_callers_file(tmp_path: Path, team: Path, monkeypatch) -> None:
    """``-p config team.yml`` names the file in the caller's folder: the kernel runs in the
    notebooks' folder, where it was not found (a cell failed, exit 1). Blank stays blank
    (obslib's own)."""
    monkeypatch.chdir(tmp_path)
    assert reports.coerce_parameters("health", {"config": "team.yml"})["config"] == str(team)
    assert reports.coerce_parameters("health", {"config": ""})["config"] == ""


def test_a_manifest_naming_a_notebook_outside_the_bundle_runs_nothing(tmp_path: Path) -> None:
    """verify checks the files the manifest lists; a ``source`` that is not one of them (a
    notebook elsewhere on the machine) is refused before anything is copied or run."""
    import json

    folder = record_by_hand(tmp_path, "health", {"window": "14d", "end": "", "config": ""})
    outside = tmp_path / "evil.ipynb"
    outside.write_text("{}")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["source"] = "../evil.ipynb"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with (
        bundle_files.Replaying(folder) as replay,
        pytest.raises(BundleError, match="its notebook is not a file it holds"),
    ):
        replay.source_copy()
