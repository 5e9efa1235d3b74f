"""Tamper evidence: every stored event is linked into its case's hash chain in its own
transaction, checkpoints hold a root over all cases, and `verify` finds every change made
to the store behind overleg's back (edited, deleted, moved, added rows, changed links, a
history rewritten whole) on SQLite and PostgreSQL, with no false alarm on a clean store."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError

from conftest import consented
from overleg.adapters import integrity, recorders
from overleg.adapters.eventstore import Database, insert_atomically
from overleg.adapters.integrity import Break, checkpoint, checkpoints, verify
from overleg.aggregates.values import Party, Role
from overleg.application import Overleg
from overleg.commands import GiveConsent
from overleg.policies.access import Principal, StaffRole
from overleg.streams import import_stream, importer
from tampering import read_state, stored_id, tamper, write_state

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "sample-stream.jsonl"
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


@pytest.fixture
def app(database_url: str) -> Overleg:
    application = Overleg(Database.from_url(database_url))
    import_stream(application, SAMPLE.read_text(encoding="utf-8").splitlines())
    return application


def _cases() -> list[UUID]:
    seen: dict[str, None] = {}
    for text in SAMPLE.read_text(encoding="utf-8").splitlines():
        seen.setdefault(json.loads(text)["case"], None)
    return [UUID(c) for c in seen]


def _longest(app: Overleg) -> tuple[UUID, int]:
    sizes = {case: len(app.case_events(case)) for case in _cases()}
    case = max(sizes, key=lambda c: sizes[c])
    return case, sizes[case]


def test_a_clean_store_verifies_with_a_link_for_every_event(app: Overleg) -> None:
    found = verify(app.recorder)
    assert found.ok, found.breaks
    assert found.cases == 12
    assert found.events == sum(1 for _ in SAMPLE.read_text(encoding="utf-8").splitlines())
    made = checkpoint(app.recorder, NOW)
    assert (made.cases, made.position) == (12, app.event_log.head())
    again = verify(app.recorder)
    assert again.ok and again.checkpoint == made


def test_a_command_and_a_checkpoint_made_while_verify_reads_raise_no_alarm(
    app: Overleg, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verify reads the links, the checkpoints and the events as they were at one instant:
    a command (its events and links) and a checkpoint committed while it reads are seen
    whole or not at all, never as an event without its link or a root that does not fit."""
    team = Principal("team-1", StaffRole.TEAM, region="Limburg")
    case = UUID(int=902)
    consented(app, case, team)
    read_links = integrity._linked
    written: list[int] = []

    def then_a_command(rows: object, case_id: str | None, strays: Any) -> Iterator[object]:
        links = read_links(rows, case_id, strays)  # type: ignore[arg-type]
        first = next(links)  # the events and the links are being read
        outcome = app.handle(GiveConsent(case, Party("netwerk-1", Role.NETWORK)), team)
        checkpoint(app.recorder, NOW)
        written.append(outcome.version)
        yield first
        yield from links

    monkeypatch.setattr(integrity, "_linked", then_a_command)
    found = verify(app.recorder)
    assert written, "the command was not given while verify read"
    assert found.ok, found.breaks
    monkeypatch.setattr(integrity, "_linked", read_links)
    after = verify(app.recorder)  # and seen, whole, by the next verify
    assert after.ok, after.breaks
    assert after.events == found.events + 1


