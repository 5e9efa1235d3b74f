"""Cases: one endpoint per command, the case view, the case list, history and who read it."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any, cast
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import TypeAdapter
from starlette.concurrency import run_in_threadpool

from overleg.adapters.eventstore import StoreUnavailable
from overleg.adapters.views import OneQuery, TablesMissing
from overleg.aggregates.case import Case, CaseEvent
from overleg.aggregates.values import Client, Invitee, Party, Programme, Region, Role
from overleg.aggregates.vocabulary import REF_MAX_LENGTH, REF_PATTERN
from overleg.api import headers
from overleg.api.answers import JSONBytes
from overleg.api.deps import SIGN_IN_PROBLEMS, VERSION_PROBLEMS, Caller, Svc, Version
from overleg.api.idempotency import StaffKey
from overleg.api.problems import (
    FORBIDDEN,
    INVALID_INPUT,
    KEY_REUSED,
    MALFORMED_BODY,
    NOT_FOUND,
    NOT_READY,
    OUTCOME_UNKNOWN,
    RULE_BROKEN,
    STORE_BUSY,
    responses,
)
from overleg.api.schemas import (
    AttendanceCorrectionIn,
    BottleneckIn,
    CaseList,
    CaseReadOut,
    ChairIn,
    ConsentIn,
    CoordinatorIn,
    ErasureIn,
    FollowUpIn,
    HistoryEntry,
    MeetingIn,
    PartyIn,
    PlanIn,
    PreparationIn,
    ReasonIn,
    Recorded,
    RequestIn,
    RevisedWorkplanIn,
    WithdrawIn,
    WorkplanIn,
)
from overleg.application import CaseNotFound, CommandKey, Outcome, Replay
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
    EraseCase,
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
from overleg.policies import access
from overleg.policies.access import Principal, StaffRole, municipality_key
from overleg.projections.audit_trail import (
    summaries,
    trail_at_head,
    whole_trail_and_parts,
)
from overleg.projections.case_answer import CaseOut, Status, case_answer
from overleg.projections.case_view import (
    CaseFilter,
    CasePage,
    CaseViews,
    MunicipalityOrChair,
    ViewAnswer,
    case_answer_at_head,
    list_cases,
    list_page,
    view_of,
    whole_case_answer,
)
from overleg.projections.statistics import KnownAt

router = APIRouter(prefix="/cases", tags=["cases"])
# The reads, in a router of their own that the app routes first: a read is matched without
# first trying every command's path.
queries = APIRouter(prefix="/cases", tags=["cases"])

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
    return Party(body.ref, Role(body.role.value))


def _located(outcome: Outcome, key: CommandKey, response: Response, case_id: UUID) -> Recorded:
    """The answer of a command that records a meeting (held or planned): Location is the
    meeting, its number the one the recorded event took."""
    recorded = outcome.events[-1]
    assert isinstance(recorded, Case.MeetingHeld | Case.MeetingPlanned)
    response.headers["Location"] = f"/cases/{case_id}/meetings/{recorded.meeting}"
    return _answer(outcome, key, response)


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
    """Open a case with a request, for the continuity team (of its programme and area) or a
    professional (in their own name)."""
    command = SubmitRequest(
        programme=body.programme,
        region=body.region,
        requested_by=Party(body.requested_by.ref, body.requested_by.role),
        channel=body.channel,
        client=Client(body.client.ref, body.client.birth_date),
        question=body.question,
        municipality=body.municipality,
        goal=body.goal,
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
    """The chair registers a held meeting and its attendance: the planned meeting it names
    (or the earliest planned one not yet held), or else the next number."""
    command = HoldMeeting(
        case_id,
        held_on=body.held_on,
        place=body.place,
        attendance=body.attendance.attendance(),
        meeting=body.meeting,
    )
    return _located(svc.app.handle(command, who, version, key), key, response, case_id)


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
    crisis_plan, steps = body.crisis()
    command = AgreeWorkplan(
        case_id,
        meeting=meeting,
        agreements=[a.agreement() for a in body.agreements],
        coordinator=body.coordinator,
        crisis_plan=crisis_plan,
        crisis_steps=steps,
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


# -- contract v2: planning, preparation, the spilfiguur, corrections, reopening ----------------


@router.post(
    "/{case_id}/meeting-plans",
    status_code=201,
    summary="Plan a meeting",
    responses=_changed(201, located=True),
)
def plan_meeting(
    case_id: UUID,
    body: PlanIn,
    who: Caller,
    svc: Svc,
    version: Version,
    key: StaffKey,
    response: Response,
) -> Recorded:
    """The chair plans the next meeting (or re-plans a planned one): when, where, who is
    invited and who, by the client's wish, is not. Location is the planned meeting."""
    command = PlanMeeting(
        case_id,
        on=body.on,
        place=body.place,
        invited=[Invitee(i.ref, Role(i.role.value)) for i in body.invited],
        not_invited=list(body.not_invited),
        goal=body.goal,
        meeting=body.meeting,
    )
    return _located(svc.app.handle(command, who, version, key), key, response, case_id)


