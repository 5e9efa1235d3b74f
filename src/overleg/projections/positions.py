"""The projections' positions, as another process moves them, without a query per look.

A service whose projections are kept by a worker (PostgreSQL) keys the answers it keeps
(figures, case-list pages) by the position of the projection they were read from. Asking
the store for that position on every request costs a round trip per request. Instead the
service listens on the channel on which every transaction that moves a position announces
it (``Projector.moved_channel``, delivered at that transaction's commit) and asks again
only after an announcement (``adapters/listening.py`` says what a listener sees, and when):
a position known here is never older than the last announcement taken, nor than ``AGE``.
With the positions it reads the log's head, so that it also knows how far behind each
projection is (a projection far behind answers nothing: ``Services.current_version_of``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from overleg.adapters.listening import AGE, Listener
from overleg.projections.runner import Projector


class PositionFeed(Listener):
    """How far each projection is, read again only when a move was announced."""

    lost_event = "positions_not_followed"

    def __init__(
        self,
        projector: Projector,
        events_table: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        channel = projector.moved_channel
        if channel is None:
            raise ValueError("positions are announced on PostgreSQL only")
        super().__init__(projector.views.database.conninfo, channel, clock)
        self._projector = projector
        self._events_table = events_table  # the store's, whose head is read with them
        self._known: dict[str, int] | None = None  # None: to be read (again)
        self._head = 0  # the log's head, read just after ``_known``
        self._read_at = 0.0  # when ``_known`` was read

    def _heard(self) -> None:
        self._known = None

    def _read(self) -> tuple[dict[str, int], int] | None:
        """The positions and the log's head as last read, read again if a move was
        announced since; ``None`` while nothing listens (then ask the store)."""
        if self._conn is None:
            self._listen_if_due()
        with self._lock:
            if self._conn is None:
                return None
            now = self._clock()
            known = self._unchanged(now)
            if known is None:
                known, self._head = self._projector.positions_and_head(self._events_table)
                self._known = known
                self._read_at = now
            return known, self._head

    def position(self, name: str) -> int:
        """How far projection ``name`` is: as last read, unless a move was announced since
        (then read again); asked of the store each time while nothing listens."""
        return self.position_and_lag(name)[0]

    def position_and_lag(self, name: str) -> tuple[int, int]:
        """How far projection ``name`` is, as ``position`` reads it, and how many events it
        is behind the log's head read with it (in the same statement)."""
        read = self._read()
        if read is not None and name in read[0]:
            known, head = read
        else:
            known, head = self._projector.positions_and_head(self._events_table)
        position = known.get(name, 0)
        return position, max(0, head - position)

    def known(self, name: str) -> tuple[int, int] | None:
        """How far projection ``name`` is, and how many events it is behind the head read
        with it, if that is known without a query and without waiting (for the event
        loop): listening, nothing announced since the positions were read, and read less
        than ``AGE`` ago. ``None``: ask ``position``."""

        def look() -> tuple[int, int] | None:
            known = None if self._conn is None else self._unchanged(self._clock())
            if known is None or name not in known:
                return None
            return known[name], max(0, self._head - known[name])

        return self._now(look)

    def _unchanged(self, now: float) -> dict[str, int] | None:
        """The positions as last read, if no move was announced since (every waiting
        announcement is taken) and they are younger than ``AGE``; else ``None``, and they
        are to be read again. The lock held."""
        if self._announced() or self._known is None or now >= self._read_at + AGE:
            self._known = None
            return None
        return self._known
