"""The case view and the history of contract v2's events, on both backends: planned,
postponed and cancelled meetings, preparations, retracted meetings, corrected attendance,
revised workplans, the designated coordinator, a reopened case, and the flag for a
professional present whom the client did not want invited."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import closing
from typing import Any
from uuid import UUID

import pytest

from overleg.adapters.views import ViewStore
from overleg.application import Overleg
from overleg.projections.audit_trail import history, summaries
from overleg.projections.case_view import CaseView, FlaggedMeeting, get_case_view, view_of
from overleg.projections.runner import Projector
from overleg.streams import import_stream

NAMESPACE = uuid.UUID("5e0a9d3c-71b2-4f86-a4c1-0d9e8f7a6b5c")
Line = dict[str, Any]


class Story:
    """One case's lines, recorded one after the other (a day apart unless told)."""

    def __init__(self, name: str, request: dict[str, Any]) -> None:
        self.case = str(uuid.uuid5(NAMESPACE, name))
        self.lines: list[Line] = []
        self.add("2026-02-01T09:00:00+01:00", "Requested", **request)

    def add(self, at: str, kind: str, **data: Any) -> Story:
        seq = len(self.lines) + 1
        self.lines.append(
            {"case": self.case, "seq": seq, "type": kind, "at": at, "by": "team-1", "data": data}
        )
        return self


def attendance(*professionals: str, **presence: Any) -> dict[str, Any]:
    return {
        "youth": presence.pop("youth", None),
        "parents": presence.pop("parents", None),
        "trusted_person": None,
        "professionals": list(professionals),
        **presence,
    }


def held(number: int, day: str, who: dict[str, Any]) -> dict[str, Any]:
    return {"meeting": number, "held_on": day, "place": "Overlegruimte", "attendance": who}


def workplan(number: int, coordinator: str | None, *agreements: tuple[str, str]) -> dict[str, Any]:
    return {
        "meeting": number,
        "agreements": [
            {"who": who, "what": what, "due": None, "domain": None} for who, what in agreements
        ],
        "coordinator": coordinator,
        "crisis_plan": False,
    }


def planning() -> Story:
    """Integrale jeugdhulp: a meeting planned, prepared, postponed and held with a
    professional the client did not want invited; a follow-up and its plan cancelled; the
    attendance corrected twice."""
    s = Story(
        "planning",
        {
            "programme": "integrale_jeugdhulp",
            "region": "Antwerpen",
            "requested_by": {"ref": "ouder-p", "role": "parent"},
            "channel": "cobe",
            "client": {"ref": "jongere-p", "birth_date": None},
            "question": "Afstemming",
        },
    )
    s.add("2026-02-01T10:00:00+01:00", "ConsentGiven", party={"ref": "jongere-p", "role": "youth"})
    s.add("2026-02-02T10:00:00+01:00", "ChairAppointed", chair="vz-p")
    s.add(
        "2026-02-10T10:00:00+01:00",
        "MeetingPlanned",
        meeting=1,
        on="2026-03-02",
        place=None,
        invited=[
            {"ref": "hv-1", "role": "professional"},
            {"ref": "ouder-p", "role": "parent"},
        ],
        not_invited=["hv-9"],
    )
    s.add(
        "2026-02-20T10:00:00+01:00",
        "PreparationRecorded",
        meeting=1,
        checklist={"client_informed": True, "agenda_known": True, "transport_arranged": False},
    )
    s.add(
        "2026-02-25T10:00:00+01:00",
        "MeetingPlanned",
        meeting=1,
        on="2026-03-09",
        place="School",
        invited=[{"ref": "hv-1", "role": "professional"}],
        not_invited=["hv-9"],
    )
    s.add(
        "2026-03-09T18:00:00+01:00",
        "MeetingHeld",
        **held(1, "2026-03-09", attendance("hv-1", "hv-9", youth=True, parents=True)),
    )
    s.add("2026-03-10T10:00:00+01:00", "FollowUpScheduled", on="2026-05-04")
    s.add(
        "2026-03-11T10:00:00+01:00",
        "MeetingPlanned",
        meeting=2,
        on="2026-05-04",
        place=None,
        invited=[{"ref": "hv-2", "role": "professional"}],
        not_invited=[],
    )
    s.add("2026-04-01T10:00:00+02:00", "MeetingCancelled", meeting=2, reason="Ziek")
    s.add(
        "2026-04-02T10:00:00+02:00",
        "AttendanceCorrected",
        meeting=1,
        attendance=attendance("hv-1", youth=True, parents=True),
        reason="hv-9 was er niet",
    )
    s.add(
        "2026-04-03T10:00:00+02:00",
        "AttendanceCorrected",
        meeting=1,
        attendance=attendance("hv-1", "hv-9", youth=True, parents=True),
        reason="hv-9 was er toch",
    )
    return s


