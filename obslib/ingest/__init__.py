"""Writers and importers: everything that puts telemetry into PostgreSQL."""

from obslib.ingest.writer import write_spans

__all__ = ["write_spans"]