def test_verify_holds_the_links_of_one_case_at_a_time(
    app: Overleg, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The events and the links are read side by side in case order: when a case is
    checked, the links read are those of that case and at most the next (never the whole
    store's), and the root is the one a checkpoint makes."""
    read_links, check = integrity._linked, integrity._check_case
    read: list[str] = []
    ahead: list[int] = []

    def counted(rows: object, case_id: str | None, strays: Any) -> Iterator[object]:
        for found in read_links(rows, case_id, strays):  # type: ignore[arg-type]
            read.append(found[0])
            yield found

    def checked(case: str, *args: Any) -> object:
        ahead.append(len(read) - read.index(case))
        return check(case, *args)

    monkeypatch.setattr(integrity, "_linked", counted)
    monkeypatch.setattr(integrity, "_check_case", checked)
    checkpoint(app.recorder, NOW)
    found = verify(app.recorder)
    assert found.ok, found.breaks
    assert found.cases == len(ahead) == len(read) == 12
    assert max(ahead) == 1, ahead  # the case's own links, none further
    assert read == sorted(read)


def _case_breaks(app: Overleg) -> list[Break]:
    """The breaks found in cases (the import's checkpoint may find the change too)."""
    return [b for b in verify(app.recorder).breaks if b.case_id is not None]


def test_an_edited_event_is_found_at_its_case_and_seq(app: Overleg) -> None:
    database = app.database
    case, _ = _longest(app)
    state = read_state(database, case, 3)
    write_state(database, case, 3, state.replace(b'"', b'"', 1) + b" ")
    (broken,) = _case_breaks(app)
    assert (broken.case_id, broken.seq, broken.what) == (str(case), 3, "changed")
    assert "content" in broken.detail
    assert verify(app.recorder, case).breaks == [broken]  # one case alone: the same
    assert any(b.what == "checkpoint" for b in verify(app.recorder).breaks)


def test_a_deleted_event_is_found(app: Overleg) -> None:
    database = app.database
    case, _ = _longest(app)
    tamper(
        database,
        "DELETE FROM {events} WHERE originator_id = ? AND originator_version = ?",
        stored_id(database, case),
        2,
    )
    (broken,) = _case_breaks(app)
    assert (broken.case_id, broken.seq, broken.what) == (str(case), 2, "deleted")
    # The last event deleted with its link leaves no gap: the checkpoint finds it.
    other = next(c for c in _cases() if c != case)
    checkpoint(app.recorder, NOW)
    last = len(app.case_events(other))
    for statement in (
        "DELETE FROM {events} WHERE originator_id = ? AND originator_version = ?",
        "DELETE FROM {chain} WHERE case_id = ? AND seq = ?",
    ):
        tamper(database, statement, stored_id(database, other), last)
    assert {b.what for b in verify(app.recorder).breaks} == {"deleted", "checkpoint"}


def test_two_swapped_events_are_found_as_moved(app: Overleg) -> None:
    database = app.database
    case, _ = _longest(app)
    second, third = read_state(database, case, 2), read_state(database, case, 3)
    write_state(database, case, 2, third)
    write_state(database, case, 3, second)
    (broken,) = _case_breaks(app)
    assert (broken.case_id, broken.seq, broken.what) == (str(case), 2, "moved")
    assert "seq 3" in broken.detail


def test_an_event_added_outside_the_service_is_found(app: Overleg) -> None:
    database = app.database
    case, size = _longest(app)
    state = read_state(database, case, size)
    topic = "overleg.case.case_closed.v1"
    columns = "(originator_id, originator_version, topic, state)"
    tamper(
        database,
        "INSERT INTO {events} " + columns + " VALUES (?, ?, ?, ?)",
        stored_id(database, case),
        size + 1,
        topic,
        state,
    )
    (broken,) = _case_breaks(app)
    assert (broken.case_id, broken.seq, broken.what) == (str(case), size + 1, "added")


def test_rows_naming_their_case_in_a_form_overleg_never_writes_are_found(app: Overleg) -> None:
    """An event or a link whose case id is not written as overleg writes it (on SQLite a
    text column takes anything) is reported where it is, and every other case is checked
    as before: verify reads the store in case order, and such a row is not in that order."""
    database = app.database
    case, size = _longest(app)
    state = read_state(database, case, size)
    topic = "overleg.case.case_closed.v1"
    columns = "(originator_id, originator_version, topic, state)"
    insert = "INSERT INTO {events} " + columns + " VALUES (?, ?, ?, ?)"
    if database.backend == "postgresql":  # a uuid column: only a case id, always one form
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            tamper(database, insert, "not-a-case", 1, topic, state)
        tamper(database, insert, str(case).upper(), size + 1, topic, state)
        (broken,) = _case_breaks(app)
        assert (broken.case_id, broken.seq, broken.what) == (str(case), size + 1, "added")
        return
    upper = case.hex.upper()
    tamper(database, insert, upper, size + 1, topic, state)
    tamper(database, insert, "not-a-case", 1, topic, state)
    for stored in (str(case), "not-a-case"):
        tamper(
            database,
            "INSERT INTO {chain} (case_id, seq, link, digest) VALUES (?, ?, ?, ?)",
            stored,
            1,
            b"x" * 32,
            b"y" * 32,
        )
    expected = [
        (upper, size + 1, "added"),
        ("not-a-case", 1, "added"),
        (str(case), 1, "link-changed"),
        ("not-a-case", 1, "link-changed"),
    ]
    found = verify(app.recorder)
    assert found.cases == 12
    assert sorted((b.case_id, b.seq, b.what) for b in found.breaks) == sorted(expected)
    assert all("never writes" in b.detail for b in found.breaks)
    made = checkpoint(app.recorder, NOW)  # such rows are no case's head
    assert made.cases == 12
    again = verify(app.recorder)
    assert again.checkpoint == made
    assert sorted((b.case_id, b.seq, b.what) for b in again.breaks) == sorted(expected)


def test_a_history_rewritten_with_its_links_is_found_by_the_checkpoint(app: Overleg) -> None:
    database = app.database
    case, _ = _longest(app)
    checkpoint(app.recorder, NOW)
    state = read_state(database, case, 2) + b" "
    write_state(database, case, 2, state)
    # Whoever edits knows the chain: every link of the case from seq 2 on made again.
    tamper(
        database, "DELETE FROM {chain} WHERE case_id = ? AND seq >= ?", stored_id(database, case), 2
    )
    rewritten = Overleg(Database.from_url(_url(database)))
    try:
        stored = rewritten.recorder.select_events(case)
        from overleg.adapters.chain import GENESIS, content_digest, link

        previous = GENESIS
        for event in stored:
            previous = link(previous, str(case), event.originator_version, event.topic, event.state)
            if event.originator_version >= 2:
                tamper(
                    database,
                    "INSERT INTO {chain} (case_id, seq, link, digest) VALUES (?, ?, ?, ?)",
                    stored_id(database, case),
                    event.originator_version,
                    previous,
                    content_digest(event.topic, event.state),
                )
    finally:
        rewritten.close()
    (broken,) = verify(app.recorder).breaks
    assert broken.what == "checkpoint"
    assert "root" in broken.detail


def test_a_changed_link_is_found(app: Overleg) -> None:
    database = app.database
    case, _ = _longest(app)
    tamper(
        database,
        "UPDATE {chain} SET link = ? WHERE case_id = ? AND seq = ?",
        bytes(32),
        stored_id(database, case),
        4,
    )
    (broken,) = _case_breaks(app)
    assert (broken.case_id, broken.seq, broken.what) == (str(case), 4, "link-changed")


def test_commands_and_imports_link_their_events_in_their_transaction(app: Overleg) -> None:
    before = len(checkpoints(app.recorder))
    case, size = _longest(app)
    events = app.case_events(case)
    assert len(events) == size
    found = verify(app.recorder, case)
    assert found.ok and found.events == size
    assert len(checkpoints(app.recorder)) == before


def _url(database: Database) -> str:
    if database.backend == "sqlite":
        return f"sqlite:///{database.sqlite_path}"
    return (
        f"postgresql://{database.user}@{database.host}:{database.port}/{database.dbname}"
        f"?schema={database.schema}"
    )


# -- commands that meet a damaged store ---------------------------------------------------------


def _edit(database: Database, case: UUID, seq: int, **changes: object) -> None:
    state = json.loads(read_state(database, case, seq))
    state.update(changes)
    write_state(database, case, seq, json.dumps(state).encode())


def test_a_damaged_case_is_refused_by_every_reader_and_left_out_of_projections(
    app: Overleg,
) -> None:
    from overleg.adapters.eventstore import DamagedStore
    from overleg.streams import export_stream

    database = app.database
    case, _ = _longest(app)
    _edit(database, case, 1, region="Nowhere")
    with pytest.raises(DamagedStore) as raised:
        app.replay(case)
    assert (raised.value.case_id, raised.value.seq) == (case, 1)
    assert "overleg verify" in str(raised.value)
    with pytest.raises(DamagedStore):
        list(export_stream(app))
    with pytest.raises(DamagedStore):
        import_stream(app, SAMPLE.read_text(encoding="utf-8").splitlines())
    # The projections read past it: every other case is projected, that one event is kept
    # aside with its place in the log.
    from overleg.adapters.views import ViewStore
    from overleg.projections.runner import Projector

    views = ViewStore(app.database)
    try:
        projector = Projector(app.event_log, views)
        projector.catch_up()
        assert set(projector.positions().values()) == {app.event_log.head()}
        unreadable = [f for f in projector.failures() if f.event_type == "unreadable"]
        assert {(f.case_id, f.seq, f.error) for f in unreadable} == {(str(case), 1, "DamagedStore")}
        assert {f.projection for f in unreadable} == set(projector.projections)
    finally:
        views.close()


def test_a_deleted_event_stops_replay_and_export_naming_the_gap(app: Overleg) -> None:
    from overleg.adapters.eventstore import DamagedStore
    from overleg.streams import export_stream

    database = app.database
    case, _ = _longest(app)
    tamper(
        database,
        "DELETE FROM {events} WHERE originator_id = ? AND originator_version = ?",
        stored_id(database, case),
        2,
    )
    with pytest.raises(DamagedStore, match="seq 2 is missing"):
        app.replay(case)
    with pytest.raises(DamagedStore, match="seq 2 is missing"):
        list(export_stream(app))


def test_unreadable_bytes_are_a_damaged_store(app: Overleg) -> None:
    from overleg.adapters.eventstore import DamagedStore

    database = app.database
    case, _ = _longest(app)
    write_state(database, case, 2, b"\xff\x00 not json")
    with pytest.raises(DamagedStore, match="cannot be read"):
        app.replay(case)


def test_every_import_that_writes_leaves_a_checkpoint(database_url: str) -> None:
    application = Overleg(Database.from_url(database_url))
    try:
        lines = SAMPLE.read_text(encoding="utf-8").splitlines()
        first = import_stream(application, lines[:40])
        assert first.checkpoint is not None
        assert first.checkpoint.position == application.event_log.head()
        again = import_stream(application, lines)
        assert again.checkpoint is not None and again.checkpoint.number == 2
        assert import_stream(application, lines).checkpoint is None  # wrote nothing
        assert [c.number for c in checkpoints(application.recorder)] == [1, 2]
        assert verify(application.recorder).ok
    finally:
        application.close()


def test_cases_recorded_before_links_were_kept_are_reported_and_can_be_linked(
    app: Overleg,
) -> None:
    from overleg.adapters.integrity import link_unlinked

    database = app.database
    case, size = _longest(app)
    tamper(database, "DELETE FROM {chain} WHERE case_id = ?", stored_id(database, case))
    found = verify(app.recorder).breaks
    assert {(b.case_id, b.what) for b in found} == {(str(case), "unlinked")}
    assert link_unlinked(app.recorder) == size
    assert verify(app.recorder).ok  # the same events give the same links and root again


def test_a_command_on_a_case_recorded_before_links_were_kept_chains_it_first(
    database_url: str,
) -> None:
    """A case without links (recorded before they were kept) is chained from its stored
    events by the next command on it, in the command's transaction: then every event of it
    has its link, the command's too."""
    team = Principal("team-1", StaffRole.TEAM, region="Limburg")
    case = UUID(int=901)
    first = Overleg(Database.from_url(database_url))
    try:
        version = consented(first, case, team)
    finally:
        first.close()
    tamper(first.database, "DELETE FROM {chain} WHERE case_id = ?", stored_id(first.database, case))
    fresh = Overleg(Database.from_url(database_url))  # remembers no link of the case
    try:
        given = fresh.handle(GiveConsent(case, Party("netwerk-1", Role.NETWORK)), team)
        found = verify(fresh.recorder, case)
    finally:
        fresh.close()
    assert given.version == version + 1
    assert found.ok, found.breaks
    assert found.events == version + 1


@pytest.mark.parametrize("carried", [None, 1])
def test_an_import_chains_cases_across_its_batches_from_the_links_it_wrote(
    database_url: str, monkeypatch: pytest.MonkeyPatch, carried: int | None
) -> None:
    """An import's batches carry the cases' last links to the next: none is looked up in
    the store while it writes a new store, unless fewer are carried than cases go on."""
    monkeypatch.setattr(importer, "BATCH", 7)  # every case spans batches
    if carried is not None:
        monkeypatch.setattr(recorders, "LINKS_CARRIED", carried)
    looked_up: list[str] = []
    application = Overleg(Database.from_url(database_url))
    chaining = type(application.recorder)
    original = chaining._stored_links  # type: ignore[attr-defined]

    def counted(self: object, cursor: object, wanted: Mapping[str, int]) -> dict[str, bytes]:
        looked_up.extend(wanted)
        found: dict[str, bytes] = original(self, cursor, wanted)
        assert set(found) == set(wanted)  # every case's last link is stored, and found
        return found

    monkeypatch.setattr(chaining, "_stored_links", counted)
    keyring = application.recorder.keyring
    assert keyring is not None
    keyed: list[str] = []
    pending = keyring.pending

    def written(case_ids: Iterable[str]) -> list[tuple[str, str, bytes]]:
        found = pending(case_ids)
        keyed.extend(c for c, _, _ in found)
        return found

    monkeypatch.setattr(keyring, "pending", written)
    try:
        import_stream(application, SAMPLE.read_text(encoding="utf-8").splitlines())
        found = verify(application.recorder)
        stored = application.recorder.select_keys([str(c) for c in _cases()])
    finally:
        application.close()
    assert found.ok, found.breaks
    assert (len(looked_up) == 0) is (carried is None)
    assert len(stored) == 12
    if carried is None:  # each case's key written once, with its first events
        assert sorted(keyed) == sorted(stored)


def test_an_import_batch_that_meets_a_stored_event_stores_nothing(app: Overleg) -> None:
    """A batch is written whole or not at all, copied in or not: an event already stored
    (another writer's, say) refuses the whole transaction."""
    head = app.event_log.head()
    case, _ = _longest(app)
    stored = app.recorder.select_events(case)
    with pytest.raises(IntegrityError):
        insert_atomically(app.recorder, [list(stored[-1:])])
    assert app.event_log.head() == head
    assert verify(app.recorder).ok
