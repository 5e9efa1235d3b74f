"""The event store's recorders: the library's, with a command log, bounded waits, safe set-up.

Every command's events are written together with one row of ``command_log`` (who gave it,
its idempotency key, a fingerprint of the request, and the versions it recorded) in the
**same transaction**. So after a failure whose outcome is unclear (the connection dropped
while the commit was under way), reading that row back tells for certain whether the
command was stored.

Every event's link of the per-case hash chain (``adapters/chain.py``) is written in the
transaction of the event too, so no event is ever stored without its link.

Reads and writes retry a store that cannot be reached for at most ``timeout`` seconds, then
give up with the driver's error (which the rest of overleg sees as ``StoreUnavailable``). A
write whose commit may or may not have landed raises ``OutcomeUnknown`` instead of being
tried again blindly. The connection pool opens connections again within a fraction of a
second of the server's return. Creating tables takes a PostgreSQL advisory lock, so several
processes that start at once on an empty database do not trip over each other, and is
skipped when they exist, so a process that starts beside busy writers takes no table lock.
"""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast
from uuid import UUID

import psycopg
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Notification,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import (
    ConnectionPool,
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
)
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier
from psycopg_pool.base import AttemptWithBackoff

from overleg.adapters import budget, turns
from overleg.adapters.chain import GENESIS, links_of
from overleg.adapters.commits import committed, not_committed
from overleg.adapters.grouping import Write
from overleg.adapters.keystore import KeyTables, key_rows
from overleg.adapters.recent import Recent
from overleg.adapters.rows import case_key, row_values
from overleg.adapters.sealing import KeyRow

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


# How soon the connection pool tries again to open a connection the server refused: from
# 0.1 s, doubling, but never more than this. The pool's own pause doubles up to minutes, so a
# database back after a few seconds would otherwise wait about as long again for its clients.
RECONNECT_PAUSE = 0.5


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

# How many of the named relations and the named type exist in the schema.
_EXISTING = (
    "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    "  WHERE n.nspname = %(schema)s AND c.relname = ANY(%(relations)s))"
    " + (SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
    "  WHERE n.nspname = %(schema)s AND t.typname = %(type)s) AS found"
)


def within(timeout: float, attempt: Callable[[], T], retry_on: tuple[type[Exception], ...]) -> T:
    """``attempt()``, tried again while it raises ``retry_on``, for at most ``timeout`` s
    (less when the command's budget ends sooner: ``adapters/budget.py``)."""
    deadline = budget.deadline(timeout)
    pause = 0.05
    while True:
        try:
            return attempt()
        except retry_on:
            if time.monotonic() + pause >= deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


# Cases' last links: case id -> (seq, link).
_Links = dict[str, tuple[int, bytes]]
# How many cases' last links a recorder remembers (a link of a stored event never changes).
LINKS_KEPT = 4096
# How many cases' last links an import carries from one batch of its transaction to the
# next, the most recently written kept (the cases of a batch met again later have their
# links looked up together): an import's memory stays the same however many cases it holds.
LINKS_CARRIED = 5_000


