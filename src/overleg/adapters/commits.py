"""A PostgreSQL transaction that commits, or raises.

psycopg ends a ``conn.transaction()`` block without a word, and without a commit, when it
finds the connection broken at the block's end while nothing raised inside the block: the
exit then skips the ``COMMIT`` and only marks the transaction failed (psycopg 3,
``Transaction.__exit__``). The block's last statements can well have been answered before
the server's last words (its termination of the connection, its shutdown) were read, by
a read that raised nothing (the results of a pipeline are read so). A write would then be
reported stored that never was. ``committed`` raises instead: ``NotCommitted``, which says
that no ``COMMIT`` was sent, so that nothing of the transaction can have been stored and
writing it again is safe.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg


class NotCommitted(psycopg.OperationalError):
    """The connection broke before the transaction's ``COMMIT`` could be sent: nothing of
    the transaction was committed."""


@contextmanager
def committed(conn: psycopg.Connection[Any]) -> Iterator[psycopg.Transaction]:
    """``conn.transaction()``, whose end without an error means that it was committed:
    ``NotCommitted`` when the block raised nothing and yet no ``COMMIT`` was sent."""
    with conn.transaction() as tx:
        yield tx
    if tx.status is not tx.Status.COMMITTED:
        raise NotCommitted("the connection was lost before the commit: nothing was committed")


def not_committed(error: BaseException) -> bool:
    """Whether ``error`` is ``NotCommitted``, or the library's translation of it."""
    return isinstance(error, NotCommitted) or isinstance(error.__cause__, NotCommitted)
