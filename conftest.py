"""Session hooks for the whole suite, tests and notebooks alike."""

from __future__ import annotations

import os

from obslib.config import ENV_DATABASE_URL
from tests.pg import POSTGRES


def pytest_collection_finish(session) -> None:
    """Notebooks run against the demo: make it before their kernels start, and let the
    kernels inherit its URL through the environment (never through a parameter)."""
    if any(str(item.path).endswith(".ipynb") for item in session.items):
        url, _ = POSTGRES.demo()
        os.environ[ENV_DATABASE_URL] = url


def pytest_sessionfinish(session, exitstatus) -> None:
    POSTGRES.close()
