"""The v2 rule set and the rules of contract v2's new event types, each against v1 where they
differ (``event-stream-v2.md``): one command allowed, each refusal named with its rule set."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from overleg.aggregates.case import Case
from overleg.aggregates.errors import (
    AtOutOfOrder,
    AttendanceUnknown,
    CaseEnded,
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
    WorkplanAlreadyAgreed,
    WorkplanMissing,
    WorkplanWithoutAgreements,
)
from overleg.aggregates.values import (
    Agreement,
    Attendance,
    Channel,
    Client,
    Invitee,
    Party,
    Programme,
    Region,
    Role,
    RuleSet,
)
from overleg.application import execute
from overleg.commands import (
    AgreeWorkplan,
    AppointChair,
    CancelMeeting,
    CloseCase,
    Command,
    CompleteRegistration,
    CorrectAttendance,
    Decline,
    DesignateCoordinator,
    GiveConsent,
    HoldMeeting,
    PlanMeeting,
    RecordPreparation,
    ReopenCase,
    ReportBottleneck,
    RetractMeeting,
    ReviseWorkplan,
    ScheduleFollowUp,
    SubmitRequest,
    WithdrawConsent,
)
from overleg.policies.rulesets import DEFAULT_V2_FROM
from overleg.streams import command_of, parse_line

V1, V2 = RuleSet.V1, RuleSet.V2
IJH, LCO = Programme.INTEGRALE_JEUGDHULP, Programme.LOKAAL_CLIENTOVERLEG
BRUSSELS = ZoneInfo("Europe/Brussels")
CASE_ID = UUID("2b7e5c1a-9d4f-4e3a-8c6b-1f0a2e3d4c5b")
BY = "team-1"
# The setting decides the rule set: the default instant gives the cases below (requested in
# 2026) the v2 rules; moved past them, the very same situations are judged by v1.
V2_FROM = {V2: DEFAULT_V2_FROM, V1: datetime(2100, 1, 1, tzinfo=UTC)}

REQUESTED_AT = datetime(2026, 2, 2, 10, 0, tzinfo=BRUSSELS)
REQUESTED_ON = date(2026, 2, 2)
FIRST_ON = date(2026, 2, 16)
LATER_ON = date(2026, 3, 16)
MINOR = date(2010, 5, 17)  # 15 in 2026
ADULT = date(2005, 1, 10)  # 21 in 2026: still within integrale jeugdhulp
TURNS_18 = date(2008, 3, 1)  # 18 on 2026-03-01, between FIRST_ON and LATER_ON

CLIENT = "jongere-1"
SIBLING = "broer-1"
PARENT = "ouder-1"
OTHER_PARENT = "ouder-2"
GUARDIAN = "voogd-1"
TRUSTED = "vertrouwenspersoon-1"
AUNT = "tante-1"
REQUESTER = Party("hulpverlener-aanvrager", Role.PROFESSIONAL)
CHAIR = "voorzitter-1"
PRESENT = ("hulpverlener-1", "hulpverlener-2")
SPILFIGUUR = "spilfiguur-1"
STRANGER = "hulpverlener-9"

# The stable rule names that problem details and import reports show.
RULES: dict[type[CaseRuleBroken], str] = {
    AtOutOfOrder: "at-order",
    AttendanceUnknown: "attendance-known",
    CaseEnded: "case-ended",
    ChairNotNeutral: "chair-neutral",
    ChairRequired: "chair-required",
    ClientAttendanceTwice: "attendance-client",
    ClientTooOld: "client-age",
    ConsentAlreadyStanding: "consent-once",
    ConsentNotStanding: "consent-standing",
    ConsentRequired: "consent-required",
    CoordinatorIsChair: "coordinator-not-chair",
    CoordinatorNotPresent: "coordinator-present",
    CoordinatorNotProfessional: "coordinator",
    DeclineAfterMeeting: "decline-before-meeting",
    FollowUpBeforeLastMeeting: "follow-up-date",
    FollowUpWithoutMeeting: "follow-up-after-meeting",
    HeldInFuture: "held-not-in-future",
    InviteeConflict: "invited-or-not",
    MeetingBeforeRequest: "meeting-after-request",
    MeetingNotHeld: "meeting-held",
    MeetingNotPlanned: "meeting-planned",
    MeetingOutOfSequence: "meeting-sequence",
    RegistrationAlreadyCompleted: "registration-once",
    ReopenWithoutClose: "reopen-after-close",
    RequesterRoleNotAllowed: "requester-role",
    WorkplanAlreadyAgreed: "workplan-once",
    WorkplanMissing: "workplan-exists",
    WorkplanWithoutAgreements: "workplan-agreements",
}

# For a clause where the rule sets differ: what each set does with the same command
# (``None``: allowed).
Verdict = type[CaseRuleBroken] | None


# -- commands, as the importer and the API build them ----------------------------------------


def request(
    programme: Programme = IJH,
    birth_date: date | None = MINOR,
    requested_by: Party = REQUESTER,
) -> SubmitRequest:
    return SubmitRequest(
        programme=programme,
        region=Region.LIMBURG,
        requested_by=requested_by,
        channel=Channel.COBE,
        client=Client(CLIENT, birth_date),
        question="Eén plan voor thuis en school",
        case_id=CASE_ID,
    )


def consent(ref: str = CLIENT, role: Role = Role.YOUTH) -> GiveConsent:
    return GiveConsent(CASE_ID, Party(ref, role))


def withdraw(ref: str = CLIENT, role: Role = Role.YOUTH) -> WithdrawConsent:
    return WithdrawConsent(CASE_ID, Party(ref, role), "Wil er nu niet over praten")


def appoint(ref: str = CHAIR) -> AppointChair:
    return AppointChair(CASE_ID, ref)


def attendance(
    youth: bool | None = True,
    parents: bool | None = True,
    present: tuple[str, ...] = PRESENT,
    **extras: bool | int | None,
) -> Attendance:
    """An attendance; ``extras`` are contract v2's keys, given as a line gives them."""
    return Attendance.of(youth, parents, None, present, dict(extras))


def hold(
    held_on: date = FIRST_ON, number: int | None = None, present: Attendance | None = None
) -> HoldMeeting:
    return HoldMeeting(CASE_ID, held_on, "Gemeentehuis", present or attendance(), number)


def agreements(who: str = PRESENT[0]) -> list[Agreement]:
    return [Agreement(who, "Zoekt een dagcentrum", None, "onderwijs")]


def workplan(number: int = 1, coordinator: str | None = PRESENT[0]) -> AgreeWorkplan:
    return AgreeWorkplan(CASE_ID, number, agreements(), coordinator, crisis_plan=False)


def revise(
    number: int = 1,
    coordinator: str | None = PRESENT[1],
    agreed: list[Agreement] | None = None,
) -> ReviseWorkplan:
    return ReviseWorkplan(
        CASE_ID,
        number,
        agreements() if agreed is None else agreed,
        coordinator,
        crisis_plan=False,
        reason="Nieuwe afspraken",
    )


def register(number: int = 1) -> CompleteRegistration:
    return CompleteRegistration(CASE_ID, number)


def follow_up(on: date) -> ScheduleFollowUp:
    return ScheduleFollowUp(CASE_ID, on)


def plan(
    number: int | None = None,
    on: date = FIRST_ON,
    invited: tuple[Invitee, ...] = (),
    not_invited: tuple[str, ...] = (),
) -> PlanMeeting:
    return PlanMeeting(CASE_ID, on, "Gemeentehuis", invited, not_invited, meeting=number)


def cancel(number: int) -> CancelMeeting:
    return CancelMeeting(CASE_ID, number, "De jongere is ziek")


def prepare(number: int) -> RecordPreparation:
    return RecordPreparation(CASE_ID, number, {"client_informed": True, "agenda_known": None})


def designate(ref: str = SPILFIGUUR, chosen_by_client: bool = True) -> DesignateCoordinator:
    return DesignateCoordinator(CASE_ID, ref, chosen_by_client)