@router.post(
    "/{case_id}/meetings/{meeting}/cancel",
    summary="Cancel a planned meeting",
    responses=_changed(),
)
def cancel_meeting(
    case_id: UUID,
    meeting: Meeting,
    body: ReasonIn,
    who: Caller,
    svc: Svc,
    version: Version,
    key: StaffKey,
    response: Response,
) -> Recorded:
    """The chair cancels a planned meeting not yet held; a scheduled follow-up date goes too."""
    return _run(svc, CancelMeeting(case_id, meeting, body.reason), who, version, key, response)


@router.put(
    "/{case_id}/meetings/{meeting}/preparation",
    summary="Record a meeting's preparation",
    responses=_changed(),
)
def record_preparation(
    case_id: UUID,
    meeting: Meeting,
    body: PreparationIn,
    who: Caller,
    svc: Svc,
    version: Version,
    key: StaffKey,
    response: Response,
) -> Recorded:
    """The chair records how a planned (or the next) meeting was prepared with the client;
    recorded again, the last one stands."""
    command = RecordPreparation(case_id, meeting, body.checklist.given(), body.prepared_by)
    return _run(svc, command, who, version, key, response)


@router.put(
    "/{case_id}/coordinator",
    summary="Designate the spilfiguur (hulpcoördinator)",
    responses=_changed(),
)
def designate_coordinator(
    case_id: UUID,
    body: CoordinatorIn,
    who: Caller,
    svc: Svc,
    version: Version,
    key: StaffKey,
    response: Response,
) -> Recorded:
    """The team or the chair designates the case's spilfiguur / hulpcoördinator (a
    professional, not the chair), and whether the client chose them; a later designation
    replaces it."""
    command = DesignateCoordinator(case_id, body.coordinator, body.chosen_by_client)
    return _run(svc, command, who, version, key, response)


@router.post(
    "/{case_id}/meetings/{meeting}/attendance/correct",
    summary="Correct a meeting's attendance",
    responses=_changed(),
)
def correct_attendance(
    case_id: UUID,
    meeting: Meeting,
    body: AttendanceCorrectionIn,
    who: Caller,
    svc: Svc,
    version: Version,
    key: StaffKey,
    response: Response,
) -> Recorded:
    """The chair replaces a held meeting's attendance, recorded wrongly, everywhere
    (statistics included)."""
    command = CorrectAttendance(case_id, meeting, body.attendance.attendance(), body.reason)
    return _run(svc, command, who, version, key, response)


@router.post(
    "/{case_id}/meetings/{meeting}/workplan/revise",
    summary="Revise a meeting's workplan",
    responses=_changed(),
)
def revise_workplan(
    case_id: UUID,
    meeting: Meeting,
    body: RevisedWorkplanIn,
    who: Caller,
    svc: Svc,
    version: Version,
    key: StaffKey,
    response: Response,
) -> Recorded:
    """The chair replaces a meeting's workplan, also after its registration."""
    crisis_plan, steps = body.crisis()
    command = ReviseWorkplan(
        case_id,
        meeting=meeting,
        agreements=[a.agreement() for a in body.agreements],
        coordinator=body.coordinator,
        crisis_plan=crisis_plan,
        reason=body.reason,
        crisis_steps=steps,
    )
    return _run(svc, command, who, version, key, response)


@router.post(
    "/{case_id}/meetings/{meeting}/retract",
    summary="Retract a meeting recorded in error",
    responses=_changed(),
)
def retract_meeting(
    case_id: UUID,
    meeting: Meeting,
    body: ReasonIn,
    who: Caller,
    svc: Svc,
    version: Version,
    key: StaffKey,
    response: Response,
) -> Recorded:
    """The chair retracts a meeting recorded in error (in the wrong case, or with a wrong
    date or place: then register it again). It, its workplan and its registration count
    nowhere from then on; its number is not used again."""
    return _run(svc, RetractMeeting(case_id, meeting, body.reason), who, version, key, response)


