"""Answers computed from a projection, kept while the projection has not moved.

Figures (the annual statistics, the bottleneck report) are computed from a projection's
tables; the same question asked again while the projection is at the same position has the
same answer. ``Memo`` keeps recent answers with the position they were computed at, so an
analyst's dashboard polling the figures costs one look-up of the position, and many readers
asking at once compute a missing answer once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import TypeVar, cast

from overleg.adapters.listening import at_once
from overleg.adapters.recent import Recent

T = TypeVar("T")
KEPT = 64  # answers kept, most recently used first
SWEEP_EVERY = 1.0  # seconds between two looks for answers past their lifetime


class Memo:
    """Recent answers, each with the position of the projection it was computed from.

    With a ``lifetime`` (seconds), an answer is given only within it from when it was kept,
    and answers past it are let go at the first use after it (looked for at most once a
    second): answers that hold personal data stay no longer than the cases kept for
    readers do."""

    def __init__(
        self,
        size: int = KEPT,
        lifetime: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Each answer with its position and when it was kept.
        self._kept: Recent[Hashable, tuple[Hashable, object, float]] = Recent(size)
        self._lock = threading.Lock()
        self._computing: dict[Hashable, threading.Lock] = {}
        self.lifetime, self._clock = lifetime, clock
        self._swept = clock()  # when answers past their lifetime were last let go

    def get(self, key: Hashable, position: Hashable, compute: Callable[[], T]) -> T:
        """The answer to ``key`` at ``position``: kept, or computed now (once, however many
        ask at the same time)."""
        found = self._found(key, position)
        if found is not None:
            return cast(T, found[0])
        with self._lock:
            computing = self._computing.setdefault(key, threading.Lock())
        try:
            with computing:
                found = self._found(key, position)  # another reader may have computed it
                if found is not None:
                    return cast(T, found[0])
                answer = compute()
                with self._lock:
                    self._put(key, position, answer)
                return answer
        finally:
            with self._lock:
                self._computing.pop(key, None)  # questions never asked again leave nothing

    def offer(self, key: Hashable, position: Hashable, answer: object) -> None:
        """Keep ``answer`` to ``key`` at ``position``, if the answers are free this instant
        (never waits: for the event loop); else it is not kept, and computed again when next
        asked."""
        at_once(self._lock, lambda: self._put(key, position, answer))

    def clear(self) -> None:
        """Drop every answer kept."""
        with self._lock:
            self._kept.clear()

    def peek(self, key: Hashable, position: Hashable) -> tuple[object] | None:
        """The answer kept for ``key`` at ``position`` (in a 1-tuple), without waiting: for
        a caller that must not (the event loop). ``None`` when none is kept, or when the
        answers are being looked at by another thread this instant."""
        return at_once(self._lock, lambda: self._kept_at(key, position))

    def _found(self, key: Hashable, position: Hashable) -> tuple[object] | None:
        with self._lock:
            return self._kept_at(key, position)

    def _put(self, key: Hashable, position: Hashable, answer: object) -> None:
        """Keep ``answer`` (the lock held)."""
        now = self._clock()
        self._kept.put(key, (position, answer, now))
        self._sweep(now)

    def _kept_at(self, key: Hashable, position: Hashable) -> tuple[object] | None:
        """The answer kept for ``key`` at ``position``, in a 1-tuple (the lock held)."""
        now = self._clock()
        self._sweep(now)
        kept = self._kept.get(key)
        if kept is None or kept[0] != position:
            return None
        if self.lifetime is not None and now - kept[2] > self.lifetime:
            self._kept.pop(key)
            return None
        self._kept.touch(key)
        return (kept[1],)

    def _sweep(self, now: float) -> None:
        """Let every answer past its lifetime go, at most once a second (the lock held)."""
        if self.lifetime is None or now - self._swept < SWEEP_EVERY:
            return
        self._swept = now
        for key, (_position, _answer, at) in self._kept.items():
            if now - at > self.lifetime:
                self._kept.pop(key)
