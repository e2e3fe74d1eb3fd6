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
    """A Markdown document that displays as such in JupyterLab and in the HTML report.
    ``text`` is trusted Markdown: whoever builds it escapes stored text (``md_text``)."""

    text: str

    def _repr_markdown_(self) -> str:
        return self.text

    def __str__(self) -> str:
        return self.text


Method = TypeVar("Method", bound=Callable[..., Any])


def unless_empty(method: Method) -> Method:
    """A view method of an object whose ``empty_note()`` says why it has nothing to show
    (a Note) or returns None: the note instead of the method's table or chart when empty."""

    @functools.wraps(method)
    def view(self: Any, *args: Any, **kwargs: Any) -> Any:
        note = self.empty_note()
        return note if note is not None else method(self, *args, **kwargs)

    return view  # type: ignore[return-value]
