"""Benchmark `overleg import`, `overleg export` and `overleg rebuild` against raw baselines,
on SQLite and PostgreSQL.

Each run is a real `overleg` process on a fresh store. Baselines, measured in the same run:
raw Python that only parses every line (json.loads) and bulk-inserts it as a row
(sqlite3 executemany / psycopg COPY, one transaction), i.e. the floor of any importer that
keeps every event. The rebuild's baseline (--rebuild) reads every stored event in order and
decodes its JSON (a server-side cursor on PostgreSQL), i.e. the floor of any projection that
reads the whole log. Beside each baseline, the least overleg's own contract asks, raw: an
import that seals every event's data with its case's key and chains it (sealed_baseline),
and the same import with every line first checked against the contract by overleg's own
parser (``validate``), a rebuild that opens every sealed personal part (read_and_open);
each as a share of the plain baseline, which bounds what overleg can reach. Reports
medians of --repeat runs and the overleg/baseline ratio; writes Markdown tables to
standard output.

    python scripts/bench_import.py --cases 10000 --repeat 3
    python scripts/bench_import.py --million   # the 1,000,000-line stream, once per backend
    python scripts/bench_import.py --rebuild --sizes 10000,30000,115000   # rebuild curve
    python scripts/bench_import.py --import-curve --sizes 29000,58000,115000   # import, verify
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psycopg import sql

from overleg.streams.contract import parse_line

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_sample_stream import stream  # noqa: E402

PG = os.environ.get("OVERLEG_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
OVERLEG = str(Path(sys.executable).parent / "overleg")


def write_stream(path: Path, cases: int, extra_per_case: int = 0) -> int:
    """A synthetic stream; ``extra_per_case`` bottleneck reports make cases long."""
    count = 0
    with path.open("w", encoding="utf-8") as out:
        last: dict[str, dict[str, object]] = {}
        for event in stream(cases, 2015, 2015):
            last[event["case"]] = event
            out.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n")
            count += 1
        for k in range(extra_per_case):
            for case, event in last.items():
                if event["type"] in ("CaseClosed", "RequestDeclined"):
                    continue
                seq = int(event["seq"]) + 1 + k  # type: ignore[call-overload]
                line = {
                    "case": case,
                    "seq": seq,
                    "type": "BottleneckReported",
                    "at": event["at"],
                    "by": "voorzitter-bench",
                    "data": {"theme": "wachtlijst", "description": f"melding {k}"},
                }
                out.write(json.dumps(line, separators=(",", ":")) + "\n")
                count += 1
    return count


def fresh_url(backend: str, workdir: Path) -> tuple[str, str | None]:
    if backend == "sqlite":
        return f"sqlite:///{workdir / f'{uuid.uuid4().hex}.db'}", None
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    return f"{PG}?schema={schema}", schema


def drop(schema: str | None) -> None:
    if schema:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _high_water_mib(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM: its own, not its parent's)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return 0


def run_overleg(args: list[str], url: str) -> tuple[float, int]:
    """Seconds and peak resident memory (MiB) of one overleg process.

    The peak is sampled from /proc while the process runs: rusage of a child started by
    a large parent would count the parent's memory copied at fork.
    """
    start = time.perf_counter()
    process = subprocess.Popen(
        [OVERLEG, *args],
        env={**os.environ, "OVERLEG_DATABASE_URL": url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak = 0
    while process.poll() is None:
        peak = max(peak, _high_water_mib(process.pid))
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    if process.returncode:
        raise SystemExit(f"overleg {args[0]} failed with status {process.returncode}")
    return seconds, peak


def baseline(backend: str, path: Path, workdir: Path) -> float:
    """Parse every line and bulk-insert it, raw."""
    start = time.perf_counter()
    rows = []
    with path.open("rb") as lines:
        for raw in lines:
            event = json.loads(raw)
            rows.append((event["case"], event["seq"], raw))
    if backend == "sqlite":
        lite = sqlite3.connect(workdir / f"raw-{uuid.uuid4().hex}.db")
        lite.execute("CREATE TABLE e (c TEXT, s INTEGER, b BLOB, PRIMARY KEY (c, s))")
        with lite:
            lite.executemany("INSERT INTO e VALUES (?,?,?)", rows)
        lite.close()
    else:
        with psycopg.connect(PG) as conn:
            conn.execute("CREATE TEMP TABLE e (c uuid, s int, b bytea, PRIMARY KEY (c, s))")
            with conn.cursor().copy("COPY e (c, s, b) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
    return time.perf_counter() - start


def _parsed(raw: bytes) -> tuple[str, int, str, str, str, bytes]:
    """A line's case, seq, type, instant, author and data (as JSON), parsed only."""
    event = json.loads(raw)
    data = json.dumps(event["data"]).encode()
    return event["case"], event["seq"], event["type"], event["at"], event["by"], data


