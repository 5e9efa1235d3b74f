"""Who may read and do what (confidentiality): plain functions of the caller and the case.

Nobody reads a case they have no part in. A continuity team works on the cases of its own
programme and area (in integrale jeugdhulp its region, in lokaal cliëntoverleg the client's
municipality), a chair on the cases they chair, a professional reads the cases they take
part in, an auditor reads every case and changes nothing, an analyst sees figures, never
cases. In lokaal cliëntoverleg the coordinator of the municipality both takes requests and
chairs: a team member appointed chair of a case does the chair's work on it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, assert_never

from overleg.aggregates.values import Channel, Party, Programme, Role
from overleg.commands import (
    AgreeWorkplan,
    AppointChair,
    CancelMeeting,
    CaseCommand,
    CloseCase,
    CompleteRegistration,
    CorrectAttendance,
    Decline,
    DesignateCoordinator,
    EraseCase,
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
from overleg.i18n import Message, _


class StaffRole(StrEnum):
    """What a signed-in user does with cases."""

    TEAM = "team"  # continuity team: assesses requests, appoints chairs, declines
    CHAIR = "chair"  # acts on the cases they chair
    PROFESSIONAL = "professional"  # reads the cases they take part in; may request
    AUDITOR = "auditor"  # reads any case and its history; changes nothing
    ANALYST = "analyst"  # statistics and bottlenecks only, never case data


# What a refusal calls each role.
STAFF_ROLE_NAMES: Mapping[StaffRole, Message] = {
    StaffRole.TEAM: _("team"),
    StaffRole.CHAIR: _("chair"),
    StaffRole.PROFESSIONAL: _("professional"),
    StaffRole.AUDITOR: _("auditor"),
    StaffRole.ANALYST: _("analyst"),
}


@dataclass(frozen=True)
class Principal:
    """The verified caller: a reference (pseudonym or directory id), a role, and the scope
    their token names: the programme, the region and the municipality they serve.

    A continuity team's token names its area: a region in integrale jeugdhulp (the programme
    when the token names none, as tokens did before there were two), a municipality in lokaal
    cliëntoverleg (and maybe its region too). For a chair or a professional a programme limits
    them to that programme's cases; an auditor reads every case whatever the token names.
    """

    ref: str
    role: StaffRole
    region: str | None = None
    programme: Programme | None = None
    municipality: str | None = None

    @property
    def team_programme(self) -> Programme:
        """The programme a continuity team works in."""
        return self.programme or Programme.INTEGRALE_JEUGDHULP


@dataclass(frozen=True)
class PublicForm:
    """The public request form: no account, it may only submit a request."""

    ref: str = "aanvraagformulier"  # recorded as who recorded the request


@dataclass(frozen=True)
class Operator:
    """Whoever runs overleg's commands where it is installed (``overleg erase``, the
    retention job): may erase the personal data of any case, and do nothing else."""

    ref: str


# Whoever gives a command: a signed-in user, the public form, or the operator.
Caller = Principal | PublicForm | Operator
# Who uses the public form: the client, their family and their supporters (a professional
# uses their account, a service or a resident asks the team).
FORM_ROLES = frozenset(
    {
        Role.YOUTH,
        Role.PARENT,
        Role.TRUSTED_PERSON,
        Role.SUPPORT_FIGURE,
        Role.CLIENT,
        Role.LEGAL_REPRESENTATIVE,
        Role.NETWORK,
    }
)


class AccessDenied(Exception):
    """The caller may not do this; nothing was read or written."""

    def __init__(self, message: Message) -> None:
        super().__init__(message)
        self.message = message


class CaseParts(Protocol):
    """What access decisions read of a case (the ``Case`` aggregate has it)."""

    @property
    def programme(self) -> Programme: ...
    @property
    def region(self) -> str: ...
    @property
    def municipality(self) -> str | None: ...
    @property
    def chair(self) -> str | None: ...
    @property
    def parties(self) -> Collection[str]: ...
    def readers(self) -> Collection[str]: ...


TEAM_ONLY = frozenset({StaffRole.TEAM})
CHAIR_ONLY = frozenset({StaffRole.CHAIR})
TEAM_OR_CHAIR = frozenset({StaffRole.TEAM, StaffRole.CHAIR})


def who_may(command: CaseCommand) -> tuple[frozenset[StaffRole], Message]:
    """Which roles may record a command on an existing case, and what it does in words."""
    match command:
        case Decline():
            return TEAM_ONLY, _("decline a request")
        case AppointChair():
            return TEAM_ONLY, _("appoint the chair")
        case GiveConsent():
            return TEAM_OR_CHAIR, _("record a consent")
        case WithdrawConsent():
            return TEAM_OR_CHAIR, _("withdraw a consent")
        case HoldMeeting():
            return CHAIR_ONLY, _("register a meeting")
        case AgreeWorkplan():
            return CHAIR_ONLY, _("record a workplan")
        case CompleteRegistration():
            return CHAIR_ONLY, _("complete a registration")
        case ScheduleFollowUp():
            return CHAIR_ONLY, _("schedule a follow-up")
        case ReportBottleneck():
            return CHAIR_ONLY, _("report a bottleneck")
        case CloseCase():
            return TEAM_OR_CHAIR, _("close a case")
        case PlanMeeting():
            return CHAIR_ONLY, _("plan a meeting")
        case CancelMeeting():
            return CHAIR_ONLY, _("cancel a meeting")
        case RecordPreparation():
            return CHAIR_ONLY, _("record a meeting's preparation")
        case CorrectAttendance():
            return CHAIR_ONLY, _("correct an attendance")
        case ReviseWorkplan():
            return CHAIR_ONLY, _("revise a workplan")
        case RetractMeeting():
            return CHAIR_ONLY, _("retract a meeting")
        case DesignateCoordinator():
            return TEAM_OR_CHAIR, _("designate the coordinator (spilfiguur)")
        case ReopenCase():
            return TEAM_OR_CHAIR, _("reopen a case")
        case EraseCase():
            return TEAM_ONLY, _("erase a case's personal data")
        case _:
            assert_never(command)


REQUESTERS = frozenset({StaffRole.TEAM, StaffRole.PROFESSIONAL})
FIGURE_READERS = frozenset({StaffRole.ANALYST, StaffRole.AUDITOR, StaffRole.TEAM})


def municipality_key(name: str | None) -> str | None:
    """A municipality's name as names are compared: letter case and spacing aside."""
    return None if name is None else " ".join(name.split()).casefold()


