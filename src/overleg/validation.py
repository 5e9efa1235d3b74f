"""What pydantic says is wrong with an input, in words the user's language has.

pydantic words its errors in English. ``explain`` gives the same English as a ``Message``,
with the error's context values as parameters, for the error types overleg's bodies,
parameters, headers and settings can give; an error raised by one of overleg's own
validators keeps the validator's ``Message``. An error of another type, or one pydantic
words otherwise than here (another version of it), is given as pydantic words it, in
English: the English an input's problem reads in never depends on this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic_core import ErrorDetails

from overleg.i18n import Message, _, text_of

# The errors with nothing of the input in them; some are worded otherwise when the input was
# read as JSON (``array`` for ``list``, ``object`` for ``dictionary``).
_FIXED: dict[str, tuple[Message, ...]] = {
    "missing": (_("Field required"),),
    "extra_forbidden": (_("Extra inputs are not permitted"),),
    "string_type": (_("Input should be a valid string"),),
    "string_unicode": (
        _("Input should be a valid string, unable to parse raw data as a unicode string"),
    ),
    "int_parsing": (_("Input should be a valid integer, unable to parse string as an integer"),),
    "int_type": (_("Input should be a valid integer"),),
    "int_from_float": (_("Input should be a valid integer, got a number with a fractional part"),),
    "int_parsing_size": (_("Unable to parse input string as an integer, exceeded maximum size"),),
    "float_parsing": (_("Input should be a valid number, unable to parse string as a number"),),
    "float_type": (_("Input should be a valid number"),),
    "finite_number": (_("Input should be a finite number"),),
    "bool_parsing": (_("Input should be a valid boolean, unable to interpret input"),),
    "bool_type": (_("Input should be a valid boolean"),),
    "date_type": (_("Input should be a valid date"),),
    "date_from_datetime_inexact": (
        _("Datetimes provided to dates should have zero time - e.g. be exact dates"),
    ),
    "datetime_type": (_("Input should be a valid datetime"),),
    "timezone_aware": (_("Input should have timezone info"),),
    "timezone_naive": (_("Input should not have timezone info"),),
    "list_type": (_("Input should be a valid list"), _("Input should be a valid array")),
    "uuid_type": (_("UUID input should be a string, bytes or UUID object"),),
    "json_type": (_("JSON input should be string, bytes or bytearray"),),
    "dict_type": (_("Input should be a valid dictionary"), _("Input should be an object")),
    "url_type": (_("URL input should be a string or URL"),),
}

# What the date and time parser says is wrong with a date or an instant written as text.
_DATE_PROBLEMS: dict[str, Message] = {
    str(problem): problem
    for problem in (
        _("input is too short"),
        _("unexpected extra characters at the end of the input"),
        _("invalid datetime separator, expected `T`, `t`, `_` or space"),
        _("invalid date separator, expected `-`"),
        _("invalid character in year"),
        _("invalid character in month"),
        _("invalid character in day"),
        _("invalid time separator, expected `:`"),
        _("invalid character in hour"),
        _("invalid character in minute"),
        _("invalid character in second"),
        _("invalid character in second fraction"),
        _("invalid timezone sign"),
        _("invalid timezone hour"),
        _("invalid timezone minute"),
        _("timezone minute value is outside expected range of 0-59"),
        _("timezone offset must be less than 24 hours"),
        _("month value is outside expected range of 1-12"),
        _("day value is outside expected range"),
        _("hour value is outside expected range of 0-23"),
        _("minute value is outside expected range of 0-59"),
        _("second value is outside expected range of 0-59"),
        _("second fraction value is more than 6 digits long"),
        _("second fraction digits missing after `.`"),
    )
}


def explain(error: ErrorDetails) -> str:
    """The problem of one validation error, as a translatable text where overleg knows the
    error's type; pydantic's own words (English) otherwise."""
    said = error["msg"]
    try:
        candidates = _candidates(error["type"], error.get("ctx") or {})
    except (KeyError, TypeError, ValueError):
        return said
    return next((text for text in candidates if text == said), said)


def _candidates(kind: str, ctx: Mapping[str, Any]) -> tuple[Message, ...]:
    """The ways pydantic may word an error of this type with this context."""
    if kind in _FIXED:
        return _FIXED[kind]
    match kind:
        case "string_too_short":
            least = ctx["min_length"]
            if least == 1:
                return (_("String should have at least {min_length} character", min_length=least),)
            return (_("String should have at least {min_length} characters", min_length=least),)
        case "string_too_long":
            most = ctx["max_length"]
            if most == 1:
                return (_("String should have at most {max_length} character", max_length=most),)
            return (_("String should have at most {max_length} characters", max_length=most),)
        case "string_pattern_mismatch":
            return (_("String should match pattern '{pattern}'", pattern=ctx["pattern"]),)
        case "too_short" if ctx["field_type"] == "List":
            counts = {"min_length": ctx["min_length"], "actual_length": ctx["actual_length"]}
            if ctx["min_length"] == 1:
                return (
                    _(
                        "List should have at least {min_length} item after validation, "
                        "not {actual_length}",
                        **counts,
                    ),
                )
            return (
                _(
                    "List should have at least {min_length} items after validation, "
                    "not {actual_length}",
                    **counts,
                ),
            )
        case "too_long" if ctx["field_type"] == "List":
            counts = {"max_length": ctx["max_length"], "actual_length": ctx["actual_length"]}
            if ctx["max_length"] == 1:
                return (
                    _(
                        "List should have at most {max_length} item after validation, "
                        "not {actual_length}",
                        **counts,
                    ),
                )
            return (
                _(
                    "List should have at most {max_length} items after validation, "
                    "not {actual_length}",
                    **counts,
                ),
            )
        case "greater_than":
            return (_("Input should be greater than {gt}", gt=ctx["gt"]),)
        case "greater_than_equal":
            return (_("Input should be greater than or equal to {ge}", ge=ctx["ge"]),)
        case "less_than":
            return (_("Input should be less than {lt}", lt=ctx["lt"]),)
        case "less_than_equal":
            return (_("Input should be less than or equal to {le}", le=ctx["le"]),)
        case "date_parsing":
            return (
                _(
                    "Input should be a valid date in the format YYYY-MM-DD, {error}",
                    error=_date_problem(ctx),
                ),
            )
        case "date_from_datetime_parsing":
            return (
                _("Input should be a valid date or datetime, {error}", error=_date_problem(ctx)),
            )
        case "datetime_parsing":
            return (_("Input should be a valid datetime, {error}", error=_date_problem(ctx)),)
        case "datetime_from_date_parsing":
            return (
                _("Input should be a valid datetime or date, {error}", error=_date_problem(ctx)),
            )
        case "literal_error" | "enum":
            return (_("Input should be {expected}", expected=_choices(ctx["expected"])),)
        case "uuid_parsing":
            return (_("Input should be a valid UUID, {error}", error=str(ctx["error"])),)
        case "json_invalid":
            return (_("Invalid JSON: {error}", error=str(ctx["error"])),)
        case "model_type":
            return (
                _(
                    "Input should be a valid dictionary or instance of {class_name}",
                    class_name=ctx["class_name"],
                ),
                _("Input should be an object"),
            )
        case "value_error":
            return (_("Value error, {error}", error=_raised(ctx["error"])),)
        case "assertion_error":
            return (_("Assertion failed, {error}", error=_raised(ctx["error"])),)
        case "url_parsing":
            return (_("Input should be a valid URL, {error}", error=str(ctx["error"])),)
        case "url_scheme":
            return (
                _(
                    "URL scheme should be {expected_schemes}",
                    expected_schemes=_choices(ctx["expected_schemes"]),
                ),
            )
    return ()


def _raised(error: object) -> str:
    """What a validator's error says: its ``Message`` when overleg raised it with one."""
    return text_of(error) if isinstance(error, BaseException) else str(error)


def _date_problem(ctx: Mapping[str, Any]) -> str:
    said = str(ctx["error"])
    return _DATE_PROBLEMS.get(said, said)


def _choices(expected: object) -> str:
    """pydantic's list of the values allowed (``'a', 'b' or 'c'``), its "or" translatable
    (the values themselves are never translated)."""
    listed = str(expected)
    some, separator, last = listed.rpartition(" or ")
    if not separator:
        return listed
    return _("{some} or {last}", some=some, last=last)
