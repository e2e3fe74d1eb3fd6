"""Observability health: the upstream plan's success criteria as KPIs computed from data,
each against its target with pass/fail.

Pure functions on the frames the loaders and other analysis return; no I/O. One definition
per KPI (the targets are ``TARGETS``, the only place they are written):

1. **Trace coverage** (> 95 %): of the client spans starting in the window, the share with a
   server child span: same ``trace_id``, ``parent_span_id`` = the client's ``span_id`` and
   ``span_kind`` 'server' (``load.health_data.client_coverage`` counts them). A call to a
   callee that records no spans (an uninstrumented database) is not traced end to end; the
   per caller (service, operation) breakdown shows which calls those are.
2. **Log correlation** (> 90 %): of the traces with a span starting in the window, the share
   that at least one log record carries the ``trace_id`` of (``health_data.log_correlation``).
3. **SLO coverage** (100 %): of the critical services (an argument: the health view passes
   ``config.critical_services()``), the share with at least one enabled SLO (a NULL
   ``enabled`` is the column default, true).
4. **Alert false-positive rate** (< 5 %): false positives / (real + false positives) over
   the incidents ``alerts.false_positives`` judged; incidents judged 'unknown' are left out
   of the rate and counted in the detail.
5. **Detection time** (< 60 s): the worst (longest) time to detect over the outages holding
   a critical-severity page whose time is known (``alerts.detection_times``: per outage, its
   first page - the first bad minute of the SLI that page's alert watches); the detail gives
   the median and the counts. A negative time (paged before the data showed
   anything bad) is kept as measured.

"No data" (no client spans, no traces, no critical service configured, no judged incident,
no critical outage with a known time) is a value of NaN with ``passed`` None: it neither
passes nor fails, and the detail says why. Targets are strict where the plan writes ">" or
"<": exactly 95 % coverage, exactly 5 % false positives and exactly 60 s all fail.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import timedelta

import numpy as np
import pandas as pd

from obslib.alerts.noise import VERDICTS, judged
from obslib.errors import InputError
from obslib.schema import SEVERITIES, require_columns
from obslib.values import duration_text, plural

TRACE_COVERAGE = "trace coverage"
LOG_CORRELATION = "log correlation"
SLO_COVERAGE = "SLO coverage of critical services"
FALSE_POSITIVE_RATE = "alert false-positive rate"
DETECTION_TIME = "detection time (critical)"

CRITICAL = "critical"  # the incident severity whose detection time the plan bounds

_COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
}


@dataclass(frozen=True)
class Target:
    """A KPI's goal: ``value <comparator> threshold`` in ``unit``."""

    comparator: str
    threshold: float
    unit: str

    @property
    def text(self) -> str:
        """As people write it: "> 95 %", "< 1 min" (a time in ``obslib.values.duration_text``'s
        style); a ">= 100 %" goal reads "100 %"."""
        if self.comparator == ">=" and self.unit == "%" and self.threshold == 100:
            return "100 %"
        if self.unit == "s":
            return f"{self.comparator} {_seconds_text(self.threshold)}"
        return f"{self.comparator} {self.threshold:g} {self.unit}"

    def met(self, value: float) -> bool | None:
        """Whether ``value`` meets the target; None when there is no value (no data)."""
        if value is None or math.isnan(value):
            return None
        return bool(_COMPARATORS[self.comparator](value, self.threshold))


# The plan's SUCCESS CRITERIA, in the order the scorecard lists them.
TARGETS: dict[str, Target] = {
    TRACE_COVERAGE: Target(">", 95.0, "%"),
    LOG_CORRELATION: Target(">", 90.0, "%"),
    SLO_COVERAGE: Target(">=", 100.0, "%"),
    FALSE_POSITIVE_RATE: Target("<", 5.0, "%"),
    DETECTION_TIME: Target("<", 60.0, "s"),
}

SCORECARD_COLUMNS = ("kpi", "value", "unit", "target", "passed", "detail")
COVERAGE_COLUMNS = ("service_name", "operation_name", "client_spans", "served")
CORRELATION_COLUMNS = ("traces", "logged")
VERDICT_COLUMNS = ("incident_id", "verdict")
DETECTION_COLUMNS = ("incident_id", "severity", "time_to_detect")


