"""What the storage migrations change: write time, bytes per span and per log record in
PostgreSQL, and load times, per migration version (day partitions 0012 against the plain
tables of 0011 by default; ``--versions head`` writes the demo once, the 10M run).

Why: issue 24 asks for <= 300 bytes per span in PostgreSQL (heap + indexes + TOAST of
``distributed_traces``; 593 measured at 0011 on the 500k demo), with loaders no slower.

What it does: writes the demo (``obslib.demo.run``, seed 7, ``--spans``) into a fresh
database migrated to each of ``--versions`` (the schema the writers see decides how they
merge), each timed, then VACUUM ANALYZE; measures for each the
bytes per span (``pg_total_relation_size`` of the table and all its partitions / spans)
split into heap, TOAST and indexes, the same for logs, and times ``load.spans`` for the last
whole day and for the whole window (median of ``--runs``, the two databases alternating).
Spans' bytes include their tag sets' table (migration 0018: indexes and TOAST too).
Where the bytes go: per index, and per column ``avg(pg_column_size(...))``; and, on the
same rows, each in a transaction that is rolled back: the indexes 0014 replaced and the
primary keys 0017 dropped (their down migrations: sizes with nothing else different), the
indexes rebuilt at once (REINDEX: how much of them is the free space random inserts leave),
and packed heap copies with every span's tags in its row (as before 0018), as stored, and
with binary ids. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
import uuid
from pathlib import Path

import _common as c
import pandas as pd
import psycopg
from psycopg import sql

from obslib import schema

logger = logging.getLogger("bench.storage")

TARGET_BYTES_PER_SPAN = 300
VERSIONS = (11, 12)
HEAD = 0  # --versions head: every migration
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
LEAN_KEYS_DOWN = MIGRATIONS_DIR / "0014_lean_span_keys.down.sql"
PRIMARY_KEYS_DOWN = MIGRATIONS_DIR / "0017_drop_unused_primary_keys.down.sql"
# Where the heap's bytes go, on the same rows: packed copies of the spans (as the day
# partitions are), built in a transaction that is rolled back, from the view that gives every
# span its tags whole (migration 0018; before it, the table): every span's tags in its row
# (as before 0018), as stored (0018: a set that repeats by number), and binary ids (uuid
# trace id, bigint span ids: the demo's ids are all hex) with either.
_ID = "('x' || {c})::bit(64)::bigint"
_COLUMNS = """id, {ids}, service_name, operation_name, start_time, end_time, duration_ms, status,
        {tags}, logs, span_kind, sampling_probability"""
_TEXT_IDS = "trace_id, span_id, parent_span_id"
_BINARY_IDS = f"""trace_id::uuid AS trace_id, {_ID.format(c="span_id")} AS span_id,
        {_ID.format(c="parent_span_id")} AS parent_span_id"""
_HEAP_COPIES = {
    "tags in every row (before 0018)": ("{src}", _TEXT_IDS, "tags"),
    "as stored (0018: a repeated tag set by number)": ("{tab}", _TEXT_IDS, "tags, tag_set"),
    "binary ids, tags in every row": ("{src}", _BINARY_IDS, "tags"),
    "binary ids, as stored": ("{tab}", _BINARY_IDS, "tags, tag_set"),
}
# the table and its partitions (a plain table: itself)
_FAMILY = """SELECT c.oid FROM pg_class c WHERE c.oid = %(t)s::regclass
UNION ALL SELECT inhrelid FROM pg_inherits WHERE inhparent = %(t)s::regclass"""
_SIZES = f"""SELECT sum(pg_total_relation_size(oid)), sum(pg_relation_size(oid)),
       sum(pg_indexes_size(oid)) FROM ({_FAMILY}) f"""
_INDEXES = f"""SELECT coalesce(p.inhparent, i.indexrelid)::regclass::text,
       sum(pg_relation_size(i.indexrelid))