def same_municipality(one: str | None, other: str | None) -> bool:
    """Whether two names are the same municipality (letter case and spacing aside)."""
    if one is None or other is None:
        return False
    return municipality_key(one) == municipality_key(other)


def _roles(allowed: Collection[StaffRole]) -> Message:
    """The roles that may do something, as a refusal names them (``chair or team``)."""
    names = [STAFF_ROLE_NAMES[role] for role in sorted(allowed)]
    said = names[0]
    for name in names[1:]:
        said = _("{one} or {other}", one=said, other=name)
    return said


def unscoped(who: Principal) -> Message | None:
    """Why a signed-in caller's token does not say enough to act on, or ``None``.

    A continuity team without its area would see every case: its token is refused instead."""
    if who.role is not StaffRole.TEAM:
        return None
    if who.team_programme is Programme.LOKAAL_CLIENTOVERLEG:
        if who.municipality is None:
            return _(
                "A continuity team's token names the area it works in: for "
                "lokaal_clientoverleg the municipality it serves (claim municipality)"
            )
        return None
    if who.region is None:
        return _(
            "A continuity team's token names the area it works in: for integrale_jeugdhulp "
            "its region (claim region); a team of lokaal_clientoverleg names that programme "
            "(claim programme) and its municipality (claim municipality)"
        )
    return None


def may_sign_in(who: Principal) -> None:
    """A token that does not say enough to scope its holder is refused outright."""
    problem = unscoped(who)
    if problem is not None:
        raise AccessDenied(problem)


