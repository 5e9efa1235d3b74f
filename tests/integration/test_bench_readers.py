"""The service benchmark's in-process reads run the service's own handlers as the service
runs them (on an event loop, a case not kept read on the loop's pool of threads): a case
replayed from the store and one kept answer the same, and its history has every event."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from fastapi.testclient import TestClient

from overleg.api.auth import dev_private_key, issue_dev_token
from overleg.bootstrap import bootstrap
from overleg.policies import access
from overleg.policies.access import StaffRole
from overleg.settings import Settings
from overleg.streams import import_stream

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import bench_service
from bench_import import write_stream
from bench_service import (
    forgetting,
    professional_tokens,
    read_case,
    read_history,
    readers_of,
    write_cases,
)


def test_the_benchmark_reads_cases_through_the_service_handlers(database_url: str) -> None:
    stream = io.StringIO()
    ids = write_cases(stream, 2, 10, datetime.now(UTC) - timedelta(hours=2))
    services = bootstrap(Settings(database_url=database_url))
    try:
        services.watch_writes()  # as the benchmark and the service: kept answers on the loop
        import_stream(services.app, stream.getvalue().splitlines())
        forget = forgetting(services)
        for case in ids:
            case_id = UUID(case)
            forget(case_id)
            replayed = read_case(services, case_id)
            # On SQLite the service keeps the case view and answers from it. On PostgreSQL
            # no worker ran, so there is no view (not even its tables): the case is replayed.
            on_sqlite = services.app.database.backend == "sqlite"
            assert services.app.replays.holds(case_id) != on_sqlite
            assert read_case(services, case_id) == replayed  # kept
            view = json.loads(replayed)
            assert (view["case_id"], view["version"]) == (case, 10)
            forget(case_id)
            history = json.loads(read_history(services, case_id))
            assert [entry["seq"] for entry in history] == list(range(1, 11))
            assert (
                read_history(services, case_id)
                == json.dumps(history, ensure_ascii=False, separators=(",", ":")).encode()
            )
            assert len(services.reads.of(case)) == 4  # every read recorded
    finally:
        services.close()


def test_the_benchmark_reads_each_case_as_a_professional_who_may_read_it(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--only api`` reads the cases a professional takes part in as that professional,
    with a token of their own: each token is valid, and names a reader of its case."""
    key_file = tmp_path / "dev-signing-key.jwk"
    monkeypatch.setenv("OVERLEG_DEV_KEY_FILE", str(key_file))
    stream = tmp_path / "stream.jsonl"
    write_stream(stream, 40)
    with stream.open(encoding="utf-8") as lines:
        cases = list(dict.fromkeys(json.loads(line)["case"] for line in lines))
    services = bootstrap(Settings(database_url=database_url, dev_key_file=key_file))
    try:
        import_stream(services.app, stream.read_text(encoding="utf-8").splitlines())
        if not services.inline_projections:
            services.projector.catch_up()  # as the worker keeps them
        else:
            services.fresh_views()
        database = services.app.database
        schema = database.schema or None
        monkeypatch.setattr(bench_service, "VIEWED_KEPT", 0)  # a small stream will do here
        readers = readers_of(database.backend, database_url, schema, cases)
        assert 0 < len(readers) <= len(cases)
        assert [case for case, _ref in readers] == [c for c in cases if c in dict(readers)]
        tokens = professional_tokens([ref for _case, ref in readers])
        for (case, ref), token in zip(readers, tokens, strict=True):
            who = services.verifier.verify(token)
            assert (who.role, who.ref) == (StaffRole.PROFESSIONAL, ref)
            assert access.sees(who, services.app.get_case(UUID(case)))
    finally:
        services.close()


