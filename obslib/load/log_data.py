"""Where the stored logs begin and end (``log_range``): the log records' own range, which the
log rules judge "new" against (the spans' range is ``slo_data.data_range``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from obslib.load.slo_data import stored_range


def log_range(
    *, url: str | None = None, archive: str | Path | None = None
) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The timestamps of the first and the latest stored log record (None for an empty
    table). Archived days count: the first is then in the earliest archived day."""
    return stored_range("logs", url=url, archive=archive)
