"""Where the stored logs begin and end (``log_range``): the log records' own range, which the
log rules judge "new" against (the spans' range is ``slo_data.data_range``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.compute as pc

from obslib.load import archive as _archive
from obslib.load._core import _fetch


def log_range(
    *, url: str | None = None, archive: str | Path | None = None
) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The timestamps of the first and the latest stored log record (None for an empty
    table). Archived days count: the first is then in the earliest archived day."""

    def read(days: list[_archive.ColdDay]) -> tuple[list, list]:
        table = _fetch(
            "SELECT min(timestamp) AS first, max(timestamp) AS last FROM structured_logs",
            [],
            url,
            order=(),
            small=True,
        )
        times = [table.column("first")[0].as_py(), table.column("last")[0].as_py()]
        if days:  # days hold rows (the catalog lists no empty day) and do not overlap
            for day in {days[0], days[-1]}:
                (rows,) = _archive.each_day([day], ("timestamp",), None)
                times += [pc.min(rows["timestamp"]).as_py(), pc.max(rows["timestamp"]).as_py()]
        return times[0::2], times[1::2]

    (firsts, lasts), _ = _archive.consistent("logs", None, None, read, archive=archive, url=url)
    firsts, lasts = [t for t in firsts if t is not None], [t for t in lasts if t is not None]
    if not firsts:
        return None
    return pd.Timestamp(min(firsts)).tz_convert("UTC"), pd.Timestamp(max(lasts)).tz_convert("UTC")
