"""Who may read and do what (confidentiality): plain functions of the caller and the case.

Nobody reads a case they have no part in. The continuity team works on the cases of its
region, a chair on the cases they chair, a professional reads the cases they take part in,
an auditor reads every case and changes nothing, an analyst sees figures, never cases.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, assert_never

from overleg.aggregates.values import Channel, Party, Role
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


class StaffRole(StrEnum):
    """What a signed-in user does with cases."""

    TEAM = "team"  # continuity team: assesses requests, appoints chairs, declines
    CHAIR = "chair"  # acts on the cases they chair
    PROFESSIONAL = "professional"  # reads the cases they take part in; may request
    AUDITOR = "auditor"  # reads any case and its history; changes nothing
    ANALYST = "analyst"  # statistics and bottlenecks only, never case data


@dataclass(frozen=True)
class Principal:
    """The verified caller: a reference (pseudonym or directory id), a role, maybe a region."""

    ref: str
    role: StaffRole
    region: str | None = None


@dataclass(frozen=True)
class PublicForm:
    """The public request form: no account, it may only submit a request."""

    ref: str = "aanvraagformulier"  # recorded as who recorded the request


# Whoever gives a command: a signed-in user, or the public form.
Caller = Principal | PublicForm
FORM_ROLES = frozenset({Role.YOUTH, Role.PARENT, Role.TRUSTED_PERSON, Role.SUPPORT_FIGURE})


class AccessDenied(Exception):
    """The caller may not do this; nothing was read or written."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CaseParts(Protocol):
    """What access decisions read of a case (the ``Case`` aggregate has it)."""

    @property
    def region(self) -> str: ...
    @property
    def chair(self) -> str | None: ...
    @property
    def parties(self) -> Collection[str]: ...
    def readers(self) -> Collection[str]: ...


TEAM_ONLY = frozenset({StaffRole.TEAM})
CHAIR_ONLY = frozenset({StaffRole.CHAIR})
TEAM_OR_CHAIR = frozenset({StaffRole.TEAM, StaffRole.CHAIR})


def who_may(command: CaseCommand) -> tuple[frozenset[StaffRole], str]:
    """Which roles may record a command on an existing case, and what it does in words."""
    match command:
        case Decline():
            return TEAM_ONLY, "decline a request"
        case AppointChair():
            return TEAM_ONLY, "appoint the chair"
        case GiveConsent():
            return TEAM_OR_CHAIR, "record a consent"
        case WithdrawConsent():
            return TEAM_OR_CHAIR, "withdraw a consent"
        case HoldMeeting():
            return CHAIR_ONLY, "register a meeting"
        case AgreeWorkplan():
            return CHAIR_ONLY, "record a workplan"
        case CompleteRegistration():
            return CHAIR_ONLY, "complete a registration"
        case ScheduleFollowUp():
            return CHAIR_ONLY, "schedule a follow-up"
        case ReportBottleneck():
            return CHAIR_ONLY, "report a bottleneck"
        case CloseCase():
            return TEAM_OR_CHAIR, "close a case"
        case PlanMeeting():
            return CHAIR_ONLY, "plan a meeting"
        case CancelMeeting():
            return CHAIR_ONLY, "cancel a meeting"
        case RecordPreparation():
            return CHAIR_ONLY, "record a meeting's preparation"
        case CorrectAttendance():
            return CHAIR_ONLY, "correct an attendance"
        case ReviseWorkplan():
            return CHAIR_ONLY, "revise a workplan"
        case RetractMeeting():
            return CHAIR_ONLY, "retract a meeting"
        case DesignateCoordinator():
            return TEAM_OR_CHAIR, "designate the coordinator (spilfiguur)"
        case ReopenCase():
            return TEAM_OR_CHAIR, "reopen a case"
        case _:
            assert_never(command)


REQUESTERS = frozenset({StaffRole.TEAM, StaffRole.PROFESSIONAL})
FIGURE_READERS = frozenset({StaffRole.ANALYST, StaffRole.AUDITOR, StaffRole.TEAM})


def _part_in(who: Principal, case: CaseParts) -> bool:
    if who.role is StaffRole.AUDITOR:
        return True
    if who.role is StaffRole.TEAM:
        return who.region is None or who.region == case.region
    if who.role is StaffRole.CHAIR:
        return case.chair == who.ref
    if who.role is StaffRole.PROFESSIONAL:
        return who.ref in case.readers()
    return False


def may_read_case(who: Principal, case: CaseParts) -> None:
    """Reading a case needs a part in it."""
    if who.role is StaffRole.ANALYST:
        raise AccessDenied("Analysts see statistics and bottlenecks, never case data")
    if not _part_in(who, case):
        raise AccessDenied(f"{who.ref} ({who.role}) has no part in this case")


def may_command(who: Principal, command: CaseCommand, case: CaseParts) -> None:
    """Recording on a case needs a role that does this, and a part in the case."""
    allowed, action = who_may(command)
    if who.role not in allowed:
        roles = " or ".join(sorted(allowed))
        raise AccessDenied(f"Only a {roles} may {action}")
    if not _part_in(who, case):
        if who.role is StaffRole.CHAIR:
            raise AccessDenied(f"{who.ref} is not the chair of this case")
        raise AccessDenied(f"{who.ref} ({who.role}) works on cases of another region")


def may_request(who: Caller, command: SubmitRequest) -> None:
    """Requests come from the continuity team (of the case's region), a professional who
    asks in their own name through the professionals' app, or anyone through the public form,
    which only young people, parents, trusted persons and support figures use."""
    requested_by, channel = command.requested_by, command.channel
    if isinstance(who, PublicForm):
        if channel is not Channel.FORM or requested_by.role not in FORM_ROLES:
            raise AccessDenied(
                "The public form takes requests of a young person, a parent, a trusted "
                "person or a support figure"
            )
        return
    if who.role not in REQUESTERS:
        raise AccessDenied("Only the continuity team or a professional may submit a request")
    if channel is Channel.FORM:
        raise AccessDenied("Requests through the online form come in through the public form")
    region = command.region.value
    if who.role is StaffRole.TEAM and who.region not in (None, region):
        raise AccessDenied(f"{who.ref} works on cases of {who.region}, not {region}")
    if who.role is StaffRole.PROFESSIONAL and requested_by != Party(who.ref, Role.PROFESSIONAL):
        raise AccessDenied(
            "A professional submits a request in their own name (requested_by: your "
            "reference, role professional)"
        )


def may_list_cases(who: Principal) -> None:
    """Case lists show case data: analysts may not see them."""
    if who.role is StaffRole.ANALYST:
        raise AccessDenied("Analysts see statistics and bottlenecks, never case data")


def may_read_figures(who: Principal) -> None:
    """Statistics and bottlenecks are for analysts, auditors and the continuity teams."""
    if who.role not in FIGURE_READERS:
        raise AccessDenied(f"A {who.role} does not read statistics")


def may_read_access_log(who: Principal) -> None:
    """Only auditors list who read a case."""
    if who.role is not StaffRole.AUDITOR:
        raise AccessDenied("Only auditors list who read a case")
