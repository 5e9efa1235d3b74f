"""Value objects and vocabularies of a case: programmes, regions, roles, parties, attendance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class Programme(StrEnum):
    """Which practice a case runs under (the source texts describe both)."""

    INTEGRALE_JEUGDHULP = "integrale_jeugdhulp"
    LOKAAL_CLIENTOVERLEG = "lokaal_clientoverleg"


class Region(StrEnum):
    """The Flemish provinces and Brussels, the regions the annual figures are reported by."""

    ANTWERPEN = "Antwerpen"
    BRUSSEL = "Brussel"
    LIMBURG = "Limburg"
    OOST_VLAANDEREN = "Oost-Vlaanderen"
    VLAAMS_BRABANT = "Vlaams-Brabant"
    WEST_VLAANDEREN = "West-Vlaanderen"


class Role(StrEnum):
    """The part a person plays in a case."""

    YOUTH = "youth"
    PARENT = "parent"
    TRUSTED_PERSON = "trusted_person"  # vertrouwenspersoon
    SUPPORT_FIGURE = "support_figure"  # steunfiguur
    PROFESSIONAL = "professional"  # hulpverlener
    # Added by contract v2:
    CLIENT = "client"  # the client themself, of any age (the usual party in lokaal cliëntoverleg)
    LEGAL_REPRESENTATIVE = "legal_representative"  # guardian, or an adult's representative
    NETWORK = "network"  # family member, friend, informal carer (mantelzorger)
    SERVICE = "service"  # requester only: a service, a GP or an organisation
    RESIDENT = "resident"  # requester only: a resident of the municipality (lokaal cliëntoverleg)


# Who may ask for a consultation, besides any party: a service, a GP or an organisation,
# and (lokaal cliëntoverleg only) any resident of the municipality. Neither is a party.
REQUESTER_ONLY_ROLES = frozenset({Role.SERVICE, Role.RESIDENT})


# The roles of the client's family and informal network: never "professionals of the case".
FAMILY_ROLES = frozenset(
    {
        Role.YOUTH,
        Role.PARENT,
        Role.TRUSTED_PERSON,
        Role.SUPPORT_FIGURE,
        Role.CLIENT,
        Role.LEGAL_REPRESENTATIVE,
        Role.NETWORK,
    }
)


class Channel(StrEnum):
    """How a request reached the continuity team."""

    FORM = "aanvraagformulier"  # the online request form
    COBE = "cobe"  # the professionals' application
    EMAIL = "email"
    PHONE = "telefoon"
    OTHER = "andere"


# Integrale jeugdhulp serves young people and young adults up to this age.
MAX_CLIENT_AGE = 25
# A minor is under this age on the day in question.
AGE_OF_MAJORITY = 18


@dataclass(frozen=True, slots=True)
class Party:
    """A person in the case, by opaque reference (a pseudonym or directory id)."""

    ref: str
    role: Role


@dataclass(frozen=True, slots=True)
class Client:
    """The young person or adult the consultation is about."""

    ref: str
    birth_date: date | None


# The attendance keys contract v2 adds, each given or left out of a line.
ATTENDANCE_EXTRAS = ("client", "support_figure", "network")


@dataclass(frozen=True, slots=True)
class Attendance:
    """Who was at a meeting. ``None`` means not registered (yet).

    ``client``, ``support_figure`` (present or not, ``None``: unknown) and ``network``
    (how many people of the informal network) came with contract v2; ``given`` names those
    of them that were given at all, so that a record says exactly what it was told.
    """

    youth: bool | None
    parents: bool | None
    trusted_person: bool | None
    professionals: tuple[str, ...]
    client: bool | None = None
    support_figure: bool | None = None
    network: int | None = None
    given: frozenset[str] = frozenset()

    def extras(self) -> dict[str, bool | int | None]:
        """The v2 keys that were given, with their values."""
        return {key: getattr(self, key) for key in ATTENDANCE_EXTRAS if key in self.given}

    @classmethod
    def of(
        cls,
        youth: bool | None,
        parents: bool | None,
        trusted_person: bool | None,
        professionals: tuple[str, ...],
        extras: dict[str, bool | int | None],
    ) -> Attendance:
        """An attendance from its v1 keys and the v2 keys that were given."""
        client, support, network = (extras.get(key) for key in ATTENDANCE_EXTRAS)
        return cls(
            youth,
            parents,
            trusted_person,
            professionals,
            client=None if client is None else bool(client),
            support_figure=None if support is None else bool(support),
            network=None if network is None else int(network),
            given=frozenset(extras),
        )


@dataclass(frozen=True, slots=True)
class Agreement:
    """One concrete agreement of a workplan: who does what, by when, in which life domain."""

    who: str
    what: str
    due: date | None
    domain: str | None
    goal: str | None = None  # contract v2: the goal this agreement serves


@dataclass(frozen=True, slots=True)
class Invitee:
    """Someone invited to a planned meeting, with the part they play."""

    ref: str
    role: Role


# The preparation checklist of a meeting (the requester's and chair's checklist of the
# source texts); each item is true, false or unknown (``None``).
CHECKLIST_ITEMS = (
    "client_informed",
    "discussed_with_client",
    "agenda_known",
    "expectations_known",
    "invitees_agreed",
    "trusted_person_asked",
    "spilfiguur_known",
    "preparation_note",
    "client_attends",
    "transport_arranged",
    "childcare_arranged",
)


class ErasureGrounds(StrEnum):
    """Why a case's personal data was erased."""

    REQUEST = "request"  # the data subject asked (GDPR art. 17)
    RETENTION = "retention"  # the retention period after the case ended had passed


class RuleSet(StrEnum):
    """The rules a case keeps for its whole life: those in force when it was requested."""

    V1 = "v1"
    V2 = "v2"