class _Chaining:
    """Writes the links of newly stored events, in the cursor's (the events') transaction.

    The last link a committed command wrote for a case is remembered, so that the next
    command on the case does not read it back: a link, once stored, never changes (the
    events it covers are kept as recorded; an erasure stores erased forms beside them)."""

    # SQL with the placeholders and table names of each store.
    _select_link: Any
    _insert_link: Any
    _select_case_events: Any
    _links_lock = threading.Lock()

    _kept_links: Recent[str, tuple[int, bytes]]

    @property
    def _last_links(self) -> Recent[str, tuple[int, bytes]]:
        try:
            return self._kept_links
        except AttributeError:
            self._kept_links = Recent(LINKS_KEPT)
            return self._kept_links

    def _stored_id(self, case_id: str) -> Any:
        """A case id as the events table stores it."""
        return case_id

    def _link(
        self,
        cursor: Any,
        stored_events: Sequence[StoredEvent],
        made: _Links | None = None,
        write: Callable[[Any, Sequence[tuple[str, int, bytes, bytes]]], None] | None = None,
    ) -> None:
        """Write the events' links (with ``write``, or one statement each); ``made`` gets
        each case's last one, to be remembered once the transaction has committed
        (``_remember_links``)."""
        events = [
            (case_key(e.originator_id), e.originator_version, e.topic, bytes(e.state))
            for e in stored_events
        ]
        previous, unknown = self._lasts_known(stored_events, made)
        if unknown:
            found = self._stored_links(cursor, unknown)
            for case_id, seq in unknown.items():
                stored = found.get(case_id)
                previous[case_id] = stored or self._link_before(cursor, case_id, seq + 1)
        links = links_of(previous, events)
        if write is not None:
            write(cursor, links)
        else:
            cursor.executemany(
                self._insert_link, [(self._stored_id(c), n, h, d) for c, n, h, d in links]
            )
        if made is not None:
            for case_id, seq, link, _ in links:
                made.pop(case_id, None)  # the most recently written last
                made[case_id] = (seq, link)

    def _links_to_write(
        self, cursor: Any, stored_events: Sequence[StoredEvent], made: _Links
    ) -> list[tuple[str, int, bytes, bytes]] | None:
        """The events' links, worked out as ``_link`` does but not written yet; ``None``
        when a case's last link is not stored (its events were recorded before links were
        kept): ``_link`` chains such a case from its stored events, writing the links it
        lacks, which a writer does under the events' lock, as an import does. A last link
        looked up here is put in ``made``, where ``_link`` looks first."""
        _known, unknown = self._lasts_known(stored_events, made)
        if unknown:
            found = self._stored_links(cursor, unknown)
            if len(found) < len(unknown):
                return None
            for case_id, seq in unknown.items():
                made[case_id] = (seq, found[case_id])
        rows: list[tuple[str, int, bytes, bytes]] = []
        self._link(cursor, stored_events, made, lambda _, links: rows.extend(links))
        return rows

    def _lasts_known(
        self, stored_events: Sequence[StoredEvent], made: _Links | None
    ) -> tuple[dict[str, bytes], dict[str, int]]:
        """The link before each case's first event here, where it is known without the
        store (written in this transaction, or remembered); the other cases, each with the
        seq whose link is to be looked up."""
        known: dict[str, bytes] = {}
        unknown: dict[str, int] = {}
        for case_id, seq in _firsts(stored_events).items():
            if seq > 1:
                last = _link_at(made, case_id, seq - 1) or self._remembered_link(case_id, seq - 1)
                if last is None:
                    unknown[case_id] = seq - 1
                else:
                    known[case_id] = last
        return known, unknown

    def insert_batch(
        self, cursor: Any, stored_events: Sequence[StoredEvent], links: _Links | None = None
    ) -> None:
        """Insert events and their links in the cursor's transaction (an import's);
        ``links``: the last links of the cases written so far in it, kept up to date. A
        case found there had its data key stored with its first events, in this
        transaction: it is not written again."""
        keyed = set() if not links else {c for c in _cases(stored_events) if c in links}
        self._write_batch(cursor, stored_events, links, keyed)

    def _write_batch(
        self,
        cursor: Any,
        stored_events: Sequence[StoredEvent],
        links: _Links | None,
        keyed: set[str],
    ) -> None:
        raise NotImplementedError

    def carry_links(self, made: _Links) -> None:
        """Keep at most ``LINKS_CARRIED`` of an import's last links, the latest written."""
        for case_id in list(itertools.islice(made, max(0, len(made) - LINKS_CARRIED))):
            del made[case_id]

    def _remembered_link(self, case_id: str, seq: int) -> bytes | None:
        with self._links_lock:
            found = self._last_links.get(case_id)
        return found[1] if found is not None and found[0] == seq else None

    def _remember_links(self, made: _Links) -> None:
        """Remember the last links of a committed transaction."""
        with self._links_lock:
            kept = self._last_links
            for case_id, last in made.items():
                kept.put(case_id, last)

    def _stored_link(self, cursor: Any, case_id: str, seq: int) -> bytes | None:
        """The stored link of event ``seq`` of a case, if it has one."""
        cursor.execute(self._select_link, (self._stored_id(case_id), seq))
        row = cursor.fetchone()
        return None if row is None else bytes(row_values(row)[0])

    def _stored_links(self, cursor: Any, wanted: Mapping[str, int]) -> dict[str, bytes]:
        """The stored links of these cases' events (case id -> seq), those that have one."""
        found = ((c, self._stored_link(cursor, c, seq)) for c, seq in wanted.items())
        return {c: link for c, link in found if link is not None}

    def _link_before(self, cursor: Any, case_id: str, seq: int) -> bytes:
        """The link of the event before ``seq``. A case whose events were stored before
        links were kept is chained now, from its stored events, as they are."""
        found = self._stored_link(cursor, case_id, seq - 1)
        if found is not None:
            return found
        cursor.execute(self._select_case_events, (self._stored_id(case_id), seq - 1))
        stored = [
            (case_id, int(seq), str(topic), bytes(state))
            for seq, topic, state in map(row_values, cursor.fetchall())
        ]
        known: dict[str, bytes] = {}
        made = links_of(known, stored)
        cursor.executemany(
            self._insert_link_if_missing, [(self._stored_id(c), n, h, d) for c, n, h, d in made]
        )
        return known.get(case_id, GENESIS)

    _insert_link_if_missing: Any


def _cases(stored_events: Sequence[StoredEvent]) -> set[str]:
    return {case_key(e.originator_id) for e in stored_events}


def _firsts(stored_events: Sequence[StoredEvent]) -> dict[str, int]:
    """Each case's first version among these events."""
    firsts: dict[str, int] = {}
    for e in stored_events:
        firsts.setdefault(case_key(e.originator_id), e.originator_version)
    return firsts


