"""The commands that queue while another is being written are written together, in one
transaction and one commit: each in a savepoint of its own, each answered with its own
outcome, none answered before the commit, and a failed commit stores none of them. On
SQLite and on PostgreSQL alike."""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError
from prometheus_client import REGISTRY

from conftest import consented
from overleg.adapters.eventstore import Database, StoreUnavailable
from overleg.adapters.grouping import Write
from overleg.adapters.integrity import verify
from overleg.adapters.recorders import PostgresEventRecorder
from overleg.application import CommandKey, Outcome, Overleg
from overleg.commands import AppointChair, ReportBottleneck
from overleg.policies.access import Principal, StaffRole

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from chaos_suite import CommitCutter

TEAM = Principal("team-1", StaffRole.TEAM, region="Limburg")
CHAIR = Principal("vz-1", StaffRole.CHAIR)
CASES = [UUID(int=700 + k) for k in range(6)]


@pytest.fixture
def app(store: Overleg) -> Overleg:
    return store


class HeldWriter:
    """Holds the first group's write until released, and notes each group's size: the
    commands sent meanwhile queue behind it, as they do behind a slow commit."""

    def __init__(self, app: Overleg, monkeypatch: pytest.MonkeyPatch) -> None:
        self.app, self.sizes = app, list[int]()
        self.writing, self.release = threading.Event(), threading.Event()
        write = app.recorder.insert_group  # type: ignore[attr-defined]

        def held(group: Sequence[Write]) -> None:
            self.sizes.append(len(group))
            if len(self.sizes) == 1:
                self.writing.set()
                assert self.release.wait(10)
            write(group)

        monkeypatch.setattr(app.recorder, "insert_group", held)

    def until_waiting(self, count: int) -> None:
        group = self.app._group
        assert group is not None
        deadline = time.monotonic() + 10
        while group.waiting < count:
            assert time.monotonic() < deadline, f"{group.waiting} of {count} commands queued"
            time.sleep(0.01)


def opened(app: Overleg, case_id: UUID) -> int:
    """A consented case with its chair; its version."""
    consented(app, case_id, TEAM)
    return app.handle(AppointChair(case_id, CHAIR.ref), TEAM).version


def report(app: Overleg, case_id: UUID, version: int, key: str | None = None) -> Outcome:
    command = ReportBottleneck(case_id, "wachtlijsten", "Geen plaats binnen drie maanden")
    given = None if key is None else CommandKey("chair:vz-1", key, "same-request", given=True)
    return app.handle(command, CHAIR, version, given)


def outcome_of(future: Future[Outcome]) -> Outcome | BaseException:
    error = future.exception(timeout=20)
    return error if error is not None else future.result()


def stored_versions(app: Overleg) -> dict[UUID, int]:
    return {case_id: app.get_case(case_id).version for case_id in CASES}


def committed() -> float:
    """Commands written by commits of this process so far."""
    return REGISTRY.get_sample_value("overleg_commands_per_commit_sum") or 0.0


def test_commands_queued_behind_a_write_are_committed_together_each_with_its_own_answer(
    app: Overleg, monkeypatch: pytest.MonkeyPatch
) -> None:
    versions = {case_id: opened(app, case_id) for case_id in CASES}
    held = HeldWriter(app, monkeypatch)
    before = committed()
    calls = [
        *((case_id, versions[case_id], None) for case_id in CASES[1:5]),
        # the same version of a case twice: the store takes the group's first only
        (CASES[1], versions[CASES[1]], None),
        # one request sent twice under its idempotency key: both get its one outcome
        (CASES[5], versions[CASES[5]], "key-1"),
        (CASES[5], versions[CASES[5]], "key-1"),
    ]
    with ThreadPoolExecutor(len(calls) + 1) as pool:
        first = pool.submit(report, app, CASES[0], versions[CASES[0]])
        assert held.writing.wait(10)
        futures = [pool.submit(report, app, *call) for call in calls]
        held.until_waiting(len(calls))
        time.sleep(0.1)
        assert not any(f.done() for f in futures)  # no answer before the commit
        held.release.set()
        answers = [outcome_of(f) for f in futures]
        alone = outcome_of(first)

    assert held.sizes == [1, len(calls)]  # what queued went in one commit
    assert committed() - before == 1 + len(calls)
    assert isinstance(alone, Outcome) and alone.version == versions[CASES[0]] + 1
    assert all(isinstance(a, Outcome) for a in answers[1:4])
    twice = answers[0], answers[4]
    assert sorted(type(a).__name__ for a in twice) == ["Outcome", "StaleCase"]
    retried = [a for a in answers[5:] if isinstance(a, Outcome)]
    assert [a.version for a in retried] == [versions[CASES[5]] + 1] * 2
    assert sorted(a.replayed for a in retried) == [False, True]
    assert stored_versions(app) == {case_id: v + 1 for case_id, v in versions.items()}
    assert verify(app.recorder).ok
    assert app.commands.find_command("chair:vz-1", "key-1") is not None


