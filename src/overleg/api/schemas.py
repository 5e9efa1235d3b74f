"""What the HTTP API accepts and returns, with the examples its OpenAPI description shows."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.json_schema import SkipJsonSchema

from overleg.aggregates.values import (
    ATTENDANCE_EXTRAS,
    CHECKLIST_ITEMS,
    Agreement,
    Attendance,
    Channel,
    ErasureGrounds,
    Programme,
    Region,
    Role,
)
from overleg.aggregates.vocabulary import Day, Ref, ShortText, Text
from overleg.i18n import _
from overleg.policies.access import StaffRole
from overleg.projections.case_answer import (
    CASE_EXAMPLE,
    CaseOut,
)


class In(BaseModel):
    """A request body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class PartyRole(StrEnum):
    """The part a party of the case plays (a service or a resident may ask for a
    consultation, but is no party of it)."""

    YOUTH = Role.YOUTH.value
    PARENT = Role.PARENT.value
    TRUSTED_PERSON = Role.TRUSTED_PERSON.value  # vertrouwenspersoon
    SUPPORT_FIGURE = Role.SUPPORT_FIGURE.value  # steunfiguur
    PROFESSIONAL = Role.PROFESSIONAL.value  # hulpverlener
    CLIENT = Role.CLIENT.value  # the client themself, of any age
    LEGAL_REPRESENTATIVE = Role.LEGAL_REPRESENTATIVE.value
    NETWORK = Role.NETWORK.value  # family member, friend, informal carer


class PartyIn(In):
    ref: Ref
    role: PartyRole


class RequesterIn(In):
    ref: Ref
    role: Role = Field(
        description="Besides a party's roles: service (a service, GP or organisation) and "
        "resident (any resident of the municipality; lokaal_clientoverleg only)"
    )


class ClientIn(In):
    ref: Ref
    birth_date: Day | None = Field(description="Date of birth, when known")


# A request of a lokaal cliëntoverleg goes to the coordinator of the client's municipality:
# it names the municipality. The schema says so too, so that clients (and generated tests)
# know it.
_MUNICIPALITY_FOR_LCO: dict[str, Any] = {
    "if": {
        "properties": {"programme": {"const": Programme.LOKAAL_CLIENTOVERLEG.value}},
        "required": ["programme"],
    },
    "then": {"required": ["municipality"], "properties": {"municipality": {"type": "string"}}},
}
MUNICIPALITY = (
    "The client's municipality; required for lokaal_clientoverleg, whose coordinator works "
    "per municipality"
)


def _municipality_for_lco(value: str | None, info: ValidationInfo) -> str | None:
    if value is None and info.data.get("programme") is Programme.LOKAAL_CLIENTOVERLEG:
        raise ValueError(
            _(
                "a request of lokaal_clientoverleg names the client's municipality: the "
                "coordinator of that municipality takes it"
            )
        )
    return value


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
                    "municipality": "Mechelen",
                    "goal": "Weer naar school gaan",
                }
            ],
            **_MUNICIPALITY_FOR_LCO,
        }
    )
    programme: Programme
    region: Region
    requested_by: RequesterIn
    channel: Channel
    client: ClientIn
    question: Text
    municipality: ShortText | None = Field(
        default=None, description=MUNICIPALITY, validate_default=True
    )
    goal: Text | None = Field(
        default=None, description="What the client wants the consultation to achieve"
    )

    _municipality = field_validator("municipality", mode="after")(_municipality_for_lco)


class IntakeRole(StrEnum):
    """Who may use the public form: the client, their family and supporters (professionals
    use their account; services and residents ask the team)."""

    YOUTH = Role.YOUTH.value
    PARENT = Role.PARENT.value
    TRUSTED_PERSON = Role.TRUSTED_PERSON.value
    SUPPORT_FIGURE = Role.SUPPORT_FIGURE.value
    CLIENT = Role.CLIENT.value
    LEGAL_REPRESENTATIVE = Role.LEGAL_REPRESENTATIVE.value
    NETWORK = Role.NETWORK.value


