"""The audit trail: every event of a case, in order, with when, by whom and what happened."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, assert_never
from uuid import UUID

from overleg.adapters.views import Tx, ViewStore
from overleg.aggregates.case import Case, CaseEvent
from overleg.projections.base import Projection


def _presence(label: str, present: bool | None) -> str:
    if present is None:
        return f"{label} not registered"
    return f"{label} {'present' if present else 'absent'}"


def summary(event: CaseEvent) -> str:
    """One line a chair or auditor reads: what the event recorded.

    References (pseudonyms) are shown; free text (questions, reasons, places,
    agreements) is not, so the trail can be read without exposing case content.
    """
    match event:
        case Case.Requested():
            return (
                f"Consultation requested ({event.programme}, {event.region}) by a "
                f"{event.requester_role.replace('_', ' ')} via {event.channel}"
            )
        case Case.RequestDeclined():
            return "Request declined; the case ends"
        case Case.ConsentGiven(personal=p):
            return f"Consent given by {p['ref']} ({event.role.replace('_', ' ')})"
        case Case.ConsentWithdrawn(personal=p):
            return f"Consent withdrawn by {p['ref']} ({event.role.replace('_', ' ')})"
        case Case.ChairAppointed(personal=p):
            return f"Chair appointed: {p['chair']}"
        case Case.MeetingHeld():
            kind = "first meeting" if event.meeting == 1 else "follow-up meeting"
            return (
                f"Meeting {event.meeting} ({kind}) held on {event.held_on.isoformat()}: "
                f"{_presence('young person', event.youth)}, "
                f"{_presence('parents', event.parents)}, "
                f"{_presence('trusted person', event.trusted_person)}, "
                f"{event.professionals_present} professional(s)"
            )
        case Case.WorkplanAgreed(personal=p):
            coordinator = p["coordinator"] or "none"
            crisis = ", with crisis plan" if event.crisis_plan else ""
            return (
                f"Workplan of meeting {event.meeting} agreed: {event.agreement_count} "
                f"agreement(s), coordinator {coordinator}{crisis}"
            )
        case Case.RegistrationCompleted():
            return f"Registration of meeting {event.meeting} completed"
        case Case.FollowUpScheduled():
            return f"Follow-up meeting scheduled on {event.on.isoformat()}"
        case Case.BottleneckReported():
            return f"Bottleneck reported (theme: {event.theme})"
        case Case.CaseClosed():
            return "Case closed"
        case Case.MeetingPlanned():
            place = "" if event.personal["place"] is None else f" at {event.personal['place']}"
            return (
                f"Meeting {event.meeting} planned on {event.on.isoformat()}{place}, "
                f"{event.invited_count} invited"
                + (
                    f"; not to be invited at the client's wish: "
                    f"{', '.join(event.personal['not_invited'])}"
                    if event.personal["not_invited"]
                    else ""
                )
            )
        case Case.MeetingCancelled():
            return f"Meeting {event.meeting} cancelled"
        case Case.PreparationRecorded():
            done = sum(1 for v in event.checklist.values() if v)
            return (
                f"Preparation of meeting {event.meeting} recorded: {done} of "
                f"{len(event.checklist)} item(s) done"
            )
        case Case.CoordinatorDesignated(personal=p):
            chosen = ", chosen by the client" if event.chosen_by_client else ""
            return f"Coordinator (spilfiguur) designated: {p['coordinator']}{chosen}"
        case Case.AttendanceCorrected():
            return (
                f"Attendance of meeting {event.meeting} corrected: "
                f"{_presence('young person', event.youth)}, "
                f"{_presence('parents', event.parents)}, "
                f"{_presence('trusted person', event.trusted_person)}, "
                f"{event.professionals_present} professional(s)"
            )
        case Case.WorkplanRevised(personal=p):
            coordinator = p["coordinator"] or "none"
            return (
                f"Workplan of meeting {event.meeting} revised: {event.agreement_count} "
                f"agreement(s), coordinator {coordinator}"
            )
        case Case.MeetingRetracted():
            return f"Meeting {event.meeting} retracted (recorded in error)"
        case Case.CaseReopened():
            return "Case reopened"
        case _:
            assert_never(event)


@dataclass(frozen=True)
class TrailEntry:
    """One line of a case's audit trail."""

    seq: int
    type: str
    at: str
    by: str
    summary: str


class AuditTrail(Projection):
    """Per case, every event in order."""

    name: ClassVar[str] = "audit_trail"
    version: ClassVar[int] = 1
    tables: ClassVar[tuple[str, ...]] = ("audit_trail",)

    def create(self, tx: Tx) -> None:
        tx.execute(
            "CREATE TABLE IF NOT EXISTS audit_trail ("
            " case_id TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL,"
            " at TEXT NOT NULL, recorded_by TEXT NOT NULL, summary TEXT NOT NULL,"
            " PRIMARY KEY (case_id, seq))"
        )

    def apply(self, tx: Tx, events: Sequence[CaseEvent]) -> None:
        tx.executemany(
            "INSERT INTO audit_trail (case_id, seq, type, at, recorded_by, summary)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    str(e.originator_id),
                    e.originator_version,
                    type(e).__name__,
                    e.timestamp.isoformat(),
                    e.recorded_by,
                    summary(e),
                )
                for e in events
            ],
        )


def history(views: ViewStore, case_id: UUID) -> list[TrailEntry]:
    """A case's audit trail, oldest first; empty when the case is unknown."""
    rows = views.read(
        "SELECT seq, type, at, recorded_by, summary FROM audit_trail"
        " WHERE case_id = ? ORDER BY seq",
        (str(case_id),),
    )
    return [TrailEntry(int(r[0]), r[1], r[2], r[3], r[4]) for r in rows]
