"""On PostgreSQL a case and its history are read from the projections in one statement, and
trusted only when that statement finds them holding every event the store holds of the case.

The worker keeps the projections in another process, so the service cannot know that they
hold the log's head. ``case_answer_at_head`` and ``trail_at_head`` ask it per case instead, in
the same snapshot as the rows they read: the view's version against the case's last seq, a
failure set aside, the projections' code versions, and (the trail) every seq from 1 on.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from datetime import date
from typing import Any, TypeVar
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_stream_import import event, requested

from by_table import answered, whole_trail
from overleg.adapters.views import OneQuery, TablesMissing, ViewStore
from overleg.api.routers import cases as case_routes
from overleg.application import Overleg
from overleg.projections.audit_trail import trail_at_head
from overleg.projections.case_answer import case_answer
from overleg.projections.case_view import (
    ViewAnswer,
    ViewedParts,
    case_answer_at_head,
    get_case_view,
    view_of,
)
from overleg.projections.runner import Projector
from overleg.streams import import_stream
from strategies import valid_streams, with_fresh_ids
from strategies_v2 import v1_streams

# The reads at the head are PostgreSQL's.
postgresql = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

Lines = list[dict[str, Any]]
T = TypeVar("T")


# The day the cases are read on (whether a follow-up is overdue).
TODAY = date(2026, 11, 28)


def _view(app: Overleg, views: ViewStore, case_id: UUID) -> ViewAnswer | None:
    """The case's answer read from its view at the case's last event, on a thread and on an
    event loop: the same."""
    query = case_answer_at_head(case_id, app.commands.events_table_name, TODAY)
    on_thread = views.ask(query)
    assert asyncio.run(_on_a_loop(views, query)) == (on_thread,)
    return on_thread


def _trail(app: Overleg, views: ViewStore, case_id: UUID) -> ViewAnswer | None:
    query = trail_at_head(case_id, app.commands.events_table_name)
    on_thread = views.ask(query)
    assert asyncio.run(_on_a_loop(views, query)) == (on_thread,)
    return on_thread


async def _on_a_loop(views: ViewStore, query: OneQuery[T]) -> tuple[T] | None:
    """``ask_on_loop`` on a loop of its own (its pool closed with it)."""
    try:
        return await views.ask_on_loop(query)
    finally:
        await views.close_on_loop()


def _imported(app: Overleg, views: ViewStore, stream: Lines) -> list[UUID]:
    import_stream(app, [json.dumps(line) for line in stream])
    Projector(app.event_log, views).catch_up()
    return [UUID(c) for c in dict.fromkeys(line["case"] for line in stream)]


@postgresql
@settings(
    max_examples=int(os.environ.get("OVERLEG_FOLD_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(stream=st.one_of(valid_streams(), v1_streams(quirky=False)).map(with_fresh_ids))
def test_read_in_one_statement_the_view_and_trail_are_the_events_and_the_stored_rows(
    projected: tuple[Overleg, ViewStore], stream: Lines
) -> None:
    """For every case of any stream, caught up: the view read in one statement is the view
    its events fold to and the view read table by table; the history the statement renders
    is the trail read on its own rendered line by line, and the history the case's events
    give, byte for byte, with the parts of the view."""
    app, views = projected
    for case_id in _imported(app, views, stream):
        events = app.replay(case_id)[1]
        found = _view(app, views, case_id)
        assert found is not None, f"case {case_id} caught up, yet not trusted"
        view = view_of(events)
        assert get_case_view(views, case_id) == view
        assert found == (ViewedParts.of(view), view.version, case_answer(view, TODAY))
        whole = views.read_together(lambda fetch, c=case_id: whole_trail(fetch, c))
        assert whole is not None
        body = case_routes._rendered_history(case_routes._history(events))
        assert answered(whole) == body
        assert _trail(app, views, case_id) == (ViewedParts.of(view), view.version, body)


def _one_case(app: Overleg, views: ViewStore) -> UUID:
    """A case requested and consented to, caught up."""
    case = str(uuid4())
    youth = {"party": {"ref": "jongere-a", "role": "youth"}}
    (case_id,) = _imported(app, views, [requested(case), event(case, 2, "ConsentGiven", youth)])
    return case_id


@postgresql
def test_a_case_the_projections_have_not_caught_up_with_is_not_trusted_until_they_do(
    projected: tuple[Overleg, ViewStore],
) -> None:
    app, views = projected
    case_id = _one_case(app, views)
    assert _view(app, views, case_id) is not None and _trail(app, views, case_id) is not None
    later = event(str(case_id), 3, "ChairAppointed", {"chair": "voorzitter-1"}, day=1)
    import_stream(app, [json.dumps(later)])  # stored, not yet projected
    assert _view(app, views, case_id) is None
    assert _trail(app, views, case_id) is None
    Projector(app.event_log, views).catch_up()
    view = _view(app, views, case_id)
    assert view is not None and view[1] == 3 and json.loads(view[2])["chair"] == "voorzitter-1"
    found = _trail(app, views, case_id)
    assert found is not None and found[0].chair == "voorzitter-1" and found[1] == 3
    assert [line["seq"] for line in json.loads(found[2])] == [1, 2, 3]


@postgresql
def test_unknown_cases_are_not_found(projected: tuple[Overleg, ViewStore]) -> None:
    app, views = projected
    _one_case(app, views)
    assert _view(app, views, UUID(int=7)) is None
    assert _trail(app, views, UUID(int=7)) is None


@pytest.mark.parametrize(
    ("projection", "view_trusted", "trail_trusted"),
    [("case_view", False, False), ("audit_trail", True, False)],
)
@postgresql
def test_a_failure_set_aside_for_the_case_is_not_trusted(
    projected: tuple[Overleg, ViewStore], projection: str, view_trusted: bool, trail_trusted: bool
) -> None:
    app, views = projected
    case_id = _one_case(app, views)
    with views.transaction() as tx:
        tx.execute(
            "INSERT INTO projection_failure (projection, position, case_id, seq, event_type,"
            " error, at) VALUES (?, 999999, ?, 2, 'ConsentGiven', 'ValueError',"
            " '2026-01-01T00:00:00+00:00')",
            (projection, str(case_id)),
        )
    assert (_view(app, views, case_id) is not None) is view_trusted
    assert (_trail(app, views, case_id) is not None) is trail_trusted


@postgresql
@pytest.mark.parametrize("projection", ["case_view", "audit_trail"])
def test_rows_folded_by_another_version_of_a_projection_are_not_trusted(
    projected: tuple[Overleg, ViewStore], projection: str
) -> None:
    """Rows a projection's earlier code stored (before the worker rebuilt it) may not be
    what this code folds: the events answer."""
    app, views = projected
    case_id = _one_case(app, views)
    with views.transaction() as tx:
        tx.execute(
            "UPDATE projection_position SET version = version - 1 WHERE name = ?", (projection,)
        )
    assert (_view(app, views, case_id) is None) is (projection == "case_view")
    assert _trail(app, views, case_id) is None


@postgresql
def test_a_trail_missing_a_line_is_not_trusted(projected: tuple[Overleg, ViewStore]) -> None:
    app, views = projected
    case_id = _one_case(app, views)
    with views.transaction() as tx:
        tx.execute("DELETE FROM audit_trail WHERE case_id = ? AND seq = 1", (str(case_id),))
    assert _trail(app, views, case_id) is None
    assert _view(app, views, case_id) is not None  # the view itself still holds the case


@postgresql
def test_read_alone_asks_each_statement_outside_a_transaction(
    projected: tuple[Overleg, ViewStore],
) -> None:
    """One statement, one round trip: no transaction is opened around it (each statement
    is a transaction of its own), where ``read_together`` opens one for all of them."""
    _app, views = projected
    same = "SELECT transaction_timestamp() = statement_timestamp()"

    def after_a_pause(fetch: Any) -> bool:
        fetch("SELECT pg_sleep(0.01)", ())
        return bool(fetch(same, ())[0][0])

    assert views.read_alone(after_a_pause) is True
    assert views.read_together(after_a_pause) is False


@postgresql
def test_a_store_no_projector_has_run_on_says_so(store: Overleg) -> None:
    """Before the worker first runs there are no projection tables: the reader is told so
    (the service then replays), not given a database error."""
    views = ViewStore(store.database)
    query = case_answer_at_head(UUID(int=7), store.commands.events_table_name, TODAY)
    try:
        with pytest.raises(TablesMissing):
            views.ask(query)
        assert asyncio.run(_on_a_loop(views, query)) is None  # left to a thread, which says
    finally:
        views.close()


@postgresql
def test_the_event_loops_reads_keep_to_their_loop_and_end_with_the_store(
    projected: tuple[Overleg, ViewStore],
) -> None:
    """The loop's pool of connections serves the loop it was made on only: another loop is
    told to ask on a thread. Closed from another thread while its loop runs, it closes on
    that loop; once the store is closed, the loop asks nothing more."""
    app, views = projected
    case_id = _one_case(app, views)
    query = case_answer_at_head(case_id, app.commands.events_table_name, TODAY)
    runs = asyncio.new_event_loop()
    thread = threading.Thread(target=runs.run_forever, daemon=True)
    thread.start()
    try:
        first = asyncio.run_coroutine_threadsafe(views.ask_on_loop(query), runs).result(10)
        assert first is not None and first[0] is not None and first[0][1] == 2
        assert asyncio.run(views.ask_on_loop(query)) is None  # another loop
        found = views._loop_readers
        assert found is not None
        views.close()  # from this thread, while the pool's loop runs on its own
        assert found[1].closed
        again = asyncio.run_coroutine_threadsafe(views.ask_on_loop(query), runs).result(10)
        assert again is None
    finally:
        runs.call_soon_threadsafe(runs.stop)
        thread.join(10)
        runs.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_on_sqlite_the_event_loop_asks_nothing_of_this_kind(
    projected: tuple[Overleg, ViewStore],
) -> None:
    """SQLite's reads on the loop have a connection of their own (``ask_now``)."""
    app, views = projected
    query = case_answer_at_head(UUID(int=7), app.commands.events_table_name, TODAY)
    assert asyncio.run(views.ask_on_loop(query)) is None


@postgresql
def test_tables_an_earlier_version_made_are_left_to_the_events(
    projected: tuple[Overleg, ViewStore],
) -> None:
    """A service upgraded before its worker finds the projections' tables as the earlier
    version made them (here: the view without the answers it keeps since version 6): not a
    database error, but the events' answer."""
    app, views = projected
    case_id = _one_case(app, views)
    with views.transaction() as tx:
        tx.execute("ALTER TABLE case_view DROP COLUMN answer")
        tx.execute("UPDATE projection_position SET version = 5 WHERE name = 'case_view'")
    query = case_answer_at_head(case_id, app.commands.events_table_name, TODAY)
    with pytest.raises(TablesMissing):
        views.ask(query)
    assert asyncio.run(_on_a_loop(views, query)) is None
