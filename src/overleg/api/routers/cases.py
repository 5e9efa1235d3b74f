"""Cases: one endpoint per command, the case view, the case list, history and who read it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from overleg.aggregates.case import Case, CaseEvent
from overleg.aggregates.values import (
    Agreement,
    Attendance,
    Client,
    Party,
    Programme,
    Region,
)
from overleg.aggregates.vocabulary import REF_MAX_LENGTH, REF_PATTERN
from overleg.api import headers
from overleg.api.deps import SIGN_IN_PROBLEMS, VERSION_PROBLEMS, Caller, Svc, Version
from overleg.api.idempotency import StaffKey
from overleg.api.problems import (
    FORBIDDEN,
    INVALID_INPUT,
    KEY_REUSED,
    MALFORMED_BODY,
    NOT_FOUND,
    OUTCOME_UNKNOWN,
    RULE_BROKEN,
    STORE_BUSY,
    responses,
)
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
    PartyIn,
    ReasonIn,
    Recorded,
    RequestIn,
    WithdrawIn,
    WorkplanIn,
)
from overleg.application import CaseNotFound, CommandKey, Outcome
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
from overleg.policies.access import Principal, StaffRole
from overleg.projections.audit_trail import summary
from overleg.projections.case_view import CaseFilter, CaseView, Status, list_cases, view_of

router = APIRouter(prefix="/cases", tags=["cases"])

READ = (*SIGN_IN_PROBLEMS, FORBIDDEN, INVALID_INPUT, STORE_BUSY)
REQUEST = (*READ, MALFORMED_BODY, RULE_BROKEN, KEY_REUSED, OUTCOME_UNKNOWN)
CHANGE = (*REQUEST, *VERSION_PROBLEMS, NOT_FOUND)  # a command on an existing case
CHANGE_WITHOUT_BODY = tuple(kind for kind in CHANGE if kind is not MALFORMED_BODY)
RECORDED = (headers.ETAG, headers.IDEMPOTENCY_KEY)
REPLAYED = (headers.IDEMPOTENCY_REPLAYED,)


def _changed(
    status: int = 200, *, located: bool = False, body: bool = True
) -> dict[int | str, Any]:
    """The answers of a command on a case: what it recorded, or each problem it can meet."""
    required = (*RECORDED, headers.LOCATION) if located else RECORDED
    return {
        **headers.success(
            status, "Recorded; the ETag is the case's new version", required, REPLAYED
        ),
        **responses(*(CHANGE if body else CHANGE_WITHOUT_BODY)),
    }


Meeting = Annotated[int, Path(ge=1, le=10_000, description="The meeting's number in the case")]


def _run(
    svc: Svc,
    command: Command,
    who: Principal,
    version: int | None,
    key: CommandKey,
    response: Response,
) -> Recorded:
    """Carry out one command and answer what it recorded."""
    return _answer(svc.app.handle(command, who, version, key), key, response)


def _answer(outcome: Outcome, key: CommandKey, response: Response) -> Recorded:
    """What a command recorded, its ETag the case's new version."""
    response.headers["ETag"] = f'"{outcome.version}"'
    response.headers["Idempotency-Key"] = key.key
    if outcome.replayed:
        response.headers["Idempotency-Replayed"] = "true"
    return Recorded(
        case_id=str(outcome.case_id),
        version=outcome.version,
        recorded=outcome.event_types[-1],
    )


def _party(body: PartyIn) -> Party:
    return Party(body.ref, body.role)


@router.post(
    "",
    status_code=201,
    summary="Submit a request (aanvraag)",
    responses={
        **headers.success(
            201,
            "Recorded: a case is opened; Location is the case, its ETag the version",
            (*RECORDED, headers.LOCATION),
            REPLAYED,
        ),
        **responses(*REQUEST),
    },
)
def submit_request(
    body: RequestIn, who: Caller, svc: Svc, key: StaffKey, response: Response
) -> Recorded:
    """Open a case with a request, for the continuity team or a professional."""
    command = SubmitRequest(
        programme=body.programme,
        region=body.region,
        requested_by=_party(body.requested_by),
        channel=body.channel,
        client=Client(body.client.ref, body.client.birth_date),
        question=body.question,
    )
    answer = _run(svc, command, who, None, key, response)
    response.headers["Location"] = f"/cases/{answer.case_id}"
    return answer