@router.post("/{case_id}/reopen", summary="Reopen a closed case", responses=_changed())
def reopen_case(
    case_id: UUID,
    body: ReasonIn,
    who: Caller,
    svc: Svc,
    version: Version,
    key: StaffKey,
    response: Response,
) -> Recorded:
    """The team or the chair reopens a closed case; its meetings continue their numbering."""
    return _run(svc, ReopenCase(case_id, body.reason), who, version, key, response)


@router.post("/{case_id}/erasure", summary="Erase a case's personal data", responses=_changed())
def erase_case(
    case_id: UUID,
    body: ErasureIn,
    who: Caller,
    svc: Svc,
    version: Version,
    key: StaffKey,
    response: Response,
) -> Recorded:
    """The continuity team erases the personal data of a case of its area (GDPR art. 17,
    or at the end of the retention period): the case's data key is destroyed, so no
    reference, name or free text of it can be read again, by anyone. Its facts and every
    figure stay as they were; its history shows each reference as a pseudonym of the case
    (``erased:1``, ...) and each text as ``[erased]``. Nothing more can be recorded on it."""
    return _run(svc, EraseCase(case_id, body.reason, body.grounds), who, version, key, response)


# -- queries ---------------------------------------------------------------------------------


def _ids(request: Request) -> tuple[str, str | None]:
    """The service's id of the request, and the caller's own id for it, if given."""
    caller = getattr(request.state, "caller_request_id", None)
    return str(getattr(request.state, "request_id", "")), caller


AsOf = Annotated[
    KnownAt | None,
    Query(
        description="The case as it stood at this instant (ISO 8601 with its UTC offset; "
        "write + as %2B): only the events recorded at or before it",
        examples=["2026-03-01T00:00:00Z"],
    ),
]


def _as_of(events: list[CaseEvent], as_of: datetime | None, case_id: UUID) -> list[CaseEvent]:
    """The events recorded at or before ``as_of`` (all of them without it). A case that had
    no event yet then did not exist then."""
    if as_of is None:
        return events
    kept = [e for e in events if e.timestamp <= as_of]
    if not kept:
        raise CaseNotFound(case_id)
    return kept


def _readable(svc: Svc, who: Principal, case_id: UUID) -> Replay:
    access.may_read_cases(who)  # by role, before the case is looked up
    replay = svc.app.read(case_id)  # one read serves the check and the answer
    if replay is None or not access.sees(who, replay.case):
        raise CaseNotFound(case_id)  # a case one may not see is one that does not exist
    return replay


@queries.get(
    "/{case_id}",
    summary="Where a case stands now",
    responses={
        **headers.success(200, "The case; its ETag is its version", (headers.ETAG,)),
        **responses(*READ, NOT_FOUND),
    },
    response_model=CaseOut,
)
async def get_case(
    case_id: UUID,
    request: Request,
    who: Caller,
    svc: Svc,
    as_of: AsOf = None,
) -> Response:
    """The case view; its ETag is the case version to send as If-Match with a change. With
    ``as_of``: the case as it stood then (its ETag the version it had then)."""
    access.may_read_cases(who)
    today = svc.app.clock()
    if as_of is None:
        # Rendered once per version and day (the day says whether a follow-up is overdue).
        kept = _known_answer(svc, who, case_id, f"view.json {today.date()}")
        if kept is None:  # not kept: from the case view, when its connection is free
            kept = _viewed_answer(svc, who, case_id, today, at_once=True)
        asked = False
        if kept is None:  # PostgreSQL: asked by the loop, without a thread
            kept, asked = await _viewed_on_loop(svc, who, case_id, today)
        if kept is not None:  # on the event loop: a thread only writes the read's record
            version, body = kept
            await svc.reads.recorded(who, [str(case_id)], "case", *_ids(request))
            return JSONBytes(body, headers={"ETag": f'"{version}"'})
        # Asked and found behind, the view is asked again only where a thread catches it up.
        again = not asked or svc.inline_projections
        ids = _ids(request)
        return await run_in_threadpool(_case, svc, who, case_id, ids, today, None, again)
    return await run_in_threadpool(_case, svc, who, case_id, _ids(request), today, as_of)