def _uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)


def _write_alone(recorder: SQLiteEventRecorder | PostgresEventRecorder, alone: Write) -> None:
    """A group of one, written as one command is (no savepoint); a refusal is its error."""
    alone.error = None
    try:
        recorder.insert_events(alone.stored, **alone.extra)
    except IntegrityError as refused:
        alone.error = refused


def _refusal(refused: Exception) -> IntegrityError:
    """The store's refusal of one command of a group (the driver's, or the library's), as
    the library's error, which the application settles."""
    return refused if isinstance(refused, IntegrityError) else IntegrityError(refused)


class _AllRefused(Exception):
    """Every command of a group was refused: its transaction is rolled back, not committed
    (``_unless_all_refused``)."""


def _unless_all_refused(group: Sequence[Write]) -> None:
    """Raise ``_AllRefused`` when the store refused every command of ``group``: then there
    is nothing to commit. A commit would still cost a flush of the log, and on PostgreSQL
    its answer could be lost on the way back: the group's commands, whose outcome is
    already known (refused), would then wait out an unknown outcome for nothing. This
    happens when a command's events are written again to learn whether a commit whose
    answer was lost had landed (``Overleg._confirm``): the store refuses them if it had."""
    if all(each.error is not None for each in group):
        raise _AllRefused


def _group_committed(
    recorder: SQLiteEventRecorder | PostgresEventRecorder,
    group: Sequence[Write],
    made: Sequence[_Links],
) -> None:
    """After a group's commit: each command stored remembers the last links it wrote, and
    its cases' new data keys are known stored; a refused one's links are never kept."""
    for each, links in zip(group, made, strict=True):
        if each.error is None:
            recorder._remember_links(links)
            recorder._committed(each.stored, **each.extra)


def _link_at(made: _Links | None, case_id: str, seq: int) -> bytes | None:
    """The link of event ``seq`` of a case, if it is the last one ``made`` holds."""
    found = None if made is None else made.get(case_id)
    return found[1] if found is not None and found[0] == seq else None


class _Purging:
    """Counts commands and says when expired command rows should be purged."""

    _count = 0

    def _due(self) -> bool:
        type(self)._count += 1
        return type(self)._count % PURGE_EVERY == 0


