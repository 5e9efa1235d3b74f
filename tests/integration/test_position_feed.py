"""A service whose projections another process keeps (PostgreSQL) learns that a position
moved from the worker's announcement, not from a query per request: it asks the store
again only after a move, sees every move, and asks each time while it cannot listen."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from overleg.adapters import listening
from overleg.adapters.eventstore import Database
from overleg.adapters.views import ViewStore
from overleg.application import Overleg
from overleg.bootstrap import bootstrap
from overleg.projections import positions as positions_module
from overleg.projections.positions import PositionFeed
from overleg.projections.runner import Projector
from overleg.settings import Settings
from overleg.streams import import_stream

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from make_sample_stream import stream

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def lines(cases: int, year: int) -> list[str]:
    return [json.dumps(event) for event in stream(cases, 1, year)]


class Counting(Projector):
    """A projector that counts how often the positions are asked of the store."""

    asked = 0

    def positions(self) -> dict[str, int]:
        self.asked += 1
        return super().positions()

    def position(self, name: str) -> int:
        self.asked += 1
        return super().position(name)

    def positions_and_head(self, events_table: str) -> tuple[dict[str, int], int]:
        self.asked += 1
        return super().positions_and_head(events_table)


@pytest.fixture
def service_side(store: Overleg) -> Iterator[tuple[Counting, PositionFeed]]:
    """What the service holds: a projector it never catches up with, and the feed."""
    views = ViewStore(store.database)
    projector = Counting(store.event_log, views)
    feed = PositionFeed(projector, store.commands.events_table_name)
    try:
        yield projector, feed
    finally:
        feed.close()
        views.close()


@pytest.fixture
def worker(store: Overleg) -> Iterator[Projector]:
    """The worker: another connection that moves the positions."""
    views = ViewStore(store.database)
    try:
        yield Projector(store.event_log, views)
    finally:
        views.close()


def eventually(look: Callable[[], object], wanted: object) -> None:
    """``look()`` gives ``wanted`` within 10 s (an announcement arrives after its commit)."""
    deadline = time.monotonic() + 10
    while (found := look()) != wanted and time.monotonic() < deadline:
        time.sleep(0.01)
    assert found == wanted


def test_positions_are_asked_again_only_after_a_move(
    store: Overleg, service_side: tuple[Counting, PositionFeed], worker: Projector
) -> None:
    projector, feed = service_side
    import_stream(store, lines(3, 2015))
    worker.catch_up()
    head = store.event_log.head()
    assert feed.position("statistics") == head
    asked = projector.asked
    for _ in range(50):
        assert feed.position("statistics") == head
        assert feed.position("case_view") == head
    assert projector.asked == asked  # nothing moved: not one query
    assert feed.listening


def test_every_move_of_the_worker_is_seen(
    store: Overleg, service_side: tuple[Counting, PositionFeed], worker: Projector
) -> None:
    _projector, feed = service_side
    assert feed.position("statistics") == 0
    for year in (2015, 2016, 2017):
        import_stream(store, lines(2, year))
        worker.catch_up()
        head = store.event_log.head()
        eventually(lambda: feed.position("statistics"), head)
    # A rebuild moves the positions too (to zero and back, in one transaction).
    worker.rebuild(["statistics"])
    assert feed.position("statistics") == store.event_log.head()


def test_while_it_cannot_listen_it_asks_every_time_then_listens_again(
    store: Overleg,
    service_side: tuple[Counting, PositionFeed],
    worker: Projector,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    projector, feed = service_side
    monkeypatch.setattr(listening, "RETRY_SECONDS", 0.3)
    import_stream(store, lines(2, 2015))
    worker.catch_up()
    assert feed.position("statistics") == store.event_log.head()
    listener = feed._conn
    assert listener is not None
    with psycopg.connect(store.database.conninfo(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (listener.info.backend_pid,))
    time.sleep(0.2)  # the server has closed it
    import_stream(store, lines(2, 2016))
    worker.catch_up()  # announced while the feed does not listen
    head = store.event_log.head()
    asked = projector.asked
    assert feed.position("statistics") == head  # the loss is found: the store is asked
    assert not feed.listening
    assert feed.position("statistics") == head
    assert projector.asked >= asked + 2  # asked each time while not listening
    time.sleep(0.35)
    assert feed.position("statistics") == head  # listening again, and read afresh
    assert feed.listening
    import_stream(store, lines(2, 2017))
    worker.catch_up()
    head = store.event_log.head()
    eventually(lambda: feed.position("statistics"), head)


def test_while_one_request_connects_the_others_ask_the_store(
    store: Overleg,
    service_side: tuple[Counting, PositionFeed],
    worker: Projector,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server that does not answer the connection holds up the one request that tries
    it, for the connect timeout, not every request behind it."""
    projector, feed = service_side
    import_stream(store, lines(2, 2015))
    worker.catch_up()
    head = store.event_log.head()
    real, entered, leave = psycopg.connect, threading.Event(), threading.Event()

    def slow_connect(*args: object, **kwargs: object) -> object:
        entered.set()
        leave.wait(10)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(listening.psycopg, "connect", slow_connect)
    first = threading.Thread(target=feed.position, args=("statistics",))
    first.start()
    assert entered.wait(10)
    began = time.monotonic()
    asked = projector.asked
    assert feed.position("statistics") == head  # not held up: the store is asked
    assert time.monotonic() - began < 1
    assert projector.asked == asked + 1 and not feed.listening
    leave.set()
    first.join(10)
    assert feed.listening  # the first one's connection listens now (and read the positions)
    asked = projector.asked
    assert feed.position("statistics") == head
    assert feed.position("statistics") == head
    assert projector.asked == asked  # nothing moved since: no query