@router.post("/{case_id}/decline", summary="Decline the request", responses=_changed())
def decline(
    case_id: UUID,
    body: ReasonIn,
    who: Caller,
    svc: Svc,
    version: Version,
    key: StaffKey,
    response: Response,
) -> Recorded:
    """The continuity team declines a request; only before any meeting. The case ends."""
    return _run(svc, Decline(case_id, body.reason), who, version, key, response)


@router.post("/{case_id}/consents", summary="Record a consent", responses=_changed())
def give_consent(
    case_id: UUID,
    body: ConsentIn,
    who: Caller,
    svc: Svc,
    version: Version,
    key: StaffKey,
    response: Response,
) -> Recorded:
    """A party consents to the consultation (toestemming)."""
    return _run(svc, GiveConsent(case_id, _party(body.party)), who, version, key, response)


@router.post("/{case_id}/consents/withdraw", summary="Withdraw a consent", responses=_changed())
def withdraw_consent(
    case_id: UUID,
    body: WithdrawIn,
    who: Caller,
    svc: Svc,
    version: Version,
    key: StaffKey,
    response: Response,
) -> Recorded:
    """A party withdraws a standing consent."""
    command = WithdrawConsent(case_id, _party(body.party), body.reason)
    return _run(svc, command, who, version, key, response)


@router.put("/{case_id}/chair", summary="Appoint the chair", responses=_changed())
def appoint_chair(
    case_id: UUID,
    body: ChairIn,
    who: Caller,
    svc: Svc,
    version: Version,
    key: StaffKey,
    response: Response,
) -> Recorded:
    """The continuity team appoints a neutral chair; a later appointment replaces the chair."""
    return _run(svc, AppointChair(case_id, body.chair), who, version, key, response)


@router.post(
    "/{case_id}/meetings",
    status_code=201,
    summary="Register a held meeting",
    responses=_changed(201, located=True),
)
def hold_meeting(
    case_id: UUID,
    body: MeetingIn,
    who: Caller,
    svc: Svc,
    version: Version,
    key: StaffKey,
    response: Response,
) -> Recorded:
    """The chair registers a held meeting and its attendance; it gets the next number."""
    a = body.attendance
    command = HoldMeeting(
        case_id,
        held_on=body.held_on,
        place=body.place,
        attendance=Attendance(a.youth, a.parents, a.trusted_person, tuple(a.professionals)),
    )
    outcome = svc.app.handle(command, who, version, key)
    held = outcome.events[-1]
    assert isinstance(held, Case.MeetingHeld)
    response.headers["Location"] = f"/cases/{case_id}/meetings/{held.meeting}"
    return _answer(outcome, key, response)


@router.put(
    "/{case_id}/meetings/{meeting}/workplan",
    summary="Record a meeting's workplan",
    responses=_changed(),
)
def agree_workplan(
    case_id: UUID,
    meeting: Meeting,
    body: WorkplanIn,
    who: Caller,
    svc: Svc,
    version: Version,
    key: StaffKey,
    response: Response,
) -> Recorded:
    """The workplan of a meeting: agreements, the coordinator (hulpcoördinator), crisis plan."""
    command = AgreeWorkplan(
        case_id,
        meeting=meeting,
        agreements=[Agreement(a.who, a.what, a.due, a.domain) for a in body.agreements],
        coordinator=body.coordinator,
        crisis_plan=body.crisis_plan,
    )
    return _run(svc, command, who, version, key, response)


@router.post(
    "/{case_id}/meetings/{meeting}/registration",
    summary="Complete a meeting's registration",
    responses=_changed(body=False),
)
def complete_registration(
    case_id: UUID,
    meeting: Meeting,
    who: Caller,
    svc: Svc,
    version: Version,
    key: StaffKey,
    response: Response,
) -> Recorded:
    """Mark a meeting as fully registered (it then counts in the attendance figures)."""
    return _run(svc, CompleteRegistration(case_id, meeting), who, version, key, response)