def correct(number: int, corrected: Attendance) -> CorrectAttendance:
    return CorrectAttendance(CASE_ID, number, corrected, "Verkeerd genoteerd")


def retract(number: int) -> RetractMeeting:
    return RetractMeeting(CASE_ID, number, "In het verkeerde dossier genoteerd")


def close() -> CloseCase:
    return CloseCase(CASE_ID, "Werkplan loopt")


def reopen() -> ReopenCase:
    return ReopenCase(CASE_ID, "Nieuwe vraag van de jongere")


def decline() -> Decline:
    return Decline(CASE_ID, "Hulp is al afgestemd")


def bottleneck() -> ReportBottleneck:
    return ReportBottleneck(CASE_ID, "wachtlijst", "Geen plaats in een dagcentrum")


def from_line(kind: str, data: dict[str, Any]) -> Command:
    """The command a stream line records, read as the importer reads it."""
    raw = {
        "case": str(CASE_ID),
        "seq": 1,
        "type": kind,
        "at": REQUESTED_AT.isoformat(),
        "by": BY,
        "data": data,
    }
    return command_of(parse_line(json.dumps(raw)))


# -- a case told as a story: each command recorded after the one before --------------------


def state(case: Case) -> dict[str, Any]:
    return copy.deepcopy({k: v for k, v in vars(case).items() if k != "_pending_events"})


class Story:
    """One case, driven through ``execute`` as the importer and the API drive it.

    Each command is recorded an hour after the one before; a meeting no earlier than the
    evening of its day (a meeting is recorded after it was held).
    """

    def __init__(
        self,
        rule_set: RuleSet = V2,
        *,
        programme: Programme = IJH,
        birth_date: date | None = MINOR,
        requested_by: Party = REQUESTER,
        requested_at: datetime = REQUESTED_AT,
    ) -> None:
        self.v2_from = V2_FROM[rule_set]
        self.at = requested_at
        made = execute(
            None, request(programme, birth_date, requested_by), self.at, BY, self.v2_from
        )
        self.case = made
        assert made.rule_set is rule_set
        assert [type(e) for e in made.collect_events()] == [Case.Requested]

    def _when(self, command: Command, at: datetime | None) -> datetime:
        if at is not None:
            return at
        when = self.at + timedelta(hours=1)
        if isinstance(command, HoldMeeting):
            when = max(when, datetime.combine(command.held_on, time(18), BRUSSELS))
        return when

    def ok(self, command: Command, at: datetime | None = None) -> Case.Event:
        """The command is allowed: exactly one event, one version more."""
        when = self._when(command, at)
        version = self.case.version
        execute(self.case, command, when, BY, self.v2_from)
        (event,) = self.case.collect_events()
        assert isinstance(event, Case.Event)
        assert self.case.version == event.originator_version == version + 1
        self.at = max(self.at, when)
        return event

    def then(self, *commands: Command) -> Story:
        for command in commands:
            self.ok(command)
        return self

    def no(
        self,
        command: Command,
        error: type[CaseRuleBroken],
        says: str = "",
        at: datetime | None = None,
    ) -> CaseRuleBroken:
        """The command is refused by ``error``, naming its rule and the case's rule set,
        and nothing of it is recorded."""
        when = self._when(command, at)
        before, version = state(self.case), self.case.version
        with pytest.raises(CaseRuleBroken) as raised:
            execute(self.case, command, when, BY, self.v2_from)
        broken = raised.value
        assert type(broken) is error, broken
        assert broken.rule == RULES[error]
        assert broken.rule_set == self.case.rule_set.value
        assert says in broken.message, broken.message
        assert type(broken).__name__ not in broken.message
        assert list(self.case.collect_events()) == []
        assert self.case.version == version
        assert state(self.case) == before
        return broken

    def judged(self, command: Command, verdict: Verdict, says: str = "") -> None:
        """Allowed when ``verdict`` is ``None``, else refused by it."""
        if verdict is None:
            self.ok(command)
        else:
            self.no(command, verdict, says)


def both(v1: Verdict, v2: Verdict) -> Any:
    """Parameters (rule set, verdict) for a situation the two rule sets judge differently."""
    return pytest.mark.parametrize(
        ("rule_set", "verdict"),
        [(V1, v1), (V2, v2)],
        ids=[
            f"v1-{'allows' if v1 is None else 'refuses'}",
            f"v2-{'allows' if v2 is None else 'refuses'}",
        ],
    )


def ready(rule_set: RuleSet = V2, **request_facts: Any) -> Story:
    """The client consented and a chair was appointed: a meeting can be held."""
    return Story(rule_set, **request_facts).then(consent(), appoint())


def met(rule_set: RuleSet = V2, **request_facts: Any) -> Story:
    """Meeting 1 was held, the attendance of the client and the parents known."""
    return ready(rule_set, **request_facts).then(hold())


# -- the rule set is fixed by the request -----------------------------------------------------


@pytest.mark.parametrize(
    ("requested_at", "rule_set"),
    [
        (datetime(2025, 12, 31, 23, 59, 59, tzinfo=BRUSSELS), V1),
        (datetime(2026, 1, 1, 0, 0, tzinfo=BRUSSELS), V2),
        # The same instant as 2026-01-01T00:30 in Brussels, written in UTC.
        (datetime(2025, 12, 31, 23, 30, tzinfo=UTC), V2),
        (datetime(2015, 2, 3, 10, 0, tzinfo=timezone(timedelta(hours=1))), V1),
    ],
    ids=["the-last-second-before", "the-effective-instant", "same-instant-in-utc", "2015"],
)
def test_a_case_keeps_the_rule_set_in_force_at_its_request(
    requested_at: datetime, rule_set: RuleSet
) -> None:
    case = execute(None, request(), requested_at, BY)
    (event,) = case.collect_events()
    assert isinstance(event, Case.Requested)
    assert (case.rule_set, event.rule_set) == (rule_set, rule_set.value)


def test_a_v1_case_keeps_the_v1_rules_for_recordings_after_the_effective_instant() -> None:
    v2_from = datetime(2026, 2, 10, tzinfo=BRUSSELS)  # between the request and the meeting
    case = execute(None, request(birth_date=ADULT), REQUESTED_AT, BY, v2_from)
    for command in (consent(PARENT, Role.PARENT), appoint()):
        execute(case, command, REQUESTED_AT + timedelta(days=1), BY, v2_from)
    # v1: a parent's consent is enough, even for an adult client.
    execute(case, hold(), datetime(2026, 3, 1, tzinfo=BRUSSELS), BY, v2_from)
    assert (case.rule_set, sorted(case.meetings)) == (V1, [1])


def test_a_refused_request_names_the_rule_set_in_force() -> None:
    for rule_set in (V1, V2):
        with pytest.raises(CaseRuleBroken) as raised:
            execute(None, request(birth_date=date(1990, 1, 1)), REQUESTED_AT, BY, V2_FROM[rule_set])
        assert type(raised.value) is ClientTooOld
        assert (raised.value.rule, raised.value.rule_set) == ("client-age", rule_set.value)


@both(v1=None, v2=ClientTooOld)
def test_the_client_age_counts_on_the_request_date_in_brussels(
    rule_set: RuleSet, verdict: Verdict
) -> None:
    # 2026-03-01T23:30 in UTC is 2026-03-02 in Brussels, the client's 26th birthday; v1 reads
    # the date as written in `at`.
    at = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    command = request(birth_date=date(2000, 3, 2))
    if verdict is None:
        assert execute(None, command, at, BY, V2_FROM[rule_set]).rule_set is rule_set
        return
    with pytest.raises(CaseRuleBroken) as raised:
        execute(None, command, at, BY, V2_FROM[rule_set])
    assert (type(raised.value), raised.value.rule_set) == (verdict, rule_set.value)
    assert "26 on the request date 2026-03-02" in raised.value.message


