"""Runbooks that run themselves: each incident gets its runbook notebook run and recorded.

``triage`` runs, for every incident without a report (or whose last attempt failed), the
notebook its alert names (``alert_definitions.runbook``; NULL: the incident postmortem)
through papermill into ``<out>/<incident>/`` and records the outcome under
``incident_data.report``. ``follow`` does the same as incidents arrive (LISTEN/NOTIFY, the
trigger of migration 0011), surviving database restarts. An advisory lock per incident
keeps two triage processes from running the same incident twice. A follower drafts a new
incident before the rest of its backlog, on a kernel it keeps warm for it, and stops the
backlog's draft in progress for it (pre-emption: that draft runs again later).

A notification is a hint, never an order: anyone who can connect can NOTIFY (PostgreSQL has
no privilege for it), so the follower re-reads the table and runs only an incident that is
stored and was never attempted. Before running anything, triage checks that its role may
record outcomes (a reader role may not): that is a usage error, never a lost database.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from obslib import reports
from obslib.errors import (
    DatabaseError,
    DatabaseUnreachable,
    InputError,
    ObslibError,
    ReportFailed,
    UsageError,
)
from obslib.escape import terminal_text
from obslib.redact import scrub
from obslib.storage import db
from obslib.values import Moment, utc

logger = logging.getLogger(__name__)

CHANNEL = "obslib_incidents"  # migrations/0011: the insert trigger's pg_notify channel
DEFAULT_RUNBOOK = reports.POSTMORTEM  # the report run when an alert names no runbook
ENV_RUNBOOKS = "OBSLIB_RUNBOOKS"  # more folders of runbooks, os.pathsep-separated
DEFAULT_OUT = Path("reports/incidents")
REPORT_KEY = "report"  # the key of incident_data that holds the last attempt
DONE, FAILED, SKIPPED = "done", "failed", "skipped"

# Advisory locks in the two-int4 form live in a key space of their own, apart from the
# single-bigint locks golang-migrate and obslib's migrator take: (this class, incident hash).
_LOCK_CLASS = 0x0B5_7A1  # "obs triage"
_RUNBOOK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # a file name: no separator, no ..
_IDLE_CHECK_S = 30.0  # a follower checks its connection and retries its skips this often
_MAX_BACKOFF_S = 15.0
HELD = "another triage is running it"  # a skip a follower retries at its next check
FUTURE = "triggered in the future"  # the other one: retried once its time has come
# A page more than this far in the future has not happened: clocks differ by seconds, not
# hours (and a postmortem's window ending in year 10000 does not exist).
_FUTURE_SLACK = "1 hour"
# Notified ids looked up in one pass of a follower (a flood of NOTIFY costs one query per
# this many, on the listening connection); the rest stay pending for the next pass.
_MAX_NOTIFIED = 1000
# A catch-up draft stopped for a new incident is not an outcome: nothing is recorded and the
# catch-up runs it again. One old incident is stopped at most this many times per follower;
# its next start runs to its end (new pages then wait for it, as without pre-emption), so a
# stream of new incidents cannot keep the backlog from ever being drafted.
_MAX_PREEMPTIONS = 3
_PREEMPTED = "pre-empted"  # an internal status, never recorded or reported
_WATCH_TICK_S = 0.2  # how often the pre-emption watcher looks up from its connection

_CANDIDATES = """
SELECT i.incident_id, i.incident_data -> 'report' AS report
FROM alert_incidents i
WHERE (%(since)s::timestamptz IS NULL OR i.triggered_at >= %(since)s::timestamptz)
  AND (%(ids)s::text[] IS NULL OR i.incident_id = ANY(%(ids)s::text[]))
  AND (i.incident_data -> 'report' ->> 'status') IS DISTINCT FROM 'done'
  AND (NOT %(new_only)s OR i.incident_data -> 'report' IS NULL)
