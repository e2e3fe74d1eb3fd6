"""argparse types the command groups share."""

from __future__ import annotations

import argparse


def whole(minimum: int, words: str):
    """An argparse type: a whole number (``_`` allowed as in 10_000) of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text.replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {words}, not {value}")
        return value

    return parse


positive = whole(1, "at least 1")
non_negative = whole(0, "0 or more")


def text_columns(rows: list[tuple[str, ...]]) -> list[str]:
    """Rows of text as left-aligned columns two spaces apart (the first row: the header)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
