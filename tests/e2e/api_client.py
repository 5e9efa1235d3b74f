"""A caseworker's view of the HTTP API in tests: signed-in callers and a case walked through it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient

from overleg.aggregates.values import Programme
from overleg.api.auth import dev_private_key, issue_dev_token
from overleg.policies.access import StaffRole
from overleg.policies.rules import brussels_day
from overleg.settings import Settings

REQUEST: dict[str, Any] = {
    "programme": "integrale_jeugdhulp",
    "region": "Antwerpen",
    "requested_by": {"ref": "hulpverlener-1", "role": "professional"},
    "channel": "cobe",
    "client": {"ref": "jongere-1", "birth_date": "2010-05-01"},
    "question": "Afstemming tussen school en thuisbegeleiding",
}


def settings_for(database_url: str, tmp_path: Path, **changes: Any) -> Settings:
    """A test's own settings; the rate limits are raised out of the way of tests that send
    many requests (tests/e2e/test_limits.py sets them low to see them work)."""
    given: dict[str, Any] = {
        "database_url": database_url,
        "dev_key_file": tmp_path / "dev-key.jwk",
        "projections": "inline",
        "intake_rate_limit": "100000/minute",
        "signin_failure_rate_limit": "100000/minute",
    }
    return Settings(**(given | changes))


def auth(
    settings: Settings,
    role: str,
    ref: str,
    region: str | None = None,
    *,
    programme: str | None = None,
    municipality: str | None = None,
) -> dict[str, str]:
    token = issue_dev_token(
        dev_private_key(settings.dev_key_file),
        role=StaffRole(role),
        ref=ref,
        region=region,
        programme=None if programme is None else Programme(programme),
        municipality=municipality,
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
    )
    return {"Authorization": f"Bearer {token}"}


def meeting_day() -> str:
    """A meeting held today: not before today's request, and not after the day it is
    recorded (both are days in Belgium)."""
    return brussels_day(datetime.now(UTC)).isoformat()


@dataclass
class Walk:
    """One case driven through the API by its team and its chair."""

    client: TestClient
    settings: Settings
    case_id: str = ""
    version: int = 0

    @property
    def team(self) -> dict[str, str]:
        return auth(self.settings, "team", "team-antwerpen-1", "Antwerpen")

    @property
    def chair(self) -> dict[str, str]:
        return auth(self.settings, "chair", "voorzitter-1")

    def send(
        self, method: str, path: str, who: dict[str, str], body: Any = None, **headers: str
    ) -> Any:
        response = self.client.request(
            method,
            f"/cases/{self.case_id}{path}",
            json=body,
            headers={**who, "If-Match": f'"{self.version}"', **headers},
        )
        if response.status_code < 300:
            self.version = int(response.headers["ETag"].strip('"'))
        return response

    def request(self) -> Any:
        response = self.client.post("/cases", json=REQUEST, headers=self.team)
        assert response.status_code == 201, response.text
        self.case_id = response.json()["case_id"]
        self.version = 1
        return response

    def up_to_chair(self) -> None:
        self.request()
        assert (
            self.send(
                "POST", "/consents", self.team, {"party": {"ref": "jongere-1", "role": "youth"}}
            )
        ).status_code == 200
        assert self.send("PUT", "/chair", self.team, {"chair": "voorzitter-1"}).status_code == 200

    def hold_meeting(self, youth: bool | None = True) -> Any:
        return self.send(
            "POST",
            "/meetings",
            self.chair,
            {
                "held_on": meeting_day(),
                "place": "CLB, zaal 2",
                "attendance": {
                    "youth": youth,
                    "parents": False,
                    "trusted_person": None,
                    "professionals": ["hulpverlener-1", "hulpverlener-2"],
                },
            },
        )


def today() -> date:
    return datetime.now(UTC).date()


OVERLEG = Path(sys.executable).parent / "overleg"


def free_port() -> int:
    """A port nothing listens on, for a server of the test."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    """Until the service at ``url`` answers /health; fail when it exits or takes a minute."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"overleg serve exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail("overleg serve did not come up")


@contextmanager
def serving(env: dict[str, str], cwd: Path | None = None) -> Iterator[str]:
    """A real `overleg serve` with this environment, up until the block ends; its URL."""
    port = free_port()
    process = subprocess.Popen(
        [str(OVERLEG), "serve", "--port", str(port)],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


# The fixtures of every test module that talks to the API in process (tests/conftest.py
# registers them); a module defines its own to differ.
@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return settings_for(database_url, tmp_path)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    from overleg.api.app import create_app

    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def walk(client: TestClient, settings: Settings) -> Walk:
    return Walk(client, settings)