class SQLiteEventRecorder(SQLiteApplicationRecorder, _Purging, _Chaining, KeyTables):
    """The library's SQLite recorder with the command log, the links and bounded waits."""

    timeout = 5.0
    datastore: SQLiteDatastore
    _select_link = "SELECT link FROM event_chain WHERE case_id = ? AND seq = ?"
    _insert_link = "INSERT INTO event_chain (case_id, seq, link, digest) VALUES (?, ?, ?, ?)"
    _insert_link_if_missing = (
        "INSERT OR IGNORE INTO event_chain (case_id, seq, link, digest) VALUES (?, ?, ?, ?)"
    )

    @property
    def _select_case_events(self) -> str:
        return (
            f"SELECT originator_version, topic, state FROM {self.events_table_name}"
            " WHERE originator_id = ? AND originator_version <= ? ORDER BY originator_version"
        )

    def _stored_id(self, case_id: str) -> Any:
        return UUID(case_id).hex

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            "CREATE TABLE IF NOT EXISTS event_chain ("
            " case_id TEXT NOT NULL, seq INTEGER NOT NULL, link BLOB NOT NULL,"
            " digest BLOB NOT NULL, PRIMARY KEY (case_id, seq)) WITHOUT ROWID",
            "CREATE TABLE IF NOT EXISTS event_checkpoint ("
            " number INTEGER PRIMARY KEY AUTOINCREMENT, made_at TEXT NOT NULL,"
            " position INTEGER NOT NULL, cases INTEGER NOT NULL, root BLOB NOT NULL)",
            "CREATE TABLE IF NOT EXISTS command_log ("
            " owner TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL,"
            " case_id TEXT NOT NULL, first_version INTEGER NOT NULL,"
            " last_version INTEGER NOT NULL, recorded_at TEXT NOT NULL,"
            " PRIMARY KEY (owner, key))",
            "CREATE INDEX IF NOT EXISTS command_log_recorded_at ON command_log (recorded_at)",
            "CREATE INDEX IF NOT EXISTS command_log_case_id ON command_log (case_id)",
            "CREATE TABLE IF NOT EXISTS case_keys ("
            " case_id TEXT PRIMARY KEY, master_id TEXT, wrapped BLOB, created_at TEXT NOT NULL,"
            " erased_at TEXT)",
            "CREATE TABLE IF NOT EXISTS erased_personal ("
            " case_id TEXT NOT NULL, seq INTEGER NOT NULL, personal TEXT NOT NULL,"
            " PRIMARY KEY (case_id, seq))",
        ]

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=False) as c:
            yield c

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=True) as c:
            yield c

    def _after_erasure(self) -> None:
        # The destroyed key's page was overwritten (secure_delete); the write-ahead log
        # still holds the page as it was until a checkpoint copies it back and truncates.
        path = self.datastore.pool.db_name
        if path == ":memory:" or path.startswith("file::memory:"):
            return
        with contextlib.closing(sqlite3.connect(path, timeout=self.timeout)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        c.execute("PRAGMA secure_delete=ON")
        ids = super()._insert_events(c, stored_events, **kwargs)
        self._link(c, stored_events, kwargs.get("links"))
        self._write_keys(c, stored_events, **kwargs)
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

    def _write_batch(
        self,
        cursor: Any,
        stored_events: Sequence[StoredEvent],
        links: _Links | None,
        keyed: set[str],
    ) -> None:
        self._insert_events(cursor, stored_events, links=links, keyed=keyed)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        parent = super().insert_events
        made: _Links = {}
        ids = self._written(lambda: parent(stored_events, **kwargs, links=made))
        self._remember_links(made)
        self._committed(stored_events, **kwargs)
        return ids

    def _written(self, write: Callable[[], T]) -> T:
        """``write()`` (one transaction) in this process's turn at the file, tried again
        while the file cannot be reached. A SQLite commit is local: when it fails, nothing
        was stored, so trying again is safe."""
        with turns.writing(self.datastore.pool.db_name, budget.remaining(self.timeout)):
            return within(self.timeout, write, UNREACHABLE)

    def insert_group(self, group: Sequence[Write]) -> None:
        """Several commands' events in one transaction, one commit (``adapters/grouping.py``).
        Each is written in a savepoint of its own: one the store refuses (a version or a key
        already taken, a data key another writer stored) gets its ``error`` and leaves
        nothing, the others are stored. A failed commit raises: then none of them is. A
        group of one is written as one command is, without a savepoint."""
        if len(group) == 1:
            _write_alone(self, group[0])
            return
        made: list[_Links] = []

        def attempt() -> None:
            made.clear()
            with self.datastore.transaction(commit=True) as c:
                for each in group:
                    links: _Links = {}
                    made.append(links)
                    each.error = None
                    c.execute("SAVEPOINT command")
                    try:
                        self._insert_events(c, each.stored, **each.extra, links=links)
                    except (sqlite3.IntegrityError, IntegrityError) as refused:
                        c.execute("ROLLBACK TO command")
                        each.error = _refusal(refused)
                    c.execute("RELEASE command")
                _unless_all_refused(group)

        with contextlib.suppress(_AllRefused):
            self._written(attempt)
        _group_committed(self, group, made)

    def select_events(self, originator_id: UUID | str, **kwargs: Any) -> Sequence[StoredEvent]:
        parent = super().select_events
        return within(self.timeout, lambda: parent(originator_id, **kwargs), UNREACHABLE)

    def select_case(
        self, case_id: UUID, *, last_link: bool = False
    ) -> tuple[Sequence[StoredEvent], dict[str, KeyRow]]:
        """A case's events in order, and its data key's row (a local file: two reads). A
        command's last link is read in its transaction (``last_link`` is for a store a
        round trip away)."""
        return self.select_events(case_id), self.select_keys([case_key(case_id)])

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

    def case_ids(self) -> set[UUID]:
        """Every case the store holds an event of (from the primary key's index)."""
        statement = f"SELECT DISTINCT originator_id FROM {self.events_table_name}"

        def select() -> set[UUID]:
            with self.datastore.transaction(commit=False) as c:
                c.execute(statement)
                return {UUID(row[0]) for row in c.fetchall()}

        return within(self.timeout, select, UNREACHABLE)

    def case_version(self, case_id: UUID) -> int:
        """The version a case is at (0 for none): its last event's seq, from the index."""
        statement = (
            f"SELECT MAX(originator_version) FROM {self.events_table_name} WHERE originator_id = ?"
        )

        def select() -> int:
            with self.datastore.transaction(commit=False) as c:
                c.execute(statement, (case_id.hex,))
                row = c.fetchone()
                return int(row[0] or 0)

        return within(self.timeout, select, UNREACHABLE)

    def select_by_case(
        self,
        after: UUID | None,
        through: int,
        limit: int | None,
        topics: Sequence[str],
        case: UUID | None = None,
    ) -> Sequence[Notification]:
        """The events recorded up to notification ``through`` of the cases after ``after``
        (or of ``case`` alone), in case order (case id, then seq): up to ``limit`` of them
        (all with ``None``)."""
        statement = (
            "SELECT rowid, originator_id, originator_version, topic, state"
            f" FROM {self.events_table_name}"
            f" WHERE originator_id {'=' if case else '>'} ? AND rowid <= ?"
            f" AND topic IN ({', '.join('?' * len(topics))})"
            " ORDER BY originator_id, originator_version"
        )
        start = case or after
        params: list[Any] = ["" if start is None else start.hex, through, *topics]
        if limit is not None:
            statement += " LIMIT ?"
            params.append(limit)

        def select() -> list[Notification]:
            with self.datastore.transaction(commit=False) as c:
                c.execute(statement, params)
                return [
                    Notification(
                        id=row[0],
                        originator_id=UUID(row[1]),
                        originator_version=row[2],
                        topic=row[3],
                        state=row[4],
                    )
                    for row in c.fetchall()
                ]

        return within(self.timeout, select, UNREACHABLE)

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


class _Reconnect(AttemptWithBackoff):
    """The pool's attempts to reconnect: soon and often, while the server is away."""

    INITIAL_DELAY = 0.1

    def update_delay(self, now: float) -> None:
        super().update_delay(now)
        self.delay = min(self.delay, RECONNECT_PAUSE)


# A pooled connection idle this long (seconds) is pinged before it is used again.
PING_AFTER = 1.0
# The shortest wait for a pooled connection, when the command's budget is spent.
GETCONN_AT_LEAST = 0.05


class PromptPool(ConnectionPool[psycopg.Connection[DictRow]]):
    """The library's connection pool, quick to recover when the server comes back.

    It opens a lost connection again within ``RECONNECT_PAUSE`` of the server's return, and
    when it finds one connection dropped it checks all its idle ones at once (a restarted
    server dropped every one of them) instead of finding them one by one, with a growing
    pause after each."""

    def _add_connection(self, attempt: AttemptWithBackoff | None, growing: bool = False) -> None:
        super()._add_connection(attempt or _Reconnect(timeout=self.reconnect_timeout), growing)

    def _check_connection(self, conn: psycopg.Connection[DictRow]) -> None:
        # A connection given back a moment ago is not pinged again: if the server went away
        # since, its first statement fails and the read, or the write that has not reached
        # its commit, is tried again (``within``, ``insert_events``) on another connection.
        returned_at: float | None = getattr(conn, "_overleg_returned_at", None)
        if returned_at is not None and time.monotonic() - returned_at < PING_AFTER:
            return
        try:
            super()._check_connection(conn)
        except Exception:
            self.check()
            raise

    def getconn(self, timeout: float | None = None) -> psycopg.Connection[DictRow]:
        # A command waits for a connection no longer than its budget allows (a quick try
        # when it is spent: an idle connection is then still taken).
        if timeout is None:
            timeout = budget.remaining(self.timeout, at_least=GETCONN_AT_LEAST)
        return super().getconn(timeout)

    def putconn(self, conn: psycopg.Connection[DictRow]) -> None:
        conn._overleg_returned_at = time.monotonic()  # type: ignore[attr-defined]
        super().putconn(conn)


def _configure(datastore: PostgresDatastore) -> Callable[[psycopg.Connection[Any]], None]:
    """The library's set-up of a new connection, and the store's lock timeout for the whole
    session (the library sets it in each write's transaction, one round trip more)."""
    library = datastore.after_connect_func()
    statement = SQL("SET lock_timeout = '{0}s'").format(int(datastore.lock_timeout))

    def configure(conn: psycopg.Connection[Any]) -> None:
        library(conn)
        conn.execute(statement)

    return configure


def _prompt_pool(datastore: PostgresDatastore) -> None:
    """Give the datastore a ``PromptPool`` in place of its own (not yet opened) pool."""
    pool = datastore.pool
    datastore.pool = PromptPool(
        get_password_func=pool.get_password_func,
        connection_class=pool.connection_class,
        kwargs=pool.kwargs,
        min_size=pool.min_size,
        max_size=pool.max_size,
        open=False,
        configure=_configure(datastore),
        timeout=pool.timeout,
        max_waiting=pool.max_waiting,
        max_lifetime=pool.max_lifetime,
        check=PromptPool.check_connection if datastore.pre_ping else None,
    )


def _render_statements(recorder: object) -> None:
    """Each of ``recorder``'s composed statements (the library's and ours) rendered once,
    as plain text: a composed statement quotes its names again every time it is sent
    (about 10 µs each, several times per command). The names are the store's own
    (schema, tables, channel), quoted as PostgreSQL quotes them."""
    for name, value in list(vars(recorder).items()):
        if isinstance(value, Composed):
            setattr(recorder, name, SQL(value.as_string()))
        elif isinstance(value, list) and value and all(isinstance(v, Composed) for v in value):
            setattr(recorder, name, [SQL(v.as_string()) for v in value])


class PostgresEventRecorder(PostgresApplicationRecorder, _Purging, _Chaining, KeyTables):
    """The library's PostgreSQL recorder with the command log, the links, bounded waits and
    a safe set-up."""

    timeout = 5.0
    datastore: PostgresDatastore

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        if not isinstance(datastore.pool, PromptPool):
            _prompt_pool(datastore)
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(self.datastore.schema)
        self.command_log = SQL("{schema}.command_log").format(schema=schema)
        chain = SQL("{schema}.event_chain").format(schema=schema)
        self.event_chain = chain
        self.event_checkpoint = SQL("{schema}.event_checkpoint").format(schema=schema)
        self._case_keys = SQL("{schema}.case_keys").format(schema=schema)
        self._erased_personal = SQL("{schema}.erased_personal").format(schema=schema)
        self._command_log = self.command_log
        events = SQL("{schema}.{table}").format(
            schema=schema, table=Identifier(self.events_table_name)
        )
        self._events = events
        # The library's table lock (see ``insert_events``) and notification, in one round trip.
        self._lock_and_notify = SQL("LOCK TABLE {t} IN EXCLUSIVE MODE; NOTIFY {channel}").format(
            t=events, channel=Identifier(self.channel_name)
        )
        # The same, as two statements: a pipeline sends one statement per query.
        self._lock = SQL("LOCK TABLE {t} IN EXCLUSIVE MODE").format(t=events)
        self._notify = SQL("NOTIFY {channel}").format(channel=Identifier(self.channel_name))
        self._select_link = SQL("SELECT link FROM {t} WHERE case_id = %s AND seq = %s").format(
            t=chain
        )
        self._insert_link = SQL(
            "INSERT INTO {t} (case_id, seq, link, digest) VALUES (%s, %s, %s, %s)"
        ).format(t=chain)
        self._select_links = SQL(
            "SELECT c.case_id, c.link FROM {t} c"
            " JOIN unnest(%s::uuid[], %s::int8[]) AS w (case_id, seq)"
            " ON c.case_id = w.case_id AND c.seq = w.seq"
        ).format(t=chain)
        self._copy_chain = SQL(
            "COPY {t} (case_id, seq, link, digest) FROM STDIN (FORMAT BINARY)"
        ).format(t=chain)
        self._copy_events = SQL(
            "COPY {t} (originator_id, originator_version, topic, state) FROM STDIN (FORMAT BINARY)"
        ).format(t=events)
        self._insert_link_if_missing = SQL(
            "INSERT INTO {t} (case_id, seq, link, digest) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING"
        ).format(t=chain)
        self._select_case_events = SQL(
            "SELECT originator_version, topic, state FROM {t}"
            " WHERE originator_id = %s AND originator_version <= %s ORDER BY originator_version"
        ).format(t=events)
        self._select_last_link = SQL(
            "SELECT seq, link FROM {t} WHERE case_id = %s ORDER BY seq DESC LIMIT 1"
        ).format(t=chain)
        self.sql_create_statements += [
            SQL(
                "CREATE TABLE IF NOT EXISTS {table} ("
                " case_id uuid NOT NULL, seq bigint NOT NULL, link bytea NOT NULL,"
                " digest bytea NOT NULL, PRIMARY KEY (case_id, seq))"
            ).format(table=chain),
            SQL(
                "CREATE TABLE IF NOT EXISTS {table} ("
                " number bigserial PRIMARY KEY, made_at text NOT NULL,"
                " position bigint NOT NULL, cases bigint NOT NULL, root bytea NOT NULL)"
            ).format(table=self.event_checkpoint),
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
            SQL("CREATE INDEX IF NOT EXISTS command_log_case_id ON {table} (case_id)").format(
                table=self.command_log
            ),
            SQL(
                "CREATE TABLE IF NOT EXISTS {table} ("
                " case_id text PRIMARY KEY, master_id text, wrapped bytea,"
                " created_at text NOT NULL, erased_at text)"
            ).format(table=self._case_keys),
            SQL(
                "CREATE TABLE IF NOT EXISTS {table} ("
                " case_id text NOT NULL, seq bigint NOT NULL, personal text NOT NULL,"
                " PRIMARY KEY (case_id, seq))"
            ).format(table=self._erased_personal),
        ]
        self._select_case_stored = self.select_events_statement + SQL(
            " ORDER BY originator_version ASC"
        )
        self._select_case_key = self._format(self.KEY_COLUMNS + " WHERE case_id = ?")
        _render_statements(self)

    def _format(self, text: str) -> Any:
        return SQL(text.replace("?", "%s")).format(
            keys=self._case_keys, erased=self._erased_personal, log=self.command_log
        )

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Any]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            yield curs

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Any]:
        with self.datastore.get_connection() as conn, committed(conn), conn.cursor() as curs:
            yield curs

    def create_table(self) -> None:
        with schema_lock(self.datastore):
            if self._tables_exist():
                # Nothing to create. The library's statements would still lock the tables
                # (CREATE INDEX IF NOT EXISTS takes a share lock before it looks), against the
                # writers of the processes already running: a process (re)started under load
                # could then deadlock with them and fail to start.
                self.datastore.register_type_adapters()
                return
            super().create_table()

    def _tables_exist(self) -> bool:
        """Whether every table, index and type the set-up creates is there (a table or index
        added to ``sql_create_statements`` belongs in this list too)."""
        relations = [
            self.events_table_name,
            self.notification_id_index_name,
            "command_log",
            "command_log_recorded_at",
            "command_log_case_id",
            "event_chain",
            "event_checkpoint",
            "case_keys",
            "erased_personal",
        ]
        params = {
            "schema": self.datastore.schema,
            "relations": relations,
            "type": self.stored_event_type_name,
        }
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(_EXISTING, params)
            row = curs.fetchone()
        return row is not None and int(row["found"]) == len(relations) + 1

    def _before_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        """What a command writes beside its events, before the events' table lock: the
        cases' keys (or an erasure) and the command's row."""
        self._write_keys(curs, stored_events, **kwargs)
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

    def _write_batch(
        self,
        cursor: Any,
        stored_events: Sequence[StoredEvent],
        links: _Links | None,
        keyed: set[str],
    ) -> None:
        # An import's batch is copied in (binary), under the same lock as every insert: the
        # rows get their notification ids in the order they are copied.
        cursor.execute(self._lock_and_notify)
        with cursor.copy(self._copy_events) as copy:
            copy.set_types(["uuid", "int8", "text", "bytea"])
            for e in stored_events:
                copy.write_row((_uuid(e.originator_id), e.originator_version, e.topic, e.state))
        self._link(cursor, stored_events, links, self._copy_links)
        self._write_keys(cursor, stored_events, keyed=keyed)

    def _stored_links(self, cursor: Any, wanted: Mapping[str, int]) -> dict[str, bytes]:
        """As ``_Chaining._stored_links``, in one query."""
        cursor.execute(self._select_links, ([UUID(c) for c in wanted], list(wanted.values())))
        return {case_key(c): bytes(link) for c, link in map(row_values, cursor.fetchall())}

    def _copy_links(self, cursor: Any, rows: Sequence[tuple[str, int, bytes, bytes]]) -> None:
        with cursor.copy(self._copy_chain) as copy:
            copy.set_types(["uuid", "int8", "bytea", "bytea"])
            for case_id, seq, link, digest in rows:
                copy.write_row((UUID(case_id), seq, link, digest))

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Insert in one transaction, trying again while the store cannot be reached, but
        never after the commit was sent: then whether it landed is unknown (``OutcomeUnknown``).
        """
        if not stored_events:
            return None
        made: _Links = {}

        def write(conn: psycopg.Connection[DictRow]) -> Sequence[int] | None:
            made.clear()
            return self._write_command(conn, stored_events, made, **kwargs)

        ids = self._committing(write)
        self._remember_links(made)
        self._committed(stored_events, **kwargs)
        return ids

    def insert_group(self, group: Sequence[Write]) -> None:
        """Several commands' events in one transaction, one commit, as on SQLite
        (``adapters/grouping.py``): each in a savepoint of its own, so that one the store
        refuses (a version or a key already taken) gets its ``error`` and leaves nothing,
        and the others are stored. The events' table lock, taken by the group's first
        events, is held to the group's one commit: writers take turns at it once a group,
        not once a command. A failed commit raises: then none of them is stored (or, when
        its answer was lost, ``OutcomeUnknown`` for all). A group of one is written as one
        command is, without a savepoint."""
        if len(group) == 1:
            _write_alone(self, group[0])
            return
        made: list[_Links] = []

        def write(conn: psycopg.Connection[DictRow]) -> None:
            made.clear()
            for each in group:
                links: _Links = {}
                made.append(links)
                each.error = None
                try:
                    with conn.transaction():  # a savepoint
                        self._write_command(conn, each.stored, links, **each.extra)
                except (psycopg.IntegrityError, IntegrityError) as refused:
                    each.error = _refusal(refused)
            _unless_all_refused(group)

        with contextlib.suppress(_AllRefused):
            self._committing(write)
        _group_committed(self, group, made)

    def _committing(self, write: Callable[[psycopg.Connection[DictRow]], T]) -> T:
        """``write(conn)`` in one transaction, committed; tried again while the store cannot
        be reached, but never after the commit was sent (``OutcomeUnknown``). A connection
        found broken where the commit was to be sent is reached no more: nothing was
        committed (``adapters/commits.py``), and it is tried again."""
        deadline = budget.deadline(self.timeout)
        pause = 0.05
        while True:
            committing = False
            try:
                with self.datastore.get_connection() as conn, committed(conn):
                    done = write(conn)
                    committing = True  # what fails from here on is the commit itself
                return done
            except UNREACHABLE as error:
                if committing and not not_committed(error):
                    raise OutcomeUnknown(str(error)) from error
                if time.monotonic() + pause >= deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.5)

    def _write_command(
        self,
        conn: psycopg.Connection[DictRow],
        stored_events: Sequence[StoredEvent],
        made: _Links,
        **kwargs: Any,
    ) -> Sequence[int] | None:
        """One command's writes, in the transaction (or savepoint) ``conn`` is in; ``made``
        gets each case's last link, to be remembered once committed."""
        with conn.cursor() as curs, conn.cursor() as inserted:
            # Writers take turns from the events' table lock to their commit: what can be
            # written before it is, and the links are worked out (a case's last link read,
            # if not remembered), so that each holds it for two round trips: the lock, the
            # events and their links sent together, then the commit. The links are written
            # after the lock, as in an import, so that two writers of the same case's next
            # link never wait on each other in opposite orders.
            self._before_events(curs, stored_events, **kwargs)
            links = self._links_to_write(curs, stored_events, made)
            if links is None:  # a case to chain first, under the lock
                curs.execute(self._lock_and_notify)
                PostgresAggregateRecorder._insert_stored_events(
                    self, inserted, stored_events, **kwargs
                )
                self._link(curs, stored_events, made)
            else:
                with conn.pipeline():
                    curs.execute(self._lock)
                    curs.execute(self._notify)
                    PostgresAggregateRecorder._insert_stored_events(
                        self, inserted, stored_events, **kwargs
                    )
                    curs.executemany(
                        self._insert_link, [(UUID(c), n, h, d) for c, n, h, d in links]
                    )
            return self._fetch_ids_after_insert_events(inserted, stored_events)

    def select_events(self, originator_id: UUID | str, **kwargs: Any) -> Sequence[StoredEvent]:
        parent = PostgresApplicationRecorder.select_events.__wrapped__
        return within(self.timeout, lambda: parent(self, originator_id, **kwargs), UNREACHABLE)

    def select_case(
        self, case_id: UUID, *, last_link: bool = False
    ) -> tuple[Sequence[StoredEvent], dict[str, KeyRow]]:
        """A case's events in order, and its data key's row: asked together, in one round
        trip (a pipeline) instead of two. With ``last_link``, for a command about to write
        the case's next event, the case's last chain link too, in the same round trip: it
        is remembered (a stored link never changes), so the command reads none in the
        writer's turn."""

        def select() -> tuple[list[StoredEvent], dict[str, KeyRow]]:
            with (
                self.datastore.get_connection() as conn,
                conn.pipeline(),
                conn.cursor() as found,
                conn.cursor() as key,
                conn.cursor() as link,
            ):
                found.execute(self._select_case_stored, (case_id,), prepare=True)
                key.execute(self._select_case_key, (case_key(case_id),), prepare=True)
                if last_link:
                    link.execute(self._select_last_link, (case_id,), prepare=True)
                stored = [
                    StoredEvent(
                        originator_id=row["originator_id"],
                        originator_version=row["originator_version"],
                        topic=row["topic"],
                        state=bytes(row["state"]),
                    )
                    for row in found.fetchall()
                ]
                keys = key_rows(map(row_values, key.fetchall()))
                last = link.fetchone() if last_link else None
            if last is not None:
                seq, chained = row_values(last)
                self._remember_links({case_key(case_id): (int(seq), bytes(chained))})
            return stored, keys

        return within(self.timeout, select, UNREACHABLE)

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

    def case_ids(self) -> set[UUID]:
        """Every case the store holds an event of (from the primary key's index)."""
        statement = SQL("SELECT DISTINCT originator_id AS c FROM {t}").format(t=self._events)

        def select() -> set[UUID]:
            with self.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(statement)
                return {row["c"] for row in curs.fetchall()}

        return within(self.timeout, select, UNREACHABLE)

    def case_version(self, case_id: UUID) -> int:
        """The version a case is at (0 for none): its last event's seq, from the index."""
        statement = SQL("SELECT MAX(originator_version) AS v FROM {t} WHERE originator_id = %s")

        def select() -> int:
            with self.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(statement.format(t=self._events), (case_id,), prepare=True)
                row = curs.fetchone()
                return int(row["v"] or 0) if row else 0

        return within(self.timeout, select, UNREACHABLE)

    def select_by_case(
        self,
        after: UUID | None,
        through: int,
        limit: int | None,
        topics: Sequence[str],
        case: UUID | None = None,
    ) -> Sequence[Notification]:
        """The events recorded up to notification ``through`` of the cases after ``after``
        (or of ``case`` alone), in case order (case id, then seq): up to ``limit`` of them
        (all with ``None``)."""
        params: list[Any] = [through, list(topics)]
        statement = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {t}"
            " WHERE notification_id <= %s AND topic = ANY(%s)"
        ).format(t=self._events)
        if case is not None:
            statement += SQL(" AND originator_id = %s")
            params.append(case)
        elif after is not None:
            statement += SQL(" AND originator_id > %s")
            params.append(after)
        statement += SQL(" ORDER BY originator_id, originator_version")
        if limit is not None:
            statement += SQL(" LIMIT %s")
            params.append(limit)

        def select() -> list[Notification]:
            with self.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(statement, params)
                return [
                    Notification(
                        id=row["notification_id"],
                        originator_id=row["originator_id"],
                        originator_version=row["originator_version"],
                        topic=row["topic"],
                        state=bytes(row["state"]),
                    )
                    for row in curs.fetchall()
                ]

        return within(self.timeout, select, UNREACHABLE)

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
