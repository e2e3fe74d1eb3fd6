"""Alert analytics: correlation, duplicates, flapping, the Alertmanager replay, false
positives and noise.

Hand-built incident streams with answers worked out by hand; hypothesis properties of the
replay and the grouping; then the demo's scripted incident and flapping dns-resolver.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obslib import alerts, load
from obslib.demo import events as demo_events
from obslib.errors import InputError
from obslib.traces import sets as trace_sets
from tests.alerts.conftest import incident_frame

T0 = pd.Timestamp("2026-11-01 10:00", tz="UTC")
MIN = pd.Timedelta(minutes=1)
SEC = pd.Timedelta(seconds=1)
NAT = pd.NaT


EDGES = pd.DataFrame({"caller": ["web", "api"], "callee": ["api", "db"], "calls": [10, 10]})


# --- related alerts and correlation -----------------------------------------------------


def test_related_alerts_are_same_or_adjacent_services_within_the_window_or_named() -> None:
    """Around X (api, 10:00): Y same service 10 min before; Z on db (api calls db) exactly
    15 min after (the window includes its end); W on web (web calls api); V on an unrelated
    service; U on api one second past the window; N far later but naming X."""
    frame = incident_frame(
        [
            ("X", "api-errors", "api", "critical", T0, T0 + 30 * MIN),
            ("Y", "api-latency", "api", "high", T0 - 10 * MIN, T0),
            ("Z", "db-slow", "db", "high", T0 + 15 * MIN, T0 + 20 * MIN),
            ("W", "web-5xx", "web", "high", T0 + 5 * MIN, T0 + 20 * MIN),
            ("V", "batch-late", "batch", "low", T0 + 5 * MIN, T0 + 20 * MIN),
            ("U", "api-cpu", "api", "low", T0 + 15 * MIN + SEC, T0 + 20 * MIN),
            ("N", "batch-fail", "batch", "low", T0 + 3 * 60 * MIN, NAT, {"related_to": "X"}),
        ]
    )
    out = alerts.related_alerts(frame, "X", EDGES)
    got = list(zip(out["incident_id"], out["relation"], out["offset"], strict=True))
    assert got == [
        ("Y", "same service", -10 * MIN),
        ("W", "called by web", 5 * MIN),
        ("Z", "calls db", 15 * MIN),
        ("N", "named related", 180 * MIN),
    ]
    with pytest.raises(InputError, match="no incident 'nope'"):
        alerts.related_alerts(frame, "nope", EDGES)


def test_a_lone_incident_has_no_related_alerts_and_a_typed_empty_frame() -> None:
    """No other incident near it: an empty frame whose offset is still a duration (a view
    formats it; an object column broke the postmortem of a lone incident)."""
    frame = incident_frame(
        [
            ("X", "api-errors", "api", "critical", T0, NAT),
            ("V", "mail-slow", "mail", "low", T0 + 2 * MIN, NAT),
        ]
    )
    got = alerts.related_alerts(frame, "X", None)
    assert got.empty and pd.api.types.is_timedelta64_dtype(got["offset"])
    assert isinstance(got["triggered_at"].dtype, pd.DatetimeTZDtype)


def test_correlation_groups_follow_the_service_graph_and_still_active_incidents() -> None:
    """i1 api opens group 1; i2 db (api calls db) joins it; i3 batch is unrelated (group 2);
    i4 api fires 40 min after i1 (resolved, outside the window) but joins group 1 through i2
    on db, still active; i5 db at 12:00 opens group 3; i6 on batch names i5 and joins it;
    i7 batch 30 min after i3 resolved: i3 is neither active nor recent, so group 4."""
    frame = incident_frame(
        [
            ("i1", "api-errors", "api", "critical", T0, T0 + 30 * MIN),
            ("i2", "db-slow", "db", "high", T0 + 5 * MIN, T0 + 50 * MIN),
            ("i3", "batch-late", "batch", "low", T0 + 6 * MIN, T0 + 10 * MIN),
            ("i4", "api-latency", "api", "high", T0 + 40 * MIN, T0 + 45 * MIN),
            ("i5", "db-slow", "db", "high", T0 + 120 * MIN, T0 + 130 * MIN),
            ("i6", "batch-fail", "batch", "low", T0 + 130 * MIN, NAT, {"related_to": "i5"}),
            ("i7", "batch-late", "batch", "low", T0 + 40 * MIN, T0 + 41 * MIN),
        ]
    )
    out = alerts.correlate(frame, EDGES).set_index("incident_id")
    assert out["group"].to_dict() == {
        "i1": 1, "i2": 1, "i3": 2, "i4": 1, "i7": 3, "i5": 4, "i6": 4,
    }  # fmt: skip
    assert out.loc[["i4", "i6", "i7"], "group_lead"].tolist() == ["i1", "i5", "i7"]


def test_an_incident_related_to_two_groups_joins_the_one_opened_first() -> None:
    """p (api) and q (batch) open groups 1 and 2; r on db is adjacent to both (api and
    batch call db): it joins group 1, and the groups stay apart."""
    edges = pd.DataFrame({"caller": ["api", "batch"], "callee": ["db", "db"]})
    frame = incident_frame(
        [
            ("p", "x", "api", "high", T0, T0 + 30 * MIN),
            ("q", "y", "batch", "high", T0 + MIN, T0 + 30 * MIN),
            ("r", "z", "db", "high", T0 + 2 * MIN, T0 + 30 * MIN),
        ]
    )
    assert alerts.correlate(frame, edges)["group"].tolist() == [1, 2, 1]


def test_correlation_window_and_activity_include_their_ends() -> None:
    """Same service throughout. b fires exactly 15 min after a (resolved): joins; c 15 min
    + 1 s after b: a new group; d fires the instant c resolves, an hour after it fired
    (still active): joins c; e fires 29 min after d resolved: a new group."""
    frame = incident_frame(
        [
            ("a", "x", "api", "high", T0, T0 + MIN),
            ("b", "y", "api", "high", T0 + 15 * MIN, T0 + 16 * MIN),
            ("c", "z", "api", "high", T0 + 30 * MIN + SEC, T0 + 90 * MIN),
            ("d", "w", "api", "high", T0 + 90 * MIN, T0 + 91 * MIN),
            ("e", "v", "api", "high", T0 + 120 * MIN, T0 + 121 * MIN),
        ]
    )
    assert alerts.correlate(frame, None)["group"].tolist() == [1, 1, 2, 2, 3]


# --- duplicates and flapping ------------------------------------------------------------


def test_a_duplicate_fires_while_an_earlier_one_of_its_alert_is_unresolved() -> None:
    """a2 fires inside a1; a3 fires the instant a1 resolves (not a duplicate); a4 fires while
    a3 is open; b1 is another alert."""
    frame = incident_frame(
        [
            ("a1", "a", "api", "high", T0, T0 + 30 * MIN),
            ("a2", "a", "api", "high", T0 + 10 * MIN, T0 + 20 * MIN),
            ("b1", "b", "api", "high", T0 + 5 * MIN, T0 + 40 * MIN),
            ("a3", "a", "api", "high", T0 + 30 * MIN, NAT),
            ("a4", "a", "api", "high", T0 + 31 * MIN, T0 + 32 * MIN),
        ]
    )
    out = alerts.duplicates(frame)
    assert list(zip(out["incident_id"], out["duplicate_of"], strict=True)) == [
        ("a2", "a1"),
        ("a4", "a3"),
    ]


def test_flapping_is_alternating_firings_within_the_window() -> None:
    """f: three firings in 20 min, then three more 5 hours later (two episodes); g: three
    firings spanning exactly 1 h (flapping) and h: spanning 1 h + 1 s (not); k: three quick
    firings, but the second fires before the first resolved (no back and forth)."""
    rows = []
    for base, tag in ((T0, "a"), (T0 + 5 * 60 * MIN, "b")):
        for n, m in enumerate((0, 10, 20)):
            rows.append((f"f{tag}{n}", "f", "dns", "low", base + m * MIN, base + (m + 2) * MIN))
    for n, m in enumerate((0, 30, 60)):
        rows.append((f"g{n}", "g", "dns", "low", T0 + m * MIN, T0 + (m + 1) * MIN))
        stretch = SEC if m == 60 else pd.Timedelta(0)
        rows.append((f"h{n}", "h", "dns", "low", T0 + m * MIN + stretch, T0 + (m + 1) * MIN))
    rows += [
        ("k0", "k", "dns", "low", T0, T0 + 5 * MIN),
        ("k1", "k", "dns", "low", T0 + 4 * MIN, T0 + 6 * MIN),
        ("k2", "k", "dns", "low", T0 + 8 * MIN, T0 + 9 * MIN),
    ]
    out = alerts.flapping(incident_frame(rows))
    assert out[["alert_name", "first", "last", "firings"]].values.tolist() == [
        ["f", T0, T0 + 20 * MIN, 3],
        ["f", T0 + 300 * MIN, T0 + 320 * MIN, 3],
        ["g", T0, T0 + 60 * MIN, 3],
    ]
    assert (out["median_duration"] == [2 * MIN, 2 * MIN, MIN]).all()
    assert out["incident_ids"].iloc[0] == ("fa0", "fa1", "fa2")


# --- the Alertmanager replay ------------------------------------------------------------

# Route: group by service, group_wait 30 s, group_interval 5 min, repeat_interval 4 h;
# inhibit low-severity alerts while a critical one fires on the same service.
#   A api critical 10:00:00-14:30    opens group {service="api"}; first flush at 10:00:30
#   B api high     10:00:20-10:40    arrives during group_wait: rides in A's notification
#   C api high     10:02:00-10:50    after the first flush: goes out at 10:05:30 (new alerts)
#   D api low      10:10:00-10:20    muted by A at the 10:10:30 and 10:15:30 flushes
#   E db  high     10:03:00-10:03:20 resolves before its group's first flush (10:03:30)
#   G db  low      10:04:00-10:06    low while A is critical, but on db: not muted; E's group
#                                    ended at 10:03:30, so G opens a new one (flush 10:04:30)
# Flushes run 10:00:30 + k x 5 min. B and C resolving changes nothing a receiver without
# send_resolved sees. The last notification (10:05:30) is 4 h old at the 14:05:30 flush,
# but Alertmanager repeats only when it is strictly older, so the repeat is at 14:10:30.
# A resolves at 14:30: the 14:30:30 flush clears the log silently and the group ends.
STREAM = [
    ("A", "api-errors", "api", "critical", T0, T0 + 270 * MIN),
    ("B", "api-latency", "api", "high", T0 + 20 * SEC, T0 + 40 * MIN),
    ("C", "api-saturation", "api", "high", T0 + 2 * MIN, T0 + 50 * MIN),
    ("D", "api-disk", "api", "low", T0 + 10 * MIN, T0 + 20 * MIN),
    ("E", "db-slow", "db", "high", T0 + 3 * MIN, T0 + 3 * MIN + 20 * SEC),
    ("G", "db-disk", "db", "low", T0 + 4 * MIN, T0 + 6 * MIN),
]
ROUTE = alerts.Route(group_by=("service",))
INHIBIT = (alerts.InhibitRule({"severity": "critical"}, {"severity": "low"}, ("service",)),)


def _sent(replay: alerts.NotificationReplay) -> list[tuple]:
    n = replay.notifications
    return list(zip(n["at"], n["reason"], n["alerts"], n["new"], strict=True))


def test_the_replay_merges_batches_repeats_and_inhibits_as_alertmanager_does() -> None:
    """The stream above: four pages for six incidents."""
    replay = alerts.replay_notifications(incident_frame(STREAM), ROUTE, INHIBIT)
    assert _sent(replay) == [
        (T0 + 30 * SEC, "first", ("A", "B"), ("A", "B")),
        (T0 + 4 * MIN + 30 * SEC, "first", ("G",), ("G",)),
        (T0 + 5 * MIN + 30 * SEC, "new alerts", ("A", "B", "C"), ("C",)),
        (T0 + 250 * MIN + 30 * SEC, "repeat", ("A",), ()),
    ]
    groups = replay.notifications["group"].tolist()
    assert groups == ['{service="api"}', '{service="db"}', '{service="api"}', '{service="api"}']
    fates = replay.fates.set_index("incident_id")["fate"].to_dict()
    assert fates == {
        "A": "notified",
        "B": "merged",
        "C": "notified",
        "D": "inhibited",
        "E": "silent",
        "G": "notified",
    }
    assert replay.summary["notifications"] == 4 and replay.summary["pages_saved"] == 2
    assert replay.fates.set_index("incident_id").loc["C", "notified_at"] == T0 + 5.5 * MIN


def test_without_the_inhibit_rule_the_low_alert_pages() -> None:
    """D is new at the 10:10:30 flush when nothing mutes it."""
    replay = alerts.replay_notifications(incident_frame(STREAM), ROUTE)
    assert (T0 + 10 * MIN + 30 * SEC, "new alerts", ("A", "B", "C", "D"), ("D",)) in _sent(replay)


def test_send_resolved_adds_resolution_notices_that_also_reset_the_repeat_clock() -> None:
    """G (10:06, its group's last alert), B (10:40) and C (10:50) resolving are each a
    notice; the 10:50:30 one is api's last notification, so no repeat is due before A
    resolves; then api's all-resolved notice."""
    route = alerts.Route(group_by=("service",), send_resolved=True)
    replay = alerts.replay_notifications(incident_frame(STREAM), route, INHIBIT)
    assert [(at - T0, why) for at, why, *_ in _sent(replay)] == [
        (30 * SEC, "first"),
        (4.5 * MIN, "first"),
        (5.5 * MIN, "new alerts"),
        (9.5 * MIN, "resolved"),
        (40.5 * MIN, "resolved"),
        (50.5 * MIN, "resolved"),
        (270.5 * MIN, "resolved"),
    ]
    assert replay.summary["notifications"] == 3 and replay.summary["resolved_notifications"] == 4


def test_an_alert_firing_exactly_at_the_flush_is_in_it() -> None:
    """B fires at 10:00:30, the first flush: one notification with both."""
    frame = incident_frame(
        [
            ("A", "a", "api", "high", T0, T0 + 20 * MIN),
            ("B", "b", "api", "high", T0 + 30 * SEC, T0 + 20 * MIN),
        ]
    )
    replay = alerts.replay_notifications(frame, ROUTE)
    assert _sent(replay) == [(T0 + 30 * SEC, "first", ("A", "B"), ("A", "B"))]


def test_a_refiring_alert_already_notified_sends_nothing_new() -> None:
    """Equal labels are one Alertmanager alert: F2 fires again before the flush that would
    have cleared F1, so it rides on F1's page; F3 fires after the group ended and opens a
    new one."""
    frame = incident_frame(
        [
            ("F1", "dns", "dns", "low", T0, T0 + 2 * MIN),
            ("F2", "dns", "dns", "low", T0 + 4 * MIN, T0 + 6 * MIN),
            ("F3", "dns", "dns", "low", T0 + 20 * MIN, T0 + 22 * MIN),
        ]
    )
    replay = alerts.replay_notifications(frame)
    assert [(at - T0, a) for at, _, a, _ in _sent(replay)] == [
        (30 * SEC, ("F1",)),
        (20.5 * MIN, ("F3",)),
    ]
    assert replay.fates["fate"].tolist() == ["notified", "merged", "notified"]


def test_bad_routes_and_rules_are_refused_by_name() -> None:
    with pytest.raises(InputError, match="group_by: unknown label"):
        alerts.Route(group_by=("team",))
    with pytest.raises(InputError, match="group_interval must be positive"):
        alerts.Route(group_interval="0s")
    with pytest.raises(InputError, match=r"InhibitRule\.equal: unknown label"):
        alerts.InhibitRule({"severity": "critical"}, {"severity": "low"}, ("cluster",))


_LABEL_CHOICES = st.tuples(
    st.sampled_from(["a", "b", "c"]),
    st.sampled_from(["api", "db"]),
    st.sampled_from(["critical", "low"]),
)


@st.composite
def _streams(draw) -> pd.DataFrame:
    n = draw(st.integers(1, 12))
    rows = []
    for k in range(n):
        name, service, severity = draw(_LABEL_CHOICES)
        fired = T0 + draw(st.integers(0, 600)) * 10 * SEC
        length = draw(st.one_of(st.none(), st.integers(0, 360)))
        resolved = NAT if length is None else fired + length * 10 * SEC
        rows.append((f"i{k:02d}", name, service, severity, fired, resolved))
    return incident_frame(rows)


@settings(max_examples=60, deadline=None)
@given(stream=_streams(), by=st.sampled_from([("alertname",), ("service",), ("...",)]))
def test_every_incident_gets_one_fate_and_each_page_has_its_own_opener(stream, by) -> None:
    """Exactly one fate each. Without inhibition an incident is new in at most one
    notification, so first/new-alerts pages never outnumber the incidents and pages are
    those plus repeats. With it, an alert muted and later unmuted is new again (as in
    Alertmanager), but the openers are still exactly the notified incidents."""
    until = T0 + 10 * 60 * MIN
    route = alerts.Route(group_by=by)
    for rules in ((), INHIBIT):
        replay = alerts.replay_notifications(stream, route, rules, until=until)
        fates = replay.fates
        assert sorted(fates["incident_id"]) == sorted(stream["incident_id"])
        assert fates["fate"].isin(alerts.FATES).all()
        notes = replay.notifications
        opening = notes[notes["reason"].isin(("first", "new alerts"))]
        notified = fates.loc[fates["fate"] == "notified", "incident_id"]
        assert set(opening["opener"]) == set(notified)
        if not rules:
            assert len(opening) <= len(stream)
            assert opening["opener"].is_unique
        repeats = int((notes["reason"] == "repeat").sum())
        assert replay.summary["notifications"] == len(opening) + repeats


@settings(max_examples=60, deadline=None)
@given(stream=_streams())
def test_groups_partition_the_incidents_and_every_group_holds_its_lead(stream) -> None:
    out = alerts.correlate(stream, EDGES)
    assert sorted(out["incident_id"]) == sorted(stream["incident_id"])
    assert sorted(set(out["group"])) == list(range(1, out["group"].max() + 1))
    leads = out.groupby("group")["group_lead"].nunique()
    assert (leads == 1).all()
    first = out.sort_values(["triggered_at", "incident_id"]).groupby("group").head(1)
    assert (first["incident_id"] == first["group_lead"]).all()


# --- false positives and noise ----------------------------------------------------------


def test_incidents_whose_alert_is_gone_relate_only_by_name() -> None:
    """A NULL service (an incident without its alert) is not 'the same service' as another
    NULL one: the loader's NaN must not read as the service 'nan'."""
    frame = incident_frame(
        [
            ("X", "a", np.nan, "low", T0, NAT),
            ("Y", "b", np.nan, "low", T0 + MIN, NAT),
            ("Z", "c", np.nan, "low", T0 + 2 * MIN, NAT, {"related_to": "X"}),
        ]
    )
    got = alerts.related_alerts(frame, "X", None)
    assert got[["incident_id", "relation"]].values.tolist() == [["Z", "named related"]]


def test_noise_rates_exclude_unknowns_and_count_alerts_per_real_group() -> None:
    """Verdicts: 3 real, 1 false positive, 2 unknown -> 25 %. Groups 1 (3 incidents, real)
    and 2 (2 incidents, real) hold real verdicts; group 3 holds only the false positive:
    (3 + 2) / 2 = 2.5 alerts per real incident."""
    frame = incident_frame(
        [
            (f"i{k}", f"alert{k}", "api", "high", T0 + k * 2 * 60 * MIN, T0 + (k * 120 + 1) * MIN)
            for k in range(6)
        ]
    )
    verdicts = pd.DataFrame(
        {
            "incident_id": [f"i{k}" for k in range(6)],
            "verdict": ["real", "unknown", "real", "real", "false_positive", "unknown"],
        }
    )
    groups = pd.DataFrame({"incident_id": [f"i{k}" for k in range(6)], "group": [1, 1, 1, 2, 3, 2]})
    got = alerts.noise(frame, verdicts, groups)
    assert (got.real, got.false_positive, got.unknown) == (3, 1, 2)
    assert got.false_positive_rate == pytest.approx(0.25)
    assert got.real_groups == 2 and got.alerts_per_real_incident == pytest.approx(2.5)
    assert (got.duplicates, got.flapping_episodes) == (0, 0)


# --- the demo ---------------------------------------------------------------------------


def test_the_demo_incident_pages_correlate_and_the_dns_resolver_flaps(demo_db) -> None:
    """The scripted incident's three pages land in one group; every dns-resolver firing is
    part of a flapping episode, and nothing else flaps."""
    url, _ = demo_db
    frame = load.incidents(url=url)
    main = frame.loc[frame["incident_id"] == demo_events.main_incident_id()].iloc[0]
    spans = load.spans(main["triggered_at"] - 30 * MIN, main["triggered_at"], url=url)
    groups = alerts.correlate(frame, trace_sets.service_graph(spans)).set_index("incident_id")
    day = main["triggered_at"].strftime("%Y%m%d")
    scripted = [demo_events.main_incident_id(), f"INC-{day}-0002", f"INC-{day}-0003"]
    assert groups.loc[scripted, "group"].nunique() == 1
    assert groups.loc[scripted[0], "group_lead"] == scripted[0]
    flaps = alerts.flapping(frame)
    assert set(flaps["alert_name"]) == {"dns-resolver-timeouts"}
    dns = frame.loc[frame["alert_name"] == "dns-resolver-timeouts", "incident_id"]
    assert sorted(i for ids in flaps["incident_ids"] for i in ids) == sorted(dns)
