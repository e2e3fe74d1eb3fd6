"""The file importer's limits, through the real command: only regular files are read, a
file's decompressed content and each JSON document are capped, and --rejects is checked
before anything is imported. Every refusal is one line naming the file and the limit, exit
2, nothing of the refused file stored, the next file still imported."""

from __future__ import annotations

import gzip
import json
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from obslib import schema
from obslib.errors import InputError, UsageError
from obslib.ingest import importer
from obslib.storage.migrate import Migrator
from tests.conftest import MIGRATIONS, run_cli, scratch_database
from tests.ingest.test_hostile import b64, counts, span, traces, write

NOT_REGULAR = "not a regular file ({}); only regular files are imported, plain or gzip"


@pytest.fixture(scope="module")
def limits_db(server_url: str) -> Iterator[str]:
    """One migrated database for the module."""
    with scratch_database(server_url) as url:
        Migrator(url, MIGRATIONS).up()
        yield url


@pytest.fixture
def env(limits_db: str) -> dict[str, str]:
    """The command's environment, pointing at the module's database with its tables empty."""
    with psycopg.connect(limits_db, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {schema.SPANS}, {schema.LOGS}")
    return {"OBSLIB_DATABASE_URL": limits_db}


def stored(env: dict[str, str]) -> tuple[int, int]:
    return counts(env["OBSLIB_DATABASE_URL"])


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("obslib: error: ")]


def error(path: Path | str, message: str) -> str:
    return f"obslib: error: {path}: {message} (nothing of it stored)"


def lines_of(n: int, start: int = 0) -> bytes:
    """n one-span requests as JSON lines (span ids start.. start+n-1)."""
    return b"".join(json.dumps(traces(span(i))).encode() + b"\n" for i in range(start, start + n))


# -- files that are not regular files -------------------------------------------------------


