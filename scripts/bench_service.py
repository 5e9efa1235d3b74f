"""Benchmark the overleg service against raw baselines, on SQLite and PostgreSQL.

Four sections: commands through the application, reading a case and its history, a case's
history in stores of growing size, and the HTTP API under load.

Every overleg figure stands beside a raw baseline measured in the same run, on the same
data, interleaved with it; the tables (Markdown, on standard output) show the median of
--repeat runs. The machine is shared: read the ratios and medians.

- commands: ``Overleg.handle`` in 1 and in 8 writer processes, each bootstrapped from
  OVERLEG_DATABASE_URL as the service is (without the projections' thread), on cases of
  its own: a bottleneck report, a held meeting or a consent in turn, each with the version
  the writer last saw (as If-Match gives it); and in 16 threads of one such process, as the
  service's worker threads give commands under 16 connections. Baseline: as many processes
  (threads) inserting one JSON row of the events' mean size per transaction into a plain
  table (sqlite3, psycopg), each on a connection of its own.
  Beside it, the least such a command costs: the same processes sending a command's
  statements raw (its case's last seq read, then its event row, chain link and command-log
  row in one transaction), as a share of the raw insert rate.
- reads: the handlers of GET /cases/{id} and GET /cases/{id}/history, called in-process
  with their answer serialised, on cases of 10, 100 and 1,000 events (imported): on a case
  not kept (read from the projections, or replayed from the store, as the service would),
  and on one the service kept from the read before; beside them ``Overleg.replay`` alone.
  The projections are kept as in service: on PostgreSQL caught up after the import, as
  ``overleg worker`` keeps them. Baseline: SELECT the case's rows and json.loads each.
- flat: GET /cases/{id}/history of five 50-event cases, cold and kept, in a store that holds
  only them, then beside 10,000 and 30,000 cases of the 2015 stream (87,000 and 261,000
  events): the figures should not grow with the store.
- api: a real ``overleg serve`` (with ``overleg worker`` on PostgreSQL) under wrk, 16
  connections: GET a case and its history (every case of the stream in turn, and 50 cases
  in turn; every case in turn as a professional of it, each request with its own token),
  the case list (one page again and again, and 100 pages in turn: more than the service
  keeps), the statistics, and a bottleneck report with a current If-Match.
  Baseline: a constant FastAPI endpoint under the same uvicorn settings, loaded as it
  is and as the reads of cases in turn are (the same script, a token). Beside it, the
  floor of every read: the service's own app with one route more that signs the caller
  in, takes a case id, records the read and answers without reading the case (an audited
  read of nothing). On PostgreSQL also the floor of a case not kept: its statement alone
  on the event loop's pool, in an app of its own. Peak resident memory (VmHWM) of the
  service process.

    scripts/bench service                  # everything, median of 3 (about 15 minutes)
    scripts/bench service --quick          # a smoke run: 2 s a measurement, once
    scripts/bench service --only api --backends sqlite --repeat 5 --seconds 10
    scripts/bench service --only reads,flat --reader professional   # as a professional
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from starlette.requests import Request
from starlette.responses import Response
from uvicorn.config import Config as UvicornConfig

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_import import (  # noqa: E402
    OVERLEG,
    PG,
    drop,
    fresh_url,
    run_overleg,
    write_stream,
)
from bench_import import _high_water_mib as high_water_mib  # noqa: E402

from overleg.aggregates.values import Attendance, Party, Role  # noqa: E402
from overleg.api.auth import dev_private_key, issue_dev_token  # noqa: E402
from overleg.api.routers import cases as case_routes  # noqa: E402
from overleg.application import StaleCase, utc_now  # noqa: E402
from overleg.bootstrap import VIEWED_KEPT, Services, bootstrap, read_settings  # noqa: E402
from overleg.commands import CaseCommand, GiveConsent, HoldMeeting, ReportBottleneck  # noqa: E402
from overleg.logs import configure as configure_logs  # noqa: E402
from overleg.policies.access import Principal, StaffRole  # noqa: E402
from overleg.policies.rules import brussels_day  # noqa: E402
from overleg.projections.memo import KEPT as PAGES_KEPT  # noqa: E402
from overleg.settings import Settings  # noqa: E402

BACKENDS = ("sqlite", "postgresql")
SECTIONS = ("commands", "reads", "flat", "api")
WRITERS = (1, 8)
THREADS = 16  # writer threads of one process, as the service has under 16 connections
READ_SIZES = (10, 100, 1000)
PROBE_EVENTS = 50  # the case whose history is read in stores of growing size
CONNECTIONS = 16
WRK_THREADS = 2
TEAM = Principal("team-antwerpen-1", StaffRole.TEAM, region="Antwerpen")
CHAIR = Principal("voorzitter-bench", StaffRole.CHAIR)
PROFESSIONALS = ("hulpverlener-1", "hulpverlener-2")
# Who reads the cases in process (--reader): the chair, or a professional present at every
# meeting (the requester).
READERS = {
    "chair": CHAIR,
    "professional": Principal(PROFESSIONALS[0], StaffRole.PROFESSIONAL),
}
THEME, DESCRIPTION = "wachtlijst", "Geen plaats in de residentiële jeugdhulp binnen de regio"


@dataclass(frozen=True)
class Plan:
    """How long and on how much each measurement runs."""

    repeat: int
    seconds: float  # one command run, one wrk run
    writer_cases: int  # fresh cases per writer process and run
    api_cases: int  # cases of the 2015 stream behind the API's lists and statistics
    post_cases: int  # fresh cases per wrk run of the bottleneck report
    flat_cases: tuple[int, ...]  # cases of the 2015 stream beside the probes, per store
    reader: Principal = CHAIR  # who reads the cases in process (reads, flat)

    @property
    def read_seconds(self) -> float:
        return max(0.3, self.seconds / 4)


# -- helpers ---------------------------------------------------------------------------


def p50(values: Sequence[float]) -> float:
    return statistics.median(values)


def p99(values: Sequence[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}" if seconds < 0.1 else f"{seconds * 1000:.0f}"


def bench_environment(workdir: Path) -> None:
    """Keys of this run only, for every process it starts, and no other overleg setting of
    the caller's: the development folder is not touched."""
    for name in [n for n in os.environ if n.startswith("OVERLEG_")]:
        if name != "OVERLEG_TEST_POSTGRES_URL":
            del os.environ[name]
    os.environ["OVERLEG_DEV_KEY_FILE"] = str(workdir / "dev-signing-key.jwk")
    key = base64.b64encode(os.urandom(32)).decode()
    os.environ["OVERLEG_MASTER_KEYS"] = f"bench-{uuid.uuid4().hex[:8]}:{key}"


@contextmanager
def fresh_store(backend: str, workdir: Path) -> Iterator[tuple[str, str | None]]:
    """A new empty store (a SQLite file, or a PostgreSQL schema dropped afterwards)."""
    url, schema = fresh_url(backend, workdir)
    try:
        yield url, schema
    finally:
        drop(schema)


def case_line(case: str, seq: int, kind: str, at: datetime, by: str, data: dict[str, Any]) -> str:
    line = {"case": case, "seq": seq, "type": kind, "at": at.isoformat(), "by": by, "data": data}
    return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


