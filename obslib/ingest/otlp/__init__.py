"""OpenTelemetry OTLP traces and logs, as JSON or protobuf, into span and log rows.

The same mapping serves the file importer (OTLP/JSON, as the Collector's file exporter
writes it) and the receiver (OTLP/HTTP, protobuf or JSON bodies):

- resource ``service.name`` -> ``service_name`` (the spec's ``unknown_service`` when absent);
  span name -> ``operation_name``; kind -> ``span_kind`` (unspecified -> internal);
  status ERROR -> ``error``, else ``ok``;
- ``tags``: resource attributes, then ``otel.scope.name``/``otel.scope.version``, then the
  span's attributes (the span's win), plus ``otel.status_description``, ``w3c.tracestate``
  and ``otel.links`` when present; host attributes stay as they are (the clock-skew
  adjuster reads ``host.id``, ``host.ip``, ``host.name``);
- span events -> ``logs``: ``{"timestamp", "event", "attributes"}`` with nanosecond time;
- log severity number -> level (1-4 trace ... 21-24 fatal); 0 is unspecified: the
  severity text decides when it names a level, else ``info``; above 24 is refused. The
  body becomes the message (non-text bodies as JSON), attributes the fields (resource
  attributes under ``resource``), ``exception.type``/``exception.message`` the error.

OTLP/JSON's rules: ids are hex (16-byte trace, 8-byte span, never all zero; uppercase is
accepted and lowered), enums are integers (their names are accepted too, as the Collector
does), 64-bit integers may be strings, unknown fields are ignored, and lowerCamelCase keys
are the spec's while snake_case ones are accepted as protobuf's own JSON parser does.
"""

from obslib.ingest.otlp.from_json import decode_json
from obslib.ingest.otlp.from_proto import decode_logs_proto, decode_traces_proto
from obslib.ingest.otlp.mapping import severity_level

__all__ = ["decode_json", "decode_logs_proto", "decode_traces_proto", "severity_level"]
