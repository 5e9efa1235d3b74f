"""A case kept for readers is answered without asking the store only while the store's
watch vouches that nothing was written since it was confirmed: never an old version, a
write of another process included, and never after this process's own command on it."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast
from uuid import UUID

import psycopg
import pytest

from conftest import consented, reopen
from overleg.adapters import listening
from overleg.adapters.eventstore import Database
from overleg.adapters.watch import AnnouncedWrites, SQLiteWrites, watch_for
from overleg.aggregates.values import Party, Role
from overleg.application import Overleg
from overleg.commands import GiveConsent
from overleg.policies.access import Principal, StaffRole
from overleg.streams import import_stream

SAMPLE = Path(__file__).parents[2] / "samples" / "sample-stream.jsonl"


TEAM = Principal("team-1", StaffRole.TEAM, region="Limburg")
CASE = UUID(int=43)


def _consent(app: Overleg, n: int) -> int:
    """One more consent recorded on the case; the version it made."""
    return app.handle(GiveConsent(CASE, Party(f"netwerk-{n}", Role.NETWORK)), TEAM).version


def _cases() -> dict[UUID, list[str]]:
    by_case: defaultdict[str, list[str]] = defaultdict(list)
    for line in SAMPLE.read_text(encoding="utf-8").splitlines():
        by_case[json.loads(line)["case"]].append(line)
    return {UUID(case): lines for case, lines in by_case.items()}


@pytest.fixture
def watched(store: Overleg) -> Iterator[Overleg]:
    table = store.commands.events_table_name
    store.writes = watch_for(store.database, store.event_log.channel, table)
    assert store.writes is not None
    try:
        yield store
    finally:
        store.writes.close()


def eventually(look: Callable[[], object], wanted: object) -> None:
    """``look()`` gives ``wanted`` within 10 s (an announcement arrives after its commit)."""
    deadline = time.monotonic() + 10
    while (found := look()) != wanted and time.monotonic() < deadline:
        time.sleep(0.01)
    assert found == wanted


def test_a_kept_case_is_known_current_until_another_process_writes(
    watched: Overleg, database_url: str
) -> None:
    cases = _cases()
    (case_id, lines), (other_id, other_lines) = list(cases.items())[:2]
    half = len(lines) // 2
    import_stream(watched, lines[:half] + other_lines)
    assert watched.known_read(case_id) is None  # not read yet
    first = watched.read(case_id)
    assert first is not None
    eventually(lambda: watched.known_read(case_id), first)  # its own import, then quiet
    assert watched.known_read(other_id) is None  # kept only once read
    other = reopen(database_url)  # another process writes the rest of the case
    try:
        import_stream(other, lines[half:])
    finally:
        other.close()
    eventually(lambda: watched.known_read(case_id), None)  # not vouched for any more
    now = watched.read(case_id)
    assert now is not None and now.version == len(lines)
    eventually(lambda: watched.known_read(case_id), now)


def test_a_command_of_this_process_is_never_followed_by_the_old_case(watched: Overleg) -> None:
    consented(watched, CASE, TEAM)
    kept = watched.read(CASE)
    assert kept is not None
    eventually(lambda: watched.known_read(CASE), kept)
    version = _consent(watched, 1)
    assert watched.known_read(CASE) is None  # at once: not after the announcement
    again = watched.read(CASE)
    assert again is not None and again.version == version == kept.version + 1


def test_a_case_not_kept_asks_the_watch_nothing(
    watched: Overleg, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every read on the event loop first looks for a kept case: one that is not kept is
    told at once, without the watch's mark (a statement on SQLite)."""
    consented(watched, CASE, TEAM)
    writes = watched.writes
    assert writes is not None
    asked: list[object] = []
    mark_now = writes.mark_now

    def counted() -> object:
        asked.append(mark_now())
        return asked[-1]

    monkeypatch.setattr(writes, "mark_now", counted)
    assert watched.known_read(UUID(int=44)) is None  # never read
    assert asked == []
    kept = watched.read(CASE)
    eventually(lambda: watched.known_read(CASE), kept)
    assert asked != []


