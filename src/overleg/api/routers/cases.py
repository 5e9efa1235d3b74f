"""Cases: one endpoint per command, the case view, the case list, history and who read it."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from overleg.aggregates.case import Case
from overleg.aggregates.values import (
    Agreement,
    Attendance,
    Client,
    Party,
    Programme,
    Region,
)
from overleg.api import records
from overleg.api.deps import Caller, Svc, Version
from overleg.api.idempotency import IdempotentRoute
from overleg.api.problems import responses
from overleg.api.schemas import (
    AgreementOut,
    BottleneckIn,
    CaseList,
    CaseOut,
    CaseReadOut,
    ChairIn,
    ConsentIn,
    ConsentOut,
    FollowUpIn,
    HistoryEntry,
    MeetingIn,
    ReasonIn,
    Recorded,
    RequestIn,
    WithdrawIn,
    WorkplanIn,
)
from overleg.application import CaseNotFound
from overleg.policies import access
from overleg.policies.access import REF_PATTERN, Principal, StaffRole
from overleg.projections.audit_trail import summary
from overleg.projections.case_view import CaseFilter, CaseView, Status, list_cases, view_of

router = APIRouter(prefix="/cases", tags=["cases"], route_class=IdempotentRoute)

COMMAND_PROBLEMS = responses(401, 403, 404, 409, 412, 422, 428)


def _recorded(case: Case, response: Response, event: str) -> Recorded:
    response.headers["ETag"] = f'"{case.version}"'
    return Recorded(case_id=str(case.id), version=case.version, recorded=event)


def _authorised(svc: Svc, who: Principal, case_id: UUID, command: str) -> None:
    access.may_command(who, command, svc.app.get_case(case_id))


def _request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", ""))


@router.post(
    "",
    status_code=201,
    summary="Submit a request (aanvraag)",
    responses=responses(401, 403, 409, 422),
)
def submit_request(body: RequestIn, who: Caller, svc: Svc, response: Response) -> Recorded:
    """Open a case with a request, for the continuity team or a professional."""
    access.may_request(
        who, body.region.value, Party(body.requested_by.ref, body.requested_by.role), body.channel
    )
    case = svc.app.request(
        case_id=uuid.uuid4(),
        programme=body.programme,
        region=body.region,
        requested_by=Party(body.requested_by.ref, body.requested_by.role),
        channel=body.channel,
        client=Client(body.client.ref, body.client.birth_date),
        question=body.question,
        by=who.ref,
    )
    response.headers["Location"] = f"/cases/{case.id}"
    return _recorded(case, response, "Requested")


@router.post("/{case_id}/decline", summary="Decline the request", responses=COMMAND_PROBLEMS)
def decline(
    case_id: UUID, body: ReasonIn, who: Caller, svc: Svc, version: Version, response: Response
) -> Recorded:
    """The continuity team declines a request; only before any meeting. The case ends."""
    _authorised(svc, who, case_id, "decline")
    case = svc.app.decline(case_id, reason=body.reason, by=who.ref, expected_version=version)
    return _recorded(case, response, "RequestDeclined")


@router.post("/{case_id}/consents", summary="Record a consent", responses=COMMAND_PROBLEMS)
def give_consent(
    case_id: UUID, body: ConsentIn, who: Caller, svc: Svc, version: Version, response: Response
) -> Recorded:
    """A party consents to the consultation (toestemming)."""
    _authorised(svc, who, case_id, "give_consent")
    party = Party(body.party.ref, body.party.role)
    case = svc.app.give_consent(case_id, party=party, by=who.ref, expected_version=version)
    return _recorded(case, response, "ConsentGiven")


@router.post(
    "/{case_id}/consents/withdraw", summary="Withdraw a consent", responses=COMMAND_PROBLEMS
)
def withdraw_consent(
    case_id: UUID, body: WithdrawIn, who: Caller, svc: Svc, version: Version, response: Response
) -> Recorded:
    """A party withdraws a standing consent."""
    _authorised(svc, who, case_id, "withdraw_consent")
    case = svc.app.withdraw_consent(
        case_id,
        party=Party(body.party.ref, body.party.role),
        reason=body.reason,
        by=who.ref,
        expected_version=version,
    )
    return _recorded(case, response, "ConsentWithdrawn")


@router.put("/{case_id}/chair", summary="Appoint the chair", responses=COMMAND_PROBLEMS)
def appoint_chair(
    case_id: UUID, body: ChairIn, who: Caller, svc: Svc, version: Version, response: Response
) -> Recorded:
    """The continuity team appoints a neutral chair; a later appointment replaces the chair."""
    _authorised(svc, who, case_id, "appoint_chair")
    case = svc.app.appoint_chair(case_id, chair=body.chair, by=who.ref, expected_version=version)
    return _recorded(case, response, "ChairAppointed")


@router.post(
    "/{case_id}/meetings",
    status_code=201,
    summary="Register a held meeting",
    responses=COMMAND_PROBLEMS,
)
def hold_meeting(
    case_id: UUID, body: MeetingIn, who: Caller, svc: Svc, version: Version, response: Response
) -> Recorded:
    """The chair registers a held meeting and its attendance; it gets the next number."""
    _authorised(svc, who, case_id, "hold_meeting")
    a = body.attendance
    case = svc.app.hold_meeting(
        case_id,
        held_on=body.held_on,
        place=body.place,
        attendance=Attendance(a.youth, a.parents, a.trusted_person, tuple(a.professionals)),
        by=who.ref,
        expected_version=version,
    )
    response.headers["Location"] = f"/cases/{case.id}/meetings/{len(case.meetings)}"
    return _recorded(case, response, "MeetingHeld")


@router.put(
    "/{case_id}/meetings/{meeting}/workplan",
    summary="Record a meeting's workplan",
    responses=COMMAND_PROBLEMS,
)
def agree_workplan(
    case_id: UUID,
    meeting: Annotated[int, Path(ge=1, le=10_000)],
    body: WorkplanIn,
    who: Caller,
    svc: Svc,
    version: Version,
    response: Response,
) -> Recorded:
    """The workplan of a meeting: agreements, the coordinator (hulpcoördinator), crisis plan."""
    _authorised(svc, who, case_id, "agree_workplan")
    case = svc.app.agree_workplan(
        case_id,
        meeting=meeting,
        agreements=[Agreement(a.who, a.what, a.due, a.domain) for a in body.agreements],
        coordinator=body.coordinator,
        crisis_plan=body.crisis_plan,
        by=who.ref,
        expected_version=version,
    )
    return _recorded(case, response, "WorkplanAgreed")


@router.post(
    "/{case_id}/meetings/{meeting}/registration",
    summary="Complete a meeting's registration",
    responses=COMMAND_PROBLEMS,
)
def complete_registration(
    case_id: UUID,
    meeting: Annotated[int, Path(ge=1, le=10_000)],
    who: Caller,
    svc: Svc,
    version: Version,
    response: Response,
) -> Recorded:
    """Mark a meeting as fully registered (it then counts in the attendance figures)."""
    _authorised(svc, who, case_id, "complete_registration")
    case = svc.app.complete_registration(
        case_id, meeting=meeting, by=who.ref, expected_version=version
    )
    return _recorded(case, response, "RegistrationCompleted")


@router.post(
    "/{case_id}/follow-up", summary="Schedule a follow-up meeting", responses=COMMAND_PROBLEMS
)
def schedule_follow_up(
    case_id: UUID, body: FollowUpIn, who: Caller, svc: Svc, version: Version, response: Response
) -> Recorded:
    """Schedule a follow-up meeting (vervolgoverleg)."""
    _authorised(svc, who, case_id, "schedule_follow_up")
    case = svc.app.schedule_follow_up(case_id, on=body.on, by=who.ref, expected_version=version)
    return _recorded(case, response, "FollowUpScheduled")


@router.post(
    "/{case_id}/bottlenecks",
    status_code=201,
    summary="Report a bottleneck",
    responses=COMMAND_PROBLEMS,
)
def report_bottleneck(
    case_id: UUID,
    body: BottleneckIn,
    who: Caller,
    svc: Svc,
    version: Version,
    response: Response,
) -> Recorded:
    """Report a structural, cross-case bottleneck (knelpunt) as policy information."""
    _authorised(svc, who, case_id, "report_bottleneck")
    case = svc.app.report_bottleneck(
        case_id,
        theme=body.theme,
        description=body.description,
        by=who.ref,
        expected_version=version,
    )
    return _recorded(case, response, "BottleneckReported")


@router.post("/{case_id}/close", summary="Close the case", responses=COMMAND_PROBLEMS)
def close_case(
    case_id: UUID, body: ReasonIn, who: Caller, svc: Svc, version: Version, response: Response
) -> Recorded:
    """Close the case."""
    _authorised(svc, who, case_id, "close")
    case = svc.app.close_case(case_id, reason=body.reason, by=who.ref, expected_version=version)
    return _recorded(case, response, "CaseClosed")


# -- queries ---------------------------------------------------------------------------------


def _case_out(view: CaseView, today: datetime) -> CaseOut:
    return CaseOut(
        case_id=view.case_id,
        version=view.version,
        programme=view.programme,
        region=view.region,
        channel=view.channel,
        requested_at=view.requested_at,
        status=view.status,
        chair=view.chair,
        coordinator=view.coordinator,
        meetings_held=view.meetings_held,
        last_meeting_on=view.last_meeting_on,
        next_follow_up_on=view.next_follow_up_on,
        follow_up_overdue=view.follow_up_overdue(today.date()),
        ended=view.ended,
        consents=[ConsentOut(ref=c.ref, role=c.role, given_at=c.given_at) for c in view.consents],
        open_agreements=[
            AgreementOut(meeting=a.meeting, who=a.who, what=a.what, due=a.due, domain=a.domain)
            for a in view.agreements
        ],
    )


def _readable(svc: Svc, who: Principal, case_id: UUID) -> list[Case.Event]:
    case, events = svc.app.replay(case_id)  # one read serves the check and the answer
    if case is None:
        raise CaseNotFound(case_id)
    access.may_read_case(who, case)
    return events


@router.get(
    "/{case_id}",
    summary="Where a case stands now",
    responses=responses(401, 403, 404, 422),
)
def get_case(case_id: UUID, request: Request, who: Caller, svc: Svc, response: Response) -> CaseOut:
    """The case view; its ETag is the case version to send as If-Match with a change."""
    events = _readable(svc, who, case_id)
    records.record_reads(svc.views, who, [str(case_id)], "case", _request_id(request))
    view = view_of(events)
    response.headers["ETag"] = f'"{view.version}"'
    return _case_out(view, svc.app.clock())


@router.get(
    "/{case_id}/history",
    summary="A case's history (audit trail)",
    responses=responses(401, 403, 404, 422),
)
def history(case_id: UUID, request: Request, who: Caller, svc: Svc) -> list[HistoryEntry]:
    """Every event of the case in order: when, by whom, and what happened."""
    events = _readable(svc, who, case_id)
    records.record_reads(svc.views, who, [str(case_id)], "history", _request_id(request))
    return [
        HistoryEntry(
            seq=e.originator_version,
            type=type(e).__name__,
            at=e.timestamp.isoformat(),
            by=e.recorded_by,
            summary=summary(e),
        )
        for e in events
    ]


@router.get(
    "/{case_id}/reads",
    summary="Who read a case (auditors)",
    responses=responses(401, 403, 404, 422),
)
def reads(case_id: UUID, who: Caller, svc: Svc) -> list[CaseReadOut]:
    """Every recorded read of the case's data: who, what, when, in which request."""
    access.may_read_access_log(who)
    svc.app.get_case(case_id)
    return [
        CaseReadOut(reader=r.reader, role=r.role, what=r.what, at=r.at, request_id=r.request_id)
        for r in records.reads_of(svc.views, str(case_id))
    ]


