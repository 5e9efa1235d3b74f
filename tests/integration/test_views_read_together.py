"""Queries read together see the projections at one moment, in one transaction, and leave
the connection as they found it, whatever happens inside."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import psycopg
import pytest

from overleg.adapters import views as views_module
from overleg.adapters.eventstore import Database, StoreUnavailable
from overleg.adapters.views import Fetch, OneQuery, ViewStore


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


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_reads_do_not_wait_for_the_projections_writes(views: ViewStore) -> None:
    inside, done = threading.Event(), threading.Event()

    def write() -> None:
        with views.transaction() as tx:
            tx.execute("INSERT INTO together_probe (n) VALUES (9)")
            inside.set()
            done.wait(10)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert inside.wait(10)
        started = time.monotonic()
        assert views.read_together(_count) == 2  # read beside it; its row is not yet in
        assert views.read("SELECT COUNT(*) FROM together_probe")[0][0] == 2
        assert time.monotonic() - started < 2
    finally:
        done.set()
        writer.join()
    assert views.read_together(_count) == 3


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_readers_past_the_pool_wait_the_store_timeout_then_hear_it_is_busy(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views_module, "READERS", 1)
    views = ViewStore(replace(Database.from_url(database_url), timeout=0.3))
    holding, done = threading.Event(), threading.Event()

    def hold(fetch: Fetch) -> None:
        fetch("SELECT 1", ())
        holding.set()
        done.wait(10)

    reader = threading.Thread(target=views.read_together, args=(hold,))
    reader.start()
    try:
        assert holding.wait(10)
        with pytest.raises(StoreUnavailable, match="busy or cannot be reached"):
            views.read("SELECT 1")
    finally:
        done.set()
        reader.join()
        views.close()


def test_rows_appended_are_committed_together_or_not_at_all(
    views: ViewStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    views.append("together_probe", ["n"], [(3,), (4,)])
    assert views.read_together(_count) == 4
    with views.transaction() as tx:  # a unique n from here on
        tx.execute("CREATE UNIQUE INDEX together_probe_n ON together_probe (n)")
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        views.append("together_probe", ["n"], [(5,), (1,)])  # (1) is refused: (5) too
    assert views.read_together(_count) == 4
    monkeypatch.setattr(views_module, "APPEND_AT_ONCE", 2)  # more: in a transaction
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        views.append("together_probe", ["n"], [(5,), (6,), (1,)])
    assert views.read_together(_count) == 4
    views.append("together_probe", ["n"], [(5,)])  # the connection is ready for the next
    with views.transaction() as tx:  # and for a transaction: it was left as it was found
        tx.execute("INSERT INTO together_probe (n) VALUES (6)")
        tx.execute("INSERT INTO together_probe (n) VALUES (7)")
        assert [int(r[0]) for r in tx.fetchall("SELECT COUNT(*) FROM together_probe")] == [7]
    assert views.read_together(_count) == 7


def test_one_statement_asked_at_once_is_asked_alone_and_never_waits(views: ViewStore) -> None:
    """For the event loop on SQLite: one statement, on the loop's connection, without a
    transaction around it (no BEGIN and COMMIT), also while another thread writes on the
    shared connection; never on PostgreSQL (its reads go over the network)."""
    count = OneQuery("SELECT COUNT(*) FROM together_probe", (), lambda rows: int(rows[0][0]))
    if views.dialect != "sqlite":
        assert views.ask_now(count) is None
        return
    assert views.ask(count) == 2
    sent: list[str] = []
    with views.transaction() as tx:
        tx.execute("INSERT INTO together_probe (n) VALUES (3)")
        begun = time.monotonic()
        assert views.ask_now(count) == (2,)  # the insert is not committed yet
        assert time.monotonic() - begun < 1.0
    assert views._now_sqlite is not None
    views._now_sqlite.set_trace_callback(sent.append)
    assert views.ask_now(count) == (3,)
    assert sent == [count.statement]  # alone: no BEGIN, no COMMIT
    assert views._now_sqlite.in_transaction is False
    with views._now_lock:  # the loop's own connection busy: no wait either
        assert views.ask_now(count) is None
    with pytest.raises(Exception, match="readonly"):  # it only reads
        views.ask_now(OneQuery("DELETE FROM together_probe", (), lambda rows: rows))
    assert views.ask(count) == 3


def test_a_read_at_once_of_a_database_in_memory_is_left_to_the_shared_connection() -> None:
    store = ViewStore(Database.from_url("sqlite:///:memory:"))
    try:
        assert store.ask_now(OneQuery("SELECT 1", (), lambda rows: rows)) is None
    finally:
        store.close()
