"""Split a migration file into statements, so a failure can name the statement that failed.

PostgreSQL's lexical rules that matter for finding statement ends: quoted strings ('…',
E'…' with backslash escapes), quoted identifiers ("…"), dollar quotes ($tag$…$tag$),
line comments (--) and nestable block comments (/* … */).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")


@dataclass(frozen=True)
class Statement:
    """One SQL statement and the 1-based line where its first token is."""

    sql: str
    line: int


def split_statements(text: str) -> list[Statement]:
    """Return the statements of ``text`` in order, without their terminating semicolons.

    Comments before a statement are dropped; chunks holding only comments are skipped.
    """
    statements: list[Statement] = []
    code_start: int | None = None  # first non-comment character of the current statement
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if text.startswith("/*", i):
            i = _skip_block_comment(text, i)
            continue
        if c == ";":
            if code_start is not None:
                statements.append(_statement(text, code_start, i))
            code_start = None
            i += 1
            continue
        if code_start is None:
            code_start = i
        if c == "'":
            escapes = i > 0 and text[i - 1] in "eE" and not _is_word_char(text, i - 2)
            i = _skip_quoted(text, i, "'", backslash=escapes)
        elif c == '"':
            i = _skip_quoted(text, i, '"', backslash=False)
        elif c == "$" and not _is_word_char(text, i - 1) and (m := _DOLLAR_TAG.match(text, i)):
            end = text.find(m.group(0), m.end())
            if end < 0:
                raise ValueError(f"unterminated {m.group(0)} quote opened at line {_line(text, i)}")
            i = end + len(m.group(0))
        else:
            i += 1
    if code_start is not None:
        statements.append(_statement(text, code_start, n))
    return statements


def _statement(text: str, start: int, end: int) -> Statement:
    return Statement(text[start:end].rstrip(), _line(text, start))


def _skip_block_comment(text: str, i: int) -> int:
    start, depth, n = i, 0, len(text)
    while i < n:
        if text.startswith("/*", i):
            depth += 1
            i += 2
        elif text.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    raise ValueError(f"unterminated block comment opened at line {_line(text, start)}")


def _skip_quoted(text: str, i: int, quote: str, *, backslash: bool) -> int:
    start = i
    i += 1
    n = len(text)
    while i < n:
        c = text[i]
        if backslash and c == "\\":
            i += 2
        elif c == quote:
            if i + 1 < n and text[i + 1] == quote:  # a doubled quote stands for itself
                i += 2
            else:
                return i + 1
        else:
            i += 1
    raise ValueError(f"unterminated {quote} quote opened at line {_line(text, start)}")


def _is_word_char(text: str, i: int) -> bool:
    return i >= 0 and (text[i].isalnum() or text[i] == "_")


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1
