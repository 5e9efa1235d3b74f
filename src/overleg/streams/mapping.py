"""Between stream lines and the case: a line is the command it records; an event is a line.

Both directions dispatch with ``match`` over a union ending in ``assert_never``: a new line
type or event type that is not mapped here fails the type check.
"""

from __future__ import annotations

import json
from typing import Any, assert_never

from overleg.aggregates.case import Case, CaseEvent
from overleg.aggregates.values import Agreement, Attendance, Client, Invitee, Party
from overleg.commands import (
    AgreeWorkplan,
    AppointChair,
    CancelMeeting,
    CloseCase,
    Command,
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
from overleg.streams.contract import (
    AgreementData,
    AttendanceCorrectedLine,
    AttendanceData,
    BottleneckReportedLine,
    CaseClosedLine,
    CaseReopenedLine,
    ChairAppointedLine,
    ConsentGivenLine,
    ConsentWithdrawnLine,
    CoordinatorDesignatedLine,
    CrisisPlanData,
    FollowUpScheduledLine,
    MeetingCancelledLine,
    MeetingHeldLine,
    MeetingPlannedLine,
    MeetingRetractedLine,
    PartyData,
    PreparationRecordedLine,
    RegistrationCompletedLine,
    RequestDeclinedLine,
    RequestedLine,
    RequesterData,
    StreamLine,
    WorkplanAgreedLine,
    WorkplanRevisedLine,
)


def _party(data: PartyData | RequesterData) -> Party:
    return Party(data.ref, data.role)


def _attendance(a: AttendanceData) -> Attendance:
    return Attendance.of(a.youth, a.parents, a.trusted_person, tuple(a.professionals), a.extras())


def _agreements(agreements: list[AgreementData]) -> list[Agreement]:
    return [Agreement(a.who, a.what, a.due, a.domain, a.goal) for a in agreements]


def _crisis(plan: bool | CrisisPlanData) -> tuple[bool, tuple[str, ...] | None]:
    if isinstance(plan, CrisisPlanData):
        return True, tuple(plan.steps)
    return plan, None


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
                municipality=d.municipality,
                goal=d.goal,
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
            return HoldMeeting(
                case_id,
                held_on=d.held_on,
                place=d.place,
                attendance=_attendance(d.attendance),
                meeting=d.meeting,
            )
        case WorkplanAgreedLine(data=d):
            crisis_plan, steps = _crisis(d.crisis_plan)
            return AgreeWorkplan(
                case_id,
                meeting=d.meeting,
                agreements=_agreements(d.agreements),
                coordinator=d.coordinator,
                crisis_plan=crisis_plan,
                crisis_steps=steps,
            )
        case RegistrationCompletedLine(data=d):
            return CompleteRegistration(case_id, d.meeting)
        case FollowUpScheduledLine(data=d):
            return ScheduleFollowUp(case_id, d.on)
        case BottleneckReportedLine(data=d):
            return ReportBottleneck(case_id, d.theme, d.description)
        case CaseClosedLine(data=d):
            return CloseCase(case_id, d.reason)
        case MeetingPlannedLine(data=d):
            return PlanMeeting(
                case_id,
                on=d.on,
                place=d.place,
                invited=[Invitee(i.ref, i.role) for i in d.invited],
                not_invited=list(d.not_invited),
                goal=d.goal,
                meeting=d.meeting,
            )
        case MeetingCancelledLine(data=d):
            return CancelMeeting(case_id, d.meeting, d.reason)
        case PreparationRecordedLine(data=d):
            return RecordPreparation(case_id, d.meeting, d.checklist.given(), d.prepared_by)
        case CoordinatorDesignatedLine(data=d):
            return DesignateCoordinator(case_id, d.coordinator, d.chosen_by_client)
        case AttendanceCorrectedLine(data=d):
            return CorrectAttendance(case_id, d.meeting, _attendance(d.attendance), d.reason)
        case WorkplanRevisedLine(data=d):
            crisis_plan, steps = _crisis(d.crisis_plan)
            return ReviseWorkplan(
                case_id,
                meeting=d.meeting,
                agreements=_agreements(d.agreements),
                coordinator=d.coordinator,
                crisis_plan=crisis_plan,
                reason=d.reason,
                crisis_steps=steps,
            )
        case MeetingRetractedLine(data=d):
            return RetractMeeting(case_id, d.meeting, d.reason)
        case CaseReopenedLine(data=d):
            return ReopenCase(case_id, d.reason)
        case _:
            assert_never(line)


def event_data(event: CaseEvent) -> dict[str, Any]:
    """The contract's ``data`` of a stored event: its facts and personal fields joined again."""
    match event:
        case Case.Requested(personal=p):
            data: dict[str, Any] = {
                "programme": event.programme,
                "region": event.region,
                "requested_by": {"ref": p["requester_ref"], "role": event.requester_role},
                "channel": event.channel,
                "client": {"ref": p["client_ref"], "birth_date": p["client_birth_date"]},
                "question": p["question"],
            }
            if event.municipality is not None:
                data["municipality"] = event.municipality
            if "goal" in p:
                data["goal"] = p["goal"]
            return data
        case (
            Case.RequestDeclined(personal=p)
            | Case.CaseClosed(personal=p)
            | Case.CaseReopened(personal=p)
        ):
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
                "attendance": _attendance_data(event),
            }
        case Case.WorkplanAgreed(personal=p):
            return _workplan_data(event)
        case Case.RegistrationCompleted():
            return {"meeting": event.meeting}
        case Case.FollowUpScheduled():
            return {"on": event.on.isoformat()}
        case Case.BottleneckReported(personal=p):
            return {"theme": event.theme, "description": p["description"]}
        case Case.MeetingPlanned(personal=p):
            planned: dict[str, Any] = {
                "meeting": event.meeting,
                "on": event.on.isoformat(),
                "place": p["place"],
            }
            if "goal" in p:
                planned["goal"] = p["goal"]
            planned["invited"] = [dict(i) for i in p["invited"]]
            planned["not_invited"] = list(p["not_invited"])
            return planned
        case Case.MeetingCancelled(personal=p) | Case.MeetingRetracted(personal=p):
            return {"meeting": event.meeting, "reason": p["reason"]}
        case Case.PreparationRecorded(personal=p):
            prepared: dict[str, Any] = {
                "meeting": event.meeting,
                "checklist": dict(event.checklist),
            }
            if "prepared_by" in p:
                prepared["prepared_by"] = p["prepared_by"]
            return prepared
        case Case.CoordinatorDesignated(personal=p):
            return {"coordinator": p["coordinator"], "chosen_by_client": event.chosen_by_client}
        case Case.AttendanceCorrected(personal=p):
            return {
                "meeting": event.meeting,
                "attendance": _attendance_data(event),
                "reason": p["reason"],
            }
        case Case.WorkplanRevised(personal=p):
            revised = _workplan_data(event)
            revised["reason"] = p["reason"]
            return revised
        case Case.PersonalDataErased():
            # Not a line of the contract (``in_contract``): the service's own record.
            return {"grounds": event.grounds, "reason": event.reason}
        case _:
            assert_never(event)


def _attendance_data(event: Case.MeetingHeld | Case.AttendanceCorrected) -> dict[str, Any]:
    data: dict[str, Any] = {
        "youth": event.youth,
        "parents": event.parents,
        "trusted_person": event.trusted_person,
        "professionals": list(event.personal["professionals"]),
    }
    data.update(event.attendance_extra)
    return data


def _workplan_data(event: Case.WorkplanAgreed | Case.WorkplanRevised) -> dict[str, Any]:
    p = event.personal
    crisis: bool | dict[str, Any] = event.crisis_plan
    if "crisis_steps" in p:
        crisis = {"steps": list(p["crisis_steps"])}
    return {
        "meeting": event.meeting,
        "agreements": [dict(a) for a in p["agreements"]],
        "coordinator": p["coordinator"],
        "crisis_plan": crisis,
    }


def in_contract(event: CaseEvent) -> bool:
    """Whether the event is a line of the stream contract. An erasure is not: an export
    writes an erased case's events in their erased form, and no line says it was erased."""
    return not isinstance(event, Case.PersonalDataErased)


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
