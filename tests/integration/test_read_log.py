"""Every read is recorded before it is answered; reads at the same time share a commit."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence
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
    """A read that finds the log's last commit just returned waits ``LINGER`` for the reads
    that follow it, and they share its commit; a read after a quiet moment is written at
    once. (The moments are stretched here, so that the test does not ride on the
    machine's speed.)"""
    monkeypatch.setattr(records, "LINGER", 0.3)
    monkeypatch.setattr(records, "LOADED", 1.0)
    log = _Counted(views)
    log.pause = 0.0

    async def reads() -> tuple[float, list[float]]:
        started = time.monotonic()
        await log.recorded(AUDITOR, ["case-0"], "case", "request-0")  # the log was quiet
        alone = time.monotonic() - started
        first = asyncio.ensure_future(log.recorded(AUDITOR, ["case-1"], "case", "request-1"))
        await asyncio.sleep(0.05)  # a moment later, within the linger
        second = asyncio.ensure_future(log.recorded(AUDITOR, ["case-2"], "case", "request-2"))
        await asyncio.gather(first, second)
        await asyncio.sleep(1.1)  # quiet for longer than LOADED
        started = time.monotonic()
        await log.recorded(AUDITOR, ["case-3"], "case", "request-3")
        return alone, [time.monotonic() - started]

    try:
        alone, [after_quiet] = asyncio.run(reads())
        assert alone < 0.25 and after_quiet < 0.25  # neither waited the linger
        assert log.transactions == [1, 2, 1]
        for n in range(4):
            assert [r.request_id for r in log.of(f"case-{n}")] == [f"request-{n}"]
    finally:
        log.close()