def _case(
    svc: Svc,
    who: Principal,
    case_id: UUID,
    ids: tuple[str, str | None],
    today: datetime,
    as_of: datetime | None,
    from_view: bool = True,
) -> Response:
    """The case for ``who``: from its view where ``from_view`` says to look there
    (``_viewed_answer``), else replayed."""
    viewed = None
    if as_of is None and from_view:
        viewed = _viewed_answer(svc, who, case_id, today)
    if viewed is not None:
        svc.reads.record(who, [str(case_id)], "case", *ids)
        return JSONBytes(viewed[1], headers={"ETag": f'"{viewed[0]}"'})
    replay = _readable(svc, who, case_id)
    svc.reads.record(who, [str(case_id)], "case", *ids)
    if as_of is None:
        view = replay.derived("view", lambda: view_of(replay.events))
        body = replay.derived(f"view.json {today.date()}", lambda: case_answer(view, today.date()))
    else:
        view = view_of(_as_of(replay.events, as_of, case_id))
        body = case_answer(view, today.date())
    return JSONBytes(body, headers={"ETag": f'"{view.version}"'})


def _projected_answer(
    svc: Svc,
    who: Principal,
    case_id: UUID,
    kind: Hashable,
    whole: OneQuery[ViewAnswer | None],
    at_head: OneQuery[ViewAnswer | None],
    *,
    at_once: bool,
) -> tuple[int, bytes] | None:
    """A case's answer of ``kind``, with the case's version, read from the projections
    instead of replayed from its events, where they are known to hold every event the log
    holds of the case (the view holds what access decisions on reading ask of a case:
    ``ViewedParts``):

    - SQLite, where this process keeps them: when they hold the log's head (``whole``,
      one statement);
    - PostgreSQL, whichever process keeps them (the worker, as a rule): when, in the one
      statement that reads them, they hold the case's last event (``at_head``).

    A query gives ``None`` when the projections did not apply every event of the case
    (or know no such case). Then, and elsewhere, ``None``: the case is replayed. A case
    they hold that the caller may not see raises ``CaseNotFound`` (``_seen``), as the
    replay would. An answer is kept
    (``Services.viewed``) while the log's head (PostgreSQL: the store's write mark) does
    not move.

    On a thread, where this process keeps them, the projections are caught up first, as
    for a list; ``at_once``, for the event loop, on SQLite: only an answer kept, or one read
    when the projections are known current, and their connection is free, this instant (on
    PostgreSQL the loop asks ``_projected_on_loop``, which gives what is kept as well).
    """
    views = svc.views
    if at_once and views.dialect == "postgresql":
        return None  # on PostgreSQL the loop asks ``_projected_on_loop``, which keeps too
    if svc.inline_projections and not at_once:
        try:
            svc.fresh_views()
        except StoreUnavailable:
            return None  # the events answer, as before the projections were asked
    position: Hashable | None
    if views.dialect == "postgresql":
        position = None if svc.app.writes is None else svc.app.writes.mark()
    elif svc.inline_projections:
        position = svc.head_in_views()
        if position is None:
            return None
    else:
        return None
    key = (case_id, kind)
    kept = None if position is None else svc.viewed.peek(key, position)
    if kept is not None:
        found = cast(ViewAnswer, kept[0])
    else:
        if views.dialect == "postgresql":
            try:
                read_now = views.ask(at_head)
            except TablesMissing:  # no worker (of this version) has made the projections yet
                return None
        elif at_once:
            asked = views.ask_now(whole)
            read_now = None if asked is None else asked[0]
        else:
            read_now = views.ask(whole)
        if read_now is None:
            return None
        found = read_now
        if position is not None:
            svc.viewed.offer(key, position, found)
    return _seen(who, found, case_id)


def _seen(who: Principal, found: ViewAnswer, case_id: UUID) -> tuple[int, bytes]:
    """The version and answer read from the projections, if the caller may see the case;
    else ``CaseNotFound`` at once: they hold all of the case, and decide who sees it as its
    events do (a case one may not see is one that does not exist)."""
    parts, version, body = found
    if not access.sees(who, parts):
        raise CaseNotFound(case_id)
    return version, body


# What the event loop found in the projections on PostgreSQL: the answer (``None``: none
# read from them; one the caller may not see raises ``CaseNotFound``), and whether the
# projections were asked (then a thread need not ask them again before it replays the case).
_OnLoop = tuple[tuple[int, bytes] | None, bool]