def _programme_fits(who: Principal, case: CaseParts) -> bool:
    return who.programme is None or who.programme is case.programme


def _in_area(who: Principal, case: CaseParts) -> bool:
    """A continuity team works on the cases of its programme and area only."""
    if who.role is not StaffRole.TEAM or unscoped(who) is not None:
        return False
    if case.programme is not who.team_programme:
        return False
    if who.region is not None and who.region != case.region:
        return False
    if case.programme is Programme.LOKAAL_CLIENTOVERLEG:
        return same_municipality(who.municipality, case.municipality)
    return True


def may_chair(who: Principal) -> bool:
    """Whether the caller's role chairs meetings: a chair, or a coordinator of a lokaal
    cliëntoverleg team (who takes the requests of the municipality and chairs them)."""
    if who.role is StaffRole.CHAIR:
        return True
    return (
        who.role is StaffRole.TEAM
        and who.team_programme is Programme.LOKAAL_CLIENTOVERLEG
        and unscoped(who) is None
    )


def _chairs(who: Principal, case: CaseParts) -> bool:
    """The caller is the appointed chair of the case, in a role that chairs its programme."""
    if not may_chair(who) or case.chair != who.ref or not _programme_fits(who, case):
        return False
    return who.role is StaffRole.CHAIR or case.programme is Programme.LOKAAL_CLIENTOVERLEG


def has_part(who: Principal, case: CaseParts) -> bool:
    """Whether the caller has a part in the case (and so may read it)."""
    return who.role is not StaffRole.ANALYST and _part_in(who, case)


def _part_in(who: Principal, case: CaseParts) -> bool:
    if who.role is StaffRole.AUDITOR:
        return True
    if who.role is StaffRole.TEAM:
        return _in_area(who, case) or _chairs(who, case)
    if who.role is StaffRole.CHAIR:
        return _chairs(who, case)
    if who.role is StaffRole.PROFESSIONAL:
        return _programme_fits(who, case) and who.ref in case.readers()
    return False


def may_read_cases(who: Principal) -> None:
    """Whether the caller's role reads cases at all (asked before any case is looked up, so
    the answer says nothing about which cases exist)."""
    if who.role is StaffRole.ANALYST:
        raise AccessDenied(_("Analysts see statistics and bottlenecks, never case data"))


def sees(who: Principal | Operator, case: CaseParts) -> bool:
    """Whether the caller may know the case exists. A case they may not see is answered
    exactly like one that does not exist: no caller learns of a case through a refusal
    (the auditor and the operator see every case)."""
    return isinstance(who, Operator) or has_part(who, case)


def may_attempt(who: Principal | Operator, command: CaseCommand) -> None:
    """Whether the caller's role gives this command on any case (asked before the case is
    looked up: the refusal says nothing about which cases exist)."""
    if isinstance(who, Operator):
        if not isinstance(command, EraseCase):
            raise AccessDenied(_("The operator can only erase a case's personal data"))
        return
    allowed, action = who_may(command)
    as_team = StaffRole.TEAM in allowed and who.role is StaffRole.TEAM
    as_chair = StaffRole.CHAIR in allowed and may_chair(who)
    if not (as_team or as_chair):
        raise AccessDenied(_("Only a {roles} may {action}", roles=_roles(allowed), action=action))


def may_command(who: Principal | Operator, command: CaseCommand, case: CaseParts) -> None:
    """Recording on a case needs a role that does this, and a part in the case: a team
    within its programme and area, a chair (or, in lokaal cliëntoverleg, the team member
    appointed chair) on the case they chair. The operator erases any case."""
    if isinstance(who, Operator):
        may_attempt(who, command)
        return
    allowed, action = who_may(command)
    as_team = StaffRole.TEAM in allowed and who.role is StaffRole.TEAM
    as_chair = StaffRole.CHAIR in allowed and may_chair(who)
    if (as_team and _in_area(who, case)) or (as_chair and _chairs(who, case)):
        return
    if as_team:
        raise AccessDenied(
            _("{ref} (team) works on cases of another programme or area", ref=who.ref)
        )
    if as_chair and who.role is StaffRole.CHAIR:
        raise AccessDenied(_("{ref} is not the chair of this case", ref=who.ref))
    if as_chair:
        raise AccessDenied(
            _(
                "Only the chair of this case may {action}; {ref} is not its chair",
                action=action,
                ref=who.ref,
            )
        )
    raise AccessDenied(_("Only a {roles} may {action}", roles=_roles(allowed), action=action))


