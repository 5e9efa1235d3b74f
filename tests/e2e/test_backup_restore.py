"""docs/backup.md, done as an operator does it on PostgreSQL: dump the database, restore it
into an empty one, and find the same history (`overleg verify`), the same figures after a
rebuild, and an erased case still erased."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from test_cli import SAMPLE, overleg

from conftest import _postgres_or_skip
from overleg.adapters.eventstore import Database

ERASED = "fd24fa93-c0df-5aaf-bf82-67f9045c8555"


@pytest.fixture
def databases() -> Iterator[tuple[str, str]]:
    """Two new, empty databases on the test server: the live one and the one restored."""
    server = _postgres_or_skip()
    names = [f"overleg_backup_{uuid.uuid4().hex[:10]}", f"overleg_restore_{uuid.uuid4().hex[:10]}"]
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base = f"postgresql://{server.user}@{server.host}:{server.port}"
    try:
        yield f"{base}/{names[0]}", f"{base}/{names[1]}"
    finally:
        with psycopg.connect(server.conninfo(), autocommit=True) as conn:
            for name in names:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def _figures(url: str) -> dict[str, object]:
    done = overleg(url, "stats", "2015", "--format", "json")
    assert done.returncode == 0, done.stderr
    found: dict[str, object] = json.loads(done.stdout)
    return found


def test_a_dump_restored_into_an_empty_database_verifies_and_gives_the_same_figures(
    databases: tuple[str, str], tmp_path: Path
) -> None:
    live, restored = databases
    assert overleg(live, "import", str(SAMPLE)).returncode == 0
    assert overleg(live, "erase", ERASED, "--reason", "AVG-verzoek 7").returncode == 0
    figures = _figures(live)

    dump = tmp_path / "overleg.dump"
    subprocess.run(
        ["pg_dump", "--format=custom", "--no-owner", f"--file={dump}", live],
        check=True,
        timeout=120,
    )
    subprocess.run(
        ["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={restored}", str(dump)],
        check=True,
        timeout=120,
    )

    verified = overleg(restored, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert overleg(restored, "rebuild").returncode == 0
    assert _figures(restored) == figures
    history = json.loads(overleg(restored, "history", ERASED, "--format", "json").stdout)
    assert history[-1]["type"] == "PersonalDataErased"
    exported = overleg(restored, "export", "--case", ERASED, "-")
    assert exported.returncode == 0 and "erased:1" in exported.stdout
    assert Database.from_url(restored).backend == "postgresql"