def test_a_position_known_without_a_query_is_given_without_one(
    store: Overleg,
    service_side: tuple[Counting, PositionFeed],
    worker: Projector,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """For the event loop: the position when nothing was announced since it was read (no
    query, no wait), else nothing, and the next look reads it again."""
    projector, feed = service_side
    import_stream(store, lines(2, 2015))
    worker.catch_up()
    assert feed.known("statistics") is None  # not listening yet
    head = store.event_log.head()
    assert feed.position("statistics") == head  # listens, and reads them
    asked = projector.asked
    assert feed.known("statistics") == (head, 0)  # its position, and none behind
    assert projector.asked == asked  # no query
    import_stream(store, lines(2, 2016))
    worker.catch_up()  # announced
    eventually(lambda: feed.known("statistics"), None)
    assert feed.position("statistics") == store.event_log.head()  # read again
    assert feed.known("statistics") == (store.event_log.head(), 0)
    monkeypatch.setattr(positions_module, "AGE", 0.0)
    assert feed.known("statistics") is None  # too old to give without a look
    monkeypatch.setattr(positions_module, "AGE", 60.0)
    with feed._lock:  # a look under way in another thread: no wait
        assert feed.known("statistics") is None


def test_how_far_behind_a_projection_is_is_read_with_the_positions(
    store: Overleg,
    service_side: tuple[Counting, PositionFeed],
    worker: Projector,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The head is read with the positions: how far behind a projection is, known without
    a query until the positions are read again (a move announced, or ``AGE`` past), and
    never less than it was when they were read."""
    _, feed = service_side
    import_stream(store, lines(2, 2015))
    worker.catch_up()
    head = store.event_log.head()
    assert feed.position_and_lag("statistics")[1] == 0  # listens, and reads them with the head
    import_stream(store, lines(3, 2016))  # not applied: nothing announced
    assert feed.known("statistics") == (head, 0)  # as read, until read again
    monkeypatch.setattr(positions_module, "AGE", 0.0)
    behind = store.event_log.head() - head
    assert behind > 0 and feed.position_and_lag("statistics")[1] == behind
    monkeypatch.setattr(positions_module, "AGE", 60.0)
    assert feed.known("statistics") == (head, behind)
    worker.catch_up()  # announced
    eventually(lambda: feed.position_and_lag("statistics")[1], 0)


def test_the_service_keys_kept_answers_by_the_announced_position(database_url: str) -> None:
    """Where a worker keeps the projections, the service follows its announcements."""
    settings = Settings(database_url=database_url, projections="worker")
    services = bootstrap(settings)
    try:
        assert not services.inline_projections
        assert services.feed is not None
        assert services.version_of("statistics") == 0
        import_stream(services.app, lines(2, 2015))
        worker_views = ViewStore(Database.from_url(database_url))
        try:
            Projector(services.app.event_log, worker_views).catch_up()
        finally:
            worker_views.close()
        head = services.app.event_log.head()
        eventually(lambda: services.version_of("statistics"), head)
        assert services.feed.listening
        assert services.known_version_of("statistics") == head  # no query, no wait
    finally:
        services.close()
    assert not services.feed.listening  # its connection closed with the service


def test_a_move_never_announced_is_read_once_the_positions_are_old(
    store: Overleg,
    service_side: tuple[Counting, PositionFeed],
    worker: Projector,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A listener gone without a word hears nothing: what it knows is read again anyway once
    it is ``AGE`` old."""
    _projector, feed = service_side
    monkeypatch.setattr(positions_module, "AGE", 60.0)
    assert feed.position("statistics") == 0
    worker.moved_channel = None  # it moves the positions without announcing it
    import_stream(store, lines(2, 2015))
    worker.catch_up()
    assert feed.position("statistics") == 0  # not announced, not yet old
    monkeypatch.setattr(positions_module, "AGE", 0.0)  # now it is
    assert feed.position("statistics") == store.event_log.head()
