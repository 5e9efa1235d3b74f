"""Versioned migrations of the service's own tables.

The service keeps, beside the events, tables of its own: the read log, sealed releases, the
projections' positions and set-aside events (and the projections, which are rebuilt from the
events whenever their own version changes: ``projections/runner.py``). Each change to those
tables is a numbered migration, applied once, in order, in one transaction with the row that
records it in ``overleg_schema``. Every process runs the pending ones when it opens the store
(on PostgreSQL under the schema lock, so processes that start together apply each once), and
a process that finds the store at a version newer than it knows stops: a newer overleg has
changed tables this one would misread.

The event store's own tables (the events, and those written in the events' transactions:
their links, the command log, the cases' data keys) are created by the recorders
(``adapters/recorders.py``); a change to one of them is a migration here too.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from overleg.adapters.views import Tx, ViewStore
from overleg.i18n import _


class SchemaTooNew(Exception):
    """The store was migrated by a newer overleg than this one."""

    def __init__(self, found: int, known: int, what: str | None = None) -> None:
        super().__init__(
            _(
                "{what} at version {found}; this overleg knows versions up to {known}. A "
                "newer overleg has changed them: run that version (or restore a backup made "
                "before the upgrade), never an older one.",
                what=_("The store's tables are") if what is None else what,
                found=found,
                known=known,
            )
        )
        self.found, self.known = found, known


@dataclass(frozen=True)
class Migration:
    """One numbered change of the service's tables."""

    version: int
    description: str
    apply: Callable[[Tx], None]


def _service_records(tx: Tx) -> None:
    tx.execute(
        "CREATE TABLE IF NOT EXISTS case_read ("
        " case_id TEXT NOT NULL, reader TEXT NOT NULL, role TEXT NOT NULL,"
        " what TEXT NOT NULL, at TEXT NOT NULL, request_id TEXT NOT NULL)"
    )
    tx.execute("CREATE INDEX IF NOT EXISTS case_read_case ON case_read (case_id, at)")
    tx.execute(
        "CREATE TABLE IF NOT EXISTS stats_release ("
        " number INTEGER PRIMARY KEY, year INTEGER NOT NULL, programme TEXT,"
        " as_known_at TEXT NOT NULL, position BIGINT NOT NULL, sealed_at TEXT NOT NULL,"
        " figures TEXT NOT NULL, digest TEXT NOT NULL)"
    )
    tx.execute(
        "CREATE TABLE IF NOT EXISTS projection_position ("
        " name TEXT PRIMARY KEY, version INTEGER NOT NULL, position BIGINT NOT NULL)"
    )
    tx.execute(
        "CREATE TABLE IF NOT EXISTS projection_failure ("
        " projection TEXT NOT NULL, position BIGINT NOT NULL, case_id TEXT NOT NULL,"
        " seq INTEGER NOT NULL, event_type TEXT NOT NULL, error TEXT NOT NULL,"
        " at TEXT NOT NULL, PRIMARY KEY (projection, position))"
    )


def _caller_request_ids(tx: Tx) -> None:
    if "caller_request_id" not in columns(tx, "case_read"):  # stores from before 2026-11-26
        tx.execute("ALTER TABLE case_read ADD COLUMN caller_request_id TEXT")


_UUID_HEX = re.compile(r"[0-9a-fA-F]{32}")


def case_key(case_id: str) -> bytes:
    """How the read log (``read_case``) keys a case: its UUID's 16 bytes (any other id: its
    UTF-8 text). ``CASE_KEY_SQL`` says the same in PostgreSQL's SQL, for the rows moved."""
    digits = case_id.replace("-", "")
    if _UUID_HEX.fullmatch(digits):
        return bytes.fromhex(digits)
    return case_id.encode()


CASE_KEY_SQL = (
    "CASE WHEN replace({0}, '-', '') ~ '^[0-9a-fA-F]{{32}}$'"
    " THEN decode(replace({0}, '-', ''), 'hex') ELSE convert_to({0}, 'UTF8') END"
)