async def _projected_on_loop(
    svc: Svc, who: Principal, case_id: UUID, kind: Hashable, at_head: OneQuery[ViewAnswer | None]
) -> _OnLoop:
    """PostgreSQL, on the event loop: ``_projected_answer``'s read of the projections at the
    case's last event, asked without a thread (``ViewStore.ask_on_loop``), and kept under
    the store's write mark taken before it was asked (if one was given at once). Not asked
    where the loop cannot ask (its connections busy or unreachable): the thread then does
    as before."""
    if svc.views.dialect != "postgresql":
        return None, False
    writes = svc.app.writes
    mark = None if writes is None else writes.mark_now()
    if writes is not None and mark is None:  # not listening (or busy): listen again if due
        asyncio.get_running_loop().run_in_executor(None, writes.mark)
    key = (case_id, kind)
    kept = None if mark is None else svc.viewed.peek(key, mark)
    if kept is not None:  # kept, though not for this caller: not asked again
        return _seen(who, cast(ViewAnswer, kept[0]), case_id), True
    asked = await svc.views.ask_on_loop(at_head)
    if asked is None:
        return None, False
    found = asked[0]
    if found is None:
        return None, True
    if mark is not None:  # kept only under a mark taken before it was asked
        svc.viewed.offer(key, mark, found)
    return _seen(who, found, case_id), True


def _case_view_kind(today: datetime) -> Hashable:
    return ("view.json", today.date())


def _case_view_at_head(svc: Svc, case_id: UUID, today: datetime) -> OneQuery[ViewAnswer | None]:
    """The case's answer from its view, read in one statement at the case's last event."""
    return case_answer_at_head(case_id, svc.app.commands.events_table_name, today.date())


def _viewed_answer(
    svc: Svc, who: Principal, case_id: UUID, today: datetime, *, at_once: bool = False
) -> tuple[int, bytes] | None:
    """A case's answer and version from the case view (``_projected_answer``), when the
    view applied every event of the case; the day says whether a follow-up is overdue."""
    return _projected_answer(
        svc,
        who,
        case_id,
        _case_view_kind(today),
        whole_case_answer(case_id, today.date()),
        _case_view_at_head(svc, case_id, today),
        at_once=at_once,
    )


async def _viewed_on_loop(svc: Svc, who: Principal, case_id: UUID, today: datetime) -> _OnLoop:
    """A case's answer and version from the case view, read by the event loop on
    PostgreSQL (``_projected_on_loop``)."""
    query = _case_view_at_head(svc, case_id, today)
    return await _projected_on_loop(svc, who, case_id, _case_view_kind(today), query)


def _trail_at_head(svc: Svc, case_id: UUID) -> OneQuery[ViewAnswer | None]:
    """The case's history from its trail, read in one statement at the case's last event."""
    return trail_at_head(case_id, svc.app.commands.events_table_name)


def _trail_answer(
    svc: Svc, who: Principal, case_id: UUID, *, at_once: bool = False
) -> tuple[int, bytes] | None:
    """A case's history and version from the audit trail (``_projected_answer``), when
    the trail and the case view applied every event of the case."""
    whole = whole_trail_and_parts(case_id)
    at_head = _trail_at_head(svc, case_id)
    return _projected_answer(svc, who, case_id, "history.json", whole, at_head, at_once=at_once)


async def _trail_on_loop(svc: Svc, who: Principal, case_id: UUID) -> _OnLoop:
    """A case's history and version from the audit trail, read by the event loop on
    PostgreSQL (``_projected_on_loop``)."""
    at_head = _trail_at_head(svc, case_id)
    return await _projected_on_loop(svc, who, case_id, "history.json", at_head)


def _known_answer(
    svc: Svc, who: Principal, case_id: UUID, rendered_as: str
) -> tuple[int, bytes] | None:
    """A case's answer already rendered (``rendered_as``), with the case's version, when
    the case is kept and known not to have changed since, without asking the store or
    waiting (for the event loop), and the caller may see it; else ``None``: the answer is
    read on a thread (where a case one may not see is one that does not exist)."""
    replay = svc.app.known_read(case_id)
    if replay is None or not access.sees(who, replay.case):
        return None
    body = replay.derived_already(rendered_as)
    return None if body is None else (replay.version, cast(bytes, body))