@both(v1=None, v2=MeetingBeforeRequest)
def test_the_request_date_is_the_date_in_brussels(rule_set: RuleSet, verdict: Verdict) -> None:
    # Requested at 23:30 UTC on 1 March: 2 March in Brussels; v1 reads the date as written.
    story = Story(rule_set, requested_at=datetime(2026, 3, 1, 23, 30, tzinfo=UTC))
    story.then(consent(), appoint())
    story.judged(hold(date(2026, 3, 1)), verdict, "before the request of 2026-03-02")


# -- requesters and parties: roles of contract v2 ---------------------------------------------


@pytest.mark.parametrize("rule_set", [V1, V2])
@pytest.mark.parametrize(
    ("programme", "role", "verdict"),
    [
        (LCO, Role.RESIDENT, None),
        (IJH, Role.RESIDENT, RequesterRoleNotAllowed),
        (IJH, Role.SERVICE, None),
        (LCO, Role.SERVICE, None),
        (LCO, Role.CLIENT, None),
        (IJH, Role.LEGAL_REPRESENTATIVE, None),
        (LCO, Role.NETWORK, None),
    ],
    ids=[
        "resident-lco",
        "resident-ijh",
        "service-ijh",
        "service-lco",
        "client-lco",
        "legal-representative-ijh",
        "network-lco",
    ],
)
def test_who_may_request_a_consultation(
    rule_set: RuleSet, programme: Programme, role: Role, verdict: Verdict
) -> None:
    command = request(programme, requested_by=Party("aanvrager-1", role))
    if verdict is None:
        case = execute(None, command, REQUESTED_AT, BY, V2_FROM[rule_set])
        assert (case.rule_set, case.programme) == (rule_set, programme)
        return
    with pytest.raises(CaseRuleBroken) as raised:
        execute(None, command, REQUESTED_AT, BY, V2_FROM[rule_set])
    assert type(raised.value) is verdict
    assert (raised.value.rule, raised.value.rule_set) == ("requester-role", rule_set.value)
    assert "lokaal cliëntoverleg" in raised.value.message


def test_a_resident_requests_a_local_consultation_as_a_stream_line_says() -> None:
    data = {
        "programme": "lokaal_clientoverleg",
        "region": "Limburg",
        "requested_by": {"ref": "inwoner-1", "role": "resident"},
        "channel": "telefoon",
        "client": {"ref": CLIENT, "birth_date": None},
        "question": "Mijn buurman raakt de weg kwijt",
        "municipality": "Genk",
        "goal": "Thuis blijven wonen",
    }
    case = execute(None, from_line("Requested", data), REQUESTED_AT, BY)
    assert (case.rule_set, case.programme, case.municipality) == (V2, LCO, "Genk")
    in_ijh = from_line("Requested", {**data, "programme": "integrale_jeugdhulp"})
    with pytest.raises(RequesterRoleNotAllowed) as raised:
        execute(None, in_ijh, REQUESTED_AT, BY)
    assert raised.value.rule_set == "v2"


@pytest.mark.parametrize("rule_set", [V1, V2])
@pytest.mark.parametrize("role", [Role.SERVICE, Role.RESIDENT])
def test_a_service_or_resident_is_no_consent_party(rule_set: RuleSet, role: Role) -> None:
    story = Story(rule_set, programme=LCO)
    story.no(consent("dienst-1", role), RequesterRoleNotAllowed, "is not a party of it")


@pytest.mark.parametrize("role", ["service", "resident"])
def test_a_stream_line_with_a_service_or_resident_party_is_not_a_valid_line(role: str) -> None:
    with pytest.raises(ValidationError, match="is not a party of it"):
        from_line("ConsentGiven", {"party": {"ref": "dienst-1", "role": role}})


@pytest.mark.parametrize("role", [Role.SERVICE, Role.RESIDENT])
def test_a_service_or_resident_is_not_invited_as_a_party(role: Role) -> None:
    story = ready()
    story.no(plan(invited=(Invitee("dienst-1", role),)), RequesterRoleNotAllowed)


# -- consent-required -----------------------------------------------------------------------

CONSENTS: dict[str, tuple[dict[str, Any], list[Command], Verdict, Verdict]] = {
    # name: (the request's facts, the consents, v1's verdict, v2's verdict)
    "client-as-youth": ({}, [consent(CLIENT, Role.YOUTH)], None, None),
    "client-as-client": ({}, [consent(CLIENT, Role.CLIENT)], None, None),
    "client-ref-in-any-role": ({}, [consent(CLIENT, Role.TRUSTED_PERSON)], ConsentRequired, None),
    "a-sibling-not-the-client": ({}, [consent(SIBLING, Role.YOUTH)], None, ConsentRequired),
    "legal-representative-of-a-minor": (
        {},
        [consent(GUARDIAN, Role.LEGAL_REPRESENTATIVE)],
        None,
        None,
    ),
    "legal-representative-of-an-adult-lco": (
        {"programme": LCO, "birth_date": date(1950, 1, 1)},
        [consent(GUARDIAN, Role.LEGAL_REPRESENTATIVE)],
        None,
        None,
    ),
    "parent-of-a-minor-ijh": ({}, [consent(PARENT, Role.PARENT)], None, None),
    "parent-birth-unknown-ijh": (
        {"birth_date": None},
        [consent(PARENT, Role.PARENT)],
        None,
        None,
    ),
    "parent-of-an-adult-ijh": (
        {"birth_date": ADULT},
        [consent(PARENT, Role.PARENT)],
        None,
        ConsentRequired,
    ),
    "parent-of-a-minor-lco": (
        {"programme": LCO},
        [consent(PARENT, Role.PARENT)],
        None,
        ConsentRequired,
    ),
    "parent-birth-unknown-lco": (
        {"programme": LCO, "birth_date": None},
        [consent(PARENT, Role.PARENT)],
        None,
        ConsentRequired,
    ),
    "adult-lco-client-alone": (
        {"programme": LCO, "birth_date": date(1948, 6, 1)},
        [consent(CLIENT, Role.CLIENT)],
        None,
        None,
    ),
    "lco-client-of-unknown-age-alone": (
        {"programme": LCO, "birth_date": None},
        [consent(CLIENT, Role.CLIENT)],
        None,
        None,
    ),
    "trusted-person-only": (
        {},
        [consent(TRUSTED, Role.TRUSTED_PERSON)],
        ConsentRequired,
        ConsentRequired,
    ),
    "network-only": (
        {"programme": LCO},
        [consent(AUNT, Role.NETWORK)],
        ConsentRequired,
        ConsentRequired,
    ),
    "professional-only": (
        {},
        [consent(STRANGER, Role.PROFESSIONAL)],
        ConsentRequired,
        ConsentRequired,
    ),
    "support-figure-only": (
        {},
        [consent("steunfiguur-1", Role.SUPPORT_FIGURE)],
        ConsentRequired,
        ConsentRequired,
    ),
    "nobody": ({}, [], ConsentRequired, ConsentRequired),
    "the-young-person-withdrew-a-parent-consents": (
        {},
        [consent(CLIENT), consent(PARENT, Role.PARENT), withdraw(CLIENT)],
        None,
        ConsentRequired,
    ),
    "a-parent-withdrew-the-minor-consents-ijh": (
        {},
        [consent(PARENT, Role.PARENT), withdraw(PARENT, Role.PARENT), consent(CLIENT)],
        None,
        ConsentRequired,
    ),
    "a-parent-withdrew-the-minor-consents-lco": (
        {"programme": LCO},
        [consent(PARENT, Role.PARENT), withdraw(PARENT, Role.PARENT), consent(CLIENT)],
        None,
        ConsentRequired,
    ),
    "a-parent-withdrew-the-adult-consents": (
        {"birth_date": ADULT},
        [consent(PARENT, Role.PARENT), withdraw(PARENT, Role.PARENT), consent(CLIENT)],
        None,
        None,
    ),
    "a-legal-representative-withdrew-the-adult-consents": (
        {"programme": LCO, "birth_date": date(1950, 1, 1)},
        [
            consent(GUARDIAN, Role.LEGAL_REPRESENTATIVE),
            withdraw(GUARDIAN, Role.LEGAL_REPRESENTATIVE),
            consent(CLIENT, Role.CLIENT),
        ],
        None,
        ConsentRequired,
    ),
    "a-trusted-person-withdrew-the-client-consents": (
        {},
        [consent(TRUSTED, Role.TRUSTED_PERSON), withdraw(TRUSTED, Role.TRUSTED_PERSON), consent()],
        None,
        None,
    ),
    "the-client-withdrew-and-consented-again": (
        {},
        [consent(CLIENT), withdraw(CLIENT), consent(CLIENT, Role.CLIENT)],
        None,
        None,
    ),
    "one-of-two-parents-withdrew": (
        {},
        [
            consent(PARENT, Role.PARENT),
            consent(OTHER_PARENT, Role.PARENT),
            withdraw(OTHER_PARENT, Role.PARENT),
        ],
        None,
        ConsentRequired,
    ),
}


