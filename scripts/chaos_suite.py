"""The chaos suite: overleg's write guarantees checked under faults, on a PostgreSQL of its own.

It starts a PostgreSQL cluster in a temporary directory on a free port, runs ``overleg serve``
(two replicas, and a third whose database connections pass through a relay that can lose the
answers to COMMITs) and ``overleg worker`` on it, and drives them over HTTP from many clients
while it breaks things: racing writers, answers lost on the way back to the client,
database connections terminated, a backend killed in the middle of a commit, the server
stopped, COMMIT answers lost, the worker killed, many processes starting at once on an
empty database. Every answer is kept and afterwards checked against what the store holds
(the events and the ``command_log`` rows, read with plain SQL):

* an acknowledged write (2xx) is stored exactly once, at the version it was answered with;
* a refusal (409, 412, 503 ``store-busy``) left no event and no command row;
* an ``outcome-unknown`` answer is settled by a retry with the key it returned, and that
  retry agrees with the store;
* nothing is ever answered 500, and every 503 carries ``Retry-After``.

    python scripts/chaos_suite.py            # the full run (a few minutes); scripts/chaos
    python scripts/chaos_suite.py --short    # the reduced run the test suite makes too

It prints one table of figures, each with its requirement, and exits 1 when one is not met.
``run(plan)`` does the same for callers (``tests/e2e/test_chaos_short.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import pwd
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

import httpx2 as httpx
import psycopg

OVERLEG = str(Path(sys.executable).parent / "overleg")
DATABASE = "overleg"
OP_ID = re.compile(r"op-[a-z0-9]+-[0-9]{6}")
# The run's own master key, given to every process; the checks open sealed parts with it.
MASTER_KEYS = f"chaos-{uuid.uuid4().hex[:8]}:" + base64.urlsafe_b64encode(os.urandom(32)).decode()
CLIENT_TIMEOUT = 30.0  # longer than any bounded wait of the service: a timeout is a failure
TEAM = ("team", "team-antwerpen-1", "Antwerpen")
CHAIR = ("chair", "voorzitter-1", None)
REQUEST: dict[str, Any] = {
    "programme": "integrale_jeugdhulp",
    "region": "Antwerpen",
    "requested_by": {"ref": "hulpverlener-1", "role": "professional"},
    "channel": "cobe",
    "client": {"ref": "jongere-1", "birth_date": "2010-05-01"},
    "question": "Afstemming tussen school en thuisbegeleiding",
}


@dataclass(frozen=True)
class Plan:
    """How much of each scenario to run."""

    name: str = "full"
    services: int = 2  # replicas the clients spread over
    commands: int = 1000  # scenario 1
    clients: int = 16
    cases: int = 12
    keyed: int = 300  # scenario 2
    keyed_clients: int = 10
    dropped: float = 0.30
    fault_clients: int = 20  # scenario 3
    stop_seconds: float = 5.0
    cut_clients: int = 4
    commit_cuts: int = 10
    settle_seconds: float = 6.0  # of writing after each fault
    worker_kills: int = 20  # scenario 4
    worker_writers: int = 4
    startup_services: int = 4  # scenario 5
    startup_workers: int = 2
    startup_rounds: int = 2
    store_timeout: float = 5.0  # OVERLEG_STORE_TIMEOUT of every process: the default
    seed: int = 2015


FULL = Plan()
SHORT = Plan(
    name="short",
    commands=120,
    clients=8,
    cases=4,
    keyed=40,
    keyed_clients=4,
    fault_clients=8,
    stop_seconds=2.0,
    cut_clients=2,
    commit_cuts=3,
    settle_seconds=3.0,
    worker_kills=3,
    worker_writers=3,
    startup_services=2,
    startup_workers=2,
    startup_rounds=1,
    store_timeout=2.0,  # shorter than the default: the setting is honoured, and waits are short
)

# What the figures must be: the requirement's bounds.
MIN_RACING = 0.30
READ_TRIES = 5  # a read answered 503 is asked again, this many times at most
RECOVERY = 5.0  # seconds


# -- the PostgreSQL cluster -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_bin() -> Path:
    """The directory of ``initdb`` and ``pg_ctl``: $OVERLEG_CHAOS_PG_BIN, pg_config's bindir,
    the newest Debian-style install, or the PATH."""
    given = os.environ.get("OVERLEG_CHAOS_PG_BIN")
    if given:
        return Path(given)
    candidates: list[Path] = []
    if shutil.which("pg_config"):
        found = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=False
        )
        candidates.append(Path(found.stdout.strip()))
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True
    )
    candidates += versions
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    raise SystemExit("No PostgreSQL server binaries (initdb, pg_ctl): set OVERLEG_CHAOS_PG_BIN")


class Cluster:
    """A throw-away PostgreSQL cluster: its own directory, its own port, gone at the end.

    As root, the server runs as the ``postgres`` user (it refuses to run as root)."""

    def __init__(self) -> None:
        self.bin = postgres_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="overleg-chaos-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.port = 0
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            self._as = {
                "user": owner.pw_uid,
                "group": owner.pw_gid,
                "env": {**os.environ, "HOME": owner.pw_dir},
                "cwd": self.dir,
            }

    def _pg(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
            **self._as,
        )

    def create(self) -> None:
        self._pg("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        for attempt in range(5):
            self.port = free_port()
            if self._start(check=attempt == 4):
                break
        with self.connect() as db:
            db.execute(f"CREATE DATABASE {DATABASE}")

    def _start(self, check: bool = True) -> bool:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=300"
        )
        data, log = str(self.data), str(self.log)
        done = self._pg("pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "start", check=check)
        return done.returncode == 0

    def start(self) -> None:
        self._start()

    def stop(self, mode: str = "immediate") -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def destroy(self) -> None:
        if self.data.exists():
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str = DATABASE, schema: str | None = None, port: int = 0) -> str:
        tail = f"?schema={schema}" if schema else ""
        return f"postgresql://postgres@127.0.0.1:{port or self.port}/{database}{tail}"

    def connect(self, database: str = "postgres") -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user="postgres",
            dbname=database,
            autocommit=True,
            connect_timeout=2,
        )

    def answers(self) -> bool:
        try:
            with self.connect(DATABASE) as db:
                db.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def wait_until_back(self, timeout: float = 60) -> float:
        """Wait until a new connection works again; the moment it did."""
        deadline = time.monotonic() + timeout
        while not self.answers():
            if time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL did not come back")
            time.sleep(0.02)
        return time.monotonic()

    def configure(self, **settings: int) -> None:
        """Change server settings that a reload applies."""
        with self.connect() as db:
            for name, value in settings.items():
                db.execute(f"ALTER SYSTEM SET {name} = {int(value)}")
            db.execute("SELECT pg_reload_conf()")

    def backends(self, committing: bool = False) -> list[int]:
        """The server processes of overleg's connections; ``committing``: only those in the
        middle of committing events (a COMMIT on a connection of the event store's pool:
        the projections' and records' connections carry their own application name)."""
        from overleg.adapters.views import APPLICATION_NAME

        with self.connect() as db:
            rows = db.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
                " AND (NOT %s OR (state = 'active' AND query = 'COMMIT'"
                " AND application_name <> %s))",
                (DATABASE, committing, APPLICATION_NAME),
            ).fetchall()
        return [int(pid) for (pid,) in rows]

    def wait_for_a_commit(self, timeout: float = 3.0) -> list[int]:
        """Backends in the middle of a COMMIT, as soon as there are any (or none, in time)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.backends(committing=True)
            if found:
                return found
            time.sleep(0.005)
        return []

    def terminate_all(self) -> tuple[int, int]:
        """Terminate every backend, when one is committing; (terminated, committing)."""
        committing = self.wait_for_a_commit()
        with self.connect() as db:
            cut = db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (DATABASE,),
            ).fetchall()
        return len(cut), len(committing)

    def kill_one_backend(self, rng: random.Random) -> bool:
        """SIGKILL one backend, one in the middle of a COMMIT if there is one in time (the
        server then resets every other); whether it was committing."""
        committing = self.wait_for_a_commit()
        pid = rng.choice(committing or self.backends())
        os.kill(pid, signal.SIGKILL)
        return bool(committing)


