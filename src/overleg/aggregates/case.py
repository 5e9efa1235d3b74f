"""The Case aggregate: one client situation from request to closure (cliëntoverleg)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, ClassVar, TypeGuard, get_args
from uuid import UUID

from eventsourcing.domain import Aggregate

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
from overleg.policies import rules
from overleg.policies.rules import MeetingFacts

# Every event keeps the facts the statistics need (region, programme, dates, attendance
# flags, outcomes) as its own fields, and everything that identifies or describes a person
# (references, birth date, free text) in one ``personal`` mapping of plain JSON values.
# That mapping can later be encrypted or erased per case without touching the facts.
Personal = dict[str, Any]


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


class Case(Aggregate):
    """A request for a client consultation and everything recorded about it since.

    Each public command checks the rules first and records its event only when all of them
    hold, so a refused command changes nothing. ``at`` (when the fact was recorded) and
    ``by`` (who recorded it) come from the caller: no clock is read here.
    """

    TOPIC = "overleg.case"

    def __init__(self) -> None:
        # The request event sets every fact (see ``Requested.apply``); these are the types.
        self.programme: Programme
        self.region: Region
        self.requested_on: date
        self.ended: str | None = None
        self.chair: str | None = None
        self.parties: set[str] = set()
        self.consents: set[Party] = set()
        self.involved_professionals: set[str] = set()
        self.meetings: dict[int, MeetingFacts] = {}
        self.follow_up_on: date | None = None

    class Event(Aggregate.Event):
        """Base of all case events: who recorded it (``timestamp`` says when).

        ``class_version`` is the shape of an event class's stored state. When a class
        changes shape it gets ``class_version = 2`` and a static ``upcast_v1_v2(state)``
        that brings old stored states up to date as they are read.
        """

        TOPIC: ClassVar[str]
        class_version = 1
        recorded_by: str

    class Requested(Event, Aggregate.Created):
        """A consultation was requested (aanvraag)."""

        TOPIC = "overleg.case.requested.v1"
        programme: str
        region: str
        channel: str
        requester_role: str
        personal: Personal  # requester_ref, client_ref, client_birth_date, question

        def apply(self, case: Case) -> None:
            case.programme = Programme(self.programme)
            case.region = Region(self.region)
            case.requested_on = self.timestamp.date()
            case.parties.update((self.personal["requester_ref"], self.personal["client_ref"]))

    Created = Requested

    class RequestDeclined(Event):
        """The continuity team declined the request; the case ends."""

        TOPIC = "overleg.case.request_declined.v1"
        personal: Personal  # reason

        def apply(self, case: Case) -> None:
            case.ended = "declined"

    class ConsentGiven(Event):
        """A party consented to the consultation."""

        TOPIC = "overleg.case.consent_given.v1"
        role: str
        personal: Personal  # ref

        def apply(self, case: Case) -> None:
            party = Party(self.personal["ref"], Role(self.role))
            case.consents.add(party)
            case.parties.add(party.ref)

    class ConsentWithdrawn(Event):
        """A party withdrew a standing consent."""

        TOPIC = "overleg.case.consent_withdrawn.v1"
        role: str
        personal: Personal  # ref, reason

        def apply(self, case: Case) -> None:
            case.consents.discard(Party(self.personal["ref"], Role(self.role)))

    class ChairAppointed(Event):
        """A neutral chair was appointed; a later appointment replaces the chair."""

        TOPIC = "overleg.case.chair_appointed.v1"
        personal: Personal  # chair

        def apply(self, case: Case) -> None:
            case.chair = self.personal["chair"]

    class MeetingHeld(Event):
        """A meeting (first: eerste overleg, later: vervolgoverleg) was held."""

        TOPIC = "overleg.case.meeting_held.v1"
        meeting: int
        held_on: date
        youth: bool | None
        parents: bool | None
        trusted_person: bool | None
        professionals_present: int
        personal: Personal  # place, professionals

        def apply(self, case: Case) -> None:
            professionals = frozenset(self.personal["professionals"])
            case.meetings[self.meeting] = MeetingFacts(
                held_on=self.held_on,
                youth=self.youth,
                parents=self.parents,
                professionals=professionals,
            )
            case.involved_professionals.update(professionals)

    class WorkplanAgreed(Event):
        """A meeting ended in a workplan of concrete agreements."""

        TOPIC = "overleg.case.workplan_agreed.v1"
        meeting: int
        agreement_count: int
        coordinator_appointed: bool
        crisis_plan: bool
        personal: Personal  # agreements [{who, what, due, domain}], coordinator

        def apply(self, case: Case) -> None:
            case.meetings[self.meeting].workplan = True
            case.involved_professionals.update(a["who"] for a in self.personal["agreements"])
            if self.personal["coordinator"] is not None:
                case.involved_professionals.add(self.personal["coordinator"])

    class RegistrationCompleted(Event):
        """A meeting's registration is complete (volledig geregistreerd)."""

        TOPIC = "overleg.case.registration_completed.v1"
        meeting: int

        def apply(self, case: Case) -> None:
            case.meetings[self.meeting].registered = True

    class FollowUpScheduled(Event):
        """A follow-up meeting (vervolgoverleg) was scheduled."""

        TOPIC = "overleg.case.follow_up_scheduled.v1"
        on: date

        def apply(self, case: Case) -> None:
            case.follow_up_on = self.on

    class BottleneckReported(Event):
        """A structural, cross-case bottleneck, recorded as policy information."""

        TOPIC = "overleg.case.bottleneck_reported.v1"
        theme: str
        personal: Personal  # description

    class CaseClosed(Event):
        """The case was closed."""

        TOPIC = "overleg.case.case_closed.v1"
        personal: Personal  # reason

        def apply(self, case: Case) -> None:
            case.ended = "closed"

    # -- commands ---------------------------------------------------------------------

    @classmethod
    def request(
        cls,
        *,
        id: UUID,
        programme: Programme,
        region: Region,
        requested_by: Party,
        channel: Channel,
        client: Client,
        question: str,
        at: datetime,
        by: str,
    ) -> Case:
        """Open a case with its request (the first event of every case)."""
        rules.client_within_age(programme, client.birth_date, at.date())
        return cls._create(
            cls.Requested,
            id=id,
            timestamp=at,
            recorded_by=by,
            programme=programme.value,
            region=region.value,
            channel=channel.value,
            requester_role=requested_by.role.value,
            personal={
                "requester_ref": requested_by.ref,
                "client_ref": client.ref,
                "client_birth_date": _iso(client.birth_date),
                "question": question,
            },
        )

    def decline(self, *, reason: str, at: datetime, by: str) -> None:
        """Decline the request; only before any meeting was held."""
        rules.case_open(self)
        rules.no_meeting_held(self)
        self._record(self.RequestDeclined, at, by, personal={"reason": reason})

    def give_consent(self, *, party: Party, at: datetime, by: str) -> None:
        """Record a party's consent (toestemming)."""
        rules.case_open(self)
        rules.consent_not_standing(self, party)
        self._record(self.ConsentGiven, at, by, role=party.role.value, personal={"ref": party.ref})

    def withdraw_consent(self, *, party: Party, reason: str | None, at: datetime, by: str) -> None:
        """Withdraw a party's standing consent."""
        rules.case_open(self)
        rules.consent_standing(self, party)
        self._record(
            self.ConsentWithdrawn,
            at,
            by,
            role=party.role.value,
            personal={"ref": party.ref, "reason": reason},
        )

    def appoint_chair(self, *, chair: str, at: datetime, by: str) -> None:
        """Appoint the neutral chair (voorzitter / coördinator); replaces an earlier one."""
        rules.case_open(self)
        rules.chair_neutral(self, chair)
        self._record(self.ChairAppointed, at, by, personal={"chair": chair})

    def hold_meeting(
        self,
        *,
        meeting: int,
        held_on: date,
        place: str,
        attendance: Attendance,
        at: datetime,
        by: str,
    ) -> None:
        """Register a held meeting and who attended it."""
        rules.case_open(self)
        rules.meeting_can_be_held(self, meeting, held_on)
        self._record(
            self.MeetingHeld,
            at,
            by,
            meeting=meeting,
            held_on=held_on,
            youth=attendance.youth,
            parents=attendance.parents,
            trusted_person=attendance.trusted_person,
            professionals_present=len(attendance.professionals),
            personal={"place": place, "professionals": list(attendance.professionals)},
        )

    def agree_workplan(
        self,
        *,
        meeting: int,
        agreements: Sequence[Agreement],
        coordinator: str | None,
        crisis_plan: bool,
        at: datetime,
        by: str,
    ) -> None:
        """Record the workplan of a meeting and its coordinator (hulpcoördinator, spilfiguur)."""
        rules.case_open(self)
        rules.workplan_can_be_agreed(self, meeting, agreements, coordinator)
        self._record(
            self.WorkplanAgreed,
            at,
            by,
            meeting=meeting,
            agreement_count=len(agreements),
            coordinator_appointed=coordinator is not None,
            crisis_plan=crisis_plan,
            personal={
                "agreements": [
                    {"who": a.who, "what": a.what, "due": _iso(a.due), "domain": a.domain}
                    for a in agreements
                ],
                "coordinator": coordinator,
            },
        )

    def complete_registration(self, *, meeting: int, at: datetime, by: str) -> None:
        """Mark a meeting as fully registered (counts in the attendance and outcome figures)."""
        rules.case_open(self)
        rules.registration_can_be_completed(self, meeting)
        self._record(self.RegistrationCompleted, at, by, meeting=meeting)

    def schedule_follow_up(self, *, on: date, at: datetime, by: str) -> None:
        """Schedule a follow-up meeting (vervolgoverleg)."""
        rules.case_open(self)
        rules.follow_up_can_be_scheduled(self, on)
        self._record(self.FollowUpScheduled, at, by, on=on)

    def report_bottleneck(self, *, theme: str, description: str, at: datetime, by: str) -> None:
        """Report a structural, cross-case bottleneck (knelpunt) as policy information."""
        rules.case_open(self)
        self._record(
            self.BottleneckReported, at, by, theme=theme, personal={"description": description}
        )

    def close(self, *, reason: str, at: datetime, by: str) -> None:
        """Close the case."""
        rules.case_open(self)
        self._record(self.CaseClosed, at, by, personal={"reason": reason})

    def _record(self, event_class: type[Case.Event], at: datetime, by: str, **fields: Any) -> None:
        self.trigger_event(event_class, timestamp=at, recorded_by=by, **fields)


# Every event a case can record. Readers dispatch with ``match`` over this union and end in
# ``assert_never``, so the type checker names every reader a new event type is missing from.
CaseEvent = (
    Case.Requested
    | Case.RequestDeclined
    | Case.ConsentGiven
    | Case.ConsentWithdrawn
    | Case.ChairAppointed
    | Case.MeetingHeld
    | Case.WorkplanAgreed
    | Case.RegistrationCompleted
    | Case.FollowUpScheduled
    | Case.BottleneckReported
    | Case.CaseClosed
)
EVENT_CLASSES: tuple[type[Case.Event], ...] = get_args(CaseEvent)
# The stored topics of the case's events: what the projections and the export read.
EVENT_TOPICS: tuple[str, ...] = tuple(cls.TOPIC for cls in EVENT_CLASSES)


def is_case_event(event: object) -> TypeGuard[CaseEvent]:
    """Whether a stored event is one of the case's events."""
    return isinstance(event, EVENT_CLASSES)
