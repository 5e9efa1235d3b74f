"""Retention: how long the personal data of a case is kept after the case ends.

A case has ended when its request was declined or it was closed (and not reopened since);
it ended when that was recorded. ``OVERLEG_RETENTION_DAYS`` after that, ``overleg
retention`` erases its personal data, as an erasure on request would (``grounds``
retention). The facts of the case, and so every figure, are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from overleg.aggregates.case import Case
from overleg.i18n import Message, _


@dataclass(frozen=True)
class Due:
    """A case whose retention period has passed."""

    case_id: str
    ended: str  # declined or closed
    ended_at: datetime


def cutoff(now: datetime, days: int) -> datetime:
    """Cases that ended before this instant are due."""
    return now - timedelta(days=days)


def due(case: Case, before: datetime) -> Due | None:
    """The case, if it ended (and stays ended) before ``before`` and is not erased yet."""
    if case.ended is None or case.erased_at is not None or case.last_at is None:
        return None
    if case.last_at >= before:
        return None  # nothing is recorded after the end but a reopening: the end is the last
    return Due(str(case.id), case.ended, case.last_at)


def summary(found: Sequence[Due], days: int, dry_run: bool) -> Message:
    """One line on what the run did (or would do)."""
    if dry_run:
        return _(
            "{count:,} case(s) ended more than {days:,} day(s) ago: personal data would be erased.",
            count=len(found),
            days=days,
        )
    return _(
        "{count:,} case(s) ended more than {days:,} day(s) ago: personal data erased.",
        count=len(found),
        days=days,
    )
