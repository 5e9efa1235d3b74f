"""A case not kept is answered from the case view, without a replay of its events, where the
view says all: for every caller (the view holds what access decisions on reading ask of a
case, a professional's part and a municipality included), when the view holds every event
of the case (on SQLite the service keeps the view itself and knows it holds the log's head;
on PostgreSQL the one statement that reads the view checks the case's last seq). Else its
events answer, as before.

Every answer from the view is also checked, throughout the suite, against the answer its
events give (``tests/conftest.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from api_client import Walk, auth, settings_for
from fastapi.testclient import TestClient
from test_api import _thread_handoffs

from overleg.api.app import create_app
from overleg.api.routers import cases
from overleg.application import REPLAY_LIFETIME
from overleg.bootstrap import Services, bootstrap
from overleg.settings import Settings


def _services(client: TestClient) -> Services:
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    return services


def _count_replays(services: Services, monkeypatch: pytest.MonkeyPatch) -> list[UUID]:
    """The cases replayed from the store from now on, in order."""
    replayed: list[UUID] = []
    real: Callable[[UUID], Any] = services.app.replay

    def counted(case_id: UUID) -> Any:
        replayed.append(case_id)
        return real(case_id)

    monkeypatch.setattr(services.app, "replay", counted)
    return replayed


def _cold_read(client: TestClient, walk: Walk, who: dict[str, str]) -> Any:
    """The case read as a reader finds it when nothing of it is kept."""
    _services(client).app.replays.forget(UUID(walk.case_id))
    return client.get(f"/cases/{walk.case_id}", headers=who)


def _gone_wrong(
    services: Services, failure: tuple[str, str, int, str], change: tuple[str, tuple[Any, ...]]
) -> None:
    """A projection's rows of a case gone wrong (``change``), with the failure the projector
    records when it sets an event aside (projection, case, seq, event type)."""
    with services.views.transaction() as tx:
        tx.execute(
            "INSERT INTO projection_failure (projection, position, case_id, seq, event_type,"
            " error, at) VALUES (?, 999999, ?, ?, ?, 'ValueError', '2026-01-01T00:00:00+00:00')",
            failure,
        )
        tx.execute(*change)


def _held(walk: Walk) -> None:
    walk.up_to_chair()
    assert walk.hold_meeting().status_code == 201


def test_a_case_not_kept_is_answered_from_its_view_for_every_caller_with_a_part(
    client: TestClient, settings: Settings, walk: Walk, monkeypatch: pytest.MonkeyPatch
) -> None:
    _held(walk)
    services = _services(client)
    replayed = _count_replays(services, monkeypatch)
    auditor = auth(settings, "auditor", "auditor-1")
    professional = auth(settings, "professional", "hulpverlener-1")  # present at the meeting
    for who in (auditor, walk.team, walk.chair, professional):
        answer = _cold_read(client, walk, who)
        assert answer.status_code == 200, answer.text
        assert answer.headers["ETag"] == f'"{walk.version}"'
        assert answer.json()["meetings_held"] == 1
    assert replayed == []
    reads = client.get(f"/cases/{walk.case_id}/reads", headers=auditor).json()
    readers = [r["reader"] for r in reads if r["what"] == "case"]
    assert readers[-4:] == ["auditor-1", "team-antwerpen-1", "voorzitter-1", "hulpverlener-1"]


def test_a_case_the_caller_has_no_part_in_is_not_found_either_way(
    client: TestClient, settings: Settings, walk: Walk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not found, as for a case that does not exist; where the view holds the case, it says
    so without a replay."""
    _held(walk)
    replayed = _count_replays(_services(client), monkeypatch)
    elsewhere = auth(settings, "team", "team-limburg-1", "Limburg")
    other_chair = auth(settings, "chair", "voorzitter-2")
    stranger = auth(settings, "professional", "hulpverlener-9")  # named nowhere in the case
    for who in (elsewhere, other_chair, stranger):
        answer = _cold_read(client, walk, who)
        assert answer.status_code == 404, answer.text
        history = client.get(f"/cases/{walk.case_id}/history", headers=who)
        assert history.status_code == 404, history.text
    assert replayed == []
    unknown = client.get(f"/cases/{UUID(int=5)}", headers=auth(settings, "auditor", "a-1"))
    assert unknown.status_code == 404


