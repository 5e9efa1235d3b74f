"""A command starts from the case the last command on it saved, and chains from the link it
wrote, only while the store holds nothing newer: another process's write, a refused or
failed command and an erasure each send the next command back to the store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg.sql import SQL, Composable, Composed, Identifier

from conftest import consented, reopen
from overleg.adapters.eventstore import Database
from overleg.adapters.integrity import verify
from overleg.adapters.recorders import PostgresEventRecorder, _render_statements
from overleg.aggregates.case import Case
from overleg.aggregates.errors import CaseRuleBroken
from overleg.aggregates.values import (
    Agreement,
    Attendance,
    Party,
    Role,
)
from overleg.application import Overleg, Replays
from overleg.commands import (
    AgreeWorkplan,
    AppointChair,
    CloseCase,
    EraseCase,
    GiveConsent,
    HoldMeeting,
    ReportBottleneck,
)
from overleg.policies.access import Operator, Principal, StaffRole

TEAM = Principal("team-1", StaffRole.TEAM, region="Limburg")
CHAIR = Principal("vz-1", StaffRole.CHAIR)
CASE = UUID(int=41)


def state(case: Case | None) -> dict[str, Any]:
    """What a case is, without what it has still to save."""
    assert case is not None
    return {k: v for k, v in vars(case).items() if k != "_pending_events"}


def started(app: Overleg, case_id: UUID = CASE) -> date:
    consented(app, case_id, TEAM)
    app.handle(AppointChair(case_id, CHAIR.ref), TEAM)
    return app.get_case(case_id).requested_on


@pytest.fixture
def other(database_url: str) -> Iterator[Overleg]:
    """A second application on the same store, as another process is."""
    app = reopen(database_url)
    try:
        yield app
    finally:
        app.close()


def test_the_case_kept_for_the_next_command_is_the_case_its_events_make(store: Overleg) -> None:
    day = started(store)
    store.handle(HoldMeeting(CASE, day, "CLB", Attendance(True, False, None, ("hv-1",))), CHAIR)
    store.handle(
        AgreeWorkplan(
            CASE,
            meeting=1,
            agreements=[Agreement("hv-1", "Wekelijks overleg met school", None, None)],
            coordinator="hv-1",
            crisis_plan=True,
        ),
        CHAIR,
    )
    store.handle(ReportBottleneck(CASE, "wachtlijsten", "Geen plaats binnen 3 maanden"), CHAIR)
    kept = store.drafts.get(CASE, 6)
    assert kept is not None  # the workplan's command left the case it saved
    assert state(kept) == state(store.replay(CASE)[0])
    outcome = store.handle(GiveConsent(CASE, Party("netwerk-1", Role.NETWORK)), TEAM)
    assert outcome.version == 7
    assert store.drafts.get(CASE, 7) is not None  # the next version, in its place
    assert verify(store.recorder, CASE).ok


def test_a_write_of_another_process_sends_the_next_command_to_the_store(
    store: Overleg, other: Overleg
) -> None:
    started(store)
    assert store.drafts.get(CASE, 3) is not None
    other.handle(GiveConsent(CASE, Party("netwerk-1", Role.NETWORK)), TEAM)  # version 4
    # This process's kept case (version 3) and remembered link (seq 3) are behind the store:
    # the command starts from version 4 and chains from its link, as the store holds them.
    outcome = store.handle(GiveConsent(CASE, Party("netwerk-2", Role.NETWORK)), TEAM)
    assert outcome.version == 5
    assert {"netwerk-1", "netwerk-2"} <= store.get_case(CASE).parties
    assert state(store.drafts.get(CASE, 5)) == state(store.replay(CASE)[0])
    assert verify(store.recorder, CASE).ok


def test_a_refused_command_leaves_no_case_behind_and_the_next_one_reads_the_store(
    store: Overleg,
) -> None:
    started(store)
    no_meeting = AgreeWorkplan(CASE, 1, [Agreement("hv-1", "x", None, None)], None, False)
    with pytest.raises(CaseRuleBroken):
        store.handle(no_meeting, CHAIR)  # no meeting was held
    assert not store.drafts.holds(CASE)
    store.handle(GiveConsent(CASE, Party("netwerk-1", Role.NETWORK)), TEAM)
    assert store.get_case(CASE).chair == CHAIR.ref
    assert state(store.drafts.get(CASE, 4)) == state(store.replay(CASE)[0])


def test_a_link_of_a_write_that_failed_is_never_chained_from(
    store: Overleg, other: Overleg, monkeypatch: pytest.MonkeyPatch
) -> None:
    started(store)
    recorder: Any = store.recorder
    original = recorder._write_keys

    def fail_after_the_link(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the write fails after its link was made")

    monkeypatch.setattr(recorder, "_write_keys", fail_after_the_link)
    with pytest.raises(RuntimeError):
        store.handle(GiveConsent(CASE, Party("netwerk-1", Role.NETWORK)), TEAM)
    monkeypatch.setattr(recorder, "_write_keys", original)
    # Another process stores a different fourth event; the link this process made for its
    # own fourth event (rolled back) must not be the one its next event chains from.
    other.handle(GiveConsent(CASE, Party("netwerk-2", Role.NETWORK)), TEAM)
    store.handle(GiveConsent(CASE, Party("netwerk-3", Role.NETWORK)), TEAM)
    assert store.get_case(CASE).version == 5
    assert verify(store.recorder, CASE).ok


def test_a_command_on_a_case_another_process_wrote_reads_its_last_link_with_its_events(
    store: Overleg, other: Overleg, monkeypatch: pytest.MonkeyPatch
) -> None:
    started(other)  # this process remembers nothing of the case
    recorder: Any = store.recorder
    asked: list[object] = []
    stored_links = recorder._stored_links
    monkeypatch.setattr(
        recorder, "_stored_links", lambda *a: asked.append(a[1]) or stored_links(*a)
    )
    outcome = store.handle(GiveConsent(CASE, Party("netwerk-1", Role.NETWORK)), TEAM)
    assert outcome.version == 4
    postgres = isinstance(recorder, PostgresEventRecorder)
    # On PostgreSQL the last link came with the case's events, in their one round trip, and
    # the write asked for none; SQLite reads it in the write's own transaction.
    assert asked == ([] if postgres else [{str(CASE): 3}])
    # A link so read is only ever the store's own: the other process writes the next event,
    # and this one chains from that event's link, not from the one it read before.
    other.handle(GiveConsent(CASE, Party("netwerk-2", Role.NETWORK)), TEAM)
    store.handle(GiveConsent(CASE, Party("netwerk-3", Role.NETWORK)), TEAM)
    assert store.get_case(CASE).version == 6
    assert verify(store.recorder, CASE).ok


def test_an_erased_case_is_not_kept_and_refuses_the_next_command(store: Overleg) -> None:
    started(store)
    store.handle(CloseCase(CASE, "Afgerond"), TEAM)
    store.handle(EraseCase(CASE, "verzoek van de cliënt"), Operator("operator-1"))
    assert not store.drafts.holds(CASE)  # its personal data left this process's memory
    with pytest.raises(CaseRuleBroken) as refused:
        store.handle(GiveConsent(CASE, Party("netwerk-1", Role.NETWORK)), TEAM)
    assert refused.value.rule == "case-erased"


def test_kept_cases_take_turns_and_expire() -> None:
    kept: Replays[Any] = Replays(size=2, lifetime=60.0)
    for n in range(3):
        kept.keep(UUID(int=n), _Versioned(1))
    assert not kept.holds(UUID(int=0))  # the first kept went beyond the size
    assert kept.take(UUID(int=1), 2) is None  # another version: not given, and dropped
    assert not kept.holds(UUID(int=1))
    taken = kept.take(UUID(int=2), 1)
    assert taken is not None and not kept.holds(UUID(int=2))  # taken: no longer kept
    expiring: Replays[Any] = Replays(size=2, lifetime=0.0)
    expiring.keep(UUID(int=1), _Versioned(1))
    assert expiring.take(UUID(int=1), 1) is None  # its lifetime is over


class _Versioned:
    def __init__(self, version: int) -> None:
        self.version = version


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_statements_rendered_once_quote_names_as_the_server_does(database_url: str) -> None:
    """The recorder renders its composed statements once (``_render_statements``), quoting
    names without a connection: that quoting must be the server's own, for any name."""
    names = ["overleg_events", "Mixed_Case", 'with "quotes"', "naïef schema", "a.b"]
    composed = [
        SQL("LOCK TABLE {s}.{t} IN EXCLUSIVE MODE; NOTIFY {t}").format(
            s=Identifier(name), t=Identifier(name)
        )
        for name in names
    ]
    holder = SimpleNamespace(one=composed[0], many=composed, text="kept as it is")
    _render_statements(holder)
    with psycopg.connect(Database.from_url(database_url).conninfo()) as conn:
        assert holder.one.as_string(conn) == composed[0].as_string(conn)
        assert [s.as_string(conn) for s in holder.many] == [c.as_string(conn) for c in composed]
    assert holder.text == "kept as it is"
    assert isinstance(holder.one, SQL)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_recorder_keeps_no_statement_to_compose_again(store: Overleg) -> None:
    """Every statement the recorder keeps is rendered text, and commands still run on it."""
    kept = [
        value
        for value in vars(store.recorder).values()
        if isinstance(value, Composable) or (isinstance(value, list) and value)
    ]
    assert kept
    for value in kept:
        for statement in value if isinstance(value, list) else [value]:
            assert not isinstance(statement, Composed), statement
    started(store)
    before = store.get_case(CASE).version
    store.handle(ReportBottleneck(CASE, "wachtlijsten", "te lang"), CHAIR)
    assert store.get_case(CASE).version == before + 1