def correcting() -> Story:
    """Lokaal cliëntoverleg: two meetings with workplans, the second retracted; the first's
    workplan revised; a coordinator designated; a third meeting; closed and reopened."""
    s = Story(
        "correcting",
        {
            "programme": "lokaal_clientoverleg",
            "region": "Limburg",
            "requested_by": {"ref": "client-q", "role": "client"},
            "channel": "email",
            "client": {"ref": "client-q", "birth_date": "1980-04-04"},
            "question": "Schulden en wonen",
        },
    )
    s.add("2026-02-01T10:00:00+01:00", "ConsentGiven", party={"ref": "client-q", "role": "client"})
    s.add("2026-02-02T10:00:00+01:00", "ChairAppointed", chair="vz-q")
    s.add(
        "2026-03-02T18:00:00+01:00",
        "MeetingHeld",
        **held(1, "2026-03-02", attendance("hv-q1", client=True)),
    )
    s.add(
        "2026-03-02T19:00:00+01:00",
        "WorkplanAgreed",
        **workplan(1, "hv-q1", ("hv-q1", "Budgetplan")),
    )
    s.add("2026-03-03T10:00:00+01:00", "RegistrationCompleted", meeting=1)
    s.add(
        "2026-04-06T18:00:00+02:00",
        "MeetingHeld",
        **held(2, "2026-04-06", attendance("hv-q2", client=True)),
    )
    s.add(
        "2026-04-06T19:00:00+02:00",
        "WorkplanAgreed",
        **workplan(2, None, ("hv-q2", "Woning zoeken")),
    )
    return s


def correcting_later(s: Story) -> Story:
    s.add("2026-04-08T10:00:00+02:00", "MeetingRetracted", meeting=2, reason="Verkeerd dossier")
    s.add(
        "2026-04-09T10:00:00+02:00",
        "WorkplanRevised",
        **workplan(1, "hv-q1", ("hv-q1", "Budgetplan herzien"), ("client-q", "Naar het OCMW")),
        reason="Afspraak vergeten",
    )
    s.add(
        "2026-04-10T10:00:00+02:00",
        "CoordinatorDesignated",
        coordinator="hv-q3",
        chosen_by_client=True,
    )
    s.add(
        "2026-05-04T18:00:00+02:00",
        "MeetingHeld",
        **held(3, "2026-05-04", attendance("hv-q1", client=False)),
    )
    s.add(
        "2026-05-04T19:00:00+02:00",
        "WorkplanAgreed",
        **workplan(3, "hv-q1", ("hv-q1", "Huisbezoek")),
    )
    return s


@pytest.fixture
def views(store: Overleg) -> Iterator[ViewStore]:
    with closing(ViewStore(store.database)) as opened:
        yield opened


def projected(store: Overleg, views: ViewStore, lines: list[Line]) -> None:
    import_stream(store, [json.dumps(line) for line in lines])
    Projector(store.event_log, views).catch_up()


def view(store: Overleg, views: ViewStore, case: str) -> CaseView:
    """The stored view, after checking that it is the fold of the case's events (what the
    API shows of a single case)."""
    stored = get_case_view(views, UUID(case))
    assert stored is not None
    assert stored == view_of(store.case_events(UUID(case)))
    return stored


def upto(story: Story, kind: str, nth: int = 1) -> list[Line]:
    """The story's lines up to and including its ``nth`` line of ``kind``."""
    seen = 0
    for index, line in enumerate(story.lines):
        if line["type"] == kind:
            seen += 1
            if seen == nth:
                return story.lines[: index + 1]
    raise AssertionError(f"no {kind} number {nth}")


# -- planning ---------------------------------------------------------------------------------