def _app_of(source: str, path: Path) -> Any:
    """The ``app`` of one of the benchmark's app files, written to ``path`` and loaded."""
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_floor_of_a_case_not_kept_asks_the_service_statement(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API benchmark's floor on PostgreSQL answers a case the view holds (200) and not
    one it does not (404): it asks the very statement the service asks."""
    stream = io.StringIO()
    ids = write_cases(stream, 2, 10, datetime.now(UTC) - timedelta(hours=2))
    services = bootstrap(Settings(database_url=database_url))
    try:
        import_stream(services.app, stream.getvalue().splitlines())
        services.projector.catch_up()
        schema = services.app.database.schema
        monkeypatch.setenv("FLOOR_CONNINFO", services.app.database.conninfo())
        monkeypatch.setenv("FLOOR_OPTIONS", f"-c search_path={schema}")
        monkeypatch.setenv("FLOOR_EVENTS", bench_service.events_table("postgresql", schema))
        with TestClient(_app_of(bench_service.FLOOR_APP, tmp_path / "floor.py")) as client:
            for case in ids:
                assert client.get(f"/floor/{case}").status_code == 200
            assert client.get(f"/floor/{UUID(int=7)}").status_code == 404
    finally:
        services.close()


def test_the_audited_read_of_nothing_signs_in_and_records_the_read(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API benchmark's floor of every read is the service's app with one route more,
    which refuses a caller without a token and records the read of one with a token, as a
    read of a case does, without reading the case."""
    stream = io.StringIO()
    ids = write_cases(stream, 2, 10, datetime.now(UTC) - timedelta(hours=2))
    key_file = tmp_path / "dev-key.jwk"
    monkeypatch.setenv("OVERLEG_DATABASE_URL", database_url)
    monkeypatch.setenv("OVERLEG_DEV_KEY_FILE", str(key_file))
    services = bootstrap(Settings(database_url=database_url, dev_key_file=key_file))
    try:
        import_stream(services.app, stream.getvalue().splitlines())
        app = _app_of(bench_service.AUDITED_APP, tmp_path / "audited.py")
        token = issue_dev_token(
            dev_private_key(key_file),
            role=StaffRole.AUDITOR,
            ref="auditor-bench",
            audience=services.settings.jwt_audience,
        )
        with TestClient(app) as client:
            assert client.get(f"/floor/audited/{ids[0]}").status_code == 401
            bearer = {"Authorization": f"Bearer {token}"}
            answer = client.get(f"/floor/audited/{ids[0]}", headers=bearer)
            assert answer.status_code == 200 and answer.content == b"{}"
        recorded = services.reads.of(ids[0])
        assert [(r.reader, r.what) for r in recorded] == [("auditor-bench", "case")]
        assert services.reads.of(ids[1]) == []
    finally:
        services.close()


def test_the_benchmark_tells_the_cpu_each_process_spent_a_request() -> None:
    """A run's CPU per request is each process's own, measured over the run: a process
    that burns the CPU while the run lasts is told so, one that sleeps is not."""
    burn = "while True: pass"
    nap = "import time; time.sleep(60)"
    with (
        bench_service.started([sys.executable, "-c", burn], {}, Path("/dev/null")) as busy,
        bench_service.started([sys.executable, "-c", nap], {}, Path("/dev/null")) as idle,
    ):
        start = bench_service.cpu_seconds(busy.pid)

        def run() -> bench_service.Load:
            """A run of 200 requests, over while the busy process spent 0.3 s more."""
            deadline = time.monotonic() + 30
            while bench_service.cpu_seconds(busy.pid) - start < 0.3:
                assert time.monotonic() < deadline
                time.sleep(0.005)
            return bench_service.Load(100.0, 0.01, 0.02, 0, seconds=2.0)

        load = bench_service.with_cpu(run, {"answering": busy.pid, "worker": idle.pid}, None)
    # 0.3 s of CPU (and what it spent between the two first readings) over 200 requests
    assert 1.4 <= load.cpu_ms["answering"] <= 1.8
    assert load.cpu_ms["worker"] < 0.1
    assert "postgresql" not in load.cpu_ms


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_benchmark_tells_the_cpu_the_postgresql_server_spent(database_url: str) -> None:
    server = bench_service.postgres_server()
    assert server is not None  # the server of these tests runs on this machine
    with psycopg.connect(bench_service.PG, autocommit=True) as conn:

        def run() -> bench_service.Load:
            conn.execute("SELECT count(*) FROM generate_series(1, 3000000)")
            return bench_service.Load(10.0, 0.01, 0.02, 0, seconds=1.0)  # 10 requests

        load = bench_service.with_cpu(run, {}, server)
    assert load.cpu_ms["postgresql"] > 10  # counting three million rows takes a while
