"""What each writer stores where: the column specs (with the widths of their columns) and the
merge, conflict and check statements built from them.

Widths live here once: ``Col.width`` is a VARCHAR length, ``Col.digits`` a NUMERIC
(precision, scale), both as the migrations define them; tests compare them with the migrated
database's information_schema. Every statement is fixed text made from these constants (table
and column names are ours, never the caller's); values travel through the staging table.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from obslib import schema
from obslib.ingest.frames import BOOL, FLOAT, INT, JSON, TEXT, TIME, Col

STAGE = "obslib_stage"  # the temporary staging table of one write
PENDING = "obslib_pending"  # + _kind: a batch's rows merged at commit (writer.DEFERRED)
ROW = "_row"  # the frame row a staged row came from, for messages
# A caller's text naming a row (a frame column of this name, optional): a pending row keeps
# it, so that a row the commit finds late can be named (``writer.Late``).
TAG = "_tag"
# The staged text of a shared column (``Shared``), carried by the merge's rows to look it up.
RAW = "_raw"
MAX_KEYS = 5  # conflicting keys a report lists (the count is always complete)
# What the last ``retried`` merge left: rows inserted, retries taken, the data error it stopped at.
MERGE_RESULT = (
    "SELECT current_setting('obslib.merge_inserted')::bigint,"
    " current_setting('obslib.merge_retries')::int, current_setting('obslib.merge_error')"
)

SPAN_SPEC = (
    Col("trace_id", required=True, width=100, key=True),
    Col("span_id", required=True, width=100, key=True),
    Col("parent_span_id", width=100, key=True),
    Col("service_name", required=True, width=100),
    Col("operation_name", required=True, width=200),
    Col("span_kind", default="internal", allowed=schema.SPAN_KINDS, width=10),
    Col("start_time", TIME, required=True),
    Col("end_time", TIME, required=True),
    Col("duration_ms", FLOAT, digits=(15, 3)),
    Col("status", default="ok", allowed=schema.SPAN_STATUSES, width=20),
    Col("tags", JSON, default={}),
    Col("logs", JSON, default=[]),
    Col(schema.SAMPLING_PROBABILITY, FLOAT, default=1.0),  # REAL; 1 = not sampled (0015)
)
LOG_SPEC = (
    Col("log_id", required=True, width=100, key=True),
    Col("timestamp", TIME, required=True),
    Col("level", required=True, allowed=schema.LOG_LEVELS, width=10),
    Col("service_name", required=True, width=100),
    Col("trace_id", width=100, key=True),
    Col("span_id", width=100, key=True),
    Col("message", required=True),
    Col("fields", JSON, default={}),
    Col("error"),
)
SLO_SPEC = (
    Col("service_name", required=True, width=100),
    Col("slo_name", required=True, width=100, key=True),
    Col("slo_type", required=True, allowed=schema.SLO_TYPES, width=50),
    Col("target_value", FLOAT, required=True, digits=(10, 4)),
    Col("measurement_window_hours", INT, default=24),
    Col("error_budget_percent", FLOAT, digits=(7, 4)),
    Col("alert_threshold_percent", FLOAT, default=90.0, digits=(5, 2)),
    Col("enabled", BOOL, default=True),
    Col("latency_threshold_ms", FLOAT, digits=(15, 3)),
)
MEASUREMENT_SPEC = (
    Col("service_name", required=True, width=100),  # with slo_name: resolved to slo_id
    Col("slo_name", required=True, width=100, key=True),
    Col("measurement_timestamp", TIME, required=True),
    Col("actual_value", FLOAT, required=True, digits=(10, 4)),
    Col("target_value", FLOAT, required=True, digits=(10, 4)),
    Col("compliance_status", required=True, allowed=schema.COMPLIANCE_STATUSES, width=20),
    Col("error_budget_remaining", FLOAT, digits=(9, 2)),  # none for a throughput SLO
    Col("measurement_period_s", FLOAT, required=True),
)
ALERT_SPEC = (
    Col("alert_name", required=True, width=100, key=True),
    Col("service_name", required=True, width=100),
    Col("alert_type", required=True, allowed=schema.ALERT_TYPES, width=50),
    Col("metric_name", required=True, width=100),
    Col("condition_expression", required=True),
    Col("severity", required=True, allowed=schema.SEVERITIES, width=20),
    Col("notification_channels", JSON, default=[]),
    Col("enabled", BOOL, default=True),
    Col("runbook"),  # a notebook name `obslib triage` runs (NULL: the postmortem)
)
INCIDENT_SPEC = (
    Col("incident_id", required=True, width=100, key=True),
    Col("alert_name", width=100, key=True),  # resolved to alert_id
    Col("status", default="open", allowed=schema.INCIDENT_STATUSES, width=20),
    Col("severity", required=True, allowed=schema.SEVERITIES, width=20),
    Col("triggered_at", TIME, required=True),
    Col("acknowledged_at", TIME),
    Col("resolved_at", TIME),
    Col("acknowledged_by", width=100),
    Col("resolved_by", width=100),
    Col("escalation_level", INT, default=1),
    Col("incident_data", JSON, default={}),
)


@dataclass(frozen=True)
class Target:
    """One table a writer merges into.

    ``key`` is the table's natural key (its unique constraint, what ON CONFLICT names; for
    a day-partitioned table the constraint adds ``partition_key``, and the merge keeps the
    key itself unique with an anti-join);
    ``stage_key`` is the same key as the frame spells it (names, not surrogate ids): rows are
    sorted and de-duplicated by it and conflicts are reported with it. ``exprs`` overrides how
    a table column is computed from the staged row ``s``; ``joins`` resolves references.
    ``order`` overrides the key order the merge inserts in (for a key of surrogate ids).
    """

    kind: str
    table: str
    spec: tuple[Col, ...]
    key: tuple[str, ...]
    stage_key: tuple[str, ...]
    columns: tuple[str, ...]
    exprs: dict[str, str] = field(default_factory=dict)
    joins: str = ""
    order: str = ""
    unresolved: str | None = None
    # the column a day-partitioned table is partitioned by (migration 0012): its unique
    # index is ``key`` + this column, so the merge keeps the natural key with an anti-join
    partition_key: str = ""
    # the natural key as the index the anti-join probes spells it, ``{a}`` the row's alias:
    # spans' (trace_id, span_id) hashed (migration 0014; before it, an extra condition)
    probe: str = ""
    # a JSON column whose repeated values are stored once in another table (spans' tag
    # sets, migration 0018)
    shared: Shared | None = None

    @property
    def unpartitioned(self) -> Target:
        """This target as it merges into a table not (yet) partitioned (before 0012)."""
        return replace(self, partition_key="")

    @property
    def unshared(self) -> Target:
        """This target as it merges into a table without its shared values (before 0018)."""
        return replace(self, shared=None)

    @property
    def stored(self) -> str:
        """The table's rows as readers see them: the view that puts shared values back."""
        return self.shared.view if self.shared else self.table

    @property
    def lock(self) -> str | None:
        """Taken before a merge into a partitioned table, held to the commit: with the
        partition key in the unique index, only merges one at a time keep the natural key
        unique (another writer's new key must be visible to the anti-join). Two merges in
        one batch take the locks in ``writer.DEFERRED`` order, like their row locks."""
        if not self.partition_key:
            return None
        return f"SELECT {self._lock_key('pg_advisory_xact_lock')}"

    @property
    def lock_try(self) -> str:
        """``lock`` without waiting: an expression, true when taken."""
        return self._lock_key("pg_try_advisory_xact_lock")

    def _lock_key(self, function: str) -> str:
        return f"{function}(hashtext('obslib.merge'), hashtext('{self.table}'))"

    def _expr(self, column: str) -> str:
        if column in self.exprs:
            return self.exprs[column]
        col = next(c for c in self.spec if c.name == column)
        if col.kind == JSON:
            return f"s.{column}::jsonb"
        if col.kind == FLOAT and col.digits:
            # the column's own type, so a re-written row compares equal to the stored one
            return f"s.{column}::numeric({col.digits[0]},{col.digits[1]})"
        return f"s.{column}"

    @property
    def source(self) -> str:
        """The staged rows as the table's columns, plus the stage key as k0, k1, ..."""
        return self._select()

    def _select(self, *extra: str, raw: str = "") -> str:
        exprs = [f"{self._expr(c)} AS {c}" for c in self.columns]
        exprs += [f"s.{k} AS k{i}" for i, k in enumerate(self.stage_key)]
        exprs += [f"s.{c} AS {c}" for c in extra]
        exprs += [raw] if raw else []
        return f"SELECT {', '.join(exprs)} FROM {STAGE} s {self.joins}"

    @property
    def merge(self) -> str:
        """Insert what is new; a stored row with the same key stays (first stored wins)."""
        if self.shared:  # the staged text of the shared column rides along, to look it up
            column = self.shared.column
            rows = f"({self._select(raw=f's.{column} AS {RAW}')})"
            return self._insert(rows, (STAGE, column))
        return self._insert(f"({self.source})")

    def _insert(self, rows: str, values: tuple[str, str] | None = None) -> str:
        """Insert ``rows`` (a relation of the table's columns) in key order; a stored key
        stays.

        Partitioned, the unique index holds the partition key too, so ON CONFLICT alone
        would store the same natural key again with another time: the rows whose natural
        key is stored are left out first (anti-join, under ``lock``), and one row per key
        is inserted (copies differing in time make the write count short, and the writer
        then names them). With a ``shared`` column, its values are stored by reference
        (``Shared.sets``, ``Shared.rows``) first: ``values`` names where the rows' texts of
        it are, (staged table, its text column) with ``rows`` giving that text as ``RAW``;
        None: ``rows`` is a table holding the column itself (the pending rows)."""
        cols = ", ".join(self.columns)
        into, picked, prelude = cols, cols, ""
        if self.shared:
            column = self.shared.column
            if values is None:
                texts = self.shared.texts(rows, f"{column}::text")
                raw = f"{column}::text"
            else:
                texts = self.shared.texts(*values)
                raw = RAW
            prelude = self.shared.sets(texts) + ";\n"
            rows = self.shared.rows(rows, texts, raw)
            into = f"{cols}, {self.shared.ref}"
            picked = ", ".join(self.shared.picked(c) for c in (*self.columns, self.shared.ref))
        rows += " src"
        if not self.partition_key:
            return prelude + (
                f"INSERT INTO {self.table} ({into}) SELECT {picked} FROM {rows}"
                f" ORDER BY {self.key_order} ON CONFLICT ({', '.join(self.key)}) DO NOTHING"
            )
        # ON CONFLICT names no key: it arbitrates on the table's unique indexes (for spans
        # since migration 0014 one on an expression, the hashed key, with start_time)
        stored = " AND ".join(f"t.{k} = src.{k}" for k in self.key)
        if self.probe:  # the anti-join looks the key up by its hash (0014's unique index)
            stored += f" AND {self.probe.format(a='t')} = {self.probe.format(a='src')}"
        return prelude + (
            f"INSERT INTO {self.table} ({into}) SELECT DISTINCT ON ({self.key_order}) {picked}"
            f" FROM {rows} WHERE NOT EXISTS (SELECT 1 FROM {self.table} t WHERE {stored})"
            f" ORDER BY {self.key_order} ON CONFLICT DO NOTHING"
        )

    @property
    def key_order(self) -> str:
        """Key order, the same for every writer (bytewise text, "C"), so two writers of the
        same rows take their row locks in one order and cannot deadlock each other. Measured:
        the sort is lost in the noise of the merge's index work (300k spans, 14-18 s either
        way on a loaded machine)."""
        if self.order:
            return self.order
        text = {c.name for c in self.spec if c.kind == TEXT}
        return ", ".join(f'{k} COLLATE "C"' if k in text else k for k in self.key)

    # -- merged at commit (``writer.DEFERRED``): a batch's rows wait in a temporary table ---

    @property
    def pending(self) -> str:
        """The temporary table holding a batch's rows of this kind until it commits."""
        return f"{PENDING}_{self.kind}"

    @property
    def pending_source(self) -> str:
        """``source`` with the caller's ``TAG`` of each row, as the pending table holds it."""
        return self._select(TAG)

    @property
    def create_pending(self) -> str:
        """The pending table: the table's columns as the merge computes them, plus the stage
        key and the tag, dropped with the transaction; with the table's NOT NULL and CHECK
        constraints, so that a row the table would refuse is refused at its write (where
        the row is named), not at the commit."""
        cols = ", ".join(f"'{c}'" for c in self.columns)
        mine = f"a.attname = ANY (ARRAY[{cols}])"
        return f"""DO $obslib$
        DECLARE
            changes text;
        BEGIN
            CREATE TEMPORARY TABLE {self.pending} ON COMMIT DROP AS
                SELECT * FROM ({self.pending_source}) src WITH NO DATA;
            SELECT string_agg(change, ', ') INTO changes FROM (
                SELECT format('ALTER COLUMN %I SET NOT NULL', a.attname) AS change
                FROM pg_attribute a
                WHERE a.attrelid = '{self.table}'::regclass AND a.attnum > 0
                    AND NOT a.attisdropped AND a.attnotnull AND {mine}
                UNION ALL
                SELECT format('ADD CONSTRAINT %I %s', c.conname, pg_get_constraintdef(c.oid))
                FROM pg_constraint c
                WHERE c.conrelid = '{self.table}'::regclass AND c.contype = 'c'
                    AND NOT EXISTS (
                        SELECT 1 FROM pg_attribute a
                        WHERE a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
                            AND NOT {mine})
            ) constraints;
            IF changes IS NOT NULL THEN
                EXECUTE 'ALTER TABLE {self.pending} ' || changes;
            END IF;
        END $obslib$"""

    @property
    def hold(self) -> str:
        """Add the staged rows whose key is neither stored nor pending (one of identical
        copies) to the pending table: its row count is what the write stores new."""
        keys = ", ".join(self.key)
        stored = " AND ".join(f"t.{k} = src.{k}" for k in self.key)
        held = " AND ".join(f"p.{k} = src.{k}" for k in self.key)
        return (
            f"INSERT INTO {self.pending} SELECT DISTINCT ON ({keys}) *"
            f" FROM ({self.pending_source}) src"
            f" WHERE NOT EXISTS (SELECT 1 FROM {self.table} t WHERE {stored})"
            f" AND NOT EXISTS (SELECT 1 FROM {self.pending} p WHERE {held})"
            f" ORDER BY {keys}"
        )

    @property
    def merge_pending(self) -> str:
        """The commit's merge of the pending rows, in key order like every merge."""
        return self._insert(self.pending)

    def pending_conflicts(self, limit: int | None) -> str:
        """A write's conflicts in a batch merged at commit: the staged rows against what is
        stored or pending."""
        cols = ", ".join(self.columns)
        others = f"(SELECT {cols} FROM {self.stored} UNION ALL SELECT {cols} FROM {self.pending})"
        return self._differing(f"({self.source})", others, limit)

    def late_conflicts(self, limit: int | None) -> str:
        """The commit's conflicts: pending rows whose key another writer stored with other
        content since their write, each with its tag; the count is of them all."""
        return self._differing(self.pending, self.stored, limit, tag=True)

    @property
    def conflicts(self) -> str:
        """Staged rows whose key is stored with other content: their count and first keys."""
        return self.conflicts_listing(MAX_KEYS)

    def conflicts_listing(self, limit: int | None) -> str:
        """As ``conflicts``, with up to ``limit`` keys (None: every key, for an importer
        that lists each record it refused)."""
        return self._differing(f"({self.source})", self.stored, limit)

    def _differing(self, rows: str, stored: str, limit: int | None, *, tag: bool = False) -> str:
        """The stage keys (k0, k1, ...; with the ``TAG`` if ``tag``) of ``rows`` whose key
        ``stored`` holds with other content, up to ``limit`` (None: all), each with the
        count of them all."""
        rest = [c for c in self.columns if c not in self.key]
        keys = ", ".join(f"k{i}" for i in range(len(self.stage_key)))
        # pending rows are one per key already; staged ones may repeat a key
        listed, picked = (
            (f"{keys}, {TAG}", f"{keys}, src.{TAG}") if tag else (keys, f"DISTINCT {keys}")
        )
        return (
            f"SELECT {listed}, count(*) OVER () FROM (SELECT {picked}"
            f" FROM {rows} src JOIN {stored} t USING ({', '.join(self.key)})"
            f" WHERE ROW({', '.join(f'src.{c}' for c in rest)})"
            f" IS DISTINCT FROM ROW({', '.join(f't.{c}' for c in rest)})) c"
            f" ORDER BY {keys}" + ("" if limit is None else f" LIMIT {int(limit)}")
        )


