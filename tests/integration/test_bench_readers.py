"""The service benchmark's in-process reads run the service's own handlers as the service
runs them (on an event loop, a case not kept read on the loop's pool of threads): a case
replayed from the store and one kept answer the same, and its history has every event."""

from __future__ import annotations

import io
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

from overleg.bootstrap import bootstrap
from overleg.settings import Settings
from overleg.streams import import_stream

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from bench_service import forgetting, read_case, read_history, write_cases


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
