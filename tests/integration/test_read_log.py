"""Every read is recorded before it is answered; reads at the same time share a commit."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Iterator, Sequence
from typing import Any

import pytest

from overleg.adapters import budget, records
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
        self.pause = 0.02

    def _write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        time.sleep(self.pause)
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


def _await_at_once(log: ReadLog, readers: int) -> list[BaseException | None]:
    """``readers`` requests on one event loop, each waiting for its read's record."""

    async def read_all() -> list[BaseException | None]:
        reads = [
            log.recorded(AUDITOR, [f"case-{n}"], "case", f"request-{n}") for n in range(readers)
        ]
        outcomes = await asyncio.gather(*reads, return_exceptions=True)
        return [o if isinstance(o, BaseException) else None for o in outcomes]

    return asyncio.run(read_all())


def test_reads_on_an_event_loop_are_recorded_before_they_return_in_fewer_commits(
    views: ViewStore,
) -> None:
    log = _Counted(views)
    try:
        assert _await_at_once(log, 16) == [None] * 16
        for n in range(16):
            (read,) = log.of(f"case-{n}")
            assert (read.reader, read.request_id) == ("auditor-1", f"request-{n}")
        assert sum(log.transactions) == 16
        assert len(log.transactions) < 16
    finally:
        log.close()


def test_reads_on_a_loop_and_on_threads_share_the_groups(views: ViewStore) -> None:
    log = _Counted(views)
    try:
        threads_done: list[list[BaseException | None]] = []
        threads = threading.Thread(target=lambda: threads_done.append(_read_at_once(log, 8)))
        threads.start()
        looped = _await_at_once(log, 8)
        threads.join()
        assert looped == [None] * 8 and threads_done == [[None] * 8]
        assert sum(log.transactions) == 16  # each read once, the loop's and the threads'
        assert len({r.request_id for n in range(8) for r in log.of(f"case-{n}")}) == 8
    finally:
        log.close()


def test_when_a_commit_fails_every_read_waiting_on_the_loop_fails(views: ViewStore) -> None:
    log = _Counted(views, fail=True)
    try:
        outcomes = _await_at_once(log, 8)
        assert all(isinstance(o, StoreUnavailable) for o in outcomes)
        log.fail = False
        assert _await_at_once(log, 1) == [None]  # the next one goes through
        assert [r.request_id for r in log.of("case-0")] == ["request-0"]
    finally:
        log.close()


def test_a_read_not_recorded_within_its_budget_is_refused_and_recorded_later(
    views: ViewStore,
) -> None:
    log = _Counted(views)
    log.pause = 0.5  # the store answers slowly

    async def read() -> None:
        budget.begin(0.1)
        await log.recorded(AUDITOR, ["case-slow"], "case", "request-slow")

    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            asyncio.run(read())
        assert time.monotonic() - started < 0.4  # refused within its budget, not the write's
        deadline = time.monotonic() + 5
        while not log.of("case-slow") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [r.request_id for r in log.of("case-slow")] == ["request-slow"]
    finally:
        log.close()


def test_a_closed_log_refuses_reads_on_the_loop(views: ViewStore) -> None:
    log = ReadLog(views)
    log.close()
    assert [type(o) for o in _await_at_once(log, 1)] == [StoreUnavailable]


def test_under_load_the_reads_of_the_next_moment_join_the_loops_group(
    views: ViewStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads that waited while a group was written are written after ``LINGER``, with the
    reads that follow them; a caller who reads one case after another, and a read after a
    quiet moment, are written at once. (The moments are stretched here, so that the test
    does not ride on the machine's speed.)"""
    monkeypatch.setattr(records, "LINGER", 0.3)
    monkeypatch.setattr(records, "LOADED", 1.0)
    log = _Counted(views)
    log.pause = 0.1  # each commit takes a while

    def read(n: int) -> Awaitable[None]:
        return log.recorded(AUDITOR, [f"case-{n}"], "case", f"request-{n}")

    async def one_after_another() -> list[float]:
        took = []
        for n in range(3):
            started = time.monotonic()
            await read(n)
            took.append(time.monotonic() - started)
        return took

    async def under_load() -> None:
        first = asyncio.ensure_future(read(3))  # written at once, for 0.1 s
        await asyncio.sleep(0.05)
        waiting = asyncio.ensure_future(read(4))  # waits while the first is written
        await asyncio.sleep(0.1)  # the first's commit returned: the writer lingers
        following = asyncio.ensure_future(read(5))
        await asyncio.gather(first, waiting, following)

    try:
        assert all(took < 0.25 for took in asyncio.run(one_after_another()))
        assert log.transactions == [1, 1, 1]
        asyncio.run(under_load())
        assert log.transactions == [1, 1, 1, 1, 2]  # the waiting and the following together
        time.sleep(1.1)  # quiet for longer than LOADED
        started = time.monotonic()
        asyncio.run(one_after_another())
        assert time.monotonic() - started < 0.75  # none of the three lingered
        for n in range(6):
            assert len(log.of(f"case-{n}")) == (2 if n < 3 else 1)
    finally:
        log.close()
