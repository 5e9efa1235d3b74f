"""The Case aggregate: one client situation from request to closure (cliëntoverleg)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, ClassVar, TypeGuard, get_args
from uuid import UUID

from eventsourcing.domain import Aggregate

from overleg.aggregates.values import (
    FAMILY_ROLES,
    Agreement,
    Attendance,
    Channel,
    Client,
    ErasureGrounds,
    Invitee,
    Party,
    Programme,
    Region,
    Role,
    RuleSet,
)
from overleg.i18n import Message, _
from overleg.policies import rules
from overleg.policies.rules import (
    ConsentFacts,
    MeetingFacts,
    Numbering,
    PlanFacts,
    brussels_day,
)
from overleg.policies.rulesets import Clauses, clauses

# Every event keeps the facts the statistics need (region, programme, dates, attendance
# flags, outcomes) as its own fields, and everything that identifies or describes a person
# (references, birth date, free text) in one ``personal`` mapping of plain JSON values.
# That mapping can later be encrypted or erased per case without touching the facts.
# An optional key of the contract that was not given is left out of ``personal`` (and an
# optional fact is ``None``), so that an export writes exactly what was imported.
Personal = dict[str, Any]


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def _agreements(agreements: Sequence[Agreement]) -> list[dict[str, Any]]:
    written = []
    for a in agreements:
        item: dict[str, Any] = {
            "who": a.who,
            "what": a.what,
            "due": _iso(a.due),
            "domain": a.domain,
        }
        if a.goal is not None:
            item["goal"] = a.goal
        written.append(item)
    return written


def _attendance(held: Case.MeetingHeld | Case.AttendanceCorrected) -> Attendance:
    return Attendance.of(
        held.youth,
        held.parents,
        held.trusted_person,
        tuple(held.personal["professionals"]),
        dict(held.attendance_extra),
    )


class Case(Aggregate):
    """A request for a client consultation and everything recorded about it since.

    Each public command checks the rules first and records its event only when all of them
    hold, so a refused command changes nothing. ``at`` (when the fact was recorded) and
    ``by`` (who recorded it) come from the caller: no clock is read here. The rule set
    (``v1``, ``v2``) is fixed by the request and kept for the case's whole life.
    """

    TOPIC = "overleg.case"

    def __init__(self) -> None:
        # The request event sets every fact (see ``Requested.apply``); these are the types.
        self.rule_set: RuleSet
        self.programme: Programme
        self.region: Region
        self.municipality: str | None
        self.requested_on: date
        self.client_ref: str
        self.client_birth_date: date | None
        self.ended: str | None = None
        self.erased_at: datetime | None = None  # when its personal data was erased
        self.chair: str | None = None
        self.parties: set[str] = set()
        self.party_roles: dict[str, set[Role]] = {}
        self.consents: set[Party] = set()  # standing consents, as v1 counts them
        self.consent_by_ref: dict[str, ConsentFacts] = {}  # each party's last word (v2)
        # Parties and requesters in the role professional, and designated coordinators:
        # with the meetings and plans, they make the professionals of the case.
        self.professional_parties: set[str] = set()
        self.designated: set[str] = set()
        self.meetings: dict[int, MeetingFacts] = {}
        self.plans: dict[int, PlanFacts] = {}
        self.numbering = Numbering()
        self.follow_up_on: date | None = None
        self.coordinator: str | None = None  # the designated spilfiguur / hulpcoördinator
        self.coordinator_chosen_by_client = False

    @property
    def last_at(self) -> datetime | None:
        """When the case's last fact was recorded."""
        return self.modified_on

    @property
    def clauses(self) -> Clauses:
        """The rules of this case's rule set, where the sets differ."""
        return clauses(self.rule_set)

    def _name(self, ref: str, role: Role) -> None:
        self.parties.add(ref)
        self.party_roles.setdefault(ref, set()).add(role)
        if role is Role.PROFESSIONAL:
            self.professional_parties.add(ref)

    def _number(self, number: int) -> None:
        self.numbering.used.add(number)
        self.numbering.highest = max(self.numbering.highest, number)

    @property
    def professionals(self) -> set[str]:
        """The professionals of the case (contract v2): named present at a meeting that was
        not retracted (as its attendance now stands), invited as a professional to a plan,
        designated as coordinator, or a party or requester in the role professional."""
        return self._present_or_invited() | self.designated | self.professional_parties

    def _present_or_invited(self) -> set[str]:
        found: set[str] = set()
        for meeting in self.meetings.values():
            if not meeting.retracted:
                found |= meeting.professionals
        for plan in self.plans.values():
            found |= {i.ref for i in plan.invited if i.role is Role.PROFESSIONAL}
        return found

    @property
    def agreement_refs(self) -> set[str]:
        """Who the workplans of meetings not retracted name in an agreement or as
        coordinator."""
        found: set[str] = set()
        for meeting in self.meetings.values():
            if not meeting.retracted:
                found |= meeting.agreement_refs
                if meeting.coordinator is not None:
                    found.add(meeting.coordinator)
        return found

    @property
    def involved_professionals(self) -> set[str]:
        """v1's "professional named in any attendance or agreement" (retracted meetings
        aside), with those v2 lets a v1 case name too: invited and designated professionals.
        A party or requester in the role professional is named here only where a meeting or
        a workplan names them (the chair's neutrality refuses every party anyway)."""
        return self._present_or_invited() | self.designated | self.agreement_refs

    def family(self) -> set[str]:
        """Refs the case knows only in family or network roles (as parties, or invited)."""
        known: dict[str, set[Role]] = {ref: set(roles) for ref, roles in self.party_roles.items()}
        for plan in self.plans.values():
            for invitee in plan.invited:
                known.setdefault(invitee.ref, set()).add(invitee.role)
        return {ref for ref, roles in known.items() if roles and roles <= FAMILY_ROLES}

    def readers(self) -> set[str]:
        """Refs of the professionals who may read this case: the professionals of the case
        (a professional who requested it among them), and people named in an agreement unless
        the case knows them only in family or network roles (a mother who agrees to something
        is not a professional)."""
        return self.professionals | (self.agreement_refs - self.family())

    def _workplan_of(self, number: int, personal: Personal) -> None:
        meeting = self.meetings[number]
        meeting.workplan = True
        meeting.coordinator = personal["coordinator"]
        meeting.agreement_refs = frozenset(a["who"] for a in personal["agreements"])

    def flagged_meetings(self) -> dict[int, list[str]]:
        """Held meetings at which a professional the client did not want invited was present
        (recorded as it happened, and flagged)."""
        flags: dict[int, list[str]] = {}
        for number, meeting in self.meetings.items():
            plan = self.plans.get(number)
            if plan is None or meeting.retracted:
                continue
            unwanted = sorted(plan.not_invited & meeting.professionals)
            if unwanted:
                flags[number] = unwanted
        return flags

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
        class_version = 2
        programme: str
        region: str
        channel: str
        requester_role: str
        rule_set: str
        municipality: str | None
        personal: Personal  # requester_ref, client_ref, client_birth_date, question, [goal]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            # Recorded before contract v2: the case keeps the v1 rules.
            state["rule_set"] = RuleSet.V1.value
            state["municipality"] = None

        def apply(self, case: Case) -> None:
            case.rule_set = RuleSet(self.rule_set)
            case.programme = Programme(self.programme)
            case.region = Region(self.region)
            case.municipality = self.municipality
            case.requested_on = (
                self.timestamp.date()
                if case.rule_set is RuleSet.V1
                else brussels_day(self.timestamp)
            )
            p = self.personal
            case.client_ref = p["client_ref"]
            birth = p["client_birth_date"]
            case.client_birth_date = None if birth is None else date.fromisoformat(birth)
            case._name(p["requester_ref"], Role(self.requester_role))
            case.parties.add(p["client_ref"])

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
            case.consent_by_ref[party.ref] = ConsentFacts(party.role, standing=True)
            case._name(party.ref, party.role)

    class ConsentWithdrawn(Event):
        """A party withdrew a standing consent."""

        TOPIC = "overleg.case.consent_withdrawn.v1"
        role: str
        personal: Personal  # ref, reason

        def apply(self, case: Case) -> None:
            party = Party(self.personal["ref"], Role(self.role))
            case.consents.discard(party)
            case.consent_by_ref[party.ref] = ConsentFacts(party.role, standing=False)

    class ChairAppointed(Event):
        """A neutral chair was appointed; a later appointment replaces the chair."""

        TOPIC = "overleg.case.chair_appointed.v1"
        personal: Personal  # chair

        def apply(self, case: Case) -> None:
            case.chair = self.personal["chair"]

    class MeetingHeld(Event):
        """A meeting (first: eerste overleg, later: vervolgoverleg) was held."""

        TOPIC = "overleg.case.meeting_held.v1"
        class_version = 2
        meeting: int
        held_on: date
        youth: bool | None
        parents: bool | None
        trusted_person: bool | None
        professionals_present: int
        attendance_extra: dict[str, bool | int | None]  # client, support_figure, network
        personal: Personal  # place, professionals

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["attendance_extra"] = {}

        def apply(self, case: Case) -> None:
            attendance = _attendance(self)
            case.meetings[self.meeting] = MeetingFacts(held_on=self.held_on, attendance=attendance)
            plan = case.plans.get(self.meeting)
            if plan is not None:
                plan.held = True
            case._number(self.meeting)

    class WorkplanAgreed(Event):
        """A meeting ended in a workplan of concrete agreements."""

        TOPIC = "overleg.case.workplan_agreed.v1"
        meeting: int
        agreement_count: int
        coordinator_appointed: bool
        crisis_plan: bool
        # agreements [{who, what, due, domain, [goal]}], coordinator, [crisis_steps]
        personal: Personal

        def apply(self, case: Case) -> None:
            case._workplan_of(self.meeting, self.personal)

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

    # -- contract v2 --------------------------------------------------------------------

    class MeetingPlanned(Event):
        """A meeting was planned (or re-planned: the last plan of a number stands)."""

        TOPIC = "overleg.case.meeting_planned.v1"
        meeting: int
        on: date
        invited_count: int
        personal: Personal  # place, [goal], invited [{ref, role}], not_invited [ref]

        def apply(self, case: Case) -> None:
            invited = tuple(Invitee(i["ref"], Role(i["role"])) for i in self.personal["invited"])
            case.plans[self.meeting] = PlanFacts(
                on=self.on, invited=invited, not_invited=frozenset(self.personal["not_invited"])
            )
            case._number(self.meeting)

    class MeetingCancelled(Event):
        """A planned meeting was cancelled, and with it the scheduled follow-up date."""

        TOPIC = "overleg.case.meeting_cancelled.v1"
        meeting: int
        personal: Personal  # reason

        def apply(self, case: Case) -> None:
            case.plans[self.meeting].cancelled = True
            case.follow_up_on = None

    class PreparationRecorded(Event):
        """How a meeting was prepared (the last record for a meeting stands)."""

        TOPIC = "overleg.case.preparation_recorded.v1"
        meeting: int
        checklist: dict[str, bool | None]
        personal: Personal  # [prepared_by]

    class CoordinatorDesignated(Event):
        """The case's spilfiguur / hulpcoördinator was designated (from now on)."""

        TOPIC = "overleg.case.coordinator_designated.v1"
        chosen_by_client: bool
        personal: Personal  # coordinator

        def apply(self, case: Case) -> None:
            case.coordinator = self.personal["coordinator"]
            case.coordinator_chosen_by_client = self.chosen_by_client
            case.designated.add(self.personal["coordinator"])

    class AttendanceCorrected(Event):
        """A meeting's attendance was recorded wrongly; this replaces it everywhere."""

        TOPIC = "overleg.case.attendance_corrected.v1"
        meeting: int
        youth: bool | None
        parents: bool | None
        trusted_person: bool | None
        professionals_present: int
        attendance_extra: dict[str, bool | int | None]
        personal: Personal  # professionals, reason

        def apply(self, case: Case) -> None:
            attendance = _attendance(self)
            case.meetings[self.meeting].attendance = attendance

    class WorkplanRevised(Event):
        """A meeting's workplan was revised; the revision replaces it, also after
        registration."""

        TOPIC = "overleg.case.workplan_revised.v1"
        meeting: int
        agreement_count: int
        coordinator_appointed: bool
        crisis_plan: bool
        personal: Personal  # as WorkplanAgreed's, and reason

        def apply(self, case: Case) -> None:
            case._workplan_of(self.meeting, self.personal)

    class MeetingRetracted(Event):
        """A meeting was recorded in error: it, its workplan and its registration count
        nowhere from now on; its number is not used again."""

        TOPIC = "overleg.case.meeting_retracted.v1"
        meeting: int
        personal: Personal  # reason

        def apply(self, case: Case) -> None:
            case.meetings[self.meeting].retracted = True

    class CaseReopened(Event):
        """A closed case was reopened; its meetings continue their numbering."""

        TOPIC = "overleg.case.case_reopened.v1"
        personal: Personal  # reason

        def apply(self, case: Case) -> None:
            case.ended = None

    # -- privacy ----------------------------------------------------------------------

    class PersonalDataErased(Event):
        """The case's personal data was erased: its data key was destroyed, and every
        personal part of its events reads in its erased form from now on. Nothing more is
        recorded on the case; its facts (and every figure) stay as they were."""

        TOPIC = "overleg.case.personal_data_erased.v1"
        grounds: str  # request (GDPR art. 17) or retention
        reason: str  # why, in words that name nobody (a ticket number, the rule applied)

        def apply(self, case: Case) -> None:
            case.erased_at = self.timestamp

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
        rule_set: RuleSet = RuleSet.V1,
        municipality: str | None = None,
        goal: str | None = None,
    ) -> Case:
        """Open a case with its request (the first event of every case)."""
        requested_on = at.date() if rule_set is RuleSet.V1 else brussels_day(at)
        rules.client_within_age(programme, client.birth_date, requested_on)
        rules.requester_may_ask(programme, requested_by.role)
        personal: Personal = {
            "requester_ref": requested_by.ref,
            "client_ref": client.ref,
            "client_birth_date": _iso(client.birth_date),
            "question": question,
        }
        if goal is not None:
            personal["goal"] = goal
        return cls._create(
            cls.Requested,
            id=id,
            timestamp=at,
            recorded_by=by,
            programme=programme.value,
            region=region.value,
            channel=channel.value,
            requester_role=requested_by.role.value,
            rule_set=rule_set.value,
            municipality=municipality,
            personal=personal,
        )

    def decline(self, *, reason: str, at: datetime, by: str) -> None:
        """Decline the request; only before any meeting was held."""
        self._checked(at)
        rules.case_open(self)
        rules.no_meeting_held(self)
        self._record(self.RequestDeclined, at, by, personal={"reason": reason})

    def give_consent(self, *, party: Party, at: datetime, by: str) -> None:
        """Record a party's consent (toestemming)."""
        rules_ = self._checked(at)
        rules.case_open(self)
        rules.party_role(party.role)
        rules.consent_not_standing(self, party)
        rules_.chair_not_named(self, [party.ref], _("a party"))
        self._record(self.ConsentGiven, at, by, role=party.role.value, personal={"ref": party.ref})

    def withdraw_consent(self, *, party: Party, reason: str | None, at: datetime, by: str) -> None:
        """Withdraw a party's standing consent."""
        self._checked(at)
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
        rules_ = self._checked(at)
        rules.case_open(self)
        rules_.chair_neutral(self, chair)
        self._record(self.ChairAppointed, at, by, personal={"chair": chair})

    def plan_meeting(
        self,
        *,
        meeting: int,
        on: date,
        place: str | None,
        goal: str | None,
        invited: Sequence[Invitee],
        not_invited: Sequence[str],
        at: datetime,
        by: str,
    ) -> None:
        """Plan a meeting (or re-plan one not yet held): when, where, who is invited and who,
        by the client's wish, is not."""
        rules_ = self._checked(at)
        rules.case_open(self)
        rules.chair_appointed(self, _("A meeting"))
        rules.number_for_planning(self, meeting)
        rules.not_before_request(self, on, _("A meeting"))
        rules.invitees_consistent(invited, not_invited)
        rules_.chair_not_named(self, [i.ref for i in invited], _("an invited person"))
        personal: Personal = {
            "place": place,
            "invited": [{"ref": i.ref, "role": i.role.value} for i in invited],
            "not_invited": list(not_invited),
        }
        if goal is not None:
            personal["goal"] = goal
        self._record(
            self.MeetingPlanned,
            at,
            by,
            meeting=meeting,
            on=on,
            invited_count=len(invited),
            personal=personal,
        )

    def cancel_meeting(self, *, meeting: int, reason: str, at: datetime, by: str) -> None:
        """Cancel a planned meeting not yet held (and the scheduled follow-up date)."""
        self._checked(at)
        rules.case_open(self)
        rules.plan_open(self, meeting)
        self._record(self.MeetingCancelled, at, by, meeting=meeting, personal={"reason": reason})

    def record_preparation(
        self,
        *,
        meeting: int,
        checklist: Mapping[str, bool | None],
        prepared_by: str | None,
        at: datetime,
        by: str,
    ) -> None:
        """Record how a planned (or the next) meeting was prepared."""
        self._checked(at)
        rules.case_open(self)
        rules.preparation_meeting(self, meeting)
        personal: Personal = {} if prepared_by is None else {"prepared_by": prepared_by}
        self._record(
            self.PreparationRecorded,
            at,
            by,
            meeting=meeting,
            checklist=dict(checklist),
            personal=personal,
        )

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
        rules_ = self._checked(at)
        rules.case_open(self)
        rules.number_for_holding(self, meeting)
        rules.chair_appointed(self, _("A meeting"))
        rules_.consent_required(self, held_on)
        rules.not_before_request(self, held_on, _("A meeting"))
        rules_.held_not_in_future(self, held_on, at)
        rules.one_client_presence(self, attendance)
        rules_.chair_not_named(self, attendance.professionals, _("a professional present"))
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
            attendance_extra=attendance.extras(),
            personal={"place": place, "professionals": list(attendance.professionals)},
        )

    def correct_attendance(
        self, *, meeting: int, attendance: Attendance, reason: str, at: datetime, by: str
    ) -> None:
        """Replace a held meeting's attendance, recorded wrongly, everywhere."""
        rules_ = self._checked(at)
        rules.case_open(self)
        held = rules.held_meeting(self, meeting)
        rules.one_client_presence(self, attendance)
        rules_.chair_not_named(self, attendance.professionals, _("a professional present"))
        if held.registered:  # a registered meeting's attendance stays known
            corrected = MeetingFacts(held_on=held.held_on, attendance=attendance)
            rules_.attendance_known(self, meeting, corrected)
        self._record(
            self.AttendanceCorrected,
            at,
            by,
            meeting=meeting,
            youth=attendance.youth,
            parents=attendance.parents,
            trusted_person=attendance.trusted_person,
            professionals_present=len(attendance.professionals),
            attendance_extra=attendance.extras(),
            personal={"professionals": list(attendance.professionals), "reason": reason},
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
        crisis_steps: Sequence[str] | None = None,
    ) -> None:
        """Record the workplan of a meeting and its coordinator (hulpcoördinator, spilfiguur).
        ``crisis_steps``: the crisis plan's steps, when it was given as steps."""
        rules_ = self._checked(at)
        rules.case_open(self)
        rules.workplan_can_be_agreed(self, meeting, agreements)
        self._coordinator_rules(rules_, meeting, coordinator)
        self._record(
            self.WorkplanAgreed,
            at,
            by,
            meeting=meeting,
            agreement_count=len(agreements),
            coordinator_appointed=coordinator is not None,
            crisis_plan=crisis_plan or crisis_steps is not None,
            personal=self._workplan(agreements, coordinator, crisis_steps),
        )

    def revise_workplan(
        self,
        *,
        meeting: int,
        agreements: Sequence[Agreement],
        coordinator: str | None,
        crisis_plan: bool,
        reason: str,
        at: datetime,
        by: str,
        crisis_steps: Sequence[str] | None = None,
    ) -> None:
        """Replace a meeting's workplan, also after its registration."""
        rules_ = self._checked(at)
        rules.case_open(self)
        rules.workplan_can_be_revised(self, meeting, agreements)
        self._coordinator_rules(rules_, meeting, coordinator)
        personal = self._workplan(agreements, coordinator, crisis_steps)
        personal["reason"] = reason
        self._record(
            self.WorkplanRevised,
            at,
            by,
            meeting=meeting,
            agreement_count=len(agreements),
            coordinator_appointed=coordinator is not None,
            crisis_plan=crisis_plan or crisis_steps is not None,
            personal=personal,
        )

    def _coordinator_rules(self, rules_: Clauses, meeting: int, coordinator: str | None) -> None:
        if coordinator is None:
            return
        rules_.coordinator(self, meeting, self.meetings[meeting], coordinator)
        rules_.chair_not_named(self, [coordinator], _("the coordinator"))

    @staticmethod
    def _workplan(
        agreements: Sequence[Agreement], coordinator: str | None, steps: Sequence[str] | None
    ) -> Personal:
        personal: Personal = {"agreements": _agreements(agreements), "coordinator": coordinator}
        if steps is not None:
            personal["crisis_steps"] = list(steps)
        return personal

    def complete_registration(self, *, meeting: int, at: datetime, by: str) -> None:
        """Mark a meeting as fully registered (counts in the attendance and outcome figures)."""
        rules_ = self._checked(at)
        rules.case_open(self)
        held = rules.registration_not_completed(self, meeting)
        rules_.attendance_known(self, meeting, held)
        self._record(self.RegistrationCompleted, at, by, meeting=meeting)

    def retract_meeting(self, *, meeting: int, reason: str, at: datetime, by: str) -> None:
        """Retract a meeting recorded in error (in the wrong case, or with a wrong date or
        place: then record it again)."""
        self._checked(at)
        rules.case_open(self)
        rules.held_meeting(self, meeting)
        self._record(self.MeetingRetracted, at, by, meeting=meeting, personal={"reason": reason})

    def schedule_follow_up(self, *, on: date, at: datetime, by: str) -> None:
        """Schedule a follow-up meeting (vervolgoverleg)."""
        self._checked(at)
        rules.case_open(self)
        rules.follow_up_can_be_scheduled(self, on)
        self._record(self.FollowUpScheduled, at, by, on=on)

    def designate_coordinator(
        self, *, coordinator: str, chosen_by_client: bool, at: datetime, by: str
    ) -> None:
        """Designate the case's spilfiguur / hulpcoördinator (the client's central contact)."""
        rules_ = self._checked(at)
        rules.case_open(self)
        rules.coordinator_not_chair(self, coordinator)
        rules.coordinator_not_family(self, coordinator)
        rules_.chair_not_named(self, [coordinator], _("the coordinator"))
        self._record(
            self.CoordinatorDesignated,
            at,
            by,
            chosen_by_client=chosen_by_client,
            personal={"coordinator": coordinator},
        )

    def report_bottleneck(self, *, theme: str, description: str, at: datetime, by: str) -> None:
        """Report a structural, cross-case bottleneck (knelpunt) as policy information."""
        rules_ = self._checked(at)
        rules_.bottleneck_allowed(self)
        self._record(
            self.BottleneckReported, at, by, theme=theme, personal={"description": description}
        )

    def close(self, *, reason: str, at: datetime, by: str) -> None:
        """Close the case."""
        self._checked(at)
        rules.case_open(self)
        self._record(self.CaseClosed, at, by, personal={"reason": reason})

    def reopen(self, *, reason: str, at: datetime, by: str) -> None:
        """Reopen a closed case; its meetings continue their numbering."""
        self._checked(at)
        rules.can_be_reopened(self)
        self._record(self.CaseReopened, at, by, personal={"reason": reason})

    def erase(self, *, grounds: ErasureGrounds, reason: str, at: datetime, by: str) -> None:
        """Record that the case's personal data is erased (the store destroys its key in
        the same transaction)."""
        self._checked(at)
        self._record(self.PersonalDataErased, at, by, grounds=grounds.value, reason=reason)

    def _checked(self, at: datetime) -> Clauses:
        """The case's rule set, after the rules every command shares: nothing is recorded
        on an erased case, and time goes forward."""
        rules.not_erased(self)
        rules_ = self.clauses
        rules_.at_order(self, at)
        return rules_

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
    | Case.MeetingPlanned
    | Case.MeetingCancelled
    | Case.PreparationRecorded
    | Case.CoordinatorDesignated
    | Case.AttendanceCorrected
    | Case.WorkplanRevised
    | Case.MeetingRetracted
    | Case.CaseReopened
    | Case.PersonalDataErased
)
EVENT_CLASSES: tuple[type[Case.Event], ...] = get_args(CaseEvent)
# The stored topics of the case's events: what the projections and the export read.
EVENT_TOPICS: tuple[str, ...] = tuple(cls.TOPIC for cls in EVENT_CLASSES)