@pytest.mark.parametrize("rule_set", [V1, V2])
@pytest.mark.parametrize(
    ("facts", "consents", "v1", "v2"), CONSENTS.values(), ids=list(CONSENTS.keys())
)
def test_whose_consent_opens_the_way_to_a_meeting(
    rule_set: RuleSet,
    facts: dict[str, Any],
    consents: list[Command],
    v1: Verdict,
    v2: Verdict,
) -> None:
    story = Story(rule_set, **facts).then(*consents, appoint())
    story.judged(hold(), v1 if rule_set is V1 else v2)
    if rule_set is V2 and v2 is None:
        assert sorted(story.case.meetings) == [1]


def test_a_v2_refusal_says_whose_consent_is_missing_or_withdrawn() -> None:
    says = "standing consent of the client, a legal representative or a parent"
    Story(V2).then(appoint()).no(hold(), ConsentRequired, says)
    adult = Story(V2, programme=LCO, birth_date=date(1950, 1, 1)).then(appoint())
    broken = adult.no(hold(), ConsentRequired, "standing consent of the client")
    assert "parent" not in broken.message  # an adult's parent has no say of their own
    withdrawn = Story(V2).then(consent(PARENT, Role.PARENT), consent(), withdraw(), appoint())
    withdrawn.no(hold(), ConsentRequired, f"everyone's agreement: {CLIENT} withdrew")


def test_consent_stands_by_the_last_word_before_the_meeting() -> None:
    story = ready(V2).then(hold(), withdraw(CLIENT))
    story.no(hold(LATER_ON), ConsentRequired)
    story.ok(consent(CLIENT, Role.CLIENT))
    story.ok(hold(LATER_ON))


@pytest.mark.parametrize("rule_set", [V1, V2])
def test_the_18th_birthday_ends_what_a_parents_consent_alone_allows(rule_set: RuleSet) -> None:
    story = Story(rule_set, birth_date=TURNS_18).then(consent(PARENT, Role.PARENT), appoint())
    story.ok(hold(date(2026, 2, 28)))  # the day before the 18th birthday: a minor
    story.judged(hold(date(2026, 3, 1)), None if rule_set is V1 else ConsentRequired)


def test_after_the_18th_birthday_a_parents_withdrawal_no_longer_stops_a_meeting() -> None:
    story = Story(V2, birth_date=TURNS_18)
    story.then(consent(PARENT, Role.PARENT), withdraw(PARENT, Role.PARENT), consent(), appoint())
    story.no(hold(date(2026, 2, 28)), ConsentRequired, f"{PARENT} withdrew")
    story.ok(hold(date(2026, 3, 1)))


@both(v1=None, v2=ConsentAlreadyStanding)
def test_a_party_consenting_twice_under_two_roles(rule_set: RuleSet, verdict: Verdict) -> None:
    story = Story(rule_set).then(consent(PARENT, Role.PARENT))
    story.judged(consent(PARENT, Role.LEGAL_REPRESENTATIVE), verdict, f"{PARENT} (legal")


@both(v1=ConsentNotStanding, v2=None)
def test_a_consent_is_withdrawn_by_the_party_whatever_role_it_names(
    rule_set: RuleSet, verdict: Verdict
) -> None:
    story = Story(rule_set).then(consent(CLIENT, Role.YOUTH))
    story.judged(withdraw(CLIENT, Role.CLIENT), verdict)


def test_under_v1_a_party_in_two_roles_keeps_the_consent_it_did_not_withdraw() -> None:
    story = Story(V1, birth_date=ADULT)
    story.then(consent(PARENT, Role.PARENT), consent(PARENT, Role.LEGAL_REPRESENTATIVE))
    story.then(withdraw(PARENT, Role.PARENT), appoint())
    story.ok(hold())


@pytest.mark.parametrize(
    ("facts", "party"),
    [({}, Party(CLIENT, Role.CLIENT)), ({"programme": LCO}, Party(GUARDIAN, Role.PARENT))],
    ids=["client-counts-as-youth", "parent-in-lco"],
)
def test_under_v1_the_new_roles_count_as_youth_and_parent(
    facts: dict[str, Any], party: Party
) -> None:
    story = Story(V1, **facts).then(GiveConsent(CASE_ID, party), appoint())
    story.ok(hold())
    legal = Story(V1, **facts).then(consent(GUARDIAN, Role.LEGAL_REPRESENTATIVE), appoint())
    legal.ok(hold())


def test_consent_from_stream_lines_by_the_clients_own_role() -> None:
    story = Story(V2, programme=LCO, birth_date=date(1951, 4, 2))
    story.ok(from_line("ConsentGiven", {"party": {"ref": CLIENT, "role": "client"}}))
    story.ok(from_line("ChairAppointed", {"chair": CHAIR}))
    held = {
        "meeting": 1,
        "held_on": FIRST_ON.isoformat(),
        "place": "Thuis",
        "attendance": {
            "youth": None,
            "parents": None,
            "trusted_person": None,
            "professionals": ["huisarts-1"],
            "client": True,
            "support_figure": True,
            "network": 2,
        },
    }
    event = story.ok(from_line("MeetingHeld", held))
    assert isinstance(event, Case.MeetingHeld)
    assert event.attendance_extra == {"client": True, "support_figure": True, "network": 2}
    story.ok(from_line("RegistrationCompleted", {"meeting": 1}))
    story.ok(
        from_line("ConsentWithdrawn", {"party": {"ref": CLIENT, "role": "client"}, "reason": None})
    )
    story.no(from_line("MeetingHeld", {**held, "meeting": 2}), ConsentRequired, "withdrew")


# -- attendance-known and the client's presence ----------------------------------------------

ATTENDANCES: dict[str, tuple[dict[str, Any], Attendance, Verdict, Verdict]] = {
    # name: (the request's facts, the meeting's attendance, v1's verdict, v2's verdict)
    "ijh-minor-both-known": ({}, attendance(True, False), None, None),
    "ijh-minor-client-given-as-client": (
        {},
        attendance(None, False, client=False),
        None,
        None,
    ),
    "ijh-minor-parents-unknown": ({}, attendance(True, None), AttendanceUnknown, AttendanceUnknown),
    "ijh-birth-unknown-parents-unknown": (
        {"birth_date": None},
        attendance(True, None),
        AttendanceUnknown,
        AttendanceUnknown,
    ),
    "ijh-adult-parents-unknown": (
        {"birth_date": ADULT},
        attendance(True, None),
        AttendanceUnknown,
        None,
    ),
    "ijh-client-unknown": ({}, attendance(None, True), AttendanceUnknown, AttendanceUnknown),
    "lco-parents-unknown": (
        {"programme": LCO, "birth_date": date(1950, 1, 1)},
        attendance(False, None),
        AttendanceUnknown,
        None,
    ),
    "lco-minor-parents-unknown": (
        {"programme": LCO},
        attendance(True, None),
        AttendanceUnknown,
        None,
    ),
    "lco-client-given-as-client": (
        {"programme": LCO, "birth_date": None},
        attendance(None, False, client=True),
        None,  # a v2 key in a v1 case: `client` stands for the young person
        None,
    ),
    "lco-youth-taken-as-the-client": (
        {"programme": LCO, "birth_date": None},
        attendance(True, False),
        None,
        None,
    ),
    "lco-client-unknown": (
        {"programme": LCO, "birth_date": None},
        attendance(None, True, support_figure=True),
        AttendanceUnknown,
        AttendanceUnknown,
    ),
}


