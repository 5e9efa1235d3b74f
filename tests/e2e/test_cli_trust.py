"""The commands of tamper evidence, and every command meeting a damaged store, as a user
runs them: `verify`, `checkpoint`, and one line (never a traceback, never a half file) from
`stats`, `import`, `export` and `history` when a stored event was changed behind overleg's
back; `history --as-of`; tokens that name their scope."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

from test_cli import SAMPLE, overleg

from overleg.adapters.eventstore import Database
from tampering import read_state, stored_id, tamper, write_state

CASE = UUID("fd24fa93-c0df-5aaf-bf82-67f9045c8555")  # the sample's first case


def _imported(url: str) -> Database:
    done = overleg(url, "import", str(SAMPLE))
    assert done.returncode == 0, done.stderr
    return Database.from_url(url)


def _edit_region(database: Database) -> None:
    state = json.loads(read_state(database, CASE, 1))
    state["region"] = "Nowhere"
    write_state(database, CASE, 1, json.dumps(state).encode())


def test_verify_and_checkpoint_on_a_clean_store(database_url: str) -> None:
    _imported(database_url)
    clean = overleg(database_url, "verify")
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout.startswith("OK: 97 event(s) of 12 case(s) checked; checkpoint 1")
    made = overleg(database_url, "checkpoint")
    assert made.returncode == 0, made.stderr
    fields = made.stdout.split()
    assert fields[0] == "checkpoint" and fields[1] == "2"
    assert fields[fields.index("cases") + 1] == "12"
    assert len(fields[fields.index("root") + 1]) == 64
    one = overleg(database_url, "verify", str(CASE))
    assert one.returncode == 0 and "checked" in one.stdout


def test_an_edited_region_is_one_line_from_every_command(database_url: str, tmp_path: Path) -> None:
    database = _imported(database_url)
    _edit_region(database)

    found = overleg(database_url, "verify")
    assert found.returncode == 1
    assert f"BROKEN changed: case {CASE}, seq 1" in found.stdout
    assert "BROKEN checkpoint" in found.stdout

    for args in (("export", str(tmp_path / "out.jsonl")), ("import", str(SAMPLE))):
        done = overleg(database_url, *args)
        assert done.returncode == 4, (args, done.stderr)
        assert done.stderr.count("\n") == 1, done.stderr  # one line
        assert f"damaged at case {CASE}, seq 1" in done.stderr
        assert "overleg verify" in done.stderr
    assert not list(tmp_path.iterdir())  # no export, not even a partial one

    piped = overleg(database_url, "export", "-")
    assert piped.returncode == 4
    assert "damaged" not in piped.stdout  # log lines never end up in the output

    stats = overleg(database_url, "stats", "2015", "--format", "json")
    assert stats.returncode == 0, stats.stderr
    json.loads(stats.stdout)  # the figures of every other case
    assert "left out of the projections" in stats.stderr
    assert "overleg verify" in stats.stderr


def test_a_deleted_event_is_one_line_from_import_and_export(database_url: str) -> None:
    database = _imported(database_url)
    tamper(
        database,
        "DELETE FROM {events} WHERE originator_id = ? AND originator_version = ?",
        stored_id(database, CASE),
        2,
    )
    for args in (("import", str(SAMPLE)), ("export", "-")):
        done = overleg(database_url, *args)
        assert done.returncode == 4, (args, done.stderr)
        assert "seq 2 is missing" in done.stderr
    found = overleg(database_url, "verify")
    assert found.returncode == 1 and f"BROKEN deleted: case {CASE}, seq 2" in found.stdout


def test_history_as_it_stood_at_an_instant(database_url: str) -> None:
    _imported(database_url)
    full = json.loads(overleg(database_url, "history", str(CASE), "-f", "json").stdout)
    cut = full[2]["at"]
    earlier = overleg(database_url, "history", str(CASE), "-f", "json", "--as-of", cut)
    assert earlier.returncode == 0, earlier.stderr
    assert json.loads(earlier.stdout) == full[:3]
    before = overleg(database_url, "history", str(CASE), "--as-of", "2000-01-01T00:00:00Z")
    assert before.returncode == 1 and "recorded at or before" in before.stderr
    bad = overleg(database_url, "history", str(CASE), "--as-of", "yesterday")
    assert bad.returncode == 2 and "--as-of" in bad.stderr


def test_a_token_names_its_scope(database_url: str) -> None:
    unscoped = overleg(database_url, "token", "--role", "team", "--ref", "team-1")
    assert unscoped.returncode == 2 and "names the area it works in" in unscoped.stderr
    lco = overleg(
        database_url,
        "token",
        "--role",
        "team",
        "--ref",
        "lco-genk-1",
        "--programme",
        "lokaal_clientoverleg",
        "--municipality",
        "Genk",
    )
    assert lco.returncode == 0, lco.stderr
    assert lco.stdout.count(".") == 2  # a JWT
    youth_care = overleg(
        database_url, "token", "--role", "team", "--ref", "t-1", "--region", "Limburg"
    )
    assert youth_care.returncode == 0