ORDER BY i.triggered_at NULLS LAST, i.incident_id"""
# the trigger time as text, in SQL: 'infinity' or year 9999 never becomes a Python datetime
_CURRENT = """
SELECT a.runbook, i.incident_data -> 'report' AS report,
       i.triggered_at > now() + %s::interval AS future,
       COALESCE(to_char(i.triggered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'),
                i.triggered_at::text) AS triggered
FROM alert_incidents i LEFT JOIN alert_definitions a ON a.id = i.alert_id
WHERE i.incident_id = %s"""
# incident_data is meant to be an object (its default is {}); a string, number or array
# someone stored there is kept whole under "data", so adding the report loses nothing and
# the incident then reads as done ('"text"' || '{...}' would make an array instead, whose
# -> 'report' is NULL: drafted again on every run).
_RECORD = """
UPDATE alert_incidents
SET incident_data = CASE
        WHEN incident_data IS NULL OR jsonb_typeof(incident_data) = 'null' THEN '{}'::jsonb
        WHEN jsonb_typeof(incident_data) = 'object' THEN incident_data
        ELSE jsonb_build_object('data', incident_data)
    END || jsonb_build_object('report', %s::jsonb)
WHERE incident_id = %s"""
# Which of the incidents a follower waits for (skipped as paged in the future) are still
# stored and not done, and whether each is still ahead (compared in SQL, like _CURRENT).
_WAITING = """
SELECT incident_id, triggered_at > now() + %s::interval AS future
FROM alert_incidents
WHERE incident_id = ANY(%s::text[])
  AND (incident_data -> 'report' ->> 'status') IS DISTINCT FROM 'done'
ORDER BY triggered_at NULLS LAST, incident_id"""
# Whether a notified id justifies stopping a catch-up draft: what a follower would draft at
# once (stored, never attempted, an id that is neither blank nor padded, not paged in the
# future) and not the incident in progress.
_FRESH = r"""
SELECT incident_id
FROM alert_incidents
WHERE incident_id = ANY(%s::text[])
  AND incident_id <> %s
  AND incident_data -> 'report' IS NULL
  AND incident_id ~ '\S' AND incident_id !~ '^\s|\s$'
  AND (triggered_at > now() + %s::interval) IS NOT TRUE
LIMIT 1"""
# What recording needs; has_column_privilege also answers for grants on the whole table.
_CAN_RECORD = """
SELECT current_user,
       has_column_privilege('alert_incidents', 'incident_data', 'UPDATE'),
       has_column_privilege('alert_incidents', 'incident_id', 'SELECT')
         AND has_column_privilege('alert_incidents', 'incident_data', 'SELECT')
         AND has_column_privilege('alert_incidents', 'triggered_at', 'SELECT')
         AND has_column_privilege('alert_incidents', 'alert_id', 'SELECT'),
       has_column_privilege('alert_definitions', 'id', 'SELECT')
         AND has_column_privilege('alert_definitions', 'runbook', 'SELECT'),
       pg_is_in_recovery(),
       current_setting('transaction_read_only') = 'on'"""


@dataclass(frozen=True)
class Outcome:
    """What triage did with one incident."""

    incident_id: str
    status: str  # done | failed | skipped
    path: Path | None = None  # done: the HTML; failed: the executed notebook with the error
    reason: str | None = None  # failed or skipped: why, on one line

    def line(self) -> str:
        """One line for a terminal: id, status, path (and why, when not done). Any field
        that would not show as itself (blank, padded, a control character: the reason may
        echo a runbook's error or a row's text) is quoted, its control characters escaped."""
        path = "-" if self.path is None else _shown(str(self.path))
        text = f"{_shown(self.incident_id)}  {_shown(self.status):<7}  {path}"
        return f"{text}  ({_shown(self.reason)})" if self.reason else text


def _shown(text: str) -> str:
    """``text`` as a terminal line shows it (``escape.terminal_text``)."""
    return terminal_text(text)


@dataclass
class TriageRun:
    """The outcomes of one ``triage`` call (or of a whole ``follow``), in order."""

    outcomes: list[Outcome] = field(default_factory=list)

    def _count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def done(self) -> int:
        return self._count(DONE)

    @property
    def failed(self) -> int:
        return self._count(FAILED)

    @property
    def skipped(self) -> int:
        return self._count(SKIPPED)

    def summary(self) -> str:
        return f"{self.done} done, {self.failed} failed, {self.skipped} skipped"


@dataclass(frozen=True)
class Runbook:
    """A runbook resolved to a notebook file."""

    name: str  # as the alert names it (DEFAULT_RUNBOOK for none)
    source: Path
    report: str | None  # the report it is, if any (its header then knows its time parameters)


def runbook_dirs() -> list[Path]:
    """Where runbooks are looked up: obslib's notebooks folder, then each $OBSLIB_RUNBOOKS one."""
    found = []
    with suppress(ObslibError):  # no shipped notebooks folder: only $OBSLIB_RUNBOOKS counts
        found.append(reports.notebooks_dir())
    extra = os.environ.get(ENV_RUNBOOKS, "")
    found += [Path(p).expanduser() for p in extra.split(os.pathsep) if p.strip()]
    return found


def resolve_runbook(name: str | None) -> Runbook:
    """The notebook an alert's ``runbook`` names: a report name or a plain notebook name.

    The name comes from a database row, so it is never taken as a path: only a file name
    (``.ipynb`` optional) found in ``runbook_dirs()``. Anything else is InputError.
    """
    name = DEFAULT_RUNBOOK if name is None or not name.strip() else name.strip()
    if name in reports.REPORTS:
        return Runbook(name, reports.notebooks_dir() / reports.REPORTS[name].notebook, name)
    if name == DEFAULT_RUNBOOK:
        raise InputError(f"the default runbook, report {DEFAULT_RUNBOOK!r}, is not installed")
    if not _RUNBOOK_NAME.fullmatch(name):
        raise InputError(
            f"runbook {name!r} is not a notebook name (letters, digits, '_', '-', '.'; no path)"
        )
    file = name if name.endswith(".ipynb") else f"{name}.ipynb"
    folders = runbook_dirs()
    for folder in folders:
        if (folder / file).is_file():
            return Runbook(name, folder / file, None)
    where = ", ".join(str(f) for f in folders) or "no folder"
    raise InputError(f"runbook {name!r}: no {file} in {where} (set ${ENV_RUNBOOKS})")


def incident_folder(incident_id: str) -> str:
    """A folder name for the incident: its id when that is a safe name, else a safe form
    plus a hash of the id (so no id climbs out of ``--out`` and no two share a folder)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", incident_id).lstrip(".-")[:80]
    if safe and safe == incident_id:
        return safe
    digest = hashlib.sha256(incident_id.encode()).hexdigest()[:10]
    return f"{safe or 'incident'}-{digest}"


def lock_key(incident_id: str) -> tuple[int, int]:
    """The advisory lock (two int4 keys) triage holds while it runs ``incident_id``."""
    digest = hashlib.blake2b(incident_id.encode(), digest_size=4).digest()
    return _LOCK_CLASS, int.from_bytes(digest, "big", signed=True)


def triage(
    since: Moment | None = None,
    out: Path = DEFAULT_OUT,
    url: str | None = None,
    *,
    incident_ids: Sequence[str] | None = None,
    new_only: bool = False,
    on_outcome: Callable[[Outcome], None] | None = None,
    stop: Callable[[], bool] | None = None,
    bundle: bool = True,
) -> TriageRun:
    """Run the runbook of every incident triggered at or after ``since`` (default: all)
    that has no report or whose last attempt failed, and record each outcome.

    ``incident_ids`` narrows it to those incidents; ``new_only`` to those never attempted
    (what a NOTIFY may announce). A failing runbook is recorded and the next incident runs;
    a second call does no new work. An incident with a blank or padded id, or triggered in
    the future, is skipped with the reason, nothing run or recorded. ``stop`` is asked
    before each incident (the one running always finishes). ``bundle``: each draft also
    writes its evidence bundle beside it (``STEM.bundle/``, ``obslib.load.bundle``), unless
    False. Database trouble raises
    DatabaseError or DatabaseUnreachable; bad ``since`` or ``out``, or a role that may not
    record outcomes (checked before anything runs), is UsageError.
    """
    lo = None if since is None else utc(since, "since")
    out = reports.prepare_out_dir(Path(out)).resolve()
    url = db.libpq_url(url) if url else db.database_url()
    run = TriageRun()

    def record(outcome: Outcome) -> None:
        run.outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    with _session(url) as conn:
        _triage_on(conn, lo, out, url, incident_ids, new_only, record, stop, bundle=bundle)
    return run


class _Spare:
    """A follower's next kernel (reports.WarmKernel): started with obslib imported while the
    follower waits, used by one runbook run, and replaced once that run's outcome is
    recorded, so no run sees another's variables or connections. Only a runbook of the
    shipped notebooks folder (the postmortem and the other reports) runs on it; any other
    starts its own kernel, as every run did before."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ready: reports.WarmKernel | None = None
        self.given: list[reports.WarmKernel] = []

    def take(self) -> reports.WarmKernel | None:
        """The warm kernel for the next run (None: none could be started)."""
        kernel, self.ready = self.ready, None
        if kernel is not None:
            self.given.append(kernel)
        return kernel

    def refill(self) -> None:
        """Shut down the kernels runs used (or that died); keep one a run did not fit; make
        sure one is warming for the next run."""
        for kernel in self.given:
            if self.ready is None and not kernel.used and kernel.manager.is_alive():
                self.ready = kernel
            else:
                kernel.close()
        self.given.clear()
        if self.ready is None:
            self.ready = self._start()

    def _start(self) -> reports.WarmKernel | None:
        try:
            return reports.WarmKernel(reports.notebooks_dir(), self.url)
        except Exception as err:  # no kernel ahead: each run starts its own, as before
            logger.warning("no warm kernel (%s); runbooks start their own", _one_line(str(err)))
            return None

    def close(self) -> None:
        self.take()
        for kernel in self.given:
            kernel.close()
        self.given.clear()


class _Watch:
    """A follower's second LISTEN session, read by a thread of its own (no connection is
    used by two threads): while a catch-up draft runs (``arm``), a notification of an
    incident a follower would draft at once (_FRESH: stored, never attempted, not the one in
    progress, not in the future) kills that draft's kernel, so the new page does not wait
    for it. The follower's listening connection hears the same notification and drafts the
    new incident next, on the warm kernel; the stopped one runs again after it.

    A notification is a hint here too: ids of nothing, of done or failed incidents, of the
    incident in progress stop nothing. ``preemptions`` counts the stops per incident (at
    most _MAX_PREEMPTIONS each)."""

    def __init__(self, url: str, preemptions: dict[str, int]) -> None:
        self.preemptions = preemptions
        self._conn = db.connect(url, autocommit=True)
        try:
            self._conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
        except BaseException:
            self._conn.close()
            raise
        self._lock = threading.Lock()
        self._seen: dict[str, None] = {}  # notified ids not yet looked up
        self._armed: tuple[str, reports.WarmKernel] | None = None
        self._fired = False
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="triage-watch", daemon=True)
        self._thread.start()

    def forget(self) -> None:
        """Drop the ids heard so far: the follower is about to look at its own notifications
        (a notification committed before this is heard there too) and draft them."""
        with self._lock:
            self._seen.clear()

    def arm(self, incident_id: str, kernel: reports.WarmKernel) -> None:
        """From now on, a fresh notified incident kills ``kernel`` (running ``incident_id``);
        ids heard since the last ``forget`` count too."""
        with self._lock:
            self._armed, self._fired = (incident_id, kernel), False

    def disarm(self) -> bool:
        """Nothing is killed from now on; whether the armed kernel was."""
        with self._lock:
            self._armed = None
            return self._fired

    def fired(self) -> bool:
        return self._fired

    def close(self) -> None:
        self._closing.set()
        self._thread.join()
        self._conn.close()

    def __enter__(self) -> _Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _watch(self) -> None:
        try:
            while not self._closing.is_set():
                heard = _pending(self._conn, wait=_WATCH_TICK_S)
                with self._lock:
                    self._seen.update(dict.fromkeys(heard))
                    while len(self._seen) > _MAX_NOTIFIED:  # a flood: the latest count
                        del self._seen[next(iter(self._seen))]
                    armed = None if self._fired else self._armed
                    ids = list(self._seen) if armed is not None else []
                    if armed is not None:
                        self._seen.clear()
                if not ids or armed is None:
                    continue
                fresh = self._conn.execute(_FRESH, (ids, armed[0], _FUTURE_SLACK)).fetchone()
                if fresh is None:
                    continue
                with self._lock:
                    stopping = self._armed is armed and not self._fired
                    if stopping:
                        armed[1].kill()
                        self._fired = True
                if stopping:
                    new, old = _shown(fresh[0]), _shown(armed[0])
                    logger.info("new incident %s: stopping the draft of %s", new, old)
        except psycopg.Error as err:  # the follower's own connection notices and reconnects
            if not self._closing.is_set():
                logger.warning("pre-emption off until reconnect (%s)", _one_line(str(err)))
        except Exception:  # a bug here must not end the follower: drafts then run to their end
            logger.exception("pre-emption off until reconnect")