# -- overleg processes ------------------------------------------------------------------------


@dataclass
class Process:
    """An ``overleg`` process and the file its standard error goes to."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Fleet:
    """The overleg processes of one database; every one is stopped at the end."""

    def __init__(
        self,
        label: str,
        database_url: str,
        workdir: Path,
        store_timeout: float,
        log_level: str = "warning",
    ) -> None:
        self.label = label
        self.workdir = workdir
        self.env = {
            **os.environ,
            "OVERLEG_DATABASE_URL": database_url,
            "OVERLEG_DEV_KEY_FILE": str(workdir / "dev-key.jwk"),
            "OVERLEG_MASTER_KEYS": MASTER_KEYS,
            "OVERLEG_LOG_LEVEL": log_level,
            "OVERLEG_PROJECTIONS": "worker",
            "OVERLEG_STORE_TIMEOUT": str(store_timeout),
        }
        self.processes: list[Process] = []
        self._count = 0
        # Made before any process starts: processes that start at once would each try to
        # create it (the development key is no part of what the suite checks).
        from overleg.api.auth import dev_private_key

        dev_private_key(workdir / "dev-key.jwk")

    def _spawn(self, name: str, args: list[str]) -> Process:
        self._count += 1
        log = self.workdir / f"{self.label}-{name}-{self._count}.log"
        with log.open("wb") as err:
            popen = subprocess.Popen(
                [OVERLEG, *args], env=self.env, stdout=subprocess.DEVNULL, stderr=err
            )
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def serve(self) -> Process:
        port = free_port()
        process = self._spawn("serve", ["serve", "--host", "127.0.0.1", "--port", str(port)])
        process.url = f"http://127.0.0.1:{port}"
        return process

    def worker(self, batch: int = 1000, poll: float = 0.5) -> Process:
        return self._spawn("worker", ["worker", "--batch", str(batch), "--poll", str(poll)])

    def stop_all(self) -> None:
        for process in self.processes:
            if process.alive():
                process.popen.terminate()
        for process in self.processes:
            try:
                process.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait(timeout=20)


def wait_until_up(services: list[Process], timeout: float = 120) -> float:
    """Wait until every service answers /health with 200; the seconds it took."""
    started = time.monotonic()
    waiting = list(services)
    while waiting:
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{len(waiting)} service(s) did not come up")
        for process in list(waiting):
            if not process.alive():
                raise RuntimeError(
                    f"{process.name} exited with {process.popen.returncode}:\n" + process.log_tail()
                )
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{process.url}/health", timeout=2).status_code == 200:
                    waiting.remove(process)
        time.sleep(0.1)
    return time.monotonic() - started


def tokens(key_file: Path) -> dict[str, dict[str, str]]:
    """Bearer headers of the team and the chair, signed with the fleet's development key
    (exactly what ``overleg token`` prints)."""
    from overleg.api.auth import dev_private_key, issue_dev_token
    from overleg.policies.access import StaffRole

    key = dev_private_key(key_file)
    headers = {}
    for role, ref, region in (TEAM, CHAIR):
        token = issue_dev_token(
            key,
            role=StaffRole(role),
            ref=ref,
            region=region,
            audience="overleg",
            issuer="overleg-dev",
            lifetime=4 * 3600,
        )
        headers[role] = {"Authorization": f"Bearer {token}"}
    return headers


# -- answers and what the store holds ---------------------------------------------------------


@dataclass
class Attempt:
    """One HTTP request of a client and its answer (``status`` 0: no answer came)."""

    scenario: str
    op: str  # the logical command; its retries share it (and its key)
    kind: str
    owner: str  # "<role>:<ref>": whose key
    case_id: str
    if_match: int | None
    key: str | None  # the Idempotency-Key sent
    sent: float
    received: float = 0.0
    status: int = 0
    problem: str = ""
    retry_after: str | None = None
    answer_key: str | None = None  # the Idempotency-Key answered
    replayed: bool = False
    version: int | None = None
    error: str = ""
    client: int = 0
    marker: bool = False  # the op's id is written into its event
    request_id: str = ""  # the service's, as its log lines carry it (X-Request-ID)
    sent_at: str = ""  # when it was sent, as the services' log lines give the time

    def told(self) -> str:
        """What this try was answered, for a failure's details."""
        answer = f"{self.status or self.error}{' ' + self.problem if self.problem else ''}"
        key = self.answer_key or self.key
        took = self.received - self.sent
        return (
            f"{answer} v{self.version} key={key} id={self.request_id}"
            f" sent {self.sent_at}, answered in {took:.3f} s"
        )

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def outcome_unknown(self) -> bool:
        return self.problem == "/problems/outcome-unknown"


class Journal:
    """Every attempt of every client, in the order the answers came."""

    def __init__(self) -> None:
        self.attempts: list[Attempt] = []
        self._lock = threading.Lock()
        self._ids: Counter[str] = Counter()

    def add(self, attempt: Attempt) -> Attempt:
        with self._lock:
            self.attempts.append(attempt)
        return attempt

    def op(self, scenario: str) -> str:
        with self._lock:
            self._ids[scenario] += 1
            return f"op-{scenario}-{self._ids[scenario]:06d}"

    def of(self, scenario: str) -> list[Attempt]:
        with self._lock:
            return [a for a in self.attempts if a.scenario == scenario]


@dataclass(frozen=True)
class Command:
    """One request a client sends: the method, path, body, and whose it is."""

    kind: str
    method: str
    path: str
    body: Any
    role: str  # "team" or "chair"
    marker: bool = False


def command(kind: str, case_id: str, op: str) -> Command:
    """The request of each kind of command the scenarios send."""
    base = f"/cases/{case_id}"
    if kind in ("report", "stale"):
        body: dict[str, Any] = {"theme": "wachtlijst", "description": f"melding {op}"}
        return Command(kind, "POST", f"{base}/bottlenecks", body, "chair", marker=True)
    if kind == "consent":
        body = {"party": {"ref": f"ouder-{op}", "role": "parent"}}
        return Command(kind, "POST", f"{base}/consents", body, "team", marker=True)
    if kind == "consent-again":  # the young person consented when the case was set up: 409
        body = {"party": {"ref": "jongere-1", "role": "youth"}}
        return Command(kind, "POST", f"{base}/consents", body, "team")
    if kind == "chair-party":  # a party as chair: 409 (chair-neutral)
        return Command(kind, "PUT", f"{base}/chair", {"chair": "jongere-1"}, "team")
    if kind == "consent-youth":
        body = {"party": {"ref": "jongere-1", "role": "youth"}}
        return Command(kind, "POST", f"{base}/consents", body, "team")
    if kind == "appoint-chair":
        return Command(kind, "PUT", f"{base}/chair", {"chair": "voorzitter-1"}, "team")
    if kind == "meeting":
        day = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
        body = {
            "held_on": day,
            "place": "CLB",
            "attendance": {
                "youth": True,
                "parents": int(op[-1]) % 2 == 0,
                "trusted_person": None,
                "professionals": ["hulpverlener-2"],
            },
        }
        return Command(kind, "POST", f"{base}/meetings", body, "chair")
    if kind == "workplan":
        body = {
            "agreements": [{"who": "hulpverlener-2", "what": "Huisbezoek"}],
            "coordinator": "hulpverlener-2",
        }
        return Command(kind, "PUT", f"{base}/meetings/1/workplan", body, "chair")
    if kind == "registration":
        return Command(kind, "POST", f"{base}/meetings/1/registration", None, "chair")
    if kind == "follow-up":
        day = (datetime.now(UTC).date() + timedelta(days=60)).isoformat()
        return Command(kind, "POST", f"{base}/follow-up", {"on": day}, "chair")
    if kind == "close":
        return Command(kind, "POST", f"{base}/close", {"reason": "afgerond"}, "team")
    raise ValueError(kind)