@dataclass(frozen=True)
class Shared:
    """A JSON ``column`` whose repeated values are stored once, in ``table`` (``id``,
    ``column``; unique on the MD5 of the value's text), a row naming its value in ``ref``
    with its own ``column`` NULL; ``view`` shows the rows whole (``COALESCE``: the row's
    own value, else its set's). Spans' tags since migration 0018.

    The writers' rule: a row's value goes by reference when the same text is already in
    ``table`` or occurs at least twice in the write; else it stays in the row (a value no
    other row shares would cost a row of ``table`` and an index entry more). A set another
    writer adds at the same moment and this statement cannot see leaves the value in the
    row: both are the same tags to every reader."""

    column: str
    table: str
    ref: str
    view: str

    def texts(self, table: str, text: str) -> str:
        """The distinct texts ``text`` (an expression of ``table``'s rows) of the values
        ``table`` holds, as ``raw`` with their count ``n``: a few hundred rows where the
        write has a million, so the value's JSONB text (its identity) and its MD5 are
        computed once per text, not once per row and again for each use (the per-row
        lookup cost 4.6 s of a 1M-span merge). A text is finer than the value: texts
        differing only in spacing or key order become one value in ``sets``."""
        return (
            f"(SELECT {text} AS raw, count(*) AS n FROM {table}"
            f" WHERE {self.column} IS NOT NULL GROUP BY 1)"
        )

    def sets(self, texts: str) -> str:
        """Store the values the write repeats (``texts``, from ``texts``: counted by their
        JSONB text, so a value written in two spellings counts twice) that ``table`` does
        not hold yet. Every text is cast to JSONB here, so one jsonb refuses fails the
        write (``retried``: the row at fault is then named)."""
        c = self.column
        return (
            f"INSERT INTO {self.table} ({c}) SELECT v::jsonb FROM (SELECT raw::jsonb::text AS v,"
            f" n FROM {texts} d) x GROUP BY v HAVING sum(n) > 1 ORDER BY v ON CONFLICT DO NOTHING"
        )

    def rows(self, rows: str, texts: str, raw: str) -> str:
        """``rows`` with ``ref``: the id of their value in ``table``, if it is there, found
        by the row's text (``raw``, an expression of ``rows``' columns) among ``texts``."""
        c = self.column
        found = (
            f"SELECT d.raw, v.id FROM {texts} d JOIN {self.table} v"
            f" ON md5(v.{c}::text) = md5(d.raw::jsonb::text) AND v.{c}::text = d.raw::jsonb::text"
        )
        return (
            f"(SELECT r.*, m.id AS {self.ref} FROM {rows} r"
            f" LEFT JOIN ({found}) m ON m.raw = r.{raw})"
        )

    def picked(self, column: str) -> str:
        """What the insert stores in ``column`` of a row of ``rows``."""
        if column == self.column:
            return f"CASE WHEN src.{self.ref} IS NULL THEN src.{column} END AS {column}"
        return f"src.{column}"


