"""The event store's recorders: the library's, with a command log, bounded waits, safe set-up.

Every command's events are written together with one row of ``command_log`` (who gave it,
its idempotency key, a fingerprint of the request, and the versions it recorded) in the
**same transaction**. So after a failure whose outcome is unclear (the connection dropped
while the commit was under way), reading that row back tells for certain whether the
command was stored.

Reads and writes retry a store that cannot be reached for at most ``timeout`` seconds, then
give up with the driver's error (which the rest of overleg sees as ``StoreUnavailable``). A
write whose commit may or may not have landed raises ``OutcomeUnknown`` instead of being
tried again blindly. Creating tables takes a PostgreSQL advisory lock, so several processes
that start at once on an empty database do not trip over each other.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast
from uuid import UUID

import psycopg
from eventsourcing.persistence import (
    InterfaceError,
    Notification,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore
from psycopg.sql import SQL, Identifier

T = TypeVar("T")

# The advisory lock every process takes while it creates or changes tables (any number:
# the same everywhere). Schema changes run one at a time; nothing else waits on it.
SCHEMA_LOCK = 7_301_550_317
# How long an idempotency key (and its command's row) is kept.
KEY_LIFETIME = timedelta(hours=24)
PURGE_EVERY = 500  # commands between two purges of expired rows, per process

UNREACHABLE: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


class OutcomeUnknown(Exception):
    """The store stopped answering while a write was being committed: it may be stored."""


@dataclass(frozen=True)
class CommandEntry:
    """One command as the store keeps it, in the transaction of its events."""

    owner: str  # who gave it: "<role>:<ref>", or "public:<fingerprint>" for the public form
    key: str  # the Idempotency-Key, or one the service made
    fingerprint: str  # of the request, to tell a retry from another request with the key
    case_id: UUID
    first_version: int
    last_version: int
    recorded_at: datetime


def _row(entry: CommandEntry) -> tuple[Any, ...]:
    return (
        entry.owner,
        entry.key,
        entry.fingerprint,
        str(entry.case_id),
        entry.first_version,
        entry.last_version,
        entry.recorded_at.isoformat(),
    )


def _entry(row: Sequence[Any]) -> CommandEntry:
    owner, key, fingerprint, case_id, first, last, at = row
    return CommandEntry(
        owner, key, fingerprint, UUID(str(case_id)), int(first), int(last),
        datetime.fromisoformat(at),
    )  # fmt: skip


_COLUMNS = "owner, key, fingerprint, case_id, first_version, last_version, recorded_at"


def within(timeout: float, attempt: Callable[[], T], retry_on: tuple[type[Exception], ...]) -> T:
    """``attempt()``, tried again while it raises ``retry_on``, for at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    pause = 0.05
    while True:
        try:
            return attempt()
        except retry_on:
            if time.monotonic() + pause >= deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


class _Purging:
    """Counts commands and says when expired command rows should be purged."""

    _count = 0

    def _due(self) -> bool:
        type(self)._count += 1
        return type(self)._count % PURGE_EVERY == 0