def test_a_view_that_set_an_event_of_the_case_aside_is_not_trusted(
    client: TestClient, settings: Settings, walk: Walk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An event the view could not apply leaves the case's view incomplete: its events
    answer (the auditor still reads where the case stands)."""
    _held(walk)
    services = _services(client)
    services.fresh_views()
    _gone_wrong(
        services,
        ("case_view", walk.case_id, 5, "MeetingHeld"),
        ("UPDATE case_view SET meetings_held = 0 WHERE case_id = ?", (walk.case_id,)),
    )
    replayed = _count_replays(services, monkeypatch)
    answer = _cold_read(client, walk, auth(settings, "auditor", "auditor-1"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["meetings_held"] == 1
    assert replayed == [UUID(walk.case_id)]


def test_a_change_the_view_has_not_caught_up_with_is_in_the_answer(
    client: TestClient, settings: Settings, walk: Walk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read of a case changed since the view last caught up answers the case as it is now
    (the view caught up first, or the events)."""
    _held(walk)
    services = _services(client)
    if services.background is not None:  # nothing catches up behind the test's back
        services.background.stop.set()
    auditor = auth(settings, "auditor", "auditor-1")
    before = _cold_read(client, walk, auditor)
    assert before.status_code == 200
    case = services.app.get_case(UUID(walk.case_id))
    case.schedule_follow_up(on=date(2099, 3, 1), at=datetime.now(UTC), by="team-antwerpen-1")
    services.app.save(case)  # written past the service's commands and its view
    after = _cold_read(client, walk, auditor)
    assert after.status_code == 200, after.text
    assert after.headers["ETag"] == f'"{walk.version + 1}"'
    assert after.json()["next_follow_up_on"] == "2099-03-01"


def test_an_answer_from_the_view_is_kept_until_the_log_moves(
    client: TestClient, settings: Settings, walk: Walk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read again, the case is not read from the view again while nothing was written; a
    write (to any case) moves the log's head, and the next read reads the view again."""
    _held(walk)
    read: list[UUID] = []
    real_view, real_at_head = cases.whole_case_answer, cases.case_answer_at_head
    monkeypatch.setattr(  # SQLite's reader
        cases,
        "whole_case_answer",
        lambda case_id, today: real_view(case_id, today).then(
            lambda answer: read.append(case_id) or answer
        ),
    )
    monkeypatch.setattr(  # PostgreSQL's: counted when its statement's rows are read
        cases,
        "case_answer_at_head",
        lambda case_id, table, today: real_at_head(case_id, table, today).then(
            lambda answer: read.append(case_id) or answer
        ),
    )
    services = _services(client)
    services.fresh_views()  # the view holds the case (PostgreSQL: found so when read)
    auditor, chair = auth(settings, "auditor", "auditor-1"), walk.chair
    first = _cold_read(client, walk, auditor)
    again = _cold_read(client, walk, chair)  # kept for every caller, each one's part checked
    assert first.status_code == again.status_code == 200
    assert first.content == again.content
    assert _cold_read(client, walk, auth(settings, "chair", "voorzitter-2")).status_code == 404
    assert read == [UUID(walk.case_id)]

    writes = services.app.writes
    assert writes is not None
    before = writes.mark()
    other = Walk(client, settings)
    other.request()  # another case: the log's head moves
    services.fresh_views()
    _until_moved(writes, before)  # PostgreSQL: its announcement taken (a moment after)
    after = _cold_read(client, walk, auditor)
    assert after.status_code == 200 and after.content == first.content
    assert read == [UUID(walk.case_id)] * 2


def test_a_professionals_list_is_read_from_the_view_and_its_page_kept(
    client: TestClient, settings: Settings, walk: Walk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A professional's case list is the view's page of the cases they may read, kept
    while the view does not move, as everyone's; like every kept answer that holds
    personal data, for at most as long as the cases kept for readers."""
    _held(walk)
    services = _services(client)
    replayed = _count_replays(services, monkeypatch)
    listed: list[object] = []
    real = cases.list_cases
    monkeypatch.setattr(cases, "list_cases", lambda *a, **k: listed.append(a[1]) or real(*a, **k))
    professional = auth(settings, "professional", "hulpverlener-1")
    pages = [client.get("/cases", headers=professional) for _ in range(2)]
    assert [p.status_code for p in pages] == [200, 200]
    assert [c["case_id"] for c in pages[0].json()["items"]] == [walk.case_id]
    assert pages[0].content == pages[1].content
    assert len(listed) == 1 and replayed == []  # read once, from the view
    stranger = auth(settings, "professional", "hulpverlener-9")
    assert client.get("/cases", headers=stranger).json()["items"] == []
    assert services.pages.lifetime == services.viewed.lifetime == REPLAY_LIFETIME


def _until_moved(writes: Any, before: Any) -> None:
    """Wait (at most 5 s) until the store's write mark is no longer ``before``."""
    deadline = time.monotonic() + 5
    while writes.mark() == before:
        assert time.monotonic() < deadline, "the write mark did not move"
        time.sleep(0.01)


def test_a_case_not_kept_is_given_from_the_event_loop_while_the_view_is_known_current(
    client: TestClient, settings: Settings, walk: Walk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the view known to hold the log (SQLite), or found at the case's last event by the
    statement that reads it (PostgreSQL), a case not kept is read from it on the event loop
    (its read recorded all the same)."""
    _held(walk)
    services = _services(client)
    services.fresh_views()
    hops = _thread_handoffs(monkeypatch, "cases")
    auditor = auth(settings, "auditor", "auditor-1")
    answer = _cold_read(client, walk, auditor)
    assert answer.status_code == 200, answer.text
    assert hops == []  # PostgreSQL: the loop asks the view itself
    reads = client.get(f"/cases/{walk.case_id}/reads", headers=auditor).json()
    assert [r["reader"] for r in reads if r["what"] == "case"][-1] == "auditor-1"
    # Kept, and given again on the event loop.
    again = _cold_read(client, walk, walk.chair)
    assert again.status_code == 200 and again.content == answer.content
    assert hops == []


def test_a_history_not_kept_is_answered_from_the_audit_trail(
    client: TestClient, settings: Settings, walk: Walk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a case: every caller with a part from the audit trail; anyone, where the trail set
    an event of the case aside, from the events (every answer compared with its events' by
    tests/conftest.py)."""
    _held(walk)
    services = _services(client)
    replayed = _count_replays(services, monkeypatch)
    path = f"/cases/{walk.case_id}/history"
    auditor = auth(settings, "auditor", "auditor-1")
    professional = auth(settings, "professional", "hulpverlener-1")
    answers = []
    for who in (auditor, walk.team, walk.chair, professional):
        services.app.replays.forget(UUID(walk.case_id))
        answers.append(client.get(path, headers=who))
    assert [a.status_code for a in answers] == [200] * 4
    assert [e["seq"] for e in answers[0].json()] == list(range(1, walk.version + 1))
    assert len({a.content for a in answers}) == 1
    assert replayed == []
    _gone_wrong(
        services,
        ("audit_trail", walk.case_id, 2, "ConsentGiven"),
        ("DELETE FROM audit_trail WHERE case_id = ? AND seq = 2", (walk.case_id,)),
    )
    other = Walk(client, settings)
    other.request()  # the log's head moves: nothing kept from before is given
    services.app.replays.forget(UUID(walk.case_id))
    again = client.get(path, headers=auditor)
    assert again.content == answers[0].content
    assert replayed == [UUID(walk.case_id)]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_where_the_worker_keeps_the_view_a_case_it_has_not_caught_up_with_is_replayed(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL, the projections kept by another process: the service reads a case from the
    view only when the view holds the case's last event; until the worker has caught up with
    a change, the case's events answer."""
    settings = settings_for(database_url, tmp_path, projections="worker")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        _worker_behind(client, settings, monkeypatch)


def _worker_behind(client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    services = _services(client)
    assert not services.inline_projections
    walk = Walk(client, settings)
    _held(walk)
    replayed = _count_replays(services, monkeypatch)
    auditor = auth(settings, "auditor", "auditor-1")
    assert _cold_read(client, walk, auditor).status_code == 200  # nothing projected yet
    assert replayed == [UUID(walk.case_id)]
    worker = bootstrap(settings)  # as `overleg worker` would, in a process of its own
    try:
        worker.projector.catch_up()
        answer = _cold_read(client, walk, auditor)
        assert answer.status_code == 200 and answer.json()["meetings_held"] == 1
        assert replayed == [UUID(walk.case_id)]  # from the view
        history = client.get(f"/cases/{walk.case_id}/history", headers=auditor)
        assert history.status_code == 200 and len(history.json()) == walk.version
        assert replayed == [UUID(walk.case_id)]  # from the trail

        assert walk.hold_meeting().status_code == 201  # the worker has not seen it yet
        del replayed[:]  # (the command's own)
        services.app.replays.forget(UUID(walk.case_id))
        behind = client.get(f"/cases/{walk.case_id}/history", headers=auditor)
        assert len(behind.json()) == walk.version
        after = _cold_read(client, walk, auditor)
        assert after.headers["ETag"] == f'"{walk.version}"'
        assert after.json()["meetings_held"] == 2
        assert replayed == [UUID(walk.case_id)] * 2  # both from the events

        worker.projector.catch_up()
        services.viewed.clear()
        assert _cold_read(client, walk, auditor).content == after.content
        assert replayed == [UUID(walk.case_id)] * 2  # the view again
    finally:
        worker.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_view_an_earlier_worker_made_is_left_to_the_events(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service upgraded before its worker: the view's tables are as the earlier version
    made them, and every case is answered from its events until the worker catches up."""
    settings = settings_for(database_url, tmp_path, projections="worker")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        services = _services(client)
        walk = Walk(client, settings)
        _held(walk)
        services.projector.catch_up()
        with services.views.transaction() as tx:
            tx.execute("ALTER TABLE case_view_consent DROP COLUMN seq")
            tx.execute("UPDATE projection_position SET version = 3 WHERE name = 'case_view'")
        replayed = _count_replays(services, monkeypatch)
        auditor = auth(settings, "auditor", "auditor-1")
        answer = _cold_read(client, walk, auditor)
        assert answer.status_code == 200, answer.text
        assert answer.json()["meetings_held"] == 1
        history = client.get(f"/cases/{walk.case_id}/history", headers=auditor)
        assert history.status_code == 200 and len(history.json()) == walk.version
        assert replayed == [UUID(walk.case_id)]  # the history came from the case kept


def test_a_case_with_many_rows_in_each_of_its_view_tables_is_read_in_their_order(
    client: TestClient, settings: Settings, walk: Walk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Consents in the order given, the open agreements in the workplan's order, meetings
    and participants: each table's rows are read in one statement and put in order, as the
    case's events give them (the suite's check compares the two answers)."""
    walk.up_to_chair()
    for n in (3, 1, 2):  # refs not in the order given
        party = {"party": {"ref": f"netwerk-{n}", "role": "network"}}
        assert walk.send("POST", "/consents", walk.team, party).status_code == 200
    assert walk.hold_meeting().status_code == 201
    agreements = [
        {"who": who, "what": what, "due": None, "domain": "gezin"}
        for who, what in [("netwerk-3", "Zorgt"), ("jongere-1", "Gaat"), ("hulpverlener-1", "Belt")]
    ]
    workplan = {"agreements": agreements, "coordinator": "hulpverlener-1", "crisis_plan": False}
    assert walk.send("PUT", "/meetings/1/workplan", walk.chair, workplan).status_code == 200
    assert walk.hold_meeting().status_code == 201
    services = _services(client)
    services.fresh_views()
    replayed = _count_replays(services, monkeypatch)
    answer = _cold_read(client, walk, auth(settings, "auditor", "auditor-1"))
    assert answer.status_code == 200, answer.text
    assert replayed == []  # from the view
    case = answer.json()
    assert [c["ref"] for c in case["consents"]] == [
        "jongere-1",
        "netwerk-3",
        "netwerk-1",
        "netwerk-2",
    ]
    assert [a["what"] for a in case["open_agreements"]] == ["Zorgt", "Gaat", "Belt"]
    assert case["meetings_held"] == 2 and case["coordinator"] == "hulpverlener-1"
