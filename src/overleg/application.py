"""The overleg application: one method per use case, on an eventsourcing event store."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Transcoding

from overleg.aggregates.case import Case
from overleg.aggregates.values import (
    Agreement,
    Attendance,
    Channel,
    Client,
    Party,
    Programme,
    Region,
)
from overleg.storage import Database

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


class Overleg(Application[UUID]):
    """The use cases of the client-consultation service."""

    name = "overleg"

    def __init__(self, database: Database, clock: Clock = utc_now) -> None:
        database.ensure_schema()
        self.database = database
        self.clock = clock
        # SQLite has one writer at a time; waiting here, rather than inside the connection
        # pool, keeps readers flowing while many requests write at once.
        self._writes: AbstractContextManager[Any] = (
            threading.Lock() if database.backend == "sqlite" else nullcontext()
        )
        super().__init__(env=database.eventsourcing_env())

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        """Record new events of the given aggregates (one writer at a time on SQLite)."""
        with self._writes:
            return super().save(*objs, **kwargs)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    # -- queries ------------------------------------------------------------------------

    def get_case(self, case_id: UUID) -> Case:
        """The case as its events make it now."""
        try:
            case: object = self.repository.get(case_id)
        except AggregateNotFoundError:
            raise CaseNotFound(case_id) from None
        if not isinstance(case, Case):
            raise CaseNotFound(case_id)
        return case

    def case_events(self, case_id: UUID) -> list[Case.Event]:
        """Every event of one case, in order."""
        events = self.replay(case_id)[1]
        if not events:
            raise CaseNotFound(case_id)
        return events

    def replay(self, case_id: UUID) -> tuple[Case | None, list[Case.Event]]:
        """The case as its events make it, and those events, from one read of the store
        (``None`` and no events for an unknown case)."""
        events = [e for e in self.events.get(case_id) if isinstance(e, Case.Event)]
        case: Case | None = None
        for event in events:
            case = event.mutate(case)
        return case, events

    # -- commands -----------------------------------------------------------------------

    def request(
        self,
        *,
        case_id: UUID,
        programme: Programme,
        region: Region,
        requested_by: Party,
        channel: Channel,
        client: Client,
        question: str,
        by: str,
    ) -> Case:
        """Open a case with a request."""
        case = Case.request(
            id=case_id,
            programme=programme,
            region=region,
            requested_by=requested_by,
            channel=channel,
            client=client,
            question=question,
            at=self.clock(),
            by=by,
        )
        self.save(case)
        return case

    def decline(
        self, case_id: UUID, *, reason: str, by: str, expected_version: int | None = None
    ) -> Case:
        """Decline a request."""
        return self._change(
            case_id, expected_version, lambda c, at: c.decline(reason=reason, at=at, by=by)
        )

    def give_consent(
        self, case_id: UUID, *, party: Party, by: str, expected_version: int | None = None
    ) -> Case:
        """Record a party's consent."""
        return self._change(
            case_id, expected_version, lambda c, at: c.give_consent(party=party, at=at, by=by)
        )

    def withdraw_consent(
        self,
        case_id: UUID,
        *,
        party: Party,
        reason: str | None,
        by: str,
        expected_version: int | None = None,
    ) -> Case:
        """Withdraw a party's standing consent."""
        return self._change(
            case_id,
            expected_version,
            lambda c, at: c.withdraw_consent(party=party, reason=reason, at=at, by=by),
        )

    def appoint_chair(
        self, case_id: UUID, *, chair: str, by: str, expected_version: int | None = None
    ) -> Case:
        """Appoint the neutral chair."""
        return self._change(
            case_id, expected_version, lambda c, at: c.appoint_chair(chair=chair, at=at, by=by)
        )

    def hold_meeting(
        self,
        case_id: UUID,
        *,
        held_on: date,
        place: str,
        attendance: Attendance,
        by: str,
        expected_version: int | None = None,
    ) -> Case:
        """Register the next meeting of the case."""
        return self._change(
            case_id,
            expected_version,
            lambda c, at: c.hold_meeting(
                meeting=len(c.meetings) + 1,
                held_on=held_on,
                place=place,
                attendance=attendance,
                at=at,
                by=by,
            ),
        )

    def agree_workplan(
        self,
        case_id: UUID,
        *,
        meeting: int,
        agreements: Sequence[Agreement],
        coordinator: str | None,
        crisis_plan: bool,
        by: str,
        expected_version: int | None = None,
    ) -> Case:
        """Record a meeting's workplan."""
        return self._change(
            case_id,
            expected_version,
            lambda c, at: c.agree_workplan(
                meeting=meeting,
                agreements=agreements,
                coordinator=coordinator,
                crisis_plan=crisis_plan,
                at=at,
                by=by,
            ),
        )

    def complete_registration(
        self, case_id: UUID, *, meeting: int, by: str, expected_version: int | None = None
    ) -> Case:
        """Mark a meeting as fully registered."""
        return self._change(
            case_id,
            expected_version,
            lambda c, at: c.complete_registration(meeting=meeting, at=at, by=by),
        )

    def schedule_follow_up(
        self, case_id: UUID, *, on: date, by: str, expected_version: int | None = None
    ) -> Case:
        """Schedule a follow-up meeting."""
        return self._change(
            case_id, expected_version, lambda c, at: c.schedule_follow_up(on=on, at=at, by=by)
        )

    def report_bottleneck(
        self,
        case_id: UUID,
        *,
        theme: str,
        description: str,
        by: str,
        expected_version: int | None = None,
    ) -> Case:
        """Report a structural bottleneck."""
        return self._change(
            case_id,
            expected_version,
            lambda c, at: c.report_bottleneck(theme=theme, description=description, at=at, by=by),
        )

    def close_case(
        self, case_id: UUID, *, reason: str, by: str, expected_version: int | None = None
    ) -> Case:
        """Close a case."""
        return self._change(
            case_id, expected_version, lambda c, at: c.close(reason=reason, at=at, by=by)
        )

    def _change(
        self,
        case_id: UUID,
        expected_version: int | None,
        command: Callable[[Case, datetime], Any],
    ) -> Case:
        case = self.get_case(case_id)
        if expected_version is not None and case.version != expected_version:
            raise StaleCase(case_id, expected_version, case.version)
        seen = case.version
        command(case, self.clock())
        # A concurrent writer that saved the same version first makes this save fail
        # on the store's unique key, so exactly one of two racing commands is recorded.
        try:
            self.save(case)
        except IntegrityError:
            raise StaleCase(case_id, seen, self.get_case(case_id).version) from None
        return case