def test_a_planned_meeting_is_the_next_meeting_and_postponing_it_moves_its_date(
    store: Overleg, views: ViewStore
) -> None:
    story = planning()
    projected(store, views, upto(story, "MeetingPlanned"))
    planned = view(store, views, story.case)
    assert (planned.next_meeting, planned.next_meeting_on) == (1, "2026-03-02")
    assert planned.status == "chair_appointed" and planned.meetings_held == 0
    assert "hv-1" in planned.participants and "hv-9" not in planned.participants

    projected(store, views, upto(story, "MeetingPlanned", 2)[len(upto(story, "MeetingPlanned")) :])
    postponed = view(store, views, story.case)
    assert (postponed.next_meeting, postponed.next_meeting_on) == (1, "2026-03-09")
    (slot,) = postponed.meetings
    assert (slot.state, slot.prepared, slot.checklist_done, slot.checklist_given) == (
        "planned",
        True,
        2,
        3,
    )


def test_a_held_meeting_with_a_professional_the_client_did_not_want_is_flagged(
    store: Overleg, views: ViewStore
) -> None:
    story = planning()
    projected(store, views, upto(story, "MeetingHeld"))
    meeting = view(store, views, story.case)
    assert meeting.next_meeting is None and meeting.meetings_held == 1
    assert meeting.flagged_meetings == [FlaggedMeeting(1, ["hv-9"])]
    assert meeting.status == "meeting_held"


def test_a_cancelled_plan_clears_the_next_meeting_and_the_follow_up_date(
    store: Overleg, views: ViewStore
) -> None:
    story = planning()
    projected(store, views, upto(story, "MeetingPlanned", 3))
    scheduled = view(store, views, story.case)
    assert (scheduled.next_meeting, scheduled.next_meeting_on) == (2, "2026-05-04")
    assert scheduled.next_follow_up_on == "2026-05-04"
    assert scheduled.status == "follow_up_scheduled"

    projected(store, views, story.lines[: len(upto(story, "MeetingCancelled"))])
    cancelled = view(store, views, story.case)
    assert (cancelled.next_meeting, cancelled.next_meeting_on) == (None, None)
    assert cancelled.next_follow_up_on is None
    assert cancelled.status == "meeting_held"
    assert [s.state for s in cancelled.meetings] == ["held", "cancelled"]


def test_corrected_attendance_clears_and_sets_the_flag_and_the_history_says_so(
    store: Overleg, views: ViewStore
) -> None:
    story = planning()
    projected(store, views, upto(story, "AttendanceCorrected"))
    corrected = view(store, views, story.case)
    assert corrected.flagged_meetings == []
    assert corrected.meetings[0].present == ["hv-1"]

    projected(store, views, story.lines)
    again = view(store, views, story.case)
    assert again.flagged_meetings == [FlaggedMeeting(1, ["hv-9"])]

    trail = history(views, UUID(story.case))
    flagged = [(t.type, "hv-9" in t.summary) for t in trail if "FLAGGED" in t.summary]
    assert flagged == [("MeetingHeld", True), ("AttendanceCorrected", True)]
    assert [t.seq for t in trail if "FLAGGED" in t.summary] == [7, 12]
    # The API's history (straight from the events) says the same.
    assert summaries(store.case_events(UUID(story.case))) == [t.summary for t in trail]


# -- corrections --------------------------------------------------------------------------------


def test_a_retracted_meeting_no_longer_counts_and_the_last_meeting_is_recomputed(
    store: Overleg, views: ViewStore
) -> None:
    story = correcting()
    projected(store, views, story.lines)
    before = view(store, views, story.case)
    assert (before.meetings_held, before.last_meeting_on, before.status) == (
        2,
        "2026-04-06",
        "workplan_agreed",
    )
    assert [a.what for a in before.agreements] == ["Woning zoeken"]
    assert before.coordinator == "hv-q1"  # the second workplan names none: the first's stays
    assert "hv-q2" in before.participants

    correcting_later(story)
    projected(store, views, upto(story, "MeetingRetracted"))
    after = view(store, views, story.case)
    assert (after.meetings_held, after.last_meeting_on, after.status) == (
        1,
        "2026-03-02",
        "registration_completed",
    )
    assert [a.what for a in after.agreements] == ["Budgetplan"]
    assert after.workplan_meeting == 1
    assert "hv-q2" not in after.participants
    assert [s.state for s in after.meetings] == ["held", "retracted"]


def test_a_revised_workplan_replaces_the_open_agreements(store: Overleg, views: ViewStore) -> None:
    story = correcting_later(correcting())
    projected(store, views, upto(story, "WorkplanRevised"))
    revised = view(store, views, story.case)
    assert [(a.who, a.what) for a in revised.agreements] == [
        ("hv-q1", "Budgetplan herzien"),
        ("client-q", "Naar het OCMW"),
    ]
    assert revised.coordinator == "hv-q1"


