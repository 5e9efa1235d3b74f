"""A refusal reads in the reader's language: the rules of both rule sets and the access rules
say in Dutch what is wrong when the reader reads Dutch, and their text stays the English one
(``str``, logs, the default language) everywhere else."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from types import SimpleNamespace
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

from overleg.aggregates.errors import (
    AttendanceUnknown,
    CaseRuleBroken,
    ChairNotNeutral,
    ConsentRequired,
    CoordinatorNotPresent,
    HeldInFuture,
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
    RuleSet,
)
from overleg.application import execute
from overleg.commands import (
    AgreeWorkplan,
    AppointChair,
    CloseCase,
    Command,
    CompleteRegistration,
    Decline,
    GiveConsent,
    HoldMeeting,
    SubmitRequest,
    WithdrawConsent,
)
from overleg.i18n import Language, Message, text_of, translate
from overleg.policies.access import (
    AccessDenied,
    Principal,
    StaffRole,
    may_attempt,
    may_command,
    may_read_figures,
)

BRUSSELS = ZoneInfo("Europe/Brussels")
CASE_ID = UUID("5a1d3c7e-2b4f-4e6a-9c8d-7f0e1d2c3b4a")
BY = "team-1"
CLIENT = "jongere-1"
CHAIR = "voorzitter-1"
PRESENT = ("hulpverlener-1", "hulpverlener-2")
# Requested in 2015 a case keeps the v1 rules; requested in 2026, the v2 rules.
REQUESTED_AT = {
    RuleSet.V1: datetime(2015, 2, 3, 10, tzinfo=BRUSSELS),
    RuleSet.V2: datetime(2026, 2, 2, 10, tzinfo=BRUSSELS),
}
BIRTH_DATE = {RuleSet.V1: date(2001, 5, 17), RuleSet.V2: date(2010, 5, 17)}  # minors

# Words of the English texts that a Dutch text never contains.
ENGLISH = re.compile(
    r"\b(the|a|an|and|needs|must|meeting|case|chair|cannot|only|may|with|line|consent|"
    r"party|professional|registration|attendance|known|present|withdrew|recorded)\b",
    re.IGNORECASE,
)


def assert_says(error: Exception, english: str, *dutch_words: str) -> str:
    """The error's text is ``english`` wherever a string is read, and in Dutch says the
    ``dutch_words`` and no English; returns the Dutch."""
    message = text_of(error)
    assert isinstance(message, Message), repr(message)
    assert str(error) == message == english
    assert translate(message) == english  # the default language is English
    dutch = translate(message, Language.NL)
    for word in dutch_words:
        assert word in dutch, dutch
    assert not ENGLISH.search(dutch), dutch
    return dutch


# -- a case told command by command, as the importer and the API drive it --------------------


def request(rule_set: RuleSet) -> SubmitRequest:
    return SubmitRequest(
        programme=Programme.INTEGRALE_JEUGDHULP,
        region=Region.LIMBURG,
        requested_by=Party("hulpverlener-aanvrager", Role.PROFESSIONAL),
        channel=Channel.COBE,
        client=Client(CLIENT, BIRTH_DATE[rule_set]),
        question="Eén plan voor thuis en school",
        case_id=CASE_ID,
    )


def consent(ref: str = CLIENT, role: Role = Role.YOUTH) -> GiveConsent:
    return GiveConsent(CASE_ID, Party(ref, role))


def hold(rule_set: RuleSet, youth: bool | None = True, parents: bool | None = True) -> HoldMeeting:
    """Meeting 1, held two weeks after the request."""
    held_on = REQUESTED_AT[rule_set].date() + timedelta(days=14)
    return HoldMeeting(
        CASE_ID, held_on, "Gemeentehuis", Attendance.of(youth, parents, None, PRESENT, {})
    )


def refusal(rule_set: RuleSet, *commands: Command, refused: Command) -> CaseRuleBroken:
    """The error that refuses ``refused`` after ``commands`` (each recorded an hour after
    the one before, a meeting in the evening of its day); nothing of it is recorded."""
    at = REQUESTED_AT[rule_set]
    case = execute(None, request(rule_set), at, BY)
    assert case.rule_set is rule_set
    for command in commands:
        at += timedelta(hours=1)
        if isinstance(command, HoldMeeting):
            at = max(at, datetime.combine(command.held_on, time(18), BRUSSELS))
        execute(case, command, at, BY)
    case.collect_events()
    version = case.version
    with pytest.raises(CaseRuleBroken) as raised:
        execute(case, refused, at + timedelta(hours=1), BY)
    assert list(case.collect_events()) == []
    assert case.version == version
    return raised.value


# -- rule set v1 ------------------------------------------------------------------------------


def test_a_v1_meeting_without_consent_is_refused_in_dutch() -> None:
    v1 = RuleSet.V1
    broken = refusal(v1, AppointChair(CASE_ID, CHAIR), refused=hold(v1))
    assert type(broken) is ConsentRequired and broken.rule_set == "v1"
    assert broken.message is text_of(broken)
    assert_says(
        broken,
        "A meeting needs the standing consent of the young person or a parent",
        "toestemming",
        "jongere",
        "ouder",
    )


def test_a_v1_registration_names_the_unknown_attendance_in_dutch() -> None:
    v1 = RuleSet.V1
    broken = refusal(
        v1,
        consent(),
        AppointChair(CASE_ID, CHAIR),
        hold(v1, youth=None, parents=None),
        refused=CompleteRegistration(CASE_ID, 1),
    )
    assert type(broken) is AttendanceUnknown
    assert_says(
        broken,
        "The registration of meeting 1 needs the attendance of the young person and the "
        "parents to be known (present or not)",
        "registratie van overleg 1",
        "jongere en de ouders",
        "aanwezig of niet",
    )


def test_a_v1_chair_who_is_a_party_is_refused_in_dutch() -> None:
    broken = refusal(RuleSet.V1, consent(), refused=AppointChair(CASE_ID, CLIENT))
    assert type(broken) is ChairNotNeutral
    assert_says(
        broken,
        f"The chair must be neutral: {CLIENT} is a party of this case",
        "voorzitter",
        "neutraal",
        CLIENT,
        "partij",
    )


def test_a_v1_coordinator_not_present_is_refused_in_dutch() -> None:
    v1 = RuleSet.V1
    agreement = Agreement(PRESENT[0], "Zoekt een dagcentrum", None, "onderwijs")
    broken = refusal(
        v1,
        consent(),
        AppointChair(CASE_ID, CHAIR),
        hold(v1),
        refused=AgreeWorkplan(CASE_ID, 1, [agreement], "hulpverlener-9", crisis_plan=False),
    )
    assert type(broken) is CoordinatorNotPresent
    assert_says(
        broken,
        "The coordinator (hulpcoördinator) must be one of the professionals present at "
        "meeting 1; hulpverlener-9 was not",
        "hulpcoördinator",
        "overleg 1",
        "hulpverlener-9",
    )


# -- rule set v2 ------------------------------------------------------------------------------


def test_a_v2_meeting_after_a_withdrawal_is_refused_in_dutch() -> None:
    v2 = RuleSet.V2
    broken = refusal(
        v2,
        consent(),
        AppointChair(CASE_ID, CHAIR),
        WithdrawConsent(CASE_ID, Party(CLIENT, Role.YOUTH), None),
        refused=hold(v2),
    )
    assert type(broken) is ConsentRequired and broken.rule_set == "v2"
    assert_says(
        broken,
        f"A meeting needs everyone's agreement: {CLIENT} withdrew their consent",
        "instemming",
        "toestemming",
        CLIENT,
    )


def test_a_v2_meeting_recorded_before_it_was_held_is_refused_in_dutch() -> None:
    v2 = RuleSet.V2
    # Recorded on the day of the request, held two weeks later.
    broken = refusal(v2, consent(), AppointChair(CASE_ID, CHAIR), refused=hold(v2))
    assert type(broken) is HeldInFuture
    assert_says(
        broken,
        "A meeting held on 2026-02-16 cannot be recorded on 2026-02-02: record it once it "
        "was held (or plan it)",
        "gehouden op 2026-02-16",
        "2026-02-02",
        "registreer",
    )


def test_a_v2_chair_named_as_a_party_is_refused_with_the_part_in_dutch() -> None:
    broken = refusal(
        RuleSet.V2,
        consent(),
        AppointChair(CASE_ID, CHAIR),
        refused=consent(CHAIR, Role.TRUSTED_PERSON),
    )
    assert type(broken) is ChairNotNeutral
    dutch = assert_says(
        broken,
        f"The chair must stay neutral: {CHAIR} chairs this case and cannot be named as a party",
        "neutraal blijven",
        CHAIR,
    )
    assert dutch.endswith("partij"), dutch


def test_a_v2_registration_names_the_clients_and_parents_attendance_in_dutch() -> None:
    v2 = RuleSet.V2
    broken = refusal(
        v2,
        consent(),
        AppointChair(CASE_ID, CHAIR),
        hold(v2, youth=None, parents=None),
        refused=CompleteRegistration(CASE_ID, 1),
    )
    assert type(broken) is AttendanceUnknown
    assert_says(
        broken,
        "The registration of meeting 1 needs the attendance of the client and the parents "
        "to be known (present or not)",
        "cliënt en de ouders",
    )


def test_a_shared_rule_reads_in_dutch_in_either_rule_set() -> None:
    for rule_set in RuleSet:
        broken = refusal(rule_set, consent(), refused=hold(rule_set))
        assert broken.rule_set == rule_set.value
        assert_says(broken, "A meeting needs an appointed chair", "voorzitter")


# -- access -----------------------------------------------------------------------------------


def case_parts(chair: str | None = CHAIR) -> SimpleNamespace:
    """What the access rules read of a case of integrale jeugdhulp in Limburg."""
    return SimpleNamespace(
        programme=Programme.INTEGRALE_JEUGDHULP,
        region="Limburg",
        municipality=None,
        chair=chair,
        parties={CLIENT},
        readers=lambda: {PRESENT[0]},
    )


def test_a_role_that_may_not_give_a_command_is_refused_in_dutch() -> None:
    professional = Principal(PRESENT[0], StaffRole.PROFESSIONAL)
    with pytest.raises(AccessDenied) as only_team:
        may_attempt(professional, Decline(CASE_ID, "Geen vraag naar overleg"))
    assert only_team.value.message is text_of(only_team.value)
    assert_says(
        only_team.value,
        "Only a team may decline a request",
        "Alleen een team continuïteit",
        "aanvraag weigeren",
    )
    with pytest.raises(AccessDenied) as team_or_chair:
        may_attempt(professional, CloseCase(CASE_ID, "Werkplan loopt"))
    assert_says(
        team_or_chair.value,
        "Only a chair or team may close a case",
        "voorzitter of team continuïteit",
        "dossier afsluiten",
    )


def test_a_chair_of_another_case_is_refused_in_dutch() -> None:
    other_chair = Principal("voorzitter-2", StaffRole.CHAIR)
    with pytest.raises(AccessDenied) as refused:
        may_command(other_chair, CompleteRegistration(CASE_ID, 1), case_parts())
    assert_says(
        refused.value,
        "voorzitter-2 is not the chair of this case",
        "voorzitter-2 is niet de voorzitter van dit dossier",
    )


def test_a_role_without_figures_is_refused_in_dutch() -> None:
    with pytest.raises(AccessDenied) as refused:
        may_read_figures(Principal(CHAIR, StaffRole.CHAIR))
    assert_says(refused.value, "A chair does not read statistics", "voorzitter", "statistieken")
