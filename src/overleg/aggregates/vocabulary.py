"""The constrained values every way in shares: references, free text, calendar days, instants.

The stream importer and the HTTP API validate with these same types, so a value one of them
accepts the other accepts too, and every accepted value is one every reader (projections,
reports, exports) can process.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    Strict,
    StringConstraints,
)

from overleg.i18n import _

# A reference (a pseudonym or directory id): Latin letters, digits and . _ : @ / + -, never
# free text such as a name with spaces or brackets.
REF_PATTERN = r"^[A-Za-z0-9À-ÖØ-öø-ÿ._:@/+-]+$"
REF_MAX_LENGTH = 200
_REF = re.compile(REF_PATTERN)

# Free text a person types (a question, a reason, an agreement, a place): long enough for any
# of them, short enough that no single value can stall a write or a reader.
TEXT_MAX_LENGTH = 10_000
NO_NUL_PATTERN = r"^[^\x00]*$"
SHORT_TEXT_MAX_LENGTH = 200

# Days and instants a case can truthfully carry; every reader can compute with them in any
# time zone (the extremes of Python's calendar cannot be moved to UTC).
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2999, 12, 31)
FIRST_INSTANT = datetime(1900, 1, 1, tzinfo=UTC)
LAST_INSTANT = datetime(2999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


def is_ref(value: str) -> bool:
    """Whether ``value`` is a well-formed reference."""
    return 0 < len(value) <= REF_MAX_LENGTH and _REF.match(value) is not None


def _ref(value: str) -> str:
    if not is_ref(value):
        raise ValueError(
            _(
                "a reference is a pseudonym or directory id (letters, digits and . _ : @ / + -, "
                "at most {max_length} characters), never free text such as a name",
                max_length=REF_MAX_LENGTH,
            )
        )
    return value


def _no_nul(value: str) -> str:
    # No person types U+0000, and PostgreSQL text cannot hold it.
    if "\x00" in value:
        raise ValueError(_("text cannot contain the NUL character (U+0000)"))
    return value


# Days and instants are ISO 8601 text. A parser also reads a string of digits as seconds
# since 1970, and a fraction finer than a microsecond it cuts off: either would be stored
# as another value than was given, and would not come back the same from an export.
ISO_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
ISO_INSTANT = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,]([0-9]+))?)?"
    r"(?:[Zz]|[+-][0-9]{2}:?[0-9]{2})$"
)


def _iso_day(value: object) -> object:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not ISO_DAY.match(value):
        raise ValueError(_("a date is written YYYY-MM-DD"))
    return value


def _iso_instant(value: object) -> object:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError(_("an instant is written in ISO 8601 with its UTC offset"))
    written = ISO_INSTANT.match(value)
    if written is None:
        raise ValueError(
            _(
                "an instant is written in ISO 8601 with its UTC offset, "
                "e.g. 2015-03-02T10:00:00+01:00"
            )
        )
    if written.group(1) and written.group(1)[6:].strip("0"):
        raise ValueError(_("an instant is kept to the microsecond: at most 6 digits of a second"))
    return value


def _day_in_range(value: date) -> date:
    if not FIRST_DAY <= value <= LAST_DAY:
        raise ValueError(
            _(
                "a date lies between {first} and {last}",
                first=FIRST_DAY.isoformat(),
                last=LAST_DAY.isoformat(),
            )
        )
    return value


def _instant_in_range(value: datetime) -> datetime:
    if value.utcoffset() is None:
        raise ValueError(_("an instant needs its UTC offset"))
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not FIRST_INSTANT <= utc <= LAST_INSTANT:
        raise ValueError(
            _(
                "an instant lies between {first} and {last} (in UTC)",
                first=FIRST_INSTANT.isoformat(),
                last=LAST_INSTANT.isoformat(),
            )
        )
    return value


Ref = Annotated[
    str,
    StringConstraints(min_length=1, max_length=REF_MAX_LENGTH),
    AfterValidator(_ref),
    Field(
        description="Opaque reference of a person (a pseudonym or directory id), never a name",
        examples=["jongere-17"],
        json_schema_extra={"pattern": REF_PATTERN},
    ),
]
Text = Annotated[
    str,
    StringConstraints(max_length=TEXT_MAX_LENGTH),
    AfterValidator(_no_nul),
    Field(json_schema_extra={"pattern": NO_NUL_PATTERN}),
]
ShortText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=SHORT_TEXT_MAX_LENGTH),
    AfterValidator(_no_nul),
    Field(json_schema_extra={"pattern": NO_NUL_PATTERN}),
]
# The schema says the range too, so that clients (and generated tests) know it.
DAY_PATTERN = r"^(19[0-9]{2}|2[0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
Day = Annotated[
    date,
    BeforeValidator(_iso_day),
    Strict(False),  # the text is checked above; what remains is reading it
    AfterValidator(_day_in_range),
    Field(json_schema_extra={"pattern": DAY_PATTERN}),
]
Instant = Annotated[
    datetime,
    BeforeValidator(_iso_instant),
    Strict(False),  # the text is checked above; what remains is reading it
    AfterValidator(_instant_in_range),
]