def _reads_by_request(tx: Tx) -> None:
    """The read log as one row per request (``read_request``) and one per case it read
    (``read_case``: the case's 16-byte key and the request's row, indexed by case), instead
    of a whole row per case read. Every read recorded so far is moved over, then
    ``case_read`` is dropped."""
    sqlite = tx.dialect == "sqlite"
    tx.execute(
        "CREATE TABLE read_request ("
        f" id {'INTEGER PRIMARY KEY' if sqlite else 'BIGSERIAL PRIMARY KEY'},"
        " reader TEXT NOT NULL, role TEXT NOT NULL, what TEXT NOT NULL, at TEXT NOT NULL,"
        " request_id TEXT NOT NULL, caller_request_id TEXT)"
    )
    tx.execute(
        f"CREATE TABLE read_case (case_id {'BLOB' if sqlite else 'BYTEA'} NOT NULL,"
        " request BIGINT NOT NULL)"
    )
    tx.execute("CREATE INDEX read_case_case ON read_case (case_id, request)")
    request = ("reader", "role", "what", "at", "request_id", "caller_request_id")
    tx.execute(
        f"INSERT INTO read_request ({', '.join(request)})"  # noqa: S608 - names only
        f" SELECT DISTINCT {', '.join(request)} FROM case_read ORDER BY at, request_id"
    )
    if sqlite:  # the key as ``records.case_key`` makes it, from SQL
        conn: sqlite3.Connection = getattr(tx, "conn")  # noqa: B009 - SQLite's own
        conn.create_function("overleg_case_key", 1, case_key, deterministic=True)
        key = "overleg_case_key(o.case_id)"
    else:
        key = CASE_KEY_SQL.format("o.case_id")
    # Equal on every column (a hash join); the caller's id may be NULL on both sides.
    same = " AND ".join(f"r.{c} = o.{c}" for c in request if c != "caller_request_id")
    same += (
        f" AND r.caller_request_id {'IS' if sqlite else 'IS NOT DISTINCT FROM'} o.caller_request_id"
    )
    tx.execute(
        f"INSERT INTO read_case (case_id, request) SELECT {key}, r.id"  # noqa: S608 - SQL of ours
        f" FROM case_read AS o JOIN read_request AS r ON {same}"
    )
    tx.execute("DROP TABLE case_read")


def read_set_digest(keys: Sequence[bytes]) -> bytes:
    """The digest that names a set of cases read together: over their keys (``case_key``),
    sorted, each with its length."""
    digest = hashlib.blake2b(digest_size=16)
    for key in sorted(set(keys)):
        digest.update(len(key).to_bytes(2, "big"))
        digest.update(key)
    return digest.digest()


# Requests moved to read sets per step of migration 4.
_MOVED_PER_STEP = 5_000


def _reads_by_set(tx: Tx) -> None:
    """The cases a request read as a *read set*, written once however many requests read
    the same set (a page of the case list read again and again): ``read_set`` (its digest,
    ``read_set_digest``), ``read_set_case`` (its cases, indexed by case) and
    ``read_request.read_set``, instead of a row per case per request (``read_case``). Every
    read recorded so far is moved over, then ``read_case`` is dropped."""
    sqlite = tx.dialect == "sqlite"
    blob, big = ("BLOB", "INTEGER") if sqlite else ("BYTEA", "BIGINT")
    tx.execute(
        f"CREATE TABLE read_set (id {'INTEGER PRIMARY KEY' if sqlite else 'BIGSERIAL PRIMARY KEY'},"
        f" digest {blob} NOT NULL UNIQUE)"
    )
    tx.execute(
        f"CREATE TABLE read_set_case (read_set {big} NOT NULL, case_id {blob} NOT NULL,"
        " PRIMARY KEY (read_set, case_id))"
    )
    tx.execute("CREATE INDEX read_set_case_case ON read_set_case (case_id, read_set)")
    tx.execute(f"ALTER TABLE read_request ADD COLUMN read_set {big}")
    sets: dict[bytes, int] = {}
    last = int(tx.fetchall("SELECT COALESCE(MAX(request), 0) FROM read_case")[0][0])
    for start in range(0, last, _MOVED_PER_STEP):
        read: dict[int, list[bytes]] = {}
        for request, case in tx.fetchall(
            "SELECT request, case_id FROM read_case WHERE request > ? AND request <= ?",
            (start, start + _MOVED_PER_STEP),
        ):
            read.setdefault(int(request), []).append(bytes(case))
        moved = [
            (write_read_set(tx, read_set_digest(keys), keys, sets), request)
            for request, keys in read.items()
        ]
        tx.executemany("UPDATE read_request SET read_set = ? WHERE id = ?", moved)
    tx.execute("CREATE INDEX read_request_set ON read_request (read_set)")
    tx.execute("DROP TABLE read_case")


