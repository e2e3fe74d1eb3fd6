"""Views that follow a picker: a notebook cell's output that is redrawn in place.

In JupyterLab a view method returns a ``LiveView``; displaying it shows the view under a
display id and registers it, and ``redraw_all`` later replaces every registered output
(IPython's ``update_display``), so picking another trace updates every per-trace section of
the notebook, not just the area under the picker. Outside a live notebook the view methods
return their tables, charts and notes directly.

A redraw prepares every view's output off-screen first, formatted as the bytes the page will
get (a chart's Vega spec and SVG are the slow part), and only then sends the updates, back to
back: the page swaps the views together instead of one by one while the next is computed.
Each update is its own message, which the page applies on its own, so the views are first
all cleared and only then all filled: no moment shows one view of the old pick beside one of
the new.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
        self.show(prepare(self.render() if value is None else value))

    def show(self, prepared: tuple[dict, dict]) -> None:
        """Replace the displayed output with ``prepared`` (``prepare``'s data and metadata)."""
        if self.handle is not None:
            data, metadata = prepared
            self.handle.update(data, raw=True, metadata=metadata)

    @property
    def value(self) -> Any:
        """The view as it is now (a table, chart or note), e.g. to read a table's ``data``."""
        return self.render()

    def __repr__(self) -> str:
        return repr(self.render())


# Views are formatted beside the computing of the next: vl-convert draws SVG without holding
# the GIL (four charts took 0.70 s in threads against 1.07 s one after another on 2 cores).
FORMAT_THREADS = 4
CLEARED: tuple[dict, dict] = ({"text/plain": ""}, {})  # a view between two picks, for a moment


def prepare(value: Any) -> tuple[dict, dict]:
    """``value`` formatted for display as IPython would send it: its mime bundle (a chart's
    Vega spec, SVG and description; a table's HTML) and the bundle's metadata."""
    from IPython.core.formatters import format_display_data

    return format_display_data(value)


def redraw_all(registry: dict[str, LiveView]) -> list[str]:
    """Redraw every registered view; returns the names redrawn, in display order.

    Every view is rendered and formatted before any is shown, then every view is cleared (when
    there are several) and then every view filled, back to back: the updates reach the page
    together, and no section shows the old trace while another already shows the new one
    (the browser test watches every DOM change for such a moment).
    """
    views = list(registry.values())
    with ThreadPoolExecutor(max_workers=FORMAT_THREADS) as pool:  # vl-convert frees the GIL
        # each view is formatted while the next ones are computed
        formatting = [pool.submit(prepare, view.render()) for view in views]
        prepared = [(view, f.result()) for view, f in zip(views, formatting, strict=True)]
    if len(prepared) > 1:  # one view alone cannot disagree with another
        for view, _ in prepared:
            view.show(CLEARED)
    for view, output in prepared:
        view.show(output)
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
