"""Every rule of the case lifecycle (the table of the event-stream contract), one function each.

A rule reads the facts a case has gathered so far and raises a named ``CaseRuleBroken``
when a command would break it. The ``Case`` aggregate calls these before it records an
event, and the stream importer drives the same aggregate, so there is one truth of what
is allowed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from overleg.aggregates.errors import (
    AttendanceUnknown,
    CaseEnded,
    ChairNotNeutral,
    ChairRequired,
    ClientTooOld,
    ConsentAlreadyStanding,
    ConsentNotStanding,
    ConsentRequired,
    CoordinatorIsChair,
    CoordinatorNotPresent,
    DeclineAfterMeeting,
    FollowUpBeforeLastMeeting,
    FollowUpWithoutMeeting,
    MeetingBeforeRequest,
    MeetingNotHeld,
    MeetingOutOfSequence,
    RegistrationAlreadyCompleted,
    WorkplanAlreadyAgreed,
    WorkplanWithoutAgreements,
)
from overleg.aggregates.values import (
    CONSENTING_ROLES,
    MAX_CLIENT_AGE,
    Agreement,
    Party,
    Programme,
)


@dataclass(slots=True)
class MeetingFacts:
    """What the rules need to know of one held meeting."""

    held_on: date
    youth: bool | None
    parents: bool | None
    professionals: frozenset[str]
    workplan: bool = False
    registered: bool = False


class CaseFacts(Protocol):
    """The facts of a case the rules read (the ``Case`` aggregate has them)."""

    @property
    def requested_on(self) -> date: ...
    @property
    def ended(self) -> str | None: ...
    @property
    def chair(self) -> str | None: ...
    @property
    def parties(self) -> Collection[str]: ...
    @property
    def consents(self) -> Collection[Party]: ...
    @property
    def involved_professionals(self) -> Collection[str]: ...
    @property
    def meetings(self) -> Mapping[int, MeetingFacts]: ...


def age_on(birth_date: date, day: date) -> int:
    """Age in whole years on ``day``."""
    before_birthday = (day.month, day.day) < (birth_date.month, birth_date.day)
    return day.year - birth_date.year - int(before_birthday)


def client_within_age(programme: Programme, birth_date: date | None, requested_on: date) -> None:
    """Integrale jeugdhulp is for young people and young adults up to 25 on the request date."""
    if programme is not Programme.INTEGRALE_JEUGDHULP or birth_date is None:
        return
    age = age_on(birth_date, requested_on)
    if age > MAX_CLIENT_AGE:
        raise ClientTooOld(
            f"Integrale jeugdhulp is for young people up to {MAX_CLIENT_AGE}: "
            f"the client was {age} on the request date {requested_on.isoformat()}"
        )


def case_open(case: CaseFacts) -> None:
    """Nothing may follow a declined request or a closed case."""
    if case.ended is not None:
        raise CaseEnded(f"The case is {case.ended}: nothing more can be recorded")


def no_meeting_held(case: CaseFacts) -> None:
    """A request can only be declined before any meeting was held."""
    if case.meetings:
        raise DeclineAfterMeeting(
            f"A request can only be declined before any meeting was held; "
            f"{len(case.meetings)} meeting(s) were held"
        )


def _role(party: Party) -> str:
    return party.role.value.replace("_", " ")


def consent_not_standing(case: CaseFacts, party: Party) -> None:
    """A party consents once; again only after withdrawing."""
    if party in case.consents:
        raise ConsentAlreadyStanding(
            f"{party.ref} ({_role(party)}) has already consented; "
            "consent can be given again only after it was withdrawn"
        )


def consent_standing(case: CaseFacts, party: Party) -> None:
    """Only a standing consent can be withdrawn."""
    if party not in case.consents:
        raise ConsentNotStanding(
            f"{party.ref} ({_role(party)}) has no standing consent to withdraw"
        )


def chair_neutral(case: CaseFacts, chair: str) -> None:
    """The chair is not a party of the case and not a professional named in it."""
    if chair in case.parties:
        raise ChairNotNeutral(f"The chair must be neutral: {chair} is a party of this case")
    if chair in case.involved_professionals:
        raise ChairNotNeutral(
            f"The chair must be neutral: {chair} is named as a professional in this case"
        )


def meeting_can_be_held(case: CaseFacts, number: int, held_on: date) -> None:
    """A meeting needs an appointed chair, the consent of the young person or a parent,
    the next number, and a date not before the request."""
    expected = len(case.meetings) + 1
    if number != expected:
        raise MeetingOutOfSequence(f"The next meeting is number {expected}, not {number}")
    if case.chair is None:
        raise ChairRequired("A meeting needs an appointed chair")
    if not any(party.role in CONSENTING_ROLES for party in case.consents):
        raise ConsentRequired(
            "A meeting needs the standing consent of the young person or a parent"
        )
    if held_on < case.requested_on:
        raise MeetingBeforeRequest(
            f"A meeting cannot be held on {held_on.isoformat()}, "
            f"before the request of {case.requested_on.isoformat()}"
        )


def held_meeting(case: CaseFacts, number: int) -> MeetingFacts:
    """Workplans and registrations refer to a meeting that was held."""
    meeting = case.meetings.get(number)
    if meeting is None:
        raise MeetingNotHeld(f"Meeting {number} has not been held")
    return meeting


def workplan_can_be_agreed(
    case: CaseFacts, number: int, agreements: Sequence[Agreement], coordinator: str | None
) -> None:
    """One workplan per meeting, before its registration is completed, with at least one
    agreement; the coordinator (hulpcoördinator) was present at the meeting and is not the chair."""
    meeting = held_meeting(case, number)
    if meeting.workplan:
        raise WorkplanAlreadyAgreed(f"Meeting {number} already has a workplan")
    if meeting.registered:
        raise RegistrationAlreadyCompleted(
            f"The registration of meeting {number} is completed: "
            "its workplan can no longer be added"
        )
    if not agreements:
        raise WorkplanWithoutAgreements("A workplan needs at least one agreement")
    if coordinator is None:
        return
    if coordinator == case.chair:
        raise CoordinatorIsChair(
            "The coordinator (hulpcoördinator) cannot be the chair of the case"
        )
    if coordinator not in meeting.professionals:
        raise CoordinatorNotPresent(
            f"The coordinator (hulpcoördinator) must be one of the professionals present "
            f"at meeting {number}; {coordinator} was not"
        )


def registration_can_be_completed(case: CaseFacts, number: int) -> None:
    """A meeting's registration is completed once, with youth and parent attendance known."""
    meeting = held_meeting(case, number)
    if meeting.registered:
        raise RegistrationAlreadyCompleted(
            f"The registration of meeting {number} is already completed"
        )
    unknown = [
        who
        for who, present in (("young person", meeting.youth), ("parents", meeting.parents))
        if present is None
    ]
    if unknown:
        raise AttendanceUnknown(
            f"The registration of meeting {number} needs the attendance of the "
            f"{' and the '.join(unknown)} to be known (present or not)"
        )


def follow_up_can_be_scheduled(case: CaseFacts, on: date) -> None:
    """A follow-up (vervolgoverleg) needs a held meeting and is not before the last one."""
    if not case.meetings:
        raise FollowUpWithoutMeeting("A follow-up needs at least one held meeting")
    last_number = max(case.meetings)
    last = case.meetings[last_number]
    if on < last.held_on:
        raise FollowUpBeforeLastMeeting(
            f"A follow-up cannot be scheduled on {on.isoformat()}, before the last "
            f"meeting (number {last_number}, held on {last.held_on.isoformat()})"
        )
