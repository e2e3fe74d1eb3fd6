"""Writers and importers: everything that puts telemetry into PostgreSQL."""

from obslib.ingest.writer import Batch, batch, write_logs, write_spans

__all__ = ["Batch", "batch", "write_logs", "write_spans"]
