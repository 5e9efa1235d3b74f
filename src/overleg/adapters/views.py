"""The tables of projections and service records, in the event store's database.

Projections live beside the events (the same SQLite file, or the same PostgreSQL schema) in
tables of their own. SQL is written once with ``?`` placeholders and portable types; the
PostgreSQL connection turns the placeholders into psycopg's.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from overleg.adapters import budget, turns
from overleg.adapters.commits import committed
from overleg.adapters.eventstore import Database, StoreUnavailable, translating
from overleg.adapters.recorders import SCHEMA_LOCK
from overleg.i18n import _

Row = tuple[Any, ...]
# One query's rows: (statement, params) -> rows.
Fetch = Callable[[str, Sequence[Any]], list[Row]]
T = TypeVar("T")
U = TypeVar("U")
# Connections a process reads the projections on, at most (PostgreSQL), on its threads; and
# as many again for its event loop (``ask_on_loop``).
READERS = 4
# How long a read on the event loop waits for one of its connections before it is left to
# a thread instead (seconds).
LOOP_WAIT = 0.05


@dataclass(frozen=True)
class OneQuery(Generic[T]):
    """One statement (``?`` placeholders) and what its rows say, asked alone: one round
    trip, one snapshot (``ViewStore.ask``, ``ViewStore.ask_on_loop``)."""

    statement: str
    params: tuple[Any, ...]
    read: Callable[[list[Row]], T]

    def then(self, after: Callable[[T], U]) -> OneQuery[U]:
        """The same statement, its answer then given to ``after``."""
        read = self.read
        return OneQuery(self.statement, self.params, lambda rows: after(read(rows)))


APPLICATION_NAME = "overleg-projections"  # how these connections show in pg_stat_activity


class Tx(Protocol):
    """One open transaction on the projections' tables."""

    dialect: str

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None: ...
    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None: ...
    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Add these rows to a table (plain rows: no conflict handling). On PostgreSQL
        they are copied in one stream rather than sent as one statement each."""
        ...

    def fetchall(self, statement: str, params: Sequence[Any] = ()) -> list[Row]: ...
    def savepoint(self) -> AbstractContextManager[None]:
        """A part of the transaction that is undone alone when its block raises."""
        ...

    def schema_changes(self) -> None:
        """Take the schema lock for the rest of the transaction (PostgreSQL): processes
        that start at once create their tables one after the other."""
        ...


class _SQLiteTx:
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(statement, tuple(params))

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.conn.executemany(statement, rows)

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)})"  # noqa: S608 - names only
                f" VALUES ({', '.join('?' * len(columns))})",
                rows,
            )

    def fetchall(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(self.conn.execute(statement, tuple(params)).fetchall())

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        self.conn.execute("SAVEPOINT part")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK TO part")
            self.conn.execute("RELEASE part")
            raise
        self.conn.execute("RELEASE part")

    def schema_changes(self) -> None:
        return None  # the transaction holds SQLite's write lock already


# The most rows ``ViewStore.append`` sends as one statement on PostgreSQL; more are copied
# in a transaction. Measured (7 text columns): one row 0.39 ms against 0.58 in a
# transaction, 8 rows 0.64 against 0.71, 16 alike; 50 rows copied 0.97 ms, one statement 1.78.
APPEND_AT_ONCE = 8


class _PostgresTx:
    dialect = "postgresql"

    def __init__(self, conn: psycopg.Connection[Row]) -> None:
        self.conn = conn

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(_pg(statement), _text_safe(params))

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self.conn.cursor() as cursor:
                cursor.executemany(_pg(statement), [_text_safe(row) for row in rows])

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        with (
            self.conn.cursor() as cursor,
            cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(_text_safe(row))

    def fetchall(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        return self.conn.execute(_pg(statement), tuple(params)).fetchall()

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        with self.conn.transaction():  # nested: a savepoint
            yield

    def schema_changes(self) -> None:
        self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))


def _pg(statement: str) -> str:
    return statement.replace("?", "%s")


def _text_safe(params: Sequence[Any]) -> tuple[Any, ...]:
    # PostgreSQL text cannot hold U+0000. Input refuses it, but a projection must never
    # stall on an event, so any that reached the store is shown as U+FFFD.
    return tuple(
        p.replace("\x00", "\ufffd") if isinstance(p, str) and "\x00" in p else p for p in params
    )


class TablesMissing(LookupError):
    """A projection's tables are not made yet in this store as this code reads them: no
    projector has run on it, or only one of an earlier version (on PostgreSQL, the worker
    that keeps them has not started yet, or not been upgraded yet). Every read of the
    projections on PostgreSQL raises it for a table or column it does not find (``read``,
    ``read_together``, ``read_alone``, ``ask``); the API answers it 503 ``not-ready``."""


class ViewStore:
    """A connection to the projections' tables of one event store."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.dialect = database.backend
        self._sqlite: sqlite3.Connection | None = None
        self._pg: psycopg.Connection[Row] | None = None
        # One connection, shared by the threads of this process one at a time (and on
        # PostgreSQL, a pool of connections for reads).
        self._lock = threading.Lock()
        self._readers: ConnectionPool[psycopg.Connection[Row]] | None = None
        self._readers_lock = threading.Lock()
        # PostgreSQL: the event loop's own pool of read connections (``ask_on_loop``), with
        # the loop it was made on.
        self._loop_readers: (
            tuple[asyncio.AbstractEventLoop, AsyncConnectionPool[psycopg.AsyncConnection[Row]]]
            | None
        ) = None
        self._closed = False
        # SQLite: a connection that only reads, for the event loop (``ask_now``).
        self._now_sqlite: sqlite3.Connection | None = None
        self._now_lock = threading.Lock()
        # The version of the service's tables once this connection migrated them
        # (adapters/migrations.py): every later user of this store skips the look.
        self.schema_version: int | None = None
        if database.backend == "sqlite":
            path = database.sqlite_path
            if path != ":memory:":
                Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
            self._sqlite = self._sqlite_connection()
            self._sqlite.execute("PRAGMA journal_mode=WAL")
            # What is deleted or replaced is overwritten, not left in free pages: an erased
            # case's rows leave no copy behind (see ``compact``).
            self._sqlite.execute("PRAGMA secure_delete=ON")
        else:
            with translating():
                database.ensure_schema()
                self._pg = self._connect()

    def _options(self) -> str:
        # Waiting for a lock is bounded like every wait for the store.
        options = f"-c lock_timeout={round(self.database.timeout * 1000)}"
        if self.database.schema:
            options += f" -c search_path={self.database.schema}"
        return options

    def _connect(self) -> psycopg.Connection[Row]:
        return psycopg.connect(
            self.database.conninfo(), options=self._options(), application_name=APPLICATION_NAME
        )

    def _pool_options(self, name: str) -> dict[str, Any]:
        """A pool of read connections (PostgreSQL), made closed: opened by its user."""
        return {
            "conninfo": self.database.conninfo(),
            "kwargs": {
                "options": self._options(),
                "application_name": APPLICATION_NAME,
                # A statement read alone is committed as it returns (``read_alone``, ``ask``).
                "autocommit": True,
            },
            "min_size": 1,
            "max_size": READERS,
            "timeout": self.database.timeout,
            "name": name,
            "open": False,
        }

    def _reader_pool(self) -> ConnectionPool[psycopg.Connection[Row]]:
        """PostgreSQL's connections for reads (opened at the first read): readers of this
        process read side by side, and never wait for the projections' writes."""
        with self._readers_lock:
            if self._readers is None:
                self._readers = ConnectionPool(**self._pool_options("overleg-view-readers"))
                self._readers.open()
            return self._readers

    def _postgres(self) -> psycopg.Connection[Row]:
        """The connection, opened again when the server dropped it (a restart, say)."""
        assert self._pg is not None
        if self._pg.closed or self._pg.broken:
            self._pg.close()
            self._pg = self._connect()
        return self._pg

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """One transaction: committed when the block ends, rolled back when it raises.

        On SQLite it holds the database's write lock from its start, so two processes
        catching up never interleave; on PostgreSQL the tracking rows are locked instead.
        A store that cannot be reached raises ``StoreUnavailable``.
        """
        with translating(), self._turn():
            if self._sqlite is not None:
                conn = self._sqlite
                wait = budget.remaining(self.database.timeout)
                with turns.writing(self.database.sqlite_path, wait):
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        yield _SQLiteTx(conn)
                    except BaseException:
                        conn.execute("ROLLBACK")
                        raise
                    conn.execute("COMMIT")
                return
            pg = self._postgres()
            with committed(pg):  # never ends as if committed when it was not
                yield _PostgresTx(pg)

    def append(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert these rows together: all committed when it returns, none when it raises.
        On PostgreSQL a group of up to ``APPEND_AT_ONCE`` rows is one statement, committed
        on its own (one round trip, not the three of a transaction); a larger one is copied
        in a transaction."""
        if not rows:
            return
        if self._sqlite is not None or len(rows) > APPEND_AT_ONCE:
            with self.transaction() as tx:
                tx.insert(table, columns, rows)
            return
        row = sql.SQL("({})").format(sql.SQL(", ").join([sql.Placeholder()] * len(columns)))
        statement = sql.SQL("INSERT INTO {} ({}) VALUES {}").format(
            sql.Identifier(table),
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join([row] * len(rows)),
        )
        self.alone(statement, [value for each in rows for value in each])

    def alone(self, statement: str | sql.Composable, params: Sequence[Any]) -> None:
        """PostgreSQL: one statement, committed on its own when it returns (one round trip,
        not the three of a transaction; atomic as any statement is). A list among the
        params is sent as an array."""
        assert self._sqlite is None, "one statement alone is PostgreSQL's"
        values = [
            list(_text_safe(value)) if isinstance(value, list) else _text_safe((value,))[0]
            for value in params
        ]
        with translating(), self._turn():
            pg = self._postgres()
            pg.autocommit = True  # one statement: atomic, and committed when it returns
            try:
                pg.execute(statement, values)  # type: ignore[arg-type]
            finally:
                if not pg.broken and not pg.closed:
                    pg.autocommit = False

    def read(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        """The rows of one query, outside any write transaction (on PostgreSQL asked alone:
        one round trip)."""
        if self._sqlite is None:
            with translating():
                return self._read_postgres(lambda fetch: fetch(statement, params), together=False)
        with translating(), self._turn():
            return list(self._sqlite.execute(statement, tuple(params)).fetchall())

    def read_together(self, work: Callable[[Fetch], T]) -> T:
        """``work(fetch)``, whose queries (``fetch(statement, params)``) are answered in one
        transaction: they see the projections at one moment, and cost one round trip each
        rather than three."""
        with translating():
            if self._sqlite is None:
                return self._read_postgres(work)
            with self._turn():
                return self._read_sqlite(work, self._sqlite)

    def read_alone(self, work: Callable[[Fetch], T]) -> T:
        """``work(fetch)``, whose queries are each answered alone, outside a transaction: on
        PostgreSQL one round trip each (not the three of ``read_together``), each query
        seeing the projections at its own moment, so that ``work`` that needs one moment
        asks one query. On SQLite, as ``read_together``."""
        if self._sqlite is not None:
            return self.read_together(work)
        with translating():
            return self._read_postgres(work, together=False)

    def ask(self, query: OneQuery[T]) -> T:
        """What ``query`` says, its statement asked alone (``read_alone``; on SQLite as
        ``read``: one statement reads in a transaction of its own, one snapshot)."""
        if self._sqlite is not None:
            return query.read(self.read(query.statement, query.params))
        return self.read_alone(lambda fetch: query.read(fetch(query.statement, query.params)))

    def ask_now(self, query: OneQuery[T]) -> tuple[T] | None:
        """SQLite, for the event loop: what ``query`` says (in a 1-tuple), its statement
        asked alone on a connection of its own that only reads, when that is free this
        instant: it never waits, neither for another thread's turn nor for the writes on the
        shared connection (the read log's, say). One statement reads in a transaction of its
        own (one snapshot): no ``BEGIN`` and ``COMMIT`` around it, each of which would give
        the interpreter up to the process's other threads as a statement does. ``None`` on
        PostgreSQL (its reads go over the network), for a database in memory (another
        connection would see another one), or when that connection is busy."""
        path = self.database.sqlite_path
        if self._sqlite is None or path == ":memory:" or "mode=memory" in path:
            return None
        if not self._now_lock.acquire(blocking=False):
            return None
        try:
            if self._now_sqlite is None:
                self._now_sqlite = self._sqlite_connection()
                self._now_sqlite.execute("PRAGMA query_only=ON")
            with translating():
                rows = self._now_sqlite.execute(query.statement, query.params).fetchall()
            return (query.read(list(rows)),)
        finally:
            self._now_lock.release()

    async def ask_on_loop(self, query: OneQuery[T]) -> tuple[T] | None:
        """PostgreSQL, for the event loop: what ``query`` says (in a 1-tuple), its statement
        asked alone on a connection of the loop's own pool, without a thread and without
        blocking the loop. ``None`` where it cannot be asked so (SQLite; another loop than
        the one the pool was made on; the loop's connections busy past a moment or not
        reachable; any error of the server, a table not made yet included): ask it on a
        thread (``ask``), which waits, tries again and reports as every read does."""
        pool = None if self._sqlite is not None else await self._loop_pool()
        if pool is None:
            return None
        try:
            async with pool.connection(timeout=LOOP_WAIT) as pg:
                cursor = await pg.execute(_pg(query.statement), _text_safe(query.params))
                rows: list[Row] = await cursor.fetchall()
        except psycopg.Error:  # the pool's own errors too: the thread asks, and reports
            return None
        return (query.read(rows),)

    async def open_on_loop(self) -> None:
        """PostgreSQL: make the running loop's pool of read connections (``ask_on_loop``) and
        wait, no longer than a request waits for the store, for its first connection (the
        service's lifespan, so that its first reads need not wait for one)."""
        if self._sqlite is not None:
            return
        pool = await self._loop_pool()
        if pool is not None:
            with suppress(PoolTimeout):  # it goes on trying; meanwhile threads ask
                await pool.wait(timeout=self.database.timeout)

    async def _loop_pool(self) -> AsyncConnectionPool[psycopg.AsyncConnection[Row]] | None:
        """The running loop's pool of read connections, made and opened (without waiting for
        a connection) at its first use; ``None`` on any other loop."""
        loop = asyncio.get_running_loop()
        if self._closed:
            return None
        if self._loop_readers is None:
            pool: AsyncConnectionPool[psycopg.AsyncConnection[Row]] = AsyncConnectionPool(
                **self._pool_options("overleg-view-loop-readers")
            )
            self._loop_readers = (loop, pool)
            await pool.open()
        made_on, pool = self._loop_readers
        return pool if made_on is loop else None

    async def close_on_loop(self) -> None:
        """Close the event loop's pool of read connections, on that loop (the service's
        lifespan, before ``close``)."""
        found, self._loop_readers = self._loop_readers, None
        if found is not None and found[0] is asyncio.get_running_loop():
            await found[1].close()

    def _sqlite_connection(self) -> sqlite3.Connection:
        # Autocommit mode: transactions are opened explicitly (BEGIN IMMEDIATE).
        return sqlite3.connect(
            self.database.sqlite_path,
            timeout=self.database.timeout,
            isolation_level=None,
            check_same_thread=False,
        )

    def _read_sqlite(self, work: Callable[[Fetch], T], conn: sqlite3.Connection) -> T:
        """``work(fetch)`` in one read transaction on ``conn`` (its turn held)."""

        def fetch_sqlite(statement: str, params: Sequence[Any] = ()) -> list[Row]:
            return list(conn.execute(statement, tuple(params)).fetchall())

        with translating():
            conn.execute("BEGIN")
            try:
                return work(fetch_sqlite)
            finally:
                conn.execute("COMMIT")  # it only read

    def _read_postgres(self, work: Callable[[Fetch], T], *, together: bool = True) -> T:
        pool = self._reader_pool()
        for attempt in (1, 2):
            try:
                with pool.connection() as pg, pg.transaction() if together else nullcontext():

                    def fetch(
                        statement: str, params: Sequence[Any] = (), pg: Any = pg
                    ) -> list[Row]:
                        rows: list[Row] = pg.execute(_pg(statement), tuple(params)).fetchall()
                        return rows

                    return work(fetch)
            except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as missing:
                raise TablesMissing(str(missing)) from None
            except PoolTimeout:
                raise StoreUnavailable(
                    _("the projections' connections are busy or cannot be reached")
                ) from None
            except psycopg.OperationalError:
                # A dropped connection shows on first use (the server restarted, say): the
                # pool looks at its others, and reads are safe to repeat once.
                if attempt == 2:
                    raise
                pool.check()
        raise AssertionError("unreachable")

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """This process's turn on the one connection, waited for no longer than a request
        waits for the store."""
        if not self._lock.acquire(timeout=self.database.timeout):
            raise StoreUnavailable(_("the projections' connection is busy"))
        try:
            yield
        finally:
            self._lock.release()

    def data_version(self) -> int | None:
        """SQLite's mark of commits made to the database by any other connection, of this
        process or another (``PRAGMA data_version``): while it stays the same, nothing was
        written there but through this connection. ``None`` on PostgreSQL."""
        if self._sqlite is None:
            return None
        with translating(), self._turn():
            return int(self._sqlite.execute("PRAGMA data_version").fetchone()[0])

    def compact(self) -> None:
        """Leave no copy of replaced rows in the write-ahead log (SQLite): what a committed
        transaction overwrote is then gone from every file of the database."""
        if self._sqlite is None:
            return
        with translating(), self._turn():
            self._sqlite.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        """Close the connections (the event loop's pool on its loop, when that loop still
        runs on another thread; ``close_on_loop`` closes it from the loop itself)."""
        self._closed = True
        found, self._loop_readers = self._loop_readers, None
        if found is not None:
            loop, pool = found
            if loop.is_running() and not _on(loop):
                closing = asyncio.run_coroutine_threadsafe(pool.close(), loop)
                with suppress(Exception):
                    closing.result(timeout=self.database.timeout)
        with self._now_lock:
            if self._now_sqlite is not None:
                self._now_sqlite.close()
                self._now_sqlite = None
        with self._lock:
            if self._sqlite is not None:
                self._sqlite.close()
            if self._pg is not None:
                self._pg.close()
        with self._readers_lock:
            if self._readers is not None:
                self._readers.close()
                self._readers = None


def _on(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``loop`` runs on this thread."""
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def boolean(dialect: str) -> str:
    """The column type of a flag: PostgreSQL's boolean, SQLite's 0/1 integer."""
    return "BOOLEAN" if dialect == "postgresql" else "INTEGER"


def flag(value: Any) -> bool | None:
    """A flag read back from either backend."""
    return None if value is None else bool(value)
