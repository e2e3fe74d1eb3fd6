"""obslib: load DomainFlow telemetry from PostgreSQL into typed DataFrames and analyse it."""

from obslib.errors import ObslibError

__version__ = "0.1.0"

__all__ = ["ObslibError", "__version__"]
