"""Keeps the projections up to date with the event store, exactly once per event.

Each projection has its own row in ``projection_position``: the notification id of the last
event it applied. A batch of events is applied and that row advanced in one transaction,
so after a crash (even ``kill -9`` between two events) a projection resumes from the last
committed batch: nothing is applied twice and nothing is missed. Two processes catching up
at once are serialised on those rows (on SQLite, on the database's write lock).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from psycopg import sql

from overleg.adapters.eventstore import UNAVAILABLE, DamagedStore, Database
from overleg.adapters.migrations import SchemaTooNew, migrate
from overleg.adapters.views import Tx, ViewStore
from overleg.aggregates.case import Case, CaseEvent
from overleg.i18n import _
from overleg.logs import get_logger
from overleg.progress import Progress
from overleg.projections.audit_trail import AuditTrail
from overleg.projections.base import EventReader, Projection, placeholders
from overleg.projections.bottlenecks import Bottlenecks
from overleg.projections.case_view import CaseViews
from overleg.projections.statistics import AnnualStatistics

log = get_logger("overleg.projections")

PROJECTIONS: tuple[type[Projection], ...] = (CaseViews, AuditTrail, AnnualStatistics, Bottlenecks)
NAMES = tuple(p.name for p in PROJECTIONS)

CATCH_UP_BATCH = 1000  # events per transaction when following the log
REBUILD_BATCH = 5000  # events per transaction when rebuilding


class UnknownProjection(ValueError):
    """A projection name that does not exist."""

    def __init__(self, name: str) -> None:
        super().__init__(
            _(
                "No projection {name}; the projections are {names}",
                name=repr(name),
                names=", ".join(NAMES),
            )
        )


class ProjectionBehind(RuntimeError):
    """A projection further behind the log than its answers may be (``OVERLEG_READY_MAX_LAG``
    events, as for readiness): read now, they would leave out what it has not applied yet
    (its worker rebuilding it after an upgrade, say, or not started yet)."""

    def __init__(self, name: str, behind: int, limit: int) -> None:
        super().__init__(f"projection {name} is {behind} events behind (at most {limit})")
        self.name = name
        self.behind = behind
        self.limit = limit


@dataclass(frozen=True)
class Failure:
    """An event a projection could not apply: set aside, so the others go on."""

    projection: str
    position: int
    case_id: str
    seq: int
    event_type: str
    error: str
    at: str


class Projector:
    """Applies new events of an event store to its projections."""

    def __init__(
        self,
        reader: EventReader,
        views: ViewStore,
        batch_size: int = CATCH_UP_BATCH,
        rebuild_batch: int = REBUILD_BATCH,
    ) -> None:
        self.reader = reader
        self.views = views
        self.batch_size = batch_size
        self.rebuild_batch = rebuild_batch
        self.projections = {p.name: p() for p in PROJECTIONS}
        # On PostgreSQL, every transaction that moves a position says so on this channel
        # (delivered at its commit, with it): a process that keeps answers by position
        # (``PositionFeed``) learns that they may have changed without asking each time.
        self.moved_channel = moved_channel(views.database)
        # The log's head through which this projector last saw every projection applied
        # (None before its first whole catch-up): while the head has not moved past it,
        # there is nothing to catch up and no transaction is opened to find that out.
        self.current: int | None = None
        # SQLite's data version when ``current`` was last confirmed (``ViewStore.
        # data_version``): while it stays the same, no event was recorded since.
        self._confirmed_at: int | None = None
        self._set_up()

    def _set_up(self) -> None:
        """Create what is missing; rebuild from zero a projection stored at another version."""
        migrate(self.views)  # the positions' and failures' tables
        with self.views.transaction() as tx:
            tx.schema_changes()
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
                elif stored[name] > projection.version:
                    raise SchemaTooNew(
                        stored[name], projection.version, _("The projection {name} is", name=name)
                    )
                elif stored[name] != projection.version:
                    self._reset(tx, projection)
                projection.create(tx)

    def _reset(self, tx: Tx, projection: Projection) -> None:
        projection.drop(tx)
        projection.create(tx)
        tx.execute("DELETE FROM projection_failure WHERE projection = ?", (projection.name,))
        tx.execute(
            "UPDATE projection_position SET position = 0, version = ? WHERE name = ?",
            (projection.version, projection.name),
        )
        self._announce(tx)

    def _advance(self, tx: Tx, name: str, position: int) -> None:
        """Move one projection's position, in the transaction that applied its events."""
        tx.execute("UPDATE projection_position SET position = ? WHERE name = ?", (position, name))
        self._announce(tx)

    def _announce(self, tx: Tx) -> None:
        # Several in one transaction reach a listener as one.
        if self.moved_channel is not None and tx.dialect == "postgresql":
            notify = sql.SQL("NOTIFY {}").format(sql.Identifier(self.moved_channel))
            tx.execute(notify.as_string(None))

    def positions(self) -> dict[str, int]:
        """How far each projection is (the notification id of its last applied event)."""
        rows = self.views.read("SELECT name, position FROM projection_position")
        return {name: int(position) for name, position in rows if name in self.projections}

    def positions_and_head(self, events_table: str) -> tuple[dict[str, int], int]:
        """How far each projection is, and the log's head (PostgreSQL: the last
        notification id of ``events_table``, the store's events table), in one statement:
        one round trip, one snapshot."""
        head = f"SELECT COALESCE(MAX(notification_id), 0) FROM {events_table}"  # noqa: S608
        statement = f"SELECT p.name, p.position, ({head}) FROM projection_position AS p"  # noqa: S608
        rows = self.views.read(statement)
        positions = {name: int(at) for name, at, _ in rows if name in self.projections}
        return positions, (int(rows[0][2]) if rows else self.reader.head())

    def position(self, name: str) -> int:
        """How far one projection is."""
        rows = self.views.read("SELECT position FROM projection_position WHERE name = ?", (name,))
        return int(rows[0][0]) if rows else 0

    def behind(self) -> int:
        """How many notifications the slowest projection still has to read (at most)."""
        head = self.reader.head()
        return max(0, head - min(self.positions().values(), default=0))

    def catch_up(self, names: Sequence[str] | None = None, progress: Progress | None = None) -> int:
        """Apply every event not yet applied; returns how many events were applied.

        Every event up to the head read first is applied when it returns (the log's
        positions are given in the order events are committed: a writer holds the table's
        lock, or SQLite's, from the position's choice to its commit). Positions only move
        forward, a rebuild's too (it ends at the head, in one transaction): a head that has
        not moved since the last whole catch-up leaves nothing to do; on SQLite, a database
        no other connection has written to since leaves nothing to do either, without a
        look at the head."""
        chosen = self._chosen(names)
        whole = len(chosen) == len(self.projections)
        head = version = None
        if whole:
            # The data version is read before the head: a commit after it shows next time.
            version = self.views.data_version()
            if self.current is not None and version is not None and version == self._confirmed_at:
                return 0
            head = self.reader.head()
            if self.current is not None and head <= self.current:
                self._confirmed_at = version
                return 0
        if progress is not None:
            progress.phase("projecting", self.behind() or None)
        applied = 0
        while True:
            read, count = self._one_batch(chosen)
            applied += count
            if progress is not None:
                progress.advance(read)
            if read < self.batch_size:
                if head is not None:
                    self.current = max(head, self.current or 0)
                    self._confirmed_at = version
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
            start = min(positions.values())
            last, events = self.reader.read(start, self.batch_size)
            damaged = list(self.reader.damaged)
            self.reader.damaged.clear()
            if last == start:
                return 0, 0
            applied = 0
            # Only a projection that keeps personal data rebuilds an erased case.
            personal = any(p.personal for p in chosen)
            erased = self._erased_histories(events) if personal else {}
            for projection in chosen:
                new = [(p, e) for p, e in events if p > positions[projection.name]]
                if new and projection.personal:
                    new = self._without_personal_data(tx, projection, new, erased)
                if new:
                    self._apply(tx, projection, new)
                    applied = max(applied, len(new))
                for position, why in damaged:
                    if position > positions[projection.name]:
                        self._set_aside_unreadable(tx, projection, position, why)
                self._advance(tx, projection.name, last)
            # Every notification read counts, those that could not be read too: one damaged
            # event never stops the projections of all others.
            counted = len(events) + len(damaged), applied
        if erased:
            self.views.compact()  # no copy of the rows the erasure replaced stays behind
        return counted

    def _erased_histories(
        self, events: list[tuple[int, CaseEvent]]
    ) -> dict[str, tuple[int, list[CaseEvent]]]:
        """For each case erased in this batch: the erasure's position, and the case's
        events up to the erasure as they read now (in their erased form)."""
        found: dict[str, tuple[int, list[CaseEvent]]] = {}
        for position, event in events:
            if isinstance(event, Case.PersonalDataErased):
                case_id = str(event.originator_id)
                history = [
                    e
                    for e in self.reader.case_events(event.originator_id)
                    if e.originator_version <= event.originator_version
                ]
                found[case_id] = (position, history)
        return found

    def _without_personal_data(
        self,
        tx: Tx,
        projection: Projection,
        new: list[tuple[int, CaseEvent]],
        erased: dict[str, tuple[int, list[CaseEvent]]],
    ) -> list[tuple[int, CaseEvent]]:
        """The batch for a projection that keeps personal data: an erased case's rows are
        deleted and built again from all its events, read in their erased form."""
        cases = [c for c, (position, _) in erased.items() if any(p == position for p, _ in new)]
        if not cases:
            return new
        projection.forget(tx, cases)
        rebuilt: list[tuple[int, CaseEvent]] = []
        for case_id in cases:
            position, history = erased[case_id]
            rebuilt += [(position, e) for e in history]
        kept = [
            (p, e)
            for p, e in new
            if str(e.originator_id) not in cases
            or e.originator_version > erased[str(e.originator_id)][1][-1].originator_version
        ]
        return kept + rebuilt

    def _set_aside_unreadable(
        self, tx: Tx, projection: Projection, position: int, why: DamagedStore
    ) -> None:
        _record_failure(tx, projection, position, why.case_id, why.seq or 0, "unreadable", why)

    def _apply(self, tx: Tx, projection: Projection, events: list[tuple[int, CaseEvent]]) -> None:
        """Apply a batch; when one of its events cannot be applied, apply them one at a
        time and set that one aside as failed, so one event never stops every other."""
        try:
            with tx.savepoint():
                projection.apply(tx, [e for _, e in events])
            return
        except UNAVAILABLE:
            raise  # the store went away: the whole batch is tried again later
        except Exception:  # noqa: S110 - found below, event by event
            pass
        for position, event in events:
            try:
                with tx.savepoint():
                    projection.apply(tx, [event])
            except UNAVAILABLE:
                raise
            except Exception as error:
                self._set_aside(tx, projection, position, event, error)

    def _set_aside(
        self, tx: Tx, projection: Projection, position: int, event: CaseEvent, error: Exception
    ) -> None:
        # Only the error's kind is kept: its message could quote case data.
        log.error(
            "event_not_projected",
            projection=projection.name,
            case_id=str(event.originator_id),
            seq=event.originator_version,
            position=position,
            error_type=type(error).__name__,
        )
        _record_failure(
            tx,
            projection,
            position,
            event.originator_id,
            event.originator_version,
            type(event).__name__,
            error,
        )

    def failures(self) -> list[Failure]:
        """Every event a projection could not apply, oldest first."""
        rows = self.views.read(
            "SELECT projection, position, case_id, seq, event_type, error, at"
            " FROM projection_failure ORDER BY position, projection"
        )
        return [Failure(r[0], int(r[1]), r[2], int(r[3]), r[4], r[5], r[6]) for r in rows]

    def _lock(self, tx: Tx, names: list[str]) -> dict[str, int]:
        lock = " FOR UPDATE" if tx.dialect == "postgresql" else ""
        rows = tx.fetchall(
            "SELECT name, position FROM projection_position"  # noqa: S608 - no values inlined
            f" WHERE name IN ({placeholders(len(names))}) ORDER BY name{lock}",
            names,
        )
        return {name: int(position) for name, position in rows}

    def rebuild(self, names: Sequence[str] | None = None, progress: Progress | None = None) -> int:
        """Drop projections and build them again from the whole log, in one transaction:
        readers see the old projections until the new ones are complete, and a rebuild cut
        short leaves the old ones as they were.

        The log is read case by case (each case whole, in the order its events were
        recorded), not in the order of the log: a projection's rows of a case are then
        written once, instead of again in every batch that touches the case. What was
        recorded during the rebuild is caught up afterwards, in the log's order."""
        chosen = self._chosen(names)
        applied = 0
        with self.views.transaction() as tx:
            self._lock(tx, [p.name for p in chosen])
            head = self.reader.head()
            for projection in chosen:
                self._reset(tx, projection)
            if progress is not None:
                progress.phase("projecting", head or None)
            after = None
            while True:
                after, events = self.reader.read_cases(after, head, self.rebuild_batch)
                damaged = list(self.reader.damaged)
                self.reader.damaged.clear()
                for projection in chosen:
                    if events:
                        self._apply(tx, projection, events)
                    for position, why in damaged:
                        self._set_aside_unreadable(tx, projection, position, why)
                applied += len(events)
                if progress is not None:
                    progress.advance(len(events) + len(damaged))
                if after is None:
                    break
            for projection in chosen:
                self._advance(tx, projection.name, head)
        return applied + self.catch_up([p.name for p in chosen], progress)


def moved_channel(database: Database) -> str | None:
    """The channel on which moved positions are announced: one per store (channels are the
    server's, so the schema is in its name); none on SQLite, which has no channels."""
    if database.backend != "postgresql":
        return None
    return f"overleg_positions.{database.schema or 'public'}"


def _record_failure(
    tx: Tx,
    projection: Projection,
    position: int,
    case_id: object,
    seq: int,
    event_type: str,
    error: Exception,
) -> None:
    """Keep one event a projection could not apply, by its place (only the error's kind:
    its message could quote case data)."""
    tx.execute(
        "INSERT INTO projection_failure (projection, position, case_id, seq, event_type,"
        " error, at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (
            projection.name,
            position,
            str(case_id),
            seq,
            event_type,
            type(error).__name__,
            datetime.now(UTC).isoformat(),
        ),
    )
