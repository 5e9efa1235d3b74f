"""The overleg application: one path for every command, and the reads of a case's events."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any, assert_never
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Transcoding

from overleg.adapters.eventstore import Database, EventLog, translating
from overleg.aggregates.case import Case, CaseEvent, is_case_event
from overleg.aggregates.errors import RequestMustComeFirst
from overleg.commands import (
    AgreeWorkplan,
    AppointChair,
    CloseCase,
    Command,
    CompleteRegistration,
    Decline,
    GiveConsent,
    HoldMeeting,
    ReportBottleneck,
    ScheduleFollowUp,
    SubmitRequest,
    WithdrawConsent,
)
from overleg.policies import access
from overleg.policies.access import Caller

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


class DateAsISO(Transcoding):
    """Stores a calendar date as its ISO 8601 text."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class CaseNotFound(LookupError):
    """No case has that id."""

    def __init__(self, case_id: UUID) -> None:
        super().__init__(f"No case {case_id}")
        self.case_id = case_id


class StaleCase(Exception):
    """The case changed since the version the caller saw; nothing was written."""

    def __init__(self, case_id: UUID, expected: int, actual: int) -> None:
        super().__init__(
            f"Case {case_id} is at version {actual}, not {expected}: reload it and try again"
        )
        self.case_id, self.expected, self.actual = case_id, expected, actual


def execute(case: Case | None, command: Command, at: datetime, by: str) -> Case:
    """Carry out one command on a case (``None``: no case yet), as recorded ``at`` by ``by``.

    The case's rules apply: a refused command raises a ``CaseRuleBroken`` and the case keeps
    no new event. The service's use case and the stream importer both come through here.
    """
    if isinstance(command, SubmitRequest):
        if case is not None:
            raise RequestMustComeFirst("A case starts with its request, and only once")
        assert command.case_id is not None, "the use case or the stream names the new case"
        return Case.request(
            id=command.case_id,
            programme=command.programme,
            region=command.region,
            requested_by=command.requested_by,
            channel=command.channel,
            client=command.client,
            question=command.question,
            at=at,
            by=by,
        )
    if case is None:
        raise RequestMustComeFirst(
            f"A case starts with its request; this case has none before this "
            f"{type(command).__name__}"
        )
    match command:
        case Decline(reason=reason):
            case.decline(reason=reason, at=at, by=by)
        case GiveConsent(party=party):
            case.give_consent(party=party, at=at, by=by)
        case WithdrawConsent(party=party, reason=reason):
            case.withdraw_consent(party=party, reason=reason, at=at, by=by)
        case AppointChair(chair=chair):
            case.appoint_chair(chair=chair, at=at, by=by)
        case HoldMeeting():
            number = len(case.meetings) + 1 if command.meeting is None else command.meeting
            case.hold_meeting(
                meeting=number,
                held_on=command.held_on,
                place=command.place,
                attendance=command.attendance,
                at=at,
                by=by,
            )
        case AgreeWorkplan():
            case.agree_workplan(
                meeting=command.meeting,
                agreements=command.agreements,
                coordinator=command.coordinator,
                crisis_plan=command.crisis_plan,
                at=at,
                by=by,
            )
        case CompleteRegistration(meeting=meeting):
            case.complete_registration(meeting=meeting, at=at, by=by)
        case ScheduleFollowUp(on=on):
            case.schedule_follow_up(on=on, at=at, by=by)
        case ReportBottleneck(theme=theme, description=description):
            case.report_bottleneck(theme=theme, description=description, at=at, by=by)
        case CloseCase(reason=reason):
            case.close(reason=reason, at=at, by=by)
        case _:
            assert_never(command)
    return case


@dataclass(frozen=True)
class Outcome:
    """What a command recorded: the case as it is now, and the new events."""

    case: Case
    events: tuple[CaseEvent, ...]

    @property
    def event_types(self) -> tuple[str, ...]:
        """The names of the recorded events (``MeetingHeld``, …)."""
        return tuple(type(e).__name__ for e in self.events)


class Overleg(Application[UUID]):
    """The client-consultation service: commands in, events stored, cases read back."""

    name = "overleg"

    def __init__(self, database: Database, clock: Clock = utc_now) -> None:
        with translating():
            database.ensure_schema()
        self.database = database
        self.clock = clock
        # SQLite has one writer at a time; waiting here, rather than inside the connection
        # pool, keeps readers flowing while many requests write at once.
        self._writes: AbstractContextManager[Any] = (
            threading.Lock() if database.backend == "sqlite" else nullcontext()
        )
        with translating():
            super().__init__(env=database.eventsourcing_env())
        self.event_log = EventLog(self.recorder, self.mapper)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    # -- commands -----------------------------------------------------------------------

    def handle(
        self, command: Command, caller: Caller, expected_version: int | None = None
    ) -> Outcome:
        """Carry out one command for ``caller``: load the case once, authorise on it, run
        the command, and save its events (only if the case is still at the version seen).

        Raises ``AccessDenied``, ``CaseNotFound``, ``StaleCase``, a ``CaseRuleBroken`` or
        ``StoreUnavailable``; in each case nothing was recorded.
        """
        at = self.clock()
        with translating():
            if isinstance(command, SubmitRequest):
                access.may_request(caller, command)
                if command.case_id is None:
                    command = replace(command, case_id=uuid.uuid4())
                case = execute(None, command, at, caller.ref)
                seen = 0
            else:
                if not isinstance(caller, access.Principal):
                    raise access.AccessDenied("The public form can only submit a request")
                found, _ = self.replay(command.case_id)
                if found is None:
                    raise CaseNotFound(command.case_id)
                case = found
                access.may_command(caller, command, case)
                if expected_version is not None and case.version != expected_version:
                    raise StaleCase(command.case_id, expected_version, case.version)
                seen = case.version
                execute(case, command, at, caller.ref)
            events = tuple(e for e in case.collect_events() if is_case_event(e))
            # A concurrent writer that saved the same version first makes this save fail
            # on the store's unique key, so exactly one of two racing commands is recorded.
            try:
                with self._writes:
                    self.save(*events)
            except IntegrityError:
                current, _ = self.replay(case.id)
                raise StaleCase(case.id, seen, 0 if current is None else current.version) from None
        return Outcome(case, events)

    # -- reads --------------------------------------------------------------------------

    def get_case(self, case_id: UUID) -> Case:
        """The case as its events make it now."""
        with translating():
            try:
                case: object = self.repository.get(case_id)
            except AggregateNotFoundError:
                raise CaseNotFound(case_id) from None
        if not isinstance(case, Case):
            raise CaseNotFound(case_id)
        return case

    def case_events(self, case_id: UUID) -> list[CaseEvent]:
        """Every event of one case, in order."""
        events = self.replay(case_id)[1]
        if not events:
            raise CaseNotFound(case_id)
        return events

    def replay(self, case_id: UUID) -> tuple[Case | None, list[CaseEvent]]:
        """The case as its events make it, and those events, from one read of the store
        (``None`` and no events for an unknown case)."""
        with translating():
            events = [e for e in self.events.get(case_id) if is_case_event(e)]
        case: Case | None = None
        for event in events:
            case = event.mutate(case)
        return case, events