@dataclass(frozen=True)
class Kpi:
    """One scorecard row: ``value`` in ``unit`` (NaN: no data), the target as text,
    ``passed`` (None: no data) and one line of ``detail`` a person reads."""

    kpi: str
    value: float
    unit: str
    target: str
    passed: bool | None
    detail: str


def _kpi(name: str, value: float, detail: str) -> Kpi:
    target = TARGETS[name]
    return Kpi(name, float(value), target.unit, target.text, target.met(value), detail)


def _no_data(name: str, detail: str) -> Kpi:
    return _kpi(name, math.nan, detail)


def _pct(part: int, whole: int) -> float:
    """``part`` of ``whole`` in percent. The integer product first, so a whole percentage is
    exact and compares equal to a target of that value: 57 of 100 is 57.0, where
    57 / 100 * 100 is 56.99999999999999."""
    return 100.0 * part / whole


def _seconds_text(seconds: float) -> str:
    return duration_text(pd.Timedelta(seconds=seconds))


def shown(value: float, name: str) -> str:
    """A KPI value for people, in its unit, never rounded onto its threshold: 94.96 % is
    "94.96 %", not a failing "95.0 %". Times read as ``obslib.values.duration_text`` does
    ("5 min"), except one that would read as its threshold without being it: 60.4 s is
    "60.4 s", not "1 min"."""
    target = TARGETS[name]
    if math.isnan(value):
        return "no data"
    if target.unit == "s":
        said = _seconds_text(value)
        if said != _seconds_text(target.threshold) or value == target.threshold:
            return said
    digits = 1 if target.unit == "%" else 0
    while digits < 4 and value != target.threshold:
        if round(value, digits) != target.threshold:
            break
        digits += 1
    return f"{value:,.{digits}f} {target.unit}"


# -- 1. trace coverage ----------------------------------------------------------------------


def coverage_breakdown(counts: pd.DataFrame) -> pd.DataFrame:
    """Per caller ``service_name`` and ``operation_name``: ``client_spans``, ``served``,
    ``unserved`` and ``coverage`` (%), the calls missing most server spans first, so the
    first rows say which calls lack a server side."""
    _check_counts(counts, COVERAGE_COLUMNS, ("client_spans", "served"), "client coverage")
    out = counts[list(COVERAGE_COLUMNS)].copy()
    for col in ("client_spans", "served"):  # int64, or float64 estimates of sampled spans
        out[col] = pd.to_numeric(out[col])
    # weighted sums may differ in their last bit where every call was served
    over = (out["served"] > out["client_spans"] * (1 + 1e-9)).to_numpy()
    if over.any():
        raise InputError(f"client coverage row {int(over.argmax())}: served exceeds client_spans")
    out["unserved"] = out["client_spans"] - out["served"]
    out["coverage"] = 100.0 * out["served"] / out["client_spans"].where(out["client_spans"] > 0)
    out = out.sort_values(
        ["unserved", "service_name", "operation_name"],
        ascending=[False, True, True],
        kind="stable",
    )
    return out.reset_index(drop=True)


def trace_coverage(counts: pd.DataFrame) -> Kpi:
    """KPI 1 from ``health_data.client_coverage``'s counts."""
    rows = coverage_breakdown(counts)
    total, served = float(rows["client_spans"].sum()), float(rows["served"].sum())
    if total <= 0:
        return _no_data(TRACE_COVERAGE, "no client spans in the window")
    detail = f"{served:,.0f} of {total:,.0f} client spans have a server span as child"
    worst = rows[rows["unserved"] >= 0.5]  # a span weighs 1 or more: less is rounding
    if len(worst):
        top = worst.iloc[0]
        detail += (
            f"; most unserved: {top['service_name']} {top['operation_name']!r}"
            f" ({top['unserved']:,.0f} of {top['client_spans']:,.0f})"
        )
        if len(worst) > 1:
            detail += f", {plural(len(worst) - 1, 'more caller operation')} with gaps"
    return _kpi(TRACE_COVERAGE, _pct(served, total), detail)


