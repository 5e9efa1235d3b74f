"""What an erased case keeps of its personal parts: their shape, never their content.

When a case's personal data is erased, the data key that opens its events is destroyed.
What every reader sees of a personal part from then on is its *erased form*, computed once,
while the key still opened it:

- every reference to a person becomes a pseudonym of that case (``erased:1``,
  ``erased:2``, ...): the same person the same pseudonym within the case, so who consented,
  who chaired, who was present and who coordinates still fit together (and the case's rules
  still hold for it); the numbering starts again in every case, so nothing links two cases;
- every free text (question, reason, place, agreement, description) becomes ``[erased]``;
- the birth date and the agreements' due dates become unknown (``None``);
- lists keep their length and an invitee keeps their role: counts and roles are facts the
  events keep outside their personal part too.
"""

from __future__ import annotations

from typing import Any

ERASED_TEXT = "[erased]"
PSEUDONYM_PREFIX = "erased:"

# The keys (at any depth) whose string values are references to people.
REF_KEYS = frozenset(
    {
        "requester_ref",
        "client_ref",
        "ref",
        "chair",
        "coordinator",
        "prepared_by",
        "professionals",
        "not_invited",
        "who",
    }
)
# Dates of a person or of an agreement: unknown once erased.
DATE_KEYS = frozenset({"client_birth_date", "due"})
# A value of the roles' vocabulary, kept as it is.
KEPT_KEYS = frozenset({"role"})


class Pseudonyms:
    """One case's pseudonyms: the same reference always the same pseudonym."""

    def __init__(self) -> None:
        self._given: dict[str, str] = {}

    def __call__(self, ref: str) -> str:
        found = self._given.get(ref)
        if found is None:
            found = self._given[ref] = f"{PSEUDONYM_PREFIX}{len(self._given) + 1}"
        return found


def erased_form(personal: dict[str, Any], pseudonyms: Pseudonyms) -> dict[str, Any]:
    """The erased form of one event's personal part (see the module's docstring)."""
    return {key: _erased(value, key, pseudonyms) for key, value in personal.items()}


def _erased(value: Any, key: str, pseudonyms: Pseudonyms) -> Any:
    if value is None or key in KEPT_KEYS:
        return value
    if key in DATE_KEYS:
        return None
    if isinstance(value, list):
        return [_erased(item, key, pseudonyms) for item in value]
    if isinstance(value, dict):
        return erased_form(value, pseudonyms)
    if isinstance(value, str):
        return pseudonyms(value) if key in REF_KEYS else ERASED_TEXT
    return value  # a flag or a number: not a person's
