"""Load, analyse, write: the jobs that run the analysis on stored data and record the result
(slo_evaluation: SLOs evaluated and recorded; triage: runbooks per new incident)."""

from obslib.jobs import slo_evaluation, triage

__all__ = ["slo_evaluation", "triage"]
