"""The postmortem draft (``obslib.views.postmortem_draft``): its sentences on hand-built
facts, and golden Markdown files of demo incidents compared byte for byte.

The golden files, ``tests/data/golden_postmortem/<incident id>.md``, are
``Postmortem.document()`` of three incidents of the test demo (seed 7, ``tests.pg.DEMO_SPANS``
spans): the scripted outage, a false positive and one still open. The draft holds no
generation time, so the text depends on the data and the code only. After an intended
change to the draft or to the facts in it, regenerate them with

    .venv/bin/python -m tests.views.test_postmortem_draft

(it builds the same demo database on a scratch server) and review the diff
(``git diff tests/data/golden_postmortem``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from obslib.alerts import incidents
from obslib.views import incident_postmortem as pm_view
from obslib.views import postmortem_draft as draft
from tests.golden import assert_golden

DATA = Path(__file__).parents[1] / "data" / "golden_postmortem"
# the scripted outage (events.main_incident_id()), a false positive (auth-service's latency
# anomaly of 2026-11-02), one still open (campaign-service's error budget at the end)
GOLDEN = ("INC-20261114-0001", "INC-20261102-0001", "INC-20261115-0003")
REGENERATE = ".venv/bin/python -m tests.views.test_postmortem_draft"

T0 = pd.Timestamp("2026-11-14 14:00", tz="UTC")
MIN = pd.Timedelta(minutes=1)
IMPACT_COLUMNS = ["service_name", "relation", "operation_name", "failed_calls"]
BUDGET_COLUMNS = ["service_name", "slo_name", "bad", "events", "budget_events", "burned_pct"]


def facts(
    *,
    incident: dict | None = None,
    detect: pd.Timedelta | None = None,
    impact: list[tuple] = (),
    users: incidents.UserImpact | None = None,
    budget: list[tuple] = (),
    budgeted: tuple[str, ...] = (),
    related: int = 0,
    events: list[tuple[int, str, str]] = (),
) -> draft.Facts:
    """Facts of an incident of ``api`` paged at T0 + 10 min and resolved 20 min later."""
    row = {
        "incident_id": "INC-1",
        "alert_name": "api-errors",
        "service_name": "api",
        "severity": "critical",
        "status": "resolved",
        "triggered_at": T0 + 10 * MIN,
        "resolved_at": T0 + 30 * MIN,
        "resolved_by": "bob",
        "incident_data": {},
        **(incident or {}),
    }
    frame = pd.DataFrame(
        [(T0 + m * MIN, k, w) for m, k, w in events], columns=["time", "kind", "what"]
    )
    timeline = incidents.Timeline(
        events=frame,
        first_bad=None if detect is None else row["triggered_at"] - detect,
        time_to_detect=detect,
        time_to_acknowledge=None,
        time_to_resolve=row["resolved_at"] - row["triggered_at"],
    )
    return draft.Facts(
        incident=row,
        service="api",
        start=T0 - 50 * MIN,
        end=T0 + 30 * MIN,
        timeline=timeline,
        detection=incidents.Detection(
            "INC-1", "availability", timeline.first_bad, timeline.time_to_detect
        ),
        users=users or user_rows([]),
        impact=pd.DataFrame(list(impact), columns=IMPACT_COLUMNS),
        budget=pd.DataFrame(list(budget), columns=BUDGET_COLUMNS),
        budgeted_services=list(budgeted),
        related=pd.DataFrame(
            {"alert_name": [f"a{i}" for i in range(related)], "relation": "same service"}
        ),
        top_errors=pd.DataFrame(columns=["service_name", "message", "records", "first", "last"]),
    )


def user_rows(rows: list[tuple]) -> incidents.UserImpact:
    """(entry service, operation, requests, failed, slow or None, threshold or None) rows
    as ``user_impact`` returns them, with their totals."""
    frame = pd.DataFrame(
        [(*r[:4], np.nan if r[4] is None else r[4], np.nan if r[5] is None else r[5], pd.NaT,
          pd.NaT) for r in rows],
        columns=list(incidents.USER_COLUMNS),
    )  # fmt: skip
    return incidents.UserImpact(
        int(frame["requests"].sum()), int(frame["failed"].sum()),
        int(frame["slow"].fillna(0).sum()), frame,
    )  # fmt: skip


OVER = "from the first bad minute to the resolution"


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([("gw", "GET /", 74, 12, 60, 300.0)],
         f"User requests {OVER}: 12 of 74 failed, 60 more were slow."),
        ([("gw", "GET /", 70, 1, 2, 300.0), ("gw", "POST /", 1_930, 1_000, 0, 300.0),
          ("edge", "GET", 5, 1, None, None)],
         f"User requests {OVER}: 1,002 of 2,005 failed, 2 more were slow."),
        ([("gw", "GET /", 7, 2, None, None)],
         f"User requests {OVER}: 2 of 7 failed (no latency SLO of the services they entered "
         "says what slow is)."),
        ([("gw", "GET /", 7, 0, 0, 300.0)],
         f"User requests {OVER}: none of 7 failed or was slow."),
        ([("gw", "GET /", 7, 0, None, None)],
         f"User requests {OVER}: none of 7 failed (no latency SLO says what slow is)."),
        ([], f"No user request entered {OVER}."),
    ],
    ids=[
        "failed and slow user requests, each once",
        "entry services and operations add up, a service without a latency SLO adds failures",
        "no entry service with a latency SLO: failures only, saying why",
        "requests that all went well say none failed or was slow",
        "requests that all went well where nobody said what slow is say none failed",
        "no user request in the window at all",
    ],
)  # fmt: skip
def test_the_summary_counts_user_requests_once(rows, expected) -> None:
    assert draft.users_text(user_rows(rows), OVER) == expected


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([("gw", "GET /", 74, 12, 60, 300.0)], "12 failed, 60 more slow, of 74"),
        ([("gw", "GET /", 40, 0, 0, 300.0)], "none failed or slow, of 40"),
        ([("gw", "GET /", 7, 2, None, None)], "2 failed, of 7 (no latency SLO)"),
        ([], "none"),
    ],
    ids=[
        "failed and slow requests of all that entered",
        "requests that all went well",
        "no latency SLO of the entry service: failures only",
        "no request entered",
    ],
)  # fmt: skip
def test_the_summary_table_cell_counts_user_requests_once(rows, expected) -> None:
    assert draft.users_short(user_rows(rows)) == expected


def test_the_impact_section_separates_user_requests_from_calls() -> None:
    """12 requests failed in gw and in api: the user table says 12 failed requests, the
    calls table 12 failed calls in each service, captioned so nobody adds them up."""
    text = draft.document(
        facts(
            detect=MIN,
            users=user_rows([("gw", "GET /", 74, 12, 3, 300.0), ("gw", "POST /", 5, 0, 0, 300.0)]),
            impact=[("gw", "upstream", "GET /", 12), ("api", "paged", "list", 12)],
        )
    )
    section = text.split("## Impact")[1].split("## Root causes")[0]
    assert section.index(
        "79 user requests from the first bad minute to the resolution, each "
        "counted once at the service it entered (its first server span): 12 "
        "failed, 3 more were slow"
    ) < section.index("Failed and slow calls")
    assert "calls do not add up to requests" in section
    assert "| entry service | operation | requests | failed | slow |" in section
    assert "| service | relation | operation | failed calls |" in section
    summary = text.split("## Summary")[1].split("## Impact")[0]
    assert "12 of 79 failed, 3 more were slow." in summary and "24" not in summary


def test_an_incident_that_hurt_no_user_says_so_in_place_of_the_tables() -> None:
    text = draft.document(facts(users=user_rows([("gw", "GET /", 40, 0, 0, 300.0)])))
    section = text.split("## Impact")[1].split("## Root causes")[0]
    assert "*User requests from an hour before the page to the resolution: none of 40 failed " in (
        section
    )
    assert "*No failed or slow call in api or the services linked to it from an hour " in section


def test_the_user_caption_names_entry_services_without_a_latency_slo() -> None:
    users = user_rows([("gw", "GET /", 10, 1, 2, 300.0), ("edge", "GET", 3, 1, None, None)])
    assert draft.users_caption(users, OVER).endswith(
        "(over the entry service's latency SLO, the slow-over column; edge has none: failures only)"
    )


@pytest.mark.parametrize(
    ("budgeted", "expected"),
    [
        ((), "No budgeted SLO covers api or the services linked to it"),
        (("api", "db"), "The SLOs of api, db lost no event between 2026-11-14 13:10:00 UTC"),
    ],
    ids=["no budgeted SLO at all", "budgeted SLOs that lost nothing"],
)
def test_an_empty_budget_says_why(budgeted, expected) -> None:
    assert draft.no_budget_text(facts(budgeted=budgeted)).startswith(expected)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"detect": 30 * pd.Timedelta(seconds=1)}, []),
        ({"detect": MIN}, [("Detect faster: 1 min from the first bad minute to the page "
                            "(target under 1 min)", "detect")]),
        ({"related": 2}, [("Group the 3 pages of this incident into one page", "mitigate")]),
        (
            {"budget": [("api", "availability", 9, 90, 3.0, 300.0),
                        ("db", "availability", 1, 90, 1.0, 100.0)]},
            [("api/availability overspent its budget in this incident (300 %): review the "
              "release policy", "process")],
        ),
        ({"budget": [("api", "availability", 1, 90, 3.0, 99.9)]}, []),
    ],
    ids=[
        "detected within the target: nothing to do",
        "detected at the target exactly: detect faster",
        "related pages: group them (this one and the others)",
        "an overspent budget: the worst SLO's release policy",
        "a budget spent just under its whole: no action",
    ],
)  # fmt: skip
def test_the_data_suggests_action_items(kwargs, expected) -> None:
    assert draft.suggested_actions(facts(**kwargs)) == expected


def test_the_trigger_is_the_last_change_before_the_first_bad_minute() -> None:
    """Deploys at +1 and +4, the first bad minute at +5, a rollback at +20: the trigger is
    the +4 deploy, the rollback part of the resolution, the page 5 minutes late."""
    text = draft.document(
        facts(
            detect=5 * MIN,
            events=[
                (1, "change", "deploy v1"),
                (4, "change", "deploy v2"),
                (10, "triggered", "INC-1 paged"),
                (20, "change", "rollback v1"),
            ],
        )
    )
    trigger = text.split("## Trigger")[1].split("## Resolution")[0]
    resolution = text.split("## Resolution")[1].split("## Detection")[0]
    assert "The last change before the first bad minute: **deploy v2** at 2026-11-14 14:04" in (
        trigger
    )
    assert "rollback v1 at 2026-11-14 14:20:00 UTC." in resolution
    assert "its first page came 5 min later (over the 1 min target)" in text


def test_stored_text_in_the_draft_is_escaped_markdown() -> None:
    """An alert name, summary and root cause from the data read as written, never markup."""
    text = draft.document(
        facts(
            incident={
                "alert_name": "<img src=x>",
                "incident_data": {"summary": "**bold** | cell", "root_cause": "[link](http://x)"},
            }
        )
    )
    assert text.startswith("# Postmortem: INC-1, \\*\\*bold\\*\\* \\| cell\n")
    assert "&lt;img src=x> paged for api" in text and "<img" not in text
    assert "Recorded on the incident: *\\[link\\](http://x)*." in text


# -- golden files -------------------------------------------------------------------------


def documents(url: str) -> dict[str, str]:
    """Each golden file's expected text, from the draft as it is now."""
    return {
        f"{incident_id}.md": pm_view.postmortem(incident_id, url=url).document().text
        for incident_id in GOLDEN
    }


