"""What the HTTP API accepts and returns, with the examples its OpenAPI description shows."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from overleg.aggregates.values import Channel, Programme, Region, Role
from overleg.aggregates.vocabulary import Day, Ref, ShortText, Text
from overleg.policies.access import StaffRole
from overleg.projections.case_view import Status


class In(BaseModel):
    """A request body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class PartyIn(In):
    ref: Ref
    role: Role


class ClientIn(In):
    ref: Ref
    birth_date: Day | None = Field(description="Date of birth, when known")


class RequestIn(In):
    """A request for a client consultation, by the continuity team or a professional."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "programme": "integrale_jeugdhulp",
                    "region": "Antwerpen",
                    "requested_by": {"ref": "hulpverlener-12", "role": "professional"},
                    "channel": "cobe",
                    "client": {"ref": "jongere-17", "birth_date": "2008-04-02"},
                    "question": "Afstemming tussen school, thuisbegeleiding en CAW",
                }
            ]
        }
    )
    programme: Programme
    region: Region
    requested_by: PartyIn
    channel: Channel
    client: ClientIn
    question: Text


class IntakeRole(StrEnum):
    """Who may use the public form: professionals use their account instead."""

    YOUTH = Role.YOUTH.value
    PARENT = Role.PARENT.value
    TRUSTED_PERSON = Role.TRUSTED_PERSON.value
    SUPPORT_FIGURE = Role.SUPPORT_FIGURE.value


class IntakeRequester(In):
    ref: Ref
    role: IntakeRole


class IntakeIn(In):
    """The online request form: a young person, parent, trusted person or support figure."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "programme": "integrale_jeugdhulp",
                    "region": "Limburg",
                    "requested_by": {"ref": "ouder-4", "role": "parent"},
                    "client": {"ref": "jongere-4", "birth_date": "2010-09-15"},
                    "question": "Wij willen samen met alle hulpverleners rond de tafel.",
                }
            ]
        }
    )
    programme: Programme
    region: Region
    requested_by: IntakeRequester
    client: ClientIn
    question: Text


class Receipt(BaseModel):
    """The receipt of a submitted request form."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"receipt": "6f1c2a9e-3d5b-4c8e-9a7f-0b1d2e3f4a5b", "received": True}]
        }
    )
    receipt: str = Field(description="Quote this reference when you contact the team")
    received: bool


class ReasonIn(In):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "Hulp is al afgestemd in het netwerk"}]}
    )
    reason: Text


class ConsentIn(In):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"party": {"ref": "jongere-17", "role": "youth"}}]}
    )
    party: PartyIn


class WithdrawIn(In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"party": {"ref": "ouder-17", "role": "parent"}, "reason": None}]
        }
    )
    party: PartyIn
    reason: Text | None = None


class ChairIn(In):
    model_config = ConfigDict(json_schema_extra={"examples": [{"chair": "voorzitter-3"}]})
    chair: Ref


class AttendanceIn(In):
    youth: bool | None = Field(description="The young person attended (null: not registered)")
    parents: bool | None = Field(description="A parent attended (null: not registered)")
    trusted_person: bool | None = None
    professionals: list[Ref] = Field(default_factory=list, max_length=100)


class MeetingIn(In):
    """A held meeting; it gets the next number of the case."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "held_on": "2026-03-02",
                    "place": "CLB Antwerpen, zaal 2",
                    "attendance": {
                        "youth": True,
                        "parents": True,
                        "trusted_person": None,
                        "professionals": ["hulpverlener-12", "hulpverlener-31"],
                    },
                }
            ]
        }
    )
    held_on: Day
    place: Text
    attendance: AttendanceIn


class AgreementIn(In):
    who: Ref
    what: Text
    due: Day | None = None
    domain: ShortText | None = Field(default=None, description="Life domain, e.g. onderwijs")


class WorkplanIn(In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "agreements": [
                        {
                            "who": "hulpverlener-12",
                            "what": "Wekelijks huisbezoek",
                            "due": "2026-04-30",
                            "domain": "gezin",
                        }
                    ],
                    "coordinator": "hulpverlener-12",
                    "crisis_plan": False,
                }
            ]
        }
    )
    agreements: list[AgreementIn] = Field(max_length=200)
    coordinator: Ref | None = Field(description="The hulpcoördinator (spilfiguur), or null")
    crisis_plan: bool = False


class FollowUpIn(In):
    model_config = ConfigDict(json_schema_extra={"examples": [{"on": "2026-06-01"}]})
    on: Day


class BottleneckIn(In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"theme": "wachtlijst", "description": "Geen plaats in dagbegeleiding"}]
        }
    )
    theme: ShortText
    description: Text


class Recorded(BaseModel):
    """What a command recorded: the case, its new version (also the ETag) and the event."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "case_id": "6f1c2a9e-3d5b-4c8e-9a7f-0b1d2e3f4a5b",
                    "version": 5,
                    "recorded": "MeetingHeld",
                }
            ]
        }
    )
    case_id: str
    version: int
    recorded: str


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
}


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


class CaseList(BaseModel):
    """One page of cases."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [CASE_EXAMPLE], "total": 1, "offset": 0, "limit": 50}]
        }
    )
    items: list[CaseOut]
    total: int
    offset: int
    limit: int


class HistoryEntry(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "seq": 1,
                    "type": "Requested",
                    "at": "2026-02-03T10:00:00+01:00",
                    "by": "team-antwerpen-1",
                    "summary": "Consultation requested (integrale_jeugdhulp, Antwerpen) by a "
                    "professional via cobe",
                }
            ]
        }
    )
    seq: int
    type: str
    at: datetime
    by: str
    summary: str


class CaseReadOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "reader": "voorzitter-3",
                    "role": "chair",
                    "what": "case",
                    "at": "2026-03-03T08:12:44+00:00",
                    "request_id": "b7c1d0e2a3f44e5d",
                }
            ]
        }
    )
    reader: str
    role: StaffRole
    what: str
    at: datetime
    request_id: str


class ProjectionHealth(BaseModel):
    """How far one projection is behind the event store."""

    position: int = Field(description="The position of the last event it applied")
    behind: int = Field(description="Events recorded since, not yet applied")


class Health(BaseModel):
    """The service is up and its event store answers; how current the projections are."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ok",
                    "version": "0.1.0",
                    "backend": "sqlite",
                    "projections": {"case_view": {"position": 97, "behind": 0}},
                    "failed_events": 0,
                }
            ]
        }
    )
    status: str
    version: str
    backend: str
    projections: dict[str, ProjectionHealth]
    failed_events: int = Field(
        description="Events a projection could not apply and set aside (overleg projections)"
    )
