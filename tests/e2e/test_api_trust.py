"""The API's part of trust: a case and its history as they stood at a past instant
(`?as_of=`), and a store holding an event changed behind overleg's back answered with a 500
that shows only its request id, writing nothing."""

from __future__ import annotations

import json
from uuid import UUID

import pytest
from api_client import Walk, auth
from fastapi.testclient import TestClient

from overleg.adapters.eventstore import Database
from overleg.settings import Settings
from tampering import read_state, write_state


@pytest.fixture
def walk(client: TestClient, settings: Settings) -> Walk:
    walk = Walk(client, settings)
    walk.up_to_chair()
    assert walk.hold_meeting().status_code == 201
    return walk


def test_a_case_and_its_history_as_they_stood_at_an_instant(walk: Walk) -> None:
    auditor = auth(walk.settings, "auditor", "auditor-1")
    path = f"/cases/{walk.case_id}"
    history = walk.client.get(f"{path}/history", headers=auditor).json()
    assert [h["type"] for h in history][-1] == "MeetingHeld"
    before_meeting = history[-2]["at"]
    then = walk.client.get(path, headers=auditor, params={"as_of": before_meeting})
    assert then.status_code == 200, then.text
    assert then.json()["meetings_held"] == 0
    assert then.json()["chair"] == "voorzitter-1"
    assert then.headers["ETag"] == f'"{len(history) - 1}"'
    now = walk.client.get(path, headers=auditor).json()
    assert now["meetings_held"] == 1
    earlier = walk.client.get(
        f"{path}/history", headers=auditor, params={"as_of": before_meeting}
    ).json()
    assert earlier == history[:-1]
    first = history[0]["at"]
    gone = walk.client.get(path, headers=auditor, params={"as_of": "2000-01-01T00:00:00Z"})
    assert gone.status_code == 404  # before its request the case did not exist
    assert walk.client.get(path, headers=auditor, params={"as_of": first}).status_code == 200
    bad = walk.client.get(path, headers=auditor, params={"as_of": "yesterday"})
    assert bad.status_code == 422


def test_a_damaged_case_is_a_500_with_only_a_request_id_and_nothing_is_written(
    walk: Walk,
) -> None:
    database = Database.from_url(walk.settings.database_url)
    case = UUID(walk.case_id)
    state = json.loads(read_state(database, case, 1))
    state["region"] = "Nowhere"
    write_state(database, case, 1, json.dumps(state).encode())
    read = walk.client.get(f"/cases/{walk.case_id}", headers=walk.chair)
    assert read.status_code == 500
    problem = read.json()
    assert problem["request_id"] == read.headers["X-Request-ID"]
    assert "Nowhere" not in read.text and "region" not in read.text
    closed = walk.send("POST", "/close", walk.team, {"reason": "Klaar"})
    assert closed.status_code == 500
    write_state(database, case, 1, read_state(database, case, 1).replace(b"Nowhere", b"Antwerpen"))
    history = walk.client.get(f"/cases/{walk.case_id}/history", headers=walk.chair).json()
    assert [h["type"] for h in history][-1] == "MeetingHeld"  # the close was not written
