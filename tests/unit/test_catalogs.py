"""The Dutch catalog says every text a user reads, fills the same placeholders, and uses the
terms of the source texts (voorzitter, hulpcoördinator, werkplan, vervolgoverleg)."""

from __future__ import annotations

import fnmatch
import re
import string
import tomllib
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

import overleg
from overleg.i18n import Language, _, from_accept_language, parse_language, translate

SOURCE = Path(overleg.__file__).parent
CATALOG = SOURCE / "locale" / "nl_BE" / "LC_MESSAGES" / "overleg.po"

# English term in a text -> the Dutch term its translation must use (the source texts').
GLOSSARY = {
    r"\bchairs?\b": "voorzitter",
    r"\bworkplans?\b": "werkplan",
    r"\bfollow-ups?\b": "vervolgoverleg",
    r"\bcoordinator\b": "hulpcoördinator",
    r"\bbottlenecks?\b": "knelpunt",
    r"\bconsent\b": "toestemming",
    r"\bcontinuity teams?\b": "team continuïteit",
    r"\bcrisis plan\b": "crisisplan",
}


def _in_code() -> set[str]:
    found = extract_from_dir(str(SOURCE), keywords={"_": None}, comment_tags=())
    return {message for _file, _line, message, _comments, _context in found}


def _catalog() -> dict[str, tuple[str, bool]]:
    with CATALOG.open("rb") as file:
        catalog = read_po(file)
    return {m.id: (m.string, m.fuzzy) for m in catalog if m.id and isinstance(m.id, str)}


def _fields(text: str) -> set[str]:
    return {name for _lit, name, _spec, _conv in string.Formatter().parse(text) if name}


def test_every_text_in_the_code_is_in_the_catalog_and_nothing_else() -> None:
    code, catalog = _in_code(), _catalog()
    assert code, "no _() found in the code"
    missing = sorted(code - catalog.keys())
    assert not missing, f"run scripts/catalogs and translate: {missing[:10]}"
    unused = sorted(catalog.keys() - code)
    assert not unused, f"run scripts/catalogs: texts no longer in the code {unused[:10]}"


def test_every_text_is_translated_with_the_same_placeholders() -> None:
    for msgid, (msgstr, fuzzy) in _catalog().items():
        assert msgstr, f"no Dutch for {msgid!r}"
        assert not fuzzy, f"the Dutch for {msgid!r} is marked fuzzy: check it"
        assert _fields(msgstr) == _fields(msgid), f"placeholders differ: {msgid!r} / {msgstr!r}"


def test_the_dutch_uses_the_terms_of_the_source_texts() -> None:
    wrong = [
        (msgid, dutch)
        for msgid, (msgstr, _fuzzy) in _catalog().items()
        for english, dutch in GLOSSARY.items()
        if re.search(english, msgid, re.IGNORECASE) and dutch not in msgstr.lower()
    ]
    assert not wrong, wrong[:10]


def test_a_message_reads_as_english_and_renders_in_dutch() -> None:
    message = _("{what} needs an appointed chair", what=_("A meeting"))
    assert message == "A meeting needs an appointed chair"
    dutch = translate(message, Language.NL)
    assert "voorzitter" in dutch
    assert dutch != message
    assert translate("not a message", Language.NL) == "not a message"


def test_numbers_are_grouped_as_the_language_does() -> None:
    message = _("{count:,} event(s) exported", count=25000)
    assert message.render(Language.EN).startswith("25,000")
    assert message.render(Language.NL).startswith("25.000")


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, Language.EN),
        ("", Language.EN),
        ("nl", Language.NL),
        ("nl-BE,nl;q=0.9,en;q=0.8", Language.NL),
        ("fr-BE, nl;q=0.5, en;q=0.4", Language.NL),
        ("en;q=0.9, nl-BE;q=0.3", Language.EN),
        ("nl;q=0, en", Language.EN),
        ("de, fr", Language.EN),
        ("nl;q=abc, en;q=0.1", Language.EN),
        ("*", Language.EN),
    ],
)
def test_accept_language_chooses_the_preferred_language_spoken(
    header: str | None, language: Language
) -> None:
    assert from_accept_language(header) is language


def test_locale_names_map_to_languages() -> None:
    assert parse_language("nl_BE.UTF-8") is Language.NL
    assert parse_language("en_GB") is Language.EN
    assert parse_language("C.UTF-8") is None


def test_the_catalog_is_installed_with_the_package() -> None:
    """An installed overleg (a wheel, the container image) carries the catalog it reads."""
    declared = tomllib.loads((SOURCE.parents[1] / "pyproject.toml").read_text())
    patterns = declared["tool"]["setuptools"]["package-data"]["overleg"]
    catalog = CATALOG.relative_to(SOURCE).as_posix()
    assert any(fnmatch.fnmatch(catalog, pattern) for pattern in patterns), patterns
