"""PostgreSQL -> typed DataFrames: one function per question, values always bound.

Reads go through ADBC, which hands PostgreSQL's binary COPY stream to Arrow (far faster than
pandas.read_sql for 1M spans; bench/load.py), on one connection per URL kept open for the
process (``db.adbc_read``). Rows are sorted in Arrow, not by the server: for 1M spans the
server's ``ORDER BY`` (default work_mem, spilling to disk) added 1.3-2.9 s, the Arrow sort
and reorder ~0.8 s (bench/load.py --breakdown, 2 shared cores). Then one
small type layer: timestamps tz-aware UTC, NUMERIC as float64, integers as nullable Int64,
text as pandas' ``str`` dtype, JSON columns as Python objects. An empty result is an empty
frame with the same columns and dtypes.

JSON costs: parsing ``tags``/``logs`` into dicts (orjson) still costs about as much as the
read itself. ``json="text"`` keeps the JSON text (the lazy form): parse later with
``parse_json``, or extract the one tag you need in SQL with ``tag_columns``.

Every loader exported here is wrapped by ``bundle.hooked``: a report run with ``--bundle``
records what each call returned, a re-run from that bundle answers each call from it
(``obslib.load.bundle``). Views reach loaders through this namespace (``load.spans(...)``),
so no call escapes the hook.
"""

from obslib.load import bundle as _bundle
from obslib.load._core import JsonMode, parse_json
from obslib.load.alerts import alert_definitions, incident, incidents
from obslib.load.health_data import (
    client_coverage,
    incident_evidence,
    log_correlation,
    service_edges,
)
from obslib.load.incident_list import incident_ids, incident_list
from obslib.load.log_data import log_range
from obslib.load.slo_data import (
    data_end,
    data_range,
    enabled_slos,
    operation_counts,
    services,
    sli_counts,
    slo_counts,
    slo_measurements,
    slos,
)
from obslib.load.telemetry import logs, spans, trace

alert_definitions = _bundle.hooked(alert_definitions)
client_coverage = _bundle.hooked(client_coverage)
data_end = _bundle.hooked(data_end)
data_range = _bundle.hooked(data_range)
enabled_slos = _bundle.hooked(enabled_slos)
incident = _bundle.hooked(incident)
incident_evidence = _bundle.hooked(incident_evidence)
incident_ids = _bundle.hooked(incident_ids)
incident_list = _bundle.hooked(incident_list)
incidents = _bundle.hooked(incidents)
log_correlation = _bundle.hooked(log_correlation)
log_range = _bundle.hooked(log_range)
logs = _bundle.hooked(logs)
operation_counts = _bundle.hooked(operation_counts)
service_edges = _bundle.hooked(service_edges)
services = _bundle.hooked(services)
sli_counts = _bundle.hooked(sli_counts)
slo_counts = _bundle.hooked(slo_counts)
slo_measurements = _bundle.hooked(slo_measurements)
slos = _bundle.hooked(slos)
spans = _bundle.hooked(spans)
trace = _bundle.hooked(trace)

__all__ = [
    "JsonMode",
    "alert_definitions",
    "client_coverage",
    "data_end",
    "data_range",
    "enabled_slos",
    "incident",
    "incident_evidence",
    "incident_ids",
    "incident_list",
    "incidents",
    "log_correlation",
    "log_range",
    "logs",
    "operation_counts",
    "parse_json",
    "service_edges",
    "services",
    "sli_counts",
    "slo_counts",
    "slo_measurements",
    "slos",
    "spans",
    "trace",
]
