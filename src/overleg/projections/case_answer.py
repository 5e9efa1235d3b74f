"""A case as the service answers it (``GET /cases/{id}``, and each case of a list): the
model its documentation names, and the one rendering of it that every answer of a case
comes from, whether replayed from its events or read from its view.

The case view keeps each case's answer as rendered here (``CaseViews``), so that a read from
the view sends it as stored. One part of it depends on the day it is read, not on the case's
events: whether a scheduled follow-up is overdue. It is stored as ``false`` and set on
reading (``answer_on``).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from overleg.aggregates.values import Channel, Programme, Region, Role

if TYPE_CHECKING:
    from overleg.projections.case_view import CaseView


class Status(StrEnum):
    """Where a case stands, from its request to its end."""

    REQUESTED = "requested"
    DECLINED = "declined"
    CONSENTED = "consented"
    CHAIR_APPOINTED = "chair_appointed"
    MEETING_HELD = "meeting_held"
    WORKPLAN_AGREED = "workplan_agreed"
    REGISTRATION_COMPLETED = "registration_completed"
    FOLLOW_UP_SCHEDULED = "follow_up_scheduled"
    CLOSED = "closed"


class ConsentOut(BaseModel):
    ref: str
    role: Role
    given_at: datetime


class AgreementOut(BaseModel):
    meeting: int
    who: str
    what: str
    due: date | None
    domain: str | None


CASE_EXAMPLE: dict[str, Any] = {
    "case_id": "6f1c2a9e-3d5b-4c8e-9a7f-0b1d2e3f4a5b",
    "version": 6,
    "programme": "integrale_jeugdhulp",
    "region": "Antwerpen",
    "channel": "cobe",
    "requested_at": "2026-02-03T10:00:00+01:00",
    "status": "workplan_agreed",
    "chair": "voorzitter-3",
    "coordinator": "hulpverlener-12",
    "meetings_held": 1,
    "last_meeting_on": "2026-03-02",
    "next_follow_up_on": None,
    "follow_up_overdue": False,
    "ended": None,
    "consents": [{"ref": "jongere-17", "role": "youth", "given_at": "2026-02-04T09:00:00+01:00"}],
    "open_agreements": [
        {
            "meeting": 1,
            "who": "hulpverlener-12",
            "what": "Wekelijks huisbezoek",
            "due": "2026-04-30",
            "domain": "gezin",
        }
    ],
    "coordinator_chosen_by_client": True,
    "next_meeting": 2,
    "next_meeting_on": "2026-05-04",
    "flagged_meetings": [],
}


class FlaggedMeetingOut(BaseModel):
    """A meeting with professionals present whom the client did not want invited."""

    meeting: int
    refs: list[str]


class CaseOut(BaseModel):
    """Where a case stands now."""

    model_config = ConfigDict(json_schema_extra={"examples": [CASE_EXAMPLE]})
    case_id: str
    version: int
    programme: Programme
    region: Region
    channel: Channel
    requested_at: datetime
    status: Status
    chair: str | None
    coordinator: str | None
    meetings_held: int
    last_meeting_on: date | None
    next_follow_up_on: date | None
    follow_up_overdue: bool
    ended: Status | None
    consents: list[ConsentOut]
    open_agreements: list[AgreementOut]
    coordinator_chosen_by_client: bool | None = Field(
        default=None,
        description="Whether the client chose the designated coordinator (spilfiguur); "
        "null when none was designated",
    )
    next_meeting: int | None = Field(default=None, description="The next planned meeting")
    next_meeting_on: date | None = None
    flagged_meetings: list[FlaggedMeetingOut] = Field(
        default_factory=list,
        description="Held meetings at which professionals the client did not want invited "
        "were present (recorded as it happened, and flagged)",
    )
    erased_at: datetime | None = Field(
        default=None,
        description="When the case's personal data was erased: from then on every reference "
        "to a person reads as a pseudonym of the case (erased:1, ...) and every free text as "
        "[erased]; null when it was not",
    )


def overdue(ended: str | None, next_follow_up_on: str | None, today: date) -> bool:
    """The scheduled follow-up date has passed and the case has not ended."""
    return ended is None and next_follow_up_on is not None and next_follow_up_on < today.isoformat()


def case_out(view: CaseView, today: date | None) -> CaseOut:
    """The case's answer as a model (``today``: the day it is read; ``None``: as the view
    stores it, a follow-up never overdue)."""
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
        follow_up_overdue=today is not None and view.follow_up_overdue(today),
        ended=view.ended,
        consents=[ConsentOut(ref=c.ref, role=c.role, given_at=c.given_at) for c in view.consents],
        open_agreements=[
            AgreementOut(meeting=a.meeting, who=a.who, what=a.what, due=a.due, domain=a.domain)
            for a in view.agreements
        ],
        coordinator_chosen_by_client=view.coordinator_chosen_by_client,
        next_meeting=view.next_meeting,
        next_meeting_on=view.next_meeting_on,
        flagged_meetings=[
            FlaggedMeetingOut(meeting=f.meeting, refs=list(f.refs)) for f in view.flagged_meetings
        ],
        erased_at=view.erased_at,
    )


def case_answer(view: CaseView, today: date | None) -> bytes:
    """The case's answer as sent: ``case_out`` rendered as the service renders every answer
    (its fields by alias, compact, UTF-8)."""
    answer = case_out(view, today)
    return answer.__pydantic_serializer__.to_json(answer, by_alias=True)


# How a stored answer says that no follow-up is overdue, and how one read on a day it is
# does. The key is the answer's own and comes before every free text; inside a JSON text a
# quote is escaped, so these bytes are the key and its value wherever they occur.
_NOT_OVERDUE = b'"follow_up_overdue":false'
_OVERDUE = b'"follow_up_overdue":true'


def answer_on(stored: str, ended: str | None, next_follow_up_on: str | None, today: date) -> bytes:
    """A stored answer (``case_answer`` of the view, ``today`` ``None``) as sent on ``today``:
    the same bytes, with the follow-up overdue where it is by then."""
    body = stored.encode()
    if overdue(ended, next_follow_up_on, today):
        return body.replace(_NOT_OVERDUE, _OVERDUE, 1)
    return body