def _triage_on(
    conn: psycopg.Connection,
    since: datetime | None,
    out: Path,
    url: str,
    incident_ids: Sequence[str] | None,
    new_only: bool,
    record: Callable[[Outcome], None],
    stop: Callable[[], bool] | None,
    spare: _Spare | None = None,
    first: Callable[[], Iterable[str]] | None = None,
    watch: _Watch | None = None,
    *,
    bundle: bool = True,
) -> list[str]:
    """``triage`` on an open session (a follower's listening one: a notification costs no
    connection of its own): one privilege check, one query for the candidates. Returns the
    ids it recorded an outcome for.

    ``spare``: the follower's warm kernels. ``first`` runs before each candidate and
    triages what must not wait behind the others (a follower: what NOTIFY brought
    meanwhile); a candidate among the ids it returns (it took care of them) is not taken
    again. ``watch`` (with ``first``: a follower's catch-up): each candidate runs on a kernel
    started for it that a new incident's notification may stop; a stopped one is recorded
    nothing and runs again after ``first`` has drafted what stopped it."""
    check_can_record(conn)
    params = {
        "since": since,
        "ids": None if incident_ids is None else list(incident_ids),
        "new_only": new_only,
    }
    candidates = conn.execute(_CANDIDATES, params).fetchall()
    ahead: set[str] = set()
    taken = []
    queue = deque(candidates)
    while queue:
        incident_id, seen = queue[0]
        if stop is not None and stop():
            break
        if first is not None:
            ahead.update(first())
            if stop is not None and stop():
                break
        if incident_id in ahead:
            queue.popleft()
            continue
        outcome = _triage_one(conn, incident_id, seen, out, url, spare, watch, bundle=bundle)
        if outcome.status == _PREEMPTED:  # nothing recorded: again, after what stopped it
            continue
        queue.popleft()
        record(outcome)
        taken.append(incident_id)
    return taken