def write_cases(out: Any, count: int, events: int, start: datetime) -> list[str]:
    """``count`` cases of ``events`` events each, as the commands of this benchmark make
    them: a request, the young person's consent and the chair, then a bottleneck report,
    a held meeting and a consent in turn. Recorded from ``start`` on (contract v2's rules
    when it is recent), one second apart."""
    ids = []
    for _ in range(count):
        case = str(uuid.uuid4())
        ids.append(case)
        at = start
        day = brussels_day(start).isoformat()
        request = {
            "programme": "integrale_jeugdhulp",
            "region": "Antwerpen",
            "requested_by": {"ref": PROFESSIONALS[0], "role": "professional"},
            "channel": "cobe",
            "client": {"ref": "jongere-1", "birth_date": "2010-05-01"},
            "question": "Afstemming tussen school en thuisbegeleiding",
        }
        lines: list[tuple[str, str, dict[str, Any]]] = [
            ("Requested", TEAM.ref, request),
            ("ConsentGiven", TEAM.ref, {"party": {"ref": "jongere-1", "role": "youth"}}),
            ("ChairAppointed", TEAM.ref, {"chair": CHAIR.ref}),
        ]
        meetings = 0
        for seq in range(4, events + 1):
            match seq % 3:
                case 1:
                    lines.append(("BottleneckReported", CHAIR.ref, bottleneck_data()))
                case 2:
                    meetings += 1
                    lines.append(("MeetingHeld", CHAIR.ref, meeting_data(meetings, day)))
                case _:
                    party = {"ref": f"netwerk-{seq}", "role": "network"}
                    lines.append(("ConsentGiven", TEAM.ref, {"party": party}))
        for seq, (kind, by, data) in enumerate(lines, start=1):
            out.write(case_line(case, seq, kind, at, by, data) + "\n")
            at += timedelta(seconds=1)
    return ids


def bottleneck_data() -> dict[str, Any]:
    return {"theme": THEME, "description": DESCRIPTION}


def meeting_data(number: int, day: str) -> dict[str, Any]:
    attendance = {
        "youth": True,
        "parents": False,
        "trusted_person": None,
        "professionals": list(PROFESSIONALS),
    }
    return {"meeting": number, "held_on": day, "place": "CLB, zaal 2", "attendance": attendance}


def import_cases(path: Path, url: str) -> None:
    seconds, _peak = run_overleg(["import", str(path), "--quiet"], url)
    print(f"<!-- imported {path.name} in {seconds:.1f} s -->", file=sys.stderr, flush=True)


def events_table(backend: str, schema: str | None) -> str:
    """The events table as the library names it (eventsourcing: per backend)."""
    return "stored_events" if backend == "sqlite" else f'"{schema}".overleg_events'


def sqlite_path(url: str) -> str:
    return url.removeprefix("sqlite:///")


# -- 1. commands -----------------------------------------------------------------------


def command_for(case_id: UUID, visit: int, day: date) -> tuple[CaseCommand, Principal]:
    """The ``visit``-th command on a case: a bottleneck report, a held meeting or a new
    party's consent, in turn; with the caller that may give it."""
    match visit % 3:
        case 0:
            return ReportBottleneck(case_id, THEME, DESCRIPTION), CHAIR
        case 1:
            attendance = Attendance(True, False, None, PROFESSIONALS)
            return HoldMeeting(case_id, day, "CLB, zaal 2", attendance), CHAIR
        case _:
            return GiveConsent(case_id, Party(f"netwerk-b{visit}", Role.NETWORK)), TEAM


@dataclass
class WriterResult:
    latencies: list[float]
    started: float
    ended: float
    errors: dict[str, int] = field(default_factory=dict)


def overleg_writer(url: str, cases: list[str], seconds: float, ready: Any, out: Any) -> None:
    """One writer process: the service's composition root, then commands until time is up."""
    os.environ["OVERLEG_DATABASE_URL"] = url
    configure_logs("warning")
    services = bootstrap()
    try:
        result = command_loop(services, cases, seconds, ready)
    finally:
        services.close()
    out.put(result)


def overleg_threads(
    url: str, cases: list[str], threads: int, seconds: float, ready: Any, out: Any
) -> None:
    """One process, as the service is: its composition root, then ``threads`` threads
    giving commands on cases of their own until time is up (as the service's worker
    threads do under as many connections)."""
    os.environ["OVERLEG_DATABASE_URL"] = url
    configure_logs("warning")
    services = bootstrap()
    share = len(cases) // threads
    try:
        out.put(
            in_threads(
                lambda k, go: command_loop(
                    services, cases[k * share : (k + 1) * share], seconds, go
                ),
                threads,
                ready,
            )
        )
    finally:
        services.close()


def in_threads(work: Callable[[int, Any], WriterResult], threads: int, ready: Any) -> WriterResult:
    """``work(k, go)`` in ``threads`` threads of this process, let go together once every
    process is ready; their results as one."""
    go = threading.Barrier(threads + 1)
    results: list[WriterResult | None] = [None] * threads

    def run(k: int) -> None:
        results[k] = work(k, go)

    running = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for thread in running:
        thread.start()
    ready.wait()
    go.wait()
    for thread in running:
        thread.join()
    done = [r for r in results if r is not None]
    if len(done) != threads:
        raise SystemExit(f"{threads - len(done)} of {threads} writer threads failed")
    return WriterResult(
        [x for r in done for x in r.latencies],
        min(r.started for r in done),
        max(r.ended for r in done),
        summed_errors(done),
    )


def summed_errors(results: Sequence[WriterResult | Rate]) -> dict[str, int]:
    """The errors of several runs, by name."""
    errors: dict[str, int] = {}
    for r in results:
        for name, count in r.errors.items():
            errors[name] = errors.get(name, 0) + count
    return errors


def command_loop(services: Services, cases: list[str], seconds: float, ready: Any) -> WriterResult:
    """Commands on ``cases`` (each at version 3), round after round, until time is up."""
    ids = [UUID(c) for c in cases]
    versions = dict.fromkeys(ids, 3)
    result = WriterResult([], 0.0, 0.0)
    ready.wait()
    result.started = time.perf_counter()
    deadline = result.started + seconds
    rounds = 0
    while time.perf_counter() < deadline:
        day = brussels_day(utc_now())
        for k, case_id in enumerate(ids):
            # The mix spread over the cases of each round; each visit names a new party.
            command, caller = command_for(case_id, rounds + k % 3, day)
            begun = time.perf_counter()
            try:
                outcome = services.app.handle(command, caller, versions[case_id])
            except StaleCase as stale:  # not expected: each writer has cases of its own
                versions[case_id] = stale.actual
                result.errors["StaleCase"] = result.errors.get("StaleCase", 0) + 1
                continue
            except Exception as error:
                name = type(error).__name__
                result.errors[name] = result.errors.get(name, 0) + 1
                continue
            result.latencies.append(time.perf_counter() - begun)
            versions[case_id] = outcome.version
            if time.perf_counter() >= deadline:
                break
        rounds += 1
    result.ended = time.perf_counter()
    return result


def raw_writer(backend: str, target: str, size: int, seconds: float, ready: Any, out: Any) -> None:
    """One raw writer process: one JSON row of ``size`` bytes per transaction, into the
    SQLite file ``target`` or the PostgreSQL schema ``target``."""
    conn, insert = raw_insert(backend, target)
    result = rows_until(insert, size, seconds, ready)
    conn.close()
    out.put(result)


def raw_insert(backend: str, target: str) -> tuple[Any, Callable[[str, int, bytes], None]]:
    """A connection of its own, and one row inserted per transaction through it."""
    if backend == "postgresql":
        schema = target
        conn: Any = psycopg.connect(PG, autocommit=True)
        statement = sql.SQL("INSERT INTO {}.raw_events (c, s, b) VALUES (%s, %s, %s)").format(
            sql.Identifier(schema)
        )

        def insert(case: str, seq: int, body: bytes) -> None:
            conn.execute(statement, (case, seq, body))

        return conn, insert
    # Autocommit, and a write transaction taken at its start: several writers then wait
    # for the lock (up to 30 s) instead of failing on a deferred transaction's upgrade.
    conn = sqlite3.connect(target, timeout=30, isolation_level=None)

    def insert_sqlite(case: str, seq: int, body: bytes) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO raw_events (c, s, b) VALUES (?, ?, ?)", (case, seq, body))
        conn.execute("COMMIT")

    return conn, insert_sqlite


