"""Erasure through the API, as the continuity team asks for it, and through the commands an
operator runs (`overleg erase`, `overleg retention`, `overleg keys`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from api_client import (
    REQUEST,
    Walk,
    auth,
    settings_for,
)
from fastapi.testclient import TestClient
from test_cli import SAMPLE, overleg

from overleg.adapters.sealing import DEV_MASTER_KEYS
from overleg.settings import Settings

PLACE = "CLB, zaal 2"  # the walk's meeting place: personal data


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # Every log line is written, so that the test can look for personal data in them.
    return settings_for(database_url, tmp_path, log_level="debug")


def _erase(walk: Walk, who: dict[str, str], reason: str = "AVG-verzoek 2026-031") -> Any:
    return walk.send("POST", "/erasure", who, {"reason": reason})


def test_the_team_erases_a_case_and_every_answer_shows_it_erased(
    client: TestClient, settings: Settings, capfd: pytest.CaptureFixture[str]
) -> None:
    walk = Walk(client, settings)
    walk.up_to_chair()
    assert walk.hold_meeting().status_code == 201
    auditor = auth(settings, "auditor", "auditor-1")
    before = client.get(f"/cases/{walk.case_id}", headers=walk.team).json()
    assert before["erased_at"] is None and before["chair"] == "voorzitter-1"

    refused = _erase(walk, walk.chair)
    assert refused.status_code == 403, refused.text
    other_team = auth(settings, "team", "team-limburg-1", "Limburg")
    assert _erase(walk, other_team).status_code == 404  # not its area: not its case
    done = _erase(walk, walk.team)
    assert done.status_code == 200, done.text
    assert done.json()["recorded"] == "PersonalDataErased"

    case = client.get(f"/cases/{walk.case_id}", headers=walk.team).json()
    assert case["erased_at"] is not None
    assert case["chair"].startswith("erased:") and case["status"] == before["status"]
    history = client.get(f"/cases/{walk.case_id}/history", headers=auditor).json()
    # What happened stays, without whom it was about; who recorded each event (a staff
    # account, the accountability record) stays too.
    said = json.dumps([entry["summary"] for entry in history])
    assert (
        "voorzitter-1" not in said and "jongere-1" not in said and PLACE not in json.dumps(history)
    )
    assert [entry["by"] for entry in history][-1] == "team-antwerpen-1"
    assert history[-1]["type"] == "PersonalDataErased"
    again = walk.send("POST", "/close", walk.team, {"reason": "x"})
    assert again.status_code == 409 and again.json()["rule"] == "case-erased", again.text

    # Every log line of the walk, at debug level, is free of the case's personal data.
    logged = "".join(capfd.readouterr())
    assert walk.case_id in logged  # the lines were captured (a case id is not personal)
    for personal in (PLACE, REQUEST["question"], "hulpverlener-2", "2010-05-01"):
        assert personal not in logged, f"{personal!r} was logged"


def test_operator_commands_erase_retain_and_rotate(database_url: str, tmp_path: Path) -> None:
    assert overleg(database_url, "import", str(SAMPLE)).returncode == 0
    unset = overleg(database_url, "retention")
    assert unset.returncode == 2 and "OVERLEG_RETENTION_DAYS" in unset.stderr

    env = {"OVERLEG_RETENTION_DAYS": "365"}
    dry = overleg(database_url, "retention", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    due = [line.split()[1] for line in dry.stdout.splitlines() if line.startswith("due ")]
    assert due, dry.stdout  # the sample's cases ended in 2015
    assert f"{len(due)} case(s) ended more than 365 day(s) ago" in dry.stdout
    assert "would be erased" in dry.stdout

    one = overleg(database_url, "erase", due[0], "--reason", "AVG-verzoek 12", "--by", "dpo-1")
    assert one.returncode == 0, one.stderr
    twice = overleg(database_url, "erase", due[0], "--reason", "AVG-verzoek 12")
    assert twice.returncode == 1 and "[case-erased]" in twice.stderr
    missing = overleg(
        database_url, "erase", "00000000-0000-4000-8000-000000000000", "--reason", "x"
    )
    assert missing.returncode == 1 and "No case" in missing.stderr

    run = overleg(database_url, "retention", env=env)
    assert run.returncode == 0, run.stderr
    erased = [line.split()[1] for line in run.stdout.splitlines() if line.startswith("erased ")]
    assert sorted(erased) == sorted(due[1:])  # the one erased before is not due again
    assert overleg(database_url, "retention", "--dry-run", env=env).stdout.startswith("0 case")
    history = overleg(database_url, "history", due[1], "--format", "json")
    assert json.loads(history.stdout)[-1]["type"] == "PersonalDataErased"
    assert "retention" in json.loads(history.stdout)[-1]["summary"]
    assert overleg(database_url, "verify").returncode == 0

    new = overleg(database_url, "keys", "new", "2026-11")
    assert new.returncode == 0 and new.stdout.startswith("2026-11:")
    old_keys = DEV_MASTER_KEYS.read_text()
    keys = tmp_path / "master-keys"
    keys.write_text(new.stdout + old_keys)
    rotated = overleg(database_url, "keys", "rotate", env={"OVERLEG_MASTER_KEYS_FILE": str(keys)})
    assert rotated.returncode == 0, rotated.stderr
    assert "wrapped again with master key '2026-11'" in rotated.stdout
    keys.write_text(new.stdout)  # the old master key retired
    still = overleg(database_url, "stats", "2015", env={"OVERLEG_MASTER_KEYS_FILE": str(keys)})
    assert still.returncode == 0, still.stderr
    broken = overleg(database_url, "stats", "2015", env={"OVERLEG_MASTER_KEYS": "x"})
    assert broken.returncode == 2 and "ID:BASE64" in broken.stderr
