"""Between stream lines and the case: a line is the command it records; an event is a line.

Both directions dispatch with ``match`` over a union ending in ``assert_never``: a new line
type or event type that is not mapped here fails the type check.
"""

from __future__ import annotations

import json
from typing import Any, assert_never

from overleg.aggregates.case import Case, CaseEvent
from overleg.aggregates.values import Agreement, Attendance, Client, Party
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
from overleg.streams.contract import (
    BottleneckReportedLine,
    CaseClosedLine,
    ChairAppointedLine,
    ConsentGivenLine,
    ConsentWithdrawnLine,
    FollowUpScheduledLine,
    MeetingHeldLine,
    PartyData,
    RegistrationCompletedLine,
    RequestDeclinedLine,
    RequestedLine,
    StreamLine,
    WorkplanAgreedLine,
)


def _party(data: PartyData) -> Party:
    return Party(data.ref, data.role)


def command_of(line: StreamLine) -> Command:
    """The command a stream line records (its ``at`` and ``by`` say when and by whom)."""
    case_id = line.case
    match line:
        case RequestedLine(data=d):
            return SubmitRequest(
                programme=d.programme,
                region=d.region,
                requested_by=_party(d.requested_by),
                channel=d.channel,
                client=Client(d.client.ref, d.client.birth_date),
                question=d.question,
                case_id=case_id,
            )
        case RequestDeclinedLine(data=d):
            return Decline(case_id, d.reason)
        case ConsentGivenLine(data=d):
            return GiveConsent(case_id, _party(d.party))
        case ConsentWithdrawnLine(data=d):
            return WithdrawConsent(case_id, _party(d.party), d.reason)
        case ChairAppointedLine(data=d):
            return AppointChair(case_id, d.chair)
        case MeetingHeldLine(data=d):
            a = d.attendance
            return HoldMeeting(
                case_id,
                held_on=d.held_on,
                place=d.place,
                attendance=Attendance(a.youth, a.parents, a.trusted_person, tuple(a.professionals)),
                meeting=d.meeting,
            )
        case WorkplanAgreedLine(data=d):
            return AgreeWorkplan(
                case_id,
                meeting=d.meeting,
                agreements=[Agreement(a.who, a.what, a.due, a.domain) for a in d.agreements],
                coordinator=d.coordinator,
                crisis_plan=d.crisis_plan,
            )
        case RegistrationCompletedLine(data=d):
            return CompleteRegistration(case_id, d.meeting)
        case FollowUpScheduledLine(data=d):
            return ScheduleFollowUp(case_id, d.on)
        case BottleneckReportedLine(data=d):
            return ReportBottleneck(case_id, d.theme, d.description)
        case CaseClosedLine(data=d):
            return CloseCase(case_id, d.reason)
        case _:
            assert_never(line)


def event_data(event: CaseEvent) -> dict[str, Any]:
    """The contract's ``data`` of a stored event: its facts and personal fields joined again."""
    match event:
        case Case.Requested(personal=p):
            return {
                "programme": event.programme,
                "region": event.region,
                "requested_by": {"ref": p["requester_ref"], "role": event.requester_role},
                "channel": event.channel,
                "client": {"ref": p["client_ref"], "birth_date": p["client_birth_date"]},
                "question": p["question"],
            }
        case Case.RequestDeclined(personal=p) | Case.CaseClosed(personal=p):
            return {"reason": p["reason"]}
        case Case.ConsentGiven(personal=p):
            return {"party": {"ref": p["ref"], "role": event.role}}
        case Case.ConsentWithdrawn(personal=p):
            return {"party": {"ref": p["ref"], "role": event.role}, "reason": p["reason"]}
        case Case.ChairAppointed(personal=p):
            return {"chair": p["chair"]}
        case Case.MeetingHeld(personal=p):
            return {
                "meeting": event.meeting,
                "held_on": event.held_on.isoformat(),
                "place": p["place"],
                "attendance": {
                    "youth": event.youth,
                    "parents": event.parents,
                    "trusted_person": event.trusted_person,
                    "professionals": list(p["professionals"]),
                },
            }
        case Case.WorkplanAgreed(personal=p):
            return {
                "meeting": event.meeting,
                "agreements": [dict(a) for a in p["agreements"]],
                "coordinator": p["coordinator"],
                "crisis_plan": event.crisis_plan,
            }
        case Case.RegistrationCompleted():
            return {"meeting": event.meeting}
        case Case.FollowUpScheduled():
            return {"on": event.on.isoformat()}
        case Case.BottleneckReported(personal=p):
            return {"theme": event.theme, "description": p["description"]}
        case _:
            assert_never(event)


def event_line(event: CaseEvent) -> dict[str, Any]:
    """One line of the stream for a stored case event."""
    return {
        "case": str(event.originator_id),
        "seq": event.originator_version,
        "type": type(event).__name__,
        "at": event.timestamp.isoformat(),
        "by": event.recorded_by,
        "data": event_data(event),
    }


def dumps_line(line: dict[str, Any]) -> str:
    """A stream line as compact JSON (UTF-8 text, not escaped)."""
    return json.dumps(line, ensure_ascii=False, separators=(",", ":"))
