"""The event store: the database URL, the store's set-up, reading the log, atomic bulk writes.

The event-sourcing library keeps the events; this module is the one place that knows its
recorders' private methods and the database drivers' errors.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast
from urllib.parse import parse_qs, unquote, urlsplit
from uuid import UUID

import psycopg
from eventsourcing.persistence import (
    ApplicationRecorder,
    InterfaceError,
    Mapper,
    Notification,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresDatastore

from overleg.adapters.commits import committed
from overleg.adapters.keystore import KeyTables
from overleg.adapters.rows import case_key
from overleg.adapters.sealing import KeyProblem, Keyring
from overleg.aggregates.case import EVENT_TOPICS, CaseEvent, facts_problem, is_case_event
from overleg.i18n import Message, _, text_of
from overleg.logs import get_logger

log = get_logger("overleg.store")


class StoreUnavailable(Exception):
    """The store is unreachable, or too busy to answer in time; nothing was recorded."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class DamagedStore(Exception):
    """The store holds an event that is not as overleg recorded it (changed, removed or added
    behind its back): the command stopped before it wrote or answered anything."""

    def __init__(self, case_id: object, seq: int | None, detail: str) -> None:
        where = (
            _("case {case_id}", case_id=str(case_id))
            if seq is None
            else _("case {case_id}, seq {seq}", case_id=str(case_id), seq=seq)
        )
        super().__init__(
            _(
                "The event store is damaged at {where}: {detail}. Nothing was written; "
                "`overleg verify` tells what changed.",
                where=where,
                detail=detail,
            )
        )
        self.case_id, self.seq, self.detail = case_id, seq, detail


def decoded(mapper: Mapper[Any], stored: StoredEvent) -> CaseEvent:
    """A stored event as a case event; ``DamagedStore`` when its bytes or facts are not
    something overleg ever recorded."""
    try:
        event = mapper.to_domain_event(stored)
    except KeyProblem as unopened:
        raise DamagedStore(
            stored.originator_id, stored.originator_version, text_of(unopened)
        ) from None
    except Exception as error:  # any decoding failure means the bytes were changed
        raise DamagedStore(
            stored.originator_id,
            stored.originator_version,
            _("its stored bytes cannot be read ({kind})", kind=type(error).__name__),
        ) from None
    if not is_case_event(event):
        raise DamagedStore(
            stored.originator_id, stored.originator_version, _("it is not an event of a case")
        )
    problem = facts_problem(event)
    if problem is not None:
        raise DamagedStore(stored.originator_id, stored.originator_version, problem)
    return event


# The drivers' and the library's ways of saying the database cannot be reached or is busy.
UNAVAILABLE: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    sqlite3.OperationalError,
)


@contextmanager
def translating() -> Iterator[None]:
    """Turn a driver's "cannot reach the store" into ``StoreUnavailable``."""
    try:
        yield
    except UNAVAILABLE as error:
        raise StoreUnavailable(f"{type(error).__name__}: {error}") from error


class DatabaseURLError(ValueError):
    """``OVERLEG_DATABASE_URL`` cannot be understood."""