# The facts of each event that name one value of a vocabulary, with that vocabulary's values.
_VOCABULARY: dict[str, frozenset[str]] = {
    name: frozenset(v.value for v in vocabulary)
    for name, vocabulary in (
        ("programme", Programme),
        ("region", Region),
        ("channel", Channel),
        ("requester_role", Role),
        ("rule_set", RuleSet),
        ("role", Role),
        ("grounds", ErasureGrounds),
    )
}
# What is wrong with a stored event whose fact is outside its vocabulary, or not a day.
_UNKNOWN_VALUE: dict[str, Message] = {
    "programme": _("its programme is not one overleg knows"),
    "region": _("its region is not one overleg knows"),
    "channel": _("its channel is not one overleg knows"),
    "requester_role": _("its requester role is not one overleg knows"),
    "rule_set": _("its rule set is not one overleg knows"),
    "role": _("its role is not one overleg knows"),
    "grounds": _("its grounds is not one overleg knows"),
}
_NOT_A_DAY: dict[str, Message] = {
    "held_on": _("its held on is not a date"),
    "on": _("its on is not a date"),
}


def facts_problem(event: CaseEvent) -> Message | None:
    """What makes a stored event one overleg never recorded (a fact outside its vocabulary,
    a missing field, a meeting number that is not a number), or ``None``."""
    facts = vars(event)  # every stored event is read through here: one look-up
    for name in type(event).__annotations__:
        if name not in facts:
            return _("its field {name} is missing", name=repr(name))
    for name, values in _VOCABULARY.items():
        value = facts.get(name)
        if value is not None and value not in values:
            return _UNKNOWN_VALUE[name]
    meeting = facts.get("meeting")
    if meeting is not None and (not isinstance(meeting, int) or meeting < 1):
        return _("its meeting number is not a number")
    for name in ("held_on", "on"):
        day = facts.get(name)
        if day is not None and not isinstance(day, date):
            return _NOT_A_DAY[name]
    if not isinstance(facts.get("personal", {}), dict):
        return _("its personal part is not readable")
    return None


def is_case_event(event: object) -> TypeGuard[CaseEvent]:
    """Whether a stored event is one of the case's events."""
    return isinstance(event, EVENT_CLASSES)
