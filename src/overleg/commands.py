"""Commands: what a caller asks of a case, as values (one frozen dataclass per command).

The HTTP API and the stream importer build these; ``Overleg.handle`` (and, for a stream,
``execute`` on the aggregates the importer holds) carries them out. Every command on an
existing case names it by ``case_id``. When (``at``) and by whom (``by``) a command is
recorded are not part of it: the use case, or the stream line, says that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from uuid import UUID

from overleg.aggregates.values import (
    Agreement,
    Attendance,
    Channel,
    Client,
    ErasureGrounds,
    Invitee,
    Party,
    Programme,
    Region,
)


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    """Open a case with a request for a consultation (aanvraag).

    ``case_id`` is the new case's id; ``None`` lets the use case make one.
    """

    programme: Programme
    region: Region
    requested_by: Party
    channel: Channel
    client: Client
    question: str
    case_id: UUID | None = None
    municipality: str | None = None  # contract v2: the client's municipality
    goal: str | None = None  # contract v2: what the client wants the consultation to achieve


@dataclass(frozen=True, slots=True)
class Decline:
    """Decline the request (the continuity team); the case ends."""

    case_id: UUID
    reason: str


@dataclass(frozen=True, slots=True)
class GiveConsent:
    """Record a party's consent (toestemming)."""

    case_id: UUID
    party: Party


@dataclass(frozen=True, slots=True)
class WithdrawConsent:
    """Withdraw a party's standing consent."""

    case_id: UUID
    party: Party
    reason: str | None


@dataclass(frozen=True, slots=True)
class AppointChair:
    """Appoint the neutral chair (voorzitter); a later appointment replaces the chair."""

    case_id: UUID
    chair: str


@dataclass(frozen=True, slots=True)
class HoldMeeting:
    """Register a held meeting and who attended; ``meeting`` ``None`` takes the next number."""

    case_id: UUID
    held_on: date
    place: str
    attendance: Attendance
    meeting: int | None = None


@dataclass(frozen=True, slots=True)
class AgreeWorkplan:
    """Record a meeting's workplan and its coordinator (hulpcoördinator, spilfiguur)."""

    case_id: UUID
    meeting: int
    agreements: Sequence[Agreement]
    coordinator: str | None
    crisis_plan: bool
    crisis_steps: Sequence[str] | None = None  # the crisis plan, when given as steps


@dataclass(frozen=True, slots=True)
class CompleteRegistration:
    """Mark a meeting as fully registered (volledig geregistreerd)."""

    case_id: UUID
    meeting: int


@dataclass(frozen=True, slots=True)
class ScheduleFollowUp:
    """Schedule a follow-up meeting (vervolgoverleg)."""

    case_id: UUID
    on: date


@dataclass(frozen=True, slots=True)
class ReportBottleneck:
    """Report a structural, cross-case bottleneck (knelpunt) as policy information."""

    case_id: UUID
    theme: str
    description: str


@dataclass(frozen=True, slots=True)
class CloseCase:
    """Close the case."""

    case_id: UUID
    reason: str


# -- contract v2 ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlanMeeting:
    """Plan a meeting, or re-plan one not yet held; ``meeting`` ``None`` takes the next
    number."""

    case_id: UUID
    on: date
    place: str | None
    invited: Sequence[Invitee]
    not_invited: Sequence[str]
    goal: str | None = None
    meeting: int | None = None


@dataclass(frozen=True, slots=True)
class CancelMeeting:
    """Cancel a planned meeting not yet held (and the scheduled follow-up date)."""

    case_id: UUID
    meeting: int
    reason: str


@dataclass(frozen=True, slots=True)
class RecordPreparation:
    """Record how a planned (or the next) meeting was prepared."""

    case_id: UUID
    meeting: int
    checklist: Mapping[str, bool | None] = field(default_factory=dict)
    prepared_by: str | None = None


@dataclass(frozen=True, slots=True)
class DesignateCoordinator:
    """Designate the case's spilfiguur / hulpcoördinator."""

    case_id: UUID
    coordinator: str
    chosen_by_client: bool


@dataclass(frozen=True, slots=True)
class CorrectAttendance:
    """Replace a held meeting's attendance, recorded wrongly."""

    case_id: UUID
    meeting: int
    attendance: Attendance
    reason: str


@dataclass(frozen=True, slots=True)
class ReviseWorkplan:
    """Replace a meeting's workplan (also after its registration)."""

    case_id: UUID
    meeting: int
    agreements: Sequence[Agreement]
    coordinator: str | None
    crisis_plan: bool
    reason: str
    crisis_steps: Sequence[str] | None = None


@dataclass(frozen=True, slots=True)
class RetractMeeting:
    """Retract a meeting recorded in error."""

    case_id: UUID
    meeting: int
    reason: str


@dataclass(frozen=True, slots=True)
class ReopenCase:
    """Reopen a closed case."""

    case_id: UUID
    reason: str


@dataclass(frozen=True, slots=True)
class EraseCase:
    """Erase the personal data of a case (its data key is destroyed); ``reason`` says why
    in words that name nobody."""

    case_id: UUID
    reason: str
    grounds: ErasureGrounds = ErasureGrounds.REQUEST


# Every command on an existing case; with ``SubmitRequest``, every command there is.
CaseCommand = (
    Decline
    | GiveConsent
    | WithdrawConsent
    | AppointChair
    | HoldMeeting
    | AgreeWorkplan
    | CompleteRegistration
    | ScheduleFollowUp
    | ReportBottleneck
    | CloseCase
    | PlanMeeting
    | CancelMeeting
    | RecordPreparation
    | DesignateCoordinator
    | CorrectAttendance
    | ReviseWorkplan
    | RetractMeeting
    | ReopenCase
    | EraseCase
)
Command = SubmitRequest | CaseCommand
