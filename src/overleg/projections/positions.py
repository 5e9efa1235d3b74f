"""The projections' positions, as another process moves them, without a query per look.

A service whose projections are kept by a worker (PostgreSQL) keys the answers it keeps
(figures, case-list pages) by the position of the projection they were read from. Asking
the store for that position on every request costs a round trip per request. Instead the
service listens on the channel on which every transaction that moves a position announces
it (``Projector.moved_channel``, delivered at that transaction's commit) and asks again
only after an announcement:

- the positions are read after ``LISTEN`` took effect: a move committed before that read
  is in it, one committed after it is announced;
- announcements waiting on the connection are taken before the positions are read again:
  one taken was committed before the read that follows it, one not yet taken leads to a
  read next time. A position known here is never older than the last announcement taken;
- an announcement reaches the listener shortly after its commit (it is sent by the
  server, not read with the data): for that moment a kept answer may be one move behind,
  as it would be had the worker been that much slower;
- when the listening connection fails, every look asks the store again (as without a
  feed) until a new connection listens; it is tried again after ``RETRY_SECONDS``, by one
  request while the others go on asking the store (a server that does not answer holds
  up that one for the connect timeout, not every request behind it). A
  connection that is gone without a word cannot tell: positions older than ``AGE`` are
  read again anyway, so no answer is kept more than that behind a move.
"""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Callable

import psycopg
from psycopg import sql

from overleg.adapters.views import APPLICATION_NAME
from overleg.logs import get_logger
from overleg.projections.runner import Projector

log = get_logger("overleg.positions")

RETRY_SECONDS = 5.0
# The oldest positions a look answers with, whatever was announced: a connection that died
# without a word (a network gone, no reset) leaves answers at most this much behind.
AGE = 1.0


class PositionFeed:
    """How far each projection is, read again only when a move was announced."""

    def __init__(self, projector: Projector, clock: Callable[[], float] = time.monotonic) -> None:
        channel = projector.moved_channel
        if channel is None:
            raise ValueError("positions are announced on PostgreSQL only")
        self._projector = projector
        self._channel = channel
        self._clock = clock
        self._lock = threading.Lock()
        self._connecting = threading.Lock()  # one thread (re)connects; the others go on
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._known: dict[str, int] | None = None  # None: to be read (again)
        self._read_at = 0.0  # when ``_known`` was read
        self._retry_at = 0.0
        self._closed = False

    def position(self, name: str) -> int:
        """How far projection ``name`` is: as last read, unless a move was announced since
        (then read again); asked of the store each time while nothing listens."""
        if self._conn is None:
            self._listen_if_due()
        with self._lock:
            if self._conn is not None:
                now = self._clock()
                known = self._unchanged(now)
                if known is None:
                    known = self._known = self._projector.positions()
                    self._read_at = now
                if name in known:
                    return known[name]
        return self._projector.position(name)

    def known(self, name: str) -> int | None:
        """How far projection ``name`` is, if that is known without a query and without
        waiting (for the event loop): listening, nothing announced since the positions were
        read, and read less than ``AGE`` ago. ``None``: ask ``position``."""
        if self._conn is None or not self._lock.acquire(blocking=False):
            return None
        try:
            if self._conn is None:
                return None
            known = self._unchanged(self._clock())
            return None if known is None else known.get(name)
        finally:
            self._lock.release()

    def _unchanged(self, now: float) -> dict[str, int] | None:
        """The positions as last read, if no move was announced since (every waiting
        announcement is taken) and they are younger than ``AGE``; else ``None``, and they
        are to be read again. The lock held."""
        if self._announced() or self._known is None or now >= self._read_at + AGE:
            self._known = None
            return None
        return self._known

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
                    self._projector.views.database.conninfo(),
                    autocommit=True,
                    application_name=APPLICATION_NAME,
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
                self._known = None  # what moved while nothing listened is read now
        finally:
            self._connecting.release()

    def _announced(self) -> bool:
        """Whether a move was announced since the last look (every waiting one is taken)."""
        conn = self._conn
        assert conn is not None
        moved = False
        try:
            # A connection the server closed shows on the look after the one that read its
            # last message: look again while there is more to read.
            for _ in range(3):
                moved = any(True for _ in conn.notifies(timeout=0)) or moved
                if not select.select([conn.fileno()], [], [], 0)[0]:
                    break
        except psycopg.Error as error:
            self._lost(error)
            return True
        return moved

    def _lost(self, error: psycopg.Error) -> None:
        log.warning(
            "positions_not_followed", error_type=type(error).__name__, retry_in=RETRY_SECONDS
        )
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._known = None
        self._retry_at = self._clock() + RETRY_SECONDS

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None