def test_a_group_whose_transaction_fails_stores_none_of_its_commands(
    app: Overleg, monkeypatch: pytest.MonkeyPatch
) -> None:
    versions = {case_id: opened(app, case_id) for case_id in CASES}
    held = HeldWriter(app, monkeypatch)
    postgres = isinstance(app.recorder, PostgresEventRecorder)
    name = "_write_command" if postgres else "_insert_events"
    insert = getattr(app.recorder, name)
    broken = psycopg.OperationalError("server closed the connection unexpectedly")

    def failing(target: Any, stored: Sequence[Any], *args: Any, **kwargs: Any) -> Any:
        if any(UUID(str(e.originator_id)) == CASES[3] for e in stored):
            raise broken if postgres else sqlite3.OperationalError("disk I/O error")
        return insert(target, stored, *args, **kwargs)

    monkeypatch.setattr(app.recorder, name, failing)
    monkeypatch.setattr(app.recorder, "timeout", 0.3)  # the store's retries give up soon
    with ThreadPoolExecutor(5) as pool:
        first = pool.submit(report, app, CASES[0], versions[CASES[0]])
        assert held.writing.wait(10)
        # written before the broken one and after it, in the same transaction
        futures = [pool.submit(report, app, c, versions[c]) for c in CASES[1:5]]
        held.until_waiting(len(futures))
        held.release.set()
        answers = [outcome_of(f) for f in futures]
        assert isinstance(outcome_of(first), Outcome)

    assert held.sizes == [1, 4]
    assert all(isinstance(a, StoreUnavailable) for a in answers), answers
    after = dict(versions)
    after[CASES[0]] += 1
    assert stored_versions(app) == after  # nothing of the failed group was stored
    assert verify(app.recorder).ok
    monkeypatch.undo()
    assert report(app, CASES[1], versions[CASES[1]]).version == versions[CASES[1]] + 1


def test_a_command_no_writer_takes_in_time_is_refused_and_never_written(
    app: Overleg, monkeypatch: pytest.MonkeyPatch
) -> None:
    versions = {case_id: opened(app, case_id) for case_id in CASES[:2]}
    held = HeldWriter(app, monkeypatch)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(report, app, CASES[0], versions[CASES[0]])
        assert held.writing.wait(10)
        monkeypatch.setattr(app, "timeout", 0.2)
        with pytest.raises(StoreUnavailable):
            report(app, CASES[1], versions[CASES[1]])
        group = app._group
        assert group is not None and group.waiting == 0
        held.release.set()
        assert isinstance(outcome_of(first), Outcome)
    assert held.sizes == [1]
    assert app.get_case(CASES[1]).version == versions[CASES[1]]
    monkeypatch.undo()  # the refused command left no trace: its version is free
    assert report(app, CASES[1], versions[CASES[1]]).version == versions[CASES[1]] + 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_group_the_store_refuses_whole_is_rolled_back_and_sends_no_commit(
    database_url: str,
) -> None:
    """Events written again to learn whether a commit whose answer was lost had landed
    (``Overleg._confirm``) are refused when it had. A group of only such writes sends no
    COMMIT: its answer, too, could be lost, and its commands, whose outcome is known, would
    wait out an unknown one again (in front of the server, a relay that cuts the next
    COMMIT's answer sees none)."""
    url = urlsplit(database_url)
    with CommitCutter(url.port or 5432) as cutter:
        relayed = url._replace(netloc=f"{url.username}@{url.hostname}:{cutter.port}")
        app = Overleg(Database.from_url(relayed.geturl()))
        try:
            versions = {case_id: opened(app, case_id) for case_id in CASES[:2]}
            again = [Write(app.recorder.select_events(case_id), {}) for case_id in CASES[:2]]
            cutter.arm(1)
            app.recorder.insert_group(again)  # type: ignore[attr-defined]
            assert all(isinstance(w.error, IntegrityError) for w in again), again
            assert (cutter.cut, cutter.armed) == (0, 1)  # no COMMIT was sent
            # A command's commit is one: its answer is lost, and writing it again finds it.
            assert report(app, CASES[0], versions[CASES[0]]).version == versions[CASES[0]] + 1
            assert (cutter.cut, cutter.armed) == (1, 0)
            assert app.get_case(CASES[0]).version == versions[CASES[0]] + 1
        finally:
            app.close()


def test_a_group_the_store_refuses_whole_answers_each_command_with_its_refusal(
    app: Overleg,
) -> None:
    versions = {case_id: opened(app, case_id) for case_id in CASES[:3]}
    again = [Write(app.recorder.select_events(case_id), {}) for case_id in CASES[:3]]
    app.recorder.insert_group(again)  # type: ignore[attr-defined]
    assert all(isinstance(w.error, IntegrityError) for w in again), again
    assert {case_id: app.get_case(case_id).version for case_id in versions} == versions
    assert report(app, CASES[1], versions[CASES[1]]).version == versions[CASES[1]] + 1
    assert verify(app.recorder).ok