@contextmanager
def _session(url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection (advisory locks are per session); driver errors as ours."""
    conn = db.connect(url, autocommit=True)
    try:
        yield conn
    except psycopg.errors.UndefinedColumn:
        raise UsageError(
            "the database has no alert_definitions.runbook: run `obslib db up` (migration 0011)"
        ) from None
    except psycopg.errors.UndefinedTable:
        raise UsageError("the database has no obslib tables: run `obslib db up`") from None
    except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction) as err:
        # granted away or made read-only while running: the user's to fix, not retried
        raise UsageError(f"triage: {scrub(db.first_line(err), url)}") from None
    except psycopg.Error as err:
        raise DatabaseError(f"triage: {scrub(db.first_line(err), url)}") from err
    finally:
        conn.close()


def check_can_record(conn: psycopg.Connection) -> None:
    """UsageError, on one line, unless this session may record outcomes: a runbook run
    whose outcome cannot be stored would run again on every pass."""
    user, update, read_incidents, read_alerts, standby, read_only = conn.execute(
        _CAN_RECORD
    ).fetchone()
    missing = [
        what
        for what, granted in (
            ("UPDATE on alert_incidents.incident_data", update),
            ("SELECT on alert_incidents", read_incidents),
            ("SELECT on alert_definitions", read_alerts),
        )
        if not granted
    ]
    if missing:
        raise UsageError(
            f"triage: role {user!r} may not record outcomes (no {', '.join(missing)}):"
            " run it as a role that writes alert_incidents, not as a reader"
        )
    if standby:
        raise UsageError("triage: the server is a read-only standby: run it against the primary")
    if read_only:
        raise UsageError(
            f"triage: sessions of role {user!r} are read-only (default_transaction_read_only):"
            " run it as a role whose sessions may write"
        )


def refusal(incident_id: str, future: bool, triggered: str | None) -> str | None:
    """Why an incident's row does not justify running anything, or None.

    A blank id has no incident to draft; a padded one would be looked up as another id
    (the postmortem strips it); a page in the future has not happened."""
    if not incident_id.strip():
        return "blank incident id: nothing to triage; fix or delete the row"
    if incident_id != incident_id.strip():
        return "incident id with leading or trailing blanks: a runbook would look up another id"
    if future:
        return f"{FUTURE} ({triggered} UTC): not triaged before then"
    return None


def _triage_one(
    conn: psycopg.Connection,
    incident_id: str,
    seen: object,
    out: Path,
    url: str,
    spare: _Spare | None = None,
    watch: _Watch | None = None,
    *,
    bundle: bool = True,
) -> Outcome:
    """Under the incident's lock, run it if it still looks as it did when it was picked
    (on ``spare``'s warm kernel, replaced once the outcome is recorded; with ``watch``, on a
    kernel a new incident may stop: then status _PREEMPTED and nothing recorded)."""
    key = lock_key(incident_id)
    if not conn.execute("SELECT pg_try_advisory_lock(%s, %s)", key).fetchone()[0]:
        return Outcome(incident_id, SKIPPED, reason=HELD)
    try:
        row = conn.execute(_CURRENT, (_FUTURE_SLACK, incident_id)).fetchone()
        if row is None:
            return Outcome(incident_id, SKIPPED, reason="deleted meanwhile")
        runbook, report, future, triggered = row
        if report != seen:  # another triage finished it between our pick and our lock
            return Outcome(incident_id, SKIPPED, reason="another triage ran it meanwhile")
        if (why := refusal(incident_id, future, triggered)) is not None:
            return Outcome(incident_id, SKIPPED, reason=why)
        attempts = (report.get("attempts", 0) if isinstance(report, dict) else 0) + 1
        folder = out / incident_folder(incident_id)
        if watch is not None:
            ran = _run_preemptible(incident_id, runbook, folder, url, watch, bundle)
            if ran is None:
                return Outcome(incident_id, _PREEMPTED)
            outcome, record = ran
        else:
            kernel = None if spare is None else spare.take()
            outcome, record = _run(incident_id, runbook, folder, url, kernel, bundle=bundle)
        record["attempts"] = attempts
        conn.execute(_RECORD, (Jsonb(record), incident_id))
        if spare is not None:
            spare.refill()
        return outcome
    finally:
        if not conn.closed:  # a lost session has lost its locks with it
            with suppress(psycopg.Error):
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", key)


def _run(
    incident_id: str,
    runbook: str | None,
    folder: Path,
    url: str,
    kernel: reports.WarmKernel | None = None,
    stopped: Callable[[], bool] | None = None,
    *,
    bundle: bool = True,
) -> tuple[Outcome, dict]:
    """Run the runbook (on ``kernel`` when it fits); every failure becomes a record, never
    an exception, so one broken runbook cannot stop the others. ``stopped`` says whether
    the kernel was killed on purpose (no traceback logged for what that broke). ``bundle``:
    record the run's evidence bundle beside its report (``bundle`` in the record)."""
    started = time.monotonic()
    record: dict[str, object] = {
        "runbook": runbook or DEFAULT_RUNBOOK,
        "html": None,
        "markdown": None,
        "notebook": None,
        "error": None,
    }
    try:
        book = resolve_runbook(runbook)
        with _evidence(bundle, folder, book.source) as evidence:
            result = reports.run_notebook(
                book.source,
                {reports.INCIDENT_ID: incident_id},
                folder,
                report=book.report,
                database_url=url,
                kernel=kernel,
                evidence=evidence,
            )
    except ReportFailed as err:
        record.update(status=FAILED, notebook=err.executed, error=_one_line(str(err)))
    except ObslibError as err:
        record.update(status=FAILED, error=_one_line(str(err)))
    except Exception as err:  # papermill, nbconvert or the kernel broke in a way of its own
        if stopped is None or not stopped():
            logger.exception("runbook of incident %s broke", _shown(incident_id))
        record.update(status=FAILED, error=_one_line(f"{type(err).__name__}: {scrub(str(err))}"))
    else:
        record.update(
            status=DONE,
            html=str(result.html),
            markdown=None if result.markdown is None else str(result.markdown),
            notebook=str(result.notebook),
            **({"bundle": str(result.bundle)} if result.bundle is not None else {}),
        )
    record["at"] = datetime.now(UTC).isoformat()
    record["seconds"] = round(time.monotonic() - started, 2)
    path = record["html"] if record["status"] == DONE else record["notebook"]
    reason = record["error"]
    return (
        Outcome(incident_id, str(record["status"]), Path(path) if path else None, reason),
        record,
    )


@contextmanager
def _evidence(bundle: bool, folder: Path, source: Path) -> Iterator[object]:
    """A Recording into ``folder/STEM.bundle`` when ``bundle``, else None."""
    if not bundle:
        yield None
        return
    from obslib.load.bundle_files import Recording

    reports.prepare_out_dir(folder)
    with Recording(folder / f"{source.stem}.bundle") as recording:
        yield recording


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _run_preemptible(
    incident_id: str, runbook: str | None, folder: Path, url: str, watch: _Watch, bundle: bool
) -> tuple[Outcome, dict] | None:
    """``_run`` on a kernel started for this run, which ``watch`` kills when a new incident
    is notified meanwhile: then None (nothing to record; the folder may hold the killed run's
    partial notebook, which the next run replaces). A run that finished anyway, or whose
    kernel could not be started ahead, or that was stopped _MAX_PREEMPTIONS times already,
    counts as any run does."""
    kernel = None
    if watch.preemptions.get(incident_id, 0) < _MAX_PREEMPTIONS:
        kernel = _kernel_for(runbook, url)
    if kernel is None:
        return _run(incident_id, runbook, folder, url, bundle=bundle)
    watch.arm(incident_id, kernel)
    try:
        outcome, record = _run(
            incident_id, runbook, folder, url, kernel, watch.fired, bundle=bundle
        )
    finally:
        stopped = watch.disarm()
        kernel.close()
    if stopped and outcome.status != DONE:
        watch.preemptions[incident_id] = watch.preemptions.get(incident_id, 0) + 1
        logger.info("stopped the draft of %s for a new incident", _shown(incident_id))
        return None
    return outcome, record


def _kernel_for(runbook: str | None, url: str) -> reports.WarmKernel | None:
    """A kernel for one run of ``runbook``, started in its folder (so the run fits it); None
    when the runbook does not resolve (the run records why) or no kernel starts."""
    try:
        book = resolve_runbook(runbook)
    except InputError:
        return None
    try:
        return reports.WarmKernel(book.source.parent, url)
    except Exception as err:  # the run starts its own kernel: not stoppable, nothing lost
        logger.warning("no kernel started ahead (%s): this draft runs to its end", err)
        return None


# -- following ---------------------------------------------------------------------------------


def follow(
    since: Moment | None = None,
    out: Path = DEFAULT_OUT,
    url: str | None = None,
    *,
    on_outcome: Callable[[Outcome], None] | None = None,
    stop: threading.Event | None = None,
    idle_check_s: float = _IDLE_CHECK_S,
    bundle: bool = True,
) -> TriageRun:
    """Triage each incident as it is inserted, until ``stop`` is set (or SIGTERM/SIGINT).

    LISTENs on CHANNEL; on start and after every reconnect a catch-up ``triage(since)``
    covers whatever was inserted while nobody listened. A lost database is retried with
    backoff (a log line each time), never fatal. A signal lets the report in progress
    finish, then returns (a second SIGINT interrupts). A notified incident is triaged
    whatever its time, but only when stored and never attempted (a NOTIFY is a hint anyone
    may send); ``since`` bounds the catch-up only. Notifications are looked up in batches
    on the listening connection (a flood of them opens no connection). Every
    ``idle_check_s`` the follower checks its connection and retries the incidents it
    skipped because another triage held them or because they were paged in the future
    (those once their time has come). A role that may not record outcomes is UsageError
    at the first connection, before anything runs, and never retried.

    New incidents first: before each incident of a catch-up (or of a batch), what NOTIFY
    brought meanwhile is drafted. A runbook of the shipped notebooks folder (the
    postmortem) runs on a kernel started ahead with obslib imported (reports.WarmKernel),
    replaced after each use; the catch-up's old incidents run on kernels started for them,
    leaving it to new ones. And a new page does not wait for the old draft in progress
    either: a second LISTEN session (_Watch) kills that draft's kernel when a new incident
    is notified; the new one is drafted, then the stopped one again (not recorded, its
    attempt not counted; each old one stopped at most _MAX_PREEMPTIONS times).
    ``bundle``: as ``triage``'s.
    """
    lo = None if since is None else utc(since, "since")
    out = reports.prepare_out_dir(Path(out)).resolve()
    url = db.libpq_url(url) if url else db.database_url()
    stop = stop or threading.Event()
    total = TriageRun()

    held: list[str] = []  # skipped under another triage's lock: tried again at each check
    waiting: dict[str, None] = {}  # skipped as paged in the future: tried once it is not

    def record(outcome: Outcome) -> None:
        total.outcomes.append(outcome)
        if outcome.status == SKIPPED and outcome.reason == HELD:
            held.append(outcome.incident_id)
        elif outcome.status == SKIPPED and (outcome.reason or "").startswith(FUTURE):
            waiting[outcome.incident_id] = None
        if on_outcome is not None:
            on_outcome(outcome)

    backoff, connected, warm = 0.5, True, False
    spare = _Spare(url)
    preemptions: dict[str, int] = {}  # catch-up drafts stopped for new incidents, per id
    with _stop_on_signals(stop) as received, _closing(spare):
        while not stop.is_set():
            try:
                with _listening(url) as listener, _Watch(url, preemptions) as watch:
                    if not warm:  # after the check: a reader is told at once
                        reports.load_machinery()
                        warm = True
                    spare.refill()  # a kernel warming for the first incident, or the next
                    logger.info("listening on %s; catching up", CHANNEL)
                    backoff, connected = 0.5, True

                    def first(
                        listener: psycopg.Connection = listener, watch: _Watch = watch
                    ) -> list[str]:
                        watch.forget()  # what it heard so far, the listener hears too
                        return _notified_first(
                            listener, out, url, record, stop, waiting, spare, bundle
                        )

                    # the catch-up, triage(since), on the listening connection: none of its
                    # own. What NOTIFY brings meanwhile goes first, on the warm kernel: the
                    # old incidents run on kernels started for them (which the watch kills
                    # for a new page), so one is always ready for a new page (in a run of
                    # drafts a replacement never has time to warm).
                    _triage_on(
                        listener, lo, out, url, None, False, record, stop.is_set, None, first,
                        watch, bundle=bundle,
                    )  # fmt: skip
                    _serve(
                        listener, out, url, record, stop, held, waiting, idle_check_s, spare,
                        bundle,
                    )  # fmt: skip
            except (DatabaseUnreachable, DatabaseError, psycopg.OperationalError) as err:
                if stop.is_set():
                    break
                if isinstance(err, DatabaseUnreachable):
                    reason = err.reason
                elif isinstance(err, psycopg.Error):
                    reason = db.first_line(err)
                else:
                    reason = str(err)
                what = "lost the database" if connected else "database still unreachable"
                logger.warning("%s (%s); retrying in %.1f s", what, _one_line(reason), backoff)
                connected = False
                stop.wait(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
        if received:
            logger.info("stopped by %s", signal.Signals(received[0]).name)
    return total


@contextmanager
def _closing(spare: _Spare) -> Iterator[None]:
    try:
        yield
    finally:
        spare.close()


def _notified_first(
    listener: psycopg.Connection,
    out: Path,
    url: str,
    record: Callable[[Outcome], None],
    stop: threading.Event,
    waiting: dict[str, None],
    spare: _Spare,
    bundle: bool = True,
) -> list[str]:
    """Triage what NOTIFY brought since the last look, without waiting for more: a new
    incident goes before the rest of a catch-up (issue 23: with 32 old incidents pending,
    a new page waited 321 s). Returns the ids it triaged (a notified id that was attempted
    before is left to the catch-up: a NOTIFY anyone may send cannot make it skip a retry).
    One round trip first: a notification sent before it is read with its reply (the server
    sends pending notifications before it says it is ready), so none sent earlier is
    missed."""
    listener.execute("SELECT 1")
    ids = [i for i in _pending(listener, wait=0.0) if i not in waiting]
    if not ids:
        return []
    return _triage_on(
        listener, None, out, url, ids, True, record, stop.is_set, spare, bundle=bundle
    )


@contextmanager
def _listening(url: str) -> Iterator[psycopg.Connection]:
    """A LISTENing connection, once the role proves it may record (UsageError otherwise:
    a permission is not a connection, so ``follow`` does not retry it)."""
    with _session(url) as conn:
        check_can_record(conn)
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
        yield conn


def _serve(
    listener: psycopg.Connection,
    out: Path,
    url: str,
    record: Callable[[Outcome], None],
    stop: threading.Event,
    held: list[str],
    waiting: dict[str, None],
    idle_check_s: float = _IDLE_CHECK_S,
    spare: _Spare | None = None,
    bundle: bool = True,
) -> None:
    """Triage notified incidents until ``stop``; raises when the connection is lost.

    A payload is only a hint of which id to look at: the table decides, and only an incident
    never attempted is run (a NOTIFY repeated by anyone cannot re-run a failed runbook; the
    catch-up retries those). Every notification pending is taken at once and looked up in
    one query on the listening connection itself: a flood of NOTIFY (anyone may send them)
    costs a query per ``_MAX_NOTIFIED`` ids, never a connection or a query per notification.

    Every ``idle_check_s`` (busy or not) the connection is checked and two kinds of skipped
    incidents are tried again, as no NOTIFY comes for them again: one another triage held
    (``held``: if that triage died mid-run, nobody else would run it), and one paged in the
    future (``waiting``: run once its trigger time is no longer ahead, silent until then)."""
    last_check = time.monotonic()

    def first() -> list[str]:
        return _notified_first(listener, out, url, record, stop, waiting, spare, bundle)

    def run(ids: list[str], new_only: bool) -> None:
        _triage_on(
            listener, None, out, url, ids, new_only, record, stop.is_set, spare, first,
            bundle=bundle,
        )  # fmt: skip

    while not stop.is_set():
        ids = [i for i in _pending(listener, wait=1.0) if i not in waiting]  # noted once
        if ids:
            run(ids, True)
        if time.monotonic() - last_check > idle_check_s and not stop.is_set():
            listener.execute("SELECT 1")  # a silently dead connection shows here, not never
            if held:
                again = list(dict.fromkeys(held))
                held.clear()
                run(again, False)
            if waiting and (due := _due(listener, waiting)):
                run(due, False)
            last_check = time.monotonic()


def _pending(listener: psycopg.Connection, wait: float) -> list[str]:
    """The distinct payloads of the notifications pending, in order: waits up to ``wait``
    for the first, then takes whatever else has arrived without waiting, up to about
    ``_MAX_NOTIFIED`` ids (the rest stay pending). Each generator is read to its end: one
    closed in the middle of a packet would drop the rest of the packet."""
    ids = dict.fromkeys(n.payload for n in listener.notifies(timeout=wait, stop_after=1))
    while ids and len(ids) < _MAX_NOTIFIED:
        more = [n.payload for n in listener.notifies(timeout=0.0)]
        if not more:
            break
        ids.update(dict.fromkeys(more))
    return list(ids)


def _due(conn: psycopg.Connection, waiting: dict[str, None]) -> list[str]:
    """Of the incidents ``waiting`` for their time, those it has come for (taken off the
    list); one deleted or done meanwhile leaves the list, one still ahead stays on it."""
    rows = conn.execute(_WAITING, (_FUTURE_SLACK, list(waiting))).fetchall()
    waiting.clear()
    due = []
    for incident_id, future in rows:
        if future:
            waiting[incident_id] = None
        else:
            due.append(incident_id)
    return due


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[list[int]]:
    """SIGTERM and SIGINT set ``stop`` (a second SIGINT interrupts); yields the signals
    received. Only the main thread can take signals: elsewhere, only ``stop`` stops."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum: int, frame: object) -> None:  # no logging here: not reentrant
        if signum == signal.SIGINT and stop.is_set():
            raise KeyboardInterrupt
        received.append(signum)
        stop.set()

    saved = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield received
    finally:
        for s, previous in saved.items():
            signal.signal(s, previous)