# -- 2. log correlation ---------------------------------------------------------------------


def log_correlation(counts: pd.DataFrame) -> Kpi:
    """KPI 2 from ``health_data.log_correlation``'s one row (no row: no traces)."""
    _check_counts(counts, CORRELATION_COLUMNS, CORRELATION_COLUMNS, "log correlation")
    if len(counts) > 1:
        raise InputError(f"log correlation frame has {len(counts)} rows; expected one")
    traces = float(counts["traces"].sum())  # weighted: estimates when traces were sampled
    logged = float(counts["logged"].sum())
    if logged > traces * (1 + 1e-9):
        raise InputError("log correlation row 0: logged exceeds traces")
    if traces <= 0:
        return _no_data(LOG_CORRELATION, "no traces in the window")
    detail = (
        f"{logged:,.0f} of {traces:,.0f} traces have at least one log record with their trace_id"
    )
    return _kpi(LOG_CORRELATION, _pct(logged, traces), detail)


# -- 3. SLO coverage of critical services ---------------------------------------------------


def uncovered_services(slos: pd.DataFrame, critical: Iterable[str]) -> list[str]:
    """The critical services without an enabled SLO, in the order they are configured."""
    require_columns(slos, ("service_name", "enabled"), "SLOs")
    enabled = slos["enabled"].astype("boolean").fillna(True).astype(bool)
    covered = set(slos.loc[enabled.to_numpy(), "service_name"].astype(str))
    return [s for s in _critical(critical) if s not in covered]


def slo_coverage(slos: pd.DataFrame, critical: Iterable[str]) -> Kpi:
    """KPI 3 from ``load.slos()`` and the critical services (a name or a list of names)."""
    services = _critical(critical)
    missing = uncovered_services(slos, services)
    if not services:
        return _no_data(SLO_COVERAGE, "no critical services configured")
    covered = len(services) - len(missing)
    detail = f"{covered} of {len(services)} critical services have an enabled SLO"
    if missing:
        disabled = set(slos["service_name"].astype(str)) & set(missing)
        named = [f"{s} (only disabled SLOs)" if s in disabled else s for s in missing]
        detail += "; without: " + ", ".join(named)
    return _kpi(SLO_COVERAGE, _pct(covered, len(services)), detail)


def _critical(critical: Iterable[str]) -> list[str]:
    if isinstance(critical, str):
        return [critical]
    return list(dict.fromkeys(str(s) for s in critical))


# -- 4. alert false-positive rate -----------------------------------------------------------


def false_positive_rate(verdicts: pd.DataFrame) -> Kpi:
    """KPI 4 from a verdict per incident (``alerts.false_positives``)."""
    require_columns(verdicts, VERDICT_COLUMNS, "verdicts")
    verdict = verdicts["verdict"]
    _check_allowed(verdict, VERDICTS, "verdicts", "verdict")
    repeated = verdicts["incident_id"].duplicated()
    if repeated.any():
        i = int(repeated.to_numpy().argmax())
        raise InputError(
            f"verdicts row {i}: incident {verdicts['incident_id'].iloc[i]!r} is judged twice"
        )
    n = judged(verdict)  # the rule: false positives of the judged, unknown left out
    left_out = f"; {n.unknown} unknown left out" if n.unknown else ""
    if n.judged == 0:
        return _no_data(FALSE_POSITIVE_RATE, f"no incident judged real or false positive{left_out}")
    fp = n.false_positive
    detail = f"{plural(fp, 'false positive')} of {plural(n.judged, 'judged incident')}{left_out}"
    return _kpi(FALSE_POSITIVE_RATE, _pct(fp, n.judged), detail)


# -- 5. detection time ----------------------------------------------------------------------


