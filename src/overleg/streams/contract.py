"""The lines of the event stream as the contract defines them (``event-stream-v1.md``, and
``event-stream-v2.md`` which extends it).

Every key of v1 is required and no other is allowed. The keys v2 adds are optional: one
that is left out stays out (``model_fields_set`` says which were given), and one that is
given is kept as given, so a line comes back the same from an export. Values use the
vocabulary the API uses too (``aggregates.vocabulary``), so nothing enters the store through
an import that the API would refuse.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal, get_args
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from overleg.aggregates.values import (
    ATTENDANCE_EXTRAS,
    REQUESTER_ONLY_ROLES,
    Channel,
    Programme,
    Region,
    Role,
)
from overleg.aggregates.vocabulary import Day, Instant, Ref, ShortText, Text
from overleg.i18n import _


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    # Optional keys whose value, when given, may not be null (the contract says "text").
    _not_null: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _given_not_null(self) -> _Strict:
        for key in self._not_null:
            if key in self.model_fields_set and getattr(self, key) is None:
                raise ValueError(
                    _("{key} is optional but, when given, may not be null", key=repr(key))
                )
        return self


MeetingNumber = Annotated[int, Field(ge=1, le=10_000)]


def _party_role(role: Role) -> Role:
    if role in REQUESTER_ONLY_ROLES:
        raise ValueError(
            _(
                "{role} may request a consultation but is not a party of it",
                role=repr(role.value),
            )
        )
    return role


PartyRole = Annotated[Role, AfterValidator(_party_role)]


class PartyData(_Strict):
    ref: Ref
    role: PartyRole


class RequesterData(_Strict):
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
    # v2, optional:
    client: bool | None = None
    support_figure: bool | None = None
    network: Annotated[int, Field(ge=0, le=1_000)] | None = None

    _not_null = ("network",)

    def extras(self) -> dict[str, bool | int | None]:
        """The v2 keys that were given."""
        return {
            key: getattr(self, key) for key in ATTENDANCE_EXTRAS if key in self.model_fields_set
        }


class AgreementData(_Strict):
    who: Ref
    what: Text
    due: Day | None
    domain: ShortText | None
    goal: Text | None = None  # v2, optional

    _not_null = ("goal",)


class CrisisPlanData(_Strict):
    steps: Annotated[list[Text], Field(min_length=1, max_length=100)]


class RequestedData(_Strict):
    programme: Programme
    region: Region
    requested_by: RequesterData
    channel: Channel
    client: ClientData
    question: Text
    municipality: ShortText | None = None  # v2, optional
    goal: Text | None = None  # v2, optional

    _not_null = ("municipality", "goal")


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
    crisis_plan: bool | CrisisPlanData  # v2: the plan's steps may be given


class MeetingPlannedData(_Strict):
    meeting: MeetingNumber
    on: Day
    place: Text | None
    goal: Text | None = None
    invited: Annotated[list[PartyData], Field(max_length=100)]
    not_invited: Annotated[list[Ref], Field(max_length=100)]

    _not_null = ("goal",)


class MeetingReasonData(_Strict):
    meeting: MeetingNumber
    reason: Text


class ChecklistData(_Strict):
    client_informed: bool | None = None
    discussed_with_client: bool | None = None
    agenda_known: bool | None = None
    expectations_known: bool | None = None
    invitees_agreed: bool | None = None
    trusted_person_asked: bool | None = None
    spilfiguur_known: bool | None = None
    preparation_note: bool | None = None
    client_attends: bool | None = None
    transport_arranged: bool | None = None
    childcare_arranged: bool | None = None

    def given(self) -> dict[str, bool | None]:
        """The items that were given, in the contract's order."""
        return {k: getattr(self, k) for k in type(self).model_fields if k in self.model_fields_set}


class PreparationRecordedData(_Strict):
    meeting: MeetingNumber
    checklist: ChecklistData
    prepared_by: Ref | None = None

    _not_null = ("prepared_by",)


class CoordinatorDesignatedData(_Strict):
    coordinator: Ref
    chosen_by_client: bool


class AttendanceCorrectedData(_Strict):
    meeting: MeetingNumber
    attendance: AttendanceData
    reason: Text


class WorkplanRevisedData(WorkplanAgreedData):
    reason: Text


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
            _(
                "a case id is a UUID written in lower case with hyphens, "
                "e.g. 6f1c2a9e-3d5b-4c8e-9a7f-0b1d2e3f4a5b, not {given}",
                given=repr(shown),
            )
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


class MeetingPlannedLine(_Line):
    type: Literal["MeetingPlanned"]
    data: MeetingPlannedData


class MeetingCancelledLine(_Line):
    type: Literal["MeetingCancelled"]
    data: MeetingReasonData


class PreparationRecordedLine(_Line):
    type: Literal["PreparationRecorded"]
    data: PreparationRecordedData


class CoordinatorDesignatedLine(_Line):
    type: Literal["CoordinatorDesignated"]
    data: CoordinatorDesignatedData


class AttendanceCorrectedLine(_Line):
    type: Literal["AttendanceCorrected"]
    data: AttendanceCorrectedData


class WorkplanRevisedLine(_Line):
    type: Literal["WorkplanRevised"]
    data: WorkplanRevisedData


class MeetingRetractedLine(_Line):
    type: Literal["MeetingRetracted"]
    data: MeetingReasonData


class CaseReopenedLine(_Line):
    type: Literal["CaseReopened"]
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
    | MeetingPlannedLine
    | MeetingCancelledLine
    | PreparationRecordedLine
    | CoordinatorDesignatedLine
    | AttendanceCorrectedLine
    | WorkplanRevisedLine
    | MeetingRetractedLine
    | CaseReopenedLine
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
