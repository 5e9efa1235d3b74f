"""Keeps the projections up to date with the event store, exactly once per event.

Each projection has its own row in ``projection_position``: the notification id of the last
event it applied. A batch of events is applied and that row advanced in one transaction,
so after a crash (even ``kill -9`` between two events) a projection resumes from the last
committed batch: nothing is applied twice and nothing is missed. Two processes catching up
at once are serialised on those rows (on SQLite, on the database's write lock).
"""

from __future__ import annotations

from collections.abc import Sequence

from overleg.adapters.views import Tx, ViewStore
from overleg.progress import Progress
from overleg.projections.audit_trail import AuditTrail
from overleg.projections.base import EventReader, Projection, placeholders
from overleg.projections.bottlenecks import Bottlenecks
from overleg.projections.case_view import CaseViews
from overleg.projections.statistics import AnnualStatistics

PROJECTIONS: tuple[type[Projection], ...] = (CaseViews, AuditTrail, AnnualStatistics, Bottlenecks)
NAMES = tuple(p.name for p in PROJECTIONS)

CATCH_UP_BATCH = 1000  # events per transaction when following the log
REBUILD_BATCH = 5000  # events per transaction when rebuilding


class UnknownProjection(ValueError):
    """A projection name that does not exist."""

    def __init__(self, name: str) -> None:
        super().__init__(f"No projection {name!r}; the projections are {', '.join(NAMES)}")


class Projector:
    """Applies new events of an event store to its projections."""

    def __init__(
        self, reader: EventReader, views: ViewStore, batch_size: int = CATCH_UP_BATCH
    ) -> None:
        self.reader = reader
        self.views = views
        self.batch_size = batch_size
        self.projections = {p.name: p() for p in PROJECTIONS}
        self._set_up()

    def _set_up(self) -> None:
        """Create what is missing; rebuild from zero a projection stored at another version."""
        with self.views.transaction() as tx:
            tx.execute(
                "CREATE TABLE IF NOT EXISTS projection_position ("
                " name TEXT PRIMARY KEY, version INTEGER NOT NULL, position BIGINT NOT NULL)"
            )
            stored = {
                name: int(version)
                for name, version in tx.fetchall("SELECT name, version FROM projection_position")
            }
            for name, projection in self.projections.items():
                if name not in stored:
                    tx.execute(
                        "INSERT INTO projection_position (name, version, position) VALUES (?, ?, 0)"
                        " ON CONFLICT (name) DO NOTHING",
                        (name, projection.version),
                    )
                elif stored[name] != projection.version:
                    self._reset(tx, projection)
                projection.create(tx)

    def _reset(self, tx: Tx, projection: Projection) -> None:
        projection.drop(tx)
        projection.create(tx)
        tx.execute(
            "UPDATE projection_position SET position = 0, version = ? WHERE name = ?",
            (projection.version, projection.name),
        )

    def positions(self) -> dict[str, int]:
        """How far each projection is (the notification id of its last applied event)."""
        rows = self.views.read("SELECT name, position FROM projection_position")
        return {name: int(position) for name, position in rows if name in self.projections}

    def behind(self) -> int:
        """How many notifications the slowest projection still has to read (at most)."""
        head = self.reader.head()
        return max(0, head - min(self.positions().values(), default=0))

    def catch_up(self, names: Sequence[str] | None = None, progress: Progress | None = None) -> int:
        """Apply every event not yet applied; returns how many events were applied."""
        chosen = self._chosen(names)
        if progress is not None:
            progress.phase("projecting", self.behind() or None)
        applied = 0
        while True:
            read, count = self._one_batch(chosen)
            applied += count
            if progress is not None:
                progress.advance(read)
            if read < self.batch_size:
                return applied

    def _chosen(self, names: Sequence[str] | None) -> list[Projection]:
        for name in names or ():
            if name not in self.projections:
                raise UnknownProjection(name)
        return [p for n, p in self.projections.items() if names is None or n in names]

    def _one_batch(self, chosen: list[Projection]) -> tuple[int, int]:
        """One transaction: lock the positions, apply the next batch, advance them."""
        with self.views.transaction() as tx:
            positions = self._lock(tx, [p.name for p in chosen])
            last, events = self.reader.read(min(positions.values()), self.batch_size)
            if not events:
                return 0, 0
            applied = 0
            for projection in chosen:
                new = [e for position, e in events if position > positions[projection.name]]
                if new:
                    projection.apply(tx, new)
                    applied = max(applied, len(new))
                tx.execute(
                    "UPDATE projection_position SET position = ? WHERE name = ?",
                    (last, projection.name),
                )
            return len(events), applied

    def _lock(self, tx: Tx, names: list[str]) -> dict[str, int]:
        lock = " FOR UPDATE" if tx.dialect == "postgresql" else ""
        rows = tx.fetchall(
            "SELECT name, position FROM projection_position"  # noqa: S608 - no values inlined
            f" WHERE name IN ({placeholders(len(names))}) ORDER BY name{lock}",
            names,
        )
        return {name: int(position) for name, position in rows}

    def rebuild(self, names: Sequence[str] | None = None, progress: Progress | None = None) -> int:
        """Drop projections and build them again from the whole log, in large batches."""
        chosen = self._chosen(names)
        with self.views.transaction() as tx:
            self._lock(tx, [p.name for p in chosen])
            for projection in chosen:
                self._reset(tx, projection)
        batch, self.batch_size = self.batch_size, REBUILD_BATCH
        try:
            return self.catch_up([p.name for p in chosen], progress)
        finally:
            self.batch_size = batch