@pytest.mark.parametrize("rule_set", [V1, V2])
@pytest.mark.parametrize(
    ("facts", "present", "v1", "v2"), ATTENDANCES.values(), ids=list(ATTENDANCES.keys())
)
def test_registration_needs_the_clients_presence_and_for_a_minor_the_parents(
    rule_set: RuleSet, facts: dict[str, Any], present: Attendance, v1: Verdict, v2: Verdict
) -> None:
    story = Story(rule_set, **facts).then(consent(CLIENT, Role.CLIENT), appoint())
    story.ok(hold(present=present))
    story.judged(register(), v1 if rule_set is V1 else v2, "to be known (present or not)")
    assert story.case.meetings[1].registered is ((v1 if rule_set is V1 else v2) is None)


def test_a_v2_registration_refusal_names_whose_attendance_is_unknown() -> None:
    story = ready(V2).then(hold(present=attendance(None, None)))
    story.no(register(), AttendanceUnknown, "the client and the parents to be known")


def test_after_the_18th_birthday_the_parents_attendance_may_stay_unknown() -> None:
    story = ready(V2, birth_date=TURNS_18)
    story.then(hold(date(2026, 2, 28), present=attendance(True, None)))
    story.then(hold(date(2026, 3, 1), present=attendance(True, None)))
    story.no(register(1), AttendanceUnknown, "the parents to be known")
    story.ok(register(2))


@pytest.mark.parametrize("rule_set", [V1, V2])
def test_in_ijh_the_young_person_is_given_as_youth_or_client_not_both(rule_set: RuleSet) -> None:
    story = ready(rule_set)
    twice = attendance(True, True, client=True)
    story.no(hold(present=twice), ClientAttendanceTwice, "youth or as client, not both")
    story.ok(hold(present=attendance(None, True, client=True)))
    story.no(correct(1, twice), ClientAttendanceTwice)
    story.ok(correct(1, attendance(False, True)))


@pytest.mark.parametrize("rule_set", [V1, V2])
def test_in_lco_youth_and_client_may_both_be_given(rule_set: RuleSet) -> None:
    story = ready(rule_set, programme=LCO)
    story.ok(hold(present=attendance(False, None, client=True)))


# -- chair-neutral ------------------------------------------------------------------------------


@pytest.mark.parametrize("rule_set", [V1, V2])
@pytest.mark.parametrize(
    ("before", "chair", "says"),
    [
        ([], CLIENT, "is a party"),
        ([], REQUESTER.ref, "is a party"),
        ([consent(PARENT, Role.PARENT)], PARENT, "is a party"),
        ([consent(CLIENT), appoint(), hold()], PRESENT[1], "professional"),
        ([designate()], SPILFIGUUR, "professional"),
    ],
    ids=["the-client", "the-requester", "a-party", "present-at-a-meeting", "the-coordinator"],
)
def test_the_chair_is_neutral_at_appointment(
    rule_set: RuleSet, before: list[Command], chair: str, says: str
) -> None:
    story = Story(rule_set).then(*before)
    broken = story.no(appoint(chair), ChairNotNeutral, f"The chair must be neutral: {chair} ")
    assert says in broken.message


@pytest.mark.parametrize(
    "role", [Role.NETWORK, Role.PROFESSIONAL, Role.TRUSTED_PERSON], ids=lambda r: r.value
)
def test_a_person_invited_to_a_meeting_is_not_appointed_chair(role: Role) -> None:
    # v1 has no invitations: how a v1 case weighs one is not v1's to say.
    story = ready(V2).then(plan(invited=(Invitee("genodigde-1", role),)))
    story.no(appoint("genodigde-1"), ChairNotNeutral, "genodigde-1 is")


@both(v1=None, v2=ChairNotNeutral)
def test_the_chair_in_office_is_not_named_later_as_a_professional_present(
    rule_set: RuleSet, verdict: Verdict
) -> None:
    story = ready(rule_set)
    story.judged(hold(present=attendance(present=(PRESENT[0], CHAIR))), verdict, "cannot be named")


@both(v1=None, v2=ChairNotNeutral)
def test_the_chair_in_office_is_not_named_later_as_a_party(
    rule_set: RuleSet, verdict: Verdict
) -> None:
    story = ready(rule_set)
    story.judged(consent(CHAIR, Role.TRUSTED_PERSON), verdict, "as a party")


@both(v1=None, v2=ChairNotNeutral)
def test_the_chair_in_office_is_not_invited(rule_set: RuleSet, verdict: Verdict) -> None:
    story = ready(rule_set)
    invitees = (Invitee(PRESENT[0], Role.PROFESSIONAL), Invitee(CHAIR, Role.PROFESSIONAL))
    story.judged(plan(invited=invitees), verdict, "as an invited person")


@both(v1=None, v2=ChairNotNeutral)
def test_the_chair_in_office_is_not_added_by_an_attendance_correction(
    rule_set: RuleSet, verdict: Verdict
) -> None:
    story = met(rule_set)
    story.judged(correct(1, attendance(present=(CHAIR,))), verdict, "a professional present")


@pytest.mark.parametrize("rule_set", [V1, V2])
def test_the_chair_in_office_is_never_the_coordinator(rule_set: RuleSet) -> None:
    story = met(rule_set)
    story.no(designate(CHAIR), CoordinatorIsChair, "cannot be the chair")
    story.no(workplan(coordinator=CHAIR), CoordinatorIsChair)
    story.ok(workplan())
    story.no(revise(coordinator=CHAIR), CoordinatorIsChair)


def test_a_former_chair_may_be_named_as_a_professional_present() -> None:
    story = ready(V2).then(appoint("voorzitter-2"))
    story.ok(hold(present=attendance(present=(CHAIR,))))


def test_a_professional_present_only_at_a_retracted_meeting_may_be_appointed_chair() -> None:
    # "ChairAppointed checks the appointee against the case's facts so far (retracted
    # meetings aside)"; a professional of the case is named in a *not retracted* meeting.
    story = ready(V2).then(hold(present=attendance(present=(STRANGER,))), retract(1))
    story.ok(appoint(STRANGER))


def test_a_professional_corrected_out_of_the_attendance_may_be_appointed_chair() -> None:
    # AttendanceCorrected "replaces that meeting's attendance everywhere".
    story = ready(V2).then(hold(present=attendance(present=(STRANGER,))))
    story.ok(correct(1, attendance(present=(PRESENT[0],))))
    story.ok(appoint(STRANGER))


# -- coordinator ------------------------------------------------------------------------------


@both(v1=CoordinatorNotPresent, v2=None)
def test_a_coordinator_designated_earlier_need_not_be_present(
    rule_set: RuleSet, verdict: Verdict
) -> None:
    story = ready(rule_set).then(designate(), hold())
    story.judged(workplan(coordinator=SPILFIGUUR), verdict, f"{SPILFIGUUR} was not")


@both(v1=CoordinatorNotPresent, v2=None)
def test_a_coordinator_present_at_an_earlier_meeting(rule_set: RuleSet, verdict: Verdict) -> None:
    story = met(rule_set).then(hold(LATER_ON, present=attendance(present=(STRANGER,))))
    story.judged(workplan(2, coordinator=PRESENT[0]), verdict)