class IntakeRequester(In):
    ref: Ref
    role: IntakeRole


class IntakeIn(In):
    """The online request form: the client, a parent, a legal representative, a trusted
    person, a support figure or someone of the client's network."""

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
            ],
            **_MUNICIPALITY_FOR_LCO,
        }
    )
    programme: Programme
    region: Region
    requested_by: IntakeRequester
    client: ClientIn
    question: Text
    municipality: ShortText | None = Field(
        default=None, description=MUNICIPALITY, validate_default=True
    )
    goal: Text | None = Field(
        default=None, description="What the client wants the consultation to achieve"
    )

    _municipality = field_validator("municipality", mode="after")(_municipality_for_lco)


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


class ErasureIn(In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"reason": "Verzoek tot gegevenswissing, dossier AVG-2026-014"}]
        }
    )
    reason: Text = Field(
        description="Why the personal data is erased, in words that name nobody (it is kept "
        "in the case's history, in clear)"
    )
    grounds: ErasureGrounds = Field(
        default=ErasureGrounds.REQUEST,
        description="request: the person asked (GDPR art. 17); retention: the retention "
        "period after the case ended has passed",
    )


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


def _no_default(schema: dict[str, Any]) -> None:
    # A field that is left out rather than sent as null: its schema shows no null default.
    schema.pop("default", None)


MeetingNumber = Annotated[int, Field(ge=1, le=10_000, description="A meeting's number in the case")]
NetworkCount = Annotated[int, Field(ge=0, le=1_000)]


class AttendanceIn(In):
    """Who was at a meeting. ``client``, ``support_figure`` and ``network`` count only when
    they are sent: a record says exactly what it was told."""

    youth: bool | None = Field(description="The young person attended (null: not registered)")
    parents: bool | None = Field(description="A parent attended (null: not registered)")
    trusted_person: bool | None = None
    professionals: list[Ref] = Field(default_factory=list, max_length=100)
    client: bool | None = Field(
        default=None,
        description="The client themself attended (null: not registered). In "
        "integrale_jeugdhulp the client is the young person: send youth or client, not both",
    )
    support_figure: bool | None = Field(
        default=None, description="A support figure (steunfiguur) attended"
    )
    network: NetworkCount | SkipJsonSchema[None] = Field(
        default=None,
        description="How many people of the client's informal network attended (left out "
        "when not known)",
        json_schema_extra=_no_default,
    )

    @field_validator("network", mode="before")
    @classmethod
    def _a_count(cls, value: object) -> object:
        # Sent, it is a count (as in the stream); not known, it is left out.
        if value is None:
            raise ValueError(_("network is a number of people; leave it out when not known"))
        return value

    def attendance(self) -> Attendance:
        """The attendance, with exactly the keys of contract v2 that were sent."""
        extras = {
            key: getattr(self, key) for key in ATTENDANCE_EXTRAS if key in self.model_fields_set
        }
        return Attendance.of(
            self.youth, self.parents, self.trusted_person, tuple(self.professionals), extras
        )


class MeetingIn(In):
    """A held meeting: a planned meeting (the one named, or the earliest not yet held), or
    else the next number of the case."""

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
    meeting: MeetingNumber | None = Field(
        default=None,
        description="The number of the planned meeting this was; left out: the earliest "
        "planned meeting not yet held, or else the next number",
    )


class AgreementIn(In):
    who: Ref
    what: Text
    due: Day | None = None
    domain: ShortText | None = Field(default=None, description="Life domain, e.g. onderwijs")
    goal: Text | None = Field(default=None, description="The goal this agreement serves")

    def agreement(self) -> Agreement:
        return Agreement(self.who, self.what, self.due, self.domain, self.goal)


