"""Escaping: stored text (span names, log lines, alert and SLO names, incident fields) shown
as text in the format it lands in, never run as markup.

Whatever a report shows from the data may come from outside: a span name or a log line is
whatever a request made it. Every place that puts such text into HTML or Markdown goes
through one of these functions; the text stays visible as written (a reader sees
``<script>alert(1)</script>``), nothing is stripped.

- HTML (``html_text``): ``& < > " '`` as entities, fit for element text and quoted
  attributes.
- Markdown (``md_text``): for inline text (a sentence, a table cell, a heading). Every
  ``<`` as ``&lt;``, so no renderer ever sees a tag or an autolink (Markdown passes raw HTML
  through), and a ``&`` that would start an entity as ``&amp;``; the characters that start
  Markdown syntax (emphasis, code, links, tables, math, a block at the start of a line)
  escaped with a backslash; line breaks as spaces, so a value never starts a block or ends a
  table row.
- Markdown code (``md_code``): a short value as inline code when it holds no backtick,
  ``|`` or line break (code spans show ``<`` literally), else as ``md_text``.
- Both: the invisible bidirectional embedding, override and isolate controls (U+202A..E,
  U+2066..9) as visible ``[U+202E]``: a right-to-left override in a log line would
  otherwise show the rest of its cell, or of the draft's sentence, reversed
  (``gnp.exe`` read as ``exe.png``: the "Trojan Source" characters, CVE-2021-42574).
  Marks that only hint a direction (U+200E, U+200F) stay: real right-to-left text uses them.
- Terminal text (``terminal_text``): a stored value printed by a command as itself when it
  is plainly printable (no control, format or separator character: the bidi controls are
  format characters), else as its quoted Python literal, every such character escaped:
  nothing in it can drive the terminal or reverse the line.
- Chart text (``control_pictures``): C0 control characters other than tab and line breaks
  as their visible Unicode pictures (``\x01`` as ``␁``); vl-convert, which draws the
  reports' charts, aborts its whole process on them.
"""

from __future__ import annotations

import html
import re

# Backslash-escaped: emphasis (* _ ~), code (`), links and images ([ ]), table cells (|),
# headings (#), math ($, which nbconvert and GitHub render) and the backslash itself.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~#$])")
_LINE_BREAKS = re.compile(r"\r\n|[\r\n\v\f\x85\u2028\u2029]")
_ENTITY = re.compile(r"&(?=#?\w+;)")  # "&lt;" would render as "<"; a lone "&" is text
# a value that opens a line must not open a block quote or a list item
_BLOCK_START = re.compile(r"^(\s*(?:\d+)?)(>|[-+.)](?=\s))")
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")


def _bidi_visible(text: str) -> str:
    """Each bidirectional embedding, override or isolate control as ``[U+XXXX]``."""
    return _BIDI.sub(lambda m: f"[U+{ord(m.group()):04X}]", text)


def html_text(value: object) -> str:
    """``value`` as HTML text: ``&``, ``<``, ``>`` and both quotes as entities."""
    return html.escape(_bidi_visible(str(value)), quote=True)


def md_text(value: object) -> str:
    """``value`` as inline Markdown that renders as exactly this text, on one line."""
    text = _LINE_BREAKS.sub(" ", _bidi_visible(str(value)))
    text = _ENTITY.sub("&amp;", text).replace("<", "&lt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return _BLOCK_START.sub(r"\1\\\2", text, count=1)


def md_code(value: object) -> str:
    """``value`` as inline code (`` `value` ``) when that shows it verbatim and cannot end
    early, split a table row or reverse (a bidirectional control); otherwise as escaped
    text (``md_text``)."""
    text = str(value)
    if (
        not text.strip()
        or "`" in text
        or "|" in text
        or _LINE_BREAKS.search(text)
        or _BIDI.search(text)
    ):
        return md_text(text)
    return f"`{text}`"


def terminal_text(value: object) -> str:
    """``value`` as a terminal line shows it: itself when plainly printable and not padded,
    else its quoted literal (``'\\u202e'``, ``'a\\nb'``, ``'  '``)."""
    text = str(value)
    if text and text == text.strip() and text.isprintable():
        return text
    return repr(text)


def control_pictures(value: str) -> str:
    """``value`` with each C0 control character but tab, line feed and carriage return shown
    as its Unicode control picture (U+2400 + code): visible, and safe for vl-convert."""
    return _CONTROLS.sub(lambda m: chr(0x2400 + ord(m.group())), value)