FROM pg_index i LEFT JOIN pg_inherits p ON p.inhrelid = i.indexrelid
WHERE i.indrelid IN ({_FAMILY}) GROUP BY 1 ORDER BY 2 DESC"""


def fresh(server_url: str, version: int) -> str:
    from obslib.storage.migrate import Migrator

    name = f"obslib_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = c.with_database(server_url, name)
    Migrator(url).up(to=version or None)
    return url


def drop(server_url: str, url: str) -> None:
    from sqlalchemy.engine import make_url

    from obslib.storage import db

    db.close_adbc_reads()
    name = make_url(url).database
    with psycopg.connect(server_url, autocommit=True) as conn:
        statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(statement.format(sql.Identifier(name)))


def sizes(url: str, table: str) -> dict:
    """Bytes of ``table`` (all partitions): total, heap, TOAST, indexes, and per index."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))
        total, heap, indexes = (int(v or 0) for v in conn.execute(_SIZES, {"t": table}).fetchone())
        rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        count = rows.fetchone()[0]
        per_index = dict(conn.execute(_INDEXES, {"t": table}).fetchall())
        shared = 0  # spans: their tag sets (0018), all of the table, indexes and TOAST
        if table == schema.SPANS:
            found = conn.execute("SELECT to_regclass(%s)", (schema.SPAN_TAG_SETS,)).fetchone()
            if found[0]:
                conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(found[0])))
                shared = conn.execute("SELECT pg_total_relation_size(%s)", found).fetchone()[0]
    return {
        "rows": count,
        "total": total + shared,
        "heap": heap,
        "toast": total - heap - indexes,
        "indexes": indexes,
        "tag_sets": shared,
        "per_index": {k: int(v) for k, v in per_index.items()},
    }


def before_lean_keys(url: str, table: str) -> dict | None:
    """Index bytes of ``table`` with 0014's down migration applied, rolled back after (the
    same rows with 0012's natural-key constraint); None below 0014."""
    with psycopg.connect(url) as conn:
        version = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
        if version < 14:
            return None
        with conn.transaction(force_rollback=True):
            conn.execute(LEAN_KEYS_DOWN.read_text())
            indexes = int(conn.execute(_SIZES, {"t": table}).fetchone()[2] or 0)
            per_index = dict(conn.execute(_INDEXES, {"t": table}).fetchall())
    return {"indexes": indexes, "per_index": {k: int(v) for k, v in per_index.items()}}


def rolled_back(url: str, table: str, down: Path) -> dict | None:
    """Index bytes of ``table`` with the down migration ``down`` applied in a transaction
    that is rolled back (the same rows with what that migration removed); None below it."""
    number = int(down.name[:4])
    with psycopg.connect(url) as conn:
        version = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
        if version < number:
            return None
        with conn.transaction(force_rollback=True):
            conn.execute(down.read_text())
            indexes = int(conn.execute(_SIZES, {"t": table}).fetchone()[2] or 0)
            per_index = dict(conn.execute(_INDEXES, {"t": table}).fetchall())
    return {"indexes": indexes, "per_index": {k: int(v) for k, v in per_index.items()}}


def packed(url: str, table: str) -> dict:
    """Index bytes of ``table`` with every day partition reindexed (rolled back after): what
    the indexes take built at once rather than grown by the writers' inserts."""
    with psycopg.connect(url) as conn, conn.transaction(force_rollback=True):
        parts = conn.execute(
            "SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = %s::regclass", (table,)
        ).fetchall()
        for (part,) in parts:
            conn.execute(sql.SQL("REINDEX TABLE {}").format(sql.Identifier(*part.split("."))))
        indexes = int(conn.execute(_SIZES, {"t": table}).fetchone()[2] or 0)
        per_index = dict(conn.execute(_INDEXES, {"t": table}).fetchall())
    return {"indexes": indexes, "per_index": {k: int(v) for k, v in per_index.items()}}


def narrower_heaps(url: str) -> dict[str, float]:
    """Heap bytes per span of packed copies of the same spans (rolled back): with every
    span's tags in its row, as stored, and with binary ids."""
    out: dict[str, float] = {}
    with psycopg.connect(url) as conn, conn.transaction(force_rollback=True):
        tagged = conn.execute("SELECT to_regclass(%s)::text", (schema.SPANS_TAGGED,)).fetchone()[0]
        for n, (label, (source, ids, tags)) in enumerate(_HEAP_COPIES.items()):
            if "tag_set" in tags and not tagged:
                continue  # before 0018: no tag sets
            select = f"SELECT {_COLUMNS.format(ids=ids, tags=tags)} FROM "
            select += source.format(src=tagged or schema.SPANS, tab=schema.SPANS)
            conn.execute(f"CREATE TEMP TABLE heap_copy_{n} AS {select}")
            size, rows = conn.execute(
                f"SELECT pg_relation_size('heap_copy_{n}'), count(*) FROM heap_copy_{n}"
            ).fetchone()
            out[label] = round(size / rows, 1) if rows else float("nan")
    return out


