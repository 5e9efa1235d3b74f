"""The projection worker as a real process: it follows new events, and survives kill -9 exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from conftest import statistics_json
from overleg.adapters.eventstore import Database
from overleg.adapters.views import APPLICATION_NAME, ViewStore
from overleg.application import Overleg
from overleg.bootstrap import Services, bootstrap
from overleg.projections.runner import Projector
from overleg.settings import Settings
from overleg.streams import import_stream

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from make_sample_stream import stream

OVERLEG = str(Path(sys.executable).parent / "overleg")
YEARS = (2014, 2015, 2016)


def _lines(cases: int, seed: int) -> list[str]:
    return [json.dumps(line) for line in stream(cases, seed, 2015)]


def _start_worker(url: str, batch: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [OVERLEG, "worker", "--poll", "0.2", "--batch", str(batch)],
        env={**os.environ, "OVERLEG_DATABASE_URL": url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def reader(database_url: str) -> Iterator[Services]:
    """The test's own view of the store: it reads positions and figures, it applies nothing."""
    services = bootstrap(Settings(database_url=database_url, projections="worker"))
    try:
        yield services
    finally:
        services.close()


def _expected(lines: list[str], tmp_path: Path) -> dict[int, object]:
    """The figures of the same events projected in one go, in this process, on a new store."""
    app = Overleg(Database.from_url(f"sqlite:///{tmp_path / 'expected.db'}"))
    views = ViewStore(app.database)
    try:
        import_stream(app, lines)
        Projector(app.event_log, views).catch_up()
        return {year: statistics_json(views, year) for year in YEARS}
    finally:
        views.close()
        app.close()


def _caught_up(reader: Services) -> bool:
    head = reader.app.event_log.head()
    return all(position == head for position in reader.projector.positions().values())


def _stop(worker: subprocess.Popen[bytes]) -> str:
    worker.send_signal(signal.SIGTERM)
    _, stderr = worker.communicate(timeout=30)
    return stderr.decode()


def test_worker_follows_new_events_live(reader: Services, database_url: str) -> None:
    worker = _start_worker(database_url, batch=1000)
    try:
        lines = _lines(40, seed=7)
        import_stream(reader.app, lines)
        _wait_for(lambda: _caught_up(reader), "the worker to apply the first import")
        more = _lines(70, seed=7)  # the same 40 cases (already stored) and 30 new ones
        import_stream(reader.app, more)
        _wait_for(lambda: _caught_up(reader), "the worker to apply events written later")
    finally:
        log = _stop(worker)
    assert worker.returncode == 0, log
    events = reader.views.read("SELECT COUNT(*) FROM audit_trail")[0][0]
    assert events == len(more)
    entries = [json.loads(line) for line in log.splitlines()]
    assert {e["event"] for e in entries} >= {"caught_up", "stopped"}


def test_worker_killed_mid_way_resumes_exactly(
    reader: Services, database_url: str, tmp_path: Path
) -> None:
    lines = _lines(1500, seed=11)
    import_stream(reader.app, lines)
    head = reader.app.event_log.head()
    worker = _start_worker(database_url, batch=25)
    _wait_for(
        lambda: min(reader.projector.positions().values()) >= head // 4,
        "the worker to get under way",
    )
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    assert worker.returncode == -signal.SIGKILL
    stopped_at = reader.projector.positions()
    assert all(0 < position < head for position in stopped_at.values()), stopped_at

    restarted = _start_worker(database_url, batch=25)
    try:
        _wait_for(lambda: _caught_up(reader), "the restarted worker to catch up", timeout=120)
    finally:
        log = _stop(restarted)
    assert restarted.returncode == 0, log

    assert {year: statistics_json(reader.views, year) for year in YEARS} == _expected(
        lines, tmp_path
    )
    trail = reader.views.read("SELECT COUNT(*), COUNT(DISTINCT case_id) FROM audit_trail")[0]
    assert tuple(trail) == (len(lines), 1500)


def test_the_worker_outlives_its_database_connections_being_cut(
    reader: Services, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        return  # SQLite has no server connections to cut
    worker = _start_worker(database_url, batch=1000)
    try:
        import_stream(reader.app, _lines(20, seed=3))
        _wait_for(lambda: _caught_up(reader), "the worker to catch up")
        with psycopg.connect(Database.from_url(database_url).conninfo(), autocommit=True) as db:
            cut = db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s AND pid <> pg_backend_pid()",
                (APPLICATION_NAME,),
            ).fetchall()
        assert cut, "no projection connections to cut"
        import_stream(reader.app, _lines(35, seed=3))  # 15 new cases
        _wait_for(lambda: _caught_up(reader), "the worker to reconnect and apply new events")
    finally:
        log = _stop(worker)
    assert worker.returncode == 0, log
    assert reader.views.read("SELECT COUNT(DISTINCT case_id) FROM audit_trail")[0][0] == 35
    assert "catch_up_failed" in log