def may_request(who: Caller, command: SubmitRequest) -> None:
    """Requests come from the continuity team (within its programme and area), a
    professional who asks in their own name through the professionals' app, or anyone
    through the public form, which the client, their family and their supporters use."""
    requested_by, channel = command.requested_by, command.channel
    if isinstance(who, PublicForm):
        if channel is not Channel.FORM or requested_by.role not in FORM_ROLES:
            raise AccessDenied(
                _(
                    "The public form takes requests of the client, a parent, a legal "
                    "representative, a trusted person, a support figure or someone of the "
                    "client's network"
                )
            )
        return
    if isinstance(who, Operator):
        raise AccessDenied(_("The operator can only erase a case's personal data"))
    if who.role not in REQUESTERS:
        raise AccessDenied(_("Only the continuity team or a professional may submit a request"))
    if channel is Channel.FORM:
        raise AccessDenied(_("Requests through the online form come in through the public form"))
    if who.role is StaffRole.TEAM:
        _request_in_area(who, command)
        return
    if who.programme not in (None, command.programme):
        raise AccessDenied(
            _(
                "{ref} works in {programme}, not {requested}",
                ref=who.ref,
                programme=str(who.programme),
                requested=command.programme.value,
            )
        )
    if requested_by != Party(who.ref, Role.PROFESSIONAL):
        raise AccessDenied(
            _(
                "A professional submits a request in their own name (requested_by: your "
                "reference, role professional)"
            )
        )


def _request_in_area(who: Principal, command: SubmitRequest) -> None:
    """A team records requests of its own programme and area only."""
    problem = unscoped(who)
    if problem is not None:
        raise AccessDenied(problem)
    programme, region = command.programme, command.region.value
    if programme is not who.team_programme:
        raise AccessDenied(
            _(
                "{ref} works in {programme}, not {requested}",
                ref=who.ref,
                programme=str(who.team_programme),
                requested=programme.value,
            )
        )
    if who.region is not None and who.region != region:
        raise AccessDenied(
            _(
                "{ref} works on cases of {region}, not {requested}",
                ref=who.ref,
                region=who.region,
                requested=region,
            )
        )
    if programme is Programme.LOKAAL_CLIENTOVERLEG and not same_municipality(
        who.municipality, command.municipality
    ):
        if command.municipality is None:
            raise AccessDenied(
                _(
                    "{ref} takes the requests of {municipality}: a request of no "
                    "municipality goes to that municipality's team",
                    ref=who.ref,
                    municipality=who.municipality,
                )
            )
        raise AccessDenied(
            _(
                "{ref} takes the requests of {municipality}: a request of {requested} "
                "goes to that municipality's team",
                ref=who.ref,
                municipality=who.municipality,
                requested=command.municipality,
            )
        )


def may_list_cases(who: Principal) -> None:
    """Case lists show case data: analysts may not see them."""
    if who.role is StaffRole.ANALYST:
        raise AccessDenied(_("Analysts see statistics and bottlenecks, never case data"))


def may_read_figures(who: Principal) -> None:
    """Statistics and bottlenecks are for analysts, auditors and the continuity teams."""
    if who.role not in FIGURE_READERS:
        raise AccessDenied(_("A {role} does not read statistics", role=STAFF_ROLE_NAMES[who.role]))


def may_read_access_log(who: Principal) -> None:
    """Only auditors list who read a case."""
    if who.role is not StaffRole.AUDITOR:
        raise AccessDenied(_("Only auditors list who read a case"))
