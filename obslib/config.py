"""Settings from the environment: where the database is and where obslib keeps its files."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from obslib.errors import ObslibError
from obslib.redact import ENV_DATABASE_URL

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
        import platformdirs

        home = platformdirs.user_data_path("obslib")
    return Settings(database_url=url, home=home.absolute())


def version() -> str:
    """obslib's version, from the installed package's metadata (pyproject's one number).

    Read as importlib.metadata.version reads it (the ``Version:`` line of the first
    ``obslib-*.dist-info/METADATA`` along sys.path), without importing importlib.metadata:
    its email parser, zipfile and importlib.resources were a third of `obslib --help`'s
    start (tests/test_package.py compares the two).
    """
    for entry in sys.path:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:  # a zip, a folder that is gone
            continue
        for name in names:
            if not (name.startswith("obslib-") and name.endswith(".dist-info")):
                continue
            try:
                lines = Path(entry or ".", name, "METADATA").read_text("utf-8").splitlines()
            except OSError:
                continue
            for line in lines:
                if line.startswith("Version:"):
                    return line.partition(":")[2].strip()
    return "0+unknown"  # a source tree on sys.path, never installed