@pytest.fixture(scope="module")
def demo_documents(demo_db) -> dict[str, str]:
    url, _ = demo_db
    return documents(url)


@pytest.mark.parametrize("incident_id", GOLDEN)
def test_the_demo_postmortems_match_their_golden_files(demo_documents, incident_id) -> None:
    """The draft of each golden incident is the stored Markdown, byte for byte."""
    name = f"{incident_id}.md"
    assert_golden(DATA / name, demo_documents[name], REGENERATE)


def main() -> None:
    """Rewrite the golden files from the test demo, on a scratch server of its own."""
    from tests.pg import POSTGRES

    try:
        url, _ = POSTGRES.demo()
        DATA.mkdir(parents=True, exist_ok=True)
        for name, text in documents(url).items():
            (DATA / name).write_text(text)
            print(f"wrote {DATA / name}")
    finally:
        POSTGRES.close()


if __name__ == "__main__":
    main()


@pytest.mark.parametrize(
    ("name", "before", "said"),
    [
        ("none the day before is new", 0, ", **new**: none the same hours the day before"),
        ("some the day before is counted", 1234, ", 1,234 the same hours the day before"),
        ("no day-before count says nothing", None, ""),
    ],
)
def test_top_error_template_beside_the_day_before_in_words(name, before, said):
    row = pd.Series({"template": "t", "records": 5, "records_day_before": before})
    assert draft._day_before(row) == said, name
