"""No existence oracle: to every caller but the auditor, a case they may not see answers
exactly like a case that does not exist, on every endpoint of a case (status, body and
headers, but for the ids that differ in any two answers), and the read log names each
request by the service's own id, with the caller's X-Request-ID only beside it."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_client import Walk, auth, settings_for
from fastapi.testclient import TestClient

from overleg.api.app import create_app
from overleg.settings import Settings

UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return settings_for(database_url, tmp_path)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def walk(client: TestClient, settings: Settings) -> Walk:
    walk = Walk(client, settings)
    walk.up_to_chair()
    assert walk.hold_meeting().status_code == 201
    return walk


def _operations(client: TestClient) -> list[tuple[str, str, Any]]:
    """Every operation on one case, with the example body its description gives."""
    spec = client.get("/openapi.json").json()
    found = []
    for path, operations in spec["paths"].items():
        if not path.startswith("/cases/{case_id}"):
            continue
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            body = None
            content = operation.get("requestBody", {}).get("content", {})
            schema = content.get("application/json", {}).get("schema", {})
            if "$ref" in schema:
                component = spec["components"]["schemas"][schema["$ref"].split("/")[-1]]
                body = (component.get("examples") or [component.get("example")])[0]
            found.append((method.upper(), path.replace("{meeting}", "1"), body))
    return found


def _answer(client: TestClient, method: str, path: str, body: Any, who: dict[str, str]) -> Any:
    headers = {**who, "If-Match": '"3"', "Idempotency-Key": uuid.uuid4().hex}
    return client.request(method, path, json=body, headers=headers)


def _shape(response: Any) -> tuple[int, str, list[str]]:
    """An answer with the ids that differ between any two answers taken out."""
    text = UUID_TEXT.sub("<case>", response.text)
    text = re.sub(r'"request_id":"[^"]*"', '"request_id":"<id>"', text)
    headers = sorted(
        k for k in response.headers if k.lower() not in ("x-request-id", "content-length")
    )
    return response.status_code, text, headers


def _strangers(settings: Settings) -> dict[str, dict[str, str]]:
    return {
        "team of another region": auth(settings, "team", "team-limburg-1", "Limburg"),
        "team of another programme": auth(
            settings,
            "team",
            "lco-antwerpen-1",
            programme="lokaal_clientoverleg",
            municipality="Antwerpen",
        ),
        "chair of other cases": auth(settings, "chair", "voorzitter-2"),
        "professional without a part": auth(settings, "professional", "hulpverlener-9"),
        "analyst": auth(settings, "analyst", "analist-1"),
    }


def test_a_case_one_may_not_see_answers_as_one_that_does_not_exist(
    walk: Walk, client: TestClient, settings: Settings
) -> None:
    operations = _operations(client)
    assert len(operations) >= 20  # every command on a case, and the reads
    missing = str(uuid.uuid4())
    compared = 0
    for name, who in _strangers(settings).items():
        for method, path, body in operations:
            seen = _answer(client, method, path.replace("{case_id}", walk.case_id), body, who)
            unseen = _answer(client, method, path.replace("{case_id}", missing), body, who)
            assert _shape(seen) == _shape(unseen), (name, method, path, seen.text)
            assert seen.status_code in (403, 404, 422), (name, method, path, seen.text)
            compared += 1
    assert compared == len(operations) * 5
    # The case is there: its own chair and the auditor are answered.
    assert client.get(f"/cases/{walk.case_id}", headers=walk.chair).status_code == 200
    auditor = auth(settings, "auditor", "auditor-1")
    assert client.get(f"/cases/{walk.case_id}", headers=auditor).status_code == 200
    assert client.get(f"/cases/{missing}", headers=auditor).status_code == 404


def test_the_read_log_keeps_the_services_request_id_and_the_callers_beside_it(
    walk: Walk, client: TestClient, settings: Settings
) -> None:
    read = client.get(
        f"/cases/{walk.case_id}", headers={**walk.chair, "X-Request-ID": "portal-abc-123"}
    )
    assert read.status_code == 200
    served = read.headers["X-Request-ID"]
    assert served != "portal-abc-123"  # the service names the request itself
    auditor = auth(settings, "auditor", "auditor-1")
    log = client.get(f"/cases/{walk.case_id}/reads", headers=auditor).json()
    mine = [r for r in log if r["request_id"] == served]
    assert len(mine) == 1
    assert mine[0]["caller_request_id"] == "portal-abc-123"
    assert mine[0]["reader"] == "voorzitter-1"
    # A second request with the same caller id is a request of its own in the log.
    again = client.get(
        f"/cases/{walk.case_id}", headers={**walk.chair, "X-Request-ID": "portal-abc-123"}
    )
    assert again.headers["X-Request-ID"] not in (served, "portal-abc-123")
    log = client.get(f"/cases/{walk.case_id}/reads", headers=auditor).json()
    assert len({r["request_id"] for r in log if r["caller_request_id"] == "portal-abc-123"}) == 2
    assert json.dumps(log).count("portal-abc-123") == 2