def detection_time(detections: pd.DataFrame) -> Kpi:
    """KPI 5 from a time to detect per outage (``alerts.detection_times``: Timedelta, NaT
    when unknown; ``severity`` the one the outage was selected by)."""
    require_columns(detections, DETECTION_COLUMNS, "detection times")
    severity = detections["severity"]
    _check_allowed(severity, SEVERITIES, "detection times", "severity")
    ttd = _durations(detections["time_to_detect"])
    critical = ttd[(severity == CRITICAL).to_numpy()]
    known = critical.dropna().dt.total_seconds()
    unknown = len(critical) - len(known)
    others = len(detections) - len(critical)
    notes = []
    if unknown:
        notes.append(f"{unknown} without a known time")
    if others:
        notes.append(f"{others} less severe not counted")
    tail = "; " + ", ".join(notes) if notes else ""
    if known.empty:
        return _no_data(DETECTION_TIME, f"no critical outage with a known detection time{tail}")
    worst = float(known.max())
    detail = (
        f"worst {shown(worst, DETECTION_TIME)} over {plural(len(known), 'critical outage')},"
        f" median {_seconds_text(float(known.median()))}{tail}"
    )
    return _kpi(DETECTION_TIME, worst, detail)


def _durations(values: pd.Series) -> pd.Series:
    """Timedeltas as they are; a number is refused, not read as nanoseconds (pandas' way)."""
    if pd.api.types.is_timedelta64_dtype(values):
        return values
    for i, v in enumerate(values):
        missing = v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v))
        if not (missing or isinstance(v, timedelta | np.timedelta64)):
            raise InputError(f"detection times row {i}: time_to_detect {v!r} is not a duration")
    return pd.to_timedelta(values.astype(object))


# -- the scorecard --------------------------------------------------------------------------


def scorecard(
    *,
    coverage: pd.DataFrame,
    correlation: pd.DataFrame,
    slos: pd.DataFrame,
    verdicts: pd.DataFrame,
    detections: pd.DataFrame,
    critical: Iterable[str],
) -> pd.DataFrame:
    """One row per KPI (``SCORECARD_COLUMNS``), in ``TARGETS`` order: every KPI from its
    data, so a missing input is an error, never a KPI silently left out."""
    kpis = [
        trace_coverage(coverage),
        log_correlation(correlation),
        slo_coverage(slos, critical),
        false_positive_rate(verdicts),
        detection_time(detections),
    ]
    frame = pd.DataFrame([asdict(k) for k in kpis], columns=list(SCORECARD_COLUMNS))
    frame["value"] = frame["value"].astype(float)
    frame["passed"] = pd.Series([k.passed for k in kpis], dtype=object)
    return frame


@dataclass(frozen=True)
class Tally:
    """A scorecard in one line: how many KPIs ``passed``, ``failed`` or had ``no_data``,
    and the names of the ``failing`` ones in scorecard order."""

    passed: int
    failed: int
    no_data: int
    failing: tuple[str, ...]

    @property
    def kpis(self) -> int:
        return self.passed + self.failed + self.no_data


def tally(rows: pd.DataFrame) -> Tally:
    """Count a ``scorecard``'s results (``passed`` True, False or None: no data)."""
    require_columns(rows, ("kpi", "passed"), "scorecard")
    results = rows["passed"].tolist()  # Python bools: a NaN or NA is no data, not a pass
    passed = [p is True for p in results]
    failed = [p is False for p in results]
    return Tally(
        passed=sum(passed),
        failed=sum(failed),
        no_data=len(rows) - sum(passed) - sum(failed),
        failing=tuple(str(k) for k, f in zip(rows["kpi"], failed, strict=True) if f),
    )


def _check_allowed(values: pd.Series, allowed: tuple[str, ...], what: str, column: str) -> None:
    """Every value one of ``allowed``; else InputError naming the first bad row."""
    for i, value in enumerate(values):
        if not isinstance(value, str) or value not in allowed:
            raise InputError(
                f"{what} row {i}: {column} {value!r} is not one of {', '.join(allowed)}"
            )


def _check_counts(
    frame: pd.DataFrame, columns: tuple[str, ...], counted: tuple[str, ...], what: str
) -> None:
    """Counts must be whole numbers, present and not negative."""
    require_columns(frame, columns, what)
    for col in counted:
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() | (values < 0) | (values % 1 != 0)
        if bad.any():
            i = int(bad.to_numpy().argmax())
            raise InputError(f"{what} row {i}: {col} {frame[col].tolist()[i]!r} is not a count")
