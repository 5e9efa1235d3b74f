"""Every rule of the case (the contract's rules table): one command allowed, one refused."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest

from overleg.aggregates import errors
from overleg.aggregates.case import Case
from overleg.aggregates.errors import (
    AtOutOfOrder,
    AttendanceUnknown,
    CaseEnded,
    CaseErased,
    CaseRuleBroken,
    ChairNotNeutral,
    ChairRequired,
    ClientAttendanceTwice,
    ClientTooOld,
    ConsentAlreadyStanding,
    ConsentNotStanding,
    ConsentRequired,
    CoordinatorIsChair,
    CoordinatorNotPresent,
    CoordinatorNotProfessional,
    DeclineAfterMeeting,
    ErasureNotPossible,
    FollowUpBeforeLastMeeting,
    FollowUpWithoutMeeting,
    HeldInFuture,
    InviteeConflict,
    MeetingBeforeRequest,
    MeetingNotHeld,
    MeetingNotPlanned,
    MeetingOutOfSequence,
    RegistrationAlreadyCompleted,
    ReopenWithoutClose,
    RequesterRoleNotAllowed,
    RequestMustComeFirst,
    WorkplanAlreadyAgreed,
    WorkplanMissing,
    WorkplanWithoutAgreements,
)
from overleg.aggregates.values import (
    Agreement,
    Attendance,
    Channel,
    Client,
    Party,
    Programme,
    Region,
    Role,
)
from overleg.application import execute
from overleg.policies import rules
from overleg.streams import StreamLine, command_of, parse_line

CASE_ID = UUID("6f1c0e2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b")
CET = timezone(timedelta(hours=1))
REQUESTED_AT = datetime(2015, 2, 3, 10, 0, tzinfo=CET)
REQUESTED_ON = date(2015, 2, 3)
AT = REQUESTED_AT + timedelta(days=1)
BY = "team-x"
FIRST_MEETING_ON = date(2015, 2, 17)

YOUTH = Party("jongere-1", Role.YOUTH)
PARENT = Party("ouder-1", Role.PARENT)
TRUSTED_PERSON = Party("vertrouwenspersoon-1", Role.TRUSTED_PERSON)
REQUESTER = Party("hulpverlener-aanvrager", Role.PROFESSIONAL)
CHAIR = "voorzitter-1"
PRESENT = ("hulpverlener-1", "hulpverlener-2")
KNOWN = Attendance(youth=True, parents=False, trusted_person=None, professionals=PRESENT)
AGREEMENT = Agreement(
    who="hulpverlener-1", what="Zoekt een dagcentrum", due=date(2015, 4, 1), domain="onderwijs"
)

# The stable names problem details and import reports use; a new rule must be added here.
RULE_NAMES: dict[type[CaseRuleBroken], str] = {
    RequestMustComeFirst: "request-first",
    ClientTooOld: "client-age",
    CaseEnded: "case-ended",
    DeclineAfterMeeting: "decline-before-meeting",
    ConsentAlreadyStanding: "consent-once",
    ConsentNotStanding: "consent-standing",
    ChairNotNeutral: "chair-neutral",
    ChairRequired: "chair-required",
    ConsentRequired: "consent-required",
    MeetingBeforeRequest: "meeting-after-request",
    MeetingOutOfSequence: "meeting-sequence",
    MeetingNotHeld: "meeting-held",
    WorkplanAlreadyAgreed: "workplan-once",
    WorkplanWithoutAgreements: "workplan-agreements",
    RegistrationAlreadyCompleted: "registration-once",
    CoordinatorNotPresent: "coordinator-present",
    CoordinatorIsChair: "coordinator-not-chair",
    AttendanceUnknown: "attendance-known",
    FollowUpWithoutMeeting: "follow-up-after-meeting",
    FollowUpBeforeLastMeeting: "follow-up-date",
    # contract v2
    RequesterRoleNotAllowed: "requester-role",
    InviteeConflict: "invited-or-not",
    MeetingNotPlanned: "meeting-planned",
    WorkplanMissing: "workplan-exists",
    CoordinatorNotProfessional: "coordinator",
    ReopenWithoutClose: "reopen-after-close",
    HeldInFuture: "held-not-in-future",
    AtOutOfOrder: "at-order",
    ClientAttendanceTwice: "attendance-client",
    CaseErased: "case-erased",
    ErasureNotPossible: "erasure-sealed",
}

Command = Callable[[Case], None]


# -- commands, as the use cases would call them ----------------------------------------------


def decline() -> Command:
    return lambda case: case.decline(reason="Geen vraag naar overleg", at=AT, by=BY)


def consent(party: Party) -> Command:
    return lambda case: case.give_consent(party=party, at=AT, by=BY)


def withdraw(party: Party) -> Command:
    return lambda case: case.withdraw_consent(party=party, reason=None, at=AT, by=BY)


def appoint(chair: str) -> Command:
    return lambda case: case.appoint_chair(chair=chair, at=AT, by=BY)


def meeting(
    number: int | None = None, held_on: date = FIRST_MEETING_ON, attendance: Attendance = KNOWN
) -> Command:
    def hold(case: Case) -> None:
        case.hold_meeting(
            meeting=len(case.meetings) + 1 if number is None else number,
            held_on=held_on,
            place="Gemeentehuis",
            attendance=attendance,
            at=AT,
            by=BY,
        )

    return hold


def workplan(
    number: int = 1,
    agreements: tuple[Agreement, ...] = (AGREEMENT,),
    coordinator: str | None = "hulpverlener-1",
) -> Command:
    return lambda case: case.agree_workplan(
        meeting=number,
        agreements=agreements,
        coordinator=coordinator,
        crisis_plan=False,
        at=AT,
        by=BY,
    )


def registration(number: int = 1) -> Command:
    return lambda case: case.complete_registration(meeting=number, at=AT, by=BY)


def follow_up(on: date) -> Command:
    return lambda case: case.schedule_follow_up(on=on, at=AT, by=BY)


def bottleneck() -> Command:
    return lambda case: case.report_bottleneck(
        theme="wachtlijsten", description="Geen plaats in de regio", at=AT, by=BY
    )


def close() -> Command:
    return lambda case: case.close(reason="Werkplan loopt", at=AT, by=BY)


# -- cases at a given stage -------------------------------------------------------------------


def request(
    programme: Programme = Programme.INTEGRALE_JEUGDHULP,
    birth_date: date | None = date(2001, 5, 17),
    at: datetime = REQUESTED_AT,
) -> Case:
    return Case.request(
        id=CASE_ID,
        programme=programme,
        region=Region.ANTWERPEN,
        requested_by=REQUESTER,
        channel=Channel.FORM,
        client=Client(YOUTH.ref, birth_date),
        question="Hoe verder na de opname?",
        at=at,
        by=BY,
    )


def build(*commands: Command) -> Case:
    """A requested case after the given commands, with its events already collected."""
    case = request()
    for command in commands:
        command(case)
    case.collect_events()
    return case


def ready(*more: Command) -> Case:
    """The young person consented and a chair was appointed: a meeting can be held."""
    return build(consent(YOUTH), appoint(CHAIR), *more)


def met(*more: Command) -> Case:
    """Meeting 1 was held, with the attendance of the young person and parents known."""
    return ready(meeting(), *more)


def state(case: Case) -> dict[str, Any]:
    return copy.deepcopy({k: v for k, v in vars(case).items() if k != "_pending_events"})


def allowed(case: Case, command: Command) -> Case.Event:
    version = case.version
    command(case)
    (event,) = case.collect_events()
    assert isinstance(event, Case.Event)
    assert case.version == event.originator_version == version + 1
    return event


def assert_plain_words(error: CaseRuleBroken, says: str) -> None:
    """The message is a sentence for a chair: no class names, rule names or Python values."""
    message = error.message
    assert message == str(error)
    assert type(error).__name__ not in message, message
    assert error.rule not in message, message
    for trace in ("None", "Party(", "Role.", "datetime.", "{", "<", "_"):
        assert trace not in message, message
    assert says in message, message


def refused(case: Case, command: Command, error: type[CaseRuleBroken], says: str) -> None:
    before, version = state(case), case.version
    with pytest.raises(CaseRuleBroken) as raised:
        command(case)
    assert type(raised.value) is error
    assert raised.value.rule == RULE_NAMES[error]
    assert_plain_words(raised.value, says)
    assert list(case.collect_events()) == []
    assert case.version == version
    assert state(case) == before


# -- the rules, each by name ------------------------------------------------------------------


def test_every_rule_has_its_own_stable_name() -> None:
    subclasses = {cls for cls in vars(errors).values() if isinstance(cls, type)}
    assert subclasses - {CaseRuleBroken} == set(RULE_NAMES)
    assert all(issubclass(cls, CaseRuleBroken) for cls in RULE_NAMES)
    assert len(set(RULE_NAMES.values())) == len(RULE_NAMES)
    assert {cls.rule for cls in RULE_NAMES} == set(RULE_NAMES.values())


# -- Requested ---------------------------------------------------------------------------------


def apply_line(case: Case | None, line: StreamLine) -> Case:
    """A stream line carried out as the importer does: the command it records, at its `at`."""
    return execute(case, command_of(line), line.at, line.by)


def stream_line(kind: str, data: dict[str, Any]) -> Any:
    return parse_line(
        json.dumps(
            {
                "case": str(CASE_ID),
                "seq": 1,
                "type": kind,
                "at": REQUESTED_AT.isoformat(),
                "by": BY,
                "data": data,
            }
        )
    )


REQUESTED_LINE = {
    "programme": "integrale_jeugdhulp",
    "region": "Antwerpen",
    "requested_by": {"ref": REQUESTER.ref, "role": "professional"},
    "channel": "aanvraagformulier",
    "client": {"ref": YOUTH.ref, "birth_date": "2001-05-17"},
    "question": "Hoe verder na de opname?",
}


def test_a_case_starts_with_its_request() -> None:
    case = apply_line(None, stream_line("Requested", REQUESTED_LINE))
    assert (case.id, case.version, case.requested_on) == (CASE_ID, 1, REQUESTED_ON)


def test_a_case_without_a_request_is_refused() -> None:
    line = stream_line("ConsentGiven", {"party": {"ref": YOUTH.ref, "role": "youth"}})
    with pytest.raises(RequestMustComeFirst) as raised:
        apply_line(None, line)
    assert raised.value.rule == "request-first"
    assert_plain_words(raised.value, "request")


def request_again(case: Case) -> None:
    apply_line(case, stream_line("Requested", REQUESTED_LINE))


def test_a_second_request_for_the_same_case_is_refused() -> None:
    refused(build(), request_again, RequestMustComeFirst, "only once")


@pytest.mark.parametrize(
    ("birth_date", "age"),
    [(date(1989, 2, 4), 25), (date(2001, 5, 17), 13), (date(2015, 2, 3), 0)],
    ids=["the day before the 26th birthday", "a teenager", "born that day"],
)
def test_integrale_jeugdhulp_accepts_clients_up_to_25(birth_date: date, age: int) -> None:
    case = request(birth_date=birth_date)
    assert rules.age_on(birth_date, REQUESTED_ON) == age
    assert (case.version, case.programme) == (1, Programme.INTEGRALE_JEUGDHULP)
    assert len(case.collect_events()) == 1


def assert_too_old(birth_date: date, at: datetime, says: str) -> None:
    with pytest.raises(CaseRuleBroken) as raised:
        request(birth_date=birth_date, at=at)
    assert type(raised.value) is ClientTooOld
    assert raised.value.rule == "client-age"
    assert_plain_words(raised.value, says)


def test_integrale_jeugdhulp_refuses_a_client_on_the_26th_birthday() -> None:
    assert_too_old(
        date(1989, 2, 3), REQUESTED_AT, "the client was 26 on the request date 2015-02-03"
    )


def test_client_age_counts_on_the_calendar_date_of_the_request_as_recorded() -> None:
    # 00:30 in Brussels is still the day before in UTC: the date written in `at` counts.
    just_after_midnight = datetime(2015, 2, 3, 0, 30, tzinfo=CET)
    assert_too_old(date(1989, 2, 3), just_after_midnight, "2015-02-03")


def test_a_client_born_on_29_february_turns_26_on_1_march() -> None:
    assert request(birth_date=date(1988, 2, 29), at=datetime(2014, 2, 28, tzinfo=CET)).version == 1
    assert_too_old(date(1988, 2, 29), datetime(2014, 3, 1, tzinfo=CET), "26")


def test_lokaal_clientoverleg_has_no_age_limit() -> None:
    case = request(programme=Programme.LOKAAL_CLIENTOVERLEG, birth_date=date(1940, 1, 1))
    assert (case.version, case.programme) == (1, Programme.LOKAAL_CLIENTOVERLEG)


def test_a_client_of_unknown_birth_date_is_accepted() -> None:
    assert request(birth_date=None).version == 1


@pytest.mark.parametrize(
    ("birth_date", "day", "age"),
    [
        (date(2000, 2, 29), date(2001, 2, 28), 0),
        (date(2000, 2, 29), date(2001, 3, 1), 1),
        (date(2000, 2, 29), date(2004, 2, 28), 3),
        (date(2000, 2, 29), date(2004, 2, 29), 4),
        (date(1999, 3, 1), date(2000, 2, 29), 0),
        (date(1990, 6, 15), date(2015, 6, 14), 24),
        (date(1990, 6, 15), date(2015, 6, 15), 25),
        (date(1990, 12, 31), date(2016, 1, 1), 25),
        (date(2015, 2, 3), date(2015, 2, 3), 0),
    ],
)
def test_age_on_counts_whole_years(birth_date: date, day: date, age: int) -> None:
    assert rules.age_on(birth_date, day) == age


# -- RequestDeclined, CaseClosed: nothing may follow ------------------------------------------


def test_a_request_can_be_declined_before_any_meeting() -> None:
    case = ready()
    assert isinstance(allowed(case, decline()), Case.RequestDeclined)
    assert case.ended == "declined"


def test_a_request_cannot_be_declined_after_a_meeting_was_held() -> None:
    refused(met(), decline(), DeclineAfterMeeting, "before any meeting")


def test_closing_ends_the_case() -> None:
    case = met()
    assert isinstance(allowed(case, close()), Case.CaseClosed)
    assert case.ended == "closed"


AFTER_THE_END: dict[str, Command] = {
    "decline": decline(),
    "give consent": consent(PARENT),
    "withdraw consent": withdraw(YOUTH),
    "appoint a chair": appoint("voorzitter-2"),
    "hold a meeting": meeting(),
    "agree a workplan": workplan(),
    "complete a registration": registration(),
    "schedule a follow-up": follow_up(date(2015, 3, 17)),
    "report a bottleneck": bottleneck(),
    "close": close(),
}
ENDINGS: dict[str, Callable[[], Case]] = {
    "declined": lambda: ready(decline()),
    "closed": lambda: met(close()),
}


@pytest.mark.parametrize("command", AFTER_THE_END.values(), ids=AFTER_THE_END.keys())
@pytest.mark.parametrize("ending", ENDINGS)
def test_nothing_can_be_recorded_after_the_case_ended(ending: str, command: Command) -> None:
    refused(ENDINGS[ending](), command, CaseEnded, f"The case is {ending}")


@pytest.mark.parametrize(
    "command",
    [c for name, c in AFTER_THE_END.items() if name != "decline"],
    ids=[name for name in AFTER_THE_END if name != "decline"],
)
def test_the_same_commands_are_allowed_while_the_case_is_open(command: Command) -> None:
    allowed(met(), command)


# -- ConsentGiven, ConsentWithdrawn -----------------------------------------------------------


def test_a_party_consents_once() -> None:
    case = build(consent(PARENT))
    refused(case, consent(PARENT), ConsentAlreadyStanding, "ouder-1 (parent) has already")


def test_a_party_consents_again_after_withdrawing() -> None:
    case = build(consent(PARENT), withdraw(PARENT))
    allowed(case, consent(PARENT))
    assert PARENT in case.consents


def test_a_standing_consent_can_be_withdrawn() -> None:
    case = build(consent(PARENT))
    allowed(case, withdraw(PARENT))
    assert PARENT not in case.consents


@pytest.mark.parametrize(
    "stage",
    [build, lambda: build(consent(PARENT), withdraw(PARENT)), lambda: build(consent(YOUTH))],
    ids=["never given", "already withdrawn", "given by someone else"],
)
def test_only_a_standing_consent_can_be_withdrawn(stage: Callable[[], Case]) -> None:
    refused(stage(), withdraw(PARENT), ConsentNotStanding, "ouder-1 (parent) has no standing")


# -- ChairAppointed ---------------------------------------------------------------------------


def test_a_neutral_chair_can_be_appointed() -> None:
    case = met(workplan())
    allowed(case, appoint("voorzitter-2"))
    assert case.chair == "voorzitter-2"


def test_a_later_appointment_replaces_the_chair() -> None:
    case = ready()
    allowed(case, appoint("voorzitter-2"))
    assert case.chair == "voorzitter-2"


PARTIES_AND_PROFESSIONALS: dict[str, tuple[Callable[[], Case], str, str]] = {
    "the requester": (build, REQUESTER.ref, "is a party"),
    "the client": (build, YOUTH.ref, "is a party"),
    "a consenting party": (lambda: build(consent(PARENT)), PARENT.ref, "is a party"),
    "a professional present at a meeting": (met, "hulpverlener-2", "is named as a professional"),
    "a professional in an agreement": (
        lambda: met(
            workplan(agreements=(AGREEMENT, Agreement("hulpverlener-3", "Belt", None, None)))
        ),
        "hulpverlener-3",
        "is named as a professional",
    ),
    "the coordinator": (lambda: met(workplan()), "hulpverlener-1", "is named as a professional"),
}


@pytest.mark.parametrize(
    ("stage", "chair", "says"),
    PARTIES_AND_PROFESSIONALS.values(),
    ids=PARTIES_AND_PROFESSIONALS.keys(),
)
def test_the_chair_is_neutral(stage: Callable[[], Case], chair: str, says: str) -> None:
    refused(stage(), appoint(chair), ChairNotNeutral, f"The chair must be neutral: {chair} {says}")


# -- MeetingHeld ------------------------------------------------------------------------------


@pytest.mark.parametrize("party", [YOUTH, PARENT], ids=["young person", "parent"])
def test_a_meeting_is_held_with_a_chair_and_consent_of_the_young_person_or_a_parent(
    party: Party,
) -> None:
    case = build(consent(party), appoint(CHAIR))
    assert isinstance(allowed(case, meeting()), Case.MeetingHeld)
    assert case.meetings[1].held_on == FIRST_MEETING_ON


def test_meeting_needs_an_appointed_chair() -> None:
    refused(build(consent(YOUTH)), meeting(), ChairRequired, "A meeting needs an appointed chair")


@pytest.mark.parametrize(
    "stage",
    [
        lambda: build(appoint(CHAIR)),
        lambda: build(consent(TRUSTED_PERSON), appoint(CHAIR)),
        lambda: build(consent(Party("hulpverlener-1", Role.PROFESSIONAL)), appoint(CHAIR)),
        lambda: ready(withdraw(YOUTH)),
    ],
    ids=["no consent", "trusted person only", "professional only", "withdrawn"],
)
def test_meeting_needs_standing_consent_of_the_young_person_or_a_parent(
    stage: Callable[[], Case],
) -> None:
    refused(stage(), meeting(), ConsentRequired, "consent of the young person or a parent")


def test_meetings_are_numbered_one_after_another() -> None:
    case = ready()
    for number in (1, 2, 3):
        allowed(case, meeting(number))
    assert sorted(case.meetings) == [1, 2, 3]


@pytest.mark.parametrize(
    ("stage", "number"),
    [(ready, 0), (ready, 2), (met, 1), (met, 3)],
    ids=["zero", "skipping the first", "repeating", "skipping one"],
)
def test_meeting_number_must_be_the_next(stage: Callable[[], Case], number: int) -> None:
    case = stage()
    says = f"The next meeting is number {len(case.meetings) + 1}, not {number}"
    refused(case, meeting(number), MeetingOutOfSequence, says)


def test_a_meeting_may_be_held_on_the_request_date() -> None:
    case = ready()
    allowed(case, meeting(held_on=REQUESTED_ON))
    assert case.meetings[1].held_on == REQUESTED_ON


def test_a_meeting_cannot_be_held_before_the_request_date() -> None:
    refused(
        ready(),
        meeting(held_on=REQUESTED_ON - timedelta(days=1)),
        MeetingBeforeRequest,
        "before the request of 2015-02-03",
    )


# -- WorkplanAgreed ---------------------------------------------------------------------------


def test_a_workplan_names_a_coordinator_present_at_the_meeting() -> None:
    case = met()
    event = allowed(case, workplan(coordinator="hulpverlener-2"))
    assert isinstance(event, Case.WorkplanAgreed)
    assert (event.coordinator_appointed, case.meetings[1].workplan) == (True, True)


def test_a_workplan_may_leave_the_coordinator_open() -> None:
    event = allowed(met(), workplan(coordinator=None))
    assert isinstance(event, Case.WorkplanAgreed)
    assert event.coordinator_appointed is False


def test_at_most_one_workplan_per_meeting() -> None:
    refused(met(workplan()), workplan(), WorkplanAlreadyAgreed, "already has a workplan")


def test_each_meeting_may_have_its_own_workplan() -> None:
    allowed(met(workplan(), meeting()), workplan(2))


def test_no_workplan_after_the_meeting_registration_was_completed() -> None:
    refused(met(registration()), workplan(), RegistrationAlreadyCompleted, "is completed")


def test_a_workplan_needs_agreements() -> None:
    refused(met(), workplan(agreements=()), WorkplanWithoutAgreements, "at least one agreement")


@pytest.mark.parametrize("number", [0, 2])
def test_a_workplan_refers_to_a_held_meeting(number: int) -> None:
    refused(met(), workplan(number), MeetingNotHeld, f"Meeting {number} has not been held")


def test_the_coordinator_was_present_at_that_meeting() -> None:
    elsewhere = Attendance(True, True, None, ("hulpverlener-3",))
    case = met(meeting(attendance=elsewhere))
    says = "present at meeting 2; hulpverlener-1 was not"
    refused(case, workplan(2, coordinator="hulpverlener-1"), CoordinatorNotPresent, says)


def test_the_coordinator_is_not_the_chair() -> None:
    says = "cannot be the chair"
    refused(met(), workplan(coordinator=CHAIR), CoordinatorIsChair, says)


# -- RegistrationCompleted --------------------------------------------------------------------


def test_registration_completes_with_attendance_known_absent_or_present() -> None:
    case = met()
    allowed(case, registration())
    assert case.meetings[1].registered is True
    assert (case.meetings[1].youth, case.meetings[1].parents) == (True, False)


def test_registration_is_completed_once_per_meeting() -> None:
    refused(met(registration()), registration(), RegistrationAlreadyCompleted, "already completed")


def test_registration_refers_to_a_held_meeting() -> None:
    refused(met(), registration(2), MeetingNotHeld, "Meeting 2 has not been held")


@pytest.mark.parametrize(
    ("youth", "parents", "says"),
    [
        (None, True, "the young person to be known"),
        (False, None, "the parents to be known"),
        (None, None, "the young person and the parents to be known"),
    ],
)
def test_registration_needs_youth_and_parents_attendance_known(
    youth: bool | None, parents: bool | None, says: str
) -> None:
    case = ready(meeting(attendance=Attendance(youth, parents, True, PRESENT)))
    refused(case, registration(), AttendanceUnknown, says)


# -- FollowUpScheduled ------------------------------------------------------------------------


def test_a_follow_up_may_be_scheduled_on_the_day_of_the_last_meeting() -> None:
    case = met()
    allowed(case, follow_up(FIRST_MEETING_ON))
    assert case.follow_up_on == FIRST_MEETING_ON


def test_a_follow_up_needs_a_held_meeting() -> None:
    refused(ready(), follow_up(FIRST_MEETING_ON), FollowUpWithoutMeeting, "at least one held")


def test_a_follow_up_is_not_before_the_last_meeting() -> None:
    case = met(meeting(held_on=date(2015, 4, 1)))
    says = "before the last meeting (number 2, held on 2015-04-01)"
    refused(case, follow_up(date(2015, 3, 17)), FollowUpBeforeLastMeeting, says)


# -- BottleneckReported -----------------------------------------------------------------------


@pytest.mark.parametrize("stage", [build, lambda: met(workplan(), registration())])
def test_a_bottleneck_can_be_reported_any_time_after_the_request(
    stage: Callable[[], Case],
) -> None:
    event = allowed(stage(), bottleneck())
    assert isinstance(event, Case.BottleneckReported)
    assert event.theme == "wachtlijsten"
