"""Views that follow a picker: a notebook cell's output that is redrawn in place.

In JupyterLab a view method returns a ``LiveView``; displaying it shows the view under a
display id and registers it, and ``redraw_all`` later replaces every registered output
(IPython's ``update_display``), so picking another trace updates every per-trace section of
the notebook, not just the area under the picker. Outside a live notebook the view methods
return their tables, charts and notes directly.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from obslib.views.notes import Note


class LiveView:
    """One view (a bound render function) whose displayed output can be redrawn."""

    def __init__(self, name: str, render: Callable[[], Any], registry: dict[str, LiveView]):
        self.name = name
        self.render = render
        self.handle = None
        self._registry = registry

    def _ipython_display_(self) -> None:
        from IPython.display import display

        self.handle = display(self.render(), display_id=True)
        self._registry[self.name] = self  # a re-run cell replaces its earlier output

    def redraw(self, value: Any = None) -> None:
        """Show the view again where it was shown: ``value``, or a fresh render of it."""
        if self.handle is not None:
            self.handle.update(self.render() if value is None else value)

    @property
    def value(self) -> Any:
        """The view as it is now (a table, chart or note), e.g. to read a table's ``data``."""
        return self.render()

    def __repr__(self) -> str:
        return repr(self.render())


def redraw_all(registry: dict[str, LiveView]) -> list[str]:
    """Redraw every registered view; returns the names redrawn, in display order.

    Every view is rendered before any is shown, so the updates reach the page together and
    no section shows the old trace while a later one is still being computed.
    """
    fresh = [(view, view.render()) for view in registry.values()]
    for view, value in fresh:
        view.redraw(value)
    return list(registry)


def per_trace(method: Callable[..., Any]) -> Callable[..., Any]:
    """A view of an investigation's trace (an object with ``found``, ``message``, ``live`` and
    a ``views`` registry): the message instead when there is no trace, and a live output
    (redrawn when another trace is picked) in a live notebook."""

    @functools.wraps(method)
    def view(self: Any, *args: Any, **kwargs: Any) -> Any:
        def render() -> Any:
            return method(self, *args, **kwargs) if self.found else Note(self.message)

        if self.live:
            key = method.__name__ + (repr((args, sorted(kwargs.items()))) if args or kwargs else "")
            return LiveView(key, render, self.views)
        return render()

    view.follows_picker = True  # type: ignore[attr-defined]
    return view


# The same for any picked item: the SLO review's detail views follow its SLO picker.
per_selection = per_trace
