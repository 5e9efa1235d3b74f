"""Every read is recorded before it is answered; reads at the same time share a commit."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from overleg.adapters.eventstore import Database, StoreUnavailable
from overleg.adapters.records import ReadLog
from overleg.adapters.views import ViewStore
from overleg.policies.access import Principal, StaffRole

AUDITOR = Principal(ref="auditor-1", role=StaffRole.AUDITOR)


@pytest.fixture
def views(database_url: str) -> Iterator[ViewStore]:
    store = ViewStore(Database.from_url(database_url))
    try:
        yield store
    finally:
        store.close()


class _Counted(ReadLog):
    """A read log whose every write takes a while, and counts its transactions."""

    def __init__(self, store: ViewStore, fail: bool = False) -> None:
        super().__init__(store)
        self.transactions: list[int] = []
        self.fail = fail

    def _write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        time.sleep(0.02)
        if self.fail:
            raise StoreUnavailable("gone")
        super()._write(rows)
        self.transactions.append(len(rows))


def _read_at_once(log: ReadLog, readers: int) -> list[BaseException | None]:
    outcomes: list[BaseException | None] = [None] * readers

    def read(n: int) -> None:
        try:
            log.record(AUDITOR, [f"case-{n}"], "case", f"request-{n}")
        except BaseException as error:
            outcomes[n] = error

    threads = [threading.Thread(target=read, args=(n,)) for n in range(readers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_reads_at_the_same_time_are_all_recorded_in_fewer_commits(views: ViewStore) -> None:
    log = _Counted(views)
    assert _read_at_once(log, 16) == [None] * 16
    for n in range(16):
        (read,) = log.of(f"case-{n}")
        assert (read.reader, read.what, read.request_id) == ("auditor-1", "case", f"request-{n}")
    assert sum(log.transactions) == 16
    assert len(log.transactions) < 16  # they waited for one another's commit, and shared


def test_when_a_commit_fails_every_read_in_it_fails(views: ViewStore) -> None:
    log = _Counted(views, fail=True)
    outcomes = _read_at_once(log, 8)
    assert all(isinstance(o, StoreUnavailable) for o in outcomes)
    log.fail = False
    log.record(AUDITOR, ["case-later"], "case", "request-later")  # the next one goes through
    assert [r.request_id for r in log.of("case-later")] == ["request-later"]
    assert log.of("case-0") == []