def column_bytes(url: str, table: str, columns: tuple[str, ...]) -> dict[str, float]:
    """avg(pg_column_size(col)) per column over a 1 % sample (names from schema constants)."""
    parts = sql.SQL(", ").join(
        sql.SQL("avg(pg_column_size({}))").format(sql.Identifier(col)) for col in columns
    )
    query = sql.SQL("SELECT {} FROM {} TABLESAMPLE SYSTEM (1)").format(parts, sql.Identifier(table))
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
    return {col: round(float(v or 0), 1) for col, v in zip(columns, row, strict=True)}


def time_loads(urls: dict[int, str], start: pd.Timestamp, end: pd.Timestamp, runs: int) -> dict:
    from obslib import load

    day = (end - pd.Timedelta(days=1)).floor("D")
    windows = {"one_day": (day, day + pd.Timedelta(days=1)), "window": (start, end)}
    times: dict[tuple[int, str], list[float]] = {}
    for _ in range(runs):
        for window, (lo, hi) in windows.items():
            for version, url in urls.items():  # alternating, so load drifts hit both
                t = time.perf_counter()
                load.spans(lo, hi, url=url)
                times.setdefault((version, window), []).append(time.perf_counter() - t)
    return {f"{name(v)}_{n}": round(statistics.median(ts), 3) for (v, n), ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="load timings per window")
    parser.add_argument(
        "--versions",
        default="11,12",
        help="migration versions to compare, comma-separated; head: all (default 11,12)",
    )
    parser.add_argument(
        "--lone-tags",
        type=int,
        default=0,
        metavar="N",
        help="also write N spans whose tag sets no other span shares at 0017 and at head",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    global VERSIONS
    VERSIONS = tuple(HEAD if v.strip() == "head" else int(v) for v in args.versions.split(","))
    c.setup_logging(args.verbose)
    from obslib import demo

    result: dict = {"spans": args.spans}
    with c.server() as server_url:
        urls: dict[int, str] = {}
        try:
            measured = {}
            for version in VERSIONS:
                url = urls[version] = fresh(server_url, version)
                t = time.perf_counter()
                summary = demo.run(seed=c.SEED, spans=args.spans, url=url)
                write_s = time.perf_counter() - t
                logger.info("%d: demo written in %.1f s", version, write_s)
                spans, logs = sizes(url, schema.SPANS), sizes(url, schema.LOGS)
                spans["before_0014"] = before_lean_keys(url, schema.SPANS)
                spans["before_0017"] = rolled_back(url, schema.SPANS, PRIMARY_KEYS_DOWN)
                spans["packed"] = packed(url, schema.SPANS)
                spans["narrower_heaps"] = narrower_heaps(url)
                measured[version] = dict(
                    write_s=round(write_s, 1),
                    spans=spans,
                    logs=logs,
                    span_columns=column_bytes(
                        url,
                        schema.SPANS,
                        (
                            *schema.SPAN_COLUMNS,
                            *((schema.TAG_SET,) if version == HEAD or version >= 18 else ()),
                        ),
                    ),
                )
            loads = time_loads(urls, summary.start, summary.end, args.runs)
            if args.lone_tags:
                result["lone_tags_bytes_per_span"] = lone_tags(server_url, args.lone_tags)
        finally:
            for url in urls.values():
                drop(server_url, url)
    report(measured, loads, result)
    print(json.dumps(result))


def lone_tags(server_url: str, n: int) -> dict[str, float]:
    """Bytes per span (heap + indexes + tag sets) of ``n`` spans whose tags no other span
    shares (the demo's kind of tags plus a request id of its own), written through the
    writers into a database at 0017 (tags in every row) and one at head (0018's rule keeps
    a lone set in its row): what tag sets cost where they cannot help."""
    from obslib.ingest import write_spans

    start = pd.Timestamp("2031-01-01", tz="UTC") + pd.to_timedelta(range(n), unit="ms")
    frame = pd.DataFrame(
        {
            "trace_id": [f"{i // 8 + 1:032x}" for i in range(n)],
            "span_id": [f"{i + 1:016x}" for i in range(n)],
            "parent_span_id": [f"{i + 2**40:016x}" for i in range(n)],  # no NULL in the row
            "service_name": "api-gateway",
            "operation_name": "GET /api/v1/domains",
            "span_kind": "server",
            "start_time": start,
            "end_time": start + pd.Timedelta(milliseconds=5),
            "tags": [
                json.dumps(
                    {
                        "component": "http",
                        "host.name": "api-gateway-7d9f-2",
                        "http.method": "GET",
                        "http.route": "/api/v1/domains",
                        "http.status_code": 200,
                        "request.id": f"{i:012d}",
                    }
                )
                for i in range(n)
            ],
        }
    )
    out = {}
    for version in (17, HEAD):
        url = fresh(server_url, version)
        try:
            write_spans(frame, url=url)
            out[name(version)] = round(sizes(url, schema.SPANS)["total"] / n, 1)
        finally:
            drop(server_url, url)
    print(f"\n{n:,} spans with lone tag sets, bytes per span: {out}")
    return out


def name(version: int) -> str:
    return "head" if version == HEAD else str(version)


def report(measured: dict, loads: dict, result: dict) -> None:
    def per(v: int, table: str, part: str) -> float:
        m = measured[v][table]
        return m[part] / m["rows"] if m["rows"] else float("nan")

    head = f"{'':28}" + "".join(f"{'migration ' + name(v):>16}" for v in VERSIONS)
    print(head)
    print(f"{'write (demo.run) s':28}" + "".join(f"{measured[v]['write_s']:>16}" for v in VERSIONS))
    for table in ("spans", "logs"):
        counts = "".join(f"{measured[v][table]['rows']:>16,}" for v in VERSIONS)
        print(f"{table + ' rows':28}" + counts)
        for part in ("total", "heap", "toast", "indexes", "tag_sets"):
            if part not in measured[VERSIONS[0]][table]:
                continue
            label = f"  {table} B/row {part}"
            print(f"{label:28}" + "".join(f"{per(v, table, part):>16.1f}" for v in VERSIONS))
    for window in ("one_day", "window"):
        label = f"load.spans {window} s"
        print(f"{label:28}" + "".join(f"{loads[f'{name(v)}_{window}']:>16}" for v in VERSIONS))
    for v in VERSIONS:
        print(f"\nmigration {name(v)}: bytes per span by index")
        for index, size in measured[v]["spans"]["per_index"].items():
            print(f"  {index:48} {size / measured[v]['spans']['rows']:8.1f}")
    for v in VERSIONS:
        old = measured[v]["spans"]["before_0014"]
        if old:
            rows = measured[v]["spans"]["rows"]
            print(
                f"\nmigration {name(v)}, the same rows with 0014 rolled back: index bytes per span"
            )
            for index, size in old["per_index"].items():
                print(f"  {index:48} {size / rows:8.1f}")
            print(
                f"  {'indexes':48} {old['indexes'] / rows:8.1f} (with 0014: "
                f"{measured[v]['spans']['indexes'] / rows:.1f})"
            )
            result["index_bytes_per_span_before_0014"] = round(old["indexes"] / rows, 1)
    last = measured[VERSIONS[-1]]["spans"]
    rows = last["rows"]
    if last.get("before_0017"):
        print("\nthe same rows with 0017 rolled back (the primary keys): index bytes per span")
        for index, size in last["before_0017"]["per_index"].items():
            print(f"  {index:48} {size / rows:8.1f}")
        result["index_bytes_per_span_before_0017"] = round(last["before_0017"]["indexes"] / rows, 1)
    print("\nthe same indexes rebuilt at once (every day REINDEXed): bytes per span")
    for index, size in last["packed"]["per_index"].items():
        print(f"  {index:48} {size / rows:8.1f}")
    result["index_bytes_per_span_packed"] = round(last["packed"]["indexes"] / rows, 1)
    print("\nheap bytes per span of packed copies of the same rows")
    for label, size in last["narrower_heaps"].items():
        print(f"  {label:60} {size:8.1f}")
    result["heap_bytes_per_span_copies"] = last["narrower_heaps"]
    print(f"\nmigration {name(VERSIONS[-1])}: avg bytes per span by column (pg_column_size)")
    for col, size in measured[VERSIONS[-1]]["span_columns"].items():
        print(f"  {col:48} {size:8.1f}")
    now = per(VERSIONS[-1], "spans", "total")
    met = now <= TARGET_BYTES_PER_SPAN
    print(
        f"\nbytes per span at {name(VERSIONS[-1])}: {now:.1f} (target <= {TARGET_BYTES_PER_SPAN}):"
        f" {'met' if met else 'missed'}"
    )
    result.update(
        write_s={name(v): measured[v]["write_s"] for v in VERSIONS},
        bytes_per_span={name(v): round(per(v, "spans", "total"), 1) for v in VERSIONS},
        index_bytes_per_span={name(v): round(per(v, "spans", "indexes"), 1) for v in VERSIONS},
        bytes_per_log={name(v): round(per(v, "logs", "total"), 1) for v in VERSIONS},
        load_s=loads,
        bytes_per_span_target=TARGET_BYTES_PER_SPAN,
        met=met,
    )


if __name__ == "__main__":
    main()