@both(v1=CoordinatorNotPresent, v2=None)
def test_a_coordinator_invited_as_a_professional(rule_set: RuleSet, verdict: Verdict) -> None:
    invited = plan(invited=(Invitee(STRANGER, Role.PROFESSIONAL),))
    story = ready(rule_set).then(invited, hold(number=1))
    story.judged(workplan(coordinator=STRANGER), verdict)


@both(v1=CoordinatorNotPresent, v2=None)
def test_a_coordinator_who_requested_as_a_professional(rule_set: RuleSet, verdict: Verdict) -> None:
    story = met(rule_set)
    story.judged(workplan(coordinator=REQUESTER.ref), verdict)


@pytest.mark.parametrize(
    "before",
    [
        [],
        [plan(invited=(Invitee(STRANGER, Role.NETWORK),))],
        [consent(STRANGER, Role.TRUSTED_PERSON)],
    ],
    ids=["unknown-to-the-case", "invited-as-network", "a-trusted-person"],
)
@both(v1=CoordinatorNotPresent, v2=CoordinatorNotProfessional)
def test_a_coordinator_is_a_professional_of_the_case(
    rule_set: RuleSet, verdict: Verdict, before: list[Command]
) -> None:
    story = ready(rule_set).then(*before, hold(number=1))
    story.judged(workplan(coordinator=STRANGER), verdict, STRANGER)


def test_someone_named_only_in_an_agreement_is_no_coordinator_under_v2() -> None:
    story = met(V2)
    command = AgreeWorkplan(CASE_ID, 1, agreements(STRANGER), STRANGER, crisis_plan=False)
    story.no(command, CoordinatorNotProfessional, "must be a professional of the case")


def test_a_professional_present_only_at_a_retracted_meeting_is_no_coordinator() -> None:
    story = ready(V2).then(hold(present=attendance(present=(STRANGER,))), retract(1))
    story.then(hold(LATER_ON))
    story.no(workplan(2, coordinator=STRANGER), CoordinatorNotProfessional)


@both(v1=CoordinatorNotPresent, v2=None)
def test_a_revised_workplan_follows_the_coordinator_rule_of_its_set(
    rule_set: RuleSet, verdict: Verdict
) -> None:
    story = met(rule_set).then(workplan(), designate())
    story.judged(revise(coordinator=SPILFIGUUR), verdict)


# -- held-not-in-future ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("held_on", "at", "v2"),
    [
        (FIRST_ON, datetime(2026, 2, 16, 9, 0, tzinfo=BRUSSELS), None),
        (FIRST_ON, datetime(2026, 2, 15, 23, 30, tzinfo=UTC), None),  # 00:30 on the 16th
        (FIRST_ON, datetime(2026, 2, 16, 0, 30, tzinfo=timezone(timedelta(hours=2))), HeldInFuture),
        (FIRST_ON, datetime(2026, 2, 15, 20, 0, tzinfo=BRUSSELS), HeldInFuture),
        (date(2026, 6, 1), datetime(2026, 2, 15, 20, 0, tzinfo=BRUSSELS), HeldInFuture),
    ],
    ids=[
        "on-the-day",
        "on-the-day-in-brussels-written-in-utc",
        "the-day-before-in-brussels-written-ahead",
        "the-evening-before",
        "months-ahead",
    ],
)
@pytest.mark.parametrize("rule_set", [V1, V2])
def test_a_meeting_is_recorded_once_it_was_held(
    rule_set: RuleSet, held_on: date, at: datetime, v2: Verdict
) -> None:
    story = ready(rule_set)
    if rule_set is V1 or v2 is None:
        story.ok(hold(held_on), at=at)
        return
    story.no(hold(held_on), HeldInFuture, f"held on {held_on.isoformat()} cannot be", at=at)


# -- at-order -----------------------------------------------------------------------------------


def _closed(rule_set: RuleSet) -> Story:
    return met(rule_set).then(close())


AT_ORDER: dict[str, tuple[Any, Command]] = {
    "consent": (Story, consent()),
    "chair": (Story, appoint()),
    "meeting": (ready, hold(REQUESTED_ON)),
    "plan": (ready, plan()),
    "designation": (met, designate()),
    "retraction": (met, retract(1)),
    "reopening": (_closed, reopen()),
}


@pytest.mark.parametrize(("stage", "command"), AT_ORDER.values(), ids=list(AT_ORDER.keys()))
@both(v1=None, v2=AtOutOfOrder)
def test_at_never_goes_back_within_a_case(
    rule_set: RuleSet, verdict: Verdict, stage: Any, command: Command
) -> None:
    story: Story = stage(rule_set)
    earlier = story.at - timedelta(seconds=1)
    if verdict is None:
        story.ok(command, at=earlier)
        return
    story.no(command, AtOutOfOrder, "cannot be recorded earlier", at=earlier)


def test_the_same_instant_in_another_offset_is_not_going_back() -> None:
    story = Story(V2).then(consent())
    same = story.at.astimezone(timezone(timedelta(hours=-5)))
    story.ok(appoint(), at=same)
    story.ok(bottleneck(), at=same.astimezone(UTC))
    later_clock_earlier_instant = (story.at - timedelta(minutes=1)).astimezone(
        timezone(timedelta(hours=5))
    )
    story.no(close(), AtOutOfOrder, at=later_clock_earlier_instant)


# -- MeetingPlanned, and the numbering ---------------------------------------------------------


@pytest.mark.parametrize("rule_set", [V1, V2])
def test_a_meeting_is_planned_by_an_appointed_chair(rule_set: RuleSet) -> None:
    story = Story(rule_set).then(consent())
    story.no(plan(), ChairRequired, "needs an appointed chair")
    story.ok(appoint())
    event = story.ok(plan(on=REQUESTED_ON))
    assert isinstance(event, Case.MeetingPlanned)
    assert (event.meeting, story.case.plans[1].on) == (1, REQUESTED_ON)


@pytest.mark.parametrize("rule_set", [V1, V2])
def test_a_meeting_is_not_planned_before_the_request(rule_set: RuleSet) -> None:
    story = ready(rule_set)
    story.no(plan(on=REQUESTED_ON - timedelta(days=1)), MeetingBeforeRequest, "before the request")


@pytest.mark.parametrize("rule_set", [V1, V2])
def test_nobody_is_both_invited_and_not_invited(rule_set: RuleSet) -> None:
    story = ready(rule_set)
    invitees = (Invitee(PRESENT[0], Role.PROFESSIONAL), Invitee(AUNT, Role.NETWORK))
    conflict = plan(invited=invitees, not_invited=(STRANGER, PRESENT[0]))
    story.no(conflict, InviteeConflict, f"{PRESENT[0]} cannot be both invited and not invited")
    story.ok(plan(invited=invitees, not_invited=(STRANGER,)))
    assert story.case.plans[1].not_invited == frozenset({STRANGER})


def test_a_planned_meeting_is_re_planned_until_it_is_held() -> None:
    story = ready(V2).then(plan(on=FIRST_ON))
    story.ok(plan(1, on=LATER_ON, invited=(Invitee(AUNT, Role.NETWORK),)))
    assert story.case.plans[1].on == LATER_ON
    assert [i.ref for i in story.case.plans[1].invited] == [AUNT]
    assert story.case.numbering.next == 2
    story.ok(hold(LATER_ON, number=1))
    story.no(plan(1, on=LATER_ON), MeetingOutOfSequence, "not 1")


@pytest.mark.parametrize(
    ("before", "number", "says"),
    [([], 2, "number 1"), ([plan()], 3, "number 2"), ([hold()], 1, "number 2")],
    ids=["skipping-the-first", "skipping-one", "a-held-number"],
)
def test_a_plan_takes_the_next_number_or_a_planned_one(
    before: list[Command], number: int, says: str
) -> None:
    story = ready(V2).then(*before)
    story.no(plan(number), MeetingOutOfSequence, says)


