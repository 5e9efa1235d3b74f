"""Sealed statistical releases: published figures kept with the log position they rest on.

A release (table ``stats_release``, beside the events) holds the statistics exactly as
``overleg stats YEAR --format json`` printed them, the instant they were known at, the
event log's head when they were sealed, and a SHA-256 digest over the canonical JSON of
figures, year, programme, instant and position. ``recompute`` counts a release again from
the log up to its position only, in a throw-away store, so events recorded later never
change it and a changed event before it does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from overleg.adapters.eventstore import DamagedStore, Database
from overleg.adapters.migrations import migrate
from overleg.adapters.views import ViewStore
from overleg.aggregates.case import CaseEvent
from overleg.aggregates.values import Programme
from overleg.i18n import Message, _
from overleg.policies.rules import BRUSSELS
from overleg.projections.base import EventReader
from overleg.projections.runner import Projector
from overleg.projections.statistics import AnnualStatistics, Statistics, annual_statistics
from overleg.projections.themes import BottleneckThemes


def figures_text(figures: Statistics) -> str:
    """The figures exactly as ``overleg stats --format json`` prints them."""
    return json.dumps(figures.model_dump(mode="json"), ensure_ascii=False, indent=2)


def digest(figures: Any, year: int, programme: str | None, as_known_at: str, position: int) -> str:
    """SHA-256 (hex) over the canonical JSON (sorted keys, no spaces, UTF-8) of a release."""
    canonical = json.dumps(
        {
            "figures": figures,
            "year": year,
            "programme": programme,
            "as_known_at": as_known_at,
            "position": position,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Release:
    """One sealed release as stored."""

    number: int
    year: int
    programme: str | None
    as_known_at: str  # ISO 8601 with its offset: the figures count what was recorded by then
    position: int  # the event log's head when it was sealed
    sealed_at: str
    figures: str  # the JSON text as printed
    digest: str

    def recorded_digest_holds(self) -> bool:
        """Whether the stored digest still follows from the stored figures and facts."""
        try:
            figures = json.loads(self.figures)
        except ValueError:
            return False
        found = digest(figures, self.year, self.programme, self.as_known_at, self.position)
        return found == self.digest


class Releases:
    """The sealed releases of one store (table ``stats_release``)."""

    def __init__(self, store: ViewStore) -> None:
        self.store = store
        migrate(store)  # its table is the migrations' (adapters/migrations.py)

    def seal(
        self,
        figures: Statistics,
        as_known_at: datetime,
        position: int,
        sealed_at: datetime,
    ) -> Release:
        """Store a release of these figures and return it with its number and digest."""
        text = figures_text(figures)
        programme = None if figures.programme is None else figures.programme.value
        known = as_known_at.isoformat()
        sealed = digest(json.loads(text), figures.year, programme, known, position)
        with self.store.transaction() as tx:
            tx.schema_changes()  # two releases sealed at once get numbers one after the other
            number = int(
                tx.fetchall("SELECT COALESCE(MAX(number), 0) + 1 FROM stats_release")[0][0]
            )
            release = Release(
                number,
                figures.year,
                programme,
                known,
                position,
                sealed_at.isoformat(),
                text,
                sealed,
            )
            tx.execute(
                "INSERT INTO stats_release (number, year, programme, as_known_at, position,"
                " sealed_at, figures, digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    release.number,
                    release.year,
                    release.programme,
                    release.as_known_at,
                    release.position,
                    release.sealed_at,
                    release.figures,
                    release.digest,
                ),
            )
        return release

    def all(self) -> list[Release]:
        """Every sealed release, oldest first."""
        rows = self.store.read(
            "SELECT number, year, programme, as_known_at, position, sealed_at, figures, digest"
            " FROM stats_release ORDER BY number"
        )
        return [
            Release(int(r[0]), int(r[1]), r[2], r[3], int(r[4]), r[5], r[6], r[7]) for r in rows
        ]


class _UpTo:
    """The events of a log up to and including one position, and none after it."""

    def __init__(self, log: EventReader, position: int) -> None:
        self.log = log
        self.position = position
        self.channel: str | None = None
        self.damaged: list[tuple[int, DamagedStore]] = []

    def head(self) -> int:
        return min(self.log.head(), self.position)

    def case_events(self, case_id: object) -> list[CaseEvent]:
        return self.log.case_events(case_id)

    def read_cases(
        self, after: UUID | None, through: int, limit: int
    ) -> tuple[UUID | None, list[tuple[int, CaseEvent]]]:
        last, events = self.log.read_cases(after, min(through, self.position), limit)
        self.damaged.extend(self.log.damaged)
        self.log.damaged.clear()
        return last, events

    def read(self, after: int, limit: int) -> tuple[int, list[tuple[int, CaseEvent]]]:
        if after >= self.position:
            return after, []
        last, events = self.log.read(after, min(limit, self.position - after))
        # Notification ids may have gaps: whatever lies beyond the position is not read.
        self.damaged.extend((p, d) for p, d in self.log.damaged if p <= self.position)
        self.log.damaged.clear()
        return min(last, self.position), [(p, e) for p, e in events if p <= self.position]


def recompute(
    log: EventReader, release: Release, themes: BottleneckThemes | None = None
) -> Statistics:
    """A release's figures counted again from the log up to its position, in a throw-away
    SQLite store, as known at its instant and on the day it was sealed."""
    scratch = ViewStore(Database(backend="sqlite", sqlite_path=":memory:"))
    try:
        projector = Projector(_UpTo(log, release.position), scratch)
        projector.rebuild([AnnualStatistics.name])
        return annual_statistics(
            scratch,
            release.year,
            None if release.programme is None else Programme(release.programme),
            as_known_at=datetime.fromisoformat(release.as_known_at),
            themes=themes,
            today=sealed_day(release),
        )
    finally:
        scratch.close()


def sealed_day(release: Release) -> date:
    """The day (in Belgium) a release was sealed: plans counted as not held by then."""
    return datetime.fromisoformat(release.sealed_at).astimezone(BRUSSELS).date()


def differences(sealed: Any, now: Any, path: str = "") -> Iterator[Message]:
    """Every figure path whose value differs, as ``path: sealed X, now Y``."""
    if isinstance(sealed, dict) and isinstance(now, dict):
        for key in [*sealed, *(k for k in now if k not in sealed)]:
            where = f"{path}.{key}" if path else str(key)
            if key not in now:
                yield _(
                    "{path}: sealed {sealed}, now absent", path=where, sealed=_shown(sealed[key])
                )
            elif key not in sealed:
                yield _("{path}: sealed absent, now {now}", path=where, now=_shown(now[key]))
            else:
                yield from differences(sealed[key], now[key], where)
    elif sealed != now or type(sealed) is not type(now):
        yield _(
            "{path}: sealed {sealed}, now {now}",
            path=path or _("(figures)"),
            sealed=_shown(sealed),
            now=_shown(now),
        )


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
