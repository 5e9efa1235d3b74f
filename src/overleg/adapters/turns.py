"""Whose turn it is to write a SQLite file, among the writers of this process.

SQLite lets one connection write at a time. A connection that finds the file locked sleeps
and tries again (its busy timeout), in steps of up to 100 ms, however soon the lock is
released. The writers of one process (the commands, the projections, the read log) take
their turn here instead, before they begin: each is woken as soon as the one before it ends.
Another process's writers still meet the file's own lock, and wait for it as before.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from eventsourcing.persistence import OperationalError

_TURNS: dict[str, threading.RLock] = {}  # by the file's real path
_NAMED: dict[str, threading.RLock] = {}  # by the path as given, found without a system call
_REGISTRY = threading.Lock()


def _turn_of(path: str) -> threading.RLock:
    turn = _NAMED.get(path)
    if turn is not None:
        return turn
    key = path if path.startswith("file:") else os.path.realpath(path)
    with _REGISTRY:
        turn = _TURNS.setdefault(key, threading.RLock())
        _NAMED[path] = turn
        return turn


@contextmanager
def writing(path: str, timeout: float) -> Iterator[None]:
    """This thread's turn to write the SQLite file at ``path``, waited for at most
    ``timeout`` seconds (then ``OperationalError``, as the file's own lock would raise).
    A thread that has the turn may take it again. A database in memory (``:memory:``) has
    no file to share: no turn is taken for it."""
    if path == ":memory:":
        yield
        return
    turn = _turn_of(path)
    if not turn.acquire(timeout=max(0.0, timeout)):
        raise OperationalError("the database is locked by this process's other writers")
    try:
        yield
    finally:
        turn.release()
