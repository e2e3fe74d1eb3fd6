"""Peak memory of ``obslib ingest`` on hostile files: a gzip bomb, /dev/zero, one huge
OTLP/JSON document, against the same spans as JSON lines (the baseline).

Why: the importer promises bounded memory. Before its limits, a 4 GiB gzip bomb or
/dev/zero ended in MemoryError and one 118 MB document peaked at ~2 GB where the same spans
as JSON lines took ~350 MB. Each case here is imported with ``obslib.ingest.import_file``
(default limits) in a fresh interpreter, which reports its peak RSS above its RSS after
imports (``_common.PeakRss``), the seconds taken and the outcome (stored or the refusal).

Cases:

- ``gzip bomb``: 4 GiB of zero bytes as a ~4 MB multi-member gzip (a 64 MiB member
  repeated): one "line" without end, stopped at the document limit;
- ``gzip of blank lines``: ``--blank-mib`` MiB of newlines (1,100: past the 1 GiB file
  limit), gzip: read a buffer at a time, stopped at the file limit;
- ``/dev/zero``: refused before reading;
- ``one document``: N generated spans (bench/ingest_otlp.py's generator) in one OTLP/JSON
  document of ``--doc-mb`` MB: refused by the document limit when over it;
- ``one document under the limit``: the same spans cut to fit just under the document
  limit: what a document the importer accepts costs;
- ``JSON lines``: the ``--doc-mb`` spans as JSON lines of 1,000 spans (the baseline).

The last line printed is one JSON object: ``{case: {"peak_mb", "seconds", "outcome"}}``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import _common as c
import orjson

logger = logging.getLogger("bench.hostile_files")
SCRIPT = Path(__file__)


def child(path: str, url: str) -> dict:
    """Import ``path`` in this (fresh) interpreter: peak RSS, seconds, outcome."""
    from obslib.errors import InputError
    from obslib.ingest import importer

    peak = c.PeakRss()
    start = time.perf_counter()
    try:
        report = importer.import_file(path, "otlp", url=url)
        o = report.outcome
        outcome = f"stored: {o.spans.accepted} spans accepted, {o.rejected} rejected"
        if report.empty:
            outcome = "empty (blank), nothing stored"
    except InputError as err:
        outcome = f"refused: {err}"
    except MemoryError:
        outcome = "MemoryError"
    return {
        "peak_mb": round(peak.increase() / c.MB),
        "seconds": round(time.perf_counter() - start, 2),
        "outcome": outcome,
    }


def gzip_bomb(path: Path, gib: int) -> None:
    """``gib`` GiB of zero bytes, gzip: one 64 MiB member compressed once, repeated."""
    member = gzip.compress(b"\0" * 64 * c.MB, compresslevel=9)
    with path.open("wb") as f:
        for _ in range(gib * 16):
            f.write(member)


def blank_lines(path: Path, mib: int) -> None:
    member = gzip.compress(b"\n" * c.MB, compresslevel=9)
    path.write_bytes(member * mib)


def documents(folder: Path, doc_mb: float, under_bytes: int) -> dict[str, Path]:
    """One document of ~doc_mb MB, one just under ``under_bytes``, and JSON lines of the
    first's spans."""
    from ingest_otlp import _groups, generate, json_request

    spans_per_mb = 2_000  # ~500 bytes a span in OTLP/JSON; measured, then adjusted below
    n = int(doc_mb * spans_per_mb)
    spans = generate(n)
    doc = orjson.dumps(json_request(spans))
    per_span = len(doc) / n
    if abs(len(doc) - doc_mb * c.MB) > 0.05 * doc_mb * c.MB:  # regenerate at the right size
        n = int(doc_mb * c.MB / per_span)
        spans = generate(n)
        doc = orjson.dumps(json_request(spans))
    out = {"one": folder / "one.json", "lines": folder / "lines.jsonl"}
    out["one"].write_bytes(doc)
    with out["lines"].open("wb") as f:
        for group in _groups(spans, 1_000):
            f.write(orjson.dumps(json_request(group)) + b"\n")
    fit = int(under_bytes * 0.95 / per_span)
    out["under"] = folder / "under.json"
    out["under"].write_bytes(orjson.dumps(json_request(spans[:fit])))
    logger.info(
        "%d spans: one document %.0f MB, JSON lines %.0f MB; under the limit %d spans %.0f MB",
        n, len(doc) / c.MB, out["lines"].stat().st_size / c.MB, fit,
        out["under"].stat().st_size / c.MB,
    )  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bomb-gib", type=int, default=4, help="the gzip bomb's inflated GiB")
    parser.add_argument("--blank-mib", type=int, default=1100, help="MiB of newlines, gzip")
    parser.add_argument("--doc-mb", type=float, default=118, help="the single document's MB")
    parser.add_argument("--child", metavar="FILE", help=argparse.SUPPRESS)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.child:
        import os

        print(json.dumps(child(args.child, os.environ[c.URL_ENV])))
        return
    c.setup_logging(args.verbose)
    from obslib.ingest import importer

    results: dict[str, dict] = {}
    with (
        tempfile.TemporaryDirectory(prefix="obb-hostile-") as tmp,
        c.server() as server_url,
        c.scratch_database(server_url) as url,
    ):
        folder = Path(tmp)
        bomb = folder / "bomb.json.gz"
        gzip_bomb(bomb, args.bomb_gib)
        blank = folder / "blank.json.gz"
        blank_lines(blank, args.blank_mib)
        docs = documents(folder, args.doc_mb, importer.MAX_DOCUMENT_BYTES)
        cases = [
            (
                f"gzip bomb, {args.bomb_gib} GiB of zeros ({bomb.stat().st_size / c.MB:.1f} MB)",
                bomb,
            ),
            (f"gzip of {args.blank_mib} MiB of blank lines", blank),
            ("/dev/zero", Path("/dev/zero")),
            (f"one document ({docs['one'].stat().st_size / c.MB:.0f} MB)", docs["one"]),
            (
                f"one document under the limit ({docs['under'].stat().st_size / c.MB:.0f} MB)",
                docs["under"],
            ),
            (
                f"JSON lines, same spans ({docs['lines'].stat().st_size / c.MB:.0f} MB)",
                docs["lines"],
            ),
        ]
        for label, path in cases:
            c.reset_table(url)
            results[label] = c.run_child(SCRIPT, ["--child", str(path)], url)
            logger.info("%s: %s", label, results[label])

    print("\nobslib ingest otlp on hostile files (default limits), fresh interpreter each")
    rows = [[label, r["peak_mb"], r["seconds"], r["outcome"][:110]] for label, r in results.items()]
    print(c.table(["case", "peak MB", "seconds", "outcome"], rows))
    print(json.dumps(results))


if __name__ == "__main__":
    sys.exit(main())
