"""A sentence in place of an empty table or chart, saying why there is nothing to show.

A view returns a ``Note`` instead of an empty frame so that a notebook cell needs no
``if found`` guard and a report reader learns why a section is empty.
"""

from __future__ import annotations

from dataclasses import dataclass

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
