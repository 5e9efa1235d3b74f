"""How long the request or command under way may still wait for the event store.

A request waits for the store at most ``store_timeout`` seconds in all, whatever it waits
for: its reads, SQLite's write turn, a connection while the server is away, the retries of
its write, and the look that settles a commit whose answer was lost. Each of those waits has
its own timeout too; inside a budget it ends at the nearer of that and the one deadline, so
waits that follow one another do not add up to a multiple of the timeout. The API begins a
budget when a request has been read (``api/deps.py``), every command has one of its own
(``Overleg.handle``); outside a budget (an import, the worker) each wait keeps its own.

The deadline lives in a context variable: it follows the command's thread, and a request
handled on another thread at the same time has its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_DEADLINE: ContextVar[float | None] = ContextVar("overleg_store_deadline", default=None)


@contextmanager
def budget(seconds: float) -> Iterator[None]:
    """Every wait for the store inside this block ends ``seconds`` from now at the latest
    (or sooner, when an enclosing budget ends sooner)."""
    token = _DEADLINE.set(_sooner(seconds))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def begin(seconds: float) -> None:
    """Every wait for the store from here on, in this context, ends ``seconds`` from now at
    the latest. For a request: its context (its task, and the threads it hands work to)
    ends with it, so nothing is undone."""
    _DEADLINE.set(_sooner(seconds))


def _sooner(seconds: float) -> float:
    """``seconds`` from now, or the deadline in force when that is sooner."""
    ends = time.monotonic() + seconds
    outer = _DEADLINE.get()
    return ends if outer is None else min(outer, ends)


def deadline(timeout: float) -> float:
    """When a wait that may take ``timeout`` seconds, beginning now, must end."""
    own = time.monotonic() + timeout
    shared = _DEADLINE.get()
    return own if shared is None else min(own, shared)


def remaining(timeout: float, at_least: float = 0.0) -> float:
    """How many seconds a wait that may take ``timeout`` seconds may still take, but not
    less than ``at_least`` (a wait whose budget is spent still gets one quick try)."""
    return max(at_least, deadline(timeout) - time.monotonic())
