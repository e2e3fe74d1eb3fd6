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
ENV_CRITICAL_SERVICES = "OBSLIB_CRITICAL_SERVICES"

# The services the plan's quality gate "all critical services have defined SLOs" means for
# DomainFlow: the request path every user request takes. Override with a comma-separated
# OBSLIB_CRITICAL_SERVICES (an empty value means none are critical).
DEFAULT_CRITICAL_SERVICES = ("api-gateway", "auth-service", "domain-service")


def critical_services() -> tuple[str, ...]:
    """The services that must have an SLO: ``$OBSLIB_CRITICAL_SERVICES`` or the default."""
    raw = os.environ.get(ENV_CRITICAL_SERVICES)
    if raw is None:
        return DEFAULT_CRITICAL_SERVICES
    return tuple(dict.fromkeys(name.strip() for name in raw.split(",") if name.strip()))


@dataclass(frozen=True)
class Settings:
    """What obslib reads from the environment, resolved once per call site."""

    database_url: str | None
    home: Path

    @property
    def pgdata(self) -> Path:
        """Data directory of the embedded server (its socket lives inside when the path fits)."""
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
        # Run as root, the server runs as a `pgserver` user that must pass through every folder
        # above the data, and obslib opens none it did not create: /root (700) would stop it.
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
    (``postgresql://sre:s3cret PW@/db`` fails at ``"PW@/db"``): quoted text that is a piece
    of the URL overlapping its password is masked whole. The whole userinfo
    (``sre:s3cret PW``), the password, each 3+ character piece of it and a ``password=``
    query option are masked wherever they stand. A URL without a password has nothing to
    hide: its user name (``postgres`` for the embedded server) is also a service name in
    the demo, and masking it would garble reports. ``url`` defaults to
    ``$OBSLIB_DATABASE_URL``.
    """
    url = os.environ.get(ENV_DATABASE_URL, "") if url is None else url
    if not text or "://" not in url:
        return text
    spans = {form: _password_spans(form) for form in {url, unquote(url)}}
    passwords = [form[a:b] for form, found in spans.items() for a, b in found]
    if not passwords:
        return text
    text = _QUOTED.sub(lambda m: _mask_quoted(m.group(1), spans) or m.group(0), text)
    secrets = [
        url[:b].split("://", 1)[1]  # the userinfo up to the password's end
        for a, b in spans.get(url, [])
        if "@" in url[b:].split("?", 1)[0] + "@" and url[a - 1] == ":"
    ]
    for password in passwords:  # a 1-2 character password would garble every message
        secrets += [p for p in (password, *_FRAGMENT.findall(password)) if len(p) >= 3]
    for secret in sorted({s for s in secrets if len(s) >= 3}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _password_spans(url: str) -> list[tuple[int, int]]:
    """Where the passwords stand in ``url``: the userinfo's and any ``password=`` option's."""
    found = []
    start = url.find("://") + 3
    authority_end = len(url.split("?", 1)[0])
    at = url.rfind("@", start, authority_end)
    if at >= 0:
        colon = url.find(":", start, at)
        if 0 <= colon < at - 1:
            found.append((colon + 1, at))
    for match in _SECRET_QUERY.finditer(url):
        if match.group(2):
            found.append(match.span(2))
    return found


def _mask_quoted(quoted: str, spans: dict[str, list[tuple[int, int]]]) -> str | None:
    """``"***"`` when the quoted text is a piece of the URL that overlaps a password (a
    1-2 character piece only when it runs past the password's edge, as libpq's quotes do:
    ``"ok"`` inside the password ``brokenpw`` is a word, not a leak)."""
    if not quoted:
        return None
    for form, found in spans.items():
        at = form.find(quoted)
        while at >= 0:
            end = at + len(quoted)
            # overlapping a password; 1-2 characters only when they run past its edge
            if any(
                at < b and a < end and (len(quoted) >= 3 or at < a or end > b) for a, b in found
            ):
                return '"***"'
            at = form.find(quoted, at + 1)
    return None