def _validated(raw: bytes) -> tuple[str, int, str, str, str, bytes]:
    """The same, the line first checked against the contract by its own parser
    (``parse_line``: pydantic, as ``overleg import`` checks it), the data as it gives it."""
    line = parse_line(raw)
    data = line.data.model_dump_json().encode()
    return str(line.case), line.seq, line.type, line.at.isoformat(), line.by, data


def sealed_baseline(backend: str, path: Path, workdir: Path, validate: bool = False) -> float:
    """The least an import must do that keeps events sealed and chained, raw: parse every
    line, give each new case a data key wrapped under a master key, seal the line's data
    with its case's key (AES-GCM, bound to case and seq), hash the case's chain (SHA-256
    over the previous link and the stored bytes, plus a digest of the content) and
    bulk-insert events, links and keys in one transaction. No rules, no domain objects.
    ``validate``: each line also checked against the contract (``_validated``)."""
    start = time.perf_counter()
    master = AESGCM(AESGCM.generate_key(bit_length=256))
    ciphers: dict[str, AESGCM] = {}
    links: dict[str, bytes] = {}
    events, chain, keys = [], [], []
    parse = _validated if validate else _parsed
    with path.open("rb") as lines:
        for raw in lines:
            case, seq, kind, at, by, data = parse(raw)
            cipher = ciphers.get(case)
            if cipher is None:
                data_key = AESGCM.generate_key(bit_length=256)
                nonce = os.urandom(12)
                keys.append((case, nonce + master.encrypt(nonce, data_key, case.encode())))
                cipher = ciphers[case] = AESGCM(data_key)
            nonce = os.urandom(12)
            sealed = nonce + cipher.encrypt(nonce, data, f"{case}/{seq}".encode())
            state = json.dumps(
                {"at": at, "by": by, "personal": "sealed:1:" + base64.b64encode(sealed).decode()}
            ).encode()
            digest = hashlib.sha256(links.get(case, bytes(32)))
            digest.update(f"{case}/{seq}/{kind}".encode())
            digest.update(state)
            links[case] = digest.digest()
            content = hashlib.sha256(kind.encode() + b"\x00" + state).digest()
            events.append((case, seq, kind, state))
            chain.append((case, seq, links[case], content))
    if backend == "sqlite":
        lite = sqlite3.connect(workdir / f"raw-{uuid.uuid4().hex}.db")
        lite.execute("CREATE TABLE e (c TEXT, s INTEGER, t TEXT, b BLOB, PRIMARY KEY (c, s))")
        lite.execute("CREATE TABLE l (c TEXT, s INTEGER, h BLOB, d BLOB, PRIMARY KEY (c, s))")
        lite.execute("CREATE TABLE k (c TEXT PRIMARY KEY, w BLOB)")
        with lite:
            lite.executemany("INSERT INTO e VALUES (?,?,?,?)", events)
            lite.executemany("INSERT INTO l VALUES (?,?,?,?)", chain)
            lite.executemany("INSERT INTO k VALUES (?,?)", keys)
        lite.close()
    else:
        with psycopg.connect(PG) as conn:
            for table in (
                "e (c uuid, s int, t text, b bytea, PRIMARY KEY (c, s))",
                "l (c uuid, s int, h bytea, d bytea, PRIMARY KEY (c, s))",
                "k (c uuid PRIMARY KEY, w bytea)",
            ):
                conn.execute(f"CREATE TEMP TABLE {table}")
            cursor = conn.cursor()
            for table, rows in (("e (c, s, t, b)", events), ("l (c, s, h, d)", chain)):
                with cursor.copy(f"COPY {table} FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            with cursor.copy("COPY k (c, w) FROM STDIN") as copy:
                for key_row in keys:
                    copy.write_row(key_row)
    return time.perf_counter() - start


def read_and_decode(backend: str, url: str, schema: str | None) -> tuple[float, int]:
    """Read every stored event in notification order and decode its JSON, raw."""
    start = time.perf_counter()
    count = 0
    if backend == "sqlite":
        lite = sqlite3.connect(url.removeprefix("sqlite:///"))
        rows = lite.execute(
            "SELECT rowid, originator_id, originator_version, topic, state"
            " FROM stored_events ORDER BY rowid"
        )
        for row in rows:
            json.loads(row[4])
            count += 1
        lite.close()
    else:
        with psycopg.connect(PG) as conn, conn.cursor("everything") as cursor:
            cursor.itersize = 5000
            cursor.execute(
                sql.SQL(
                    "SELECT notification_id, originator_id, originator_version, topic, state"
                    " FROM {}.overleg_events ORDER BY notification_id"
                ).format(sql.Identifier(schema or "public"))
            )
            for row in cursor:
                json.loads(row[4])
                count += 1
    return time.perf_counter() - start, count


def read_and_open(url: str) -> tuple[float, int]:
    """The least a rebuild of the case view and the audit trail must do, which both show
    personal data: read every stored event in case order (as a rebuild reads), decode its
    JSON and open its sealed personal part with its case's data key (fetched once per
    batch). No domain objects, no rules, no fold, no writes."""
    # Imported here: the other measurements need no overleg in this process.
    from overleg.adapters.rows import case_key
    from overleg.adapters.sealing import is_sealed
    from overleg.aggregates.case import EVENT_TOPICS
    from overleg.bootstrap import bootstrap
    from overleg.logs import configure
    from overleg.settings import Settings

    configure("error")  # its lines to standard error, and only errors: not in the tables
    services = bootstrap(Settings(database_url=url))
    try:
        log = services.app.event_log
        recorder: Any = log.recorder
        through = log.head()
        start = time.perf_counter()
        after, count = None, 0
        while True:
            stored = list(recorder.select_by_case(after, through, 5000, EVENT_TOPICS))
            if not stored:
                break
            if len(stored) == 5000:  # whole cases only: the last one is read again next time
                last = stored[-1].originator_id
                stored = [n for n in stored if n.originator_id != last] or stored
            with log.keyring.reading(case_key(n.originator_id) for n in stored):
                for n in stored:
                    personal = json.loads(n.state).get("personal")
                    if is_sealed(personal):
                        log.keyring.open(case_key(n.originator_id), n.originator_version, personal)
                    count += 1
            after = stored[-1].originator_id
        return time.perf_counter() - start, count
    finally:
        services.close()


def measure_rebuild(backend: str, path: Path, workdir: Path, repeat: int) -> dict[str, float]:
    """Import once, then rebuild every projection, read-and-decode and read-decode-and-open,
    interleaved."""
    rebuilds, raws, floors, peaks = [], [], [], []
    url, schema = fresh_url(backend, workdir)
    try:
        run_overleg(["import", str(path), "--quiet"], url)
        for _ in range(repeat):
            seconds, peak = run_overleg(["rebuild"], url)
            rebuilds.append(seconds)
            peaks.append(peak)
            seconds, events = read_and_decode(backend, url, schema)
            raws.append(seconds)
            seconds, opened = read_and_open(url)
            if opened != events:
                raise SystemExit(f"read {events:,} events but opened {opened:,}")
            floors.append(seconds)
    finally:
        drop(schema)
    return {
        "rebuild": statistics.median(rebuilds),
        "raw": statistics.median(raws),
        "floor": statistics.median(floors),
        "peak": max(peaks),
        "events": events,
    }


def print_rebuilds(path: Path, workdir: Path, sizes: list[int], repeat: int) -> None:
    print(
        "\n| backend | cases | events | overleg rebuild s | raw read+decode s "
        "| rebuild rate, % of raw | events/s | rebuild peak MiB "
        "| raw read+decode+open s | that, % of raw |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for cases in sizes:
        write_stream(path, cases)
        for backend in ("sqlite", "postgresql"):
            r = measure_rebuild(backend, path, workdir, repeat)
            print(
                f"| {backend} | {cases:,} | {int(r['events']):,} | {r['rebuild']:.1f} "
                f"| {r['raw']:.2f} | {100 * r['raw'] / r['rebuild']:.0f} % "
                f"| {r['events'] / r['rebuild']:,.0f} | {r['peak']} "
                f"| {r['floor']:.2f} | {100 * r['raw'] / r['floor']:.0f} % |",
                flush=True,
            )


def print_import_curve(path: Path, workdir: Path, sizes: list[int]) -> None:
    """Import time and peak memory against the stream's size, once per size and backend,
    then `overleg verify` of the store imported (the export is left out: its memory is
    measured by the default run)."""
    print(
        "\n| backend | cases | lines | overleg import s | raw parse+insert s | ratio "
        "| import lines/s | import peak MiB | verify s | verify peak MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for cases in sizes:
        lines = write_stream(path, cases)
        for backend in ("sqlite", "postgresql"):
            url, schema = fresh_url(backend, workdir)
            try:
                seconds, peak = run_overleg(["import", str(path), "--quiet"], url)
                checked, checked_peak = run_overleg(["verify"], url)
            finally:
                drop(schema)
            raw = baseline(backend, path, workdir)
            print(
                f"| {backend} | {cases:,} | {lines:,} | {seconds:.1f} | {raw:.2f} "
                f"| {seconds / raw:.0f}x | {lines / seconds:,.0f} | {peak} "
                f"| {checked:.1f} | {checked_peak} |",
                flush=True,
            )


def measure(backend: str, path: Path, workdir: Path, repeat: int) -> dict[str, float]:
    imports, exports, raws, sealeds, peaks, export_peaks = [], [], [], [], [], []
    checkeds: list[float] = []
    for _ in range(repeat):
        url, schema = fresh_url(backend, workdir)
        try:
            seconds, peak = run_overleg(["import", str(path), "--quiet"], url)
            imports.append(seconds)
            peaks.append(peak)
            seconds, export_peak = run_overleg(["export", str(workdir / "out.jsonl")], url)
            exports.append(seconds)
            export_peaks.append(export_peak)
        finally:
            drop(schema)
        raws.append(baseline(backend, path, workdir))
        sealeds.append(sealed_baseline(backend, path, workdir))
        checkeds.append(sealed_baseline(backend, path, workdir, validate=True))
    return {
        "import": statistics.median(imports),
        "export": statistics.median(exports),
        "raw": statistics.median(raws),
        "sealed": statistics.median(sealeds),
        "checked": statistics.median(checkeds),
        "peak": max(peaks),
        "export_peak": max(export_peaks),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--million",
        action="store_true",
        help="also import a 1,000,000-line stream once per backend",
    )
    parser.add_argument(
        "--long-cases",
        action="store_true",
        help="memory with 1,000 cases of growing length (bounded by cases)",
    )
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="only the projection rebuild against reading and decoding the log",
    )
    parser.add_argument(
        "--sizes",
        default="",
        help="with --rebuild or --import-curve: case counts, comma-separated (default --cases)",
    )
    parser.add_argument(
        "--import-curve",
        action="store_true",
        help="only import time and memory against the stream's size (--sizes)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        path = workdir / "stream.jsonl"
        sizes = [int(n) for n in args.sizes.split(",") if n] or [args.cases]
        if args.rebuild:
            print_rebuilds(path, workdir, sizes, args.repeat)
            return
        if args.import_curve:
            print_import_curve(path, workdir, sizes)
            return
        lines = write_stream(path, args.cases)
        print(
            "| backend | lines | overleg import s | raw parse+insert s | ratio "
            "| import lines/s | export s | import peak MiB | export peak MiB "
            "| raw sealed+chained s | that, % of raw | the same, validated s | that, % of raw |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for backend in ("sqlite", "postgresql"):
            r = measure(backend, path, workdir, args.repeat)
            print(
                f"| {backend} | {lines:,} | {r['import']:.1f} | {r['raw']:.2f} "
                f"| {r['import'] / r['raw']:.0f}x | {lines / r['import']:,.0f} "
                f"| {r['export']:.1f} | {r['peak']} | {r['export_peak']} "
                f"| {r['sealed']:.2f} | {100 * r['raw'] / r['sealed']:.0f} % "
                f"| {r['checked']:.2f} | {100 * r['raw'] / r['checked']:.0f} % |",
                flush=True,
            )
        if args.long_cases:
            print("\n| backend | cases | lines | import s | peak MiB |\n|---|---|---|---|---|")
            for extra in (0, 100, 1000):
                lines = write_stream(path, 1000, extra)
                for backend in ("sqlite", "postgresql"):
                    r = measure(backend, path, workdir, 1)
                    print(
                        f"| {backend} | 1,000 | {lines:,} | {r['import']:.1f} | {r['peak']} |",
                        flush=True,
                    )
        if args.million:
            lines = write_stream(path, 115_000)
            print(f"\n1,000,000-line run ({lines:,} lines, 115,000 cases), once per backend:\n")
            print(
                "| backend | import s | raw s | ratio | peak MiB | raw sealed+chained s "
                "| that, % of raw |\n|---|---|---|---|---|---|---|"
            )
            for backend in ("sqlite", "postgresql"):
                r = measure(backend, path, workdir, 1)
                print(
                    f"| {backend} | {r['import']:.0f} | {r['raw']:.1f} "
                    f"| {r['import'] / r['raw']:.0f}x | {r['peak']} "
                    f"| {r['sealed']:.1f} | {100 * r['raw'] / r['sealed']:.0f} % |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
