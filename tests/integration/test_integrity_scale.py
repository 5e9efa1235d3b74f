"""Tamper evidence at scale (slow; not in the default run):

    .venv/bin/pytest -m slow tests/integration/test_integrity_scale.py -s

About 100,000 events of synthetic cases are imported; `verify` must find nothing on the
clean store (no false alarm) and exactly the one event edited afterwards. The time each
check takes is printed (docs/performance.md keeps the figures)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from uuid import UUID

import pytest

from overleg.adapters.eventstore import Database
from overleg.adapters.integrity import verify
from overleg.application import Overleg
from overleg.streams import import_stream
from tampering import read_state, write_state

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from make_sample_stream import stream

pytestmark = pytest.mark.slow
CASES = 11_500


def test_a_clean_store_of_100000_events_verifies_and_one_edit_is_found(
    database_url: str,
) -> None:
    lines = [json.dumps(line) for line in stream(CASES, seed=2015, year=2015)]
    app = Overleg(Database.from_url(database_url))
    try:
        import_stream(app, lines)
        started = time.perf_counter()
        clean = verify(app.recorder)
        seconds = time.perf_counter() - started
        assert clean.ok, clean.breaks[:5]
        assert clean.events == len(lines) >= 100_000
        backend = app.database.backend
        print(
            f"\nverify {backend}: {clean.events:,} events of {clean.cases:,} cases, {seconds:.1f} s"
        )

        case = UUID(json.loads(lines[len(lines) // 2])["case"])
        write_state(app.database, case, 1, read_state(app.database, case, 1) + b" ")
        started = time.perf_counter()
        found = verify(app.recorder)
        seconds = time.perf_counter() - started
        assert [(b.case_id, b.seq) for b in found.breaks if b.case_id] == [(str(case), 1)]
        print(f"verify {backend} after one edit: {len(found.breaks)} break(s), {seconds:.1f} s")
    finally:
        app.close()