def test_the_designated_coordinator_is_the_case_coordinator_whatever_later_workplans_name(
    store: Overleg, views: ViewStore
) -> None:
    story = correcting_later(correcting())
    projected(store, views, upto(story, "CoordinatorDesignated"))
    designated = view(store, views, story.case)
    assert (designated.coordinator, designated.designated_coordinator) == ("hv-q3", "hv-q3")
    assert designated.coordinator_chosen_by_client is True
    assert "hv-q3" in designated.participants

    projected(store, views, story.lines[len(upto(story, "CoordinatorDesignated")) :])
    later = view(store, views, story.case)
    assert later.coordinator == "hv-q3"
    assert [a.what for a in later.agreements] == ["Huisbezoek"]
    assert (later.meetings_held, later.last_meeting_on) == (2, "2026-05-04")


def test_a_reopened_case_is_active_again(store: Overleg, views: ViewStore) -> None:
    story = correcting_later(correcting())
    story.add("2026-05-10T10:00:00+02:00", "CaseClosed", reason="Afgerond")
    projected(store, views, story.lines)
    closed = view(store, views, story.case)
    assert (closed.status, closed.ended, closed.agreements) == ("closed", "closed", [])

    story.add("2026-06-01T10:00:00+02:00", "CaseReopened", reason="Nieuwe vraag")
    projected(store, views, story.lines[-1:])
    reopened = view(store, views, story.case)
    assert (reopened.status, reopened.ended) == ("workplan_agreed", None)
    assert [a.what for a in reopened.agreements] == ["Huisbezoek"]


def test_a_meeting_recorded_again_after_a_retraction_is_the_first_meeting_in_the_history(
    store: Overleg, views: ViewStore
) -> None:
    story = Story(
        "again",
        {
            "programme": "integrale_jeugdhulp",
            "region": "Brussel",
            "requested_by": {"ref": "jongere-r", "role": "youth"},
            "channel": "telefoon",
            "client": {"ref": "jongere-r", "birth_date": "2010-05-01"},
            "question": "Afstemming",
        },
    )
    story.add(
        "2026-02-01T10:00:00+01:00", "ConsentGiven", party={"ref": "jongere-r", "role": "youth"}
    )
    story.add("2026-02-02T10:00:00+01:00", "ChairAppointed", chair="vz-r")
    for number, day in ((1, "2026-03-02"), (2, "2026-03-02")):
        story.add(
            f"{day}T1{number}:00:00+01:00",
            "MeetingHeld",
            **held(number, day, attendance("hv-r1", youth=True, parents=True)),
        )
        if number == 1:
            story.add("2026-03-02T11:30:00+01:00", "MeetingRetracted", meeting=1, reason="Fout")
    story.add(
        "2026-04-02T18:00:00+02:00", "MeetingHeld", **held(3, "2026-04-02", attendance("hv-r1"))
    )
    projected(store, views, story.lines)

    trail = history(views, UUID(story.case))
    kinds = [t.summary.split(" held on")[0] for t in trail if t.type == "MeetingHeld"]
    assert kinds == [
        "Meeting 1 (first meeting)",
        "Meeting 2 (first meeting)",
        "Meeting 3 (follow-up meeting)",
    ]
    assert summaries(store.case_events(UUID(story.case))) == [t.summary for t in trail]
    assert view(store, views, story.case).meetings_held == 2


# -- the projection ---------------------------------------------------------------------------


def test_a_case_view_of_the_previous_version_is_rebuilt_with_the_new_tables(
    store: Overleg, views: ViewStore
) -> None:
    story = planning()
    projected(store, views, story.lines)
    wanted = view(store, views, story.case)
    # As a store projected by the release before: version 1's tables, without the meetings.
    with views.transaction() as tx:
        tx.execute("DROP TABLE case_view_meeting")
        tx.execute("DROP TABLE case_view_participant")
        tx.execute(
            "CREATE TABLE case_view_participant (case_id TEXT NOT NULL, ref TEXT NOT NULL,"
            " PRIMARY KEY (case_id, ref))"
        )
        tx.execute("UPDATE projection_position SET version = 1 WHERE name = 'case_view'")
    projector = Projector(store.event_log, views)
    assert projector.positions()["case_view"] == 0  # set back: rebuilt from the first event
    projector.catch_up()
    assert view(store, views, story.case) == wanted
