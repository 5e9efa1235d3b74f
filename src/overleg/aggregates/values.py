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


class Channel(StrEnum):
    """How a request reached the continuity team."""

    FORM = "aanvraagformulier"  # the online request form
    COBE = "cobe"  # the professionals' application
    EMAIL = "email"
    PHONE = "telefoon"
    OTHER = "andere"


# Consent of one of these roles allows a meeting to be held.
CONSENTING_ROLES = frozenset({Role.YOUTH, Role.PARENT})

# Integrale jeugdhulp serves young people and young adults up to this age.
MAX_CLIENT_AGE = 25


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


@dataclass(frozen=True, slots=True)
class Attendance:
    """Who was at a meeting. ``None`` means not registered (yet)."""

    youth: bool | None
    parents: bool | None
    trusted_person: bool | None
    professionals: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Agreement:
    """One concrete agreement of a workplan: who does what, by when, in which life domain."""

    who: str
    what: str
    due: date | None
    domain: str | None
