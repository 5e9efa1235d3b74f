"""`overleg serve` as a real process: a case over HTTP, 100 chairs saving at once, and request
bodies that are too slow or too large."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest
from api_client import REQUEST, free_port, meeting_day, wait_until_up

BIN = Path(sys.executable).parent
THREADS = 100
RETRYING = 20  # writers that retry until their change lands


@dataclass
class Server:
    url: str
    env: dict[str, str]
    pid: int = 0

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def token(self, role: str, ref: str, region: str | None = None) -> dict[str, str]:
        args = [str(BIN / "overleg"), "token", "--role", role, "--ref", ref]
        if region:
            args += ["--region", region]
        printed = subprocess.run(
            args, env=self.env, capture_output=True, text=True, check=True, timeout=60
        )
        return {"Authorization": f"Bearer {printed.stdout.strip()}"}


@contextmanager
def _serving(database_url: str, tmp_path: Path, **settings: str) -> Iterator[Server]:
    port = free_port()
    env = {
        **os.environ,
        "OVERLEG_DATABASE_URL": database_url,
        "OVERLEG_DEV_KEY_FILE": str(tmp_path / "dev-key.jwk"),
        "OVERLEG_LOG_LEVEL": "warning",
        **settings,
    }
    processes = [subprocess.Popen([str(BIN / "overleg"), "serve", "--port", str(port)], env=env)]
    if database_url.startswith("postgresql"):  # production shape: a separate worker
        processes.append(subprocess.Popen([str(BIN / "overleg"), "worker"], env=env))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, processes[0])
        yield Server(url, env, processes[0].pid)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    with _serving(database_url, tmp_path) as running:
        yield running


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Server]:
    """A server with a one-second body timeout and the default 1 MB body limit; the limits
    are the service's, not the store's, so one backend is enough."""
    store = f"sqlite:///{tmp_path / 'overleg.db'}"
    with _serving(store, tmp_path, OVERLEG_BODY_TIMEOUT="1") as running:
        yield running


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


HEAD = "POST /intake HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{}\r\n"


def _answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or resets it: closed with
    some of a refused body still unread, it does)."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def test_the_server_runs_on_the_compiled_event_loop_and_http_parser(guarded: Server) -> None:
    """``uvloop`` and ``httptools`` are dependencies so that the service runs on them: the
    running server has both loaded (``docs/dependencies.md``)."""
    with httpx.Client(base_url=guarded.url, timeout=10) as client:
        assert client.get("/health/live").status_code == 200
    loaded = Path(f"/proc/{guarded.pid}/maps").read_text()
    assert "/uvloop/loop." in loaded
    assert "/httptools/parser/parser." in loaded


def test_a_body_that_never_arrives_gets_408_and_the_connection_is_closed(guarded: Server) -> None:
    with socket.create_connection(("127.0.0.1", guarded.port), timeout=10) as sock:
        sock.sendall(HEAD.format("Content-Length: 500\r\n").encode() + b'{"programme": ')
        started = time.monotonic()
        answer = _answer(sock)  # returns only because the server closes the connection
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"connection: close" in answer.lower()
    assert b"/problems/request-timeout" in answer
    assert 0.8 <= waited < 5, waited


def test_a_body_arriving_too_slowly_gets_408(guarded: Server) -> None:
    with socket.create_connection(("127.0.0.1", guarded.port), timeout=10) as sock:
        sock.sendall(HEAD.format("Content-Length: 400\r\n").encode())
        started = time.monotonic()
        try:
            for _ in range(40):  # ten bytes every 0.1 s: four seconds for the whole body
                sock.sendall(b" " * 10)
                time.sleep(0.1)
        except OSError:
            pass  # the server gave up on it and closed the connection
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert time.monotonic() - started < 3


def _vm_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for process {pid}")


def _send_large_body(port: int, size: int, chunked: bool) -> tuple[bytes, int]:
    """Send a body of ``size`` bytes (or until the server closes); the server's answer, and
    how many bytes of the body went out before it did."""
    framing = "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {size}\r\n"
    chunk = b"x" * 1_000_000
    frame = b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        answers: list[bytes] = []
        reader = threading.Thread(target=lambda: answers.append(_answer(sock)))
        sock.sendall(HEAD.format(framing).encode())
        reader.start()
        sent = 0
        try:
            while sent < size:
                sock.sendall(frame)
                sent += len(chunk)
        except OSError:
            pass  # refused: the server closed the connection
        reader.join(timeout=30)
    return (answers[0] if answers else b""), sent


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_four_bodies_of_100_mb_at_once_are_refused_and_memory_stays_flat(
    guarded: Server, chunked: bool
) -> None:
    before = _vm_kib(guarded.pid, "VmHWM")
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(lambda _: _send_large_body(guarded.port, 100_000_000, chunked), range(4))
        )
    peak = _vm_kib(guarded.pid, "VmHWM")
    for answer, sent in results:
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
        assert b"/problems/content-too-large" in answer
        assert sent < 100_000_000  # cut off, not read to the end
    # The limit is 1 MB a request: four of them, and the server's own buffers, stay far
    # below one body (before: the server grew by 1.2 GB under this load).
    assert peak - before < 40_000, f"peak RSS grew by {(peak - before) // 1024} MB"
    with httpx.Client(base_url=guarded.url, timeout=10) as http:
        assert http.get("/health").status_code == 200
