"""The words a user reads, in the user's language: English, the source, or Dutch (nl-BE).

A text a user may read (a rule's message, a refusal, a problem's title and detail, a CLI
error, a report heading) is written once, in English, as ``_("… {name} …", name=value)``.
That gives a ``Message``: a ``str`` that reads as the English text wherever a string is
expected (logs, tests, exceptions), and that ``translate`` renders in another language from
the gettext catalog ``locale/nl_BE/LC_MESSAGES/overleg.po``. ``scripts/catalogs`` extracts
every ``_()`` into the catalogs (Babel); a test fails while one has no translation.

The language is chosen where the text is shown: ``Accept-Language`` in the API, the
``OVERLEG_LANGUAGE`` setting or else the locale (``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``,
``LANG``) in the CLI. Rule names, problem types and every machine-read value stay the same
in every language.

Placeholders are ``{name}``; ``{name:,}`` groups an integer's digits as the language does
(``25,000``, ``25.000``). A parameter that is itself a ``Message`` is translated too.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from enum import StrEnum
from functools import cache
from importlib import resources
from io import BytesIO
from typing import Any

from babel.core import default_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

DOMAIN = "overleg"


class Language(StrEnum):
    """The languages overleg speaks; the value is the language tag it answers with."""

    EN = "en"
    NL = "nl-BE"

    @property
    def locale(self) -> str:
        """The Babel/gettext locale name of the catalog."""
        return self.value.replace("-", "_")


# The CLI's language, chosen once at its start; the API passes the request's explicitly.
current: ContextVar[Language] = ContextVar("overleg_language", default=Language.EN)


class Message(str):
    """A text a user reads: its English form as a ``str``, and how to say it in another
    language (``msgid`` and ``params``)."""

    msgid: str
    params: Mapping[str, object]

    def __new__(cls, msgid: str, params: Mapping[str, object]) -> Message:
        # In English, Python's own formatting says what the catalog's would (``{n:,}`` gives
        # 25,000 either way), and at C speed: a message is made for every event projected.
        text = super().__new__(cls, msgid.format_map(params) if params else msgid)
        text.msgid = msgid
        text.params = params
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        return (Message, (self.msgid, dict(self.params)))

    def render(self, language: Language) -> str:
        """This message in ``language``: the catalog's translation, filled in."""
        if language is Language.EN:
            return str.__str__(self)
        return _fill(_catalog(language).gettext(self.msgid), self.params, language)


def _(msgid: str, /, **params: object) -> Message:
    """Mark ``msgid`` (English, with ``{name}`` placeholders) as a text users read."""
    return Message(msgid, params)


def joined(parts: Sequence[str], separator: str = ", ") -> Message:
    """A list of texts read as one, each part translated (role names, say)."""
    names = {f"part{i}": part for i, part in enumerate(parts)}
    return Message(separator.join("{" + name + "}" for name in names), names)


def translate(text: str, language: Language | None = None) -> str:
    """``text`` in ``language`` (the current one when not given): a ``Message`` translated,
    any other string as it is (data, a name, a library's text)."""
    if isinstance(text, Message):
        return text.render(current.get() if language is None else language)
    return text


def text_of(error: BaseException) -> str:
    """What an error says, as its ``Message`` when it was raised with one (``str(error)``
    gives the English text only)."""
    first = error.args[0] if len(error.args) == 1 else None
    return first if isinstance(first, Message) else str(error)


class _Formatter(string.Formatter):
    def __init__(self, language: Language) -> None:
        self.language = language

    def format_field(self, value: Any, format_spec: str) -> Any:
        if format_spec == "," and isinstance(value, int) and not isinstance(value, bool):
            return format_decimal(value, locale=self.language.locale)
        if isinstance(value, Message):
            value = value.render(self.language)
        return super().format_field(value, format_spec)


def _fill(template: str, params: Mapping[str, object], language: Language) -> str:
    if not params:
        return template
    return _Formatter(language).vformat(template, (), params)


@cache
def _catalog(language: Language) -> NullTranslations:
    """The language's gettext catalog, compiled from its ``.po`` file once per process."""
    source = resources.files("overleg") / "locale" / language.locale / "LC_MESSAGES"
    po = source / f"{DOMAIN}.po"
    if not po.is_file():
        return NullTranslations()
    with po.open("rb") as file:
        catalog = read_po(file, locale=language.locale, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog)  # fuzzy entries are left out: they read as English
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def parse_language(value: str) -> Language | None:
    """The language a tag or locale name names (``nl``, ``nl-BE``, ``nl_BE.UTF-8``, ``en``,
    ``en_GB``), or ``None`` for one overleg does not speak."""
    primary = value.strip().replace("_", "-").split(".")[0].split("-")[0].lower()
    if primary == "nl":
        return Language.NL
    if primary == "en":
        return Language.EN
    return None


def from_accept_language(header: str | None) -> Language:
    """The language of an ``Accept-Language`` header that overleg speaks and the client
    prefers most (RFC 9110: by weight, then by order); English when it names none."""
    ranked: list[tuple[float, int, Language]] = []
    for order, item in enumerate((header or "").split(",")):
        tag, _sep, parameters = item.partition(";")
        weight = 1.0
        for parameter in parameters.split(";"):
            name, _eq, value = parameter.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        language = parse_language(tag) if tag.strip() != "*" else Language.EN
        if language is not None and weight > 0:
            ranked.append((-weight, order, language))
    return min(ranked)[2] if ranked else Language.EN


def from_environment(setting: str | None) -> Language:
    """The CLI's language: the ``OVERLEG_LANGUAGE`` setting, else the locale's, else
    English."""
    if setting:
        chosen = parse_language(setting)
        if chosen is not None:
            return chosen
    # gettext's order; not LC_CTYPE, which Python sets to C.UTF-8 where no locale is installed
    found = default_locale(("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"))
    return (parse_language(found) if found else None) or Language.EN