SETUP = ("read", "create", "consent-youth", "appoint-chair")  # not the scenarios' commands
OWNERS = {"team": f"team:{TEAM[1]}", "chair": f"chair:{CHAIR[1]}"}


class Client:
    """One caseworker's HTTP client: sends commands and writes down every answer."""

    def __init__(
        self,
        number: int,
        base_url: str,
        auth: dict[str, dict[str, str]],
        journal: Journal,
        scenario: str,
        close_each: bool = False,
    ) -> None:
        self.number = number
        self.auth = auth
        self.journal = journal
        self.scenario = scenario
        self.close_each = close_each  # one connection per request (through the proxy)
        self.http = httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT)

    def close(self) -> None:
        self.http.close()

    def create_case(self) -> Attempt:
        key = uuid.uuid4().hex
        attempt = self._send(
            Command("create", "POST", "/cases", REQUEST, "team"),
            self.journal.op(self.scenario),
            "",
            None,
            key,
        )
        return attempt

    def read_version(self, case_id: str) -> tuple[int | None, Attempt]:
        """The case's version (its ETag), or None when the service did not give it."""
        attempt = self._send(
            Command("read", "GET", f"/cases/{case_id}", None, "chair"), "", case_id, None, None
        )
        return attempt.version, attempt

    def send(
        self,
        kind: str,
        case_id: str,
        version: int | None,
        op: str | None = None,
        key: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> Attempt:
        op = op or self.journal.op(self.scenario)
        return self._send(command(kind, case_id, op), op, case_id, version, key, extra)

    def _send(
        self,
        cmd: Command,
        op: str,
        case_id: str,
        version: int | None,
        key: str | None,
        extra: dict[str, str] | None = None,
    ) -> Attempt:
        headers = dict(self.auth[cmd.role])
        if version is not None:
            headers["If-Match"] = f'"{version}"'
        if key is not None:
            headers["Idempotency-Key"] = key
        if self.close_each:
            headers["Connection"] = "close"
        headers.update(extra or {})
        attempt = Attempt(
            scenario=self.scenario,
            op=op,
            kind=cmd.kind,
            owner=OWNERS[cmd.role],
            case_id=case_id,
            if_match=version,
            key=key,
            sent=time.monotonic(),
            sent_at=datetime.now(UTC).strftime("%H:%M:%S.%f"),
            client=self.number,
            marker=cmd.marker,
        )
        try:
            answer = self.http.request(cmd.method, cmd.path, json=cmd.body, headers=headers)
        except httpx.TransportError as error:
            attempt.received = time.monotonic()
            attempt.error = type(error).__name__
            return self.journal.add(attempt)
        attempt.received = time.monotonic()
        attempt.status = answer.status_code
        attempt.request_id = answer.headers.get("X-Request-ID", "")
        attempt.retry_after = answer.headers.get("Retry-After")
        attempt.answer_key = answer.headers.get("Idempotency-Key")
        attempt.replayed = answer.headers.get("Idempotency-Replayed") == "true"
        etag = answer.headers.get("ETag")
        if etag and answer.status_code < 300:
            attempt.version = int(etag.strip('"'))
        if answer.headers.get("content-type", "").startswith("application/problem+json"):
            attempt.problem = str(answer.json().get("type", ""))
        elif cmd.kind == "create" and attempt.ok:
            attempt.case_id = str(answer.json()["case_id"])
        return self.journal.add(attempt)


@dataclass
class Stored:
    """What the store holds, read with plain SQL (not through overleg)."""

    versions: dict[str, list[int]]  # case -> its event versions, in order
    markers: dict[str, list[tuple[str, int]]]  # op id -> (case, version) of events naming it
    topics: dict[tuple[str, int], str]
    texts: dict[tuple[str, int], str]
    commands: dict[tuple[str, str], tuple[str, int, int]]  # (owner, key) -> case, first, last

    @classmethod
    def read(cls, cluster: Cluster) -> Stored:
        from overleg.adapters.sealing import MasterKeys

        masters = MasterKeys.parse(MASTER_KEYS, "the run's master key")
        versions: dict[str, list[int]] = defaultdict(list)
        markers: dict[str, list[tuple[str, int]]] = defaultdict(list)
        topics: dict[tuple[str, int], str] = {}
        texts: dict[tuple[str, int], str] = {}
        with cluster.connect(DATABASE) as db:
            rows = db.execute(
                "SELECT originator_id::text, originator_version, topic,"
                " convert_from(state, 'UTF8') FROM overleg_events"
                " ORDER BY originator_id, originator_version"
            ).fetchall()
            keys = {
                str(case): masters.unwrap(str(case), master, bytes(wrapped))
                for case, master, wrapped in db.execute(
                    "SELECT case_id, master_id, wrapped FROM case_keys WHERE wrapped IS NOT NULL"
                ).fetchall()
            }
            commands = {
                (owner, key): (case, int(first), int(last))
                for owner, key, case, first, last in db.execute(
                    "SELECT owner, key, case_id, first_version, last_version FROM command_log"
                ).fetchall()
            }
        for case, version, topic, stored_text in rows:
            text = _opened(str(stored_text), str(case), int(version), keys)
            versions[case].append(int(version))
            topics[(case, int(version))] = str(topic)
            texts[(case, int(version))] = str(text)
            for op in set(OP_ID.findall(str(text))):
                markers[op].append((case, int(version)))
        return cls(dict(versions), dict(markers), topics, texts, commands)


def _opened(text: str, case: str, version: int, keys: dict[str, bytes]) -> str:
    """A stored state with its sealed personal part opened (what the markers are in)."""
    from overleg.adapters.sealing import is_sealed, open_sealed

    state = json.loads(text)
    personal = state.get("personal")
    if is_sealed(personal) and case in keys:
        state["personal"] = open_sealed(keys[case], case, version, personal)
    return json.dumps(state, ensure_ascii=False)


@dataclass
class Check:
    """The failures found in one scenario's answers, by what they break."""

    failures: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def fail(self, what: str, detail: str) -> None:
        self.counts[what] += 1
        if self.counts[what] <= 5:  # enough to see the pattern
            self.failures.append(f"{what}: {detail}")


def check_answers(attempts: list[Attempt], stored: Stored, check: Check) -> None:
    """Every answer against the store (see the module's docstring)."""
    for a in attempts:
        if a.status >= 500 and a.status != 503:
            check.fail("5xx other than 503", f"{a.kind} {a.op}: {a.status} {a.problem}")
        if a.status == 503 and not a.retry_after:
            check.fail("503 without Retry-After", f"{a.kind} {a.op}: {a.problem}")
        if a.outcome_unknown and not a.answer_key:
            check.fail("outcome-unknown without Idempotency-Key", a.op)
        if a.kind == "read" and not a.status:
            check.fail("no answer", f"read {a.case_id}: {a.error}")
    by_op: dict[str, list[Attempt]] = defaultdict(list)
    for a in attempts:
        if a.kind != "read":
            by_op[a.op].append(a)
    for op, tries in by_op.items():
        _check_op(op, tries, stored, check)


def _check_op(op: str, tries: list[Attempt], stored: Stored, check: Check) -> None:
    answered = [a for a in tries if a.status]
    if not answered:
        check.fail("no answer", f"{tries[0].kind} {op}: {tries[-1].error}")
        return
    successes = [a for a in answered if a.ok]
    final = answered[-1]
    unsure = any(a.outcome_unknown for a in answered) and final.status in (0, 503)
    if unsure and not successes:
        check.fail("outcome never settled", f"{final.kind} {op}")
        return
    first = tries[0]
    places = stored.markers.get(op, [])
    if successes:
        versions = {a.version for a in successes}
        if len(versions) != 1:
            told = sorted(versions, key=lambda v: v or 0)
            check.fail("retries answered differently", f"{op}: versions {told}")
        for a in successes:
            key = a.answer_key or ""
            row = stored.commands.get((a.owner, key))
            case = a.case_id
            if row is None or row[0] != case or row[2] != a.version:
                tried = "; ".join(t.told() for t in tries)
                there = [o for o, at in stored.markers.items() if (case, a.version) in at]
                check.fail(
                    "acknowledged write not stored",
                    f"{a.kind} {op} of {case}: {row} ({tried}); v{a.version} holds {there}",
                )
            elif a.version not in stored.versions.get(case, []):
                check.fail("acknowledged write not stored", f"{a.kind} {op}: no event")
        if first.marker:
            if len(places) > 1:
                check.fail("stored twice", f"{first.kind} {op}: {places}")
            elif places != [(successes[0].case_id, successes[0].version)]:
                check.fail("acknowledged write not stored", f"{first.kind} {op}: at {places}")
        return
    # Refused: neither the op's key nor its events may be in the store.
    if first.marker and places:
        check.fail("stored write reported as failed", f"{first.kind} {op} -> {final.status}")
    for a in answered:
        if a.key and (a.owner, a.key) in stored.commands:
            check.fail(
                "stored write reported as failed",
                f"{a.kind} {op} -> {a.status} {a.problem}: its key is stored",
            )


def check_store(
    cases: list[str], attempts: list[Attempt], stored: Stored, check: Check
) -> tuple[int, int]:
    """Each case's versions run 1..n, and every stored command was acknowledged to a client.

    Returns (events, commands) of these cases."""
    acknowledged = {(a.owner, a.answer_key) for a in attempts if a.ok}
    events = commands = 0
    by_case: dict[str, list[tuple[int, int, tuple[str, str]]]] = defaultdict(list)
    for (owner, key), (case, first, last) in stored.commands.items():
        by_case[case].append((first, last, (owner, key)))
    for case in cases:
        versions = stored.versions.get(case, [])
        events += len(versions)
        if versions != list(range(1, len(versions) + 1)):
            check.fail("versions not contiguous", f"{case}: {versions[:10]}…")
        covered: list[int] = []
        for first, last, owner_key in sorted(by_case.get(case, [])):
            commands += 1
            covered += range(first, last + 1)
            if owner_key not in acknowledged:
                check.fail("stored but never acknowledged", f"{case} v{first}: {owner_key}")
        if covered != versions:
            check.fail("events without their command row", f"{case}: {covered[:10]}…")
    return events, commands


def no_trace_of_refusals(cases: list[str], stored: Stored, check: Check) -> None:
    """The 409s of scenario 1 (a second consent of the young person, a party as chair)."""
    for case in cases:
        youth = [
            v
            for v in stored.versions.get(case, [])
            if stored.topics[(case, v)].endswith("consent_given.v1")
            and '"jongere-1"' in stored.texts[(case, v)]
        ]
        if len(youth) != 1:
            check.fail("stored write reported as failed", f"{case}: youth consents {youth}")
        party_chairs = [
            v
            for v in stored.versions.get(case, [])
            if stored.topics[(case, v)].endswith("chair_appointed.v1")
            and '"jongere-1"' in stored.texts[(case, v)]
        ]
        if party_chairs:
            check.fail("stored write reported as failed", f"{case}: party as chair {party_chairs}")


# -- relays that lose answers ----------------------------------------------------------------


class Relay:
    """A TCP relay to ``upstream_port`` on a port of its own, served by an event loop in a
    thread; what it does to the traffic is ``_relay``'s."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="relay")
        # The loop holds its tasks weakly; once a connection is cut, nothing else would hold
        # a task that still waits for the other side.
        self._tasks: set[asyncio.Task[None]] = set()

    def __enter__(self) -> Self:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the relay did not start")
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._held, "127.0.0.1", self.port)
        )
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()

    async def _held(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            await self._relay(reader, writer)
        except (OSError, asyncio.IncompleteReadError):
            writer.transport.abort()
        except asyncio.CancelledError:  # the relay stops: its connections end with it
            writer.transport.abort()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


DROP_HEADER = b"x-chaos-drop:"


class DroppingRelay(Relay):
    """In front of a service: loses the answer of a request marked with ``X-Chaos-Drop``:
    ``answer`` (the service answered; the client's connection is cut instead of the answer
    being passed on) or ``inflight`` (the client's connection is cut as soon as the request
    is passed on, while the service is still working on it). One request per connection
    (``Connection: close``)."""

    def __init__(self, upstream: str) -> None:
        super().__init__(int(upstream.rsplit(":", 1)[1]))
        self.url = f"http://127.0.0.1:{self.port}"
        self.dropped: Counter[str] = Counter()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.lower().split(b"\r\n")
        mode = next(
            (ln[len(DROP_HEADER) :].strip().decode() for ln in lines if ln.startswith(DROP_HEADER)),
            "",
        )
        length = next(
            (int(ln.split(b":", 1)[1]) for ln in lines if ln.startswith(b"content-length:")), 0
        )
        body = await reader.readexactly(length) if length else b""
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        up_writer.write(head + body)
        await up_writer.drain()
        if mode == "inflight":
            self.dropped[mode] += 1
            writer.transport.abort()
        answer = await up_reader.read()  # until the service closes: one request each
        up_writer.close()
        if mode == "answer":
            self.dropped[mode] += 1
            writer.transport.abort()
        elif mode != "inflight":
            writer.write(answer)
            await writer.drain()
            writer.close()


class CommitCutter(Relay):
    """In front of PostgreSQL: when armed, cuts an event store connection right after the
    server answered its COMMIT, so the commit has landed and its answer is lost (the
    projections' and records' connections, named by their application name, are left
    alone: a COMMIT on the event store's pool is always a command's events). With a
    ``blackout``, the database then stays out of reach through the relay for that long."""

    def __init__(self, upstream_port: int) -> None:
        super().__init__(upstream_port)
        self.armed = 0
        self.cut = 0
        self.blackout = 0.0
        self._dark_until = 0.0
        self._lock = threading.Lock()

    def arm(self, count: int, blackout: float = 0.0) -> None:
        with self._lock:
            self.armed += count
            self.blackout = blackout

    def _take(self) -> bool:
        with self._lock:
            if self.armed <= 0:
                return False
            self.armed -= 1
            return True

    def _dark(self) -> bool:
        return time.monotonic() < self._dark_until

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from overleg.adapters.views import APPLICATION_NAME

        if self._dark():
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        start = b""  # the start of what the client sent, up to its startup message
        store: bool | None = None  # an event store connection
        cutting = asyncio.Event()

        async def upwards() -> None:
            nonlocal start, store
            while data := await reader.read(65536):
                if self._dark():
                    return
                if store is None:
                    start += data
                    if b"user\x00" in start:
                        store = APPLICATION_NAME.encode() not in start
                if store and b"COMMIT\x00" in data and self._take():
                    cutting.set()
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def downwards() -> None:
            while data := await up_reader.read(65536):
                if cutting.is_set():  # the server answered the COMMIT: lose the answer
                    self.cut += 1
                    self._dark_until = time.monotonic() + self.blackout
                    writer.transport.abort()
                    up_writer.transport.abort()
                    return
                writer.write(data)
                await writer.drain()
            writer.close()

        # When one side ends (or fails), the other must learn it at once, as it would
        # without the relay: a half-open connection would leave it waiting for ever.
        directions = [asyncio.ensure_future(upwards()), asyncio.ensure_future(downwards())]
        try:
            await asyncio.wait(directions, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for direction in directions:
                direction.cancel()
            writer.transport.abort()
            up_writer.transport.abort()


# -- the scenarios ----------------------------------------------------------------------------


@dataclass
class Figure:
    scenario: str
    name: str
    value: str
    required: str
    ok: bool


@dataclass
class Outcome:
    """What one scenario measured, and what it found broken."""

    name: str
    figures: list[Figure] = field(default_factory=list)
    check: Check = field(default_factory=Check)
    seconds: float = 0.0

    def figure(self, name: str, value: object, required: str = "", ok: bool = True) -> None:
        self.figures.append(Figure(self.name, name, str(value), required, ok))
        if not ok:
            self.check.failures.append(f"{name} = {value}, required {required}")

    def zero(self, name: str, value: int) -> None:
        self.figure(name, value, "0", value == 0)

    def exactly(self, name: str, value: int, wanted: int) -> None:
        self.figure(name, value, str(wanted), value == wanted)

    def within(self, name: str, value: float, limit: float) -> None:
        self.figure(name, f"{value:.2f} s", f"<= {limit:g} s", value <= limit)


class Suite:
    """The cluster, the overleg processes on it, the clients' journal, and the scenarios."""

    def __init__(self, plan: Plan, workdir: Path, cluster: Cluster) -> None:
        self.plan = plan
        self.workdir = workdir
        self.cluster = cluster
        self.rng = random.Random(plan.seed)
        self.journal = Journal()
        self.fleet = Fleet("main", cluster.url(), workdir, plan.store_timeout)
        self.services: list[Process] = []
        self.worker: Process | None = None
        self.cutter: CommitCutter | None = None
        self.cut_service: Process | None = None
        self.auth: dict[str, dict[str, str]] = {}

    def start(self, stack: contextlib.ExitStack) -> None:
        """The services and the worker; and one more service whose database connections pass
        through a relay that can lose the answers to their COMMITs."""
        self.services = [self.fleet.serve() for _ in range(self.plan.services)]
        wait_until_up(self.services[:1])  # one creates the tables; then the others
        self.worker = self.fleet.worker()
        self.cutter = stack.enter_context(CommitCutter(self.cluster.port))
        url = self.cluster.url(port=self.cutter.port)
        behind = Fleet("cut", url, self.workdir, self.plan.store_timeout)
        self.cut_service = behind.serve()
        self.fleet.processes.append(self.cut_service)
        wait_until_up([*self.services, self.cut_service])
        self.auth = tokens(self.workdir / "dev-key.jwk")

    def client(
        self, number: int, scenario: str, base_url: str | None = None, close_each: bool = False
    ) -> Client:
        url = base_url or self.services[number % len(self.services)].url
        return Client(number, url, self.auth, self.journal, scenario, close_each)

    def new_cases(self, count: int, scenario: str, base_url: str | None = None) -> list[str]:
        """Cases with the young person's consent and a chair, set up through the API."""
        client = self.client(0, scenario, base_url)
        cases = []
        try:
            for _ in range(count):
                created = client.create_case()
                assert created.ok, created
                version = 1
                for kind in ("consent-youth", "appoint-chair"):
                    done = client.send(kind, created.case_id, version, key=uuid.uuid4().hex)
                    assert done.ok and done.version, done
                    version = done.version
                cases.append(created.case_id)
        finally:
            client.close()
        return cases

    def positions_and_head(self) -> tuple[dict[str, int], int]:
        """Each projection's position, and the last event's notification id."""
        with self.cluster.connect(DATABASE) as db:
            head = db.execute("SELECT coalesce(max(notification_id), 0) FROM overleg_events")
            top = head.fetchone()
            rows = db.execute("SELECT name, position FROM projection_position").fetchall()
        return {str(n): int(p) for n, p in rows}, int(top[0]) if top else 0

    def wait_projected(self, timeout: float = 90) -> float:
        """Seconds until every projection has applied every event (inf: not in time)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            with contextlib.suppress(psycopg.Error):
                positions, head = self.positions_and_head()
                if positions and all(p >= head for p in positions.values()):
                    return time.monotonic() - started
            time.sleep(0.1)
        return float("inf")

    def verify(self, out: Outcome, scenario: str, cases: list[str]) -> Stored:
        """Every answer of the scenario against what the store holds now."""
        stored = Stored.read(self.cluster)
        attempts = self.journal.of(scenario)
        check_answers(attempts, stored, out.check)
        check_store(cases, attempts, stored, out.check)
        return stored

    # -- 1: racing writers ---------------------------------------------------------------------

    def racing(self) -> Outcome:
        """Commands from many clients at once: in each round every client reads a case's
        version, and then they all send together, several on the same case and version."""
        out = Outcome("1 racing writers")
        plan = self.plan
        cases = self.new_cases(plan.cases, "s1")
        kinds = ["report"] * 11 + ["consent"] * 3 + ["consent-again"] * 2 + ["chair-party"] * 2
        kinds += ["stale"] * 2
        jobs = [
            (self.rng.choice(cases), self.rng.choice(kinds), self.rng.random() < 0.8)
            for _ in range(plan.commands)
        ]
        barrier = threading.Barrier(plan.clients, timeout=120)
        run_threads(lambda n: self._racing_client(n, jobs, barrier), plan.clients)

        attempts = self.journal.of("s1")
        commands = [a for a in attempts if a.kind not in SETUP]
        stored = self.verify(out, "s1", cases)
        no_trace_of_refusals(cases, stored, out.check)
        racing = racing_share([a for a in commands if a.kind != "stale"])
        statuses = Counter(a.status for a in commands)
        ok = sum(n for status, n in statuses.items() if 200 <= status < 300)
        out.exactly("commands", len(commands), plan.commands)
        reads = Counter(
            f"{a.status} {a.problem}".strip() if a.status else a.error
            for a in attempts
            if a.kind == "read"
        )
        out.figure(
            "reads of a version, by answer", ", ".join(f"{k}: {n}" for k, n in reads.items())
        )
        out.figure(
            "racing (same case and version, in flight together)",
            f"{racing:.0%}",
            f">= {MIN_RACING:.0%}",
            racing >= MIN_RACING,
        )
        out.figure(
            "answers 2xx / 409 / 412 / 503",
            f"{ok} / {statuses[409]} / {statuses[412]} / {statuses[503]}",
        )
        events = sum(len(stored.versions.get(case, [])) for case in cases)
        out.figure("events stored / writes acknowledged", f"{events} / {_acked(attempts)}")
        self._common(out, attempts)
        return out

    def _racing_client(
        self, number: int, jobs: list[tuple[str, str, bool]], barrier: threading.Barrier
    ) -> None:
        client = self.client(number, "s1")
        clients = barrier.parties
        try:
            for start in range(0, len(jobs), clients):
                job = jobs[start + number] if start + number < len(jobs) else None
                version = self._version_of(client, job[0]) if job else None
                barrier.wait()
                if job is None or version is None:
                    continue
                case, kind, keyed = job
                seen = version - 1 if kind == "stale" else version
                client.send(kind, case, seen, key=uuid.uuid4().hex if keyed else None)
        except threading.BrokenBarrierError:
            pass
        except BaseException:
            barrier.abort()
            raise
        finally:
            client.close()

    @staticmethod
    def _version_of(client: Client, case: str, tries: int = READ_TRIES) -> int | None:
        """The case's version, as a careful client reads it: a 503 (the store busy on a
        loaded machine) is waited out as its Retry-After asks, a few times at most. Every
        try stays in the journal, so the checks see each answer."""
        for _ in range(tries):
            version, read = client.read_version(case)
            if version is not None or read.status != 503:
                return version
            pause(read)
        return None

    # -- 2: lost answers -----------------------------------------------------------------------

    def lost_answers(self) -> Outcome:
        """Keyed commands whose answers are lost on the way back (after the service answered,
        or while it is still at work), each sent again with its key until it is answered."""
        out = Outcome("2 answers lost, retried")
        plan = self.plan
        cases = self.new_cases(plan.keyed_clients, "s2")
        dropped = set(self.rng.sample(range(plan.keyed), round(plan.keyed * plan.dropped)))
        # Command i goes to client i % clients; its answer is lost when i is in dropped.
        with contextlib.ExitStack() as stack:
            relays = [stack.enter_context(DroppingRelay(s.url)) for s in self.services]
            run_threads(
                lambda n: self._lost_answers_client(n, cases[n], relays, dropped),
                plan.keyed_clients,
            )
        lost: Counter[str] = sum((r.dropped for r in relays), Counter())
        attempts = self.journal.of("s2")
        commands = [a for a in attempts if a.kind not in SETUP]
        ops = {a.op for a in commands}
        stored = self.verify(out, "s2", cases)
        out.exactly("keyed commands", len(ops), plan.keyed)
        out.exactly("answers lost", lost["answer"] + lost["inflight"], len(dropped))
        out.figure(
            "... after the service answered / while it was at work",
            f"{lost['answer']} / {lost['inflight']}",
        )
        out.figure("retries answered as replays", sum(1 for a in commands if a.replayed))
        out.zero("duplicates", sum(1 for op in ops if len(stored.markers.get(op, [])) > 1))
        out.zero("spurious 409/412", sum(1 for a in commands if a.status in (409, 412)))
        out.zero("commands not stored", sum(1 for op in ops if not stored.markers.get(op)))
        self._common(out, attempts)
        return out

    def _lost_answers_client(
        self, number: int, case: str, relays: list[DroppingRelay], dropped: set[int]
    ) -> None:
        relay = relays[number % len(relays)]
        client = self.client(number, "s2", base_url=relay.url, close_each=True)
        clients = self.plan.keyed_clients
        version = 3  # request, consent, chair
        try:
            for index in range(number, self.plan.keyed, clients):
                kind = "consent" if index % 4 == 0 else "report"
                op, key = self.journal.op("s2"), uuid.uuid4().hex
                mode = ("answer" if index % 2 else "inflight") if index in dropped else ""
                done = client.send(kind, case, version, op, key, {"X-Chaos-Drop": mode})
                for _ in range(20):  # the same request, with its key, until it is answered
                    if done.status:
                        break
                    time.sleep(0.01)
                    done = client.send(kind, case, version, op, key)
                if not (done.ok and done.version):
                    return  # the check reports it; this client's next versions would be off
                version = done.version
        finally:
            client.close()

    # -- 3: database faults --------------------------------------------------------------------

    def database_faults(self) -> Outcome:
        """Clients write all along while the database loses every connection, then a backend
        killed in the middle of a commit (the server resets every other), then itself for a
        few seconds; and while the answers to some COMMITs are lost on the way back."""
        out = Outcome("3 database faults")
        plan = self.plan
        assert self.cutter is not None and self.cut_service is not None
        cases = self.new_cases(max(2, plan.fault_clients // 2), "s3")
        cut_cases = self.new_cases(plan.cut_clients, "s3", self.cut_service.url)
        running = [p for p in self.fleet.processes if p.alive()]
        stop = threading.Event()
        moved: list[float] = []  # when the worker's slowest projection moved on
        # Every commit waits 10 ms before its WAL is flushed: faults then often strike a
        # transaction in the middle of its commit, whose client cannot know whether it landed.
        self.cluster.configure(commit_delay=10_000, commit_siblings=0)
        cut_url = self.cut_service.url
        threads = start_threads(
            lambda n: self._fault_client(n, cases[n % len(cases)], None, stop),
            plan.fault_clients,
        )
        threads += start_threads(
            lambda n: self._fault_client(n, cut_cases[n], cut_url, stop), plan.cut_clients
        )
        threads += start_threads(lambda _: self._watch_worker(stop, moved), 1)
        try:
            faults, landed_before = self._inject_faults()
        finally:
            stop.set()
            for thread in threads:
                thread.join(120)
            self.cluster.configure(commit_delay=0)

        writes = [a for a in self.journal.of("s3") if a.kind == "report"]
        ends = [at for _, at, _ in faults[1:]] + [float("inf")]
        for (name, at, back), end in zip(faults, ends, strict=True):
            # Each within its own window: until the next fault begins.
            after = [a.received for a in writes if a.ok and a.sent >= at and back <= a.received]
            seconds = min((t for t in after if t < end), default=float("inf")) - back
            out.within(f"{name}: first 2xx after the database is back", seconds, RECOVERY)
            resumed = min((t for t in moved if back < t < end), default=float("inf")) - back
            out.within(f"{name}: worker applies events again after", resumed, RECOVERY)
        self._cut_figures(out, landed_before)
        projected = self.wait_projected()
        out.within("worker caught up, after the writers stopped", projected, 90)
        gone = [p for p in running if not p.alive()]
        out.zero("processes restarted or exited", len(gone))
        for process in gone:
            out.check.failures.append(f"{process.name} exited: {process.log_tail(3)}")
        self.verify(out, "s3", cases + cut_cases)
        attempts = self.journal.of("s3")
        problems = Counter(a.problem for a in attempts)
        out.figure("requests (writes)", f"{len(attempts)} ({len(writes)})")
        slowest = max(attempts, key=lambda a: a.received - a.sent, default=None)
        limit = plan.store_timeout + 1  # the store's wait, and the work around it
        seconds = slowest.received - slowest.sent if slowest else 0.0
        out.within(f"slowest answer (store timeout {plan.store_timeout:g} s)", seconds, limit)
        if slowest is not None:
            # Which answer, and in which fault's window: where a slow answer's time went.
            window = ([name for name, at, _ in faults if at <= slowest.sent] or ["before"])[-1]
            out.figure(
                "... it was",
                f"{slowest.kind} {slowest.status or 'no answer'} {slowest.problem or ''}".strip()
                + f", sent {slowest.sent - faults[0][1]:+.1f} s from the first fault ({window})",
            )
        out.figure(
            "503 store-busy / outcome-unknown",
            f"{problems['/problems/store-busy']} / {problems['/problems/outcome-unknown']}",
        )
        self._common(out, attempts)
        return out

    def _fault_client(self, number: int, case: str, url: str | None, stop: threading.Event) -> None:
        """Report bottlenecks until stopped, as a careful client does: a 503 is waited out
        (Retry-After), an outcome-unknown asked again with its key until the answer is sure.
        After a 503 store-busy the next command is a new one, with a new key: so the check
        sees whether the refused one left a trace."""
        client = self.client(number, "s3", url)
        try:
            while not stop.is_set():
                version, read = client.read_version(case)
                if version is None:
                    pause(read)
                    continue
                op = self.journal.op("s3")
                key = uuid.uuid4().hex if self.rng.random() < 0.75 else None
                done = client.send("report", case, version, op, key)
                if done.outcome_unknown:
                    key = done.answer_key
                    for _ in range(30):
                        pause(done)
                        done = client.send("report", case, version, op, key)
                        if done.status not in (0, 503):
                            break
                elif done.status == 503:
                    pause(done)
        finally:
            client.close()

    def _watch_worker(self, stop: threading.Event, moved: list[float]) -> None:
        last = -1
        while not stop.is_set():
            with contextlib.suppress(psycopg.Error):
                positions, _ = self.positions_and_head()
                slowest = min(positions.values(), default=0)
                if slowest != last:
                    moved.append(time.monotonic())
                    last = slowest
            time.sleep(0.05)

    def _inject_faults(self) -> tuple[list[tuple[str, float, float]], int]:
        """The faults, one after the other: (name, when, when the database answered again);
        and how many cut commits the relayed service had found stored before its turn."""
        plan = self.plan
        assert self.cutter is not None
        faults = []
        time.sleep(plan.settle_seconds / 2)  # writing under way
        at = time.monotonic()
        cut, committing = self.cluster.terminate_all()
        faults.append((f"all {cut} backends terminated ({committing} committing)", at, at))
        time.sleep(plan.settle_seconds)

        at = time.monotonic()
        committed = self.cluster.kill_one_backend(self.rng)
        time.sleep(0.2)  # the postmaster notices the crash and resets the others
        back = self.cluster.wait_until_back()
        faults.append(
            (f"{'a committing' if committed else 'one'} backend killed (SIGKILL)", at, back)
        )
        time.sleep(plan.settle_seconds)

        self.cluster.wait_for_a_commit()
        at = time.monotonic()
        self.cluster.stop("immediate")
        time.sleep(plan.stop_seconds)
        self.cluster.start()
        back = self.cluster.wait_until_back()
        faults.append((f"immediate stop for {plan.stop_seconds:g} s", at, back))
        time.sleep(plan.settle_seconds)

        assert self.cut_service is not None
        landed_before = commits_cut([self.cut_service])["had_landed"]
        self.cutter.arm(plan.commit_cuts)
        deadline = time.monotonic() + 30
        while self.cutter.cut < plan.commit_cuts and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(plan.settle_seconds / 2)
        # One more, after which the database stays out of reach (for that service) longer
        # than the service waits to learn the outcome: it must answer outcome-unknown.
        self.cutter.arm(1, blackout=plan.store_timeout + 2)
        deadline = time.monotonic() + 30
        while self.cutter.cut <= plan.commit_cuts and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(plan.store_timeout + 4)  # the blackout, and the retries after it
        return faults, landed_before

    def _cut_figures(self, out: Outcome, landed_before: int) -> None:
        """What the services logged of commits whose answer they lost."""
        assert self.cutter is not None and self.cut_service is not None
        every = commits_cut([*self.services, self.cut_service])
        out.figure(
            "commits cut: had landed / stored again / had not landed / unknown",
            f"{every['had_landed']} / {every['stored_again']} / "
            f"{every['had_not_landed']} / {every['unknown']}",
        )
        wanted = self.plan.commit_cuts
        out.exactly("COMMIT answers lost after the commit (relay)", self.cutter.cut - 1, wanted)
        settled = commits_cut([self.cut_service])["had_landed"] - landed_before
        out.exactly("... each found stored by the service", settled, wanted)
        writes = [a for a in self.journal.of("s3") if a.kind == "report"]
        unknown = {a.op for a in writes if a.outcome_unknown}
        resolved = {a.op for a in writes if a.op in unknown and a.status not in (0, 503)}
        dark = self.plan.store_timeout + 2
        out.figure(
            f"one more, then the database out of reach for {dark:g} s: outcome-unknown answers",
            len(unknown),
            ">= 1",
            len(unknown) >= 1,
        )
        out.exactly("... settled by a retry with their key", len(resolved), len(unknown))

    # -- 4: the worker killed ------------------------------------------------------------------

    def worker_kills(self) -> Outcome:
        """``kill -9`` the worker again and again, each time while it applies events and
        clients write; then the projections must equal a clean rebuild from the events."""
        out = Outcome("4 worker kill -9")
        plan = self.plan
        assert self.worker is not None
        self.worker.popen.terminate()
        self.worker.popen.wait(30)
        self.worker = self.fleet.worker(batch=20, poll=0.2)
        stop = threading.Event()
        threads = start_threads(lambda n: self._lifecycle_writer(n, stop), plan.worker_writers)
        try:
            kills, exits = self._kill_worker_repeatedly(out)
        finally:
            stop.set()
            for thread in threads:
                thread.join(120)
        caught_up = self.wait_projected(timeout=120)
        differences, events = compare_with_rebuild(self.cluster)
        with self.cluster.connect(DATABASE) as db:
            failed = db.execute("SELECT count(*) FROM projection_failure").fetchone()
        attempts = self.journal.of("s4")
        self.verify(out, "s4", [a.case_id for a in attempts if a.kind == "create" and a.ok])
        out.exactly("kill -9 of the worker while it applies events", kills, plan.worker_kills)
        out.zero("worker exits of its own (failed starts)", exits)
        out.figure("events written meanwhile", sum(1 for a in attempts if a.ok))
        out.within("caught up, after the writers stopped", caught_up, 120)
        out.figure("events in the store", events)
        out.zero("rows differing from a clean rebuild", differences)
        out.zero("events set aside as failed", int(failed[0]) if failed else 0)
        self._common(out, attempts)
        return out

    def _lifecycle_writer(self, number: int, stop: threading.Event) -> None:
        """Cases from request to closing, one after the other, until stopped."""
        steps = (
            "consent-youth",
            "appoint-chair",
            "meeting",
            "workplan",
            "registration",
            "follow-up",
            "report",
            "close",
        )
        client = self.client(number, "s4")
        try:
            while not stop.is_set():
                created = client.create_case()
                version = created.version if created.ok else None
                for kind in steps:
                    if version is None:
                        break
                    done = client.send(kind, created.case_id, version, key=uuid.uuid4().hex)
                    version = done.version if done.ok else None
                if not created.ok:
                    pause(created)
        finally:
            client.close()

    def _kill_worker_repeatedly(self, out: Outcome) -> tuple[int, int]:
        """(kills, times the worker had exited of itself)."""
        kills = exits = 0
        for _ in range(self.plan.worker_kills):
            assert self.worker is not None
            before, _ = self.positions_and_head()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and self.worker.alive():
                time.sleep(0.05)  # until it is applying events
                if self.positions_and_head()[0] != before:
                    break
            time.sleep(self.rng.uniform(0.0, 0.3))
            if self.worker.alive():
                self.worker.popen.send_signal(signal.SIGKILL)
                self.worker.popen.wait(30)
                kills += 1
            else:
                exits += 1
                out.check.failures.append(f"the worker exited: {self.worker.log_tail(4)}")
            self.worker = self.fleet.worker(batch=20, poll=0.2)
        return kills, exits

    # -- 5: everything starts at once ----------------------------------------------------------

    def simultaneous_start(self) -> Outcome:
        """Services and workers all started at the same instant on an empty database."""
        out = Outcome("5 simultaneous start")
        plan = self.plan
        up = 0
        slowest = 0.0
        for round_ in range(plan.startup_rounds):
            schema = "overleg" if round_ % 2 else None  # both kinds of URL
            came_up, seconds = self._start_at_once(f"startup_{round_}", schema, out)
            up += came_up
            slowest = max(slowest, seconds)
        total = plan.startup_rounds * (plan.startup_services + plan.startup_workers)
        what = f"{plan.startup_services} services + {plan.startup_workers} workers"
        out.exactly(f"processes up ({what}) x {plan.startup_rounds}", up, total)
        out.figure("slowest start, until every service answered", f"{slowest:.1f} s")
        attempts = self.journal.of("s5")
        out.zero("500 answers", sum(1 for a in attempts if a.status >= 500 and a.status != 503))
        return out

    def _start_at_once(self, database: str, schema: str | None, out: Outcome) -> tuple[int, float]:
        """Start them, write a case through each service, and wait for the workers to
        project them: (processes that came up and did their part, seconds to come up)."""
        plan = self.plan
        with self.cluster.connect() as db:
            db.execute(f"CREATE DATABASE {database}")
        url = self.cluster.url(database, schema)
        fleet = Fleet(database, url, self.workdir, plan.store_timeout, "info")
        try:
            services = [fleet.serve() for _ in range(plan.startup_services)]
            workers = [fleet.worker(poll=0.2) for _ in range(plan.startup_workers)]
            seconds = wait_until_up(services)
            for number, service in enumerate(services):
                client = Client(number, service.url, self.auth, self.journal, "s5")
                if not client.create_case().ok:
                    out.check.fail("a service cannot write", service.url)
                client.close()

            def worked(worker: Process) -> bool:
                return '"caught_up"' in worker.log.read_text(errors="replace")

            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (
                all(worked(w) for w in workers)
                and _count(self.cluster, database, schema, "case_view") >= len(services)
            ):
                time.sleep(0.2)
            projected = _count(self.cluster, database, schema, "case_view")
            if projected != len(services):
                out.check.fail("the workers did not project", f"{projected} case views")
            for process in fleet.processes:
                if not process.alive():
                    out.check.fail(
                        "a process did not come up", f"{process.name}: {process.log_tail(5)}"
                    )
            done = [s for s in services if s.alive()] + [
                w for w in workers if w.alive() and worked(w)
            ]
            return len(done), seconds
        finally:
            fleet.stop_all()

    def _common(self, out: Outcome, attempts: list[Attempt]) -> None:
        """The figures every scenario reports: its answers held against the store."""
        counts = out.check.counts
        out.zero("500 answers", sum(1 for a in attempts if a.status >= 500 and a.status != 503))
        out.zero("503 without Retry-After", counts["503 without Retry-After"])
        out.zero("acknowledged writes lost", counts["acknowledged write not stored"])
        out.zero(
            "stored writes reported as failed",
            counts["stored write reported as failed"] + counts["stored but never acknowledged"],
        )
        out.zero("writes stored twice", counts["stored twice"])
        named = (
            "503 without Retry-After",
            "acknowledged write not stored",
            "stored twice",
            "stored write reported as failed",
            "stored but never acknowledged",
            "5xx other than 503",
        )
        out.zero(
            "other failures (listed below)", sum(counts.values()) - sum(counts[k] for k in named)
        )


def log_lines(process: Process) -> Iterator[dict[str, Any]]:
    """The JSON lines a process logged."""
    for line in process.log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            yield json.loads(line)


def commits_cut(services: list[Process]) -> Counter[str]:
    """The commits whose answer these services lost, by what they then found."""
    return Counter(
        str(line.get("outcome"))
        for service in services
        for line in log_lines(service)
        if line.get("event") == "commit_cut"
    )


def _acked(attempts: list[Attempt]) -> int:
    return len({a.op for a in attempts if a.ok and a.kind not in ("read",)})


def _count(cluster: Cluster, database: str, schema: str | None, table: str) -> int:
    try:
        with cluster.connect(database) as db:
            qualified = f"{schema}.{table}" if schema else table
            row = db.execute(f"SELECT count(*) FROM {qualified}").fetchone()
        return int(row[0]) if row else 0
    except psycopg.Error:
        return -1


def pause(attempt: Attempt) -> None:
    """Wait as the answer asks (Retry-After), briefly when it does not say."""
    try:
        time.sleep(min(5.0, float(attempt.retry_after or 0.2)))
    except ValueError:
        time.sleep(1.0)


def racing_share(commands: list[Attempt]) -> float:
    """The share of commands sent for a case and version that another command, in flight at
    the same time, was also sent for."""
    by_version: dict[tuple[str, int | None], list[Attempt]] = defaultdict(list)
    for a in commands:
        by_version[(a.case_id, a.if_match)].append(a)
    racing = 0
    for group in by_version.values():
        for a in group:
            if any(b is not a and b.sent < a.received and a.sent < b.received for b in group):
                racing += 1
    return racing / len(commands) if commands else 0.0


def compare_with_rebuild(cluster: Cluster) -> tuple[int, int]:
    """The projections' rows against the same projections built afresh, in a schema of their
    own, from the stored events; returns (differing rows, events)."""
    from overleg.adapters.eventstore import Database
    from overleg.adapters.sealing import MasterKeys
    from overleg.adapters.views import ViewStore
    from overleg.application import Overleg
    from overleg.projections.runner import PROJECTIONS, Projector

    masters = MasterKeys.parse(MASTER_KEYS, "the run's master key")
    app = Overleg(Database.from_url(cluster.url()), masters=masters)
    clean = ViewStore(Database.from_url(cluster.url(schema="clean_rebuild")))
    try:
        events = Projector(app.event_log, clean).catch_up()
    finally:
        clean.close()
        app.close()
    differing = 0
    with cluster.connect(DATABASE) as db:
        for projection in PROJECTIONS:
            for table in projection.tables:
                live = Counter(db.execute(f"SELECT * FROM public.{table}").fetchall())
                fresh = Counter(db.execute(f"SELECT * FROM clean_rebuild.{table}").fetchall())
                differing += sum(((live - fresh) + (fresh - live)).values())
        db.execute("DROP SCHEMA clean_rebuild CASCADE")
    return differing, events


def start_threads(target: Callable[[int], None], count: int) -> list[threading.Thread]:
    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    return threads


def run_threads(target: Callable[[int], None], count: int) -> None:
    errors: list[BaseException] = []

    def guarded(number: int) -> None:
        try:
            target(number)
        except BaseException as error:
            errors.append(error)

    for thread in start_threads(guarded, count):
        thread.join(600)
    if errors:
        raise errors[0]


# -- running it -------------------------------------------------------------------------------


@dataclass
class Report:
    plan: Plan
    outcomes: list[Outcome]
    seconds: float
    started: datetime

    @property
    def failures(self) -> list[str]:
        return [f"{o.name}: {f}" for o in self.outcomes for f in o.check.failures]

    def table(self) -> str:
        lines = [
            f"overleg chaos suite ({self.plan.name}), {self.started:%Y-%m-%d %H:%M} UTC, "
            f"{os.cpu_count()} CPU(s), {self.seconds:.0f} s",
            "",
            "| scenario | figure | measured | required | |",
            "|---|---|---|---|---|",
        ]
        for outcome in self.outcomes:
            for f in outcome.figures:
                mark = "ok" if f.ok else "FAILED"
                lines.append(
                    f"| {f.scenario} | {f.name} | {f.value} | {f.required} | "
                    f"{mark if f.required else ''} |"
                )
        if self.failures:
            lines += ["", "Failures:", *(f"  {f}" for f in self.failures)]
        return "\n".join(lines)


@contextlib.contextmanager
def environment(plan: Plan) -> Iterator[Suite]:
    """A cluster and the processes on it, torn down at the end, also on failure."""
    workdir = Path(tempfile.mkdtemp(prefix="overleg-chaos-"))
    cluster = Cluster()
    suite: Suite | None = None
    try:
        with contextlib.ExitStack() as stack:
            cluster.create()
            suite = Suite(plan, workdir, cluster)
            try:
                suite.start(stack)
                yield suite
            finally:
                suite.fleet.stop_all()
    finally:
        keep = bool(os.environ.get("OVERLEG_CHAOS_KEEP_LOGS"))
        if keep and cluster.log.exists():
            shutil.copy(cluster.log, workdir / "postgresql.log")
        cluster.destroy()
        if keep:
            print(f"logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


SCENARIOS: dict[str, Callable[[Suite], Outcome]] = {
    "racing": Suite.racing,
    "lost-answers": Suite.lost_answers,
    "database-faults": Suite.database_faults,
    "worker-kills": Suite.worker_kills,
    "simultaneous-start": Suite.simultaneous_start,
}


def run(
    plan: Plan, only: list[str] | None = None, log: Callable[[str], None] | None = None
) -> Report:
    """Run the scenarios of ``plan`` (all, or ``only`` these) on a cluster of their own."""
    started_at = datetime.now(UTC)
    started = time.monotonic()
    outcomes = []
    with environment(plan) as suite:
        for name, scenario in SCENARIOS.items():
            if only and name not in only:
                continue
            began = time.monotonic()
            outcome = scenario(suite)
            outcome.seconds = time.monotonic() - began
            outcomes.append(outcome)
            if log:
                log(
                    f"{outcome.name}: {outcome.seconds:.0f} s, "
                    f"{len(outcome.check.failures)} failure(s)"
                )
    return Report(plan, outcomes, time.monotonic() - started, started_at)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="the reduced run (about a minute)")
    parser.add_argument(
        "--only",
        action="append",
        choices=list(SCENARIOS),
        help="run only this scenario (repeatable)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    plan = SHORT if args.short else FULL
    report = run(plan, args.only, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(report.table())
    if args.json:
        args.json.write_text(
            json.dumps([f.__dict__ for o in report.outcomes for f in o.figures], indent=2)
        )
    sys.exit(1 if report.failures else 0)


if __name__ == "__main__":
    main()