def test_a_meeting_is_held_under_a_planned_number_or_the_next_number() -> None:
    story = ready(V2).then(plan(1, FIRST_ON), plan(2, LATER_ON))
    story.ok(hold(FIRST_ON, number=3))  # the next number, the plans stay open
    story.ok(hold(LATER_ON, number=2))
    story.ok(hold(LATER_ON, number=1))
    story.no(hold(LATER_ON, number=2), MeetingOutOfSequence, "The next meeting is number 4")
    story.ok(hold(LATER_ON))
    assert sorted(story.case.meetings) == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("before", "number", "says"),
    [
        ([], 2, "number 1, not 2"),
        ([hold()], 1, "number 2, not 1"),
        ([plan(1)], 3, "number 2 or a planned one (1), not 3"),
    ],
    ids=["skipping", "repeating", "neither-planned-nor-next"],
)
def test_a_meeting_number_out_of_sequence_is_refused(
    before: list[Command], number: int, says: str
) -> None:
    story = ready(V2).then(*before)
    story.no(hold(number=number), MeetingOutOfSequence, says)


@pytest.mark.parametrize("rule_set", [V1, V2])
def test_numbers_are_never_reused_after_a_retraction_or_a_cancellation(rule_set: RuleSet) -> None:
    story = met(rule_set).then(retract(1), plan(2, LATER_ON), cancel(2))
    story.no(hold(number=1), MeetingOutOfSequence, "The next meeting is number 3")
    story.no(plan(1), MeetingOutOfSequence, "next meeting number 3")
    story.no(hold(LATER_ON, number=4), MeetingOutOfSequence, "The next meeting is number 3")
    event = story.ok(hold(LATER_ON))  # the command without a number takes the next one
    assert isinstance(event, Case.MeetingHeld)
    assert event.meeting == 3
    assert story.case.numbering.next == 4


# -- MeetingCancelled -------------------------------------------------------------------------


def test_cancelling_a_planned_meeting_cancels_the_scheduled_follow_up() -> None:
    story = met(V2).then(workplan(), register(), follow_up(LATER_ON), plan(2, LATER_ON))
    assert story.case.follow_up_on == LATER_ON
    event = story.ok(cancel(2))
    assert isinstance(event, Case.MeetingCancelled)
    assert story.case.follow_up_on is None
    assert story.case.plans[2].cancelled is True
    assert story.case.numbering.next == 3


@pytest.mark.parametrize(
    ("before", "number", "says"),
    [
        ([], 1, "Meeting 1 was not planned"),
        ([hold()], 1, "Meeting 1 was not planned"),
        ([plan(1), hold(number=1)], 1, "Meeting 1 was held"),
        ([plan(1), cancel(1)], 1, "already cancelled"),
    ],
    ids=["never-planned", "held-without-a-plan", "planned-and-held", "already-cancelled"],
)
@pytest.mark.parametrize("rule_set", [V1, V2])
def test_only_a_planned_meeting_not_yet_held_is_cancelled(
    rule_set: RuleSet, before: list[Command], number: int, says: str
) -> None:
    story = ready(rule_set).then(*before)
    story.no(cancel(number), MeetingNotPlanned, says)


# -- PreparationRecorded -------------------------------------------------------------------


def test_a_preparation_is_for_a_planned_or_the_next_meeting_and_the_last_one_stands() -> None:
    story = ready(V2)
    story.ok(prepare(1))  # the next meeting, not planned yet
    story.then(plan(1), plan(2, LATER_ON))
    story.ok(prepare(1))
    event = story.ok(prepare(1))  # again
    assert isinstance(event, Case.PreparationRecorded)
    assert event.checklist == {"client_informed": True, "agenda_known": None}
    story.ok(prepare(3))  # the next number


@pytest.mark.parametrize(
    ("before", "number"),
    [([], 2), ([hold()], 1), ([plan(1), hold(number=1)], 1), ([plan(1)], 3)],
    ids=["beyond-the-next", "held", "planned-and-held", "beyond-a-plan"],
)
def test_a_preparation_of_another_meeting_is_refused(before: list[Command], number: int) -> None:
    story = ready(V2).then(*before)
    story.no(prepare(number), MeetingNotPlanned, "A preparation is for a planned meeting")


# -- CoordinatorDesignated -----------------------------------------------------------------------


@pytest.mark.parametrize("rule_set", [V1, V2])
def test_a_coordinator_is_designated_any_time_and_changes_no_workplan(rule_set: RuleSet) -> None:
    story = Story(rule_set)
    event = story.ok(designate(chosen_by_client=True))  # before any meeting, even a chair
    assert isinstance(event, Case.CoordinatorDesignated)
    story.then(consent(), appoint(), hold(), workplan(coordinator=PRESENT[0]))
    story.ok(designate("spilfiguur-2", chosen_by_client=False))  # replaced
    assert (story.case.coordinator, story.case.coordinator_chosen_by_client) == (
        "spilfiguur-2",
        False,
    )
    assert story.case.meetings[1].coordinator == PRESENT[0]
    assert {SPILFIGUUR, "spilfiguur-2"} <= set(story.case.professionals)


@pytest.mark.parametrize("rule_set", [V1, V2])
def test_no_designation_in_a_closed_case(rule_set: RuleSet) -> None:
    _closed(rule_set).no(designate(), CaseEnded, "The case is closed")


# -- AttendanceCorrected -----------------------------------------------------------------------


def test_a_correction_replaces_the_attendance_for_later_rules() -> None:
    story = ready(V2).then(hold(present=attendance(True, None)))
    story.no(register(), AttendanceUnknown)
    event = story.ok(correct(1, attendance(True, False, present=(PRESENT[1],))))
    assert isinstance(event, Case.AttendanceCorrected)
    assert story.case.meetings[1].attendance.parents is False
    story.ok(register())


def test_a_correction_keeps_a_registered_meetings_attendance_known() -> None:
    story = met(V2).then(register())
    story.no(correct(1, attendance(True, None)), AttendanceUnknown)
    story.ok(correct(1, attendance(False, False)))


@pytest.mark.parametrize(
    ("before", "number", "says"),
    [([], 1, "has not been held"), ([hold(), retract(1)], 1, "was retracted")],
    ids=["not-held", "retracted"],
)
@pytest.mark.parametrize("rule_set", [V1, V2])
def test_only_a_held_meeting_is_corrected(
    rule_set: RuleSet, before: list[Command], number: int, says: str
) -> None:
    story = ready(rule_set).then(*before)
    story.no(correct(number, attendance()), MeetingNotHeld, says)


# -- WorkplanRevised --------------------------------------------------------------------------


@pytest.mark.parametrize("rule_set", [V1, V2])
def test_a_workplan_is_revised_also_after_registration(rule_set: RuleSet) -> None:
    story = met(rule_set).then(workplan(coordinator=PRESENT[0]), register())
    story.no(workplan(), WorkplanAlreadyAgreed, "revise it to change it")
    event = story.ok(revise(coordinator=PRESENT[1]))
    assert isinstance(event, Case.WorkplanRevised)
    assert story.case.meetings[1].coordinator == PRESENT[1]
    story.ok(revise(coordinator=None))
    assert story.case.meetings[1].coordinator is None


@pytest.mark.parametrize(
    ("before", "command", "error", "says"),
    [
        ([hold()], revise(), WorkplanMissing, "has no workplan to revise"),
        ([], revise(), MeetingNotHeld, "has not been held"),
        ([hold(), workplan(), retract(1)], revise(), MeetingNotHeld, "was retracted"),
        ([hold(), workplan()], revise(agreed=[]), WorkplanWithoutAgreements, "at least one"),
    ],
    ids=["no-workplan", "no-meeting", "retracted", "no-agreements"],
)
@pytest.mark.parametrize("rule_set", [V1, V2])
def test_only_an_existing_workplan_is_revised(
    rule_set: RuleSet,
    before: list[Command],
    command: Command,
    error: type[CaseRuleBroken],
    says: str,
) -> None:
    ready(rule_set).then(*before).no(command, error, says)


# -- MeetingRetracted ---------------------------------------------------------------------------