@dataclass(frozen=True)
class Database:
    """A parsed database URL."""

    backend: str  # "sqlite" or "postgresql"
    sqlite_path: str = ""
    host: str = ""
    port: int = 5432
    user: str = ""
    password: str = ""
    dbname: str = ""
    schema: str = ""
    # How long a request waits for the store (to connect, for a lock, while it is down)
    # before it gives up; and how long a transaction may sit idle (a long import's does).
    timeout: float = 5.0
    idle_in_transaction: float = 5.0

    @classmethod
    def from_url(cls, url: str) -> Database:
        """Parse ``sqlite:///PATH`` or ``postgresql://user[:pw]@host[:port]/db[?schema=S]``."""
        parts = urlsplit(url)
        if parts.scheme == "sqlite":
            if parts.netloc:
                raise DatabaseURLError(
                    _(
                        "A SQLite URL has three slashes before its path (sqlite:///PATH), "
                        "not {url}",
                        url=repr(url),
                    )
                )
            path = unquote(parts.path[1:]) if parts.path.startswith("/") else ""
            if not path:
                raise DatabaseURLError(
                    _("A SQLite URL needs a file path: sqlite:///PATH, not {url}", url=repr(url))
                )
            return cls(backend="sqlite", sqlite_path=path)
        if parts.scheme in ("postgresql", "postgres"):
            dbname = unquote(parts.path.lstrip("/"))
            if not parts.hostname or not dbname:
                raise DatabaseURLError(
                    _(
                        "A PostgreSQL URL names a host and a database: "
                        "postgresql://user@host:port/dbname, not {url}",
                        url=repr(_redacted(url)),
                    )
                )
            query = parse_qs(parts.query)
            try:
                port = parts.port or 5432
            except ValueError as error:
                raise DatabaseURLError(
                    _("Invalid port in {url}", url=repr(_redacted(url)))
                ) from error
            return cls(
                backend="postgresql",
                host=parts.hostname,
                port=port,
                user=unquote(parts.username or "postgres"),
                password=unquote(parts.password or ""),
                dbname=dbname,
                schema=query.get("schema", [""])[0],
            )
        raise DatabaseURLError(
            _(
                "Unsupported database URL {url}: use sqlite:///PATH or postgresql://...",
                url=repr(_redacted(url)),
            )
        )

    def eventsourcing_env(self) -> dict[str, str]:
        """The environment an eventsourcing application is configured with."""
        seconds = str(max(1, round(self.timeout)))
        if self.backend == "sqlite":
            if self.sqlite_path != ":memory:":
                Path(self.sqlite_path).expanduser().parent.mkdir(parents=True, exist_ok=True)
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "APPLICATION_RECORDER_TOPIC": "overleg.adapters.recorders:SQLiteEventRecorder",
                "SQLITE_DBNAME": self.sqlite_path,
                "SQLITE_LOCK_TIMEOUT": seconds,
            }
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "APPLICATION_RECORDER_TOPIC": "overleg.adapters.recorders:PostgresEventRecorder",
            "POSTGRES_DBNAME": self.dbname,
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
            "POSTGRES_SCHEMA": self.schema,
            "POSTGRES_CONNECT_TIMEOUT": seconds,
            "POSTGRES_LOCK_TIMEOUT": seconds,
            # A pooled connection that died with the server is found out before it is used.
            "POSTGRES_PRE_PING": "y",
            "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": str(
                max(1, round(self.idle_in_transaction))
            ),
        }

    def ensure_schema(self) -> None:
        """Create the PostgreSQL schema named in the URL, if it is missing."""
        if self.backend != "postgresql" or not self.schema:
            return
        import psycopg
        from psycopg import sql

        from overleg.adapters.recorders import SCHEMA_LOCK

        with psycopg.connect(self.conninfo()) as conn, conn.transaction():
            # Several processes starting at once would otherwise race on the catalogue.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            )

    def conninfo(self) -> str:
        """A libpq connection string for this PostgreSQL database."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password or None,
            dbname=self.dbname,
            connect_timeout=max(1, round(self.timeout)),
        )


EVENTS_TABLE = "overleg_events"  # the library's table of an application named overleg


def missing_postgres_store(database: Database) -> Message | None:
    """Why a PostgreSQL store holds no event table yet, or ``None`` (also when the server
    cannot be reached: opening it then says that)."""
    schema = database.schema or "public"
    try:
        with psycopg.connect(database.conninfo()) as conn:
            row = conn.execute("SELECT to_regclass(%s)", (f'"{schema}".{EVENTS_TABLE}',)).fetchone()
    except psycopg.Error:
        return None
    if row is not None and row[0] is not None:
        return None
    return _(
        "No event store in schema {schema} of database {dbname}: nothing was "
        "imported there (OVERLEG_DATABASE_URL)",
        schema=schema,
        dbname=database.dbname,
    )


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


class _CaseOrdered(Protocol):
    """A recorder that reads the log case by case (both of overleg's recorders)."""

    def select_by_case(
        self,
        after: UUID | None,
        through: int,
        limit: int | None,
        topics: Sequence[str],
        case: UUID | None = None,
    ) -> Sequence[Notification]: ...


class EventLog:
    """The case events of a store in the order they were recorded (notification ids)."""

    def __init__(
        self, recorder: ApplicationRecorder, mapper: Mapper[Any], keyring: Keyring
    ) -> None:
        self.recorder = recorder
        self.mapper = mapper
        self.keyring = keyring  # opens the personal parts of the events read
        # PostgreSQL announces new events on a channel that a worker can LISTEN to.
        self.channel: str | None = getattr(recorder, "channel_name", None)
        # Events ``read`` met that could not be read (position, why), for the reader to keep.
        self.damaged: list[tuple[int, DamagedStore]] = []

    def head(self) -> int:
        """The notification id of the last recorded event (0 when there is none)."""
        with translating():
            return self.recorder.max_notification_id() or 0

    def read(self, after: int, limit: int) -> tuple[int, list[tuple[int, CaseEvent]]]:
        """Up to ``limit`` case events recorded after notification id ``after``, with their
        ids, and the id of the last notification read (``after`` when there was none).
        Events that cannot be read are left out and kept in ``damaged`` for the caller."""
        last, events, damaged = self._read(after, limit)
        self.damaged.extend(damaged)
        return last, events

    def _read(
        self, after: int, limit: int
    ) -> tuple[int, list[tuple[int, CaseEvent]], list[tuple[int, DamagedStore]]]:
        with translating():
            notifications = self.recorder.select_notifications(
                start=after + 1, limit=limit, topics=EVENT_TOPICS
            )
        events: list[tuple[int, CaseEvent]] = []
        unreadable: list[tuple[int, DamagedStore]] = []
        with translating(), self._keys_of(notifications):
            self._decode(notifications, events, unreadable)
        last = notifications[-1].id if notifications else after
        return last, events, unreadable

    def _keys_of(self, notifications: Sequence[StoredEvent]) -> AbstractContextManager[None]:
        """The data keys of the cases of these events, fetched in one query."""
        return self.keyring.reading(case_key(n.originator_id) for n in notifications)

    def _decode(
        self,
        notifications: Sequence[Any],
        events: list[tuple[int, CaseEvent]],
        unreadable: list[tuple[int, DamagedStore]],
    ) -> None:
        for notification in notifications:
            try:
                event = decoded(self.mapper, notification)
            except DamagedStore as damaged:
                # One damaged event never stops the projections of all others.
                unreadable.append((notification.id, damaged))
                log.error(
                    "event_unreadable",
                    case_id=str(notification.originator_id),
                    seq=notification.originator_version,
                    position=notification.id,
                )
                continue
            events.append((notification.id, event))

    def read_cases(
        self, after: UUID | None, through: int, limit: int
    ) -> tuple[UUID | None, list[tuple[int, CaseEvent]]]:
        """The events recorded up to position ``through`` of the next cases after case
        ``after``, whole cases in case order (each case's in the order recorded), about
        ``limit`` events (more when one case alone has more), with their positions; and the
        last case read (``None`` when no case is left). Events that cannot be read are left
        out and kept in ``damaged``, as ``read`` does."""
        recorder = cast(_CaseOrdered, self.recorder)
        with translating():
            stored = recorder.select_by_case(after, through, limit, EVENT_TOPICS)
            if len(stored) == limit:
                # The last case may go on beyond the limit: it is read whole next time, or
                # now when it is the only case read.
                last = UUID(str(stored[-1].originator_id))
                whole = [n for n in stored if UUID(str(n.originator_id)) != last]
                stored = whole or recorder.select_by_case(None, through, None, EVENT_TOPICS, last)
        if not stored:
            return None, []
        events: list[tuple[int, CaseEvent]] = []
        unreadable: list[tuple[int, DamagedStore]] = []
        with translating(), self._keys_of(stored):
            self._decode(stored, events, unreadable)
        self.damaged.extend(unreadable)
        return UUID(str(stored[-1].originator_id)), events

    def case_events(self, case_id: object) -> list[CaseEvent]:
        """Every event of one case, in order, as readers see them now (an erased case's
        personal parts in their erased form)."""
        with translating():
            stored = self.recorder.select_events(UUID(case_key(case_id)))
            with self._keys_of(stored):
                return [decoded(self.mapper, s) for s in stored]

    def all(self, page: int = 1000, *, strict: bool = False) -> Iterator[CaseEvent]:
        """Every case event, oldest first. ``strict``: a damaged event raises
        ``DamagedStore`` instead of being left out."""
        after = 0
        while True:
            last, events, damaged = self._read(after, page)
            if damaged:
                if strict:
                    raise damaged[0][1]
                self.damaged.extend(damaged)
            for _position, event in events:
                yield event
            if last == after:
                return
            after = last


@contextmanager
def _committing_cursor(datastore: Any) -> Iterator[Any]:
    """A cursor in one transaction, committed when the block ends (the library's
    ``transaction(commit=True)``); on PostgreSQL one that raises where the connection broke
    before the commit could be sent (``adapters/commits.py``), never ends as if committed."""
    if not isinstance(datastore, PostgresDatastore):
        with datastore.transaction(commit=True) as cursor:
            yield cursor
        return
    with datastore.get_connection() as conn, committed(conn), conn.cursor() as cursor:
        yield cursor


def insert_atomically(
    recorder: ApplicationRecorder,
    batches: Iterable[Sequence[StoredEvent]],
    *,
    keys_in_memory: bool = True,
) -> int:
    """Insert every batch in one transaction: all of them are stored, or none.

    A key that is already taken (another writer got there first) raises the store's
    integrity error and the whole transaction is rolled back. ``keys_in_memory``: the new
    cases' data keys wait in the keyring's memory, which is told once they are committed;
    ``False`` for keys that wait elsewhere (``Keyring.making_keys_in``), so that the cases
    written need not be remembered until the commit.
    """
    # The recorders' own insert methods commit per call; an import must commit once.
    datastore: Any = recorder.datastore  # type: ignore[attr-defined]
    count = 0
    written: set[str] = set()  # the cases written, when the keyring is to be told
    chaining: Any = recorder
    links: dict[str, tuple[int, bytes]] = {}  # the cases' last links written so far
    with _committing_cursor(datastore) as cursor:
        for batch in batches:
            if not batch:
                continue
            chaining.insert_batch(cursor, batch, links)
            chaining.carry_links(links)
            count += len(batch)
            if keys_in_memory:
                written.update(case_key(event.originator_id) for event in batch)
    # The new cases' data keys were committed with their events.
    keys: Any = recorder
    if isinstance(keys, KeyTables):
        keys.committed_cases(written)
    return count
