"""The production topology of `compose.yaml`, started as its processes with its environment,
where no container engine runs: two `overleg serve`, one `overleg worker`, PostgreSQL (a new
database of the test server), the secrets as files, the identity provider's key set served
over HTTP. A case made through one instance is read through the other; the worker makes the
second ready; the healthcheck of the compose file passes; a key the provider rotates in is
accepted without a restart."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx2 as httpx
import psycopg
import pytest
from api_client import REQUEST, free_port
from psycopg import sql
from ruamel.yaml import YAML

from conftest import _postgres_or_skip
from overleg.adapters.sealing import MasterKeys
from overleg.api.auth import dev_private_key, issue_dev_token, public_jwks
from overleg.policies.access import StaffRole

COMPOSE = Path(__file__).resolve().parents[2] / "compose.yaml"
BIN = Path(sys.executable).parent
ISSUER = "https://login.test/realms/overleg"


class _KeySet(BaseHTTPRequestHandler):
    jwks: ClassVar[dict[str, Any]] = {"keys": []}

    def do_GET(self) -> None:
        body = json.dumps(type(self).jwks).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


def _interpolated(value: str, given: dict[str, str]) -> str:
    """Compose's ``${NAME:?message}`` and ``${NAME:-default}``, from ``given``."""

    def one(match: re.Match[str]) -> str:
        name, kind, rest = match.group(1), match.group(2), match.group(3)
        if name in given:
            return given[name]
        assert kind == ":-", f"{name} must be given"
        return rest

    return re.sub(r"\$\{(\w+)(:\?|:-)([^}]*)\}", one, value)


@pytest.fixture
def database() -> Iterator[tuple[str, str, int, str]]:
    server = _postgres_or_skip()
    name = f"overleg_topology_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield server.user, server.host, server.port, name
    finally:
        with psycopg.connect(server.conninfo(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def test_the_compose_topology_runs_as_its_processes(
    database: tuple[str, str, int, str], tmp_path: Path
) -> None:
    compose = YAML(typ="safe").load(COMPOSE.read_text())
    services = compose["services"]
    assert services["overleg"]["deploy"]["replicas"] == 2
    assert services["overleg"]["image"] == services["worker"]["image"]  # one image
    assert "build" not in services["worker"]  # built once, by the service

    # The identity provider's key set, served over HTTP.
    signing = dev_private_key(tmp_path / "provider-key.jwk")
    _KeySet.jwks = public_jwks(signing)
    provider = ThreadingHTTPServer(("127.0.0.1", 0), _KeySet)
    threading.Thread(target=provider.serve_forever, daemon=True).start()

    # The secrets, as files where compose mounts them (here: a folder of the test).
    secrets = tmp_path / "run-secrets"
    secrets.mkdir()
    (secrets / "postgres_password").write_text("")  # the test server trusts local users
    (secrets / "master_keys").write_text(MasterKeys.generate("k1") + "\n")

    user, host, port, name = database
    given = {
        "OVERLEG_JWKS_URL": f"http://127.0.0.1:{provider.server_port}/certs",
        "OVERLEG_JWT_ISSUER": ISSUER,
    }

    def environment(service: str) -> dict[str, str]:
        env = {k: _interpolated(str(v), given) for k, v in services[service]["environment"].items()}
        for key, value in env.items():  # the same settings, pointed at this machine
            env[key] = value.replace("/run/secrets", str(secrets))
        env["OVERLEG_DATABASE_URL"] = env["OVERLEG_DATABASE_URL"].replace(
            "overleg@postgres:5432/overleg", f"{user}@{host}:{port}/{name}"
        )
        return {**os.environ, **env}

    def command(service: str, listen: int | None = None) -> list[str]:
        found = [str(BIN / "overleg"), *services[service]["command"][1:]]
        if listen is not None:
            found[found.index("--port") + 1] = str(listen)
            found[found.index("--host") + 1] = "127.0.0.1"
        return found

    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen(command("overleg", p), env=environment("overleg"), stderr=subprocess.PIPE)
        for p in ports
    ]
    processes.append(
        subprocess.Popen(command("worker"), env=environment("worker"), stderr=subprocess.PIPE)
    )
    try:
        check = services["overleg"]["healthcheck"]["test"]
        assert check[:3] == ["CMD", "python", "-c"]
        for listen in ports:
            probe = check[3].replace("127.0.0.1:8000", f"127.0.0.1:{listen}")
            for _ in range(150):
                probed = subprocess.run(
                    [sys.executable, "-c", probe], check=False, capture_output=True
                )
                if probed.returncode == 0:
                    break
                time.sleep(0.1)
            else:
                processes[0].terminate()
                _, why = processes[0].communicate(timeout=10)
                pytest.fail(f"the healthcheck never passed on port {listen}: {why[-3000:]!r}")

        first, second = (f"http://127.0.0.1:{p}" for p in ports)
        team = {
            "Authorization": "Bearer "
            + issue_dev_token(
                signing,
                role=StaffRole.TEAM,
                ref="team-antwerpen-1",
                region="Antwerpen",
                audience="overleg",
                issuer=ISSUER,
            )
        }
        made = httpx.post(f"{first}/cases", json=REQUEST, headers=team)
        assert made.status_code == 201, made.text
        case_id = made.json()["case_id"]
        assert httpx.get(f"{second}/cases/{case_id}", headers=team).status_code == 200

        for _ in range(100):  # the worker brings the projections of both instances up to date
            ready = httpx.get(f"{second}/health/ready")
            listed = httpx.get(f"{second}/cases", headers=team).json()
            if ready.status_code == 200 and [c["case_id"] for c in listed["items"]] == [case_id]:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"never ready with the case listed: {ready.text}")

        # The provider rotates a new key in: accepted without a restart.
        rotated = dev_private_key(tmp_path / "provider-key-2.jwk")
        _KeySet.jwks = {"keys": public_jwks(rotated)["keys"] + public_jwks(signing)["keys"]}
        time.sleep(5.5)  # the key set is fetched again for an unknown key at most every 5 s
        token = issue_dev_token(
            rotated, role=StaffRole.AUDITOR, ref="auditor-1", audience="overleg", issuer=ISSUER
        )
        read = httpx.get(f"{first}/cases/{case_id}", headers={"Authorization": f"Bearer {token}"})
        assert read.status_code == 200, read.text
        with urllib.request.urlopen(f"{second}/metrics") as answer:
            assert b"overleg_projection_lag_events" in answer.read()
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        provider.shutdown()
