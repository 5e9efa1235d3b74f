"""Which rule set a case keeps, and its clauses.

Rules are law-like: they change on a date. A case keeps, for its whole life, the rule set in
force at the instant of its request: v1 before the v2 effective instant (a setting), v2 from
it on (``event-stream-v2.md``, "Rule sets, fixed per case").
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from types import ModuleType
from typing import Protocol, cast

from overleg.aggregates.values import RuleSet
from overleg.i18n import Message
from overleg.policies import v1, v2
from overleg.policies.rules import BRUSSELS, CaseFacts, MeetingFacts

# The instant an organisation adopts v2, unless configured otherwise.
DEFAULT_V2_FROM = datetime(2026, 1, 1, tzinfo=BRUSSELS)


def in_force(requested_at: datetime, v2_from: datetime = DEFAULT_V2_FROM) -> RuleSet:
    """The rule set in force for a case requested at ``requested_at``."""
    return RuleSet.V2 if requested_at >= v2_from else RuleSet.V1


class Clauses(Protocol):
    """What a rule set decides on its own (each module of ``policies`` named for a set)."""

    def consent_required(self, case: CaseFacts, held_on: date) -> None: ...
    def attendance_known(self, case: CaseFacts, number: int, meeting: MeetingFacts) -> None: ...
    def chair_neutral(self, case: CaseFacts, chair: str) -> None: ...
    def chair_not_named(self, case: CaseFacts, refs: Iterable[str], what: Message) -> None: ...
    def coordinator(
        self, case: CaseFacts, number: int, meeting: MeetingFacts, ref: str
    ) -> None: ...
    def held_not_in_future(self, case: CaseFacts, held_on: date, at: datetime) -> None: ...
    def at_order(self, case: CaseFacts, at: datetime) -> None: ...
    def bottleneck_allowed(self, case: CaseFacts) -> None: ...


_MODULES: dict[RuleSet, ModuleType] = {RuleSet.V1: v1, RuleSet.V2: v2}


def clauses(rule_set: RuleSet) -> Clauses:
    """The clauses of one rule set."""
    return cast(Clauses, _MODULES[rule_set])
