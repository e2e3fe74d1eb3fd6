"""One error hierarchy: every failure a user can cause or meet is an ObslibError."""

from __future__ import annotations


class ObslibError(Exception):
    """Root of obslib's errors; the CLI prints its message on one line.

    ``exit_code`` follows the CLI contract: 2 for bad usage or input the user can fix,
    1 for a failure of the operation itself.
    """

    exit_code = 1


class UsageError(ObslibError):
    """Invalid arguments or parameters."""

    exit_code = 2


class DatabaseUnreachable(ObslibError):
    """The configured PostgreSQL server cannot be reached (wrong host, port or credentials)."""

    exit_code = 2

    def __init__(self, host: str, port: str, reason: str) -> None:
        self.host, self.port, self.reason = host, port, reason
        super().__init__(f"cannot reach PostgreSQL at {host}:{port}: {reason}")


class EmbeddedServerError(ObslibError):
    """The embedded PostgreSQL server could not be started or stopped."""


class MigrationError(ObslibError):
    """A migration file could not be applied; the state is left dirty."""

    def __init__(self, message: str, *, file: str | None = None, statement: int | None = None):
        self.file, self.statement = file, statement
        super().__init__(message)


class ChecksumMismatch(MigrationError):
    """An applied migration file has changed on disk since it was applied."""


class DirtyDatabase(MigrationError):
    """A previous migration failed part-way; a person must repair and `db force` it."""


class InputError(ObslibError):
    """Input data (a file, a frame, an id) is malformed; the message says what and where."""

    exit_code = 2