def test_the_mark_is_not_given_on_the_event_loop_while_another_thread_takes_it(
    watched: Overleg,
) -> None:
    writes = watched.writes
    assert isinstance(writes, SQLiteWrites | AnnouncedWrites)
    assert writes.mark() is not None  # PostgreSQL: listening from the first mark on
    assert writes.mark_now() is not None
    with writes._lock:  # a look under way in another thread: no wait
        assert writes.mark_now() is None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_on_sqlite_the_mark_moves_with_every_event_only(watched: Overleg) -> None:
    """The mark is the last event's row id: commits that add no event (the projections',
    the read log's) leave it where it was, and it is read again only after a commit."""
    writes = watched.writes
    assert isinstance(writes, SQLiteWrites)
    consented(watched, CASE, TEAM)
    sent: list[str] = []
    writes._conn.set_trace_callback(sent.append)
    before = writes.mark_now()
    assert writes.mark_now() == before
    with sqlite3.connect(watched.database.sqlite_path) as other:  # no event: the same mark
        other.execute("CREATE TABLE IF NOT EXISTS watch_probe (n INTEGER)")
        other.execute("INSERT INTO watch_probe VALUES (1)")
    assert writes.mark_now() == before
    assert sum("MAX(rowid)" in statement for statement in sent) == 2  # first, after the commit
    _consent(watched, 1)  # one event
    assert writes.mark_now() == cast(int, before) + 1


def test_a_database_in_memory_is_not_watched() -> None:
    assert watch_for(Database.from_url("sqlite:///:memory:"), None, "stored_events") is None


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_announcements_lost_vouch_for_nothing_until_it_listens_again(
    watched: Overleg, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes = watched.writes
    assert isinstance(writes, AnnouncedWrites)
    monkeypatch.setattr(listening, "RETRY_SECONDS", 0.3)
    monkeypatch.setattr(listening, "AGE", 60.0)
    case_id, lines = next(iter(_cases().items()))
    import_stream(watched, lines)
    kept = watched.read(case_id)
    eventually(lambda: watched.known_read(case_id), kept)
    listener = writes._conn
    assert listener is not None
    with psycopg.connect(watched.database.conninfo(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (listener.info.backend_pid,))
    eventually(lambda: watched.known_read(case_id), None)  # the loss is found
    assert writes.mark() is None  # not yet time to connect again
    time.sleep(0.35)
    assert writes.mark() is not None  # listening again: a new mark
    assert watched.known_read(case_id) is None  # what was confirmed before is asked again
    assert watched.read(case_id) is kept  # the store still holds that version
    eventually(lambda: watched.known_read(case_id), kept)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_mark_older_than_its_age_vouches_for_nothing(
    watched: Overleg, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listening, "AGE", 60.0)
    case_id, lines = next(iter(_cases().items()))
    import_stream(watched, lines)
    kept = watched.read(case_id)
    eventually(lambda: watched.known_read(case_id), kept)
    monkeypatch.setattr(listening, "AGE", 0.0)  # a listener gone silent: marks age out
    assert watched.known_read(case_id) is None


def test_readers_on_many_threads_never_get_an_older_version(watched: Overleg) -> None:
    """Reads on threads and looks as from the event loop while commands write: every case
    given is at least as new as the last command answered before the look began."""
    answered = [consented(watched, CASE, TEAM)]
    stop = threading.Event()
    wrong: list[str] = []

    def look() -> None:
        while not stop.is_set():
            floor = answered[-1]
            found = watched.known_read(CASE) or watched.read(CASE)
            if found is not None and found.version < floor:
                wrong.append(f"version {found.version} after {floor} was answered")

    lookers = [threading.Thread(target=look) for _ in range(3)]
    for thread in lookers:
        thread.start()
    try:
        for n in range(15):
            answered.append(_consent(watched, n))
    finally:
        stop.set()
        for thread in lookers:
            thread.join()
    assert wrong == []
    assert watched.read(CASE) is not None


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_command_of_this_process_moves_the_mark_before_its_announcement_arrives(
    watched: Overleg, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a reader kept under the mark (an answer read from the projections) is not given
    after this process's own command, even before the command's announcement is taken."""
    consented(watched, CASE, TEAM)
    assert watched.writes is not None
    eventually(watched.writes.mark_now, watched.writes.mark())  # quiet: nothing announced
    before = watched.writes.mark_now()
    assert before is not None
    watched.writes.touched()
    assert watched.writes.mark_now() not in (None, before)
    touched: list[int] = []
    real = watched.writes.touched
    monkeypatch.setattr(watched.writes, "touched", lambda: touched.append(1) or real())
    _consent(watched, 1)
    assert touched == [1]  # by the command itself, as its commit returns
