"""What every projection is: named tables built from case events, batch by batch."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar, Protocol
from uuid import UUID

from overleg.adapters.eventstore import DamagedStore
from overleg.adapters.views import Tx
from overleg.aggregates.case import CaseEvent


class EventReader(Protocol):
    """Where projections read the case events from, in the order they were recorded."""

    # The store's notification channel new events are announced on (PostgreSQL), or None.
    channel: str | None
    # Events ``read`` met but could not read (their position, and why): left out of what it
    # returns, kept here for the caller to take and record.
    damaged: list[tuple[int, DamagedStore]]

    def head(self) -> int:
        """The position (notification id) of the last recorded event; 0 when none."""
        ...

    def read(self, after: int, limit: int) -> tuple[int, list[tuple[int, CaseEvent]]]:
        """Up to ``limit`` events after position ``after``, with their positions, and the
        position of the last one read (``after`` when there was none)."""
        ...

    def read_cases(
        self, after: UUID | None, through: int, limit: int
    ) -> tuple[UUID | None, list[tuple[int, CaseEvent]]]:
        """The events up to position ``through`` of the next whole cases after case
        ``after`` (in case id order; about ``limit`` events), with their positions, and the
        last case read (``None`` when none is left). For a rebuild: each case is read once,
        whole, as it reads now."""
        ...

    def case_events(self, case_id: object) -> list[CaseEvent]:
        """Every event of one case as it reads now (an erased case's in erased form)."""
        ...


class Projection(ABC):
    """A read model: its own tables, filled only from case events.

    ``apply`` receives a batch of events in the order they were recorded, inside the
    transaction that also advances the projection's tracking position, so every event is
    applied exactly once. ``version`` goes up whenever the tables or their meaning
    change: a stored projection of another version is dropped and rebuilt from the events.
    """

    name: ClassVar[str]
    version: ClassVar[int]
    tables: ClassVar[tuple[str, ...]]
    # Whether its tables keep personal data (by case, in a ``case_id`` column): when a
    # case is erased, its rows are built again from its events as they read then.
    personal: ClassVar[bool] = False

    @abstractmethod
    def create(self, tx: Tx) -> None:
        """Create the projection's tables (and indexes) if they do not exist."""

    @abstractmethod
    def apply(self, tx: Tx, events: Sequence[CaseEvent]) -> None:
        """Apply a batch of events, in order."""

    def forget(self, tx: Tx, case_ids: Sequence[str]) -> None:
        """Delete every row of these cases (before they are built again)."""
        for ids in chunks(case_ids):
            for table in self.tables:
                tx.execute(f"DELETE FROM {table} WHERE case_id IN ({placeholders(len(ids))})", ids)

    def drop(self, tx: Tx) -> None:
        """Drop the projection's tables."""
        for table in self.tables:
            tx.execute(f"DROP TABLE IF EXISTS {table}")


def programmes_and_regions(
    tx: Tx, table: str, requested: dict[str, tuple[str, str]], case_ids: Sequence[str]
) -> dict[str, tuple[str, str]]:
    """The programme and region of these cases: as requested in the batch at hand, or as
    ``table`` (case_id, programme, region) keeps them from earlier batches. A case in
    neither (never requested) is left out."""
    found = {c: requested[c] for c in case_ids if c in requested}
    earlier = list(dict.fromkeys(c for c in case_ids if c not in requested))
    for ids in chunks(earlier):
        for case_id, programme, region in tx.fetchall(
            f"SELECT case_id, programme, region FROM {table}"
            f" WHERE case_id IN ({placeholders(len(ids))})",
            ids,
        ):
            found[case_id] = (programme, region)
    return found


def at_head_checks(events_table: str, projections: Sequence[type[Projection]]) -> str:
    """PostgreSQL: the first three columns of a statement that reads one case's rows of
    ``projections`` from ``case_view v`` (its first parameter the case's id, as the events
    table keeps it), to say whether they hold all of the case: the case's last seq in the
    event store, whether any of them set an event of the case aside, and whether each is
    stored at this code's version."""
    names = ", ".join(f"'{p.name}'" for p in projections)
    versions = " OR ".join(
        f"(p.name = '{p.name}' AND p.version = {p.version})" for p in projections
    )
    return (
        f"(SELECT MAX(originator_version) FROM {events_table} WHERE originator_id = ?),"
        f" EXISTS (SELECT 1 FROM projection_failure f WHERE f.projection IN ({names})"
        "  AND f.case_id = v.case_id),"
        f" (SELECT COUNT(*) FROM projection_position p WHERE {versions}) = {len(projections)}"
    )


def chunks(items: Sequence[str], size: int = 500) -> list[Sequence[str]]:
    """Slices of at most ``size`` items, for ``IN (...)`` lists of bounded length."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def placeholders(count: int) -> str:
    """``?, ?, ?`` for ``count`` parameters."""
    return ", ".join("?" * count)
