"""The lines of the event stream as the contract defines them (``event-stream-v1.md``).

Every key is required and no other is allowed: a line that leaves one out would not come
back the same from an export. Values use the vocabulary the API uses too
(``aggregates.vocabulary``), so nothing enters the store through an import that the API
would refuse.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, get_args
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError

from overleg.aggregates.values import Channel, Programme, Region, Role
from overleg.aggregates.vocabulary import Day, Instant, Ref, ShortText, Text


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


MeetingNumber = Annotated[int, Field(ge=1, le=10_000)]


class PartyData(_Strict):
    ref: Ref
    role: Role


class ClientData(_Strict):
    ref: Ref
    birth_date: Day | None


class AttendanceData(_Strict):
    youth: bool | None
    parents: bool | None
    trusted_person: bool | None
    professionals: Annotated[list[Ref], Field(max_length=100)]


class AgreementData(_Strict):
    who: Ref
    what: Text
    due: Day | None
    domain: ShortText | None


class RequestedData(_Strict):
    programme: Programme
    region: Region
    requested_by: PartyData
    channel: Channel
    client: ClientData
    question: Text


class ReasonData(_Strict):
    reason: Text


class ConsentGivenData(_Strict):
    party: PartyData


class ConsentWithdrawnData(_Strict):
    party: PartyData
    reason: Text | None


class ChairAppointedData(_Strict):
    chair: Ref


class MeetingHeldData(_Strict):
    meeting: MeetingNumber
    held_on: Day
    place: Text
    attendance: AttendanceData


class WorkplanAgreedData(_Strict):
    meeting: MeetingNumber
    agreements: Annotated[list[AgreementData], Field(max_length=200)]
    coordinator: Ref | None
    crisis_plan: bool


class MeetingRefData(_Strict):
    meeting: MeetingNumber


class FollowUpScheduledData(_Strict):
    on: Day


class BottleneckReportedData(_Strict):
    theme: ShortText
    description: Text


_CANONICAL_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _canonical_case(value: object) -> object:
    # The export writes ids in this one form; any other spelling would not round-trip.
    if isinstance(value, str) and not _CANONICAL_UUID.match(value):
        shown = value if len(value) <= 60 else f"{value[:60]}…"
        raise ValueError(
            "a case id is a UUID written in lower case with hyphens, "
            f"e.g. 6f1c2a9e-3d5b-4c8e-9a7f-0b1d2e3f4a5b, not {shown!r}"
        )
    return value


class _Line(_Strict):
    case: Annotated[UUID, BeforeValidator(_canonical_case)]
    seq: Annotated[int, Field(ge=1, le=1_000_000)]
    at: Instant
    by: Ref


class RequestedLine(_Line):
    type: Literal["Requested"]
    data: RequestedData


class RequestDeclinedLine(_Line):
    type: Literal["RequestDeclined"]
    data: ReasonData


class ConsentGivenLine(_Line):
    type: Literal["ConsentGiven"]
    data: ConsentGivenData


class ConsentWithdrawnLine(_Line):
    type: Literal["ConsentWithdrawn"]
    data: ConsentWithdrawnData


class ChairAppointedLine(_Line):
    type: Literal["ChairAppointed"]
    data: ChairAppointedData


class MeetingHeldLine(_Line):
    type: Literal["MeetingHeld"]
    data: MeetingHeldData


class WorkplanAgreedLine(_Line):
    type: Literal["WorkplanAgreed"]
    data: WorkplanAgreedData


class RegistrationCompletedLine(_Line):
    type: Literal["RegistrationCompleted"]
    data: MeetingRefData


class FollowUpScheduledLine(_Line):
    type: Literal["FollowUpScheduled"]
    data: FollowUpScheduledData


class BottleneckReportedLine(_Line):
    type: Literal["BottleneckReported"]
    data: BottleneckReportedData


class CaseClosedLine(_Line):
    type: Literal["CaseClosed"]
    data: ReasonData


StreamLine = (
    RequestedLine
    | RequestDeclinedLine
    | ConsentGivenLine
    | ConsentWithdrawnLine
    | ChairAppointedLine
    | MeetingHeldLine
    | WorkplanAgreedLine
    | RegistrationCompletedLine
    | FollowUpScheduledLine
    | BottleneckReportedLine
    | CaseClosedLine
)
LINE = TypeAdapter[StreamLine](Annotated[StreamLine, Field(discriminator="type")])
# The event types of the stream, in the contract's order.
LINE_TYPES: tuple[str, ...] = tuple(
    get_args(line.model_fields["type"].annotation)[0] for line in get_args(StreamLine)
)


def parse_line(raw: bytes | str) -> StreamLine:
    """Parse one stream line; raises pydantic's ``ValidationError``."""
    return LINE.validate_json(raw)


class _CaseOnly(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    case: str


def case_of(raw: bytes | str) -> str | None:
    """The case a line names, when it is a JSON object with a text ``case``, whatever else
    is wrong with it (read by the same parser, within the same limits, as ``parse_line``)."""
    try:
        return _CaseOnly.model_validate_json(raw).case
    except ValidationError:
        return None
