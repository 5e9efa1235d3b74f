"""Rule set v1: the clauses of contract version 1 that version 2 replaced.

Cases requested before the v2 effective instant keep these for their whole life, so every
v1 stream keeps the meaning it had (``event-stream-v1.md``, the rules column). New event
types, roles and fields of v2 may be used in a v1 case; in the consent rule a ``client``
party counts as ``youth`` and a ``legal_representative`` as ``parent``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from overleg.aggregates.errors import (
    AttendanceUnknown,
    ChairNotNeutral,
    ConsentRequired,
    CoordinatorNotPresent,
)
from overleg.aggregates.values import Role
from overleg.i18n import Message, _
from overleg.policies.rules import (
    ROLE_NAMES,
    CaseFacts,
    MeetingFacts,
    case_open,
    coordinator_not_chair,
)

# Consent of a party in one of these roles allows a meeting to be held.
CONSENTING_ROLES = frozenset({Role.YOUTH, Role.PARENT, Role.CLIENT, Role.LEGAL_REPRESENTATIVE})


def consent_required(case: CaseFacts, held_on: date) -> None:
    """A meeting needs a standing consent of the young person or a parent."""
    if not any(party.role in CONSENTING_ROLES for party in case.consents):
        raise ConsentRequired(
            _("A meeting needs the standing consent of the young person or a parent")
        )


def youth_presence(case: CaseFacts, meeting: MeetingFacts) -> bool | None:
    """The young person's presence: v1 has only ``youth`` for the client (a v1 stream of
    lokaal cliëntoverleg calls the adult client so), and a v2 ``client`` stands for it."""
    attendance = meeting.attendance
    return attendance.client if attendance.youth is None else attendance.youth


def attendance_known(case: CaseFacts, number: int, meeting: MeetingFacts) -> None:
    """A registration needs the young person's and the parents' attendance known."""
    youth_unknown = youth_presence(case, meeting) is None
    parents_unknown = meeting.parents is None
    if youth_unknown or parents_unknown:
        if youth_unknown and parents_unknown:
            who = _("young person and the parents")
        else:
            who = ROLE_NAMES[Role.YOUTH] if youth_unknown else _("parents")
        raise AttendanceUnknown(
            _(
                "The registration of meeting {number} needs the attendance of the "
                "{who} to be known (present or not)",
                number=number,
                who=who,
            )
        )


def chair_neutral(case: CaseFacts, chair: str) -> None:
    """The chair is not a party of the case and not a professional named in it."""
    if chair in case.parties:
        raise ChairNotNeutral(
            _("The chair must be neutral: {chair} is a party of this case", chair=chair)
        )
    if chair in case.involved_professionals:
        raise ChairNotNeutral(
            _(
                "The chair must be neutral: {chair} is named as a professional in this case",
                chair=chair,
            )
        )


def chair_not_named(case: CaseFacts, refs: Iterable[str], what: Message) -> None:
    """Under v1 the chair's neutrality is checked at the appointment only."""


def coordinator(case: CaseFacts, number: int, meeting: MeetingFacts, ref: str) -> None:
    """The coordinator was present at the meeting of the workplan and is not the chair."""
    coordinator_not_chair(case, ref)
    if ref not in meeting.professionals:
        raise CoordinatorNotPresent(
            _(
                "The coordinator (hulpcoördinator) must be one of the professionals present "
                "at meeting {number}; {ref} was not",
                number=number,
                ref=ref,
            )
        )


def held_not_in_future(case: CaseFacts, held_on: date, at: datetime) -> None:
    """Under v1 a meeting's date is not compared with when it was recorded."""


def at_order(case: CaseFacts, at: datetime) -> None:
    """Under v1 the lines of a case need not be recorded in time order."""


def bottleneck_allowed(case: CaseFacts) -> None:
    """Under v1 nothing, a bottleneck included, may follow a declined or closed case."""
    case_open(case)
