"""A PostgreSQL connection that listens on one channel, for looks that must not wait.

What the service keeps in memory (figures, pages, replayed cases) is checked against the
store by a query per request, unless it can tell that nothing changed without one. Every
transaction that changes what such an answer shows announces it on a channel (``NOTIFY``,
delivered at its commit): the event store's on every insert, the projections' on every
move. A ``Listener`` takes those announcements:

- what it knows is read after ``LISTEN`` took effect: a change committed before that read
  is in it, one committed after it is announced;
- announcements waiting on the connection are taken before a look: one taken was
  committed before the look, one not yet taken is seen by the next look;
- an announcement reaches the listener shortly after its commit (the server sends it, not
  read with the data): for that moment an answer kept may be one change behind;
- when the connection fails, nothing is known without a query until a new connection
  listens; it is tried again after ``RETRY_SECONDS``, by one thread while the others go on
  asking the store (a server that does not answer holds up that one for the connect
  timeout, not every request behind it). A connection gone without a word cannot tell:
  users of a listener read again what is older than ``AGE`` anyway.
"""

from __future__ import annotations

import select
import threading
from collections.abc import Callable
from typing import TypeVar

import psycopg
from psycopg import sql

from overleg.adapters.views import APPLICATION_NAME
from overleg.logs import get_logger

log = get_logger("overleg.listening")

T = TypeVar("T")

RETRY_SECONDS = 5.0
# The oldest knowledge a look answers with, whatever was announced: a connection that died
# without a word (a network gone, no reset) leaves answers at most this much behind.
AGE = 1.0


class Listener:
    """A connection listening on ``channel``, connected again when lost; what was heard
    since the last look is taken with the look (``_announced``), the lock held."""

    lost_event = "announcements_not_followed"  # the log's name for a lost connection

    def __init__(
        self, conninfo: Callable[[], str], channel: str, clock: Callable[[], float]
    ) -> None:
        self._conninfo = conninfo
        self._channel = channel
        self._clock = clock
        self._lock = threading.Lock()
        self._connecting = threading.Lock()  # one thread (re)connects; the others go on
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._retry_at = 0.0
        self._closed = False

    def _heard(self) -> None:
        """A connection now listens, or the last one was lost: what was known is to be read
        again. The lock held."""

    def _now(self, look: Callable[[], T | None]) -> T | None:
        """``look()`` (the lock held) while listening and if nobody else is looking this
        instant: it never waits, for the event loop; else ``None``."""
        return None if self._conn is None else at_once(self._lock, look)

    @property
    def listening(self) -> bool:
        """Whether announcements are being received (else every look asks the store)."""
        return self._conn is not None

    def _listen_if_due(self) -> None:
        """Connect and listen, when it is time to try (again). One thread tries, without
        holding up the others: while it connects (a server that does not answer takes the
        connect timeout), they ask the store, as while nothing listens."""
        if self._closed or self._clock() < self._retry_at:
            return
        if not self._connecting.acquire(blocking=False):
            return
        try:
            if self._conn is not None:
                return
            try:
                conn = psycopg.connect(
                    self._conninfo(), autocommit=True, application_name=APPLICATION_NAME
                )
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            except psycopg.Error as error:
                with self._lock:
                    self._lost(error)
                return
            with self._lock:
                if self._closed:
                    conn.close()
                    return
                self._conn = conn
                self._heard()  # what changed while nothing listened is read now
        finally:
            self._connecting.release()

    def _announced(self) -> bool:
        """Whether a change was announced since the last look (every waiting announcement
        is taken). The lock held, a connection listening."""
        conn = self._conn
        assert conn is not None
        moved = False
        try:
            # The connection does nothing but listen: only what reached its socket since
            # the last look can be new (one announced while LISTEN was being set up is
            # older than what was read after it). A connection the server closed shows on
            # the look after the one that read its last message: look again while there
            # is more to read.
            for _ in range(3):
                if not select.select([conn.fileno()], [], [], 0)[0]:
                    break
                moved = any(True for _ in conn.notifies(timeout=0)) or moved
        except psycopg.Error as error:
            self._lost(error)
            return True
        return moved

    def _lost(self, error: psycopg.Error) -> None:
        log.warning(self.lost_event, error_type=type(error).__name__, retry_in=RETRY_SECONDS)
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._heard()
        self._retry_at = self._clock() + RETRY_SECONDS

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def at_once(lock: threading.Lock, look: Callable[[], T | None]) -> T | None:
    """``look()`` under ``lock`` if it is free this instant (never waits); else ``None``."""
    if not lock.acquire(blocking=False):
        return None
    try:
        return look()
    finally:
        lock.release()
