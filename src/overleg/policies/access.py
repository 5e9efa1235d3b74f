"""Who may read and do what (confidentiality): plain functions of the caller and the case.

Nobody reads a case they have no part in. The continuity team works on the cases of its
region, a chair on the cases they chair, a professional reads the cases they take part in,
an auditor reads every case and changes nothing, an analyst sees figures, never cases.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from overleg.aggregates.values import Channel, Party, Role


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
    @property
    def involved_professionals(self) -> Collection[str]: ...


# A reference (a pseudonym or directory id): Latin letters, digits and . _ : @ / + -,
# never free text.
REF_PATTERN = r"^[A-Za-z0-9À-ÖØ-öø-ÿ._:@/+-]+$"
_REF = re.compile(REF_PATTERN)


def is_ref(value: str) -> bool:
    """Whether ``value`` is a well-formed reference of at most 200 characters."""
    return 0 < len(value) <= 200 and _REF.match(value) is not None


# Which roles may record each command on an existing case.
COMMANDS: dict[str, frozenset[StaffRole]] = {
    "decline": frozenset({StaffRole.TEAM}),
    "appoint_chair": frozenset({StaffRole.TEAM}),
    "give_consent": frozenset({StaffRole.TEAM, StaffRole.CHAIR}),
    "withdraw_consent": frozenset({StaffRole.TEAM, StaffRole.CHAIR}),
    "hold_meeting": frozenset({StaffRole.CHAIR}),
    "agree_workplan": frozenset({StaffRole.CHAIR}),
    "complete_registration": frozenset({StaffRole.CHAIR}),
    "schedule_follow_up": frozenset({StaffRole.CHAIR}),
    "report_bottleneck": frozenset({StaffRole.CHAIR}),
    "close": frozenset({StaffRole.TEAM, StaffRole.CHAIR}),
}
ACTIONS = {
    "decline": "decline a request",
    "appoint_chair": "appoint the chair",
    "give_consent": "record a consent",
    "withdraw_consent": "withdraw a consent",
    "hold_meeting": "register a meeting",
    "agree_workplan": "record a workplan",
    "complete_registration": "complete a registration",
    "schedule_follow_up": "schedule a follow-up",
    "report_bottleneck": "report a bottleneck",
    "close": "close a case",
}
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
        return who.ref in case.involved_professionals or who.ref in case.parties
    return False


def may_read_case(who: Principal, case: CaseParts) -> None:
    """Reading a case needs a part in it."""
    if who.role is StaffRole.ANALYST:
        raise AccessDenied("Analysts see statistics and bottlenecks, never case data")
    if not _part_in(who, case):
        raise AccessDenied(f"{who.ref} ({who.role}) has no part in this case")


def may_command(who: Principal, command: str, case: CaseParts) -> None:
    """Recording on a case needs a role that does this, and a part in the case."""
    allowed = COMMANDS[command]
    if who.role not in allowed:
        roles = " or ".join(sorted(allowed))
        raise AccessDenied(f"Only a {roles} may {ACTIONS[command]}")
    if not _part_in(who, case):
        if who.role is StaffRole.CHAIR:
            raise AccessDenied(f"{who.ref} is not the chair of this case")
        raise AccessDenied(f"{who.ref} ({who.role}) works on cases of another region")


def may_request(who: Principal, region: str, requested_by: Party, channel: str) -> None:
    """Requests come from the continuity team (of the case's region) or a professional who
    asks in their own name through the professionals' app; the public form has its own way in."""
    if who.role not in REQUESTERS:
        raise AccessDenied("Only the continuity team or a professional may submit a request")
    if channel == Channel.FORM:
        raise AccessDenied("Requests through the online form come in through the public form")
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
