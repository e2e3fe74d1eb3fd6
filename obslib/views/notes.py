"""Text a view shows: a ``Note`` in place of an empty table or chart, saying why there is
nothing to show, and a ``Markdown`` document (the postmortem draft).

A view returns a ``Note`` instead of an empty frame so that a notebook cell needs no
``if found`` guard and a report reader learns why a section is empty; ``unless_empty`` is
that guard, written once for every view method.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from obslib.escape import html_text, md_text


@dataclass(frozen=True)
class Note:
    """One short sentence that displays as text in JupyterLab, reports and plain consoles."""

    text: str

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text

    def _repr_markdown_(self) -> str:
        return f"*{md_text(self.text)}*"

    def _repr_html_(self) -> str:
        return f'<p class="obslib-note"><em>{html_text(self.text)}</em></p>'


@dataclass(frozen=True)
class Markdown:
    """A Markdown document: ``text`` is the document itself (``text/markdown``, what the
    report runner saves, e.g. ``postmortem.md``), ``shown`` what the page shows of it
    (``text/html``) when that differs: the draft without the tables the report already
    shows above it. Both are trusted Markdown: whoever builds them escapes stored text
    (``md_text``).

    The page renders it with mistune (nbconvert's own Markdown renderer, so the report's
    stylesheet applies as to every other cell) with headings two levels down: a document's
    ``#`` title sits under the notebook's ``##`` section."""

    text: str
    shown: str | None = None

    def _repr_markdown_(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return (
            f"<style>{DOCUMENT_STYLE}</style>"
            f'<div class="obslib-document">{markdown_html(self.shown or self.text)}</div>'
        )

    def __str__(self) -> str:
        return self.text


# a document's table reads as Markdown writes it: left unless its column says otherwise
# (JupyterLab right-aligns every output cell's table)
DOCUMENT_STYLE = (
    ".obslib-document th:not([style]), .obslib-document td:not([style]) {text-align: left;}"
)
HEADING_SHIFT = 2  # "#" renders as <h3>: under a notebook section's "##" (<h2>)


def markdown_html(text: str) -> str:
    """Trusted Markdown (stored text escaped by ``md_text``) as HTML, pipe tables included,
    headings ``HEADING_SHIFT`` levels down. Raw HTML is not escaped again: ``md_text``
    already turned every ``<`` of stored text into ``&lt;``, and escaping here would show
    its entities (``&amp;lt;``) instead of the text."""
    import mistune

    class Shifted(mistune.HTMLRenderer):
        def heading(self, text: str, level: int, **attrs: Any) -> str:
            return super().heading(text, min(level + HEADING_SHIFT, 6), **attrs)

    render = mistune.create_markdown(renderer=Shifted(escape=False), plugins=["table"])
    return str(render(text))


Method = TypeVar("Method", bound=Callable[..., Any])


def unless_empty(method: Method) -> Method:
    """A view method of an object whose ``empty_note()`` says why it has nothing to show
    (a Note) or returns None: the note instead of the method's table or chart when empty."""

    @functools.wraps(method)
    def view(self: Any, *args: Any, **kwargs: Any) -> Any:
        note = self.empty_note()
        return note if note is not None else method(self, *args, **kwargs)

    return view  # type: ignore[return-value]
