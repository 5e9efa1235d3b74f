"""The API's limits: request bodies (413), and per client address the public form and requests
without a valid bearer token (429 with Retry-After)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from api_client import (
    REQUEST,
    auth,
    settings_for,
)
from fastapi.testclient import TestClient

from overleg.api.app import create_app
from overleg.settings import Settings

FORM: dict[str, Any] = {
    "programme": "integrale_jeugdhulp",
    "region": "Limburg",
    "requested_by": {"ref": "ouder-4", "role": "parent"},
    "client": {"ref": "jongere-4", "birth_date": None},
    "question": "Wij willen samen rond de tafel.",
}


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return settings_for(
        database_url,
        tmp_path,
        max_body_bytes=2_000,
        intake_rate_limit="3/minute",
        signin_failure_rate_limit="3/minute",
    )


def _cases(client: TestClient, settings: Settings) -> int:
    listed = client.get("/cases", headers=auth(settings, "auditor", "auditor-1"))
    assert listed.status_code == 200, listed.text
    return int(listed.json()["total"])


def test_a_body_over_the_limit_is_refused_unread_with_413(
    client: TestClient, settings: Settings
) -> None:
    large = {**FORM, "question": "x" * 3_000}
    refused = client.post("/intake", json=large)
    assert refused.status_code == 413
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "/problems/content-too-large"
    assert "2000 bytes" in refused.json()["detail"]
    assert refused.headers["Connection"] == "close"
    assert len(refused.headers["X-Request-ID"]) == 16
    # Before anything else looks at the request: no token needed to be refused.
    command = client.post("/cases", json={**REQUEST, "question": "x" * 3_000})
    assert command.status_code == 413
    assert _cases(client, settings) == 0


def test_a_chunked_body_that_grows_past_the_limit_is_refused_with_413(
    client: TestClient, settings: Settings
) -> None:
    chunks = iter([b'{"question": "', b"x" * 1_500, b"x" * 1_500, b'"}'])
    refused = client.post("/intake", content=chunks, headers={"Content-Type": "application/json"})
    assert "content-length" not in refused.request.headers  # counted as it arrives
    assert refused.status_code == 413
    assert refused.json()["type"] == "/problems/content-too-large"
    assert _cases(client, settings) == 0


def test_a_body_within_the_limit_goes_through(client: TestClient, settings: Settings) -> None:
    near = {**FORM, "question": "x" * 1_700}
    assert client.post("/intake", json=near).status_code == 202
    assert _cases(client, settings) == 1


def test_the_public_form_is_limited_per_address_with_retry_after(
    client: TestClient, settings: Settings
) -> None:
    for n in range(3):
        assert client.post("/intake", json={**FORM, "question": f"vraag {n}"}).status_code == 202
    refused = client.post("/intake", json=FORM)
    assert refused.status_code == 429
    assert refused.json()["type"] == "/problems/too-many-requests"
    assert "3 per 1 minute" in refused.json()["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert _cases(client, settings) == 3  # the refused form recorded nothing

    with TestClient(client.app, client=("203.0.113.9", 40000)) as elsewhere:
        assert elsewhere.post("/intake", json=FORM).status_code == 202


def test_after_retry_after_the_next_form_goes_through(database_url: str, tmp_path: Path) -> None:
    settings = settings_for(database_url, tmp_path, intake_rate_limit="2/second")
    with TestClient(create_app(settings)) as client:
        assert [client.post("/intake", json=FORM).status_code for _ in range(2)] == [202, 202]
        refused = client.post("/intake", json=FORM)
        assert refused.status_code == 429
        time.sleep(int(refused.headers["Retry-After"]) + 0.05)
        assert client.post("/intake", json=FORM).status_code == 202


def test_requests_without_a_valid_token_are_limited_per_address(
    client: TestClient, settings: Settings
) -> None:
    bad = {"Authorization": "Bearer not.a.token"}
    assert [client.get("/cases", headers=bad).status_code for _ in range(3)] == [401] * 3
    refused = client.get("/cases", headers=bad)
    assert refused.status_code == 429
    assert refused.json()["type"] == "/problems/too-many-requests"
    assert "valid bearer token" in refused.json()["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert client.get("/cases").status_code == 429  # no token at all counts the same
    # A valid token is never held up, not even from this address.
    assert client.get("/cases", headers=auth(settings, "auditor", "auditor-1")).status_code == 200
    team = auth(settings, "team", "team-1", "Antwerpen")
    assert client.post("/cases", json=REQUEST, headers=team).status_code == 201


def test_a_limit_that_cannot_be_read_stops_the_start(database_url: str, tmp_path: Path) -> None:
    settings = settings_for(database_url, tmp_path, intake_rate_limit="often")
    with pytest.raises(ValueError, match="OVERLEG_INTAKE_RATE_LIMIT='often'"):
        create_app(settings)
