"""Every projection equals a plain fold over the events, written here independently of it."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import consented
from overleg.adapters.eventstore import StoreUnavailable
from overleg.adapters.views import ViewStore, flag
from overleg.aggregates.case import EVENT_CLASSES
from overleg.aggregates.values import (
    Agreement,
    Attendance,
)
from overleg.application import Overleg
from overleg.commands import (
    AgreeWorkplan,
    AppointChair,
    EraseCase,
    HoldMeeting,
)
from overleg.policies.access import Operator, Principal, StaffRole
from overleg.projections.audit_trail import history, trail_entry
from overleg.projections.case_view import get_case_view
from overleg.projections.runner import Projector
from overleg.streams import import_stream
from strategies import valid_streams, with_fresh_ids

Lines = list[dict[str, Any]]
SAMPLE = Path(__file__).parents[2] / "samples" / "sample-stream.jsonl"


def fold_case_views(stream: Lines) -> dict[str, dict[str, Any]]:
    """What the case view must show, by the rules of docs/projections.md."""
    views: dict[str, dict[str, Any]] = {}
    for line in stream:
        d, kind = line["data"], line["type"]
        if kind == "Requested":
            views[line["case"]] = {
                "programme": d["programme"],
                "region": d["region"],
                "chair": None,
                "coordinator": None,
                "meetings": {},
                "follow_up": None,
                "ended": None,
                "consents": set(),
                "workplan_meeting": 0,
                "agreements": [],
            }
        v = views[line["case"]]
        v["version"] = line["seq"]
        if kind in ("RequestDeclined", "CaseClosed"):
            v["ended"] = "declined" if kind == "RequestDeclined" else "closed"
            v["follow_up"], v["agreements"] = None, []
        elif kind == "ConsentGiven":
            v["consents"].add((d["party"]["ref"], d["party"]["role"]))
        elif kind == "ConsentWithdrawn":
            v["consents"].discard((d["party"]["ref"], d["party"]["role"]))
        elif kind == "ChairAppointed":
            v["chair"] = d["chair"]
        elif kind == "MeetingHeld":
            v["meetings"][d["meeting"]] = {"on": d["held_on"], "plan": False, "done": False}
            v["follow_up"] = None
        elif kind == "WorkplanAgreed":
            v["meetings"][d["meeting"]]["plan"] = True
            if d["meeting"] >= v["workplan_meeting"]:
                v["workplan_meeting"] = d["meeting"]
                v["agreements"] = [
                    (d["meeting"], a["who"], a["what"], a["due"], a["domain"])
                    for a in d["agreements"]
                ]
                v["coordinator"] = d["coordinator"] or v["coordinator"]
        elif kind == "RegistrationCompleted":
            v["meetings"][d["meeting"]]["done"] = True
        elif kind == "FollowUpScheduled":
            v["follow_up"] = d["on"]
    return views


def status_of(v: dict[str, Any]) -> str:
    if v["ended"]:
        return str(v["ended"])
    if v["follow_up"]:
        return "follow_up_scheduled"
    if v["meetings"]:
        last = v["meetings"][max(v["meetings"])]
        if last["done"]:
            return "registration_completed"
        return "workplan_agreed" if last["plan"] else "meeting_held"
    if v["chair"]:
        return "chair_appointed"
    return "consented" if v["consents"] else "requested"


def fold_meetings(stream: Lines) -> dict[tuple[str, int], tuple[Any, ...]]:
    """The facts the annual statistics count, per held meeting."""
    where: dict[str, tuple[str, str]] = {}
    meetings: dict[tuple[str, int], dict[str, Any]] = {}
    for line in stream:
        d, case = line["data"], line["case"]
        if line["type"] == "Requested":
            where[case] = (d["programme"], d["region"])
        elif line["type"] == "MeetingHeld":
            meetings[case, d["meeting"]] = {
                "where": where[case],
                "on": d["held_on"],
                "youth": d["attendance"]["youth"],
                "parents": d["attendance"]["parents"],
                "plan": False,
                "coordinator": False,
                "done": False,
            }
        elif line["type"] == "WorkplanAgreed":
            m = meetings[case, d["meeting"]]
            m["plan"], m["coordinator"] = True, d["coordinator"] is not None
        elif line["type"] == "RegistrationCompleted":
            meetings[case, d["meeting"]]["done"] = True
    return {
        key: (
            *m["where"],
            m["on"],
            int(m["on"][:4]),
            m["youth"],
            m["parents"],
            m["plan"],
            m["coordinator"],
            m["done"],
        )
        for key, m in meetings.items()
    }


def fold_bottlenecks(stream: Lines) -> set[tuple[Any, ...]]:
    where: dict[str, tuple[str, str]] = {}
    found = set()
    for line in stream:
        if line["type"] == "Requested":
            where[line["case"]] = (line["data"]["programme"], line["data"]["region"])
        elif line["type"] == "BottleneckReported":
            day = datetime.fromisoformat(line["at"]).date()
            found.add(
                (
                    line["case"],
                    line["seq"],
                    *where[line["case"]],
                    day.isoformat(),
                    day.year,
                    line["data"]["theme"],
                )
            )
    return found


def _in(cases: list[str]) -> str:
    return ", ".join("?" * len(cases))


@settings(
    max_examples=int(os.environ.get("OVERLEG_FOLD_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    stream=valid_streams().map(with_fresh_ids),
    batch=st.integers(1, 50),
    rebuilt=st.booleans(),
)
def test_projections_equal_a_plain_fold(
    projected: tuple[Overleg, ViewStore], stream: Lines, batch: int, rebuilt: bool
) -> None:
    """Followed in the log's order in batches of any size, or rebuilt case by case (in
    batches of whole cases, a case longer than a batch too)."""
    app, views = projected
    import_stream(app, [json.dumps(line) for line in stream])
    projector = Projector(app.event_log, views, batch_size=batch, rebuild_batch=batch)
    applied = projector.rebuild() if rebuilt else projector.catch_up()
    assert applied >= len(stream)  # the store keeps the events of earlier examples too
    cases = sorted({line["case"] for line in stream})

    for case_id, want in fold_case_views(stream).items():
        got = get_case_view(views, UUID(case_id))
        assert got is not None
        assert (got.version, got.programme, got.region, got.status) == (
            want["version"],
            want["programme"],
            want["region"],
            status_of(want),
        )
        assert (got.chair, got.coordinator, got.ended) == (
            want["chair"],
            want["coordinator"],
            want["ended"],
        )
        assert got.meetings_held == len(want["meetings"])
        assert got.next_follow_up_on == want["follow_up"]
        assert {(c.ref, c.role) for c in got.consents} == want["consents"]
        assert [(a.meeting, a.who, a.what, a.due, a.domain) for a in got.agreements] == want[
            "agreements"
        ]
        assert got.follow_up_overdue(date(2100, 1, 1)) == (want["follow_up"] is not None)

        trail = history(views, UUID(case_id))
        own = [line for line in stream if line["case"] == case_id]
        assert [(t.seq, t.type, t.by) for t in trail] == [
            (line["seq"], line["type"], line["by"]) for line in own
        ]
        assert [datetime.fromisoformat(t.at) for t in trail] == [
            datetime.fromisoformat(line["at"]) for line in own
        ]

    rows = views.read(
        "SELECT case_id, meeting, programme, region, held_on, year, youth, parents, workplan,"
        f" coordinator, registered FROM stats_meeting WHERE case_id IN ({_in(cases)})",
        cases,
    )
    assert {
        (r[0], int(r[1])): (
            r[2],
            r[3],
            r[4],
            int(r[5]),
            flag(r[6]),
            flag(r[7]),
            bool(r[8]),
            bool(r[9]),
            bool(r[10]),
        )
        for r in rows
    } == fold_meetings(stream)

    reported = views.read(
        "SELECT case_id, seq, programme, region, reported_on, year, theme FROM bottleneck"
        f" WHERE case_id IN ({_in(cases)})",
        cases,
    )
    assert {(r[0], int(r[1]), r[2], r[3], r[4], int(r[5]), r[6]) for r in reported} == (
        fold_bottlenecks(stream)
    )


def test_a_nul_character_that_reached_the_store_never_stalls_a_projection(
    projected: tuple[Overleg, ViewStore],
) -> None:
    app, views = projected
    case_id = UUID(int=7)
    team = Principal("team-1", StaffRole.TEAM, region="Limburg")
    chair = Principal("vz-1", StaffRole.CHAIR)
    consented(app, case_id, team)
    app.handle(AppointChair(case_id, "vz-1"), team)
    day = app.get_case(case_id).requested_on
    app.handle(HoldMeeting(case_id, day, "x", Attendance(True, True, None, ())), chair)
    app.handle(
        AgreeWorkplan(
            case_id,
            meeting=1,
            agreements=[Agreement("hv-1", "a\x00b", None, None)],
            coordinator=None,
            crisis_plan=False,
        ),
        chair,
    )
    Projector(app.event_log, views).catch_up()
    view = get_case_view(views, case_id)
    assert view is not None
    assert view.agreements[0].what in ("a\x00b", "a\ufffdb")  # SQLite keeps it; PostgreSQL cannot


def _every_event_type() -> Lines:
    """Two cases that between them record every event type of the case."""
    one, two = str(UUID(int=11)), str(UUID(int=12))

    def line(case: str, seq: int, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        at = datetime(2015, 3, 1 + seq, 10, tzinfo=UTC).isoformat()
        return {"case": case, "seq": seq, "type": kind, "at": at, "by": "team-1", "data": data}

    request = {
        "programme": "integrale_jeugdhulp",
        "region": "Limburg",
        "requested_by": {"ref": "ouder-1", "role": "parent"},
        "channel": "telefoon",
        "client": {"ref": "jongere-1", "birth_date": None},
        "question": "?",
    }
    youth = {"ref": "jongere-1", "role": "youth"}
    steps = [
        ("Requested", request),
        ("ConsentGiven", {"party": youth}),
        ("ConsentWithdrawn", {"party": youth, "reason": None}),
        ("ConsentGiven", {"party": youth}),
        ("ChairAppointed", {"chair": "vz-1"}),
        (
            "MeetingHeld",
            {
                "meeting": 1,
                "held_on": "2015-03-10",
                "place": "x",
                "attendance": {
                    "youth": True,
                    "parents": False,
                    "trusted_person": None,
                    "professionals": ["hv-1"],
                },
            },
        ),
        (
            "WorkplanAgreed",
            {
                "meeting": 1,
                "agreements": [{"who": "hv-1", "what": "x", "due": None, "domain": None}],
                "coordinator": "hv-1",
                "crisis_plan": True,
            },
        ),
        ("RegistrationCompleted", {"meeting": 1}),
        ("FollowUpScheduled", {"on": "2015-06-01"}),
        ("BottleneckReported", {"theme": "wachtlijst", "description": "x"}),
        ("CaseClosed", {"reason": "x"}),
    ]
    lines = [line(one, seq, kind, data) for seq, (kind, data) in enumerate(steps, start=1)]
    lines += [line(two, 1, "Requested", request), line(two, 2, "RequestDeclined", {"reason": "x"})]
    three = str(UUID(int=13))
    held = {
        "meeting": 1,
        "held_on": "2015-03-10",
        "place": "x",
        "attendance": {
            "youth": True,
            "parents": False,
            "trusted_person": None,
            "professionals": ["hv-1"],
        },
    }
    workplan = {
        "meeting": 2,
        "agreements": [{"who": "hv-1", "what": "x", "due": None, "domain": None}],
        "coordinator": "hv-1",
        "crisis_plan": {"steps": ["bel hv-1"]},
    }
    v2_steps = [  # contract v2's event types
        ("Requested", request),
        ("ConsentGiven", {"party": youth}),
        ("ChairAppointed", {"chair": "vz-1"}),
        (
            "MeetingPlanned",
            {"meeting": 1, "on": "2015-03-10", "place": None, "invited": [], "not_invited": []},
        ),
        ("PreparationRecorded", {"meeting": 1, "checklist": {"client_informed": True}}),
        ("MeetingHeld", held),
        ("MeetingRetracted", {"meeting": 1, "reason": "x"}),
        ("MeetingHeld", held | {"meeting": 2}),
        ("AttendanceCorrected", {"meeting": 2, "attendance": held["attendance"], "reason": "x"}),
        ("WorkplanAgreed", workplan),
        ("WorkplanRevised", workplan | {"reason": "x"}),
        ("CoordinatorDesignated", {"coordinator": "hv-1", "chosen_by_client": True}),
        (
            "MeetingPlanned",
            {"meeting": 3, "on": "2015-05-10", "place": "x", "invited": [], "not_invited": []},
        ),
        ("MeetingCancelled", {"meeting": 3, "reason": "x"}),
        ("CaseClosed", {"reason": "x"}),
        ("CaseReopened", {"reason": "x"}),
    ]
    lines += [line(three, seq, kind, data) for seq, (kind, data) in enumerate(v2_steps, start=1)]
    return lines


def test_every_stored_event_type_is_projected(projected: tuple[Overleg, ViewStore]) -> None:
    app, views = projected
    stream = _every_event_type()
    # Every event type but the erasure, which is not a line of the stream contract.
    assert {line["type"] for line in stream} | {"PersonalDataErased"} == {
        cls.__name__ for cls in EVENT_CLASSES
    }
    import_stream(app, [json.dumps(line) for line in stream])
    app.handle(EraseCase(UUID(int=12), "test"), Operator("operator-1"))
    projector = Projector(app.event_log, views)
    projector.catch_up()
    assert set(projector.positions().values()) == {app.event_log.head()}
    trail = [trail_entry(line) for (line,) in views.read("SELECT line FROM audit_trail")]
    assert {entry.type for entry in trail} == {cls.__name__ for cls in EVENT_CLASSES}
    assert len(trail) == len(stream) + 1


def test_an_event_a_projection_cannot_apply_is_set_aside_and_the_others_go_on(
    projected: tuple[Overleg, ViewStore],
) -> None:
    app, views = projected
    stream = _every_event_type()
    first, later = stream[:10], stream[10:]  # case one up to its bottleneck; then the rest
    import_stream(app, [json.dumps(line) for line in first])
    # An event stored before instants had limits: its UTC instant lies beyond the calendar
    # (9999-12-31T23:59:59-14:00), so the case view cannot compute with it.
    case = app.get_case(UUID(first[0]["case"]))
    case.close(
        reason="x", at=datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(-timedelta(hours=14))),
        by="team-1",
    )  # fmt: skip
    app.save(case)
    import_stream(app, [json.dumps(line) for line in later if line["case"] != first[0]["case"]])

    projector = Projector(app.event_log, views, batch_size=4)
    projector.catch_up()
    assert set(projector.positions().values()) == {app.event_log.head()}, "a projection stalled"
    (failure,) = projector.failures()
    assert (failure.projection, failure.case_id, failure.seq) == ("case_view", str(case.id), 11)
    assert (failure.event_type, failure.error) == ("CaseClosed", "OverflowError")
    other = get_case_view(views, UUID(int=12))
    assert other is not None and other.status == "declined"  # later events of others applied
    trail = views.read("SELECT COUNT(*) FROM audit_trail")[0][0]
    others = [line for line in later if line["case"] != first[0]["case"]]
    assert trail == len(first) + 1 + len(others)  # the audit trail kept every event, that one too
    projector.rebuild(["case_view"])
    assert [f.seq for f in projector.failures()] == [11]  # a rebuild meets it again, once


def test_a_rebuild_cut_short_leaves_the_projections_as_they_were(
    projected: tuple[Overleg, ViewStore],
) -> None:
    """A rebuild is one transaction: the store going away halfway through changes nothing,
    and the next rebuild gives the same projections as following the log."""
    app, views = projected
    stream = SAMPLE.read_text(encoding="utf-8").splitlines()
    import_stream(app, stream)
    projector = Projector(app.event_log, views, batch_size=7, rebuild_batch=5)
    projector.catch_up()
    tables = ("case_view", "audit_trail", "stats_meeting", "bottleneck", "projection_position")

    def contents() -> dict[str, list[tuple[Any, ...]]]:
        return {t: sorted(map(tuple, views.read(f"SELECT * FROM {t}"))) for t in tables}

    followed = contents()
    read_cases = app.event_log.read_cases
    calls = 0

    def failing(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise StoreUnavailable("gone")
        return read_cases(*args)

    app.event_log.read_cases = failing  # type: ignore[method-assign]
    with pytest.raises(StoreUnavailable):
        projector.rebuild()
    assert contents() == followed
    app.event_log.read_cases = read_cases  # type: ignore[method-assign]
    assert projector.rebuild() == len(stream)
    assert contents() == followed
