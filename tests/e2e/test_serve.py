"""`overleg serve` as a real process: a case over HTTP, and 100 chairs saving at once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest
from api_client import REQUEST, meeting_day

BIN = Path(sys.executable).parent
THREADS = 100
RETRYING = 20  # writers that retry until their change lands


@dataclass
class Server:
    url: str
    env: dict[str, str]

    def token(self, role: str, ref: str, region: str | None = None) -> dict[str, str]:
        args = [str(BIN / "overleg"), "token", "--role", role, "--ref", ref]
        if region:
            args += ["--region", region]
        printed = subprocess.run(
            args, env=self.env, capture_output=True, text=True, check=True, timeout=60
        )
        return {"Authorization": f"Bearer {printed.stdout.strip()}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
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


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    port = _free_port()
    env = {
        **os.environ,
        "OVERLEG_DATABASE_URL": database_url,
        "OVERLEG_DEV_KEY_FILE": str(tmp_path / "dev-key.jwk"),
        "OVERLEG_LOG_LEVEL": "warning",
    }
    processes = [subprocess.Popen([str(BIN / "overleg"), "serve", "--port", str(port)], env=env)]
    if database_url.startswith("postgresql"):  # production shape: a separate worker
        processes.append(subprocess.Popen([str(BIN / "overleg"), "worker"], env=env))
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, processes[0])
        yield Server(url, env)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)


def test_a_case_over_http_on_a_real_server(server: Server) -> None:
    team = server.token("team", "team-antwerpen-1", "Antwerpen")
    chair = server.token("chair", "voorzitter-1")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        created = http.post("/cases", json=REQUEST, headers=team)
        assert created.status_code == 201, created.text
        case = created.headers["Location"]
        steps = [
            ("POST", "/consents", team, {"party": {"ref": "jongere-1", "role": "youth"}}),
            ("PUT", "/chair", team, {"chair": "voorzitter-1"}),
            (
                "POST",
                "/meetings",
                chair,
                {
                    "held_on": meeting_day(),
                    "place": "CLB",
                    "attendance": {
                        "youth": True,
                        "parents": True,
                        "trusted_person": None,
                        "professionals": ["hulpverlener-2"],
                    },
                },
            ),
            (
                "PUT",
                "/meetings/1/workplan",
                chair,
                {
                    "agreements": [{"who": "hulpverlener-2", "what": "Huisbezoek"}],
                    "coordinator": "hulpverlener-2",
                },
            ),
            ("POST", "/meetings/1/registration", chair, None),
        ]
        etag = created.headers["ETag"]
        for method, path, who, body in steps:
            done = http.request(
                method, f"{case}{path}", json=body, headers={**who, "If-Match": etag}
            )
            assert done.status_code in (200, 201), done.text
            etag = done.headers["ETag"]
        view = http.get(case, headers=chair).json()
        assert (view["status"], view["coordinator"]) == ("registration_completed", "hulpverlener-2")

        analyst = server.token("analyst", "analist-1")
        year = meeting_day()[:4]
        deadline = time.monotonic() + 30
        while True:  # the worker (or the service's own thread) projects the meeting
            figures = http.get(f"/statistics/{year}", headers=analyst).json()
            if figures["fully_registered"]["total"] == 1 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert figures["fully_registered"]["youth_present"]["by_region"]["Antwerpen"] == 1


def test_a_hundred_concurrent_commands_lose_and_duplicate_nothing(server: Server) -> None:
    team = server.token("team", "team-antwerpen-1", "Antwerpen")
    chair = server.token("chair", "voorzitter-1")
    with httpx.Client(base_url=server.url, timeout=60) as http:
        case = http.post("/cases", json=REQUEST, headers=team).headers["Location"]
        appointed = http.put(
            f"{case}/chair", json={"chair": "voorzitter-1"}, headers={**team, "If-Match": '"1"'}
        )
        assert appointed.status_code == 200

        def report(n: int, if_match: str) -> httpx.Response:
            return http.post(
                f"{case}/bottlenecks",
                json={"theme": "wachtlijst", "description": f"melding {n}"},
                headers={**chair, "If-Match": if_match},
            )

        with ThreadPoolExecutor(THREADS) as pool:
            statuses = sorted(
                r.status_code for r in pool.map(lambda n: report(n, '"2"'), range(THREADS))
            )
        assert statuses.count(201) == 1
        assert all(s in (409, 412) for s in statuses if s != 201), statuses

        def until_recorded(n: int) -> int:
            for attempt in range(1, 500):
                etag = http.get(case, headers=chair).headers["ETag"]
                if report(1000 + n, etag).status_code == 201:
                    return attempt
            return 0

        with ThreadPoolExecutor(RETRYING) as pool:
            attempts = list(pool.map(until_recorded, range(RETRYING)))
        assert all(attempts), "a command never got through"

        history = http.get(f"{case}/history", headers=chair).json()
    reports = [e for e in history if e["type"] == "BottleneckReported"]
    assert len(reports) == 1 + RETRYING
    assert [e["seq"] for e in history] == list(range(1, len(history) + 1))
