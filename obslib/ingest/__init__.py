"""Writers and importers: everything that puts telemetry into PostgreSQL."""

from obslib.ingest.importer import import_file, import_files
from obslib.ingest.writer import Batch, Conflicts, Written, batch, write_logs, write_spans

__all__ = [
    "Batch",
    "Conflicts",
    "Written",
    "batch",
    "import_file",
    "import_files",
    "write_logs",
    "write_spans",
]