@router.get("", summary="List cases", responses=responses(401, 403, 422))
async def list_(
    request: Request,
    who: Caller,
    svc: Svc,
    status: Status | None = None,
    region: Region | None = None,
    programme: Programme | None = None,
    chair: Annotated[str | None, Query(pattern=REF_PATTERN, max_length=200)] = None,
    coordinator: Annotated[str | None, Query(pattern=REF_PATTERN, max_length=200)] = None,
    overdue: Annotated[
        bool, Query(description="Only cases whose scheduled follow-up is overdue")
    ] = False,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CaseList:
    """Cases you have a part in, filtered, most recently changed first."""
    access.may_list_cases(who)
    today = svc.app.clock()
    where = CaseFilter(
        status=None if status is None else status.value,
        region=None if region is None else region.value,
        programme=None if programme is None else programme.value,
        chair=chair,
        coordinator=coordinator,
        overdue_on=today.astimezone(UTC).date() if overdue else None,
    )
    where = _scoped(where, who)
    page = await run_in_threadpool(
        lambda: list_cases(svc.fresh_views(), where, offset=offset, limit=limit)
    )
    ids = [v.case_id for v in page.items]
    await run_in_threadpool(
        records.record_reads, svc.views, who, ids, "case list", _request_id(request)
    )
    return CaseList(
        items=[_case_out(v, today) for v in page.items],
        total=page.total,
        offset=page.offset,
        limit=page.limit,
    )


def _scoped(where: CaseFilter, who: Principal) -> CaseFilter:
    """Narrow a list to the cases the caller has a part in."""
    if who.role is StaffRole.TEAM and who.region is not None:
        if where.region not in (None, who.region):
            return replace(where, region="", participant=None)  # matches nothing
        return replace(where, region=who.region)
    if who.role is StaffRole.CHAIR:
        if where.chair not in (None, who.ref):
            return replace(where, chair="")
        return replace(where, chair=who.ref)
    if who.role is StaffRole.PROFESSIONAL:
        return replace(where, participant=who.ref)
    return where