def raw_threads(
    backend: str, target: str, size: int, threads: int, seconds: float, ready: Any, out: Any
) -> None:
    """One process, ``threads`` threads, each a raw writer with a connection of its own."""

    def one(_k: int, go: Any) -> WriterResult:
        conn, insert = raw_insert(backend, target)
        try:
            return rows_until(insert, size, seconds, go)
        finally:
            conn.close()

    out.put(in_threads(one, threads, ready))


def rows_until(
    write: Callable[[str, int, bytes], None], size: int, seconds: float, ready: Any
) -> WriterResult:
    """Write rows of ``size`` bytes to one new case, seq 1, 2, ..., each timed, from the
    moment every writer is ready until ``seconds`` have passed."""
    case, seq = str(uuid.uuid4()), 0
    padding = "x" * max(0, size - len(raw_row("", 0)))
    result = WriterResult([], 0.0, 0.0)
    ready.wait()
    result.started = time.perf_counter()
    deadline = result.started + seconds
    while time.perf_counter() < deadline:
        seq += 1
        begun = time.perf_counter()
        write(case, seq, raw_row(padding, seq).encode())
        result.latencies.append(time.perf_counter() - begun)
    result.ended = time.perf_counter()
    return result


def statements_writer(
    backend: str, target: str, size: int, seconds: float, ready: Any, out: Any
) -> None:
    """One raw writer process that sends a command's statements and nothing else: read the
    case's last seq, then in one transaction its event row (of ``size`` bytes), its chain
    link and its command-log row; no rules, no sealing, no objects. The least a command
    that is versioned, tamper-evident and idempotent costs on this store, without the
    event table's lock (which it takes in overleg)."""
    events = "raw_events"
    chain = "raw_chain"
    commands = "raw_commands"
    if backend == "postgresql":
        conn: Any = psycopg.connect(PG, autocommit=True, options=f"-c search_path={target}")
        mark = "%s"
    else:
        conn = sqlite3.connect(target, timeout=30, isolation_level=None)
        mark = "?"
    last = f"SELECT max(s) FROM {events} WHERE c = {mark}"
    statements = [
        f"INSERT INTO {events} (c, s, b) VALUES ({mark}, {mark}, {mark})",
        f"INSERT INTO {chain} (c, s, link, digest) VALUES ({mark}, {mark}, {mark}, {mark})",
        f"INSERT INTO {commands} (k, c, first, last, at) VALUES "
        f"({mark}, {mark}, {mark}, {mark}, {mark})",
    ]

    def command(case: str, _seq: int, body: bytes) -> None:
        row = conn.execute(last, (case,)).fetchone()
        seq = (row[0] or 0) + 1
        link = hashlib.sha256(body).digest()
        params = [
            (case, seq, body),
            (case, seq, link, link),
            (uuid.uuid4().hex, case, seq, seq, datetime.now(UTC).isoformat()),
        ]
        if backend == "postgresql":
            with conn.transaction():
                for statement, values in zip(statements, params, strict=True):
                    conn.execute(statement, values)
        else:
            conn.execute("BEGIN IMMEDIATE")
            for statement, values in zip(statements, params, strict=True):
                conn.execute(statement, values)
            conn.execute("COMMIT")

    result = rows_until(command, size, seconds, ready)
    conn.close()
    out.put(result)


def raw_row(padding: str, seq: int) -> str:
    row = {
        "timestamp": datetime.now(UTC).isoformat(),
        "recorded_by": CHAIR.ref,
        "seq": seq,
        "theme": THEME,
        "personal": padding,
    }
    return json.dumps(row, separators=(",", ":"))


@dataclass
class Rate:
    per_second: float
    p50: float
    p99: float
    errors: dict[str, int]


def run_writers(
    work: Callable[..., None], arguments: list[tuple[Any, ...]], seconds: float
) -> Rate:
    """Start one process per argument tuple, let them all go at once, and collect."""
    context = multiprocessing.get_context("spawn")  # fresh interpreters, as the service's
    ready = context.Barrier(len(arguments))
    out = context.Queue()
    processes = [
        context.Process(target=work, args=(*args, seconds, ready, out)) for args in arguments
    ]
    for process in processes:
        process.start()
    results: list[WriterResult] = []
    try:
        for _ in processes:
            results.append(out.get(timeout=seconds + 180))
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
    if any(p.exitcode for p in processes):
        raise SystemExit(f"a writer process failed: {[p.exitcode for p in processes]}")
    latencies = [x for r in results for x in r.latencies]
    wall = max(r.ended for r in results) - min(r.started for r in results)
    return Rate(len(latencies) / wall, p50(latencies), p99(latencies), summed_errors(results))


def mean_state_bytes(backend: str, url: str, schema: str | None) -> int:
    """The mean size of the events the commands stored (not the set-up's)."""
    table = events_table(backend, schema)
    query = f"SELECT avg(length(state)) FROM {table} WHERE originator_version > 3"
    if backend == "sqlite":
        with closing(sqlite3.connect(sqlite_path(url))) as conn:
            row = conn.execute(query).fetchone()
    else:
        with psycopg.connect(PG) as conn:
            row = conn.execute(query).fetchone()
    return round(float(row[0])) if row and row[0] else 300


def raw_target(backend: str, workdir: Path, schema: str | None) -> str:
    """A plain table for the raw writers: in a SQLite file of its own (WAL, as the store),
    or in the run's PostgreSQL schema."""
    if backend == "sqlite":
        path = workdir / f"raw-{uuid.uuid4().hex}.db"
        with closing(sqlite3.connect(path)) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE raw_events (c TEXT, s INTEGER, b BLOB, PRIMARY KEY (c, s))")
            conn.execute(
                "CREATE TABLE raw_chain (c TEXT, s INTEGER, link BLOB, digest BLOB,"
                " PRIMARY KEY (c, s))"
            )
            conn.execute(
                "CREATE TABLE raw_commands (k TEXT PRIMARY KEY, c TEXT, first INTEGER,"
                " last INTEGER, at TEXT)"
            )
        return str(path)
    assert schema is not None
    with psycopg.connect(PG, autocommit=True) as conn:
        for table in (
            "raw_events (c uuid, s int, b bytea, PRIMARY KEY (c, s))",
            "raw_chain (c uuid, s int, link bytea, digest bytea, PRIMARY KEY (c, s))",
            "raw_commands (k text PRIMARY KEY, c uuid, first int, last int, at text)",
        ):
            create = sql.SQL("CREATE TABLE {}.").format(sql.Identifier(schema))
            conn.execute(create + sql.SQL(table))
    return schema


