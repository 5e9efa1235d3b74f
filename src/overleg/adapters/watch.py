"""Whether anything was written to the event store since a moment, told without a query.

A reader keeps the cases it replayed (``application.Replays``) and, to answer from one, asks
the store the case's version: one round trip per read. A watch says instead whether the
store may have changed at all: it gives a mark (``mark``); while the mark it gives later
(``mark_now``, which never waits, for the event loop) is the same, nothing was written in
between, so a case confirmed under that mark is still as kept.

- SQLite: the last row id of the events' table (events are only ever added, each with a
  row id above every other), read on a connection of the watch's own, and read again only
  when that connection's ``PRAGMA data_version`` says another connection, of this process
  or another, committed something (the read log and the projections commit too).
- PostgreSQL: the event store's announcements (the library's ``NOTIFY`` on every insert,
  an import's batches and an erasure included), taken by a listener
  (``adapters/listening.py``): the mark changes with every announcement taken, with every
  new connection, and every ``AGE`` seconds, so that a listener gone silent without a word
  leaves a kept case at most that much behind.

A mark is taken before the look that confirms a case (a change committed after the mark is
seen either by that look or by the next mark), so a mark never vouches for more than the
store held when it was given. A write of this process moves the mark at once
(``touched``): its next read never meets what was kept before it, announcement or not.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Hashable
from typing import Protocol

from overleg.adapters import listening
from overleg.adapters.eventstore import Database
from overleg.adapters.listening import Listener, at_once


class WriteWatch(Protocol):
    def mark(self) -> Hashable | None:
        """The store's mark now (``None``: not known; nothing kept is vouched for)."""
        ...

    def mark_now(self) -> Hashable | None:
        """``mark()``, if it can be given this instant without waiting; else ``None``."""
        ...

    def head_now(self) -> int | None:
        """The log's head (the last event's notification id), where the mark is that head
        (SQLite) and it can be given this instant without waiting; else ``None``."""
        ...

    def touched(self) -> None:
        """This process committed a write (or may have): every mark given from now on
        differs from those given before, without waiting for the write to be seen."""
        ...

    def close(self) -> None: ...


class SQLiteWrites:
    """The last event's row id, on a connection that only reads."""

    def __init__(self, path: str, timeout: float, events_table: str) -> None:
        self._conn = sqlite3.connect(
            path, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        self._last = f"SELECT MAX(rowid) FROM {events_table}"  # noqa: S608 - a name only
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None  # (data version, last row id)
        self._closed = False

    def mark(self) -> Hashable | None:
        with self._lock:
            return self._mark()

    def mark_now(self) -> Hashable | None:
        return at_once(self._lock, self._mark)

    def head_now(self) -> int | None:
        return at_once(self._lock, self._mark)  # the row id is the notification id

    def touched(self) -> None:
        """Nothing to do: a commit of this process's other connections shows at once in
        this connection's ``PRAGMA data_version``."""

    def _mark(self) -> int | None:
        """The lock held: the last row id, read again only after another connection's
        commit. ``None`` (not known: the store is asked, as without a watch) when it cannot
        be read."""
        if self._closed:
            return None
        try:
            version = int(self._conn.execute("PRAGMA data_version").fetchone()[0])
            if self._seen is None or self._seen[0] != version:
                self._seen = (version, self._conn.execute(self._last).fetchone()[0] or 0)
        except sqlite3.Error:
            self._seen = None
            return None
        return self._seen[1]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._conn.close()


class AnnouncedWrites(Listener):
    """The count of the event store's announcements taken (PostgreSQL)."""

    lost_event = "event_store_not_followed"

    def __init__(
        self,
        conninfo: Callable[[], str],
        channel: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(conninfo, channel, clock)
        self._count = 0  # moves on with every announcement, connection and AGE
        self._since = 0.0  # when ``_count`` last moved

    def _heard(self) -> None:
        self._count += 1

    def mark(self) -> Hashable | None:
        if self._conn is None:
            self._listen_if_due()
        with self._lock:
            return self._mark()

    def mark_now(self) -> Hashable | None:
        return self._now(self._mark)

    def head_now(self) -> int | None:
        return None  # a count of announcements, not a position in the log

    def touched(self) -> None:
        """The count moves at once: the write's own announcement arrives a moment after its
        commit, and a read of this process in between must not be vouched for by the mark
        taken before it."""
        with self._lock:
            self._count += 1
            self._since = self._clock()

    def _mark(self) -> int | None:
        """The lock held: every waiting announcement taken, the count as it then is."""
        if self._conn is None:
            return None
        now = self._clock()
        if self._announced() or now >= self._since + listening.AGE:
            self._count += 1
            self._since = now
        return self._count if self._conn is not None else None


def watch_for(database: Database, channel: str | None, events_table: str) -> WriteWatch | None:
    """The watch of ``database``'s event store (its events in ``events_table``); ``None``
    where none can tell (a database in memory has no other connection to see it; a
    PostgreSQL store that announces nothing)."""
    if database.backend == "sqlite":
        path = database.sqlite_path
        if path == ":memory:" or "mode=memory" in path:
            return None
        return SQLiteWrites(path, database.timeout, events_table)
    if channel is None:
        return None
    return AnnouncedWrites(database.conninfo, channel)