def write_read_set(tx: Tx, digest: bytes, keys: Sequence[bytes], known: dict[bytes, int]) -> int:
    """The id of the read set of these case keys (``digest``, their ``read_set_digest``),
    written with its cases if it is new; ``known``: the ids of sets known to be stored, by
    digest (kept up to date)."""
    found = known.get(digest)
    if found is not None:
        return found
    made = tx.fetchall(
        "INSERT INTO read_set (digest) VALUES (?) ON CONFLICT (digest) DO NOTHING RETURNING id",
        (digest,),
    )
    if made:
        number = int(made[0][0])
        tx.executemany(
            "INSERT INTO read_set_case (read_set, case_id) VALUES (?, ?)",
            [(number, key) for key in sorted(set(keys))],
        )
    else:  # another writer stored it (and its cases) first
        number = int(tx.fetchall("SELECT id FROM read_set WHERE digest = ?", (digest,))[0][0])
    known[digest] = number
    return number


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "the read log, sealed releases, the projections' positions and set-aside events",
        _service_records,
    ),
    Migration(
        2,
        "the read log keeps the caller's own request id beside the service's",
        _caller_request_ids,
    ),
    Migration(
        3,
        "the read log keeps a row per request and a short row per case it read",
        _reads_by_request,
    ),
    Migration(
        4,
        "the read log keeps each set of cases read together once, and each request its set",
        _reads_by_set,
    ),
)
LATEST = MIGRATIONS[-1].version


def columns(tx: Tx, table: str) -> set[str]:
    """The columns of one table of the service."""
    if tx.dialect == "sqlite":
        return {str(row[1]) for row in tx.fetchall(f"PRAGMA table_info({table})")}
    rows = tx.fetchall(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_name = ? AND table_schema = current_schema()",
        (table,),
    )
    return {str(row[0]) for row in rows}


def migrate(views: ViewStore, known: tuple[Migration, ...] = MIGRATIONS) -> int:
    """Apply the pending migrations; the version the store is at now. ``SchemaTooNew`` when
    the store is ahead of ``known``. Once per view store: the read log, the releases and the
    projector all ask, and the first one to ask does it."""
    if views.schema_version is not None:
        return views.schema_version
    with views.transaction() as tx:
        tx.schema_changes()
        tx.execute(
            "CREATE TABLE IF NOT EXISTS overleg_schema ("
            " version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        found = int(tx.fetchall("SELECT COALESCE(MAX(version), 0) FROM overleg_schema")[0][0])
        latest = known[-1].version if known else 0
        if found > latest:
            raise SchemaTooNew(found, latest)
        for migration in known:
            if migration.version <= found:
                continue
            migration.apply(tx)
            tx.execute(
                "INSERT INTO overleg_schema (version, description, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.description, datetime.now(UTC).isoformat()),
            )
            found = migration.version
    views.schema_version = found
    return found


def applied(views: ViewStore) -> list[tuple[int, str, str]]:
    """The migrations the store has had: version, what it did, when."""
    rows = views.read(
        "SELECT version, description, applied_at FROM overleg_schema ORDER BY version"
    )
    return [(int(v), str(d), str(a)) for v, d, a in rows]