def bench_commands(backend: str, workdir: Path, plan: Plan) -> dict[str, dict[str, Any]]:
    """Interleaved, per repeat: overleg and raw with 1 writer, with 8, then with 16 threads
    of one process (as the service's worker threads under 16 connections)."""
    per_thread = max(1, plan.writer_cases // 8)
    pools = plan.repeat * (sum(WRITERS) * plan.writer_cases + THREADS * per_thread)
    labels = {n: f"{n} process{'es' if n > 1 else ''}" for n in WRITERS}
    threaded = f"{THREADS} threads, 1 process"
    runs: dict[str, dict[str, list[Any]]] = {
        label: {"overleg": [], "raw": [], "statements": []}
        for label in (*labels.values(), threaded)
    }
    with fresh_store(backend, workdir) as (url, schema):
        path = workdir / "command-cases.jsonl"
        start = datetime.now(UTC) - timedelta(hours=1)
        with path.open("w", encoding="utf-8") as out:
            cases = write_cases(out, pools, 3, start)
        import_cases(path, url)
        target = raw_target(backend, workdir, schema)
        size = 0
        for _ in range(plan.repeat):
            for writers in WRITERS:
                arguments = []
                for _writer in range(writers):
                    mine, cases = cases[: plan.writer_cases], cases[plan.writer_cases :]
                    arguments.append((url, mine))
                run = runs[labels[writers]]
                run["overleg"].append(run_writers(overleg_writer, arguments, plan.seconds))
                size = size or mean_state_bytes(backend, url, schema)
                raw_arguments = [(backend, target, size)] * writers
                run["raw"].append(run_writers(raw_writer, raw_arguments, plan.seconds))
                run["statements"].append(
                    run_writers(statements_writer, raw_arguments, plan.seconds)
                )
            mine, cases = cases[: THREADS * per_thread], cases[THREADS * per_thread :]
            run = runs[threaded]
            run["overleg"].append(
                run_writers(overleg_threads, [(url, mine, THREADS)], plan.seconds)
            )
            run["raw"].append(
                run_writers(raw_threads, [(backend, target, size, THREADS)], plan.seconds)
            )
    return {label: {"size": size, **r} for label, r in runs.items()}


def print_commands(results: dict[str, dict[str, dict[str, Any]]], plan: Plan) -> None:
    print(
        f"\n### Commands through the application ({plan.seconds:g} s a run, "
        f"median of {plan.repeat})\n"
    )
    print(
        "| backend | writers | overleg commands/s | p50 ms | p99 ms "
        "| raw inserts/s | raw p50 ms | raw p99 ms | overleg, % of raw | row bytes | errors "
        "| raw command statements/s | those, % of raw |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for backend, by_writers in results.items():
        for writers, r in by_writers.items():
            ours, raw, floor = r["overleg"], r["raw"], r["statements"]
            share = p50([o.per_second / w.per_second for o, w in zip(ours, raw, strict=True)])
            statements = "– | –"
            if floor:
                least = p50([f.per_second / w.per_second for f, w in zip(floor, raw, strict=True)])
                statements = f"{p50([f.per_second for f in floor]):,.0f} | {100 * least:.0f} %"
            errors = summed_errors(ours)
            said = ", ".join(f"{k} {v}" for k, v in sorted(errors.items())) or "0"
            print(
                f"| {backend} | {writers} | {p50([o.per_second for o in ours]):,.0f} "
                f"| {ms(p50([o.p50 for o in ours]))} | {ms(p50([o.p99 for o in ours]))} "
                f"| {p50([w.per_second for w in raw]):,.0f} | {ms(p50([w.p50 for w in raw]))} "
                f"| {ms(p50([w.p99 for w in raw]))} | {100 * share:.0f} % | {r['size']} "
                f"| {said} | {statements} |",
                flush=True,
            )


# -- 2. reads --------------------------------------------------------------------------


def request_for(path: str) -> Request:
    """A request as the service's middleware leaves it (the handlers read its ids)."""
    request = Request({"type": "http", "method": "GET", "path": path, "headers": []})
    request.state.request_id = uuid.uuid4().hex[:16]
    request.state.caller_request_id = None
    return request


_LOOP: list[asyncio.AbstractEventLoop] = []  # the loop the handlers run on, on a thread


def served_loop() -> asyncio.AbstractEventLoop:
    """A new event loop of the kind ``uvicorn`` runs the service on (its own choice)."""
    factory = UvicornConfig("overleg.api.app:create_app", factory=True).get_loop_factory()
    return asyncio.new_event_loop() if factory is None else factory()


def answered(handling: Coroutine[Any, Any, Response]) -> bytes:
    """A handler's answer as JSON, the handler run as the service runs it: on an event loop
    that keeps running (one for the whole run, on a thread of its own, so that the loop's
    pool of threads for the store's reads is kept from one call to the next), handed over
    as a request is (its wake-up is part of the time). The loop is the one `overleg serve`
    runs on: the one ``uvicorn`` picks (``uvloop`` where it is installed)."""
    if not _LOOP:
        loop = served_loop()
        threading.Thread(target=loop.run_forever, name="bench-loop", daemon=True).start()
        _LOOP.append(loop)
    return bytes(asyncio.run_coroutine_threadsafe(handling, _LOOP[0]).result().body)


def read_case(svc: Services, case_id: UUID, who: Principal = CHAIR) -> bytes:
    """GET /cases/{id}: the handler, then its answer as JSON."""
    request = request_for(f"/cases/{case_id}")
    return answered(
        case_routes.get_case(case_id=case_id, request=request, who=who, svc=svc, as_of=None)
    )


def read_history(svc: Services, case_id: UUID, who: Principal = CHAIR) -> bytes:
    """GET /cases/{id}/history: the handler, then its answer as JSON."""
    request = request_for(f"/cases/{case_id}/history")
    return answered(
        case_routes.history(case_id=case_id, request=request, who=who, svc=svc, as_of=None)
    )


class RawReader:
    """SELECT one case's rows in order and decode each one's JSON, on a held connection."""

    def __init__(self, backend: str, url: str, schema: str | None) -> None:
        self.backend = backend
        table = events_table(backend, schema)
        query = (
            f"SELECT originator_version, topic, state FROM {table}"
            " WHERE originator_id = {} ORDER BY originator_version"
        )
        if backend == "sqlite":
            self.conn: Any = sqlite3.connect(sqlite_path(url))
            self.query = query.format("?")
        else:
            self.conn = psycopg.connect(PG, autocommit=True)
            self.query = query.format("%s")

    def __call__(self, case_id: UUID) -> list[Any]:
        key: Any = case_id.hex if self.backend == "sqlite" else case_id
        rows = self.conn.execute(self.query, (key,)).fetchall()
        return [(seq, topic, json.loads(state)) for seq, topic, state in rows]

    def close(self) -> None:
        self.conn.close()


def timed_calls(
    call: Callable[[UUID], object],
    ids: list[UUID],
    seconds: float,
    before: Callable[[UUID], object] | None = None,
) -> list[float]:
    """Call round-robin over ``ids`` for ``seconds`` (at least 20 calls); each call's time
    (``before`` each call, untimed)."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(latencies) < 20:
        case_id = ids[len(latencies) % len(ids)]
        if before is not None:
            before(case_id)
        begun = time.perf_counter()
        call(case_id)
        latencies.append(time.perf_counter() - begun)
    return latencies


def as_served(url: str) -> Services:
    """The services as ``overleg serve`` has them: kept cases answered on the event loop,
    and on PostgreSQL the projections caught up, as ``overleg worker`` keeps them beside
    the service (on SQLite the service keeps them itself)."""
    services = bootstrap(Settings(database_url=url))
    services.watch_writes()
    if not services.inline_projections:
        services.projector.catch_up()
    return services


def forgetting(svc: Services) -> Callable[[UUID], object]:
    """Drop a case from the replays the service keeps for readers (as a change of the case
    does), and every answer it keeps from the case view (as any write does), so that the
    next read reads the case from the store: its events, or its view."""
    replays = getattr(svc.app, "replays", None)
    viewed = getattr(svc, "viewed", None)  # the service keeps them since the eleventh round

    def forget(case_id: UUID) -> None:
        if replays is not None:
            replays.forget(case_id)
        if viewed is not None:
            viewed.clear()

    return forget


READ_KINDS = ("case cold", "case kept", "history cold", "history kept", "replay", "raw")


def bench_reads(backend: str, workdir: Path, plan: Plan) -> dict[int, dict[str, list[float]]]:
    """Per repeat and case size, in turn: each handler on a case replayed from the store
    (cold) and on one kept from the read before (kept), the replay alone, the raw read;
    each kind's p50 and p99 per repeat."""
    found: dict[int, dict[str, list[float]]] = {
        n: {f"{kind} {q}": [] for kind in READ_KINDS for q in ("p50", "p99")} for n in READ_SIZES
    }
    with fresh_store(backend, workdir) as (url, schema):
        path = workdir / "read-cases.jsonl"
        start = datetime.now(UTC) - timedelta(hours=2)
        ids: dict[int, list[UUID]] = {}
        with path.open("w", encoding="utf-8") as out:
            for size in READ_SIZES:
                ids[size] = [UUID(c) for c in write_cases(out, 5, size, start)]
        import_cases(path, url)
        services = as_served(url)
        raw = RawReader(backend, url, schema)
        forget = forgetting(services)
        kinds: dict[str, tuple[Callable[[UUID], object], Callable[[UUID], object] | None]] = {
            "case cold": (lambda c: read_case(services, c, plan.reader), forget),
            "case kept": (lambda c: read_case(services, c, plan.reader), None),
            "history cold": (lambda c: read_history(services, c, plan.reader), forget),
            "history kept": (lambda c: read_history(services, c, plan.reader), None),
            "replay": (services.app.replay, None),
            "raw": (raw, None),
        }
        try:
            for size in READ_SIZES:  # warm: keys cached, pages read once, as in a service
                for call, _before in kinds.values():
                    call(ids[size][0])
            for _ in range(plan.repeat):
                for size in READ_SIZES:
                    for kind, (call, before) in kinds.items():
                        latencies = timed_calls(call, ids[size], plan.read_seconds, before)
                        found[size][f"{kind} p50"].append(p50(latencies))
                        found[size][f"{kind} p99"].append(p99(latencies))
        finally:
            raw.close()
            services.close()
    return found


def print_reads(results: dict[str, dict[int, dict[str, list[float]]]], plan: Plan) -> None:
    print(
        f"\n### Reading a case, in-process ({plan.read_seconds:g} s per kind and size, "
        f"median of {plan.repeat}; times in ms)\n"
    )
    print(
        "| backend | events | GET case p50 | p99 | kept p50 | GET history p50 | p99 "
        "| kept p50 | replay p50 | raw select+decode p50 | raw p99 | case ÷ raw "
        "| history ÷ raw |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for backend, by_size in results.items():
        for size, r in by_size.items():
            m = {k: p50(v) for k, v in r.items()}
            print(
                f"| {backend} | {size:,} | {ms(m['case cold p50'])} | {ms(m['case cold p99'])} "
                f"| {ms(m['case kept p50'])} | {ms(m['history cold p50'])} "
                f"| {ms(m['history cold p99'])} | {ms(m['history kept p50'])} "
                f"| {ms(m['replay p50'])} | {ms(m['raw p50'])} | {ms(m['raw p99'])} "
                f"| {m['case cold p50'] / m['raw p50']:.0f}x "
                f"| {m['history cold p50'] / m['raw p50']:.0f}x |",
                flush=True,
            )


# -- 2b. a case's history in stores of growing size -------------------------------------


def bench_flat(backend: str, workdir: Path, plan: Plan) -> dict[int, dict[str, list[float]]]:
    """GET /cases/{id}/history of 50-event cases (five, in turn), replayed from the store
    (cold) and kept, in stores that hold nothing else and then more and more other cases:
    every read is an index look-up, so its time should not follow the store's size."""
    found: dict[int, dict[str, list[float]]] = {}
    for fillers in plan.flat_cases:
        with fresh_store(backend, workdir) as (url, _schema):
            path = workdir / "flat-cases.jsonl"
            events = write_stream(path, fillers) if fillers else 0
            with path.open("a" if fillers else "w", encoding="utf-8") as out:
                start = datetime.now(UTC) - timedelta(hours=2)
                probes = [UUID(c) for c in write_cases(out, 5, PROBE_EVENTS, start)]
            import_cases(path, url)
            services = as_served(url)
            forget = forgetting(services)
            history = partial(read_history, services, who=plan.reader)
            runs: dict[str, list[float]] = {
                f"{kind} {q}": [] for kind in ("cold", "kept") for q in ("p50", "p99")
            }
            try:
                for case_id in probes:  # warm: keys cached, pages read once
                    history(case_id)
                for _ in range(plan.repeat):
                    for kind, before in (("cold", forget), ("kept", None)):
                        latencies = timed_calls(history, probes, plan.read_seconds, before)
                        runs[f"{kind} p50"].append(p50(latencies))
                        runs[f"{kind} p99"].append(p99(latencies))
            finally:
                services.close()
            found[events + len(probes) * PROBE_EVENTS] = runs
    return found


def print_flat(results: dict[str, dict[int, dict[str, list[float]]]], plan: Plan) -> None:
    print(
        f"\n### The history of a {PROBE_EVENTS}-event case against the store's size, in-process "
        f"({plan.read_seconds:g} s per kind, median of {plan.repeat}; times in ms)\n"
    )
    print("| backend | events in the store | cold p50 | cold p99 | kept p50 | kept p99 |")
    print("|---|---|---|---|---|---|")
    for backend, by_size in results.items():
        for events, r in by_size.items():
            m = {k: p50(v) for k, v in r.items()}
            print(
                f"| {backend} | {events:,} | {ms(m['cold p50'])} | {ms(m['cold p99'])} "
                f"| {ms(m['kept p50'])} | {ms(m['kept p99'])} |",
                flush=True,
            )


# -- 3. the HTTP API -------------------------------------------------------------------

CONSTANT_APP = '''\
"""A constant JSON endpoint under the uvicorn settings of `overleg serve`."""

import sys

import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.get("/constant")
def constant() -> dict[str, str]:
    return {"status": "ok", "service": "constant"}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False)
'''

# PostgreSQL: what a case not kept costs at the least, measured beside the service: the
# statement the service asks for it (the case's answer from its view at its last event), on an
# asynchronous pool of the event loop as large as the service's, and nothing else: no
# sign-in, no read log, no answer rendered (a case the statement does not find: 404).
FLOOR_APP = '''\
"""The statement of a case not kept, on the event loop's pool, and nothing else."""

import os
import sys
from contextlib import asynccontextmanager
from datetime import date
from uuid import UUID

import uvicorn
from fastapi import FastAPI, Response
from psycopg_pool import AsyncConnectionPool

from overleg.adapters.views import READERS
from overleg.projections.case_view import case_answer_at_head

POOL = AsyncConnectionPool(
    os.environ["FLOOR_CONNINFO"],
    min_size=1,
    max_size=READERS,
    open=False,
    kwargs={"autocommit": True, "options": os.environ["FLOOR_OPTIONS"]},
)
EVENTS = os.environ["FLOOR_EVENTS"]


@asynccontextmanager
async def lifespan(app):
    await POOL.open()
    await POOL.wait()
    yield
    await POOL.close()


app = FastAPI(lifespan=lifespan)


@app.get("/floor/{case_id}")
async def floor(case_id: UUID) -> Response:
    query = case_answer_at_head(case_id, EVENTS, date.today())
    async with POOL.connection() as conn:
        cursor = await conn.execute(query.statement.replace("?", "%s"), query.params)
        rows = await cursor.fetchall()
    return Response(b"{}", status_code=200 if rows else 404, media_type="application/json")


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False)
'''

# Both backends: what every read costs before it reads the case, measured beside the
# service: the service's own app, built and run as `overleg serve` builds and runs it, with
# one route more, matched first, that does what a read of a case does except reading and
# answering it: the caller signed in, the case id and `as_of` taken, access to reads
# checked, the read recorded in the read log (its commit waited for), a fixed answer.
AUDITED_APP = '''\
"""An audited read of nothing: the service's app, with one route that reads no case."""

import gc
import sys
from uuid import UUID

import uvicorn
from fastapi import Request, Response

from overleg.api.app import create_app
from overleg.api.deps import Caller, Svc
from overleg.api.routers.cases import AsOf
from overleg.policies import access

app = create_app()


@app.get("/floor/audited/{case_id}")
async def audited(
    case_id: UUID, request: Request, who: Caller, svc: Svc, as_of: AsOf = None
) -> Response:
    access.may_read_cases(who)
    ids = request.state.request_id, request.state.caller_request_id
    await svc.reads.recorded(who, [str(case_id)], "case", *ids)
    return Response(b"{}", media_type="application/json")


app.router.routes.insert(0, app.router.routes.pop())  # matched first, as the reads are

if __name__ == "__main__":
    gc.freeze()
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False)
'''

# The paths in turn, each wrk thread starting at a place of its own.
_IN_TURN = """\
local threads, n = 0, 0
function setup(thread)
  thread:set("slot", threads)
  threads = threads + 1
end
local function next_path()
  n = n + 1
  return ((n + (slot or 0) * 7) %% #paths) + 1
end
"""

ROUND_ROBIN_GET = (
    """\
local paths = {%(paths)s}
local headers = {["Authorization"] = "Bearer %(token)s"}
"""
    + _IN_TURN
    + """\
function request()
  return wrk.format("GET", paths[next_path()], headers)
end
"""
)

# Each request with a token of its own: a professional reads only the cases they take part
# in, and each case of the stream has professionals of its own.
ROUND_ROBIN_GET_AS = (
    """\
local paths = {%(paths)s}
local tokens = {%(tokens)s}
"""
    + _IN_TURN
    + """\
function request()
  local i = next_path()
  return wrk.format("GET", paths[i], {["Authorization"] = "Bearer " .. tokens[i]})
end
"""
)

# Each wrk thread reports bottlenecks on cases of its own, round-robin, with each case's
# version as the last answer gave it: with more cases per thread than connections, a case's
# previous answer has always arrived before it is picked again.
BOTTLENECK_POST = """\
local cases = {%(cases)s}
local body = '%(body)s'
local threads, n = 0, 0
local mine, versions = {}, {}
function setup(thread)
  thread:set("slot", threads)
  threads = threads + 1
end
function init(args)
  for k, c in ipairs(cases) do
    if (k - 1) %% %(threads)d == (slot or 0) then
      mine[#mine + 1] = c
      versions[c] = 3
    end
  end
end
function request()
  n = n %% #mine + 1
  local c = mine[n]
  local headers = {
    ["Authorization"] = "Bearer %(token)s",
    ["Content-Type"] = "application/json",
    ["If-Match"] = '"' .. versions[c] .. '"',
  }
  return wrk.format("POST", "/cases/" .. c .. "/bottlenecks", headers, body)
end
function response(status, headers, body)
  local c = body:match('"case_id"%%s*:%%s*"([%%x%%-]+)"')
  local v = body:match('"version"%%s*:%%s*(%%d+)')
  if c and v then versions[c] = tonumber(v) end
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())


def wait_until_current(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until the service answers /health with every projection caught up."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            said = log.read_text(errors="replace").splitlines()[-5:]
            raise SystemExit(
                f"overleg serve exited with status {process.returncode}:\n" + "\n".join(said)
            )
        try:
            health = get_json(f"{url}/health")
        except OSError:
            time.sleep(0.2)
            continue
        if all(p["behind"] == 0 for p in health["projections"].values()):
            return
        time.sleep(0.2)
    raise SystemExit("overleg serve: the projections did not catch up in 5 minutes")


def token(role: str, ref: str) -> str:
    done = subprocess.run(
        [OVERLEG, "token", "--role", role, "--ref", ref], capture_output=True, check=True
    )
    return done.stdout.decode().strip()


@dataclass
class Load:
    per_second: float
    p50: float
    p99: float
    errors: int
    seconds: float = 0.0  # how long wrk ran
    # CPU milliseconds a request, by process: the one answering, the worker, PostgreSQL
    cpu_ms: dict[str, float] = field(default_factory=dict)


UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def seconds_of(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)([a-z]+)", text).groups()  # type: ignore[union-attr]
    return float(number) * UNITS[unit]


def wrk(url: str, seconds: float, script: Path | None = None, header: str | None = None) -> Load:
    """One wrk run: requests per second, p50 and p99, and every failed request."""
    duration = max(1, round(seconds))  # wrk runs whole seconds
    command = [
        "wrk", f"-t{WRK_THREADS}", f"-c{CONNECTIONS}", f"-d{duration}s",
        "--timeout", "30s", "--latency",
    ]  # fmt: skip
    if script is not None:
        command += ["-s", str(script)]
    if header is not None:
        command += ["-H", header]
    text = subprocess.run([*command, url], capture_output=True, check=True, text=True).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    median = re.search(r"^\s+50%\s+(\S+)", text, re.MULTILINE)
    tail = re.search(r"^\s+99%\s+(\S+)", text, re.MULTILINE)
    if rate is None or median is None or tail is None:
        raise SystemExit(f"wrk said:\n{text}")
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if non_2xx:
        errors += int(non_2xx.group(1))
    sockets = re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if sockets:
        errors += sum(int(n) for n in sockets.groups())
    return Load(
        float(rate.group(1)),
        seconds_of(median.group(1)),
        seconds_of(tail.group(1)),
        errors,
        float(duration),
    )


# -- CPU a request -----------------------------------------------------------------------------


def cpu_seconds(pid: int, children: bool = False) -> float:
    """CPU time the process has used (user and system); with ``children``, also that of
    its children that ended (PostgreSQL's server: the backends of closed connections)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """The process's children, theirs, and so on (as far as /proc tells)."""
    found: list[int] = []
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return found
    for child in map(int, children):
        found += [child, *descendants(child)]
    return found


def postgres_server() -> int | None:
    """The pid of the PostgreSQL server the benchmark uses, when it runs on this machine
    and its data directory can be read (else its CPU is not told)."""
    try:
        with psycopg.connect(PG, connect_timeout=5) as conn:
            row = conn.execute("SHOW data_directory").fetchone()
        assert row is not None
        pid = int((Path(row[0]) / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, AssertionError, psycopg.Error):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def postgres_cpu(server: int) -> float:
    """CPU time of the whole server: its own, its live processes', and its ended ones'."""
    return cpu_seconds(server, children=True) + sum(map(cpu_seconds, descendants(server)))


def with_cpu(run: Callable[[], Load], processes: dict[str, int], server: int | None) -> Load:
    """``run()``, and the CPU milliseconds each process (and the PostgreSQL server, if
    known) spent per request while it ran."""
    before = {name: cpu_seconds(pid) for name, pid in processes.items()}
    pg_before = postgres_cpu(server) if server is not None else 0.0
    load = run()
    requests = load.per_second * load.seconds
    if requests <= 0:
        return load
    for name, pid in processes.items():
        load.cpu_ms[name] = 1000 * (cpu_seconds(pid) - before[name]) / requests
    if server is not None:
        load.cpu_ms["postgresql"] = 1000 * (postgres_cpu(server) - pg_before) / requests
    return load


@contextmanager
def started(
    command: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as sink:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=sink)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def lua_list(items: Sequence[str]) -> str:
    return ", ".join(f'"{item}"' for item in items)


def round_robin(workdir: Path, name: str, paths: list[str], bearer: str) -> Path:
    path = workdir / f"{name}.lua"
    path.write_text(ROUND_ROBIN_GET % {"paths": lua_list(paths), "token": bearer})
    return path


def readers_of(
    backend: str, url: str, schema: str | None, cases: Sequence[str]
) -> list[tuple[str, str]]:
    """The cases a professional takes part in, in the order given, each with one such
    professional (the first, by reference, of those the case view names its readers; the
    service must have caught the view up). A case of the stream may have none: a request
    declined, say."""
    query = "SELECT case_id, MIN(ref) FROM case_view_participant WHERE reader GROUP BY case_id"
    if backend == "sqlite":
        with closing(sqlite3.connect(sqlite_path(url))) as conn:
            rows = conn.execute(query).fetchall()
    else:
        with psycopg.connect(PG, autocommit=True, options=f"-c search_path={schema}") as conn:
            rows = conn.execute(query).fetchall()
    found = {str(case): ref for case, ref in rows}
    read = [(case, found[case]) for case in cases if case in found]
    if len(read) <= VIEWED_KEPT:
        raise SystemExit(f"a professional reads only {len(read)} cases: too few to read cold")
    return read


def professional_tokens(refs: Sequence[str]) -> list[str]:
    """A development token of the professional of each reference (signed in process with
    the run's key, as ``overleg token`` signs one)."""
    settings = read_settings()
    key = dev_private_key(settings.dev_key_file)
    made: dict[str, str] = {}
    for ref in refs:
        if ref not in made:
            made[ref] = issue_dev_token(
                key, role=StaffRole.PROFESSIONAL, ref=ref, audience=settings.jwt_audience
            )
    return [made[ref] for ref in refs]


def round_robin_as(workdir: Path, name: str, paths: list[str], tokens: list[str]) -> Path:
    path = workdir / f"{name}.lua"
    values = {"paths": lua_list(paths), "tokens": lua_list(tokens)}
    path.write_text(ROUND_ROBIN_GET_AS % values)
    return path


def bottleneck_scripts(workdir: Path, pools: list[list[str]], bearer: str) -> list[Path]:
    """One script per repeat, each on fresh cases (at version 3)."""
    body = json.dumps(bottleneck_data(), ensure_ascii=False, separators=(",", ":"))
    scripts = []
    for k, pool in enumerate(pools):
        path = workdir / f"post-bottleneck-{k}.lua"
        values = {"cases": lua_list(pool), "body": body, "token": bearer, "threads": WRK_THREADS}
        path.write_text(BOTTLENECK_POST % values, encoding="utf-8")
        scripts.append(path)
    return scripts


# The constant endpoint's run sent as the reads of cases in turn are.
CONSTANT_IN_TURN = "constant, sent in turn as the reads are"

# Pages of the case list read in turn (at offsets spread over the cases): more than the
# service keeps, so that each is read from the case view.
PAGES_IN_TURN = 100
assert PAGES_IN_TURN > PAGES_KEPT

# Cases read again and again: each read finds the case as the read before left it (the
# service keeps replayed cases for readers); every case of the stream, more than it keeps,
# read in turn, are replayed from the store.
KEPT_READS = 50


def scripted(service: str, script: Path, seconds: float, _repeat: int) -> Load:
    """A wrk run of ``script`` against the app at ``service`` (an endpoint's run, by its
    repeat)."""
    return wrk(service, seconds, script)


def api_runs(
    service: str,
    workdir: Path,
    read_ids: list[str],
    posts: list[list[str]],
    readers: list[tuple[str, str]],
) -> dict[str, Callable[[float, int], Load]]:
    """Each endpoint's wrk run, by name: (seconds, repeat number) -> load. The cases are
    read as the auditor, and those a professional takes part in as that professional
    (``readers``: case and professional, a token for each case)."""
    auditor, chair = token("auditor", "auditor-bench"), token("chair", CHAIR.ref)
    auth = f"Authorization: Bearer {auditor}"
    runs: dict[str, Callable[[float, int], Load]] = {}
    professionals = professional_tokens([ref for _case, ref in readers])
    for suffix in ("", "/history"):
        for ids in (read_ids, read_ids[:KEPT_READS]):
            name = f"GET /cases/{{id}}{suffix}, {len(ids):,} cases in turn"
            paths = [f"/cases/{c}{suffix}" for c in ids]
            script = round_robin(
                workdir, f"get{suffix.replace('/', '-')}-{len(ids)}", paths, auditor
            )
            runs[name] = partial(scripted, service, script)
        name = f"GET /cases/{{id}}{suffix} as a professional, {len(readers):,} cases in turn"
        paths = [f"/cases/{c}{suffix}" for c, _ref in readers]
        script = round_robin_as(
            workdir, f"get{suffix.replace('/', '-')}-professional", paths, professionals
        )
        runs[name] = partial(scripted, service, script)
    runs["GET /cases"] = lambda seconds, _k: wrk(f"{service}/cases", seconds, header=auth)
    # Pages of the list in turn, more than the service keeps: each is read from the view.
    step = max(1, len(read_ids) // PAGES_IN_TURN)
    pages = [f"/cases?offset={k * step}" for k in range(PAGES_IN_TURN)]
    script = round_robin(workdir, "list-pages", pages, auditor)
    runs[f"GET /cases, {len(pages)} pages in turn"] = partial(scripted, service, script)
    runs["GET /statistics/2015"] = lambda seconds, _k: wrk(
        f"{service}/statistics/2015", seconds, header=auth
    )
    bottlenecks = bottleneck_scripts(workdir, posts, chair)
    runs["POST /cases/{id}/bottlenecks"] = lambda seconds, k: wrk(service, seconds, bottlenecks[k])
    return runs


def bench_api(
    backend: str, workdir: Path, plan: Plan, constant: str, constant_pid: int
) -> dict[str, Any]:
    """Set up a store with the 2015 stream and fresh cases for the reports, start the service
    (and its worker on PostgreSQL), then per repeat: the constant endpoint and each of ours."""
    with fresh_store(backend, workdir) as (url, schema):
        path = workdir / "api-stream.jsonl"
        write_stream(path, plan.api_cases)
        with path.open(encoding="utf-8") as lines:
            read_ids = list(dict.fromkeys(json.loads(line)["case"] for line in lines))
        with path.open("a", encoding="utf-8") as out:
            start = datetime.now(UTC) - timedelta(hours=1)
            fresh = write_cases(out, plan.repeat * plan.post_cases, 3, start)
        import_cases(path, url)
        pools = [fresh[k * plan.post_cases : (k + 1) * plan.post_cases] for k in range(plan.repeat)]
        env = {**os.environ, "OVERLEG_DATABASE_URL": url}
        port = free_port()
        service = f"http://127.0.0.1:{port}"
        with ExitStack() as running:
            log = workdir / f"serve-{backend}.log"
            serve = running.enter_context(
                started([OVERLEG, "serve", "--port", str(port)], env, log)
            )
            others: dict[str, int] = {}  # the processes beside the one answering
            if backend == "postgresql":  # as in production: projections kept by the worker
                worker = started([OVERLEG, "worker"], env, workdir / "worker.log")
                others["worker"] = running.enter_context(worker).pid
            wait_until_current(service, serve, log)
            readers = readers_of(backend, url, schema, read_ids)
            # The constant endpoint sent as the cases in turn are (wrk's script, a token):
            # the baseline of those reads, whose requests cost the load generator more.
            alike = round_robin(
                workdir,
                "constant-in-turn",
                [f"/{constant.rsplit('/', 1)[1]}"] * len(read_ids),
                token("auditor", "auditor-bench"),
            )
            runs: dict[str, Callable[[float, int], Load]] = {
                "constant": lambda seconds, _k: wrk(constant, seconds),
                CONSTANT_IN_TURN: partial(scripted, constant.rsplit("/", 1)[0], alike),
                **api_runs(service, workdir, read_ids, pools, readers),
            }
            answering = {"constant": constant_pid, CONSTANT_IN_TURN: constant_pid}
            name = f"floor: an audited read of nothing, {len(read_ids):,} cases in turn"
            audited, answering[name] = running.enter_context(audited_app(workdir, env))
            paths = [f"/floor/audited/{c}" for c in read_ids]
            script = round_robin(workdir, "audited", paths, token("auditor", "auditor-bench"))
            runs[name] = partial(scripted, audited, script)
            server = None
            if backend == "postgresql":
                name = f"floor: the statement of GET /cases/{{id}}, {len(read_ids):,} cases in turn"
                floor, answering[name] = running.enter_context(floor_app(workdir, schema))
                script = round_robin(workdir, "floor", [f"/floor/{c}" for c in read_ids], "")
                runs[name] = partial(scripted, floor, script)
                server = postgres_server()
            loads: dict[str, list[Load]] = {name: [] for name in runs}
            for k in range(plan.repeat):
                for name, run in runs.items():
                    processes = {"answering": answering.get(name, serve.pid), **others}
                    load = with_cpu(partial(run, plan.seconds, k), processes, server)
                    loads[name].append(load)
                    print(f"<!-- {backend} {name} run {k + 1}: {load} -->", file=sys.stderr)
            peak = high_water_mib(serve.pid)
    return {"loads": loads, "peak": peak}


def print_api(results: dict[str, dict[str, Any]], plan: Plan, constant_peak: int) -> None:
    print(
        f"\n### The HTTP API under wrk ({CONNECTIONS} connections, {WRK_THREADS} threads, "
        f"{plan.seconds:g} s a run, median of {plan.repeat})\n"
    )
    print(
        "Beside the constant endpoint's share, the share of the constant endpoint sent as "
        "the endpoint is: reads of cases in turn against the constant sent in turn by the "
        "same script with a token, the others against the constant itself.\n"
    )
    print(
        "| backend | endpoint | requests/s | % of constant | % of constant sent alike "
        "| p50 ms | p99 ms | failed |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for backend, r in results.items():
        loads = r["loads"]
        for name, runs in loads.items():
            alike = loads[CONSTANT_IN_TURN if "in turn" in name else "constant"]
            shares = [
                p50([o.per_second / c.per_second for o, c in zip(runs, base, strict=True)])
                for base in (loads["constant"], alike)
            ]
            print(
                f"| {backend} | {name} | {p50([o.per_second for o in runs]):,.0f} "
                f"| {100 * shares[0]:.0f} % | {100 * shares[1]:.0f} % "
                f"| {ms(p50([o.p50 for o in runs]))} "
                f"| {ms(p50([o.p99 for o in runs]))} | {sum(o.errors for o in runs)} |",
                flush=True,
            )
    print(
        "\n#### CPU milliseconds a request (median of the runs): the process that answers "
        "(`overleg serve`, or the constant or floor app), `overleg worker`, the PostgreSQL "
        "server\n"
    )
    print("| backend | endpoint | answering | worker | PostgreSQL | in all |")
    print("|---|---|---|---|---|---|")
    for backend, r in results.items():
        for name, runs in r["loads"].items():
            spent = {part: cpu_ms_of(runs, part) for part in ("answering", "worker", "postgresql")}
            known = [v for v in spent.values() if v is not None]
            cells = " | ".join("–" if v is None else f"{v:.2f}" for v in spent.values())
            print(f"| {backend} | {name} | {cells} | {sum(known):.2f} |", flush=True)
    print("\n| backend | `overleg serve` peak MiB | constant app peak MiB |\n|---|---|---|")
    for backend, r in results.items():
        print(f"| {backend} | {r['peak']} | {constant_peak} |")


def cpu_ms_of(runs: Sequence[Load], part: str) -> float | None:
    """The median CPU milliseconds a request of one part, over the runs that told it."""
    told = [run.cpu_ms[part] for run in runs if part in run.cpu_ms]
    return p50(told) if told else None


@contextmanager
def floor_app(workdir: Path, schema: str | None) -> Iterator[tuple[str, int]]:
    """The floor of a case not kept on PostgreSQL (``FLOOR_APP``), started on the store of
    ``schema``; its address and its process."""
    app = workdir / "bench_floor_app.py"
    app.write_text(FLOOR_APP, encoding="utf-8")
    port = free_port()
    env = {
        **os.environ,
        "FLOOR_CONNINFO": PG,
        "FLOOR_OPTIONS": f"-c search_path={schema}",
        "FLOOR_EVENTS": events_table("postgresql", schema),
    }
    with started([sys.executable, str(app), str(port)], env, workdir / "floor.log") as process:
        answering(f"http://127.0.0.1:{port}/openapi.json", process, "the floor app")
        yield f"http://127.0.0.1:{port}", process.pid


@contextmanager
def audited_app(workdir: Path, env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """The audited read of nothing (``AUDITED_APP``), started on the service's store; its
    address and its process."""
    app = workdir / "bench_audited_app.py"
    app.write_text(AUDITED_APP, encoding="utf-8")
    port = free_port()
    log = workdir / "audited.log"
    with started([sys.executable, str(app), str(port)], env, log) as process:
        answering(f"http://127.0.0.1:{port}/health/live", process, "the audited app")
        yield f"http://127.0.0.1:{port}", process.pid


def answering(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    """Until ``url`` answers (at most a minute)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            get_json(url)
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{what} did not start") from None
            time.sleep(0.1)


def run_api(backends: Sequence[str], workdir: Path, plan: Plan) -> None:
    app = workdir / "bench_constant_app.py"
    app.write_text(CONSTANT_APP, encoding="utf-8")
    port = free_port()
    results: dict[str, dict[str, Any]] = {}
    command = [sys.executable, str(app), str(port)]
    with started(command, dict(os.environ), workdir / "constant.log") as constant:
        url = f"http://127.0.0.1:{port}/constant"
        answering(url, constant, "the constant app")
        for backend in backends:
            results[backend] = bench_api(backend, workdir, plan, url, constant.pid)
        constant_peak = high_water_mib(constant.pid)
    print_api(results, plan, constant_peak)


# -- main ------------------------------------------------------------------------------


def names(
    parser: argparse.ArgumentParser, given: str, allowed: Sequence[str], option: str
) -> list[str]:
    chosen = [n.strip() for n in given.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in allowed]
    if unknown or not chosen:
        parser.error(f"{option}: choose from {', '.join(allowed)} (not {given!r})")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: short runs, 1 repeat")
    parser.add_argument("--repeat", type=int, help="runs per figure, the median shown (3)")
    parser.add_argument("--seconds", type=float, help="seconds per load run (6; --quick 2)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=",".join(SECTIONS))
    parser.add_argument("--backends", default=",".join(BACKENDS), help="sqlite,postgresql")
    parser.add_argument(
        "--reader",
        choices=sorted(READERS),
        default="chair",
        help="who reads the cases in process (reads, flat): the chair, or a professional "
        "present at every meeting",
    )
    args = parser.parse_args()
    sections = names(parser, args.only, SECTIONS, "--only")
    backends = names(parser, args.backends, BACKENDS, "--backends")
    if "api" in sections and shutil.which("wrk") is None:
        print(
            "The api section needs wrk (https://github.com/wg/wrk): apt-get install -y wrk "
            "(Debian, Ubuntu), brew install wrk (macOS); or leave it out: "
            "--only commands,reads,flat",
            file=sys.stderr,
        )
        raise SystemExit(2)
    if "postgresql" in backends:
        try:
            psycopg.connect(PG, connect_timeout=5).close()
        except psycopg.Error as error:
            print(
                f"PostgreSQL at {PG} does not answer ({error}); --backends sqlite", file=sys.stderr
            )
            raise SystemExit(2) from None
    quick = args.quick
    plan = Plan(
        repeat=args.repeat or (1 if quick else 3),
        seconds=args.seconds or (2.0 if quick else 6.0),
        writer_cases=100 if quick else 400,
        api_cases=400 if quick else 1000,
        post_cases=100 if quick else 300,
        flat_cases=(0, 2_000) if quick else (0, 10_000, 30_000),
        reader=READERS[args.reader],
    )
    configure_logs("warning")
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        bench_environment(workdir)
        print(f"<!-- {' '.join(sys.argv)}; {plan} -->")
        if "commands" in sections:
            print_commands({b: bench_commands(b, workdir, plan) for b in backends}, plan)
        if "reads" in sections:
            print_reads({b: bench_reads(b, workdir, plan) for b in backends}, plan)
        if "flat" in sections:
            print_flat({b: bench_flat(b, workdir, plan) for b in backends}, plan)
        if "api" in sections:
            run_api(backends, workdir, plan)
    print(f"\n<!-- {time.perf_counter() - began:.0f} s in all -->")


if __name__ == "__main__":
    main()
