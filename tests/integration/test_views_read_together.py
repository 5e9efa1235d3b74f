"""Queries read together see the projections at one moment, in one transaction, and leave
the connection as they found it, whatever happens inside."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from overleg.adapters.eventstore import Database
from overleg.adapters.views import Fetch, ViewStore


@pytest.fixture
def views(database_url: str) -> Iterator[ViewStore]:
    store = ViewStore(Database.from_url(database_url))
    with store.transaction() as tx:
        tx.execute("CREATE TABLE together_probe (n INTEGER)")
        tx.execute("INSERT INTO together_probe (n) VALUES (1), (2)")
    try:
        yield store
    finally:
        store.close()


def _count(fetch: Fetch) -> int:
    return int(fetch("SELECT COUNT(*) FROM together_probe", ())[0][0])


def test_queries_read_together_share_one_transaction(views: ViewStore) -> None:
    def both(fetch: Fetch) -> tuple[int, list[int]]:
        total = _count(fetch)
        return total, [int(r[0]) for r in fetch("SELECT n FROM together_probe ORDER BY n", ())]

    assert views.read_together(both) == (2, [1, 2])


def test_a_failing_reader_leaves_no_transaction_open(views: ViewStore) -> None:
    def failing(fetch: Fetch) -> None:
        _count(fetch)
        raise RuntimeError("the reader fails midway")

    with pytest.raises(RuntimeError):
        views.read_together(failing)
    with views.transaction() as tx:  # a transaction can begin: none was left open
        tx.execute("INSERT INTO together_probe (n) VALUES (3)")
    assert views.read_together(_count) == 3


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_dropped_connection_is_opened_again_for_the_reads(
    views: ViewStore, database_url: str
) -> None:
    pid = views.read("SELECT pg_backend_pid()")[0][0]
    with psycopg.connect(Database.from_url(database_url).conninfo(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    assert views.read_together(_count) == 2