@pytest.mark.parametrize("rule_set", [V1, V2])
def test_a_retracted_meeting_counts_nowhere_for_later_rules(rule_set: RuleSet) -> None:
    story = met(rule_set).then(workplan())
    event = story.ok(retract(1))
    assert isinstance(event, Case.MeetingRetracted)
    assert story.case.meetings[1].retracted is True
    story.no(retract(1), MeetingNotHeld, "was retracted")
    story.no(register(1), MeetingNotHeld, "was retracted")
    story.no(workplan(1), MeetingNotHeld, "was retracted")
    story.no(follow_up(LATER_ON), FollowUpWithoutMeeting)
    story.ok(decline())  # no meeting was held, after all


@pytest.mark.parametrize("rule_set", [V1, V2])
def test_a_follow_up_is_dated_from_the_last_meeting_not_retracted(rule_set: RuleSet) -> None:
    story = met(rule_set).then(hold(LATER_ON))
    story.no(follow_up(date(2026, 3, 1)), FollowUpBeforeLastMeeting, "number 2")
    story.ok(retract(2))
    story.ok(follow_up(date(2026, 3, 1)))
    story.no(decline(), DeclineAfterMeeting)


@pytest.mark.parametrize("rule_set", [V1, V2])
def test_only_a_held_meeting_is_retracted(rule_set: RuleSet) -> None:
    ready(rule_set).then(plan()).no(retract(1), MeetingNotHeld, "Meeting 1 has not been held")


# -- CaseReopened, and what may follow the end --------------------------------------------------


@pytest.mark.parametrize("rule_set", [V1, V2])
def test_a_closed_case_is_reopened_and_its_meetings_continue_their_numbering(
    rule_set: RuleSet,
) -> None:
    story = met(rule_set).then(close())
    story.no(hold(LATER_ON), CaseEnded, "The case is closed")
    assert isinstance(story.ok(reopen()), Case.CaseReopened)
    assert story.case.ended is None
    story.no(hold(LATER_ON, number=1), MeetingOutOfSequence, "number 2")
    event = story.ok(hold(LATER_ON))
    assert isinstance(event, Case.MeetingHeld)
    assert event.meeting == 2
    story.then(close(), reopen())


@pytest.mark.parametrize(
    ("stage", "says"),
    [
        (lambda rs: ready(rs).then(decline()), "this case is declined"),
        (met, "this case is open"),
        (lambda rs: met(rs).then(close(), reopen()), "this case is open"),
    ],
    ids=["declined", "open", "already-reopened"],
)
@pytest.mark.parametrize("rule_set", [V1, V2])
def test_only_a_closed_case_is_reopened(rule_set: RuleSet, stage: Any, says: str) -> None:
    stage(rule_set).no(reopen(), ReopenWithoutClose, says)


def _declined(rule_set: RuleSet) -> Story:
    return ready(rule_set).then(decline())


@pytest.mark.parametrize("ending", [_closed, _declined], ids=["closed", "declined"])
@both(v1=CaseEnded, v2=None)
def test_a_bottleneck_may_follow_the_end_of_a_case(
    rule_set: RuleSet, verdict: Verdict, ending: Any
) -> None:
    story: Story = ending(rule_set)
    story.judged(bottleneck(), verdict, "nothing more can be recorded")


@pytest.mark.parametrize(
    "command",
    [consent(PARENT, Role.PARENT), appoint("voorzitter-2"), plan(2), prepare(2), retract(1)],
    ids=["consent", "chair", "plan", "preparation", "retraction"],
)
@pytest.mark.parametrize("rule_set", [V1, V2])
def test_nothing_else_follows_a_closed_case(rule_set: RuleSet, command: Command) -> None:
    _closed(rule_set).no(command, CaseEnded, "The case is closed")


# -- one story through every new event type, from stream lines ------------------------------


def test_a_v2_case_told_in_stream_lines() -> None:
    story = Story(V2)
    designated = {"coordinator": SPILFIGUUR, "chosen_by_client": True}
    story.ok(from_line("CoordinatorDesignated", designated))
    story.ok(from_line("ConsentGiven", {"party": {"ref": CLIENT, "role": "client"}}))
    story.ok(from_line("ChairAppointed", {"chair": CHAIR}))
    planned = {
        "meeting": 1,
        "on": FIRST_ON.isoformat(),
        "place": None,
        "goal": "Een plan voor school",
        "invited": [{"ref": PRESENT[0], "role": "professional"}, {"ref": AUNT, "role": "network"}],
        "not_invited": [STRANGER],
    }
    story.no(
        from_line("MeetingPlanned", {**planned, "not_invited": [AUNT]}),
        InviteeConflict,
        f"{AUNT} cannot be both",
    )
    story.ok(from_line("MeetingPlanned", planned))
    story.ok(from_line("PreparationRecorded", {"meeting": 1, "checklist": {"agenda_known": True}}))
    held = {
        "meeting": 1,
        "held_on": FIRST_ON.isoformat(),
        "place": "CLB",
        "attendance": {
            "youth": None,
            "parents": True,
            "trusted_person": None,
            "professionals": [PRESENT[0], STRANGER],
            "client": True,
        },
    }
    story.ok(from_line("MeetingHeld", held))
    assert story.case.flagged_meetings() == {1: [STRANGER]}  # accepted, and flagged
    workplan_line = {
        "meeting": 1,
        "agreements": [{"who": PRESENT[0], "what": "Belt de school", "due": None, "domain": None}],
        "coordinator": SPILFIGUUR,
        "crisis_plan": {"steps": ["Bel de spilfiguur"]},
    }
    story.ok(from_line("WorkplanAgreed", workplan_line))
    story.ok(from_line("RegistrationCompleted", {"meeting": 1}))
    story.ok(from_line("WorkplanRevised", {**workplan_line, "coordinator": None, "reason": "x"}))
    corrected = {"meeting": 1, "attendance": {**held["attendance"], "client": False}, "reason": "x"}
    story.ok(from_line("AttendanceCorrected", corrected))
    story.ok(from_line("MeetingPlanned", {**planned, "meeting": 2, "on": LATER_ON.isoformat()}))
    story.ok(from_line("FollowUpScheduled", {"on": LATER_ON.isoformat()}))
    story.ok(from_line("MeetingCancelled", {"meeting": 2, "reason": "Ziek"}))
    assert story.case.follow_up_on is None
    story.no(from_line("MeetingHeld", {**held, "meeting": 4}), MeetingOutOfSequence, "number 3")
    story.ok(from_line("CaseClosed", {"reason": "x"}))
    story.ok(from_line("BottleneckReported", {"theme": "wachtlijst", "description": "x"}))
    story.ok(from_line("CaseReopened", {"reason": "x"}))
    story.ok(from_line("MeetingHeld", {**held, "meeting": 3, "held_on": LATER_ON.isoformat()}))
    story.ok(from_line("MeetingRetracted", {"meeting": 3, "reason": "Verkeerd dossier"}))
    assert (story.case.rule_set, story.case.numbering.next) == (V2, 4)


# -- found in review, kept fixed ----------------------------------------------------------------


def test_a_known_youth_presence_registers_when_client_is_given_as_null() -> None:
    story = ready().then(hold(present=attendance(youth=True, parents=True, client=None)))
    story.ok(register(1))


def test_a_parent_who_withdraws_under_another_role_still_blocks_the_meeting() -> None:
    story = Story().then(consent(), consent(PARENT, Role.PARENT), appoint())
    story.ok(withdraw(PARENT, Role.TRUSTED_PERSON))
    story.no(hold(), ConsentRequired, "ouder-1 withdrew")


def test_a_meeting_held_without_a_number_takes_the_open_plan() -> None:
    story = ready().then(plan(1), plan(2))
    story.ok(cancel(1))
    event = story.ok(hold())
    assert isinstance(event, Case.MeetingHeld)
    assert event.meeting == 2  # the earliest plan still open
    assert story.ok(hold(LATER_ON)).meeting == 3  # type: ignore[attr-defined]