class SQLiteEventRecorder(SQLiteApplicationRecorder, _Purging):
    """The library's SQLite recorder with the command log and bounded waits."""

    timeout = 5.0
    datastore: SQLiteDatastore

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            "CREATE TABLE IF NOT EXISTS command_log ("
            " owner TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL,"
            " case_id TEXT NOT NULL, first_version INTEGER NOT NULL,"
            " last_version INTEGER NOT NULL, recorded_at TEXT NOT NULL,"
            " PRIMARY KEY (owner, key))",
            "CREATE INDEX IF NOT EXISTS command_log_recorded_at ON command_log (recorded_at)",
        ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)
        command: CommandEntry | None = kwargs.get("command")
        if command is not None:
            if self._due():
                cutoff = (datetime.now(UTC) - KEY_LIFETIME).isoformat()
                c.execute("DELETE FROM command_log WHERE recorded_at < ?", (cutoff,))
            c.execute(
                f"INSERT INTO command_log ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                _row(command),
            )
        return ids

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        # A SQLite commit is local: when it fails, nothing was stored, so trying again is safe.
        parent = super().insert_events
        return within(self.timeout, lambda: parent(stored_events, **kwargs), UNREACHABLE)

    def select_events(self, originator_id: UUID | str, **kwargs: Any) -> Sequence[StoredEvent]:
        parent = super().select_events
        return within(self.timeout, lambda: parent(originator_id, **kwargs), UNREACHABLE)

    def select_notifications(
        self, start: int | None, limit: int, stop: int | None = None, topics: Sequence[str] = (),
        *, inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:  # fmt: skip
        parent = super().select_notifications
        return within(
            self.timeout,
            lambda: parent(start, limit, stop, topics, inclusive_of_start=inclusive_of_start),
            UNREACHABLE,
        )

    def max_notification_id(self) -> int:
        parent = super().max_notification_id
        return within(self.timeout, parent, UNREACHABLE) or 0

    def find_command(self, owner: str, key: str) -> CommandEntry | None:
        """The command recorded under this owner and key, if any."""

        def find() -> CommandEntry | None:
            with self.datastore.transaction(commit=False) as c:
                c.execute(
                    f"SELECT {_COLUMNS} FROM command_log WHERE owner = ? AND key = ?",
                    (owner, key),
                )
                row = c.fetchone()
            return None if row is None else _entry(tuple(row))

        return within(self.timeout, find, UNREACHABLE)

    def forget_command(self, owner: str, key: str) -> None:
        """Drop an expired command row, so that its key can be used again."""
        with self.datastore.transaction(commit=True) as c:
            c.execute("DELETE FROM command_log WHERE owner = ? AND key = ?", (owner, key))


class PostgresEventRecorder(PostgresApplicationRecorder, _Purging):
    """The library's PostgreSQL recorder with the command log, bounded waits, safe set-up."""

    timeout = 5.0
    datastore: PostgresDatastore

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(self.datastore.schema)
        self.command_log = SQL("{schema}.command_log").format(schema=schema)
        self.sql_create_statements += [
            SQL(
                "CREATE TABLE IF NOT EXISTS {table} ("
                " owner text NOT NULL, key text NOT NULL, fingerprint text NOT NULL,"
                " case_id text NOT NULL, first_version bigint NOT NULL,"
                " last_version bigint NOT NULL, recorded_at text NOT NULL,"
                " PRIMARY KEY (owner, key))"
            ).format(table=self.command_log),
            SQL(
                "CREATE INDEX IF NOT EXISTS command_log_recorded_at ON {table} (recorded_at)"
            ).format(table=self.command_log),
        ]

    def create_table(self) -> None:
        with schema_lock(self.datastore):
            super().create_table()

    def _insert_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        command: CommandEntry | None = kwargs.get("command")
        if command is None:
            return
        if self._due():
            cutoff = (datetime.now(UTC) - KEY_LIFETIME).isoformat()
            curs.execute(
                SQL("DELETE FROM {table} WHERE recorded_at < %s").format(table=self.command_log),
                (cutoff,),
            )
        curs.execute(
            SQL("INSERT INTO {table} (" + _COLUMNS + ") VALUES (%s, %s, %s, %s, %s, %s, %s)")
            .format(table=self.command_log),
            _row(command),
        )  # fmt: skip

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Insert in one transaction, trying again while the store cannot be reached, but
        never after the commit was sent: then whether it landed is unknown (``OutcomeUnknown``).
        """
        if not stored_events:
            return None
        deadline = time.monotonic() + self.timeout
        pause = 0.05
        while True:
            committing = False
            try:
                with self.datastore.get_connection() as conn, conn.transaction():
                    with conn.cursor() as curs:
                        self._insert_events(curs, stored_events, **kwargs)
                        self._insert_stored_events(curs, stored_events, **kwargs)
                        ids = self._fetch_ids_after_insert_events(curs, stored_events)
                    committing = True  # what fails from here on is the commit itself
                return ids
            except UNREACHABLE as error:
                if committing:
                    raise OutcomeUnknown(str(error)) from error
                if time.monotonic() + pause >= deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.5)

    def select_events(self, originator_id: UUID | str, **kwargs: Any) -> Sequence[StoredEvent]:
        parent = PostgresApplicationRecorder.select_events.__wrapped__
        return within(self.timeout, lambda: parent(self, originator_id, **kwargs), UNREACHABLE)

    def select_notifications(
        self, start: int | None, limit: int, stop: int | None = None, topics: Sequence[str] = (),
        *, inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:  # fmt: skip
        parent = PostgresApplicationRecorder.select_notifications.__wrapped__
        return within(
            self.timeout,
            lambda: parent(self, start, limit, stop, topics, inclusive_of_start=inclusive_of_start),
            UNREACHABLE,
        )

    def max_notification_id(self) -> int:
        parent = PostgresApplicationRecorder.max_notification_id.__wrapped__
        found: int | None = within(self.timeout, lambda: parent(self), UNREACHABLE)
        return found or 0

    def find_command(self, owner: str, key: str) -> CommandEntry | None:
        """The command recorded under this owner and key, if any."""
        statement = SQL("SELECT " + _COLUMNS + " FROM {table} WHERE owner = %s AND key = %s")

        def find() -> CommandEntry | None:
            with self.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(statement.format(table=self.command_log), (owner, key))
                row = curs.fetchone()
            return None if row is None else _entry(list(row.values()))

        return within(self.timeout, find, UNREACHABLE)

    def forget_command(self, owner: str, key: str) -> None:
        """Drop an expired command row, so that its key can be used again."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL("DELETE FROM {table} WHERE owner = %s AND key = %s").format(
                    table=self.command_log
                ),
                (owner, key),
            )


@contextlib.contextmanager
def schema_lock(datastore: PostgresDatastore) -> Iterator[None]:
    """Hold the schema advisory lock, on a connection of its own (outside the pool, which
    the set-up itself needs), until the block ends."""
    kwargs = cast(dict[str, Any], datastore.pool.kwargs)
    params = {k: v for k, v in kwargs.items() if k != "row_factory"}
    with psycopg.connect(**params, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
        try:
            yield
        finally:
            with contextlib.suppress(psycopg.Error):
                conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))