@queries.get(
    "/{case_id}/history",
    summary="A case's history (audit trail)",
    responses=responses(*READ, NOT_FOUND),
    response_model=list[HistoryEntry],
)
async def history(
    case_id: UUID, request: Request, who: Caller, svc: Svc, as_of: AsOf = None
) -> Response:
    """Every event of the case in order: when, by whom, and what happened (with ``as_of``:
    those recorded at or before that instant)."""
    access.may_read_cases(who)
    if as_of is None:
        kept = _known_answer(svc, who, case_id, "history.json")
        if kept is None:  # not kept: from the audit trail, when its connection is free
            kept = _trail_answer(svc, who, case_id, at_once=True)
        asked = False
        if kept is None:  # PostgreSQL: asked by the loop, without a thread
            kept, asked = await _trail_on_loop(svc, who, case_id)
        if kept is not None:  # on the event loop: a thread only writes the read's record
            await svc.reads.recorded(who, [str(case_id)], "history", *_ids(request))
            return JSONBytes(kept[1])
        again = not asked or svc.inline_projections  # as for a case
        ids = _ids(request)
        return await run_in_threadpool(_history_answer, svc, who, case_id, ids, None, again)
    return await run_in_threadpool(_history_answer, svc, who, case_id, _ids(request), as_of)


def _history_answer(
    svc: Svc,
    who: Principal,
    case_id: UUID,
    ids: tuple[str, str | None],
    as_of: datetime | None,
    from_trail: bool = True,
) -> Response:
    """The case's history for ``who``: from its trail where ``from_trail`` says to look
    there (``_trail_answer``), else from its events."""
    trail = None
    if as_of is None and from_trail:
        trail = _trail_answer(svc, who, case_id)
    if trail is not None:
        svc.reads.record(who, [str(case_id)], "history", *ids)
        return JSONBytes(trail[1])
    replay = _readable(svc, who, case_id)
    svc.reads.record(who, [str(case_id)], "history", *ids)
    entries = replay.derived("history", lambda: _history(replay.events))
    if as_of is None:
        return JSONBytes(replay.derived("history.json", lambda: _rendered_history(entries)))
    then = {e.originator_version for e in _as_of(replay.events, as_of, case_id)}
    return JSONBytes(_rendered_history([entry for entry in entries if entry.seq in then]))


_HISTORY = TypeAdapter(list[HistoryEntry])


def _rendered_history(entries: list[HistoryEntry]) -> bytes:
    """A history as the JSON sent, as ``rendered`` renders one answer (fields by alias)."""
    return _HISTORY.dump_json(entries, by_alias=True)


def _history(events: list[CaseEvent]) -> list[HistoryEntry]:
    return [
        HistoryEntry(
            seq=e.originator_version,
            type=type(e).__name__,
            at=e.timestamp,
            by=e.recorded_by,
            summary=line,
        )
        for e, line in zip(events, summaries(events), strict=True)
    ]


@queries.get(
    "/{case_id}/reads",
    summary="Who read a case (auditors)",
    responses=responses(*READ, NOT_FOUND),
)
def reads(case_id: UUID, who: Caller, svc: Svc) -> list[CaseReadOut]:
    """Every recorded read of the case's data: who, what, when, in which request."""
    access.may_read_access_log(who)
    svc.app.get_case(case_id)
    return [
        CaseReadOut(
            reader=r.reader,
            role=r.role,
            what=r.what,
            at=r.at,
            request_id=r.request_id,
            caller_request_id=r.caller_request_id,
        )
        for r in svc.reads.of(str(case_id))
    ]


@queries.get(
    "", summary="List cases", responses=responses(*READ, NOT_READY), response_model=CaseList
)
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
) -> Response:
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

    scoped = _scoped(where, who)
    # The case view's version, where it is known without a query or a wait; else a thread
    # reads the page (after a catch-up, where this process keeps the view).
    version = svc.known_version_of(CaseViews.name)
    kept = None
    if version is not None:
        kept = _kept_page(svc, version, scoped, offset, limit, today)
        if kept is None:  # not kept: read on the event loop
            kept = await _page_on_loop(svc, version, scoped, offset, limit, today)
    if kept is not None:  # on the event loop: no thread, and a thread only writes the record
        cases, body = kept
        await svc.reads.recorded(who, cases, "case list", *_ids(request))
        return JSONBytes(body)

    def answer() -> bytes:  # one trip to the thread pool for the reads and the record
        cases, body = _listed(svc, scoped, offset, limit, today)
        svc.reads.record(who, cases, "case list", *_ids(request))
        return body

    return JSONBytes(await run_in_threadpool(answer))


