"""The rules of the case lifecycle that both rule sets share, one function each.

A rule reads the facts a case has gathered so far and raises a named ``CaseRuleBroken``
when a command would break it. The ``Case`` aggregate calls these before it records an
event, and the stream importer drives the same aggregate, so there is one truth of what
is allowed. Where the rule sets differ (``policies/v1.py``, ``policies/v2.py``), the case
asks its own rule set (``policies/rulesets.py``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from overleg.aggregates.errors import (
    CaseEnded,
    CaseErased,
    ChairRequired,
    ClientAttendanceTwice,
    ClientTooOld,
    ConsentAlreadyStanding,
    ConsentNotStanding,
    CoordinatorIsChair,
    CoordinatorNotProfessional,
    DeclineAfterMeeting,
    FollowUpBeforeLastMeeting,
    FollowUpWithoutMeeting,
    InviteeConflict,
    MeetingBeforeRequest,
    MeetingNotHeld,
    MeetingNotPlanned,
    MeetingOutOfSequence,
    RegistrationAlreadyCompleted,
    ReopenWithoutClose,
    RequesterRoleNotAllowed,
    WorkplanAlreadyAgreed,
    WorkplanMissing,
    WorkplanWithoutAgreements,
)
from overleg.aggregates.values import (
    AGE_OF_MAJORITY,
    FAMILY_ROLES,
    MAX_CLIENT_AGE,
    Agreement,
    Attendance,
    Invitee,
    Party,
    Programme,
    Role,
    RuleSet,
)
from overleg.i18n import Message, _, joined

BRUSSELS = ZoneInfo("Europe/Brussels")


def brussels_day(at: datetime) -> date:
    """The calendar date of an instant in Belgium (\"the date of `at`\" of contract v2)."""
    return at.astimezone(BRUSSELS).date()


@dataclass(slots=True)
class MeetingFacts:
    """What the rules need to know of one held meeting."""

    held_on: date
    attendance: Attendance
    workplan: bool = False
    coordinator: str | None = None
    agreement_refs: frozenset[str] = frozenset()
    registered: bool = False
    retracted: bool = False

    @property
    def youth(self) -> bool | None:
        return self.attendance.youth

    @property
    def parents(self) -> bool | None:
        return self.attendance.parents

    @property
    def professionals(self) -> frozenset[str]:
        return frozenset(self.attendance.professionals)

    @property
    def client_present(self) -> bool | None:
        """The client's presence: ``client`` where it is known, else ``youth``."""
        if self.attendance.client is not None:
            return self.attendance.client
        return self.attendance.youth


@dataclass(slots=True)
class PlanFacts:
    """The last plan of one meeting number."""

    on: date
    invited: tuple[Invitee, ...]
    not_invited: frozenset[str]
    cancelled: bool = False
    held: bool = False

    @property
    def open(self) -> bool:
        """Planned, and neither held nor cancelled."""
        return not (self.held or self.cancelled)


@dataclass(slots=True)
class ConsentFacts:
    """Each party's last word on consent: its role then, and whether it consents."""

    role: Role
    standing: bool


@dataclass(slots=True)
class Numbering:
    """Meeting numbers handed out so far (planned or held); never reused."""

    highest: int = 0
    used: set[int] = field(default_factory=set)

    @property
    def next(self) -> int:
        return self.highest + 1


class CaseFacts(Protocol):
    """The facts of a case the rules read (the ``Case`` aggregate has them)."""

    @property
    def rule_set(self) -> RuleSet: ...
    @property
    def programme(self) -> Programme: ...
    @property
    def requested_on(self) -> date: ...
    @property
    def client_ref(self) -> str: ...
    @property
    def client_birth_date(self) -> date | None: ...
    @property
    def ended(self) -> str | None: ...
    @property
    def erased_at(self) -> datetime | None: ...
    @property
    def chair(self) -> str | None: ...
    @property
    def parties(self) -> Collection[str]: ...
    @property
    def party_roles(self) -> Mapping[str, Collection[Role]]: ...
    @property
    def consents(self) -> Collection[Party]: ...
    @property
    def consent_by_ref(self) -> Mapping[str, ConsentFacts]: ...
    @property
    def involved_professionals(self) -> Collection[str]: ...
    @property
    def professionals(self) -> Collection[str]: ...
    @property
    def meetings(self) -> Mapping[int, MeetingFacts]: ...
    @property
    def plans(self) -> Mapping[int, PlanFacts]: ...
    @property
    def numbering(self) -> Numbering: ...
    @property
    def last_at(self) -> datetime | None: ...


def live_meetings(case: CaseFacts) -> dict[int, MeetingFacts]:
    """The held meetings that were not retracted: the only ones that count."""
    return {n: m for n, m in case.meetings.items() if not m.retracted}


def age_on(birth_date: date, day: date) -> int:
    """Age in whole years on ``day``."""
    before_birthday = (day.month, day.day) < (birth_date.month, birth_date.day)
    return day.year - birth_date.year - int(before_birthday)


def is_minor(case: CaseFacts, day: date) -> bool:
    """Whether the client is under 18 on ``day``; with the birth date unknown, a minor in
    integrale jeugdhulp and an adult in lokaal cliëntoverleg."""
    if case.client_birth_date is None:
        return case.programme is Programme.INTEGRALE_JEUGDHULP
    return age_on(case.client_birth_date, day) < AGE_OF_MAJORITY


ROLE_NAMES: Mapping[Role, Message] = {
    Role.YOUTH: _("young person"),
    Role.PARENT: _("parent"),
    Role.TRUSTED_PERSON: _("trusted person"),
    Role.SUPPORT_FIGURE: _("support figure"),
    Role.PROFESSIONAL: _("professional"),
    Role.CLIENT: _("client"),
    Role.LEGAL_REPRESENTATIVE: _("legal representative"),
    Role.NETWORK: _("network member"),
    Role.SERVICE: _("service"),
    Role.RESIDENT: _("resident"),
}


STATES: Mapping[str | None, Message] = {
    None: _("open"),
    "declined": _("declined"),
    "closed": _("closed"),
}


def _role(role: Role) -> Message:
    return ROLE_NAMES[role]


def _state(ended: str | None) -> Message:
    return STATES[ended]


# -- the request --------------------------------------------------------------------------


def client_within_age(programme: Programme, birth_date: date | None, requested_on: date) -> None:
    """Integrale jeugdhulp is for young people and young adults up to 25 on the request date."""
    if programme is not Programme.INTEGRALE_JEUGDHULP or birth_date is None:
        return
    age = age_on(birth_date, requested_on)
    if age > MAX_CLIENT_AGE:
        raise ClientTooOld(
            _(
                "Integrale jeugdhulp is for young people up to {max_age}: "
                "the client was {age} on the request date {day}",
                max_age=MAX_CLIENT_AGE,
                age=age,
                day=requested_on.isoformat(),
            )
        )


def requester_may_ask(programme: Programme, role: Role) -> None:
    """Any resident may ask for a lokaal cliëntoverleg; integrale jeugdhulp takes requests of
    the young person, the family, their supporters, professionals and services."""
    if role is Role.RESIDENT and programme is not Programme.LOKAAL_CLIENTOVERLEG:
        raise RequesterRoleNotAllowed(
            _(
                "A resident of the municipality may request a lokaal cliëntoverleg, "
                "not a consultation in integrale jeugdhulp"
            )
        )


def party_role(role: Role) -> None:
    """Services and residents may request a consultation; they are not parties of it."""
    if role in (Role.SERVICE, Role.RESIDENT):
        raise RequesterRoleNotAllowed(
            _("A {role} may request a consultation but is not a party of it", role=_role(role))
        )


# -- the case's life ----------------------------------------------------------------------


def not_erased(case: CaseFacts) -> None:
    """Nothing may be recorded on a case whose personal data was erased."""
    if case.erased_at is not None:
        raise CaseErased(
            _("The personal data of this case was erased: nothing more can be recorded on it")
        )


def case_open(case: CaseFacts) -> None:
    """Nothing may follow a declined request or a closed case (until it is reopened)."""
    if case.ended is not None:
        raise CaseEnded(
            _("The case is {state}: nothing more can be recorded", state=_state(case.ended))
        )


def can_be_reopened(case: CaseFacts) -> None:
    """Only a closed case can be reopened; a declined request stays declined."""
    if case.ended != "closed":
        raise ReopenWithoutClose(
            _("Only a closed case can be reopened; this case is {state}", state=_state(case.ended))
        )


def no_meeting_held(case: CaseFacts) -> None:
    """A request can only be declined before any meeting was held."""
    held = live_meetings(case)
    if held:
        raise DeclineAfterMeeting(
            _(
                "A request can only be declined before any meeting was held; "
                "{count} meeting(s) were held",
                count=len(held),
            )
        )


# -- consent ------------------------------------------------------------------------------


def _consent_stands(case: CaseFacts, party: Party) -> bool:
    """Whether the party's consent stands. Under v1 a party is its reference and role; under
    v2 its reference."""
    if case.rule_set is RuleSet.V1:
        return party in case.consents
    last = case.consent_by_ref.get(party.ref)
    return last is not None and last.standing


def consent_not_standing(case: CaseFacts, party: Party) -> None:
    """A party consents once; again only after withdrawing."""
    if _consent_stands(case, party):
        raise ConsentAlreadyStanding(
            _(
                "{ref} ({role}) has already consented; "
                "consent can be given again only after it was withdrawn",
                ref=party.ref,
                role=_role(party.role),
            )
        )


def consent_standing(case: CaseFacts, party: Party) -> None:
    """Only a standing consent can be withdrawn."""
    if not _consent_stands(case, party):
        raise ConsentNotStanding(
            _(
                "{ref} ({role}) has no standing consent to withdraw",
                ref=party.ref,
                role=_role(party.role),
            )
        )


# -- meetings -----------------------------------------------------------------------------


def chair_appointed(case: CaseFacts, what: Message) -> None:
    """Meetings are planned and held by the appointed chair."""
    if case.chair is None:
        raise ChairRequired(_("{what} needs an appointed chair", what=what))


def not_before_request(case: CaseFacts, day: date, what: Message) -> None:
    """No meeting takes place before the request."""
    if day < case.requested_on:
        raise MeetingBeforeRequest(
            _(
                "{what} cannot be on {day}, before the request of {requested_on}",
                what=what,
                day=day.isoformat(),
                requested_on=case.requested_on.isoformat(),
            )
        )


def number_for_holding(case: CaseFacts, number: int) -> None:
    """A held meeting takes the next number, or the number of a plan not yet held (a
    cancelled plan's too: the meeting took place after all)."""
    plan = case.plans.get(number)
    if plan is not None and not plan.held:
        return
    expected = case.numbering.next
    if number != expected:
        open_plans = sorted(n for n, p in case.plans.items() if not p.held)
        if open_plans:
            raise MeetingOutOfSequence(
                _(
                    "The next meeting is number {expected} or a planned one ({planned}), "
                    "not {number}",
                    expected=expected,
                    planned=", ".join(map(str, open_plans)),
                    number=number,
                )
            )
        raise MeetingOutOfSequence(
            _(
                "The next meeting is number {expected}, not {number}",
                expected=expected,
                number=number,
            )
        )


def number_for_planning(case: CaseFacts, number: int) -> None:
    """A plan takes the next number or re-plans a meeting planned and not yet held."""
    plan = case.plans.get(number)
    if plan is not None and not plan.held:
        return
    expected = case.numbering.next
    if number != expected:
        raise MeetingOutOfSequence(
            _(
                "A plan takes the next meeting number {expected} or re-plans a planned meeting "
                "not yet held, not {number}",
                expected=expected,
                number=number,
            )
        )


def invitees_consistent(invited: Sequence[Invitee], not_invited: Collection[str]) -> None:
    """Nobody is both invited and, by the client's wish, not invited."""
    both = sorted({i.ref for i in invited} & set(not_invited))
    if both:
        raise InviteeConflict(
            _(
                "{refs} cannot be both invited and not invited to the same meeting",
                refs=", ".join(both),
            )
        )
    for invitee in invited:
        party_role(invitee.role)


def plan_open(case: CaseFacts, number: int) -> None:
    """Only a planned meeting not yet held (and not cancelled) can be cancelled."""
    plan = case.plans.get(number)
    if plan is None:
        raise MeetingNotPlanned(_("Meeting {number} was not planned", number=number))
    if plan.held:
        raise MeetingNotPlanned(
            _("Meeting {number} was held; retract it if it was recorded wrongly", number=number)
        )
    if plan.cancelled:
        raise MeetingNotPlanned(_("Meeting {number} is already cancelled", number=number))


def preparation_meeting(case: CaseFacts, number: int) -> None:
    """A preparation is for a planned meeting not yet held, or for the next one."""
    plan = case.plans.get(number)
    if plan is not None and not plan.held:
        return
    if number != case.numbering.next:
        raise MeetingNotPlanned(
            _(
                "A preparation is for a planned meeting or the next one "
                "(number {expected}), not meeting {number}",
                expected=case.numbering.next,
                number=number,
            )
        )


def held_meeting(case: CaseFacts, number: int) -> MeetingFacts:
    """Workplans, registrations and corrections refer to a held meeting not retracted."""
    meeting = case.meetings.get(number)
    if meeting is None:
        raise MeetingNotHeld(_("Meeting {number} has not been held", number=number))
    if meeting.retracted:
        raise MeetingNotHeld(_("Meeting {number} was retracted: it counts nowhere", number=number))
    return meeting


def one_client_presence(case: CaseFacts, attendance: Attendance) -> None:
    """In integrale jeugdhulp the client is the young person: their presence is given as
    ``youth`` or as ``client``, not both."""
    if (
        case.programme is Programme.INTEGRALE_JEUGDHULP
        and attendance.youth is not None
        and attendance.client is not None
    ):
        raise ClientAttendanceTwice(
            _(
                "In integrale jeugdhulp the client is the young person: give their presence as "
                "youth or as client, not both"
            )
        )


def workplan_can_be_agreed(case: CaseFacts, number: int, agreements: Sequence[Agreement]) -> None:
    """One workplan per meeting, before its registration is completed, with at least one
    agreement."""
    meeting = held_meeting(case, number)
    if meeting.workplan:
        raise WorkplanAlreadyAgreed(
            _("Meeting {number} already has a workplan; revise it to change it", number=number)
        )
    if meeting.registered:
        raise RegistrationAlreadyCompleted(
            _(
                "The registration of meeting {number} is completed: "
                "its workplan can no longer be added",
                number=number,
            )
        )
    has_agreements(agreements)


def workplan_can_be_revised(
    case: CaseFacts, number: int, agreements: Sequence[Agreement]
) -> MeetingFacts:
    """Only a meeting's existing workplan can be revised, also after registration."""
    meeting = held_meeting(case, number)
    if not meeting.workplan:
        raise WorkplanMissing(_("Meeting {number} has no workplan to revise", number=number))
    has_agreements(agreements)
    return meeting


def has_agreements(agreements: Sequence[Agreement]) -> None:
    if not agreements:
        raise WorkplanWithoutAgreements(_("A workplan needs at least one agreement"))


def coordinator_not_chair(case: CaseFacts, coordinator: str) -> None:
    """The coordinator (hulpcoördinator, spilfiguur) is not the chair of the case."""
    if coordinator == case.chair:
        raise CoordinatorIsChair(
            _("The coordinator (hulpcoördinator) cannot be the chair of the case")
        )


def coordinator_not_family(case: CaseFacts, coordinator: str) -> None:
    """The spilfiguur is one of the professionals involved ("Eén van de betrokken
    hulpverleners"), never someone the case knows only as family or network."""
    roles = case.party_roles.get(coordinator)
    if roles and set(roles) <= FAMILY_ROLES:
        raise CoordinatorNotProfessional(
            _(
                "The coordinator (spilfiguur) is a professional; {ref} is a {roles} in this case",
                ref=coordinator,
                roles=joined([_role(r) for r in sorted(roles)]),
            )
        )


def registration_not_completed(case: CaseFacts, number: int) -> MeetingFacts:
    """A meeting's registration is completed once."""
    meeting = held_meeting(case, number)
    if meeting.registered:
        raise RegistrationAlreadyCompleted(
            _("The registration of meeting {number} is already completed", number=number)
        )
    return meeting


def follow_up_can_be_scheduled(case: CaseFacts, on: date) -> None:
    """A follow-up (vervolgoverleg) needs a held meeting and is not before the last one."""
    held = live_meetings(case)
    if not held:
        raise FollowUpWithoutMeeting(_("A follow-up needs at least one held meeting"))
    last_number = max(held)
    last = held[last_number]
    if on < last.held_on:
        raise FollowUpBeforeLastMeeting(
            _(
                "A follow-up cannot be scheduled on {day}, before the last "
                "meeting (number {number}, held on {held_on})",
                day=on.isoformat(),
                number=last_number,
                held_on=last.held_on.isoformat(),
            )
        )
