"""One error hierarchy: every failure a user can cause or meet is an ObslibError."""

from __future__ import annotations

from obslib.redact import scrub


class ObslibError(Exception):
    """Root of obslib's errors; the CLI prints its message on one line.

    ``exit_code`` follows the CLI contract: 2 for bad usage or input the user can fix,
    1 for a failure of the operation itself.
    """

    exit_code = 1

    def __init__(self, *args: object) -> None:
        # Every message may carry driver text that quotes the database URL: scrub it here,
        # once, so no CLI line, log record or report kernel ever shows a password.
        super().__init__(*(scrub(a) if isinstance(a, str) else a for a in args))


class UsageError(ObslibError):
    """Invalid arguments or parameters."""

    exit_code = 2


class DatabaseError(ObslibError):
    """The database failed an operation that was valid (lost connection, disk full, a
    deadlock that retries did not clear): not the user's input, so exit 1."""


class DatabaseUnreachable(ObslibError):
    """The configured PostgreSQL server cannot be reached (wrong host, port or credentials)."""

    exit_code = 2

    def __init__(self, host: str, port: str, reason: str) -> None:
        self.host, self.port, self.reason = host, port, scrub(reason)
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


class ReportFailed(ObslibError):
    """A notebook cell failed; the executed notebook (with the error) was still written.

    Carries what papermill's error does, so callers need not parse the message: the cell's
    execution count, the exception's name and value, and the executed notebook's path.
    """

    def __init__(
        self, notebook: str, cell: int | None, ename: str, evalue: str, executed: str
    ) -> None:
        self.notebook, self.cell, self.ename = notebook, cell, ename
        self.evalue = scrub(evalue)  # the kernel's error text may quote the URL
        self.executed = executed
        super().__init__(
            f"{notebook}: cell {cell} failed: {ename}: {evalue}"
            f" (the executed notebook with the error is {executed})"
        )