class CrisisPlanIn(In):
    """A crisis plan given as its steps."""

    steps: list[Text] = Field(min_length=1, max_length=100)


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
    crisis_plan: bool | CrisisPlanIn = Field(
        default=False, description="Whether there is a crisis plan, or its steps"
    )

    def crisis(self) -> tuple[bool, tuple[str, ...] | None]:
        """Whether there is a crisis plan, and its steps when they were given."""
        if isinstance(self.crisis_plan, CrisisPlanIn):
            return True, tuple(self.crisis_plan.steps)
        return self.crisis_plan, None


class RevisedWorkplanIn(WorkplanIn):
    """A meeting's workplan as revised; it replaces the workplan, also after registration."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "agreements": [
                        {
                            "who": "hulpverlener-12",
                            "what": "Tweewekelijks huisbezoek",
                            "due": "2026-06-30",
                            "domain": "gezin",
                            "goal": "Rust in het gezin",
                        }
                    ],
                    "coordinator": "hulpverlener-12",
                    "crisis_plan": {"steps": ["Bel de spilfiguur", "Bel de crisisdienst"]},
                    "reason": "Afspraak bijgesteld na evaluatie",
                }
            ]
        }
    )
    reason: Text


class InviteeIn(In):
    ref: Ref
    role: PartyRole


class PlanIn(In):
    """A planned meeting: the next number of the case, or a planned one re-planned."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "on": "2026-03-02",
                    "place": "Sociaal huis, zaal 1",
                    "goal": "Afspraken over wonen en inkomen",
                    "invited": [
                        {"ref": "cliënt-8", "role": "client"},
                        {"ref": "hulpverlener-12", "role": "professional"},
                    ],
                    "not_invited": ["hulpverlener-40"],
                }
            ]
        }
    )
    on: Day
    place: Text | None = None
    goal: Text | None = Field(default=None, description="What this meeting is to achieve")
    invited: list[InviteeIn] = Field(default_factory=list, max_length=100)
    not_invited: list[Ref] = Field(
        default_factory=list,
        max_length=100,
        description="People the client does not want invited",
    )
    meeting: MeetingNumber | None = Field(
        default=None,
        description="The number of a planned meeting not yet held, to re-plan it; left out: "
        "the next number",
    )


class ChecklistIn(In):
    """How a meeting was prepared: each item true, false or null (not known); an item left
    out is not recorded."""

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
        """The items that were sent, in the checklist's order."""
        return {k: getattr(self, k) for k in CHECKLIST_ITEMS if k in self.model_fields_set}


class PreparationIn(In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "checklist": {
                        "client_informed": True,
                        "agenda_known": True,
                        "trusted_person_asked": False,
                        "transport_arranged": None,
                    },
                    "prepared_by": "hulpverlener-12",
                }
            ]
        }
    )
    checklist: ChecklistIn
    prepared_by: Ref | None = Field(default=None, description="Who prepared it with the client")


class CoordinatorIn(In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"coordinator": "hulpverlener-12", "chosen_by_client": True}]
        }
    )
    coordinator: Ref = Field(description="The spilfiguur / hulpcoördinator: a professional")
    chosen_by_client: bool


class AttendanceCorrectionIn(In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "attendance": {
                        "youth": None,
                        "parents": None,
                        "trusted_person": None,
                        "professionals": ["hulpverlener-12"],
                        "client": True,
                        "support_figure": True,
                        "network": 2,
                    },
                    "reason": "De cliënt was er wel; de steunfiguur en twee buren ook",
                }
            ]
        }
    )
    attendance: AttendanceIn
    reason: Text


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
                    "caller_request_id": "portal-7f3a9c21",
                }
            ]
        }
    )
    reader: str
    role: StaffRole
    what: str
    at: datetime
    request_id: str = Field(description="The service's own id of the request")
    caller_request_id: str | None = Field(
        default=None, description="The X-Request-ID the caller sent with it, if any"
    )


class Liveness(BaseModel):
    """The process runs."""

    status: str = Field(examples=["ok"])
    version: str


class Readiness(BaseModel):
    """The service is ready for traffic; each projection's lag."""

    status: str = Field(examples=["ready"])
    lag: dict[str, int] = Field(description="Events not yet applied, by projection")


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