@router.post("/{case_id}/follow-up", summary="Schedule a follow-up meeting", responses=_changed())
def schedule_follow_up(
    case_id: UUID,
    body: FollowUpIn,
    who: Caller,
    svc: Svc,
    version: Version,
    key: StaffKey,
    response: Response,
) -> Recorded:
    """Schedule a follow-up meeting (vervolgoverleg)."""
    return _run(svc, ScheduleFollowUp(case_id, body.on), who, version, key, response)


@router.post(
    "/{case_id}/bottlenecks",
    status_code=201,
    summary="Report a bottleneck",
    responses=_changed(201),
)
def report_bottleneck(
    case_id: UUID,
    body: BottleneckIn,
    who: Caller,
    svc: Svc,
    version: Version,
    key: StaffKey,
    response: Response,
) -> Recorded:
    """Report a structural, cross-case bottleneck (knelpunt) as policy information."""
    command = ReportBottleneck(case_id, body.theme, body.description)
    return _run(svc, command, who, version, key, response)


@router.post("/{case_id}/close", summary="Close the case", responses=_changed())
def close_case(
    case_id: UUID,
    body: ReasonIn,
    who: Caller,
    svc: Svc,
    version: Version,
    key: StaffKey,
    response: Response,
) -> Recorded:
    """Close the case."""
    return _run(svc, CloseCase(case_id, body.reason), who, version, key, response)


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


def _request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", ""))


def _readable(svc: Svc, who: Principal, case_id: UUID) -> list[CaseEvent]:
    case, events = svc.app.replay(case_id)  # one read serves the check and the answer
    if case is None:
        raise CaseNotFound(case_id)
    access.may_read_case(who, case)
    return events


@router.get(
    "/{case_id}",
    summary="Where a case stands now",
    responses={
        **headers.success(200, "The case; its ETag is its version", (headers.ETAG,)),
        **responses(*READ, NOT_FOUND),
    },
)
def get_case(case_id: UUID, request: Request, who: Caller, svc: Svc, response: Response) -> CaseOut:
    """The case view; its ETag is the case version to send as If-Match with a change."""
    events = _readable(svc, who, case_id)
    svc.reads.record(who, [str(case_id)], "case", _request_id(request))
    view = view_of(events)
    response.headers["ETag"] = f'"{view.version}"'
    return _case_out(view, svc.app.clock())


@router.get(
    "/{case_id}/history",
    summary="A case's history (audit trail)",
    responses=responses(*READ, NOT_FOUND),
)
def history(case_id: UUID, request: Request, who: Caller, svc: Svc) -> list[HistoryEntry]:
    """Every event of the case in order: when, by whom, and what happened."""
    events = _readable(svc, who, case_id)
    svc.reads.record(who, [str(case_id)], "history", _request_id(request))
    return [
        HistoryEntry(
            seq=e.originator_version,
            type=type(e).__name__,
            at=e.timestamp,
            by=e.recorded_by,
            summary=summary(e),
        )
        for e in events
    ]


@router.get(
    "/{case_id}/reads",
    summary="Who read a case (auditors)",
    responses=responses(*READ, NOT_FOUND),
)
def reads(case_id: UUID, who: Caller, svc: Svc) -> list[CaseReadOut]:
    """Every recorded read of the case's data: who, what, when, in which request."""
    access.may_read_access_log(who)
    svc.app.get_case(case_id)
    return [
        CaseReadOut(reader=r.reader, role=r.role, what=r.what, at=r.at, request_id=r.request_id)
        for r in svc.reads.of(str(case_id))
    ]


@router.get("", summary="List cases", responses=responses(*READ))
async def list_(
    request: Request,
    who: Caller,
    svc: Svc,
    status: Status | None = None,
    region: Region | None = None,
    programme: Programme | None = None,
    chair: Annotated[str | None, Query(pattern=REF_PATTERN, max_length=REF_MAX_LENGTH)] = None,
    coordinator: Annotated[
        str | None, Query(pattern=REF_PATTERN, max_length=REF_MAX_LENGTH)
    ] = None,
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
    await run_in_threadpool(svc.reads.record, who, ids, "case list", _request_id(request))
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