def retried(statement: str, attempts: int) -> str:
    """``statement`` in a PL/pgSQL loop that retries a deadlock or serialization failure.

    Each attempt runs in its own subtransaction (the EXCEPTION block), so a failed one
    releases its locks and the transaction goes on; the merge is idempotent, so a retry
    is safe. A data error (jsonb refusing a text, a value out of range) is caught too, so
    the transaction survives to find the row at fault (``json_check``): checking every
    JSON text up front would cost ~4 s per million spans. Rows inserted, retries taken
    and the data error are left in ``MERGE_RESULT``'s settings.
    """
    return f"""DO $obslib$
        DECLARE
            inserted bigint;
            attempt int := 1;
        BEGIN
            PERFORM set_config('obslib.merge_error', '', true);
            LOOP
                BEGIN
                    {statement};
                    GET DIAGNOSTICS inserted = ROW_COUNT;
                    PERFORM set_config('obslib.merge_inserted', inserted::text, true);
                    PERFORM set_config('obslib.merge_retries', (attempt - 1)::text, true);
                    RETURN;
                EXCEPTION WHEN deadlock_detected OR serialization_failure THEN
                    IF attempt >= {int(attempts)} THEN
                        RAISE;
                    END IF;
                    attempt := attempt + 1;
                    PERFORM pg_sleep(0.05 * 2 ^ attempt * (0.5 + random()));  -- jitter
                WHEN data_exception THEN
                    PERFORM set_config('obslib.merge_inserted', '0', true);
                    PERFORM set_config('obslib.merge_retries', (attempt - 1)::text, true);
                    PERFORM set_config('obslib.merge_error', SQLERRM, true);
                    RETURN;
                END;
            END LOOP;
        END $obslib$"""