def _kept_page(
    svc: Svc, version: int, where: CaseFilter, offset: int, limit: int, today: datetime
) -> tuple[list[str], bytes] | None:
    """The page ``_listed`` would answer, when it is kept at the case view's ``version``
    (known without a query or a wait, for the event loop); else ``None``."""
    kept = svc.pages.peek(_page_key(where, offset, limit, today), version)
    return None if kept is None else cast(tuple[list[str], bytes], kept[0])


async def _page_on_loop(
    svc: Svc, version: int, where: CaseFilter, offset: int, limit: int, today: datetime
) -> tuple[list[str], bytes] | None:
    """The page ``_listed`` would answer, read by the event loop without a thread (SQLite:
    at once on its own connection, ``ViewStore.ask_now``; PostgreSQL: on the loop's pool,
    ``ViewStore.ask_on_loop``) and kept under the case view's ``version``, known without
    waiting (``Services.known_version_of``: on SQLite, the view holds the log's head);
    ``None`` where the loop cannot ask now, and a thread reads it as before."""
    query = list_page(where, today.date(), offset=offset, limit=limit)
    views = svc.views
    asked = views.ask_now(query) if views.dialect == "sqlite" else await views.ask_on_loop(query)
    if asked is None:
        return None
    page = asked[0]
    answer = page.case_ids, page_answer(page)
    # Kept under the version known before it was read: the page holds that much at least.
    svc.pages.offer(_page_key(where, offset, limit, today), version, answer)
    return answer


def _page_key(where: CaseFilter, offset: int, limit: int, today: datetime) -> Hashable:
    """What a kept page is kept under: the same page asked again on the same day (the day
    decides which follow-ups are overdue) is the same while the case view has not moved."""
    return (where, offset, limit, today.date())


def _listed(
    svc: Svc, where: CaseFilter, offset: int, limit: int, today: datetime
) -> tuple[list[str], bytes]:
    """One page of the cases matching ``where`` that the caller has a part in: the cases
    listed, and the page as answered (rendered once, kept so)."""

    def listed() -> tuple[list[str], bytes]:
        # PostgreSQL, a view this version does not find yet: ``TablesMissing``, 503.
        page = list_cases(svc.views, where, today.date(), offset=offset, limit=limit)
        return page.case_ids, page_answer(page)

    svc.fresh_views()  # caught up first: the version then says what the page shows
    version = svc.current_version_of(CaseViews.name)  # far behind: not ready
    return svc.pages.get(_page_key(where, offset, limit, today), version, listed)


def _scoped(where: CaseFilter, who: Principal) -> CaseFilter:
    """Narrow a list to the cases the caller has a part in (``access.has_part``), exactly:
    the case view holds what that asks of a case."""
    if who.role is StaffRole.AUDITOR:
        return where
    if who.role is StaffRole.TEAM:
        where = replace(where, programme=_only(where.programme, who.team_programme.value))
        if who.team_programme is Programme.LOKAAL_CLIENTOVERLEG:  # its municipality, and
            area = MunicipalityOrChair(  # the cases its member chairs
                municipality_key(who.municipality) or "", who.region, who.ref
            )
            return replace(where, municipality_or_chair=area)
        return (
            where if who.region is None else replace(where, region=_only(where.region, who.region))
        )
    if who.role is StaffRole.CHAIR:
        where = replace(where, chair=_only(where.chair, who.ref))
    if who.role is StaffRole.PROFESSIONAL:
        where = replace(where, reader=who.ref)
    if who.programme is None:
        return where
    return replace(where, programme=_only(where.programme, who.programme.value))


def _only(asked: str | None, value: str) -> str:
    """The value a list is narrowed to: the caller's own, or nothing when it asks for another
    (no case has an empty value)."""
    return value if asked in (None, value) else ""


def page_answer(page: CasePage) -> bytes:
    """A page of cases as sent (``CaseList`` rendered as ``rendered`` renders it: its fields
    in order, compact, UTF-8), joined from each case's answer as sent instead of rendered
    again from its view."""
    items = b",".join(page.answers)
    return b'{"items":[%b],"total":%d,"offset":%d,"limit":%d}' % (
        items,
        page.total,
        page.offset,
        page.limit,
    )
