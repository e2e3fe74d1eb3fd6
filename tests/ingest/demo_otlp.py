"""The demo's spans as OTLP/HTTP protobuf requests, in the order an SDK exports them (as they
end), for the sampling test and ``bench/sampling.py``: what the receiver keeps of them is
compared with all of them."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span, Status

KINDS = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
PB = {"Content-Type": "application/x-protobuf"}


def demo_hours(day: int, per_day: int, first_hour: int = 0, hours: int = 24) -> pd.DataFrame:
    """Spans of ``hours`` hours of the demo's day ``day`` at ``per_day`` traces a day (whole
    traces: those whose first span starts in the hours), by end time."""
    from obslib.demo import generate_day

    spans, _ = generate_day(day, per_day=per_day)
    day_start = spans["start_time"].min().floor("D")
    lo = day_start + pd.Timedelta(hours=first_hour)
    hi = lo + pd.Timedelta(hours=hours)
    first = spans.groupby("trace_id")["start_time"].transform("min")
    spans = spans[(first >= lo) & (first < hi)]
    return spans.sort_values(["end_time", "span_id"], kind="stable").reset_index(drop=True)


def requests(spans: pd.DataFrame, per_request: int = 500) -> Iterator[tuple[int, bytes]]:
    """``(spans, body)`` of each ExportTraceServiceRequest of ``per_request`` spans, in the
    frame's order, one ResourceSpans per service."""
    spans = spans.assign(start_ns=_nanos(spans["start_time"]), end_ns=_nanos(spans["end_time"]))
    for lo in range(0, len(spans), per_request):
        part = spans.iloc[lo : lo + per_request]
        request = ExportTraceServiceRequest()
        for service, rows in part.groupby("service_name", sort=False):
            resource = ResourceSpans()
            resource.resource.attributes.append(
                KeyValue(key="service.name", value=AnyValue(string_value=str(service)))
            )
            scope = resource.scope_spans.add()
            for r in rows.itertuples(index=False):
                parent = r.parent_span_id
                scope.spans.append(
                    Span(
                        trace_id=bytes.fromhex(r.trace_id),
                        span_id=bytes.fromhex(r.span_id),
                        parent_span_id=b"" if pd.isna(parent) else bytes.fromhex(parent),
                        name=r.operation_name,
                        kind=KINDS[r.span_kind],
                        start_time_unix_nano=int(r.start_ns),
                        end_time_unix_nano=int(r.end_ns),
                        status=Status(code=2 if r.status != "ok" else 0),
                    )
                )
            request.resource_spans.append(resource)
        yield len(part), request.SerializeToString()


def _nanos(times: pd.Series) -> pd.Series:
    return times.astype("datetime64[ns, UTC]").astype("int64")