def json_check(column: str) -> str:
    """The first staged row whose JSON text jsonb refuses, with PostgreSQL's reason (run
    after a merge failed on data, to name the row).

    ``column`` comes from a spec (an allow-list), never from the caller."""
    if column not in _JSON_COLUMNS:
        raise ValueError(f"{column} is not a JSON column of any spec")
    return (
        f"SELECT {ROW}, (pg_input_error_info({column}, 'jsonb')).message FROM {STAGE}"
        f" WHERE NOT pg_input_is_valid({column}, 'jsonb') ORDER BY {ROW} LIMIT 1"
    )


SPANS = Target(
    "spans",
    schema.SPANS,
    SPAN_SPEC,
    key=("trace_id", "span_id"),
    stage_key=("trace_id", "span_id"),
    columns=(*schema.SPAN_COLUMNS, schema.SAMPLING_PROBABILITY),
    # the column's own type, so a re-sent span compares equal to the stored one
    exprs={schema.SAMPLING_PROBABILITY: f"s.{schema.SAMPLING_PROBABILITY}::real"},
    partition_key="start_time",
    probe="hashtextextended({a}.span_id, hashtextextended({a}.trace_id, 0))",
    shared=Shared("tags", schema.SPAN_TAG_SETS, schema.TAG_SET, schema.SPANS_TAGGED),
)
LOGS = Target(
    "logs",
    schema.LOGS,
    LOG_SPEC,
    key=("log_id",),
    stage_key=("log_id",),
    columns=tuple(c.name for c in LOG_SPEC),
    partition_key="timestamp",
)
SLOS = Target(
    "slos",
    schema.SLOS,
    SLO_SPEC,
    key=("service_name", "slo_name"),
    stage_key=("service_name", "slo_name"),
    columns=tuple(c.name for c in SLO_SPEC),
    exprs={  # an error-rate SLO's target is the most errors allowed: its budget
        "error_budget_percent": "COALESCE(s.error_budget_percent, CASE s.slo_type"
        " WHEN 'error_rate' THEN s.target_value ELSE 100 - s.target_value END)::numeric(7,4)"
    },
)
MEASUREMENTS = Target(
    "slo_measurements",
    schema.SLO_MEASUREMENTS,
    MEASUREMENT_SPEC,
    key=("slo_id", "measurement_timestamp"),
    stage_key=("service_name", "slo_name", "measurement_timestamp"),
    columns=(
        "slo_id",
        "measurement_timestamp",
        "actual_value",
        "target_value",
        "compliance_status",
        "error_budget_remaining",
        "measurement_period",
    ),
    exprs={
        "slo_id": "o.id",
        "measurement_period": "make_interval(secs => s.measurement_period_s)",
    },
    joins=f"JOIN {schema.SLOS} o USING (service_name, slo_name)",
    order="slo_id, measurement_timestamp",
    unresolved=f"""
        SELECT s.service_name || '/' || s.slo_name FROM {STAGE} s
        LEFT JOIN {schema.SLOS} o USING (service_name, slo_name)
        WHERE o.id IS NULL LIMIT 1""",
)
ALERTS = Target(
    "alert_definitions",
    schema.ALERT_DEFINITIONS,
    ALERT_SPEC,
    key=("alert_name",),
    stage_key=("alert_name",),
    columns=tuple(c.name for c in ALERT_SPEC),
    exprs={
        "notification_channels": "ARRAY(SELECT jsonb_array_elements_text("
        "s.notification_channels::jsonb))"
    },
)
INCIDENTS = Target(
    "incidents",
    schema.ALERT_INCIDENTS,
    INCIDENT_SPEC,
    key=("incident_id",),
    stage_key=("incident_id",),
    columns=(
        "incident_id",
        "alert_id",
        "status",
        "severity",
        "triggered_at",
        "acknowledged_at",
        "resolved_at",
        "acknowledged_by",
        "resolved_by",
        "escalation_level",
        "incident_data",
    ),
    exprs={"alert_id": "a.id"},
    joins=f"LEFT JOIN {schema.ALERT_DEFINITIONS} a ON a.alert_name = s.alert_name",
    unresolved=f"""
        SELECT s.alert_name FROM {STAGE} s
        LEFT JOIN {schema.ALERT_DEFINITIONS} a ON a.alert_name = s.alert_name
        WHERE s.alert_name IS NOT NULL AND a.id IS NULL LIMIT 1""",
)

TARGETS = {t.kind: t for t in (SPANS, LOGS, SLOS, MEASUREMENTS, ALERTS, INCIDENTS)}
_JSON_COLUMNS = {c.name for t in TARGETS.values() for c in t.spec if c.kind == JSON}