def test_a_fifo_dev_zero_a_folder_and_a_link_to_dev_zero_are_refused_and_the_next_file_goes_in(
    env: dict[str, str], tmp_path: Path
) -> None:
    """Without a writer a FIFO used to hang the command and /dev/zero to end in MemoryError:
    each is now one line naming the file, before anything is read, and the good file after
    them is stored."""
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    link = tmp_path / "zero.json"
    link.symlink_to("/dev/zero")
    good = write(tmp_path / "good.json", traces(span(0), span(1)))
    result = run_cli(
        "ingest", "otlp", str(fifo), "/dev/zero", str(link), str(tmp_path), str(good),
        env=env,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert errors(result.stderr) == [
        error(fifo, NOT_REGULAR.format("a FIFO")),
        error("/dev/zero", NOT_REGULAR.format("a character device")),
        error(link, NOT_REGULAR.format("a character device")),
        error(tmp_path, NOT_REGULAR.format("a folder")),
    ]
    assert result.stdout.splitlines()[-1] == (
        "total, 5 file(s), 4 refused whole: 2 records: 2 accepted, 0 duplicate, 0 rejected"
    )
    assert stored(env) == (2, 0)


# -- the size of a file ---------------------------------------------------------------------


def test_a_gzip_bomb_stops_at_max_file_bytes_and_stores_nothing_of_it(
    env: dict[str, str], tmp_path: Path
) -> None:
    """80 KB of gzip inflating to 40 MB of valid JSON lines, with --max-file-bytes 1MiB: the
    import stops one line past 1 MiB, rolls back whatever it wrote, and the next file goes
    in; the limit raised, the same file imports."""
    line = json.dumps(traces(span(0))).encode() + b"\n"
    bomb = tmp_path / "bomb.json.gz"
    bomb.write_bytes(gzip.compress(line * (40 * 2**20 // len(line)), compresslevel=9))
    good = write(tmp_path / "good.json", traces(span(1)))
    result = run_cli("ingest", "otlp", "--max-file-bytes", "1MiB", str(bomb), str(good), env=env)
    assert result.returncode == 2, result.stderr
    assert errors(result.stderr) == [
        error(
            bomb,
            "over the limit of 1 MiB a file once decompressed"
            " (--max-file-bytes 1048576; a larger value raises it)",
        )
    ]
    assert stored(env) == (1, 0)
    # the API, 500 records a chunk: chunks were written before the limit, and rolled back
    with pytest.raises(InputError, match="over the limit of 1 MiB a file once decompressed"):
        importer.import_file(
            bomb, "otlp", url=env["OBSLIB_DATABASE_URL"], chunk=500, max_file_bytes=2**20
        )
    assert stored(env) == (1, 0)
    small = tmp_path / "small.json.gz"
    small.write_bytes(gzip.compress(line * 2000))
    raised = run_cli("ingest", "otlp", "--max-file-bytes", "2MiB", str(small), env=env)
    assert raised.returncode == 0, raised.stderr
    assert stored(env) == (2, 0)


def test_a_blank_file_is_read_once_however_it_changes_after(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading a file says whether it held anything but whitespace: a blank file is empty
    without being opened again. It was re-read whole, without the limits, to decide; a file
    replaced meanwhile by a broken gzip then escaped as an internal error (EOFError)."""
    path = tmp_path / "blank.json"
    path.write_bytes(b"\n \n\t\n")
    store = importer.store

    def replacing(*args, **kwargs):  # the last store runs once the file is read
        path.write_bytes(gzip.compress(b"\n" * 100)[:-12])
        return store(*args, **kwargs)

    monkeypatch.setattr(importer, "store", replacing)
    report = importer.import_file(path, "otlp", url=env["OBSLIB_DATABASE_URL"])
    assert report.empty
    assert report.outcome.input == 0 and report.error is None


def test_blank_gzip_is_empty_broken_gzip_one_line_and_content_without_records_an_error(
    env: dict[str, str], tmp_path: Path
) -> None:
    """A gzip of blank lines is an empty file; the same gzip cut short is one line naming the
    file (exit 2), never an internal error; a document without records is an error."""
    blank = tmp_path / "blank.json.gz"
    blank.write_bytes(gzip.compress(b"\n  \n" * 1000))
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes(gzip.compress(b"\n  \n" * 1000)[:-12])
    nothing = tmp_path / "nothing.json.gz"
    nothing.write_bytes(gzip.compress(b'\n{"resourceSpans": []}\n'))
    result = run_cli("ingest", "otlp", str(blank), str(cut), str(nothing), env=env)
    assert result.returncode == 2, result.stderr
    assert f"{blank}: empty, nothing to import" in result.stdout
    assert errors(result.stderr) == [
        error(
            cut,
            "cannot decompress: Compressed file ended before the end-of-stream marker was reached",
        ),
        error(nothing, "no spans or log records in it (is it OTLP/JSON?)"),
    ]
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


def test_a_plain_file_over_max_file_bytes_is_refused_before_it_is_read(
    env: dict[str, str], tmp_path: Path
) -> None:
    """A plain file's size is known: it is refused up front, with its size and the limit."""
    path = tmp_path / "big.jsonl"
    path.write_bytes(lines_of(400))
    size = path.stat().st_size
    assert 100 * 2**10 < size < 200 * 2**10
    result = run_cli("ingest", "otlp", "--max-file-bytes", "100KiB", str(path), env=env)
    assert result.returncode == 2, result.stderr
    shown = f"{size / 2**10:.1f}".removesuffix(".0")
    assert errors(result.stderr) == [
        error(
            path,
            f"{shown} KiB, over the limit of 100 KiB a file"
            " (--max-file-bytes 102400; a larger value raises it)",
        )
    ]
    assert stored(env) == (0, 0)


# -- the size of one document ---------------------------------------------------------------


def test_a_gzip_of_zeros_stops_at_max_document_bytes_in_bounded_memory(
    env: dict[str, str], tmp_path: Path
) -> None:
    """200 MB of zero bytes without a newline (a 200 KB gzip) is one "line": it used to be
    read whole (the 4 GiB one: MemoryError); now reading stops one byte past the limit."""
    bomb = tmp_path / "zeros.json.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as f:
        block = b"\0" * 2**20
        for _ in range(200):
            f.write(block)
    assert bomb.stat().st_size < 2**20
    result = run_cli("ingest", "otlp", "--max-document-bytes", "1MiB", str(bomb), env=env)
    assert result.returncode == 2, result.stderr
    (line,) = errors(result.stderr)
    assert line.startswith(
        f"obslib: error: {bomb}: line 1: one JSON document over the limit of 1 MiB"
        " (--max-document-bytes 1048576; a larger value raises it)"
    )


def test_a_single_document_over_max_document_bytes_is_refused_saying_use_json_lines(
    env: dict[str, str], tmp_path: Path
) -> None:
    """One pretty-printed document of 1,000 spans (~330 KB) with a 256 KiB limit is refused,
    naming JSON lines; the same spans as JSON lines, one request a line, import whole."""
    one = write(tmp_path / "one.json", traces(*(span(i) for i in range(1000))))
    assert one.stat().st_size > 256 * 2**10
    result = run_cli("ingest", "otlp", "--max-document-bytes", "256KiB", str(one), env=env)
    assert result.returncode == 2, result.stderr
    assert errors(result.stderr) == [
        error(
            one,
            "one JSON document over the limit of 256 KiB (--max-document-bytes 262144;"
            " a larger value raises it); or split it into JSON lines of smaller requests,"
            " as the OpenTelemetry Collector's file exporter writes them",
        )
    ]
    assert stored(env) == (0, 0)
    lines = tmp_path / "lines.jsonl"
    lines.write_bytes(lines_of(1000))
    ok = run_cli("ingest", "otlp", "--max-document-bytes", "256KiB", str(lines), env=env)
    assert ok.returncode == 0, ok.stderr
    assert stored(env) == (1000, 0)


def test_a_json_line_over_max_document_bytes_is_refused_with_its_line_for_every_format(
    env: dict[str, str], tmp_path: Path
) -> None:
    """The limit is per line in JSON lines, for otlp, jaeger and logs alike; the file's
    earlier lines are not kept."""
    long_name = "x" * 300_000
    path = tmp_path / "lines.jsonl"
    path.write_bytes(lines_of(3) + json.dumps(traces(span(9, name=long_name))).encode() + b"\n")
    result = run_cli("ingest", "otlp", "--max-document-bytes", "256KiB", str(path), env=env)
    assert result.returncode == 2, result.stderr
    (line,) = errors(result.stderr)
    assert line.startswith(f"obslib: error: {path}: line 4: one JSON document over the limit")
    assert stored(env) == (0, 0)
    path.write_bytes(b"\n\n" + json.dumps({"message": long_name}).encode() + b"\n")
    for kind in ("jaeger", "logs"):
        result = run_cli("ingest", kind, "--max-document-bytes", "256KiB", str(path), env=env)
        assert result.returncode == 2, result.stderr
        assert errors(result.stderr)[-1].startswith(
            f"obslib: error: {path}: line 3: one JSON document over the limit of 256 KiB"
        )


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--max-file-bytes", "0"),
        ("--max-file-bytes", "-5"),
        ("--max-document-bytes", "12 parsecs"),
    ],
    ids=["zero bytes", "a negative size", "an unknown unit"],
)
def test_a_limit_that_is_not_a_positive_size_is_a_usage_error(
    env: dict[str, str], option: str, value: str, tmp_path: Path
) -> None:
    """Refused by the argument parser, before any file is read."""
    path = write(tmp_path / "one.json", traces(span(0)))
    result = run_cli("ingest", "otlp", f"{option}={value}", str(path), env=env)
    assert result.returncode == 2
    assert f"{option}: {value!r} is not a positive size" in result.stderr
    assert stored(env) == (0, 0)


def test_the_api_refuses_limits_that_are_not_positive(tmp_path: Path) -> None:
    """import_files checks its limits before the first file (here one that does not exist)."""
    with pytest.raises(UsageError, match="max_document_bytes must be a positive number"):
        importer.import_files([tmp_path / "x.json"], "otlp", max_document_bytes=0)


# -- --rejects ------------------------------------------------------------------------------


def bad_file(tmp_path: Path) -> Path:
    """A file of one good span and one rejected (a base64 trace id)."""
    return write(tmp_path / "bad.json", traces(span(2), span(3, traceId=b64("0" * 31 + "1"))))


@pytest.mark.parametrize("how", ["the same name", "a symlink", "a hard link", "a ./ path"])
def test_rejects_naming_an_input_file_is_refused_before_anything_is_imported(
    env: dict[str, str], tmp_path: Path, how: str
) -> None:
    """--rejects used to replace the input named with the reject list: now the command stops
    before importing, and the input is untouched."""
    bad = bad_file(tmp_path)
    before = bad.read_bytes()
    target = {
        "the same name": str(bad),
        "a symlink": str(tmp_path / "link.jsonl"),
        "a hard link": str(tmp_path / "hard.jsonl"),
        "a ./ path": f"{tmp_path}/./{bad.name}",
    }[how]
    if how == "a symlink":
        Path(target).symlink_to(bad)
    if how == "a hard link":
        os.link(bad, target)
    result = run_cli("ingest", "otlp", str(bad), "--rejects", target, env=env)
    assert result.returncode == 2
    assert errors(result.stderr) == [
        f"obslib: error: --rejects {Path(target)} is the input file {bad}: writing the rejects"
        " would replace it; name another file"
    ]
    assert bad.read_bytes() == before
    assert stored(env) == (0, 0)


def test_rejects_naming_a_folder_or_a_fifo_nobody_reads_is_refused_before_importing(
    env: dict[str, str], tmp_path: Path
) -> None:
    """A folder used to fail with IsADirectoryError after the import was committed; a FIFO
    without a reader would hang at the end."""
    bad = bad_file(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for target, message in [
        (tmp_path, f"--rejects {tmp_path} is a folder: name a file in it"),
        (fifo, f"--rejects {fifo}: cannot write: no process reads it"),
        (tmp_path / "no" / "r.jsonl", f"--rejects: folder {tmp_path / 'no'} does not exist"),
    ]:
        result = run_cli("ingest", "otlp", str(bad), "--rejects", str(target), env=env)
        assert result.returncode == 2
        assert errors(result.stderr) == [f"obslib: error: {message}"]
        assert stored(env) == (0, 0)


def test_rejects_that_cannot_be_written_at_the_end_is_one_line_and_the_import_is_kept(
    env: dict[str, str], tmp_path: Path
) -> None:
    """/dev/full (ENOSPC on write) used to be an internal error: now one line saying the
    files imported stay stored (each is committed as it is read), exit 2."""
    bad = bad_file(tmp_path)
    result = run_cli("ingest", "otlp", str(bad), "--rejects", "/dev/full", env=env)
    assert result.returncode == 2
    assert "internal error" not in result.stderr
    assert errors(result.stderr) == [
        "obslib: error: --rejects /dev/full: cannot write the 1 rejected record(s): No space"
        " left on device (not written; the rejects are listed above, and the files imported"
        " stay stored: each was committed as it was read)"
    ]
    assert re.search(r"^rejected span: .*bad\.json: ", result.stderr, re.M)
    assert stored(env) == (1, 0)
    out = tmp_path / "ok.jsonl"
    again = run_cli("ingest", "otlp", str(bad), "--rejects", str(out), env=env)
    assert again.returncode == 2
    assert len(out.read_text().splitlines()) == 1


def test_rejects_into_a_pipe_with_a_reader_still_works(env: dict[str, str], tmp_path: Path) -> None:
    """A FIFO that a process reads (as with ``--rejects >(gzip > r.gz)``) gets the rejects."""
    bad = bad_file(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    try:
        result = run_cli("ingest", "otlp", str(bad), "--rejects", str(fifo), env=env)
    finally:
        if reader.is_alive():  # the command never opened it: let the reader go
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(10)
    assert result.returncode == 2, result.stderr
    assert [json.loads(line)["position"] for line in got[0].splitlines()] == [
        "resourceSpans[0].scopeSpans[0].spans[1]"
    ]
