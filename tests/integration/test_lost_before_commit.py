"""A connection that broke at the end of a write transaction, with nothing raised in the
block, is reported as a failure and the write tried again: never as a write stored.

psycopg ends such a block without a commit and without a word; these tests break the
connection so (the server ends it, and its last words are read by a read that raises
nothing, as a pipeline's results are read) and hold every write path against it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg.pq import ConnStatus

from conftest import POSTGRES_URL, consented
from overleg.adapters.commits import NotCommitted, committed
from overleg.adapters.eventstore import Database
from overleg.adapters.views import ViewStore
from overleg.application import Overleg
from overleg.commands import AppointChair
from overleg.policies.access import Principal, StaffRole
from overleg.streams import import_stream

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

SAMPLE = Path(__file__).parents[2] / "samples" / "sample-stream.jsonl"
TEAM = Principal("team-1", StaffRole.TEAM, region="Limburg")
CASE = UUID(int=4242)


def broken_quietly(conn: psycopg.Connection[Any]) -> None:
    """End ``conn``'s session from the server, and read its last words without raising."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
    deadline = time.monotonic() + 5
    while conn.pgconn.status == ConnStatus.OK and time.monotonic() < deadline:
        time.sleep(0.02)
        with suppress(psycopg.OperationalError):
            conn.pgconn.consume_input()
    assert conn.pgconn.status == ConnStatus.BAD


PROBE = f"lost_probe_{uuid4().hex[:12]}"  # a table of this run's own


@pytest.fixture
def probe(database_url: str) -> Iterator[str]:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f"CREATE TABLE public.{PROBE} (n INTEGER)")
    try:
        yield database_url
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f"DROP TABLE public.{PROBE}")


def _insert(n: int) -> str:
    return f"INSERT INTO public.{PROBE} VALUES ({n})"


def _rows() -> int:
    with psycopg.connect(POSTGRES_URL) as conn:
        row = conn.execute(f"SELECT COUNT(*) FROM public.{PROBE}").fetchone()
    return int(row[0]) if row else -1


def test_psycopg_ends_such_a_block_without_a_commit_and_committed_raises(probe: str) -> None:
    with psycopg.connect(POSTGRES_URL) as conn:
        with conn.transaction() as tx:  # the premise: psycopg says nothing
            conn.execute(_insert(1))
            broken_quietly(conn)
        assert tx.status is tx.Status.FAILED
    assert _rows() == 0
    with psycopg.connect(POSTGRES_URL) as conn, pytest.raises(NotCommitted), committed(conn):
        conn.execute(_insert(1))
        broken_quietly(conn)
    with psycopg.connect(POSTGRES_URL) as conn, committed(conn):
        conn.execute(_insert(2))
    assert _rows() == 1


def test_a_command_whose_connection_broke_before_its_commit_is_written_again(
    store: Overleg, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = consented(store, CASE, TEAM)
    recorder: Any = store.recorder
    write, broke = recorder._write_command, []

    def then_broken(conn: psycopg.Connection[Any], *args: Any, **kwargs: Any) -> Any:
        written = write(conn, *args, **kwargs)
        if not broke:
            broke.append(conn.info.backend_pid)
            broken_quietly(conn)
        return written

    monkeypatch.setattr(recorder, "_write_command", then_broken)
    outcome = store.handle(AppointChair(CASE, "vz-1"), TEAM, version)
    assert broke and outcome.version == version + 1
    assert store.get_case(CASE).version == version + 1  # stored, and once


def test_a_projection_write_whose_connection_broke_before_its_commit_raises(
    probe: str,
) -> None:
    views = ViewStore(Database.from_url(probe))
    try:
        with pytest.raises(Exception, match="nothing was committed"), views.transaction() as tx:
            tx.execute(_insert(1))
            pg = views._pg
            assert pg is not None
            broken_quietly(pg)
        assert _rows() == 0
        with views.transaction() as tx:  # the next one has a connection again
            tx.execute(_insert(2))
        assert _rows() == 1
    finally:
        views.close()


def test_an_import_whose_connection_broke_before_its_commit_reports_nothing_stored(
    store: Overleg, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder: Any = store.recorder
    insert, broke = recorder.insert_batch, []

    def then_broken(cursor: Any, *args: Any, **kwargs: Any) -> Any:
        inserted = insert(cursor, *args, **kwargs)
        if not broke:
            broke.append(True)
            broken_quietly(cursor.connection)
        return inserted

    monkeypatch.setattr(recorder, "insert_batch", then_broken)
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()[:20]
    with pytest.raises(Exception, match="nothing was committed"):
        import_stream(store, lines)
    assert broke and store.stored_cases() == set()
    monkeypatch.undo()
    assert import_stream(store, lines).new_events == 20  # nothing half-written: all again
