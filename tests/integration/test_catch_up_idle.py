"""A catch-up that finds nothing new costs no transaction on the projections (every read of
a process that keeps its projections current starts with one), and still sees at once what
another process recorded since."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import reopen
from overleg.adapters.views import Tx, ViewStore
from overleg.application import Overleg
from overleg.projections.runner import Projector
from overleg.streams import import_stream

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from make_sample_stream import stream


def lines(cases: int, year: int) -> list[str]:
    return [json.dumps(event) for event in stream(cases, 1, year)]


class Counted(ViewStore):
    """A view store that counts the transactions opened on it."""

    transactions = 0

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        self.transactions += 1
        with super().transaction() as tx:
            yield tx


@pytest.fixture
def views(store: Overleg) -> Iterator[Counted]:
    counted = Counted(store.database)
    try:
        yield counted
    finally:
        counted.close()


def test_nothing_new_opens_no_transaction(store: Overleg, views: Counted) -> None:
    import_stream(store, lines(3, 2015))
    projector = Projector(store.event_log, views)
    assert projector.catch_up() > 0
    opened = views.transactions
    for _ in range(5):
        assert projector.catch_up() == 0
    assert views.transactions == opened


def test_what_another_process_records_is_seen_at_the_next_catch_up(
    store: Overleg, views: Counted, database_url: str
) -> None:
    import_stream(store, lines(2, 2015))
    projector = Projector(store.event_log, views)
    projector.catch_up()
    projector.catch_up()  # nothing new: confirmed without a transaction
    other = reopen(database_url)
    try:
        import_stream(other, lines(2, 2016))
    finally:
        other.close()
    assert projector.catch_up() > 0
    assert set(projector.positions().values()) == {store.event_log.head()}
    counted = views.read("SELECT COUNT(*) FROM case_view")
    assert int(counted[0][0]) == 4


def test_a_catch_up_of_some_projections_still_looks(store: Overleg, views: Counted) -> None:
    """Only a catch-up of every projection confirms the head; one of a few looks each time."""
    import_stream(store, lines(2, 2015))
    projector = Projector(store.event_log, views)
    projector.catch_up()
    opened = views.transactions
    projector.catch_up(["statistics"])
    assert views.transactions == opened + 1
    assert projector.current is not None
